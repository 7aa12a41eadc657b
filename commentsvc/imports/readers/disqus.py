"""Disqus's export (``.xml``, or the ``…-all.xml.gz`` Disqus sends): Admin → Export.

The root ``<disqus xmlns="http://disqus.com">`` holds flat runs of ``category``, then
``thread``, then ``post`` elements, each naming itself by ``dsq:id``. A thread is a page:
its key is the path and query of its ``link`` (its ``<id>``, the site's
``disqus_identifier``, when it has no link), its URL the link, its title kept. Threads come
before posts, so the reader keeps one small page per thread (never a post) and resolves each
post's ``<thread dsq:id>`` against them.

Decisions:

- A post naming a thread the file has not shown (before it) stops the import
  (:class:`UnreadableFile` naming the post): Disqus writes every thread first, so the file
  was edited or cut, and guessing a page would file comments under the wrong one.
- A deleted thread's posts are imported on its page: the thread is gone from Disqus, not
  the page from the site; each post's own flags decide.
- Statuses: ``isDeleted`` → skipped (deleted; that wins over spam, and a live reply to it
  becomes top-level in the loader), ``isSpam`` → spam, ``isApproved`` false → pending
  (older exports lack it: approved), else approved. An empty message → skipped (empty).
  A deleted post needs only its ``dsq:id``: nothing else of it is used.
- Author: ``name``, else ``username``, else "Anonymous"; email when not blank (Disqus
  often leaves it so); Disqus keeps no website. Bodies are Disqus's HTML, as written.
- A page is yielded once, before the first comment on it; threads without comments (Disqus
  makes one for every page its embed loaded on) yield nothing. Threads of one URL (exports
  do hold duplicates) are one page, the first's title kept.

The file is read a root's child at a time (``iter_xml(..., top_level=True)``), not by
name at any depth: a post holds a ``<thread dsq:id/>`` reference of the same local name as
the real threads, and clearing that would empty the post around it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import datetime
from functools import partial

from lxml import etree

from commentsvc.imports.files import entity_declarations, iter_xml, page_key, utc
from commentsvc.imports.records import (
    BodyFormat,
    Record,
    Skipped,
    SkipReason,
    SourceComment,
    SourcePage,
    SourceStatus,
    UnreadableFile,
)

DISQUS_NS = "http://disqus.com"
_DSQ_ID = "{http://disqus.com/disqus-internals}id"
_WXR_NS = "http://wordpress.org/export/"
#: The root's children the reader takes (categories are passed over).
_ENTRIES = frozenset({"thread", "post"})


def _check_root(path: str, root: etree._Element) -> None:
    """A Disqus export's root, or one line saying what the file looks like instead."""
    name = etree.QName(root)
    if name.localname == "disqus" and name.namespace in (DISQUS_NS, None):
        return
    namespaces = [uri for uri in (root.nsmap or {}).values() if uri]
    if name.localname == "rss" and any(uri.startswith(_WXR_NS) for uri in namespaces):
        raise UnreadableFile(
            f"{path}: a WordPress export (WXR), not a Disqus export; import it as wordpress"
        )
    found = f"{{{name.namespace}}}{name.localname}" if name.namespace else name.localname
    raise UnreadableFile(
        f'{path}: not a Disqus export: the root is <{found}>, not <disqus xmlns="{DISQUS_NS}">'
    )


def _text(element: etree._Element, path: str) -> str:
    """The stripped text of the child at ``path`` (local names, ``a/b``), or ``""``."""
    steps = "/".join(f"{{*}}{step}" for step in path.split("/"))
    return (element.findtext(steps) or "").strip()


def _flag(element: etree._Element, name: str, default: bool = False) -> bool:
    value = _text(element, name).lower()
    return value in ("true", "1") if value else default


def _ref(element: etree._Element, name: str) -> str | None:
    """The ``dsq:id`` of the child ``name`` (``<thread dsq:id/>``, ``<parent dsq:id/>``)."""
    child = element.find(f"{{*}}{name}")
    found = (child.get(_DSQ_ID) or "").strip() if child is not None else ""
    return found or None


