"""Pages' states kept by a worker (services/page_states): a change committed anywhere is seen
by the next request, and while nothing changes a 304 and a count read nothing."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.extensions import db
from commentsvc.models import Page
from commentsvc.services import page_states
from commentsvc.services.page_states import PageState, PageStates, SqliteChanges

PAGE = "/2025/10/us-china-talks"
THREAD = f"/api/v1/sites/news/comments?page={PAGE}"
COUNTS = f"/api/v1/sites/news/counts?page={PAGE}&page=/other&page=/none"


def _sqlite(app: Flask) -> bool:
    with app.app_context():
        return db.engine.dialect.name == "sqlite"


def _database_path(app: Flask) -> str:
    with app.app_context():
        path = db.engine.url.database
    assert path
    return os.path.abspath(path)


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    """Every statement the app's engine sends to the database, as it is sent."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    yield sent
    sa.event.remove(engine, "before_cursor_execute", record)


def _bump_behind_its_back(app: Flask, key: str, approved: int) -> None:
    """Change a page as another worker (another process, on SQLite) would."""
    statement = "UPDATE pages SET approved_count = ?, version = version + 1 WHERE key = ?"
    if _sqlite(app):
        script = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
            f" c.execute({statement!r}, (int(sys.argv[2]), sys.argv[3])); c.commit()"
        )
        path = _database_path(app)
        subprocess.run([sys.executable, "-c", script, path, str(approved), key], check=True)
        return
    with app.app_context():
        db.session.execute(
            sa.update(Page)
            .where(Page.key == key)
            .values(approved_count=approved, version=Page.version + 1)
        )
        db.session.commit()


def test_a_change_committed_elsewhere_shows_in_the_next_304_and_counts(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    make_comment(body="First")
    make_comment(page="/other", body="Other")
    first = client.get(THREAD)
    tag = first.headers["ETag"]
    assert client.get(THREAD, headers={"If-None-Match": tag}).status_code == 304
    assert client.get(COUNTS).get_json() == {"counts": {PAGE: 1, "/other": 1, "/none": 0}}

    _bump_behind_its_back(app, PAGE, 7)

    changed = client.get(THREAD, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != tag
    assert changed.get_json()["total"] == 7
    assert client.get(COUNTS).get_json() == {"counts": {PAGE: 7, "/other": 1, "/none": 0}}


def test_a_page_made_elsewhere_is_counted_at_once(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    """A page not there when first asked for (kept as "none") appears with its first
    approved comment."""
    assert client.get(COUNTS).get_json()["counts"]["/none"] == 0
    make_comment(page="/none", body="Now there is one")
    assert client.get(COUNTS).get_json()["counts"]["/none"] == 1


def test_while_nothing_changes_nothing_is_read(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int], statements: list[str]
) -> None:
    """On SQLite a 304 and a count read no table once the pages were read; elsewhere each
    reads its pages with one statement (and nothing else)."""
    make_comment(body="First")
    tag = client.get(THREAD).headers["ETag"]
    fragment = f"/sites/news/thread.html?page={PAGE}"
    fragment_tag = client.get(fragment).headers["ETag"]
    assert client.get(COUNTS).status_code == 200
    statements.clear()

    for _ in range(5):
        assert client.get(THREAD, headers={"If-None-Match": tag}).status_code == 304
        assert client.get(fragment, headers={"If-None-Match": fragment_tag}).status_code == 304
        assert client.get(THREAD).status_code == 200
        assert client.get(COUNTS).status_code == 200

    if _sqlite(app):
        assert statements == []
    else:
        pages = [s for s in statements if "FROM pages" in s]
        assert len(pages) == len(statements) == 20


def test_counts_answer_304_until_a_count_changes(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    make_comment(body="First")
    first = client.get(COUNTS)
    tag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    again = client.get(COUNTS, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == tag

    make_comment(body="Second")
    changed = client.get(COUNTS, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.get_json()["counts"][PAGE] == 2
    assert changed.headers["ETag"] != tag


def _page(connection: sqlite3.Connection, key: str, count: int) -> None:
    connection.execute(
        "INSERT INTO pages (site_id, key, approved_count, version, created_at)"
        " VALUES (1, ?, ?, 1, '2026-01-01 00:00:00')",
        (key, count),
    )


def test_states_read_before_a_commit_are_not_kept_after_it(app: Flask) -> None:
    """A read that raced a commit may hold the state before it: once any request saw the
    database move on, that read is dropped instead of kept as current."""
    if not _sqlite(app):
        states = PageStates(None)  # nothing can tell: nothing is ever kept
        states.keep(states.valid_now(), {(1, "/a"): PageState(1, 1, 1)})
        assert states.known(states.valid_now(), [(1, "/a")]) == {}
        return
    states = PageStates(SqliteChanges(_database_path(app)))
    writer = sqlite3.connect(_database_path(app), isolation_level=None)
    try:
        before = states.valid_now()
        assert before is not None
        assert states.valid_now() == before  # nothing committed

        _page(writer, "/a", 3)
        after = states.valid_now()  # a request that started after the commit
        assert after is not None and after != before

        states.keep(before, {(1, "/a"): None})  # the racing read: "no such page"
        assert states.known(after, [(1, "/a")]) == {}
        states.keep(after, {(1, "/a"): PageState(1, 1, 3)})
        assert states.known(after, [(1, "/a")]) == {(1, "/a"): PageState(1, 1, 3)}

        writer.execute("UPDATE pages SET approved_count = 4 WHERE key = '/a'")
        assert states.valid_now() != after
        assert states.known(states.valid_now(), [(1, "/a")]) == {}
    finally:
        writer.close()
        states.close()


def _open_files(path: str) -> int:
    """How many of this process's file descriptors are open on ``path``."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own, gone once listed
            found += os.readlink(f"/proc/self/fd/{fd}") == path
    return found


def test_the_watching_connection_goes_with_the_engine(app: Flask, client: FlaskClient) -> None:
    if not _sqlite(app):
        with app.app_context():
            assert page_states._page_states().valid_now() is None
        return
    path = _database_path(app)
    with app.app_context():
        db.engine.dispose()
    opened = _open_files(path)
    assert client.get(COUNTS).status_code == 200
    assert _open_files(path) == opened + 2  # the pool's connection, the watch's
    with app.app_context():
        db.engine.dispose()
    assert _open_files(path) == opened
    assert client.get(COUNTS).status_code == 200  # and opens again when needed


def test_each_list_of_pages_keeps_its_own_answer(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    make_comment(body="First")
    forward = "/api/v1/sites/news/counts?page=/none&page=" + PAGE
    backward = f"/api/v1/sites/news/counts?page={PAGE}&page=/none&page={PAGE}"
    for _ in range(2):  # made, then kept
        assert list(client.get(forward).get_json()["counts"]) == ["/none", PAGE]
        assert list(client.get(backward).get_json()["counts"]) == [PAGE, "/none"]
        assert client.get("/api/v1/sites/blog/counts?page=" + PAGE).get_json() == {
            "counts": {PAGE: 0}
        }
