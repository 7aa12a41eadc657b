"""``commentsvc export --format wxr``: a site's comments as WordPress eXtended RSS 1.2
(DESIGN §9), the file WordPress's importer (Tools → Import → WordPress) and Disqus's
import read, streamed (memory flat in the number of comments).

The file is laid out as WordPress lays out its own export: ``rss/channel`` with the
namespaces of WXR 1.2 under the prefixes WordPress gives them, an element a line (the
importer's fallback parsers match ``wp:`` and lines literally), then

- an ``item`` per page that has comments, a published ``page``: its title (else its key),
  link (its URL, else the site's first origin and its key), ``wp:post_id`` (the page's id,
  the same in every export), ``wp:post_name`` (the last part of its path), dates (its
  first comment's), ``dc:creator`` (the site's slug) and no content;
- in it a ``wp:comment`` per comment, in id order (oldest first): id, author, email,
  website, IP prefix, dates (UTC, both), text, ``comment_approved`` (``1`` approved,
  ``0`` pending, ``spam``, ``trash`` for rejected), type ``comment``, parent (``0`` at
  the top) and user ``0``.

WordPress takes a comment's content as HTML and makes paragraphs of its line breaks; the
service keeps plain text, so the text is written HTML-escaped (``<`` as ``&lt;``) with its
line breaks: WordPress shows what was written, and ``commentsvc import wordpress`` reads
the same text back (runs of spaces are HTML's, so collapsed). Free text goes in CDATA
sections (a ``]]>`` in it split over two, as WordPress does), numbers and URLs as escaped
text; characters XML 1.0 cannot hold (control characters) are left out of every text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import datetime
from email.utils import format_datetime
from itertools import chain, groupby
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from lxml import etree

from commentsvc.imports.export import find_site, reading, rows, site_comments
from commentsvc.models import Comment, CommentStatus, Page, Site, utcnow

WXR_VERSION = "1.2"
WP = f"http://wordpress.org/export/{WXR_VERSION}/"
#: The namespaces of a WordPress 1.2 export, under the prefixes it gives them.
NAMESPACES = {
    "excerpt": f"http://wordpress.org/export/{WXR_VERSION}/excerpt/",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "wfw": "http://wellformedweb.org/CommentAPI/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "wp": WP,
}
#: The bytes gathered before they are handed on (a chunk is at most one comment longer).
CHUNK_BYTES = 1 << 16
#: ``wp:comment_approved`` of each status; WordPress's importer keeps ``trash`` as trash.
APPROVAL = {
    CommentStatus.APPROVED: "1",
    CommentStatus.PENDING: "0",
    CommentStatus.SPAM: "spam",
    CommentStatus.REJECTED: "trash",
}
#: What XML 1.0 cannot hold: its Char production's complement (control characters, lone
#: surrogates, U+FFFE and U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_WP = f"{{{WP}}}"
_DC = f"{{{NAMESPACES['dc']}}}"
_CONTENT = f"{{{NAMESPACES['content']}}}"
_EXCERPT = f"{{{NAMESPACES['excerpt']}}}"
#: lxml's incremental writer (what ``etree.xmlfile`` gives), a type lxml does not export.
XmlFile = Any


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold."""
    return _NOT_XML.sub("", text)


def cdata_sections(text: str) -> list[str]:
    """``text`` as the contents of CDATA sections, split inside every ``]]>`` (which ends
    a section): ``a]]>b`` is ``a]]`` and ``>b``, as WordPress's exporter writes it."""
    sections = []
    start = 0
    while (end := text.find("]]>", start)) != -1:
        sections.append(text[start : end + 2])
        start = end + 2
    sections.append(text[start:])
    return sections


def wordpress_date(moment: datetime) -> str:
    """A time (UTC) as WordPress writes dates: ``YYYY-MM-DD HH:MM:SS``."""
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def page_link(origin: str, key: str) -> str:
    """The address of a page without a URL: the site's first origin and the page's key."""
    if key.startswith("/") or not origin:
        return origin + key
    return f"{origin}/{key}"


def post_name(key: str, page_id: int) -> str:
    """A page's WordPress slug: the last part of its key's path, else ``page-ID``."""
    path = key.split("?", 1)[0].split("#", 1)[0]
    parts = [part for part in path.split("/") if part]
    return parts[-1][:200] if parts else f"page-{page_id}"


