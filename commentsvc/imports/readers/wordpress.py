"""WordPress's export (WXR 1.0, 1.1 and 1.2, ``.xml`` or ``.xml.gz``): Tools → Export, or
``wp export``.

Each ``item`` (a post, a page) carries its comments as ``wp:comment`` elements; elements
are matched by local name, so every WXR version reads alike. Statuses: ``1`` approved,
``0`` pending, ``spam`` spam (WordPress's own exporter leaves spam out; plugins' keep it),
``trash`` and ``post-trashed`` skipped. Pingbacks, trackbacks and plugins' types (reviews,
webmentions) are skipped and counted. Times: ``comment_date_gmt``; an export without it
(``0000-00-00 00:00:00``) gives ``comment_date``, the site's local time, taken as UTC (the
file does not say the site's time zone). Bodies are WordPress HTML whose line breaks are
paragraphs and breaks (WordPress adds those when it shows a comment).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

from lxml import etree

from commentsvc.imports.files import entity_declarations, head, iter_xml, page_key, utc
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
from commentsvc.imports.text import newlines_as_html

_STATUSES = {"1": SourceStatus.APPROVED, "0": SourceStatus.PENDING, "spam": SourceStatus.SPAM}
_TRASHED = {"trash", "post-trashed"}
_TYPES = {"pingback": SkipReason.PINGBACK, "trackback": SkipReason.TRACKBACK}
_NO_DATE = "0000-00-00 00:00:00"
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def _check(path: str) -> None:
    """A WordPress export, not some other XML: its namespace says so up front."""
    start = head(path)
    if entity_declarations(path):
        raise UnreadableFile(f"{path}: declares XML entities; an export never does (refused)")
    if b"wordpress.org/export/" not in start:
        kind = "a Disqus export" if b"disqus.com" in start else "not a WordPress export (WXR)"
        raise UnreadableFile(f"{path}: {kind}: no http://wordpress.org/export/ namespace")


def _local_name(tag: str) -> str:
    """``{namespace}name`` → ``name`` (what ``etree.QName(…).localname`` gives, cheaper)."""
    return tag[tag.find("}") + 1 :]


def _children(element: etree._Element) -> dict[str, str]:
    """Local name → text of an element's direct children (the first of each name). Runs
    for every field of every comment, so the local name is cut out here, not by a call."""
    found: dict[str, str] = {}
    for child in element:
        tag = child.tag
        if isinstance(tag, str):
            found.setdefault(tag[tag.find("}") + 1 :], (child.text or "").strip())
    return found


def _parse_time(value: str) -> datetime:
    """``value`` as ``strptime(value, "%Y-%m-%d %H:%M:%S")`` reads it. The form exports
    use (two digits a field) is read directly, at a tenth of the cost; any other (one-digit
    fields, a mistake) is left to ``strptime``, which also raises its ValueError."""
    if _TIME.fullmatch(value):
        return datetime(
            int(value[0:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
        )
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")


def _time(fields: dict[str, str], path: str, line: int | None) -> datetime:
    for name in ("comment_date_gmt", "comment_date"):
        value = fields.get(name, "")
        if value and value != _NO_DATE:
            try:
                return utc(_parse_time(value))
            except ValueError:
                raise UnreadableFile(
                    f"{path}: line {line}: {name} {value!r} is not YYYY-MM-DD HH:MM:SS"
                ) from None
    raise UnreadableFile(f"{path}: line {line}: a comment without a date")


def _page(item: dict[str, str]) -> SourcePage:
    link = item.get("link", "")
    title = item.get("title") or None
    if link:
        return SourcePage(page_key(link), link, title)
    return SourcePage(f"/?p={item.get('post_id', '')}", None, title)


def _comment(element: etree._Element, page: SourcePage, path: str) -> Record:
    line = element.sourceline
    fields = _children(element)
    source_id = fields.get("comment_id", "")
    if not source_id:
        raise UnreadableFile(f"{path}: line {line}: a comment without wp:comment_id")
    kind = fields.get("comment_type", "")
    if kind not in ("", "comment"):
        return Skipped(source_id, _TYPES.get(kind, SkipReason.OTHER_TYPE))
    approved = fields.get("comment_approved", "")
    if approved in _TRASHED:
        return Skipped(source_id, SkipReason.TRASHED)
    status = _STATUSES.get(approved)
    if status is None:
        raise UnreadableFile(f"{path}: line {line}: unknown wp:comment_approved {approved!r}")
    content = fields.get("comment_content", "")
    if not content:
        return Skipped(source_id, SkipReason.EMPTY)
    parent = fields.get("comment_parent", "0")
    return SourceComment(
        source_id=source_id,
        page=page,
        created_at=_time(fields, path, line),
        status=status,
        body=newlines_as_html(content),
        body_format=BodyFormat.HTML,
        author_name=fields.get("comment_author") or "Anonymous",
        author_email=fields.get("comment_author_email") or None,
        author_url=fields.get("comment_author_url") or None,
        parent_source_id=parent if parent not in ("", "0") else None,
    )


def read(path: str) -> Iterator[Record]:
    """The pages and comments of a WXR file, an item at a time."""
    _check(path)
    for item in iter_xml(path, {"item"}):
        comments = [
            child
            for child in item
            if isinstance(child.tag, str) and _local_name(child.tag) == "comment"
        ]
        if not comments:
            continue
        page = _page(_children(item))
        yield page
        for comment in comments:
            yield _comment(comment, page, path)
