"""Allow-lists of what each audience sees. Emails only ever leave through ``moderation_*``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from commentsvc.models import BlocklistEntry, ModerationEvent
from commentsvc.pagination import encode_cursor
from commentsvc.services.submissions import StoredComment
from commentsvc.services.threads import ThreadRows


def isotime(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def public_comment_json(row: sa.Row[Any] | StoredComment) -> dict[str, Any]:
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


def public_thread_json(key: str, rows: ThreadRows, markup: str = "text") -> bytes:
    """A slice of a page's thread as readers get it, encoded; with the site's ``markup``,
    so the widget knows whether to offer a preview."""
    comments = rows.comments
    document = {
        "page": key,
        "markup": markup,
        "total": rows.total,
        "comments": [public_comment_json(row) for row in comments],
        "next_cursor": encode_cursor(rows.cursor_id) if rows.cursor_id is not None else None,
    }
    encoded: str = current_app.json.dumps(document)
    return encoded.encode()


def submitted_comment(comment: StoredComment) -> dict[str, Any]:
    """The answer to a submission (and to its author's edit): what was sent, as stored, its
    status, and the edit token (shown once: only the 201 carries it) with its deadline."""
    until = comment.editable_until
    return {
        **public_comment_json(comment),
        "status": comment.status.value,
        "page": comment.page,
        "edit_token": comment.edit_token,
        "editable_until": isotime(until) if until is not None else None,
    }


def moderation_comment(row: sa.Row[Any]) -> dict[str, Any]:
    """A comment as moderators see it, with email and client facts.

    ``row`` is a row of :data:`commentsvc.services.listing.LISTING_COLUMNS`, read through its
    mapping (a row's attributes cost several times more, at 17 of them a comment).
    """
    fields = row._mapping
    return {
        "id": fields["id"],
        "site": fields["site_slug"],
        "page": {
            "key": fields["page_key"],
            "url": fields["page_url"],
            "title": fields["page_title"],
        },
        "parent_id": fields["parent_id"],
        "status": fields["status"].value,
        "body": fields["body"],
        "body_html": fields["body_html"],
        "author_name": fields["author_name"],
        "author_email": fields["author_email"],
        "author_url": fields["author_url"],
        "created_at": isotime(fields["created_at"]),
        "updated_at": isotime(fields["updated_at"]),
        "moderated_at": isotime(fields["moderated_at"]),
        "moderated_by": fields["moderated_by_email"],
        "ip_prefix": fields["ip_prefix"],
        "user_agent": fields["user_agent"],
        "spam_score": fields["spam_score"],
        "spam_reasons": fields["spam_reasons"].split(),
    }


def blocklist_entry_json(entry: BlocklistEntry) -> dict[str, Any]:
    """A blocklist entry; ``site`` is None for an entry that holds on every site."""
    return {
        "id": entry.id,
        "kind": entry.kind.value,
        "value": entry.value,
        "site": entry.site.slug if entry.site is not None else None,
        "created_by": entry.created_by,
        "created_at": isotime(entry.created_at),
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
