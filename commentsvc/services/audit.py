"""The audit log: every moderation event, kept after the comment it describes is gone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from commentsvc.extensions import db
from commentsvc.models import ModerationEvent, Site, is_row_id


@dataclass(frozen=True)
class EventFilter:
    """What the audit log is narrowed to."""

    comment_id: int | None = None
    moderator: str | None = None
    site: str | None = None


def comment_events(comment_id: int) -> Sequence[ModerationEvent]:
    """The audit events of one comment, oldest first."""
    return db.session.scalars(
        sa.select(ModerationEvent)
        .where(ModerationEvent.comment_id == comment_id)
        .order_by(ModerationEvent.id)
    ).all()


def list_events(
    scope: set[int] | None, filters: EventFilter, before_id: int | None, limit: int
) -> Sequence[ModerationEvent]:
    """Up to ``limit + 1`` audit events in scope, newest first (the extra one tells whether
    a next page exists)."""
    if filters.comment_id is not None and not is_row_id(filters.comment_id):
        return []
    statement = sa.select(ModerationEvent)
    if scope is not None:
        statement = statement.where(ModerationEvent.site_id.in_(scope))
    if filters.comment_id is not None:
        statement = statement.where(ModerationEvent.comment_id == filters.comment_id)
    if filters.moderator is not None:
        statement = statement.where(ModerationEvent.actor == filters.moderator.lower())
    if filters.site is not None:
        site_id = sa.select(Site.id).where(Site.slug == filters.site).scalar_subquery()
        statement = statement.where(ModerationEvent.site_id == site_id)
    if before_id is not None:
        statement = statement.where(ModerationEvent.id < before_id)
    statement = statement.order_by(ModerationEvent.id.desc()).limit(limit + 1)
    return db.session.scalars(statement).all()
