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

The site lookup, the comment query and the chunked read are shared with the WordPress
export (:mod:`commentsvc.imports.wxr`).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from contextlib import contextmanager
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


def find_site(slug: str) -> Site:
    """The site ``slug``; NotFound, in the words the command prints, when there is none."""
    site = db.session.scalar(sa.select(Site).where(Site.slug == slug))
    if site is None:
        raise NotFound(f"There is no site {slug!r}.")
    return site


def site_comments(site: Site, *columns: Any) -> sa.Select[Any]:
    """A query of ``columns`` of the site's comments (every status), to be ordered."""
    return sa.select(*columns).select_from(Comment).where(Comment.site_id == site.id)


@contextmanager
def rows(statement: sa.Select[Any]) -> Iterator[Iterator[sa.Row[Any]]]:
    """The rows of ``statement``, fetched :data:`CHUNK` at a time (on a server-side cursor
    where the database has one), so an export holds a chunk, never the whole site; the
    cursor is closed when the block ends, read to the end or not."""
    result = db.session.execute(statement.execution_options(yield_per=CHUNK))
    try:
        yield iter(result)
    finally:
        result.close()


@contextmanager
def reading() -> Iterator[None]:
    """The export's read transaction, ended when the export ends or is abandoned (its
    cursor closed, nothing held open while the command writes or exits)."""
    try:
        yield
    finally:
        db.session.rollback()


def export_jsonl(slug: str) -> Generator[str, None, None]:
    """The lines of the site's export. Closing it early ends its read transaction."""
    with reading():
        site = find_site(slug)
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
        with rows(pages) as found:
            for page in found:
                keys[page.id] = page.key
                yield _line({"type": "page", "key": page.key, "url": page.url, "title": page.title})
        columns = [getattr(Comment, name) for name in _COMMENT_FIELDS]
        comments = site_comments(site, Comment.page_id, *columns).order_by(Comment.id)
        with rows(comments) as found:
            for row in found:
                fields = row._mapping
                document = {"type": "comment", "page": keys[fields["page_id"]]}
                document.update({name: _value(fields[name]) for name in _COMMENT_FIELDS})
                yield _line(document)
