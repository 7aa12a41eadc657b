"""Rendering a site's stored comments again, after its markup changed (DESIGN §10).

A body is rendered once, when it is written, and its HTML stored beside it; a site that
switches between ``text`` and ``markdown`` has its stored comments rendered again here. In
batches: each is read, rendered outside any transaction (rendering is the slow part, and a
write transaction on SQLite holds the one write lock), then stored in a short write
transaction of its own, which bumps the version of every page whose HTML changed so that
cached threads are read again. Only a comment still as it was read is written (its body and
HTML compared in the update), so an edit made meanwhile is never paired with HTML rendered
from the body it replaced; and only in the markup the site still has, else the batch is
rendered again. Running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from commentsvc.extensions import db, read_connection, write_transaction
from commentsvc.markup import Markup, render
from commentsvc.models import Comment, Page, Site
from commentsvc.services.errors import NotFound
from commentsvc.services.sites import markup_of

#: Comments read, rendered and stored together.
BATCH_SIZE = 200

_SITE_ID = sa.select(Site.id).where(Site.slug == sa.bindparam("slug"))
_SETTINGS = sa.select(Site.settings).where(Site.id == sa.bindparam("site_id"))
_BATCH = (
    sa.select(Comment.id, Comment.page_id, Comment.body, Comment.body_html)
    .where(Comment.site_id == sa.bindparam("site_id"), Comment.id > sa.bindparam("after"))
    .order_by(Comment.id)
    .limit(sa.bindparam("limit"))
)
_STORE = (
    sa.update(Comment)
    .where(
        Comment.id == sa.bindparam("comment_id"),
        Comment.body == sa.bindparam("rendered_body"),
        Comment.body_html == sa.bindparam("stored_html"),
    )
    .values(body_html=sa.bindparam("new_html"))
)
_BUMP = sa.update(Page).where(Page.id == sa.bindparam("page_id")).values(version=Page.version + 1)


def rerender_comments(slug: str) -> int:
    """Render every stored comment of the site ``slug`` again in the site's markup, storing
    each whose HTML changed; returns how many did (0 when run again)."""
    with read_connection() as connection:
        site_id = connection.execute(_SITE_ID, {"slug": slug}).scalar()
    if site_id is None:
        raise NotFound(f"there is no site {slug!r}")
    changed = 0
    after = 0
    while True:
        with read_connection() as connection:
            markup = markup_of(connection.execute(_SETTINGS, {"site_id": site_id}).scalar())
            parameters = {"site_id": site_id, "after": after, "limit": BATCH_SIZE}
            rows = connection.execute(_BATCH, parameters).all()
        if not rows:
            return changed
        stale = [(row, html) for row in rows if (html := render(row.body, markup)) != row.body_html]
        stored = _store(site_id, markup, stale) if stale else 0
        if stored is None:
            continue  # the site's markup changed meanwhile: this batch again, in the new one
        changed += stored
        after = rows[-1].id


def _store(site_id: int, markup: Markup, stale: Sequence[tuple[sa.Row[Any], str]]) -> int | None:
    """Store the HTML rendered in ``markup`` of each comment still as it was read, and bump
    their pages' versions; None (nothing stored) when the site's markup is no longer that."""
    with write_transaction():
        connection = db.session.connection()
        if markup_of(connection.execute(_SETTINGS, {"site_id": site_id}).scalar()) != markup:
            return None
        stored = 0
        pages: set[int] = set()
        for row, html in stale:
            parameters = {
                "comment_id": row.id,
                "rendered_body": row.body,
                "stored_html": row.body_html,
                "new_html": html,
            }
            if connection.execute(_STORE, parameters).rowcount:
                stored += 1
                pages.add(row.page_id)
        # One by one in id order, the order every moderation locks pages in: no deadlock.
        for page_id in sorted(pages):
            connection.execute(_BUMP, {"page_id": page_id})
    return stored
