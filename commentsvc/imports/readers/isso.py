"""Isso's SQLite database (DESIGN §9): its threads and comments, read without writing a byte.

Isso has no export command; its database (``general.dbpath``, ``/db/comments.db`` in its
Docker image) is the export. The file is opened read-only, never with ``immutable=1`` while
it may change:

- Isso keeps the database in SQLite's default rollback-journal mode. There a read-only
  connection (``mode=ro``) creates no file and changes none; it takes the same shared locks
  as any reader, so an Isso still serving during the import is read consistently, batch by
  batch, and is never blocked for longer than one batch. ``immutable=1`` would skip those
  locks and could read a page Isso is halfway through writing.
- A database left with a hot journal (a writer died mid-transaction) cannot be rolled back
  read-only; it is refused with one line, never read torn.
- A database someone switched to WAL mode is the exception: there a read-only connection
  would create ``-wal`` and ``-shm`` files beside it. When no ``-wal`` file exists nobody has
  it open and everything is in the main file, so it is opened ``immutable=1``; while one
  exists another program has it open, and it is refused with one line.

Isso's statuses are the integers of its ``mode`` column: 1 valid, 2 pending, 4 a deleted
comment kept as a tombstone because it has replies (its text, author and website blanked,
its email kept). Isso HTML-escapes the author, email and website it stores from its API;
they are unescaped here, so "Ben & Jerry" arrives as typed, not as ``Ben &amp; Jerry``.
Isso threads one level deep: a reply to a reply is stored with the top comment as parent.
"""

from __future__ import annotations

import enum
import html
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from commentsvc.imports.files import page_key
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

#: Comments read per query; the shared lock is held for one batch only.
BATCH_SIZE = 500
ANONYMOUS = "Anonymous"
#: The columns this reader needs, by table: a file without them is not Isso's.
_SCHEMA = {
    "threads": {"id", "uri", "title"},
    "comments": {"tid", "id", "parent", "created", "mode", "text", "author", "email"}
    | {"website", "notification"},
}
_COMMENTS = """
    SELECT c.id, c.tid, t.uri, t.title, c.parent, c.created, c.mode, c.text,
           c.author, c.email, c.website, c.notification
    FROM comments AS c JOIN threads AS t ON t.id = c.tid
    WHERE c.id > ? ORDER BY c.id LIMIT ?
"""
_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100
#: Byte 18 of an SQLite file's header: 2 when the database is in WAL mode.
_WAL_HEADER_OFFSET = 18
_WAL = 2
#: A row of :data:`_COMMENTS`.
_Row = tuple[
    int,
    int,
    str | None,
    str | None,
    int | None,
    float,
    int | None,
    str | None,
    str | None,
    str | None,
    str | None,
    int | None,
]


class IssoMode(enum.IntEnum):
    """The values of Isso's ``comments.mode``."""

    VALID = 1
    PENDING = 2
    DELETED = 4


def read(path: str) -> Iterator[Record]:
    """The pages and comments of Isso's database at ``path``: a page before its first comment,
    comments in the order Isso numbered them; tombstones as :class:`Skipped`."""
    options = _open_options(path)
    try:
        # as_uri() percent-encodes the path: a "?" or "#" in it cannot pass for an option.
        uri = f"{Path(path).absolute().as_uri()}?{options}"
        with closing(sqlite3.connect(uri, uri=True)) as connection:
            connection.execute("PRAGMA query_only = ON")
            _check_schema(connection, path)
            yield from _records(connection, path)
    except sqlite3.DatabaseError as error:
        raise UnreadableFile(f"{path}: {_describe(error)}") from None


