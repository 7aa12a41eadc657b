"""Two people changing the same thing at once: each change counts once, nothing breaks.

SQLite runs one write transaction at a time (``BEGIN IMMEDIATE``). PostgreSQL runs them side
by side, so a use case must lock what it reads before deciding what to change, and a
check-then-insert must expect the other insert to win. Each test holds the first actor up
right after it read, while the second one acts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from commentsvc.extensions import db
from commentsvc.models import (
    Comment,
    CommentStatus,
    ModerationAction,
    ModerationEvent,
    Moderator,
    Page,
    Site,
)
from commentsvc.services import accounts, listing, moderation, sites, submissions
from commentsvc.services.errors import Conflict, NotFound

#: How long the first actor waits for the second; the second finishes in milliseconds
#: unless a lock keeps it waiting for the first.
HOLD_SECONDS = 0.5
PENDING = CommentStatus.PENDING
APPROVED = CommentStatus.APPROVED

Action = Callable[[Moderator, int], Any]


def approve(moderator: Moderator, comment_id: int) -> None:
    """The moderation API's PATCH."""
    moderation.update_comment(moderator, comment_id, APPROVED, None)


def approve_in_panel(moderator: Moderator, comment_id: int) -> None:
    """The panel's button: it looks the comment up, then applies a bulk action to it."""
    listing.find_comment(moderator.site_scope(), comment_id)
    moderation.bulk_moderate(moderator, [comment_id], ModerationAction.APPROVE)


def delete(moderator: Moderator, comment_id: int) -> None:
    moderation.delete_comment(moderator, comment_id)


def bulk_delete(moderator: Moderator, comment_id: int) -> None:
    moderation.bulk_moderate(moderator, [comment_id], ModerationAction.DELETE)


@contextmanager
def first_reader_held(
    app: Flask, table: str, released: threading.Event
) -> Iterator[threading.Event]:
    """While active, the first statement to read ``table`` waits, once it has run, until
    ``released`` is set or HOLD_SECONDS pass. Yields an event set when it starts waiting."""
    holding = threading.Event()

    def after_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        reads = statement.lstrip().startswith("SELECT") and f"FROM {table}" in statement
        if reads and not holding.is_set():
            holding.set()
            released.wait(HOLD_SECONDS)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "after_cursor_execute", after_execute)
    try:
        yield holding
    finally:
        sa.event.remove(engine, "after_cursor_execute", after_execute)


def run_concurrently(
    app: Flask, table: str, first: Callable[[], Any], second: Callable[[], Any]
) -> dict[str, BaseException]:
    """Run ``first`` in a thread; once it has read ``table``, ``second`` in another thread.
    Each runs in an app context of its own. Returns what each raised, by name."""
    released = threading.Event()
    errors: dict[str, BaseException] = {}

    def run(name: str, action: Callable[[], Any]) -> None:
        with app.app_context():
            try:
                action()
            except BaseException as error:  # reported to the test
                errors[name] = error
            finally:
                if name == "second":
                    released.set()

    with first_reader_held(app, table, released) as holding:
        first_thread = threading.Thread(target=run, args=("first", first))
        first_thread.start()
        assert holding.wait(5), f"the first actor never read {table}"
        second_thread = threading.Thread(target=run, args=("second", second))
        second_thread.start()
        first_thread.join(10)
        second_thread.join(10)
    assert not first_thread.is_alive() and not second_thread.is_alive()
    return errors


def as_moderator(moderator_id: int, action: Action, comment_id: int) -> Callable[[], Any]:
    def act() -> Any:
        moderator = db.session.get(Moderator, moderator_id)
        assert moderator is not None
        return action(moderator, comment_id)

    return act


def stored(app: Flask, comment_id: int) -> tuple[CommentStatus | None, int, list[str]]:
    """The comment's status (None once deleted), its page's approved count, its events."""
    with app.app_context():
        status = db.session.scalar(sa.select(Comment.status).where(Comment.id == comment_id))
        count = db.session.scalar(sa.select(Page.approved_count)) or 0
        events = db.session.scalars(
            sa.select(ModerationEvent.action)
            .where(ModerationEvent.comment_id == comment_id)
            .order_by(ModerationEvent.id)
        )
        return status, count, [event.value for event in events]


