"""``Idempotency-Key`` (DESIGN §7): a submission sent again with the key of an earlier one
gets that one's answer, and nothing more is stored; the key with another comment is
refused.

The key is stored on the comment itself, under a unique index per site: a new key costs
nothing more than that index, and of two sends of one key at once the second waits on the
first's index entry (PostgreSQL; SQLite has one writer), then fails to insert and answers
with the comment the first stored.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from commentsvc.models import Comment, Page
from commentsvc.services.errors import Invalid

FIELD = "Idempotency-Key"

#: The comment stored under a key, with what tells whether a send is the same comment.
_BY_KEY = (
    sa.select(
        Comment.id,
        Page.key.label("page"),
        Comment.parent_id,
        Comment.author_name,
        Comment.author_email,
        Comment.author_url,
        Comment.body,
        Comment.body_html,
        Comment.status,
        Comment.created_at,
    )
    .join(Page, Page.id == Comment.page_id)
    .where(
        Comment.site_id == sa.bindparam("site_id"),
        Comment.idempotency_key == sa.bindparam("key"),
    )
)
#: What must be the same for a send to be the same comment.
_SAME = ("page", "parent_id", "author_name", "author_email", "author_url", "body")


def stored_under(
    connection: sa.Connection, site_id: int, key: str, sent: dict[str, Any]
) -> sa.Row[Any] | None:
    """The comment stored under ``key`` on a site, if ``sent`` (the submission's fields by
    name) is the same comment; None if no comment has the key; Invalid if another has."""
    earlier = connection.execute(_BY_KEY, {"site_id": site_id, "key": key}).first()
    if earlier is None:
        return None
    if any(getattr(earlier, name) != sent.get(name) for name in _SAME):
        raise Invalid.on(FIELD, "This key was sent before with another comment; use a new key.")
    return earlier
