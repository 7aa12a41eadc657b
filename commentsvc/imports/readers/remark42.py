"""Remark42's backup (``backup-{site}-{date}.gz``, ``remark42 backup -s SITE``, or the admin
export): gzipped (or plain) JSON Lines, read a line at a time.

Line 1 is metadata (``{"version": 1, "users": [...], "posts": [...]}``), known by its shape
(a ``version``, no ``id``) and passed over; every other line is one comment. The body is
``orig``, the Markdown as typed, or when that is absent (comments Remark42 itself imported)
``text``, its sanitised HTML. Remark42 stores no email and has no pending or spam state:
every live comment is approved, a deleted one (``delete``; a hard delete also names its
author ``deleted``) is skipped. A backup holds one site; a file that mixes sites is refused.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import IO, Any

from commentsvc.imports.files import open_source, page_key, required_time
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


def _lines(path: str, stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """The file's non-blank lines with their numbers; a broken gzip stream is unreadable."""
    number = 0
    try:
        for number, line in enumerate(stream, 1):
            if line.strip():
                yield number, line
    except (OSError, EOFError, zlib.error) as error:
        raise UnreadableFile(f"{path}: line {number + 1}: {error}") from None


def _parse(path: str, number: int, line: bytes) -> dict[str, Any]:
    """One line as a JSON object, or UnreadableFile saying what the line looks like."""
    try:
        item = json.loads(line)
    except UnicodeDecodeError:
        raise UnreadableFile(f"{path}: line {number}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        start = line.lstrip(b"\xef\xbb\xbf \t\r\n")
        if number == 1 and start.startswith(b"<"):
            what = "XML (a WordPress or Disqus export?), not a Remark42 backup"
        elif number == 1 and start.rstrip() in (b"{", b"["):
            what = "one JSON document over many lines (a Commento export?), not JSON lines"
        else:
            what = f"not JSON ({error.msg}, column {error.colno})"
        raise UnreadableFile(f"{path}: line {number}: {what}") from None
    if not isinstance(item, dict):
        raise UnreadableFile(f"{path}: line {number}: not a JSON object")
    return item


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _comment(path: str, number: int, item: dict[str, Any]) -> Record:
    source_id = _text(item.get("id"))
    if not source_id:
        raise UnreadableFile(f'{path}: line {number}: a comment without "id"')
    where = f"{path}: line {number}: comment {source_id!r}"
    created_at = required_time(item, "time", where)
    url = _text(_object(item.get("locator")).get("url")).strip()
    if not url:
        raise UnreadableFile(f'{where}: no "locator.url"')
    if item.get("delete") is True:
        return Skipped(source_id, SkipReason.DELETED)
    body, body_format = _text(item.get("orig")), BodyFormat.MARKDOWN
    if not body:
        body, body_format = _text(item.get("text")), BodyFormat.HTML
    if not body.strip():
        return Skipped(source_id, SkipReason.EMPTY)
    user = _object(item.get("user"))
    return SourceComment(
        source_id=source_id,
        page=SourcePage(page_key(url), url, _text(item.get("title")).strip() or None),
        created_at=created_at,
        status=SourceStatus.APPROVED,
        body=body,
        body_format=body_format,
        author_name=_text(user.get("name")).strip() or "Anonymous",
        parent_source_id=_text(item.get("pid")) or None,
    )


def read(path: str) -> Iterator[Record]:
    """The comments of a Remark42 backup, a line at a time."""
    site: str | None = None
    site_line = 0
    with open_source(path) as stream:
        for number, line in _lines(path, stream):
            item = _parse(path, number, line)
            if "version" in item and "id" not in item:
                if "comments" in item:
                    raise UnreadableFile(
                        f"{path}: line {number}: a Commento export, not a Remark42 backup"
                    )
                continue  # the metadata line: users and posts, nothing to import
            record = _comment(path, number, item)
            this_site = _text(_object(item.get("locator")).get("site"))
            if site is None:
                site, site_line = this_site, number
            elif this_site != site:
                raise UnreadableFile(
                    f"{path}: line {number}: site {this_site!r}, but line {site_line} is site "
                    f"{site!r}; a backup holds one site"
                )
            yield record
