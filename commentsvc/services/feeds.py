"""Atom feeds of approved comments (DESIGN §8): a site's newest, or one page's newest.

A feed holds the :data:`ENTRIES` newest comments that :data:`~.visibility.PUBLISHED`
selects, read through :data:`~.visibility.PUBLIC_COLUMNS` (no email can reach it), newest
first. Its ETag is a hash of the feed as written: strong, and it changes exactly when
something a reader sees does. Every time in it comes from the data (never "now"), so the
same comments give the same bytes and the same tag.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from commentsvc.extensions import db
from commentsvc.models import Comment, Page, Site
from commentsvc.security import WebUrl, web_url
from commentsvc.services.errors import NotFound
from commentsvc.services.sites import PublicSite
from commentsvc.services.visibility import PUBLIC_COLUMNS, PUBLISHED

if TYPE_CHECKING:
    from feedgen.feed import FeedGenerator

#: The feeds' media type (RFC 4287), as served.
ATOM = "application/atom+xml; charset=utf-8"
#: How many of the newest approved comments a feed holds.
ENTRIES = 50
#: The name an entry's author has when the comment has none (Atom requires one).
ANONYMOUS = "Anonymous"

_ENTRY_COLUMNS = (*PUBLIC_COLUMNS, Page.key, Page.url, Page.title)
#: Newest first by id, on the indexes ``(site_id, status, id)`` and ``(page_id, status, id)``.
_SITE_ENTRIES = (
    sa.select(*_ENTRY_COLUMNS)
    .join(Page, Page.id == Comment.page_id)
    .where(Comment.site_id == sa.bindparam("site_id"), PUBLISHED)
    .order_by(Comment.id.desc())
    .limit(ENTRIES)
)
_PAGE_ENTRIES = (
    sa.select(*_ENTRY_COLUMNS)
    .join(Page, Page.id == Comment.page_id)
    .where(Comment.page_id == sa.bindparam("page_id"), PUBLISHED)
    .order_by(Comment.id.desc())
    .limit(ENTRIES)
)
_SITE = sa.select(Site.name, Site.created_at).where(Site.id == sa.bindparam("site_id"))
_PAGE = sa.select(Page.id, Page.key, Page.url, Page.title).where(
    Page.site_id == sa.bindparam("site_id"), Page.key == sa.bindparam("key")
)
#: What XML 1.0 cannot hold (control characters, lone surrogates, U+FFFE and U+FFFF): text
#: stored before a rule refused it, or imported, must not make a whole feed unwritable.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class FeedRequest:
    """Which feed: a site's (``key`` None) or one page's; ``self_url`` is the feed's own
    URL, which is also its id, and whose host names the entries' ``tag:`` ids."""

    site: PublicSite
    key: str | None
    self_url: str


@dataclass(frozen=True)
class Feed:
    """A feed as written, and its ETag."""

    tag: str
    body: bytes


def atom_feed(request: FeedRequest) -> Feed:
    """The feed ``request`` names, from one snapshot. A page key nobody commented on gives
    an empty feed, as its thread is empty (a reader may subscribe before the first comment)."""
    site_id = request.site.id
    site = db.session.execute(_SITE, {"site_id": site_id}).first()
    if site is None:  # removed since this worker cached it
        raise NotFound(f"There is no site {request.site.slug!r}.")
    page: sa.Row[Any] | None = None
    rows: Sequence[sa.Row[Any]] = []
    if request.key is None:
        rows = db.session.execute(_SITE_ENTRIES, {"site_id": site_id}).all()
    else:
        page = db.session.execute(_PAGE, {"site_id": site_id, "key": request.key}).first()
        if page is not None:
            rows = db.session.execute(_PAGE_ENTRIES, {"page_id": page.id}).all()
    body = _write(request, site, page, rows)
    return Feed(hashlib.sha1(body, usedforsecurity=False).hexdigest()[:20], body)


def _write(
    request: FeedRequest,
    site: sa.Row[Any],
    page: sa.Row[Any] | None,
    rows: Sequence[sa.Row[Any]],
) -> bytes:
    # Here, not at import: feedgen brings lxml and dateutil (about 6 MiB in each worker),
    # which only a site whose feeds are read needs.
    from feedgen.feed import FeedGenerator

    generator = FeedGenerator()
    generator.id(_xml(request.self_url))
    if request.key is None:
        generator.title(_xml(f"Comments on {site.name}"))
    else:
        title = page.title if page is not None and page.title else request.key
        generator.title(_xml(f"Comments on {title} ({site.name})"))
        alternate = _page_url(request.site, request.key, page.url if page else None)
        if alternate is not None:
            generator.link(href=_xml(str(alternate)), rel="alternate", type="text/html")
    generator.link(href=_xml(request.self_url), rel="self", type="application/atom+xml")
    generator.generator("commentsvc")
    # The newest comment's time; an empty feed's is fixed too (the site's creation).
    generator.updated(max((row.created_at for row in rows), default=site.created_at))
    authority = urlsplit(request.self_url).hostname or "localhost"
    for row in rows:
        _add_entry(generator, request.site, authority, row)
    body: bytes = generator.atom_str(pretty=False, encoding="UTF-8")
    return body


def _add_entry(
    generator: FeedGenerator, site: PublicSite, authority: str, row: sa.Row[Any]
) -> None:
    entry = generator.add_entry(order="append")
    created: datetime = row.created_at
    # RFC 4151: the service's host, the day the comment was made, the comment: unique and
    # stable whatever happens to the page's URL later.
    entry.id(f"tag:{authority},{created.astimezone(UTC):%Y-%m-%d}:{site.slug}/comments/{row.id}")
    name = _xml(row.author_name).strip() or ANONYMOUS
    entry.title(_xml(f"{name} on {row.title or row.key}"))
    author = {"name": name}
    author_url = web_url(row.author_url)
    if author_url is not None:
        author["uri"] = _xml(str(author_url))
    entry.author(author)
    entry.published(created)
    entry.updated(created)
    entry.content(_xml(row.body_html), type="html")
    page_url = _page_url(site, row.key, row.url)
    if page_url is not None:
        permalink = replace(page_url, fragment=f"comment-{row.id}")
        entry.link(href=_xml(str(permalink)), rel="alternate", type="text/html")


def _page_url(site: PublicSite, key: str, url: str | None) -> WebUrl | None:
    """Where a page is read: its URL when known (it was on the site's origins when stored),
    else its key when that is a URL on one of the site's origins; None when neither (a key
    such as a path says nothing of the host)."""
    known = web_url(url)
    if known is not None:
        return known
    from_key = web_url(key)
    return from_key if from_key is not None and from_key.origin in site.origins else None


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)
