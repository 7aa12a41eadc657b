"""Moderation use cases called directly: each change recorded, counted and announced once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from commentsvc.extensions import db
from commentsvc.models import (
    BlocklistKind,
    Comment,
    CommentStatus,
    ModerationAction,
    ModerationEvent,
    Moderator,
    Page,
)
from commentsvc.services import moderation
from commentsvc.services.errors import Invalid, NotFound
from tests.services.conftest import Heard

PENDING, APPROVED = CommentStatus.PENDING, CommentStatus.APPROVED
REJECTED, SPAM = CommentStatus.REJECTED, CommentStatus.SPAM
PAGE = "/2025/10/us-china-talks"


def status(comment_id: int) -> CommentStatus | None:
    return db.session.scalar(sa.select(Comment.status).where(Comment.id == comment_id))


def events(comment_id: int) -> list[tuple[str, str | None, str | None, str | None]]:
    rows = db.session.scalars(
        sa.select(ModerationEvent)
        .where(ModerationEvent.comment_id == comment_id)
        .order_by(ModerationEvent.id)
    )
    return [
        (
            e.action.value,
            e.from_status and e.from_status.value,
            e.to_status and e.to_status.value,
            e.note,
        )
        for e in rows
    ]


def page_state(key: str = PAGE) -> tuple[int, int]:
    """The page's approved count and version."""
    row = db.session.execute(sa.select(Page.approved_count, Page.version).where(Page.key == key))
    count, version = row.one()
    return count, version


@pytest.mark.parametrize("action", moderation.BULK_ACTIONS)
def test_bulk_action_is_read_once_into_its_type(action: ModerationAction) -> None:
    assert moderation.bulk_action(action.value) is action


@pytest.mark.parametrize("value", ["requeue", "edit", "APPROVE", "", None, 1, ["approve"]])
def test_anything_else_is_not_a_bulk_action(value: object) -> None:
    with pytest.raises(Invalid) as refused:
        moderation.bulk_action(value)
    assert refused.value.errors == {"action": ["Must be one of: approve, reject, spam, delete."]}


def test_update_records_the_status_it_left_then_changes_it(
    moderator: Moderator, make_comment: Callable[..., int], heard: Heard
) -> None:
    comment = make_comment(status=PENDING)
    moderation.update_comment(moderator, comment, APPROVED, None, "looks fine")
    db.session.expire_all()
    assert status(comment) == APPROVED
    assert events(comment) == [("approve", "pending", "approved", "looks fine")]
    assert page_state() == (1, 2)
    assert heard.committed_types() == ["comment.approved"]
    assert heard.committed[0].actor == moderator.email


def test_an_edit_and_a_status_change_are_two_events_one_page_version(
    moderator: Moderator, make_comment: Callable[..., int], heard: Heard
) -> None:
    comment = make_comment(status=APPROVED, body="Typo hree")
    moderation.update_comment(moderator, comment, REJECTED, "Typo here")
    db.session.expire_all()
    stored = db.session.get(Comment, comment)
    assert stored is not None
    assert (stored.body, stored.body_html, stored.status) == (
        "Typo here",
        "<p>Typo here</p>",
        REJECTED,
    )
    assert events(comment) == [
        ("edit", "approved", "approved", None),
        ("reject", "approved", "rejected", None),
    ]
    assert page_state() == (0, 2)
    assert heard.committed_types() == ["comment.edited", "comment.rejected"]


def test_setting_the_status_a_comment_has_records_nothing(
    moderator: Moderator, make_comment: Callable[..., int], heard: Heard
) -> None:
    comment = make_comment(status=SPAM)
    moderation.update_comment(moderator, comment, SPAM, None)
    assert events(comment) == []
    assert heard.committed == []


def test_bulk_is_all_or_nothing(
    moderator: Moderator, make_comment: Callable[..., int], heard: Heard
) -> None:
    first, second = make_comment(status=PENDING), make_comment(status=PENDING)
    with pytest.raises(NotFound) as refused:
        moderation.bulk_moderate(moderator, [first, 999_999, second], ModerationAction.SPAM)
    assert refused.value.errors == {"ids": ["Unknown comment ids: 999999."]}
    db.session.expire_all()
    assert (status(first), status(second)) == (PENDING, PENDING)
    assert events(first) == events(second) == []
    assert heard.changed == heard.committed == []


def test_bulk_names_the_statuses_it_changed_from(
    moderator: Moderator, make_comment: Callable[..., int]
) -> None:
    pending, approved = make_comment(status=PENDING), make_comment(status=APPROVED)
    previous = moderation.bulk_moderate(
        moderator, [pending, approved, pending], ModerationAction.APPROVE
    )
    assert previous == {pending: PENDING}  # the approved one did not change
    assert page_state() == (2, 3)


def test_bulk_refuses_more_ids_than_allowed(
    moderator: Moderator, make_comment: Callable[..., int], app_config_limit: None
) -> None:
    ids = [make_comment(status=PENDING) for _ in range(3)]
    with pytest.raises(Invalid) as refused:
        moderation.bulk_moderate(moderator, ids, ModerationAction.REJECT)
    assert refused.value.errors == {"ids": ["At most 2 ids at once."]}
    assert [status(i) for i in ids] == [PENDING] * 3


@pytest.fixture
def app_config_limit(context: None) -> None:
    from flask import current_app

    current_app.config["MAX_BULK_IDS"] = 2


def test_delete_keeps_the_audit_log_and_the_replies(
    moderator: Moderator, make_comment: Callable[..., int], heard: Heard
) -> None:
    parent = make_comment(status=APPROVED)
    reply = make_comment(status=APPROVED, parent_id=parent)
    moderation.delete_comment(moderator, parent)
    db.session.expire_all()
    assert status(parent) is None
    assert db.session.get(Comment, reply).parent_id is None  # type: ignore[union-attr]
    assert events(parent) == [("delete", "approved", None, None)]
    assert page_state() == (1, 3)
    assert heard.committed_types() == ["comment.deleted"]


