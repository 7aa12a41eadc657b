"""The Isso reader (DESIGN §9) on a database the real Isso wrote: comments posted through its
HTTP API, approved through its admin, deleted by their authors (:mod:`tests.support.isso`).

Isso is installed from PyPI on first use. Where it cannot be (no PyPI), these tests are
skipped, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from commentsvc.imports.readers import isso as isso_reader
from commentsvc.imports.readers.isso import read
from commentsvc.imports.records import (
    BodyFormat,
    Record,
    Skipped,
    SkipReason,
    SourceComment,
    SourcePage,
    SourceStatus,
    UnreadableFile,
)
from tests.support.isso import ISSO_VERSION, IssoServer, IssoUnavailable, isso_executable

TITLE = "Ünïcode — post one"
ABSOLUTE_URI = "https://example.test/2025/10/talks?lang=de"
MARKDOWN = (
    "Hello **world**, see [this](https://example.org/a?b=1&c=2).\n\n"
    "<script>alert('x')</script> & <b>bold</b>\n\n    code block"
)


def isso_or_skip() -> None:
    """Install Isso if needed; skip when it cannot be installed, fail under ``CI=true``."""
    try:
        isso_executable()
    except IssoUnavailable as error:
        if os.environ.get("CI", "").lower() in {"true", "1"}:
            pytest.fail(f"Isso {ISSO_VERSION} is required with CI=true: {error}")
        pytest.skip(f"Isso {ISSO_VERSION} cannot be installed here: {error}")


@dataclass(frozen=True)
class IssoMade:
    """Isso's database after the scenario, and the ids Isso gave its comments."""

    database: Path
    ids: dict[str, int]

    def created(self, name: str) -> datetime:
        """When Isso says comment ``name`` was created, from its own file."""
        with sqlite3.connect(self.database) as connection:
            (created,) = connection.execute(
                "SELECT created FROM comments WHERE id = ?", (self.ids[name],)
            ).fetchone()
        return datetime.fromtimestamp(created, UTC)

    def copy(self, target: Path) -> Path:
        """A copy of the database at ``target``, its times kept."""
        shutil.copy2(self.database, target)
        return target


@pytest.fixture(scope="module")
def isso_made(tmp_path_factory: pytest.TempPathFactory) -> IssoMade:
    """Three threads written by Isso: approved and pending comments, a reply to a reply,
    escaped names, a deleted comment kept for its reply, one deleted without a trace."""
    isso_or_skip()
    directory = tmp_path_factory.mktemp("isso")
    with IssoServer(directory) as isso:
        assert isso.info()["version"] == ISSO_VERSION
        zoe = isso.new(
            "/post-1",
            title=TITLE,
            text=MARKDOWN,
            author="Zoë Ångström",
            email="zoe@example.org",
            website="https://zoe.example/?a=1&b=2",
            notification=1,
        )
        ben = isso.new(
            "/post-1",
            text="Reply **one**",
            author="Ben & Jerry <b>",
            email="ben@example.org",
            parent=zoe.id,
        )
        li = isso.new("/post-1", text="A reply to a reply", author="李雷", parent=ben.id)
        anonymous = isso.new("/post-1", text="No name given")
        mallory = isso.new(
            ABSOLUTE_URI,
            title="Talks",
            text="I will delete this",
            author="Mallory",
            email="mallory@example.org",
        )
        eve = isso.new(
            ABSOLUTE_URI, text="Replying before it goes", author="Eve", parent=mallory.id
        )
        trent = isso.new(ABSOLUTE_URI, text="Gone without a trace", author="Trent")
        orjan = isso.new("post-3", title="Third", text="Pending, on a data-isso-id", author="Ørjan")
        assert all(comment.pending for comment in (zoe, ben, li, anonymous, mallory, orjan))
        isso.activate(zoe.id, ben.id, mallory.id, eve.id)
        isso.delete(mallory)
        isso.delete(trent)
    ids = {
        "zoe": zoe.id,
        "ben": ben.id,
        "li": li.id,
        "anonymous": anonymous.id,
        "mallory": mallory.id,
        "eve": eve.id,
        "trent": trent.id,
        "orjan": orjan.id,
    }
    return IssoMade(isso.database, ids)


@pytest.fixture
def database(isso_made: IssoMade, tmp_path: Path) -> Path:
    """This test's own copy of Isso's database."""
    return isso_made.copy(tmp_path / "comments.db")


