"""Reading source files safely: gzip or not, XML streamed without entities or network, and
the page key of a source URL."""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Callable, Collection, Generator, Iterator, Mapping
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from lxml import etree

from commentsvc.imports.records import UnreadableFile

#: Largest file an import reads (after decompression): a guard against a gzip bomb.
MAX_FILE_BYTES = 4 * 1024**3
_GZIP_MAGIC = b"\x1f\x8b"


class _Capped(io.RawIOBase):
    """A stream that refuses to read past ``limit`` bytes."""

    def __init__(self, inner: IO[bytes], limit: int, name: str, raw: IO[bytes]) -> None:
        super().__init__()
        self.inner = inner
        self.raw = raw
        self.left = limit
        self.name = name

    def close(self) -> None:
        if not self.closed:
            self.inner.close()
            self.raw.close()  # a GzipFile leaves the file it reads open
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(min(len(buffer), self.left + 1))
        if len(data) > self.left:
            raise UnreadableFile(f"{self.name}: larger than {MAX_FILE_BYTES:,} bytes unpacked")
        self.left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def open_source(path: str, limit: int = MAX_FILE_BYTES) -> IO[bytes]:
    """The file's bytes, gunzipped when it is gzip (by its first bytes, not its name)."""
    try:
        raw = Path(path).open("rb")  # noqa: SIM115  the returned stream closes it
    except OSError as error:
        raise UnreadableFile(f"{path}: {error.strerror or error}") from None
    magic = raw.read(2)
    raw.seek(0)
    stream: IO[bytes] = (
        gzip.GzipFile(fileobj=raw) if magic == _GZIP_MAGIC else raw  # type: ignore[assignment]
    )
    return io.BufferedReader(_Capped(stream, limit, path, raw), buffer_size=1 << 16)


def iter_xml(
    path: str,
    tags: Collection[str] | None = None,
    *,
    top_level: bool = False,
    check_root: Callable[[etree._Element], None] | None = None,
) -> Iterator[etree._Element]:
    """The elements of ``path`` whose local name is in ``tags`` (None: any name), each
    complete when yielded and cleared after it (memory stays flat). No DTD is loaded, no
    entity expanded, nothing fetched; a malformed file raises UnreadableFile naming its line.

    By default an element of those names is taken at any depth. ``top_level`` takes only
    the root's children (and clears each, taken or not), for formats whose entries hold
    references of the same name as entries (Disqus's post holds a ``<thread/>``), which
    clearing at any depth would empty. ``check_root`` sees the root as soon as it opens,
    before any child is read, so a file of the wrong kind is refused at once.
    """
    opened = 0  # elements open at this event (counted only when start events are read)
    with closing(_parse(path, starts=top_level or check_root is not None)) as events:
        for event, element in events:
            if event == "start":
                opened += 1
                if opened == 1 and check_root is not None:
                    check_root(element)
                continue
            opened -= 1
            if top_level and opened != 1:  # not a child of the root (the one still open)
                continue
            wanted = tags is None or etree.QName(element).localname in tags
            if wanted:
                yield element
            if wanted or top_level:
                _release(element)


def _parse(path: str, starts: bool) -> Generator[tuple[str, etree._Element], None, None]:
    """The parse events of ``path`` (``end``, and ``start`` when ``starts``), read with the
    safe settings; every way the file can fail becomes one UnreadableFile line."""
    stream = open_source(path)
    parser = etree.iterparse(
        stream,
        events=("start", "end") if starts else ("end",),
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        yield from parser
    except etree.XMLSyntaxError as error:
        message = " ".join(str(error.msg).split())  # libxml2 may quote the bad bytes on a line
        raise UnreadableFile(f"{path}: line {error.lineno}: {message}") from None
    except (OSError, EOFError, zlib.error) as error:
        raise UnreadableFile(f"{path}: {error}") from None
    finally:
        stream.close()


def _release(element: etree._Element) -> None:
    """Free a yielded element and the siblings read before it."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def entity_declarations(path: str) -> bool:
    """Whether the file declares entities (``<!ENTITY``) in its first 64 KiB: a billion
    laughs, or an external entity; such a file is refused, not expanded."""
    return b"<!ENTITY" in head(path).upper()


def head(path: str, size: int = 65536) -> bytes:
    """The first ``size`` bytes of the file (unpacked); UnreadableFile if it is cut short
    or not gzip after all."""
    try:
        with open_source(path) as stream:
            return stream.read(size)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise UnreadableFile(f"{path}: {error or 'cut short'}") from None


def page_key(url: str) -> str:
    """A page's key from its URL: the path and query (``/2025/10/talks``, ``/?p=123``)."""
    parts = urlsplit(url.strip())
    key = parts.path or "/"
    return f"{key}?{parts.query}" if parts.query else key


def utc(moment: datetime) -> datetime:
    """``moment`` as timezone-aware UTC (a naive time is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Go writes times as RFC 3339 with one to nine fraction digits (RFC3339Nano); datetime holds
# six, so the rest is cut off, never rounded (rounding .9999995 would carry into the second).
# Written out rather than left to fromisoformat, which also takes ISO forms that are not
# RFC 3339 (no offset, "20251003T0915Z") and whose leniency has changed between releases.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 time (any number of fraction digits: Go writes nine, Python reads six)
    as aware UTC; ValueError if not one (no offset, a week date, …)."""
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        raise ValueError(value)
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    offset = timedelta() if zulu else timedelta(hours=int(off_h), minutes=int(off_m))
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone(-offset if sign == "-" else offset),
        )
        return utc(moment)
    except OverflowError:
        raise ValueError(value) from None


def required_time(item: Mapping[str, Any], key: str, where: str) -> datetime:
    """The RFC 3339 time of a JSON record's ``key`` as aware UTC; UnreadableFile naming
    ``where`` (the file and record) when it is missing or not such a time."""
    if key not in item:
        raise UnreadableFile(f'{where}: no "{key}"')
    value = item[key]
    try:
        return parse_rfc3339(value if isinstance(value, str) else "")
    except ValueError:
        raise UnreadableFile(f"{where}: {key} {value!r} is not an RFC 3339 time") from None