def test_a_moderator_of_other_sites_finds_nothing(
    make_moderator: Callable[..., Moderator], make_comment: Callable[..., int]
) -> None:
    blog_only = make_moderator("blog@example.com", sites=("blog",))
    comment = make_comment(site="news", status=PENDING)
    with pytest.raises(NotFound):
        moderation.update_comment(blog_only, comment, APPROVED, None)
    with pytest.raises(NotFound):
        moderation.bulk_moderate(blog_only, [comment], ModerationAction.DELETE)
    assert status(comment) == PENDING


def test_undo_restores_what_an_action_changed(
    moderator: Moderator, make_comment: Callable[..., int], heard: Heard
) -> None:
    pending, rejected = make_comment(status=PENDING), make_comment(status=REJECTED)
    previous = moderation.bulk_moderate(moderator, [pending, rejected], ModerationAction.APPROVE)
    done = moderation.Undo(ModerationAction.APPROVE, previous)
    assert moderation.Undo.from_record(done.to_record()) == done
    assert moderation.undo(moderator, done) == sorted([pending, rejected])
    db.session.expire_all()
    assert (status(pending), status(rejected)) == (PENDING, REJECTED)
    assert events(pending)[-1] == ("requeue", "approved", "pending", "undo")
    assert heard.committed_types() == [
        "comment.approved",
        "comment.approved",
        "comment.requeued",
        "comment.rejected",
    ]


def test_undo_leaves_what_somebody_changed_since(
    moderator: Moderator, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    previous = moderation.bulk_moderate(moderator, [comment], ModerationAction.SPAM)
    moderation.update_comment(moderator, comment, APPROVED, None)
    assert moderation.undo(moderator, moderation.Undo(ModerationAction.SPAM, previous)) == []
    assert status(comment) == APPROVED


def test_a_deletion_cannot_be_undone(
    moderator: Moderator, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    previous = moderation.bulk_moderate(moderator, [comment], ModerationAction.DELETE)
    assert moderation.undo(moderator, moderation.Undo(ModerationAction.DELETE, previous)) == []


def described(comment_id: int, url: str | None, title: str | None) -> int:
    """Give a stored comment the page URL and title its submission would have sent."""
    db.session.execute(
        sa.update(Comment).where(Comment.id == comment_id).values(page_url=url, page_title=title)
    )
    db.session.commit()
    return comment_id


def page_name() -> tuple[str | None, str | None]:
    """The page's URL and title as stored (read in a transaction of its own)."""
    db.session.expire_all()
    url, title = db.session.execute(sa.select(Page.url, Page.title).where(Page.key == PAGE)).one()
    db.session.rollback()
    return url, title


def test_a_page_is_named_by_its_newest_approved_comment_that_gave_a_name(
    moderator: Moderator, make_comment: Callable[..., int]
) -> None:
    older = described(make_comment(status=PENDING), "https://news.example/a", "Older")
    untitled = described(make_comment(status=PENDING), "https://news.example/a?b", None)
    newer = described(make_comment(status=PENDING), None, "Newer")
    attacker = described(make_comment(status=PENDING), "https://news.example/login", "Sign in")

    moderation.update_comment(moderator, older, APPROVED, None)
    assert page_name() == ("https://news.example/a", "Older")
    # Each of URL and title from the newest approved comment that has one.
    moderation.bulk_moderate(moderator, [untitled, newer], ModerationAction.APPROVE)
    assert page_name() == ("https://news.example/a?b", "Newer")
    # Spam, rejected or deleted, a comment never names the page.
    moderation.bulk_moderate(moderator, [attacker], ModerationAction.SPAM)
    moderation.spam_and_block(moderator, attacker, [(BlocklistKind.EMAIL, "x@example.com")], None)
    moderation.delete_comment(moderator, attacker)
    assert page_name() == ("https://news.example/a?b", "Newer")

    # Un-approved, the comment that named the page gives way to the next approved one.
    previous = moderation.bulk_moderate(moderator, [newer, untitled], ModerationAction.REJECT)
    assert page_name() == ("https://news.example/a", "Older")
    moderation.undo(moderator, moderation.Undo(ModerationAction.REJECT, previous))
    assert page_name() == ("https://news.example/a?b", "Newer")
    moderation.delete_comment(moderator, newer)
    assert page_name() == ("https://news.example/a?b", "Older")
    moderation.bulk_moderate(moderator, [older, untitled], ModerationAction.DELETE)
    assert page_name() == (None, None)


def test_an_edit_leaves_the_page_alone_and_an_undo_renames_it(
    moderator: Moderator, make_comment: Callable[..., int]
) -> None:
    named = described(make_comment(status=APPROVED), "https://news.example/a", "Named")
    moderation.update_comment(moderator, named, APPROVED, "edited body")  # an edit only
    assert page_name() == (None, None)  # make_comment stored it without describing the page
    other = described(make_comment(status=PENDING), "https://news.example/b", "Other")
    count_before = page_state()[0]

    moderation.bulk_moderate(moderator, [other], ModerationAction.APPROVE)
    moderation.bulk_moderate(moderator, [named], ModerationAction.SPAM)
    previous = moderation.bulk_moderate(moderator, [other], ModerationAction.REJECT)
    assert page_name() == (None, None)
    moderation.undo(moderator, moderation.Undo(ModerationAction.REJECT, previous))
    assert page_name() == ("https://news.example/b", "Other")
    assert page_state()[0] == count_before
