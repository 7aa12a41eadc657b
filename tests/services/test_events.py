"""The event seam: every change announced once, inside its transaction, then after commit."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask
from prometheus_client import REGISTRY

from commentsvc.extensions import db, write_transaction
from commentsvc.models import CommentStatus, ModerationEvent, Moderator, utcnow
from commentsvc.services import moderation, sites, submissions
from commentsvc.services.errors import Invalid
from commentsvc.services.events import (
    STATUS_EVENT,
    CommentEvent,
    EventType,
    announce,
    comment_changed,
)
from tests.services.conftest import Heard


def submit(
    page: str = "/a", parent_id: int | None = None, body: str = "Hello"
) -> submissions.StoredComment:
    site = sites.get_site("news")
    assert site is not None
    submission = submissions.Submission(
        page=page,
        body=body,
        author_name="Ada",
        author_email="ada@example.com",
        parent_id=parent_id,
    )
    return submissions.submit_comment(site, submission, submissions.ClientInfo(None, None))


def test_every_status_has_its_event() -> None:
    assert set(STATUS_EVENT) == set(CommentStatus)
    assert len(set(STATUS_EVENT.values())) == len(CommentStatus)


def test_a_submission_is_announced_with_what_was_stored(context: None, heard: Heard) -> None:
    stored = submit()
    [change] = heard.committed
    assert heard.changed == heard.committed
    assert (change.type, change.comment_id, change.status) == (
        EventType.SUBMITTED,
        stored.id,
        CommentStatus.PENDING,
    )
    assert change.actor is None
    assert change.at == stored.created_at


def test_a_refused_submission_announces_nothing(context: None, heard: Heard) -> None:
    with pytest.raises(Invalid):
        submit(parent_id=12345)  # no such parent: refused inside the transaction
    assert heard.changed == heard.committed == []


def test_subscribers_act_inside_the_transaction_of_the_change(
    context: None, moderator: Moderator, make_comment: Callable[..., int]
) -> None:
    """What an in-transaction subscriber writes commits, or rolls back, with the change."""
    comment = make_comment(status=CommentStatus.PENDING)

    def write_alongside(change: CommentEvent) -> None:
        assert db.session().in_transaction()
        db.session.add(
            ModerationEvent(
                comment_id=change.comment_id,
                site_id=change.site_id,
                actor="subscriber",
                action="approve",
                to_status=change.status,
            )
        )
        if change.type == EventType.REJECTED:
            raise RuntimeError("the subscriber failed")

    comment_changed.connect(write_alongside)
    try:
        moderation.update_comment(moderator, comment, CommentStatus.APPROVED, None)
        with pytest.raises(RuntimeError):
            moderation.update_comment(moderator, comment, CommentStatus.REJECTED, None)
    finally:
        comment_changed.disconnect(write_alongside)
    actors = db.session.scalars(
        sa.select(ModerationEvent.actor).where(ModerationEvent.comment_id == comment)
    ).all()
    assert sorted(actors) == ["mod@example.com", "subscriber"]  # the rejection rolled back


def test_committed_subscribers_hear_nothing_of_a_rollback(context: None, heard: Heard) -> None:
    change = CommentEvent(EventType.EDITED, 1, 1, 1, CommentStatus.PENDING, "system", utcnow())
    with pytest.raises(RuntimeError), write_transaction():
        announce(change)
        raise RuntimeError("abandoned")
    assert heard.changed == [change]
    assert heard.committed == []
    with write_transaction():
        pass  # a later commit does not deliver the abandoned change either
    assert heard.committed == []


def test_committed_changes_are_counted_in_metrics(app: Flask, context: None) -> None:
    def counted() -> float:
        value = REGISTRY.get_sample_value(
            "commentsvc_comment_events_total", {"type": "comment.submitted"}
        )
        return value or 0.0

    before = counted()
    submit()
    submit(body="Hello again")
    assert counted() == before + 2