@pytest.fixture
def moderator_id(app: Flask, make_token: Callable[..., str]) -> int:
    make_token("mod@example.com")
    with app.app_context():
        found = db.session.scalar(sa.select(Moderator.id))
    assert found is not None
    return found


@pytest.mark.parametrize("second", [approve, approve_in_panel])
@pytest.mark.parametrize("first", [approve, approve_in_panel])
def test_two_approvals_of_one_comment_count_once(
    app: Flask, make_comment: Callable[..., int], moderator_id: int, first: Action, second: Action
) -> None:
    comment = make_comment(status=PENDING)
    errors = run_concurrently(
        app,
        "comments",
        as_moderator(moderator_id, first, comment),
        as_moderator(moderator_id, second, comment),
    )
    assert errors == {}
    assert stored(app, comment) == (APPROVED, 1, ["approve"])


@pytest.mark.parametrize("first", [delete, bulk_delete])
def test_an_approval_racing_a_deletion_leaves_the_count_true(
    app: Flask, make_comment: Callable[..., int], moderator_id: int, first: Action
) -> None:
    comment = make_comment(status=PENDING)
    errors = run_concurrently(
        app,
        "comments",
        as_moderator(moderator_id, first, comment),
        as_moderator(moderator_id, approve, comment),
    )
    # The approval comes second: the comment is gone by then.
    assert list(errors) == ["second"]
    assert isinstance(errors["second"], NotFound)
    assert stored(app, comment) == (None, 0, ["delete"])


def test_two_admins_adding_one_site_at_once_get_one_site_and_a_clear_refusal(app: Flask) -> None:
    def add() -> None:
        sites.create_site("forum", ["https://forum.example"])

    errors = run_concurrently(app, "sites", add, add)
    assert len(errors) == 1
    error = next(iter(errors.values()))
    assert isinstance(error, Conflict), repr(error)
    assert str(error) == "site 'forum' already exists"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(Site.slug == "forum")) == 1


def test_two_admins_adding_one_moderator_at_once_get_one_and_a_clear_refusal(app: Flask) -> None:
    def add() -> None:
        accounts.create_moderator("new@example.com", "long enough password")

    errors = run_concurrently(app, "moderators", add, add)
    assert len(errors) == 1
    error = next(iter(errors.values()))
    assert isinstance(error, Conflict), repr(error)
    assert str(error) == "moderator new@example.com already exists"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Moderator)) == 1


def test_two_first_comments_on_one_page_at_once_share_the_page(app: Flask) -> None:
    """Both submissions find no page; one creates it, the other must use that one."""

    def submit(author: str) -> Callable[[], Any]:
        def act() -> Any:
            site = sites.get_site("news")
            assert site is not None
            submission = submissions.Submission(
                page="/new-article",
                body=f"First! says {author}",
                author_name=author,
                author_email=f"{author}@example.com",
                page_url="https://news.example/new-article",
            )
            return submissions.submit_comment(site, submission, submissions.ClientInfo(None, None))

        return act

    errors = run_concurrently(app, "pages", submit("first"), submit("second"))
    assert errors == {}
    with app.app_context():
        pages = db.session.scalars(sa.select(Page).where(Page.key == "/new-article")).all()
        assert len(pages) == 1
        rows = db.session.execute(
            sa.select(Comment.author_name, Comment.page_url).where(Comment.page_id == pages[0].id)
        ).all()
        assert sorted(rows) == [
            ("first", "https://news.example/new-article"),
            ("second", "https://news.example/new-article"),
        ]
        assert pages[0].url is None  # a page is named by its approved comments only


def test_adding_a_moderator_hashes_the_password_before_taking_the_write_lock(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scrypt is slow on purpose (about 100 ms): every other writer would wait behind it."""
    hashed_in_transaction: list[bool] = []
    real_hash = accounts.hash_password

    def watched(password: str) -> str:
        hashed_in_transaction.append(db.session().in_transaction())
        return real_hash(password)

    monkeypatch.setattr(accounts, "hash_password", watched)
    with app.app_context():
        accounts.create_moderator("new@example.com", "long enough password")
    assert hashed_in_transaction == [False]
