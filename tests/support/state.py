"""What the tests assert on in the database: statuses, audit events and whole snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from commentsvc.extensions import db
from commentsvc.models import (
    ApiToken,
    Comment,
    CommentStatus,
    ModerationEvent,
    Moderator,
    Page,
    Site,
    moderator_sites,
)

# The two statuses nearly every panel test names.
PENDING = CommentStatus.PENDING
APPROVED = CommentStatus.APPROVED


def status_of(app: Flask, comment_id: int) -> CommentStatus | None:
    """A comment's status; None once it is deleted."""
    with app.app_context():
        return db.session.scalar(sa.select(Comment.status).where(Comment.id == comment_id))


def events_of(app: Flask, comment_id: int) -> list[tuple[str, str | None, str | None, str | None]]:
    """(action, from, to, note) of a comment's audit events, oldest first."""
    with app.app_context():
        return [
            (
                event.action.value,
                event.from_status and event.from_status.value,
                event.to_status and event.to_status.value,
                event.note,
            )
            for event in db.session.scalars(
                sa.select(ModerationEvent)
                .where(ModerationEvent.comment_id == comment_id)
                .order_by(ModerationEvent.id)
            )
        ]


def snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a panel form could change (not login bookkeeping)."""
    queries: dict[str, sa.Select[Any]] = {
        "comments": sa.select(Comment.id, Comment.status, Comment.body, Comment.moderated_by_id),
        "events": sa.select(ModerationEvent.id, ModerationEvent.action, ModerationEvent.note),
        "pages": sa.select(Page.id, Page.approved_count, Page.version),
        "sites": sa.select(Site.id, Site.slug, Site.name, Site.origins, Site.settings),
        "moderators": sa.select(
            Moderator.id,
            Moderator.email,
            Moderator.password_hash,
            Moderator.is_active,
            Moderator.is_admin,
            Moderator.all_sites,
        ),
        "moderator_sites": sa.select(moderator_sites.c.moderator_id, moderator_sites.c.site_id),
        "tokens": sa.select(ApiToken.id, ApiToken.name, ApiToken.token_hash, ApiToken.revoked_at),
    }
    with app.app_context():
        return {
            name: sorted(tuple(row) for row in db.session.execute(query))
            for name, query in queries.items()
        }


def database_bytes(app: Flask) -> bytes:
    """What the database stores: the raw bytes of a SQLite file and its WAL; on a server whose
    files are out of reach (PostgreSQL), every row of every table, as text."""
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(
            candidate.read_bytes()
            for candidate in (path, path.with_name(path.name + "-wal"))
            if candidate.exists()
        )
    with app.app_context():
        metadata = sa.MetaData()
        metadata.reflect(db.engine)
        return b"".join(
            repr(tuple(row)).encode()
            for table in metadata.sorted_tables
            for row in db.session.execute(sa.select(table))
        )
