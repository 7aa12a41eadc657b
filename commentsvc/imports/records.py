"""What every importer reads a source file into (DESIGN §9): pages and comments in one
shape, whatever the source, streamed one record at a time.

A reader (:mod:`commentsvc.imports.readers`) turns a file into :class:`SourcePage`,
:class:`SourceComment` and :class:`Skipped` records, in any order (a reply may come before
its parent; a page may come after its comments, or never: a comment names its page's key
and URL itself). It does no database work and keeps nothing but what it streams, so memory
stays flat however large the file. :mod:`commentsvc.imports.loader` writes them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class UnreadableFile(Exception):
    """The file cannot be read: one line naming the file and the place (line or record)."""


class SourceStatus(enum.StrEnum):
    """The statuses an imported comment may have; rejected, trashed and deleted items of
    the source are :class:`Skipped` instead (unless a reply keeps them as a tombstone)."""

    APPROVED = "approved"
    PENDING = "pending"
    SPAM = "spam"


class SkipReason(enum.StrEnum):
    """Why an item of the source is not imported (counted in the summary)."""

    REJECTED = "rejected"
    TRASHED = "trashed"
    DELETED = "deleted"
    PINGBACK = "pingback"
    TRACKBACK = "trackback"
    #: A type of comment the service has no place for (a plugin's ``review``, …).
    OTHER_TYPE = "other type"
    EMPTY = "empty"


@dataclass(frozen=True, slots=True)
class SourcePage:
    """A page of the source: its key (the path and query of its URL, or the source's own
    identifier), its URL and title when known."""

    key: str
    url: str | None = None
    title: str | None = None


class BodyFormat(enum.StrEnum):
    """What a source's comment text is written in."""

    HTML = "html"
    MARKDOWN = "markdown"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class SourceComment:
    """One comment as the source has it. ``source_id`` is unique in the source;
    ``parent_source_id`` names another comment of the same source (None: top level);
    ``created_at`` is timezone-aware UTC, from the file (never "now")."""

    source_id: str
    page: SourcePage
    created_at: datetime
    status: SourceStatus
    body: str
    body_format: BodyFormat
    author_name: str
    author_email: str | None = None
    author_url: str | None = None
    parent_source_id: str | None = None
    #: The author asked for reply mails in the source: imported as an opt-in that is not
    #: active until the address confirms again (DESIGN §8, §9).
    notify_replies: bool = False


@dataclass(frozen=True, slots=True)
class Skipped:
    """An item of the source that is not imported, and why."""

    source_id: str
    reason: SkipReason


Record = SourcePage | SourceComment | Skipped


class Reader(Protocol):
    """Reads one format: ``path`` into records, streaming. Raises :class:`UnreadableFile`
    with one line (file, line or record) when the file cannot be read as this format."""

    def __call__(self, path: str) -> Iterator[Record]: ...
