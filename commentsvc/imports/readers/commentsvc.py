"""This service's own export (``commentsvc export``, JSON Lines, format version 1; see
:mod:`commentsvc.imports.export`), plain or gzipped. Rejected comments are skipped (a
site's import brings what may still be shown or judged); the others keep their status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from commentsvc.imports.export import FORMAT, VERSION
from commentsvc.imports.files import open_source, utc
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

_STATUSES = {status.value: status for status in SourceStatus}


def _time(value: Any, where: str) -> datetime:
    try:
        return utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        raise UnreadableFile(f"{where}: {value!r} is not an ISO 8601 time") from None


def _comment(document: dict[str, Any], pages: dict[str, SourcePage], where: str) -> Record:
    try:
        source_id = str(document["id"])
        page = pages[document["page"]]
        status = document["status"]
        created_at = _time(document["created_at"], where)
    except KeyError as error:
        raise UnreadableFile(f"{where}: a comment without {error.args[0]!r}") from None
    if status == "rejected":
        return Skipped(source_id, SkipReason.REJECTED)
    if status not in _STATUSES:
        raise UnreadableFile(f"{where}: unknown status {status!r}")
    parent = document.get("parent_id")
    return SourceComment(
        source_id=source_id,
        page=page,
        created_at=created_at,
        status=_STATUSES[status],
        body=str(document.get("body") or ""),
        body_format=BodyFormat.TEXT,
        author_name=str(document.get("author_name") or "Anonymous"),
        author_email=document.get("author_email") or None,
        author_url=document.get("author_url") or None,
        parent_source_id=str(parent) if parent is not None else None,
        notify_replies=bool(document.get("notify_replies")),
    )


def read(path: str) -> Iterator[Record]:
    """The pages and comments of an export, a line at a time."""
    pages: dict[str, SourcePage] = {}
    with open_source(path) as stream:
        for number, raw in enumerate(stream, start=1):
            where = f"{path}: line {number}"
            try:
                document = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                if number == 1:
                    raise UnreadableFile(f"{where}: not a commentsvc export (JSON Lines)") from None
                raise UnreadableFile(f"{where}: not a JSON object (cut short?)") from None
            if not isinstance(document, dict):
                raise UnreadableFile(f"{where}: not a JSON object")
            if number == 1:
                if document.get("format") != FORMAT:
                    raise UnreadableFile(f"{where}: not a commentsvc export (no format header)")
                if document.get("version") != VERSION:
                    raise UnreadableFile(
                        f"{where}: export format version {document.get('version')!r}; this "
                        f"service reads version {VERSION}"
                    )
                continue
            kind = document.get("type")
            if kind == "page":
                key = str(document.get("key") or "")
                page = SourcePage(key, document.get("url"), document.get("title"))
                pages[key] = page
                yield page
            elif kind == "comment":
                yield _comment(document, pages, where)
            else:
                raise UnreadableFile(f"{where}: unknown line type {kind!r}")