def expected(isso_made: IssoMade) -> list[Record]:
    """The records of the scenario's database, in the reader's order."""
    ids, created = isso_made.ids, isso_made.created
    post_1 = SourcePage("/post-1", None, TITLE)
    talks = SourcePage("/2025/10/talks?lang=de", ABSOLUTE_URI, "Talks")
    post_3 = SourcePage("post-3", None, "Third")

    def comment(
        name: str,
        page: SourcePage,
        body: str,
        author_name: str,
        *,
        status: SourceStatus = SourceStatus.APPROVED,
        email: str | None = None,
        url: str | None = None,
        parent: str | None = None,
        notify: bool = False,
    ) -> SourceComment:
        return SourceComment(
            source_id=str(ids[name]),
            page=page,
            created_at=created(name),
            status=status,
            body=body,
            body_format=BodyFormat.MARKDOWN,
            author_name=author_name,
            author_email=email,
            author_url=url,
            parent_source_id=str(ids[parent]) if parent else None,
            notify_replies=notify,
        )

    pending = SourceStatus.PENDING
    return [
        post_1,
        comment(
            "zoe",
            post_1,
            MARKDOWN,
            "Zoë Ångström",
            email="zoe@example.org",
            url="https://zoe.example/?a=1&b=2",
            notify=True,
        ),
        comment(
            "ben", post_1, "Reply **one**", "Ben & Jerry <b>", email="ben@example.org", parent="zoe"
        ),
        # Isso keeps one level of replies: a reply to a reply hangs from the top comment.
        comment("li", post_1, "A reply to a reply", "李雷", status=pending, parent="zoe"),
        comment("anonymous", post_1, "No name given", "Anonymous", status=pending),
        talks,
        Skipped(str(ids["mallory"]), SkipReason.DELETED),
        comment("eve", talks, "Replying before it goes", "Eve", parent="mallory"),
        post_3,
        comment("orjan", post_3, "Pending, on a data-isso-id", "Ørjan", status=pending),
    ]


def snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    """The file's bytes, its modification time and what lies beside it."""
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(os.listdir(path.parent))


def test_reads_what_isso_wrote(isso_made: IssoMade, database: Path) -> None:
    assert list(read(str(database))) == expected(isso_made)


def test_what_isso_stores_is_what_the_reader_undoes(isso_made: IssoMade) -> None:
    """The scenario exercises what the reader handles: Isso escapes names and websites,
    re-roots a reply to a reply, and keeps the email of a deleted comment."""
    with sqlite3.connect(isso_made.database) as connection:
        row = connection.execute(
            "SELECT author, website FROM comments WHERE id = ?", (isso_made.ids["zoe"],)
        ).fetchone()
        tombstone = connection.execute(
            "SELECT mode, text, author, email FROM comments WHERE id = ?",
            (isso_made.ids["mallory"],),
        ).fetchone()
        gone = connection.execute(
            "SELECT count(*) FROM comments WHERE id = ?", (isso_made.ids["trent"],)
        ).fetchone()
        ben = connection.execute(
            "SELECT author FROM comments WHERE id = ?", (isso_made.ids["ben"],)
        ).fetchone()
    assert row == ("Zoë Ångström", "https://zoe.example/?a=1&amp;b=2")
    assert ben == ("Ben &amp; Jerry &lt;b&gt;",)
    assert tombstone == (4, "", None, "mallory@example.org")
    assert gone == (0,)