def _open_options(path: str) -> str:
    """The URI options that open ``path`` without writing to it or creating a file beside
    it (see the module's docstring); UnreadableFile when it is not SQLite or is in use."""
    try:
        with Path(path).open("rb") as stream:
            header = stream.read(_HEADER_SIZE)
    except OSError as error:
        raise UnreadableFile(f"{path}: {error.strerror or error}") from None
    if len(header) < _HEADER_SIZE or not header.startswith(_MAGIC):
        raise UnreadableFile(f"{path}: not an SQLite database")
    if header[_WAL_HEADER_OFFSET] != _WAL:
        return "mode=ro"
    if Path(f"{path}-wal").exists():
        raise UnreadableFile(
            f"{path}: in use by another program (it has a -wal file); stop it first"
        )
    return "mode=ro&immutable=1"


def _check_schema(connection: sqlite3.Connection, path: str) -> None:
    """UnreadableFile unless the database has Isso's threads and comments tables."""
    for table, needed in _SCHEMA.items():
        rows = connection.execute("SELECT name FROM pragma_table_info(?)", (table,))
        missing = needed - {name for (name,) in rows}
        if missing == needed:
            raise UnreadableFile(f"{path}: not an Isso database (it has no {table} table)")
        if missing:
            columns = ", ".join(sorted(missing))
            raise UnreadableFile(f"{path}: not an Isso database ({table} lacks {columns})")


def _records(connection: sqlite3.Connection, path: str) -> Iterator[Record]:
    """Every comment, in batches by id: each batch is one short read, so an Isso still
    running can write between two batches, and memory holds one batch."""
    seen_threads: set[int] = set()
    last_id = -1
    while True:
        rows: list[_Row] = connection.execute(_COMMENTS, (last_id, BATCH_SIZE)).fetchall()
        if not rows:
            return
        for row in rows:
            comment_id, thread_id, uri, title = row[:4]
            if not uri:
                raise UnreadableFile(
                    f"{path}: thread {thread_id} (of comment {comment_id}) has no uri"
                )
            page = _page(uri, title)
            if thread_id not in seen_threads:
                seen_threads.add(thread_id)
                yield page
            yield _record(page, row)
        last_id = rows[-1][0]


def _page(uri: str, title: str | None) -> SourcePage:
    """A thread's page: Isso's ``uri`` is a path or a ``data-isso-id``, rarely a full URL."""
    if uri.startswith(("http://", "https://")):
        return SourcePage(key=page_key(uri), url=uri, title=title or None)
    return SourcePage(key=uri, title=title or None)


def _record(page: SourcePage, row: _Row) -> Record:
    """One comment row as a record."""
    (comment_id, _, _, _, parent, created, mode, text, author, email, website, notify) = row
    source_id = str(comment_id)
    if mode == IssoMode.DELETED:
        # A tombstone: its reply is re-rooted by the loader; the email Isso kept is dropped.
        return Skipped(source_id, SkipReason.DELETED)
    if text is None or not text.strip():
        return Skipped(source_id, SkipReason.EMPTY)
    return SourceComment(
        source_id=source_id,
        page=page,
        created_at=datetime.fromtimestamp(float(created), UTC),
        # Any mode Isso never wrote is held for a moderator, never published.
        status=SourceStatus.APPROVED if mode == IssoMode.VALID else SourceStatus.PENDING,
        body=text,
        body_format=BodyFormat.MARKDOWN,
        author_name=_unescaped(author) or ANONYMOUS,
        author_email=_unescaped(email),
        author_url=_unescaped(website),
        parent_source_id=str(parent) if parent else None,
        notify_replies=bool(notify),
    )


def _unescaped(value: str | None) -> str | None:
    """A field Isso stored HTML-escaped, as typed; None when blank."""
    if value is None or not value.strip():
        return None
    return html.unescape(value).strip()


def _describe(error: sqlite3.DatabaseError) -> str:
    """One line for an SQLite error of a source file."""
    name = getattr(error, "sqlite_errorname", "")
    if name == "SQLITE_NOTADB":
        return "not an SQLite database"
    if name == "SQLITE_READONLY_ROLLBACK":
        return "a write to it was interrupted (hot journal); let Isso open it once, then retry"
    if name in {"SQLITE_BUSY", "SQLITE_LOCKED"}:
        return "locked by another program; retry, or stop Isso first"
    return f"cannot read it as SQLite ({error})"
