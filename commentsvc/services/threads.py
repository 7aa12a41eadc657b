"""What readers see: a page's thread (cached per page version), one comment, counts."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cachetools import LRUCache
from flask import jsonify
from werkzeug.http import generate_etag

from commentsvc._meta import __version__
from commentsvc.caching import worker_cache
from commentsvc.extensions import db, read_connection
from commentsvc.models import MAX_ID, Comment, Page
from commentsvc.services.page_states import PageState, kept_answer, page_state, page_states
from commentsvc.services.visibility import PUBLIC_COLUMNS, PUBLISHED, published

_CACHE = "threads"
_PAGE_STATE = sa.select(Page.id, Page.version, Page.approved_count).where(
    Page.site_id == sa.bindparam("site_id"), Page.key == sa.bindparam("key")
)
#: Ids start at 1, so the first page is the one "after 0".
#: A slice of a page's approved comments in id order (the JSON thread's, the fragment's).
THREAD_SLICE = (
    sa.select(*PUBLIC_COLUMNS)
    .where(
        Comment.page_id == sa.bindparam("page_id"),
        PUBLISHED,
        Comment.id > sa.bindparam("after_id"),
    )
    .order_by(Comment.id)
    .limit(sa.bindparam("limit"))
)
#: Orders of a thread's top-level comments (DESIGN §10); replies are always oldest first.
SORTS = ("oldest", "newest")
_REPLIED = sa.orm.aliased(Comment)
#: A comment that starts a thread as readers see it: no parent, or one not published.
_ROOT = sa.or_(
    Comment.parent_id.is_(None),
    ~sa.exists().where(_REPLIED.id == Comment.parent_id, published(_REPLIED)),
)
#: ``sort=newest``: a slice of top-level comments, newest first, before a cursor.
_NEWEST_ROOTS = (
    sa.select(Comment.id)
    .where(
        Comment.page_id == sa.bindparam("page_id"),
        PUBLISHED,
        _ROOT,
        Comment.id <= sa.bindparam("through_id"),
    )
    .order_by(Comment.id.desc())
    .limit(sa.bindparam("limit"))
)


@dataclass(frozen=True)
class ThreadRequest:
    """Which slice of which page's thread: up to ``limit`` comments after ``after_id``."""

    site_id: int
    key: str
    after_id: int | None
    limit: int
    #: ``oldest``: every comment in id order, ``limit`` of them after the cursor;
    #: ``newest``: ``limit`` top-level comments newest first, before the cursor, each with
    #: all its replies (oldest first).
    sort: str = "oldest"
    #: The site's markup, which the answer names: a change of it changes the ETag even on a
    #: page none of whose comments a re-render changed.
    markup: str = "text"


@dataclass(frozen=True)
class ThreadRows:
    """A slice of a thread as read: the page's approved total, its comments, whether more
    follow."""

    total: int
    comments: Sequence[sa.Row[Any]]
    has_more: bool
    #: The id the next slice's cursor names (the last comment's, or, newest first, the
    #: last top-level comment's).
    cursor_id: int | None = None


@dataclass(frozen=True)
class ThreadPage:
    """A thread slice rendered, and its ETag."""

    tag: str
    body: bytes


def slice_tag(page: PageState | sa.Row[Any] | None, slice_id: str) -> str:
    """The ETag of a rendered slice of a page's thread: this release, the page's version
    (its id and version, or none), and the slice (see :func:`slice_key`)."""
    version = f"{page.id}.{page.version}" if page else "0.0"
    raw = "|".join([__version__, version, slice_id])
    return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:20]


def slice_key(*parts: object) -> str:
    """Which slice of a page's thread, rendered how: whatever the rendering depends on but
    the page's version."""
    return "|".join(map(str, parts))


def _slice(request: ThreadRequest) -> str:
    """A JSON slice: what the request chose (cursor, limit, order) and the site set
    (markup)."""
    return slice_key(request.after_id, request.limit, request.sort, request.markup)


def thread_tag(request: ThreadRequest) -> str:
    """The ETag the slice has now, from the page's state (for a 304: no query while the
    database has not changed, see :mod:`~.page_states`)."""
    return slice_tag(page_state(request.site_id, request.key), _slice(request))


#: A cached slice's key: the site's id, the page key, the slice (:func:`slice_key`).
CacheKey = tuple[int, str, str]
#: A cached slice: its ETag, its body, and what it costs in memory (see :func:`entry_size`).
CacheEntry = tuple[str, bytes, int]

#: What one cached slice costs beyond its body, page key and slice, in bytes: the key's
#: tuple, the ETag string, the entry's tuple and size, and the cache's three dict entries
#: for it (its data, its sizes, its LRU order). Measured with tracemalloc
#: (tests/services/test_caching.py).
ENTRY_OVERHEAD = 400


def entry_size(key: CacheKey, body: bytes) -> int:
    """What a cached slice costs in memory, in bytes, so that ``THREAD_CACHE_MB`` is the
    budget of the whole cache, not of the bodies alone."""
    return sys.getsizeof(body) + sys.getsizeof(key[1]) + sys.getsizeof(key[2]) + ENTRY_OVERHEAD


def _entry_cost(entry: CacheEntry) -> int:
    return entry[2]


def _make_cache(config: Mapping[str, Any]) -> LRUCache[CacheKey, CacheEntry]:
    return LRUCache(maxsize=config["THREAD_CACHE_MB"] * 1024 * 1024, getsizeof=_entry_cost)