def test_reads_in_batches(
    isso_made: IssoMade, database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches smaller than a thread give the same records, each page once."""
    monkeypatch.setattr(isso_reader, "BATCH_SIZE", 2)
    assert list(read(str(database))) == expected(isso_made)


def test_streams(database: Path) -> None:
    """The first page comes before the rest is read (the generator is closed unfinished)."""
    assert next(read(str(database))) == SourcePage("/post-1", None, TITLE)


def test_leaves_the_file_untouched(isso_made: IssoMade, tmp_path: Path) -> None:
    # "?" and "#" in the name must not be taken for URI options (mode=rw, say).
    database = isso_made.copy(tmp_path / "isso?mode=rw#1.db")
    before = snapshot(database)
    assert list(read(str(database))) == expected(isso_made)
    assert snapshot(database) == before


def test_reads_while_isso_runs(tmp_path: Path) -> None:
    """A running Isso keeps taking comments while the import reads (no lock is held between
    batches), and the reader sees a comment added between two batches."""
    isso_or_skip()
    with IssoServer(tmp_path / "live") as isso:
        first = isso.new("/live", title="Live", text="Before the import")
        records = read(str(isso.database))
        assert next(records) == SourcePage("/live", None, "Live")
        isso.new("/live", text="During the import")
        comments = [record.source_id for record in records if isinstance(record, SourceComment)]
        assert comments == [str(first.id), str(first.id + 1)]
        isso.new("/live", text="After the import")


def test_wal_mode_is_read_without_creating_files(isso_made: IssoMade, tmp_path: Path) -> None:
    database = isso_made.copy(tmp_path / "comments.db")
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode = WAL").fetchone() == ("wal",)
    connection.close()
    before = snapshot(database)
    assert before[2] == ["comments.db"]
    assert list(read(str(database))) == expected(isso_made)
    assert snapshot(database) == before


def test_wal_mode_in_use_is_refused(isso_made: IssoMade, tmp_path: Path) -> None:
    database = isso_made.copy(tmp_path / "comments.db")
    writer = sqlite3.connect(database)
    try:
        writer.execute("PRAGMA journal_mode = WAL")
        writer.execute("UPDATE threads SET title = title")
        writer.commit()
        with pytest.raises(UnreadableFile, match=r"comments\.db: in use by another program"):
            list(read(str(database)))
    finally:
        writer.close()


def test_interrupted_write_is_refused_not_read_torn(isso_made: IssoMade, tmp_path: Path) -> None:
    """A writer killed mid-transaction leaves a hot journal; reading it read-only would see
    half a transaction, so the reader refuses, and leaves the recovery to SQLite."""
    database = isso_made.copy(tmp_path / "comments.db")
    killed = """
import os, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA cache_size = 1")  # spill to the file before the commit
connection.execute("BEGIN")
for _ in range(200):
    connection.execute("UPDATE comments SET text = text || ?", ("x" * 500,))
os._exit(1)
"""
    subprocess.run([sys.executable, "-c", killed, str(database)], check=False)
    assert (tmp_path / "comments.db-journal").stat().st_size > 0
    before = snapshot(database)
    with pytest.raises(UnreadableFile, match=r"comments\.db: a write to it was interrupted"):
        list(read(str(database)))
    assert snapshot(database) == before


def test_modes_isso_never_writes_are_held_and_empty_text_skipped(
    isso_made: IssoMade, database: Path
) -> None:
    ids = isso_made.ids
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE comments SET mode = 3 WHERE id = ?", (ids["zoe"],))
        connection.execute("UPDATE comments SET text = '  ' WHERE id = ?", (ids["ben"],))
    connection.close()
    records = {getattr(r, "source_id", None): r for r in read(str(database))}
    zoe = records[str(ids["zoe"])]
    assert isinstance(zoe, SourceComment)
    assert zoe.status == SourceStatus.PENDING
    assert records[str(ids["ben"])] == Skipped(str(ids["ben"]), SkipReason.EMPTY)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a database\n",
        b'<?xml version="1.0"?><rss version="2.0"></rss>\n' * 10,
        b"\x1f\x8b\x08\x00" + bytes(200),
        b"SQLite format 3\x00" + bytes(10),
    ],
    ids=["empty", "text", "xml", "gzip", "truncated header"],
)
def test_a_file_that_is_not_sqlite_is_unreadable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "comments.db"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile, match=r"^\S*comments\.db: not an SQLite database$"):
        list(read(str(path)))
    assert path.read_bytes() == content


def test_a_damaged_sqlite_file_is_unreadable(isso_made: IssoMade, tmp_path: Path) -> None:
    path = tmp_path / "comments.db"
    data = bytearray(isso_made.database.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableFile) as raised:
        list(read(str(path)))
    assert str(raised.value).startswith(f"{path}: ")
    assert "\n" not in str(raised.value)


def sqlite_file(path: Path, *statements: str) -> Path:
    with sqlite3.connect(path) as connection:
        for statement in statements:
            connection.execute(statement)
    connection.close()
    return path


def test_another_programs_sqlite_file_is_unreadable(tmp_path: Path) -> None:
    path = sqlite_file(
        tmp_path / "app.db",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)",
        "INSERT INTO users (name) VALUES ('someone')",
    )
    before = snapshot(path)
    with pytest.raises(UnreadableFile, match=r"app\.db: not an Isso database \(it has no threads"):
        list(read(str(path)))
    assert snapshot(path) == before


def test_a_similar_schema_names_what_it_lacks(tmp_path: Path) -> None:
    path = sqlite_file(
        tmp_path / "other.db",
        "CREATE TABLE threads (id INTEGER PRIMARY KEY, uri TEXT, title TEXT)",
        "CREATE TABLE comments (tid INTEGER, id INTEGER PRIMARY KEY, text TEXT)",
    )
    with pytest.raises(UnreadableFile) as raised:
        list(read(str(path)))
    assert str(raised.value) == (
        f"{path}: not an Isso database (comments lacks author, created, email, mode, "
        "notification, parent, website)"
    )


def test_a_missing_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.db"
    with pytest.raises(UnreadableFile, match=r"nowhere\.db: No such file or directory"):
        list(read(str(path)))
    assert not path.exists()


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_without_isso_ci_fails_and_elsewhere_skips(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    def unavailable() -> Path:
        raise IssoUnavailable("pip install failed: no PyPI")

    monkeypatch.setattr(f"{__name__}.isso_executable", unavailable)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no PyPI"):
        isso_or_skip()


def test_the_command_imports_what_isso_wrote_once(
    database: Path, app: Flask, runner: FlaskCliRunner
) -> None:
    """Through ``commentsvc import isso``: the loader takes the reader's records; a second
    run adds nothing."""
    first = runner.invoke(args=["import", "isso", str(database), "--site", "news"])
    assert first.exit_code == 0, first.output
    imported = int(first.output.split()[1])
    assert imported == sum(isinstance(record, SourceComment) for record in read(str(database)))
    again = runner.invoke(args=["import", "isso", str(database), "--site", "news"])
    assert f"; {imported} already there" in again.output
