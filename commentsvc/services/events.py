"""The event seam: every use case that changes a comment announces it here, once.

:func:`announce` runs inside the use case's transaction. Subscribers of
:data:`comment_changed` act in that same transaction (what they write commits or rolls back
with the change: the outbox of DESIGN §8 belongs here); subscribers of
:data:`comment_committed` hear of it only after the commit (counters, caches), and never of
a change that was rolled back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from blinker import Namespace
from sqlalchemy import event
from sqlalchemy.orm import Session

from commentsvc.extensions import db
from commentsvc.models import CommentStatus

_signals = Namespace()
#: Sent inside the transaction of the change: ``sender`` is the :class:`CommentEvent`.
comment_changed = _signals.signal("comment-changed")
#: Sent after that transaction committed, once per event, in order.
comment_committed = _signals.signal("comment-committed")

_PENDING = "commentsvc.events.pending"
#: The actor of changes no moderator made (the abuse rules, a trusted author's comment).
SYSTEM_ACTOR = "system"


class EventType(enum.StrEnum):
    """What happened to a comment (the outbox's and webhooks' event names)."""

    SUBMITTED = "comment.submitted"
    APPROVED = "comment.approved"
    REJECTED = "comment.rejected"
    SPAM = "comment.spam"
    #: Back to pending after a decision (a moderator's, or an undo): off the public page.
    REQUEUED = "comment.requeued"
    DELETED = "comment.deleted"
    EDITED = "comment.edited"


#: The event a change of status to each status is.
STATUS_EVENT = {
    CommentStatus.PENDING: EventType.REQUEUED,
    CommentStatus.APPROVED: EventType.APPROVED,
    CommentStatus.REJECTED: EventType.REJECTED,
    CommentStatus.SPAM: EventType.SPAM,
}


@dataclass(frozen=True)
class CommentEvent:
    """One change to one comment; ``actor`` is a moderator's email, ``system``, or None for
    the commenter; ``reasons``: the abuse rules that held or refused a submission (DESIGN §7)."""

    type: EventType
    comment_id: int
    site_id: int
    page_id: int
    status: CommentStatus | None
    actor: str | None
    at: datetime
    reasons: tuple[str, ...] = ()
    #: The comment as it was, for a change after which it is gone (``comment.deleted``):
    #: the moderation API's view of it, taken before the delete.
    data: Mapping[str, Any] | None = None


def announce(change: CommentEvent) -> None:
    """Tell every subscriber about ``change``; call inside the change's transaction."""
    comment_changed.send(change)
    session = db.session()
    session.info.setdefault(_PENDING, []).append(change)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    for change in session.info.pop(_PENDING, ()):
        comment_committed.send(change)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