def rendered_cache() -> LRUCache[CacheKey, CacheEntry]:
    """This worker's cache of rendered thread slices (JSON, and HTML fragments), within
    ``THREAD_CACHE_MB``: one entry per slice, holding the version it was rendered at. A
    slice rendered again at a newer version takes its place, so the budget holds the slices
    read now, not the versions they had."""
    return worker_cache(_CACHE, _make_cache)


def kept_slice(key: CacheKey, tag: str) -> bytes | None:
    """The body of slice ``key`` as of ``tag``, if this worker keeps it."""
    entry = rendered_cache().get(key)
    return entry[1] if entry is not None and entry[0] == tag else None


def keep_slice(key: CacheKey, tag: str, body: bytes) -> None:
    """Keep ``body``, slice ``key`` as of ``tag``, in place of an older version of it."""
    cache = rendered_cache()
    size = entry_size(key, body)
    if size <= cache.maxsize:
        cache[key] = (tag, body, size)


def thread_page(
    request: ThreadRequest, tag: str, render: Callable[[ThreadRows], bytes]
) -> ThreadPage:
    """The slice rendered by ``render``, as of ``tag`` (from :func:`thread_tag`).

    A page's version changes with every change to what readers see of it, so a slice
    rendered at one version is kept by this worker (up to ``THREAD_CACHE_MB``) and served
    again until the version moves on. A page that does not exist is not kept: any key can
    be asked for, and would push the real pages out.
    """
    key = (request.site_id, request.key, _slice(request))
    body = kept_slice(key, tag)
    if body is not None:
        return ThreadPage(tag, body)
    page, rows = _read(request)
    tag = slice_tag(page, key[2])  # the state the rows were read in
    body = render(rows)
    if page is not None:
        keep_slice(key, tag, body)
    return ThreadPage(tag, body)


def _read(request: ThreadRequest) -> tuple[sa.Row[Any] | None, ThreadRows]:
    """A page's state and its slice of approved comments, oldest first, from one snapshot."""
    page = db.session.execute(_PAGE_STATE, {"site_id": request.site_id, "key": request.key}).first()
    if page is None:
        return None, ThreadRows(0, [], False)
    if request.sort == "newest":
        return page, _newest(page, request)
    parameters = {"page_id": page.id, "after_id": request.after_id or 0, "limit": request.limit + 1}
    rows = db.session.execute(THREAD_SLICE, parameters).all()
    more = len(rows) > request.limit
    comments = rows[: request.limit]
    return page, ThreadRows(page.approved_count, comments, more, comments[-1].id if more else None)


def _newest(page: sa.Row[Any], request: ThreadRequest) -> ThreadRows:
    """Top-level comments newest first, each followed by its published replies (and
    theirs), oldest first."""
    parameters = {
        "page_id": page.id,
        # Ids are 32-bit on PostgreSQL: the first slice runs through the largest there is.
        "through_id": request.after_id - 1 if request.after_id else MAX_ID,
        "limit": request.limit + 1,
    }
    roots = db.session.scalars(_NEWEST_ROOTS, parameters).all()
    more = len(roots) > request.limit
    roots = roots[: request.limit]
    if not roots:
        return ThreadRows(page.approved_count, [], False)
    tree = (
        sa.select(Comment.id.label("id"), Comment.id.label("root"))
        .where(Comment.id.in_(roots))
        .cte("tree", recursive=True)
    )
    tree = tree.union_all(
        sa.select(Comment.id, tree.c.root)
        .join(tree, Comment.parent_id == tree.c.id)
        .where(Comment.page_id == page.id, PUBLISHED)
    )
    rows = db.session.execute(
        sa.select(*PUBLIC_COLUMNS)
        .join(tree, tree.c.id == Comment.id)
        .order_by(tree.c.root.desc(), Comment.id)
    ).all()
    return ThreadRows(page.approved_count, rows, more, roots[-1] if more else None)


def find_published_comment(site_id: int, comment_id: int) -> sa.Row[Any] | None:
    """One approved comment of a site, with its page key, or None."""
    statement = (
        sa.select(*PUBLIC_COLUMNS, Page.key)
        .join(Page, Page.id == Comment.page_id)
        .where(
            Comment.id == comment_id,
            Comment.site_id == site_id,
            PUBLISHED,
        )
    )
    with read_connection() as connection:
        return connection.execute(statement).first()


@dataclass(frozen=True)
class Counts:
    """The counts answer: its JSON body and its ETag."""

    body: bytes
    tag: str


def counts_answer(site_id: int, keys: Iterable[str]) -> Counts:
    """The JSON counts of the given pages, and its ETag: an article list asks for the same
    pages again and again, so the answer is kept until the database changes."""
    wanted = tuple(dict.fromkeys(keys))

    def make() -> Counts:
        body = jsonify({"counts": approved_counts(site_id, wanted)}).get_data()
        return Counts(body, generate_etag(body))

    return kept_answer(("counts", site_id, wanted), make)


def approved_counts(site_id: int, keys: Iterable[str]) -> dict[str, int]:
    """Approved comment counts of the given pages (0 for pages nobody commented on)."""
    return {
        key: state.approved_count if state is not None else 0
        for key, state in page_states(site_id, keys).items()
    }
