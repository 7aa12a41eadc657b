"""``commentsvc export``: a site's pages and comments as JSON Lines (DESIGN §9), lossless,
streamed (memory flat in the number of comments).

Format ``commentsvc`` version 1, one JSON object per line:

1. a header: ``{"format": "commentsvc", "version": 1, "site": {"slug", "name", "origins"},
   "exported_at"}``;
2. a line per page that has comments: ``{"type": "page", "key", "url", "title"}``;
3. a line per comment, oldest first: ``{"type": "comment", "id", "page" (its key),
   "parent_id", "status", "body", "author_name", "author_email", "author_url",
   "created_at", "updated_at", "moderated_at", "spam_score", "spam_reasons",
   "notify_replies", "ip_prefix", "user_agent"}``.

Times are ISO 8601 UTC. ``commentsvc import commentsvc FILE --site SLUG`` reads it back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from commentsvc.extensions import db
from commentsvc.models import Comment, Page, Site, utcnow
from commentsvc.services.errors import NotFound

FORMAT = "commentsvc"
VERSION = 1
#: Rows read from the database at a time.
CHUNK = 2000

_COMMENT_FIELDS = (
    "id",
    "parent_id",
    "status",
    "body",
    "author_name",
    "author_email",
    "author_url",
    "created_at",
    "updated_at",
    "moderated_at",
    "spam_score",
    "spam_reasons",
    "notify_replies",
    "ip_prefix",
    "user_agent",
)


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if hasattr(value, "value"):  # a status
        return value.value
    return value


def _line(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"


def export_jsonl(slug: str) -> Iterator[str]:
    """The lines of the site's export."""
    site = db.session.scalar(sa.select(Site).where(Site.slug == slug))
    if site is None:
        raise NotFound(f"There is no site {slug!r}.")
    yield _line(
        {
            "format": FORMAT,
            "version": VERSION,
            "site": {"slug": site.slug, "name": site.name, "origins": list(site.origins)},
            "exported_at": _value(utcnow()),
        }
    )
    pages = (
        sa.select(Page.id, Page.key, Page.url, Page.title)
        .where(Page.site_id == site.id, sa.exists().where(Comment.page_id == Page.id))
        .order_by(Page.id)
    )
    keys: dict[int, str] = {}
    for page in db.session.execute(pages.execution_options(yield_per=CHUNK)):
        keys[page.id] = page.key
        yield _line({"type": "page", "key": page.key, "url": page.url, "title": page.title})
    columns = [getattr(Comment, name) for name in _COMMENT_FIELDS]
    comments = (
        sa.select(Comment.page_id, *columns)
        .where(Comment.site_id == site.id)
        .order_by(Comment.id)
        .execution_options(yield_per=CHUNK)
    )
    for row in db.session.execute(comments):
        fields = row._mapping
        document = {"type": "comment", "page": keys[fields["page_id"]]}
        document.update({name: _value(fields[name]) for name in _COMMENT_FIELDS})
        yield _line(document)
    db.session.rollback()
