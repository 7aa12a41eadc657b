"""``commentsvc import wordpress``: a hand-checked WXR file into a site, through the CLI.

The sample (tests/imports/samples/wordpress/export.xml) has a reply before its parent,
every status WordPress exports (approved, pending, spam, trash), a pingback, a reply to a
trashed comment, HTML with entities and a script, Unicode names, a missing email and a
missing GMT date.
"""

from __future__ import annotations

import gzip
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from commentsvc.extensions import db
from commentsvc.imports import loader
from commentsvc.models import (
    Comment,
    CommentStatus,
    Delivery,
    ImportRecord,
    OutboxEvent,
    Page,
    Site,
)

SAMPLE = Path(__file__).parent / "samples" / "wordpress" / "export.xml"
SUMMARY = (
    "imported 5 comments (3 approved, 1 pending, 1 spam) on 2 pages; skipped 2 "
    "(1 pingback, 1 trashed); 0 already there; 1 replies without their parent made top-level"
)


@pytest.fixture
def news(app: Flask) -> None:
    """The site ``news`` moved from https://news.example."""
    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
        assert site is not None
        site.origins = ["https://news.example"]
        db.session.commit()


def run_import(runner: FlaskCliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(args=["import", "wordpress", *args, "--site", "news"])
    return result.exit_code, result.output.strip()


def comments(app: Flask) -> dict[str, Comment]:
    """The imported comments by their WordPress id."""
    with app.app_context():
        rows = db.session.execute(
            sa.select(ImportRecord.source_id, Comment).join(
                Comment, Comment.id == ImportRecord.comment_id
            )
        ).all()
        db.session.expunge_all()
        return {source_id: comment for source_id, comment in rows}


def dump(app: Flask) -> list[tuple[object, ...]]:
    """Every row of every table, to compare a database before and after."""
    with app.app_context():
        rows: list[tuple[object, ...]] = []
        for table in db.metadata.sorted_tables:
            rows += [(table.name, *row) for row in db.session.execute(sa.select(table))]
        return rows


def test_a_wordpress_export_comes_in_with_its_threads_statuses_and_times(
    app: Flask, runner: FlaskCliRunner, news: None
) -> None:
    status, output = run_import(runner, str(SAMPLE))
    assert status == 0, output
    assert output == SUMMARY
    found = comments(app)
    assert set(found) == {"101", "103", "104", "105", "202"}
    ada, reply, waiting, spam, orphan = (found[i] for i in ("101", "103", "104", "105", "202"))
    assert reply.parent_id == ada.id  # the reply came first in the file
    assert orphan.parent_id is None  # its parent was trashed: top-level
    assert (ada.status, reply.status, waiting.status, spam.status) == (
        CommentStatus.APPROVED,
        CommentStatus.APPROVED,
        CommentStatus.PENDING,
        CommentStatus.SPAM,
    )
    assert ada.created_at == datetime(2025, 10, 1, 8, 0, tzinfo=UTC)  # GMT, not local
    assert waiting.created_at == datetime(2025, 10, 3, 12, 0, tzinfo=UTC)  # no GMT date
    # Ids in time order, whatever the file's order; times from the file, replies' too.
    by_id = sorted(found.values(), key=lambda comment: comment.id)
    assert by_id == sorted(found.values(), key=lambda comment: comment.created_at)
    assert all(comment.updated_at == comment.created_at for comment in found.values())
    assert reply.author_name == "Zoë Ångström"
    assert orphan.author_name == "李小龍"
    assert reply.author_url == "https://zoe.example/"
    assert waiting.author_email == ""
    assert ada.body == (
        "First line & more\nsecond line\n\n"
        "A new paragraph with my notes (https://ada.example/notes) \u2019quoted\u2019 bold"
    )
    assert "<script" not in ada.body_html and "alert" not in ada.body_html
    assert '<a href="https://ada.example/notes" rel="nofollow ugc noopener">' in ada.body_html
    with app.app_context():
        page = db.session.scalar(sa.select(Page).where(Page.key == "/2025/10/us-china-talks"))
        assert page is not None
        assert (page.url, page.title, page.approved_count) == (
            "https://news.example/2025/10/us-china-talks",
            "US-China trade talks resume",
            2,
        )
        assert db.session.scalar(sa.select(Page.key).where(Page.key == "/?p=20")) == "/?p=20"


def test_ids_follow_the_comments_already_there(
    app: Flask, runner: FlaskCliRunner, news: None
) -> None:
    assert runner.invoke(args=["import", "wordpress", str(SAMPLE), "--site", "blog"]).exit_code == 0
    with app.app_context():
        before = db.session.scalar(sa.select(sa.func.max(Comment.id)))
    assert before is not None
    assert run_import(runner, str(SAMPLE)) == (0, SUMMARY)
    found = comments(app)
    with app.app_context():
        news_id = db.session.scalar(sa.select(Site.id).where(Site.slug == "news"))
    mine = sorted(c.id for c in found.values() if c.site_id == news_id)
    assert mine == list(range(before + 1, before + 6))
    thread = app.test_client().get(
        "/api/v1/sites/news/comments?page=/2025/10/us-china-talks",
        headers={"Origin": "https://news.example"},
    )
    assert [c["author_name"] for c in thread.get_json()["comments"]] == [
        "Ada Lovelace",
        "Zoë Ångström",
    ]


def test_small_batches_give_the_same_import(
    app: Flask, runner: FlaskCliRunner, news: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader, "BATCH", 2)
    monkeypatch.setattr(loader, "PAGE_BATCH", 1)
    assert run_import(runner, str(SAMPLE)) == (0, SUMMARY)
    found = comments(app)
    assert found["103"].parent_id == found["101"].id
    with app.app_context():
        rows = db.session.execute(sa.select(Page.key, Page.approved_count)).tuples()
        counts = {key: count for key, count in rows}
    assert counts == {"/2025/10/us-china-talks": 2, "/?p=20": 1}


@pytest.mark.parametrize("batch", [3, 1000], ids=["in-another-batch", "in-the-same-batch"])
def test_a_comment_twice_in_the_file_comes_in_once(
    app: Flask,
    runner: FlaskCliRunner,
    news: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    batch: int,
) -> None:
    text = SAMPLE.read_text("utf-8")
    first = text.index("\t\t<wp:comment>")
    end = text.index("</wp:comment>", first) + len("</wp:comment>\n")
    copy = tmp_path / "export.xml"
    copy.write_text(text.replace("\t</item>", text[first:end] + "\t</item>", 1), "utf-8")
    monkeypatch.setattr(loader, "BATCH", batch)
    status, output = run_import(runner, str(copy))
    assert status == 0, output
    assert output == SUMMARY.replace("; 0 already there", "; 1 already there")


def test_imported_comments_tell_nobody(
    app: Flask, runner: FlaskCliRunner, news: None, deliver: object
) -> None:
    assert run_import(runner, str(SAMPLE))[0] == 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 0


def test_the_readers_see_the_approved_thread(
    app: Flask, runner: FlaskCliRunner, news: None
) -> None:
    assert run_import(runner, str(SAMPLE))[0] == 0
    thread = app.test_client().get(
        "/api/v1/sites/news/comments?page=/2025/10/us-china-talks",
        headers={"Origin": "https://news.example"},
    )
    assert thread.status_code == 200
    assert [c["author_name"] for c in thread.get_json()["comments"]] == [
        "Ada Lovelace",
        "Zoë Ångström",
    ]


def test_running_it_again_adds_nothing_and_changes_nothing(
    app: Flask, runner: FlaskCliRunner, news: None
) -> None:
    assert run_import(runner, str(SAMPLE))[0] == 0
    before = dump(app)
    status, output = run_import(runner, str(SAMPLE))
    assert status == 0, output
    assert output == (
        "imported 0 comments (0 approved, 0 pending, 0 spam) on 0 pages; skipped 2 "
        "(1 pingback, 1 trashed); 5 already there"
    )
    assert dump(app) == before


def test_a_dry_run_says_the_same_and_writes_nothing(
    app: Flask, runner: FlaskCliRunner, news: None
) -> None:
    before = dump(app)
    status, output = run_import(runner, str(SAMPLE), "--dry-run")
    assert status == 0, output
    assert output == "dry run: " + SUMMARY
    assert dump(app) == before


def test_a_gzipped_export_reads_the_same(
    app: Flask, runner: FlaskCliRunner, news: None, tmp_path: Path
) -> None:
    packed = tmp_path / "news.wordpress.2025-10-05.xml.gz"
    with SAMPLE.open("rb") as source, gzip.open(packed, "wb") as target:
        shutil.copyfileobj(source, target)
    assert run_import(runner, str(packed)) == (0, SUMMARY)


def test_map_url_moves_the_pages(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    status, output = run_import(
        runner, str(SAMPLE), "--map-url", "https://news.example=https://www.news.example"
    )
    assert status == 0, output
    with app.app_context():
        keys = set(db.session.scalars(sa.select(Page.key)))
        assert {"/2025/10/us-china-talks", "/?p=20"} <= keys
        # Not on the site's origins (http://localhost:5000 in the tests): no URL kept.
        urls = set(db.session.scalars(sa.select(Comment.page_url)))
        assert urls == {None}


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<rss xmlns:wp="http://wordpress.org/export/1.2/"><channel><item><wp:comment>&lol4;</wp:comment></item></channel></rss>
"""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(lambda text: text[: len(text) // 2], r"line \d+: ", id="truncated"),
        pytest.param(lambda text: BILLION_LAUGHS, "declares XML entities", id="billion-laughs"),
        pytest.param(
            lambda text: '<disqus xmlns="http://disqus.com"><thread/></disqus>',
            "a Disqus export: no http://wordpress.org/export/ namespace",
            id="a-disqus-file",
        ),
        pytest.param(
            lambda text: text.replace("2025-10-03 13:00:00", "yesterday"),
            "comment_date_gmt 'yesterday' is not YYYY-MM-DD HH:MM:SS",
            id="a-bad-date",
        ),
        pytest.param(
            lambda text: text.replace("2025-10-03 13:00:00", "2025-02-30 13:00:00"),
            "comment_date_gmt '2025-02-30 13:00:00' is not YYYY-MM-DD HH:MM:SS",
            id="a-day-that-does-not-exist",
        ),
    ],
)
def test_a_file_that_cannot_be_read_stops_with_one_line_and_writes_nothing(
    app: Flask,
    runner: FlaskCliRunner,
    news: None,
    tmp_path: Path,
    content: object,
    message: str,
) -> None:
    bad = tmp_path / "export.xml"
    bad.write_text(content(SAMPLE.read_text("utf-8")), "utf-8")  # type: ignore[operator]
    before = dump(app)
    status, output = run_import(runner, str(bad))
    assert status == 1
    assert output.startswith(f"Error: {bad}: ")
    assert len(output.splitlines()) == 1
    assert re.search(message, output), output
    assert dump(app) == before


def test_a_date_with_one_digit_fields_is_read_as_strptime_reads_it(
    app: Flask, runner: FlaskCliRunner, news: None, tmp_path: Path
) -> None:
    changed = tmp_path / "export.xml"
    text = SAMPLE.read_text("utf-8").replace("2025-10-02 09:30:00", "2025-10-2 9:30:0")
    changed.write_text(text, "utf-8")
    assert run_import(runner, str(changed)) == (0, SUMMARY)
    assert comments(app)["103"].created_at == datetime(2025, 10, 2, 9, 30, tzinfo=UTC)


def test_an_unknown_site_or_format_is_refused(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["import", "wordpress", str(SAMPLE), "--site", "nope"])
    assert result.exit_code == 1
    assert "There is no site 'nope'." in result.output
    result = runner.invoke(args=["import", "blogger", str(SAMPLE), "--site", "news"])
    assert result.exit_code == 2
    assert "Invalid value for FORMAT" in result.output
