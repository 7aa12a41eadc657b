"""A page's thread as server-rendered markup (DESIGN §10): read, nested as the widget nests
it, and kept rendered per page version.

A slice is read as the JSON thread reads one (:mod:`~commentsvc.services.threads`): the
approved comments of one page, oldest first by id, ``limit`` of them after ``after_id``,
through :data:`~.visibility.PUBLIC_COLUMNS` and :data:`~.visibility.PUBLISHED`; a page's
version moves with every change readers can see, so a slice rendered at one version is
served again until it moves on. Rendered slices live in the same per-worker cache as the
JSON slices, under the one ``THREAD_CACHE_MB`` budget: they are rendered thread pages too.
Their key and ETag also cover ``variant``, whatever else the markup depends on (its
templates, the service's address in its links, whether the site takes comments), and
start with ``html``, so they never collide with a JSON slice's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from commentsvc.extensions import db, read_connection
from commentsvc.models import Page
from commentsvc.services import threads
from commentsvc.services.page_states import page_state
from commentsvc.services.threads import ThreadPage, ThreadRequest

#: Replies nest under their parent down to this depth, then stay at it (as in the widget).
MAX_REPLY_DEPTH = 3

_PAGE_STATE = sa.select(
    Page.id, Page.version, Page.approved_count, Page.key, Page.url, Page.title
).where(Page.site_id == sa.bindparam("site_id"), Page.key == sa.bindparam("key"))


@dataclass(frozen=True)
class FragmentRequest:
    """Which slice of which page's thread, rendered for which ``variant``."""

    site_id: int
    key: str
    after_id: int | None
    limit: int
    variant: str
    #: The site's markup, which the fragment names (the widget adopting it offers a preview
    #: on Markdown sites) and the JSON thread's ETag covers.
    markup: str = "text"

    @property
    def json_request(self) -> ThreadRequest:
        """The JSON thread's request for the same slice."""
        return ThreadRequest(self.site_id, self.key, self.after_id, self.limit, markup=self.markup)


@dataclass(frozen=True)
class PageFacts:
    """What is known of a page: its key, and the URL and title its approved comments gave."""

    key: str
    url: str | None
    title: str | None


@dataclass
class ThreadNode:
    """One comment where the thread shows it: its row, how deep it sits, the replies shown
    under it, and whether its parent is shown in the same slice."""

    comment: sa.Row[Any]
    depth: int
    parent_shown: bool
    replies: list[ThreadNode] = field(default_factory=list)


@dataclass(frozen=True)
class ThreadSlice:
    """A slice as read: the page (None when nobody commented on it), its approved total,
    the slice's comments as a tree, the id it ends at when more follow, and the ETag the
    JSON thread answers for the same slice (for a client that holds this markup and asks
    the JSON thread whether it is still current)."""

    page: PageFacts | None
    total: int
    threads: list[ThreadNode]
    next_after_id: int | None
    json_tag: str


def nest(rows: Sequence[sa.Row[Any]], max_depth: int = MAX_REPLY_DEPTH) -> list[ThreadNode]:
    """Comments (oldest first) as the widget shows them: top-level ones in order, each reply
    under its parent, oldest first; below ``max_depth`` a reply sits beside its parent. A
    reply whose parent is not shown (on an earlier slice, or no longer public) stands at
    the top level, where it comes in time."""
    top: list[ThreadNode] = []
    shown: dict[int, tuple[ThreadNode, list[ThreadNode]]] = {}
    for row in rows:
        found = shown.get(row.parent_id) if row.parent_id is not None else None
        if found is None:
            node = ThreadNode(row, 0, parent_shown=False)
            siblings = top
        else:
            parent, parent_siblings = found
            node = ThreadNode(row, min(parent.depth + 1, max_depth), parent_shown=True)
            siblings = parent.replies if parent.depth < max_depth else parent_siblings
        siblings.append(node)
        shown[row.id] = (node, siblings)
    return top


def _slice(request: FragmentRequest) -> str:
    """A rendered slice: the slice and the variant; ``html`` first, so that it never is a
    JSON slice's."""
    return threads.slice_key(
        "html", request.after_id, request.limit, request.variant, request.markup
    )


def fragment_tag(request: FragmentRequest) -> str:
    """The ETag the rendered slice has now, from the page's state (as
    :func:`~.threads.thread_tag`)."""
    return threads.slice_tag(page_state(request.site_id, request.key), _slice(request))


def thread_fragment(
    request: FragmentRequest, tag: str, render: Callable[[ThreadSlice], bytes]
) -> ThreadPage:
    """The slice rendered by ``render``, as of ``tag`` (from :func:`fragment_tag`); kept
    until the page's version moves on. A page nobody commented on is not kept: any key can
    be asked for, and would push the real pages out."""
    key = (request.site_id, request.key, _slice(request))
    body = threads.kept_slice(key, tag)
    if body is not None:
        return ThreadPage(tag, body)
    # Before the read, so that it can only be older than the slice: a client holding the
    # markup then asks once too often, never too seldom.
    json_tag = threads.thread_tag(request.json_request)
    page, read = _read(request, json_tag)
    tag = threads.slice_tag(page, key[2])  # the state the rows were read in
    body = render(read)
    if page is not None:
        threads.keep_slice(key, tag, body)
    return ThreadPage(tag, body)


def _read(request: FragmentRequest, json_tag: str) -> tuple[sa.Row[Any] | None, ThreadSlice]:
    """A page's state and its slice of approved comments, oldest first, from one snapshot."""
    page = db.session.execute(_PAGE_STATE, {"site_id": request.site_id, "key": request.key}).first()
    if page is None:
        return None, ThreadSlice(None, 0, [], None, json_tag)
    parameters = {"page_id": page.id, "after_id": request.after_id or 0, "limit": request.limit + 1}
    rows = db.session.execute(threads.THREAD_SLICE, parameters).all()
    shown = rows[: request.limit]
    more = len(rows) > request.limit
    facts = PageFacts(page.key, page.url, page.title)
    next_after_id = shown[-1].id if more else None
    return page, ThreadSlice(facts, page.approved_count, nest(shown), next_after_id, json_tag)


def page_facts(site_id: int, key: str) -> PageFacts | None:
    """A page's key, URL and title (None when nobody commented on it)."""
    with read_connection() as connection:
        page = connection.execute(_PAGE_STATE, {"site_id": site_id, "key": key}).first()
    return PageFacts(page.key, page.url, page.title) if page is not None else None