class _Sink:
    """Where the writer's bytes wait until they are handed on."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return data


class _Writer:
    """Elements on lxml's incremental writer, one a line, indented by tabs as WordPress
    indents its export; every text cleaned of what XML cannot hold."""

    def __init__(self, xf: XmlFile) -> None:
        self.xf = xf
        self.depth = 0

    def _newline(self) -> None:
        self.xf.write("\n" + "\t" * self.depth)

    @contextmanager
    def document(self) -> Iterator[None]:
        """The declaration and the ``rss`` root, which declares the namespaces."""
        self.xf.write_declaration()
        with self.xf.element("rss", {"version": "2.0"}, nsmap=NAMESPACES):
            yield
            self._newline()

    @contextmanager
    def element(self, tag: str) -> Iterator[None]:
        """An element holding elements."""
        self._newline()
        with self.xf.element(tag):
            self.depth += 1
            yield
            self.depth -= 1
            self._newline()

    def text(self, tag: str, value: str | int, attrib: dict[str, str] | None = None) -> None:
        """An element holding ``value`` as escaped text (numbers, URLs, fixed words)."""
        self._newline()
        with self.xf.element(tag, attrib or {}):
            self.xf.write(xml_text(str(value)))

    def cdata(self, tag: str, value: str) -> None:
        """An element holding ``value`` in CDATA (free text)."""
        self._newline()
        with self.xf.element(tag):
            for section in cdata_sections(xml_text(value)):
                self.xf.write(etree.CDATA(section))


def _comments(site: Site) -> sa.Select[Any]:
    """The site's comments with their pages, grouped by page, in id order within one."""
    return (
        site_comments(
            site,
            Comment.page_id,
            Page.key,
            Page.url,
            Page.title,
            Comment.id,
            Comment.parent_id,
            Comment.status,
            Comment.body,
            Comment.author_name,
            Comment.author_email,
            Comment.author_url,
            Comment.ip_prefix,
            Comment.created_at,
        )
        .join(Page, Page.id == Comment.page_id)
        .order_by(Comment.page_id, Comment.id)
    )


def _channel(out: _Writer, site: Site, origin: str) -> None:
    """The channel's own elements: the site, and the version of the format."""
    out.text("title", site.name)
    out.text("link", origin)
    out.text("description", "")
    out.text("pubDate", format_datetime(utcnow()))
    out.text(f"{_WP}wxr_version", WXR_VERSION)
    out.text(f"{_WP}base_site_url", origin)
    out.text(f"{_WP}base_blog_url", origin)


def _item(out: _Writer, site: Site, origin: str, first: Any) -> None:
    """A page's elements (before its comments), dated by its first comment."""
    link = first.url or page_link(origin, first.key)
    date = wordpress_date(first.created_at)
    out.cdata("title", first.title or first.key)
    out.text("link", link)
    out.text("pubDate", format_datetime(first.created_at))
    out.cdata(f"{_DC}creator", site.slug)
    out.text("guid", link, {"isPermaLink": "false"})
    out.text("description", "")
    out.cdata(f"{_CONTENT}encoded", "")
    out.cdata(f"{_EXCERPT}encoded", "")
    out.text(f"{_WP}post_id", first.page_id)
    out.cdata(f"{_WP}post_date", date)
    out.cdata(f"{_WP}post_date_gmt", date)
    out.cdata(f"{_WP}comment_status", "open")
    out.cdata(f"{_WP}ping_status", "closed")
    out.cdata(f"{_WP}post_name", post_name(first.key, first.page_id))
    out.cdata(f"{_WP}status", "publish")
    out.text(f"{_WP}post_parent", 0)
    out.text(f"{_WP}menu_order", 0)
    out.cdata(f"{_WP}post_type", "page")
    out.cdata(f"{_WP}post_password", "")
    out.text(f"{_WP}is_sticky", 0)


def _comment(out: _Writer, row: Any) -> None:
    """One ``wp:comment``, its fields in the order WordPress writes them."""
    date = wordpress_date(row.created_at)
    with out.element(f"{_WP}comment"):
        out.text(f"{_WP}comment_id", row.id)
        out.cdata(f"{_WP}comment_author", row.author_name)
        out.cdata(f"{_WP}comment_author_email", row.author_email)
        out.text(f"{_WP}comment_author_url", row.author_url or "")
        out.cdata(f"{_WP}comment_author_IP", row.ip_prefix or "")
        out.cdata(f"{_WP}comment_date", date)
        out.cdata(f"{_WP}comment_date_gmt", date)
        out.cdata(f"{_WP}comment_content", html.escape(xml_text(row.body), quote=False))
        out.cdata(f"{_WP}comment_approved", APPROVAL[row.status])
        out.cdata(f"{_WP}comment_type", "comment")
        out.text(f"{_WP}comment_parent", row.parent_id or 0)
        out.text(f"{_WP}comment_user_id", 0)


def export_wxr(slug: str) -> Generator[bytes, None, None]:
    """The site's export as WXR 1.2, in UTF-8 chunks of about :data:`CHUNK_BYTES`, each
    handed on as soon as its comments are read (a page's item ends when the next page's
    first comment comes). Closing it early ends its read transaction."""
    with reading():
        site = find_site(slug)
        origin = site.origins[0] if site.origins else ""
        sink = _Sink()
        with etree.xmlfile(sink, encoding="utf-8") as xf:
            out = _Writer(xf)
            with out.document(), out.element("channel"), rows(_comments(site)) as found:
                _channel(out, site, origin)
                for _, page in groupby(found, key=attrgetter("page_id")):
                    first = next(page)
                    with out.element("item"):
                        _item(out, site, origin, first)
                        for row in chain([first], page):
                            _comment(out, row)
                            xf.flush()
                            if sink.size >= CHUNK_BYTES:
                                yield sink.take()
        yield sink.take()
