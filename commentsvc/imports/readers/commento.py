"""Commento's export (its dashboard mails a link to a gzipped JSON file), plain or
gzipped; Comentario's own version 1 export reads alike.

One JSON document, ``{"version": 1, "comments": [...], "commenters": [...]}``, read whole
(it cannot be streamed; Commento's own importer reads it whole too). A comment's ``url`` is
in fact the page's path; its author is a row of ``commenters`` by ``commenterHex``, except for
anonymous comments (``"anonymous"``, or 64 zeros in Comentario), which have none and are
kept, by "Anonymous". Bodies are Markdown. States: ``approved``, ``unapproved`` (pending)
and ``flagged`` (spam); a comment marked ``deleted``, or whose Markdown is empty or
``[deleted]`` (what Commento leaves of a deleted one), is skipped.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any, NamedTuple
from urllib.parse import urlsplit

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

_STATES = {
    "approved": SourceStatus.APPROVED,
    "unapproved": SourceStatus.PENDING,
    "flagged": SourceStatus.SPAM,
}
_ANONYMOUS_HEXES = {"anonymous", "0" * 64}
_DELETED_BODIES = {"", "[deleted]"}
_ROOT_HEXES = {"", "root"}


class _Author(NamedTuple):
    name: str
    email: str | None
    url: str | None


_ANONYMOUS = _Author("Anonymous", None, None)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _web_url(value: str) -> str | None:
    """``value`` if it is an http(s) URL (Commento writes ``undefined`` for none)."""
    parts = urlsplit(value)
    return value if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def _one_object(line: bytes) -> bool:
    """Whether ``line`` is a JSON object by itself (the first of JSON lines)."""
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _load(path: str) -> dict[str, Any]:
    """The export as a dict with a ``comments`` list, or UnreadableFile saying what it is."""
    with open_source(path) as stream:
        try:
            data = stream.read()
        except (OSError, EOFError, zlib.error) as error:
            raise UnreadableFile(f"{path}: {error}") from None
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not start:
        raise UnreadableFile(f"{path}: empty, not a Commento export")
    if start.startswith(b"<"):
        raise UnreadableFile(f"{path}: XML (a WordPress or Disqus export?), not a Commento export")
    try:
        document = json.loads(data)
    except UnicodeDecodeError:
        raise UnreadableFile(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        if error.msg == "Extra data" and _one_object(data.split(b"\n", 1)[0]):
            what = "JSON lines (a Remark42 backup?), not one JSON document"
        else:
            what = f"not JSON ({error.msg}, column {error.colno})"
        raise UnreadableFile(f"{path}: line {error.lineno}: {what}") from None
    if not isinstance(document, dict) or not isinstance(document.get("comments"), list):
        raise UnreadableFile(f'{path}: JSON without a "comments" list, not a Commento export')
    version = document.get("version", 1)
    if version != 1:
        raise UnreadableFile(f"{path}: version {version!r}; a Commento export is version 1")
    if not isinstance(document.get("commenters", []), list | None):
        raise UnreadableFile(f'{path}: "commenters" is not a list')
    return document


def _authors(path: str, rows: list[Any]) -> dict[str, _Author]:
    """The commenters by hex (the export repeats a commenter once per comment)."""
    authors: dict[str, _Author] = {}
    for index, row in enumerate(rows):
        hex_id = _text(row.get("commenterHex")) if isinstance(row, dict) else ""
        if not hex_id:
            raise UnreadableFile(f'{path}: commenters[{index}]: no "commenterHex"')
        authors[hex_id] = _Author(
            name=_text(row.get("name")) or "Anonymous",
            email=_text(row.get("email")) or None,
            url=_web_url(_text(row.get("link")) or _text(row.get("websiteUrl"))),
        )
    return authors


def _comment(path: str, index: int, item: object, authors: dict[str, _Author]) -> Record:
    if not isinstance(item, dict):
        raise UnreadableFile(f"{path}: comments[{index}]: not a JSON object")
    source_id = _text(item.get("commentHex"))
    if not source_id:
        raise UnreadableFile(f'{path}: comments[{index}]: no "commentHex"')
    where = f"{path}: comments[{index}] ({source_id})"
    created_at = required_time(item, "creationDate", where)
    # Commento's "url" is a path; Comentario's v1 export has "path" beside it.
    url = _text(item.get("url"))
    location = _text(item.get("path")) or url
    if not location:
        raise UnreadableFile(f'{where}: no "url"')
    markdown = item.get("markdown")
    body = markdown if isinstance(markdown, str) else ""
    if item.get("deleted") is True or body.strip() in _DELETED_BODIES:
        return Skipped(source_id, SkipReason.DELETED)
    state = item.get("state")
    status = _STATES.get(state) if isinstance(state, str) else None
    if status is None:
        raise UnreadableFile(f"{where}: unknown state {state!r}")
    commenter = _text(item.get("commenterHex"))
    # An anonymous comment has no commenter row; nor has one whose commenter was deleted.
    author = _ANONYMOUS if commenter in _ANONYMOUS_HEXES else authors.get(commenter, _ANONYMOUS)
    parent = _text(item.get("parentHex"))
    return SourceComment(
        source_id=source_id,
        page=SourcePage(page_key(location), _web_url(url)),
        created_at=created_at,
        status=status,
        body=body,
        body_format=BodyFormat.MARKDOWN,
        author_name=author.name,
        author_email=author.email,
        author_url=author.url,
        parent_source_id=None if parent in _ROOT_HEXES else parent,
    )


def read(path: str) -> Iterator[Record]:
    """The comments of a Commento export, in the file's order."""
    document = _load(path)
    authors = _authors(path, document.get("commenters") or [])
    for index, item in enumerate(document["comments"]):
        yield _comment(path, index, item, authors)