def _time(element: etree._Element, path: str, what: str) -> datetime:
    where = f"{path}: line {element.sourceline}"
    value = _text(element, "createdAt")
    if not value:
        raise UnreadableFile(f"{where}: {what} without createdAt")
    try:
        return utc(datetime.fromisoformat(value))
    except ValueError:
        raise UnreadableFile(f"{where}: {what}: createdAt {value!r} is not ISO 8601") from None


def _thread(element: etree._Element, path: str) -> tuple[str, SourcePage]:
    """A thread's ``dsq:id`` and its page."""
    where = f"{path}: line {element.sourceline}"
    thread_id = (element.get(_DSQ_ID) or "").strip()
    if not thread_id:
        raise UnreadableFile(f"{where}: a thread without dsq:id")
    link = _text(element, "link")
    title = _text(element, "title") or None
    if link:
        return thread_id, SourcePage(page_key(link), link, title)
    identifier = _text(element, "id")
    if not identifier:
        raise UnreadableFile(f"{where}: thread {thread_id} has neither a link nor an id")
    return thread_id, SourcePage(identifier, None, title)


def _post(element: etree._Element, pages: dict[str, SourcePage], path: str) -> Record:
    """A post as a comment, or why it is skipped."""
    where = f"{path}: line {element.sourceline}"
    source_id = (element.get(_DSQ_ID) or "").strip()
    if not source_id:
        raise UnreadableFile(f"{where}: a post without dsq:id")
    if _flag(element, "isDeleted"):
        return Skipped(source_id, SkipReason.DELETED)
    thread_id = _ref(element, "thread")
    if thread_id is None:
        raise UnreadableFile(f"{where}: post {source_id} names no thread")
    page = pages.get(thread_id)
    if page is None:
        raise UnreadableFile(
            f"{where}: post {source_id} names thread {thread_id}, not in the file before it"
        )
    created_at = _time(element, path, f"post {source_id}")
    body = (element.findtext("{*}message") or "").strip()
    if not body:
        return Skipped(source_id, SkipReason.EMPTY)
    if _flag(element, "isSpam"):
        status = SourceStatus.SPAM
    elif not _flag(element, "isApproved", default=True):
        status = SourceStatus.PENDING
    else:
        status = SourceStatus.APPROVED
    return SourceComment(
        source_id=source_id,
        page=page,
        created_at=created_at,
        status=status,
        body=body,
        body_format=BodyFormat.HTML,
        author_name=(
            _text(element, "author/name") or _text(element, "author/username") or "Anonymous"
        ),
        author_email=_text(element, "author/email") or None,
        parent_source_id=_ref(element, "parent"),
    )


def read(path: str) -> Iterator[Record]:
    """The pages and comments of a Disqus export, a post at a time."""
    try:
        declares_entities = entity_declarations(path)
    except (OSError, EOFError, zlib.error) as error:  # a gzip cut short within its first 64 KiB
        raise UnreadableFile(f"{path}: {error}") from None
    if declares_entities:
        raise UnreadableFile(f"{path}: declares XML entities; an export never does (refused)")
    pages: dict[str, SourcePage] = {}  # thread dsq:id → its page
    by_key: dict[str, SourcePage] = {}  # duplicate threads of one URL share the first's page
    shown: set[str] = set()
    entries = iter_xml(path, _ENTRIES, top_level=True, check_root=partial(_check_root, path))
    for element in entries:
        kind = etree.QName(element).localname
        if kind == "thread":
            thread_id, page = _thread(element, path)
            pages[thread_id] = by_key.setdefault(page.key, page)
        elif kind == "post":
            record = _post(element, pages, path)
            if isinstance(record, SourceComment) and record.page.key not in shown:
                shown.add(record.page.key)
                yield record.page
            yield record
