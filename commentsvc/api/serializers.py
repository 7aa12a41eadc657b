"""Allow-lists of what each audience sees. Emails only ever leave through ``moderation_*``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from commentsvc.models import Comment, ModerationEvent
from commentsvc.services.comments import StoredComment


def isotime(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def public_comment(row: sa.Row[Any] | Comment | StoredComment) -> dict[str, Any]:
    """A comment as readers see it: no email, no client facts."""
    return {
        "id": row.id,
        "parent_id": row.parent_id,
        "author_name": row.author_name,
        "author_url": row.author_url,
        "body": row.body,
        "body_html": row.body_html,
        "created_at": isotime(row.created_at),
    }


def submitted_comment(comment: StoredComment) -> dict[str, Any]:
    """The answer to a submission: what the submitter sent, as stored, and its status."""
    return {**public_comment(comment), "status": comment.status.value, "page": comment.page}


def moderation_comment(comment: Comment) -> dict[str, Any]:
    """A comment as moderators see it, with email and client facts."""
    page = comment.page
    return {
        "id": comment.id,
        "site": comment.site.slug,
        "page": {"key": page.key, "url": page.url, "title": page.title},
        "parent_id": comment.parent_id,
        "status": comment.status.value,
        "body": comment.body,
        "body_html": comment.body_html,
        "author_name": comment.author_name,
        "author_email": comment.author_email,
        "author_url": comment.author_url,
        "created_at": isotime(comment.created_at),
        "updated_at": isotime(comment.updated_at),
        "moderated_at": isotime(comment.moderated_at),
        "moderated_by": comment.moderated_by.email if comment.moderated_by else None,
        "ip_prefix": comment.ip_prefix,
        "user_agent": comment.user_agent,
    }


def moderation_event(event: ModerationEvent) -> dict[str, Any]:
    """One audit log entry."""
    return {
        "id": event.id,
        "comment_id": event.comment_id,
        "site_id": event.site_id,
        "moderator": event.actor,
        "action": event.action.value,
        "from_status": event.from_status.value if event.from_status else None,
        "to_status": event.to_status.value if event.to_status else None,
        "note": event.note,
        "created_at": isotime(event.created_at),
    }
