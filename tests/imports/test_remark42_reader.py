"""The Remark42 backup reader: the records of a hand-written backup, plain and gzipped, and one
line naming the place for each file it cannot read."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from commentsvc.imports.files import parse_rfc3339
from commentsvc.imports.readers.remark42 import read
from commentsvc.imports.records import (
    BodyFormat,
    Skipped,
    SkipReason,
    SourceComment,
    SourcePage,
    SourceStatus,
    UnreadableFile,
)

SAMPLE = Path(__file__).parent / "samples" / "remark42" / "backup.jsonl"
TALKS = SourcePage(
    "/2025/10/talks", "https://blog.example/2025/10/talks", "US\u2013China talks: what changed"
)
QUERY_PAGE = SourcePage("/?p=42", "https://blog.example/?p=42", None)

EXPECTED = [
    # A reply before its parent, in the file's order.
    SourceComment(
        source_id="7b2d2c1e-reply",
        page=TALKS,
        created_at=datetime(2025, 10, 3, 7, 15, 42, 123456, tzinfo=UTC),
        status=SourceStatus.APPROVED,
        body="Agreed, and thanks for the link!",
        body_format=BodyFormat.MARKDOWN,
        author_name="Zoë Ångström",
        parent_source_id="4f1a0c9e-root",
    ),
    # Imported into Remark42 (no "orig"): its HTML, verbatim; the renderer makes it safe.
    SourceComment(
        source_id="4f1a0c9e-root",
        page=TALKS,
        created_at=datetime(2025, 10, 3, 8, 0, tzinfo=UTC),
        status=SourceStatus.APPROVED,
        body="<p>Tom &amp; Jerry &lt;3 &#8220;quoted&#8221;</p><script>alert(1)</script>",
        body_format=BodyFormat.HTML,
        author_name="李雷",
    ),
    Skipped("9c3e5d7a-gone", SkipReason.DELETED),
    # Its parent was deleted: the reader names it all the same (the loader re-roots it).
    SourceComment(
        source_id="1d8e2f60-orphan",
        page=TALKS,
        created_at=datetime(2025, 10, 4, 16, 0, 0, 100000, tzinfo=UTC),
        status=SourceStatus.APPROVED,
        body="Still here & still *right*.",
        body_format=BodyFormat.MARKDOWN,
        author_name="Visitor",
        parent_source_id="9c3e5d7a-gone",
    ),
    Skipped("5a6b7c8d-soft", SkipReason.DELETED),
    SourceComment(
        source_id="e0f1a2b3-query",
        page=QUERY_PAGE,
        created_at=datetime(2025, 10, 5, 19, 59, 59, 999999, tzinfo=UTC),
        status=SourceStatus.APPROVED,
        body="<script>alert(2)</script> is what I typed",
        body_format=BodyFormat.MARKDOWN,
        author_name="Anonymous",
    ),
    SourceComment(
        source_id="c4d5e6f7-admin",
        page=QUERY_PAGE,
        created_at=datetime(2025, 10, 6, 2, 0, tzinfo=UTC),
        status=SourceStatus.APPROVED,
        body="<p>Noted.</p>\n",
        body_format=BodyFormat.HTML,
        author_name="Site admin",
        parent_source_id="e0f1a2b3-query",
    ),
]

META = b'{"version":1,"users":[],"posts":[]}\n'


def comment_line(source_id: str = "c1", site: str = "blog", **fields: str) -> bytes:
    """One comment line of a backup, with ``fields`` replacing the defaults ("" drops one)."""
    values = {
        "id": f'"{source_id}"',
        "pid": '""',
        "text": '"<p>Hi</p>"',
        "user": '{"name":"Ann","id":"github_1"}',
        "locator": f'{{"site":"{site}","url":"https://blog.example/a"}}',
        "time": '"2025-10-03T08:00:00Z"',
    }
    values.update(fields)
    inner = ",".join(f'"{name}":{value}' for name, value in values.items() if value)
    return f"{{{inner}}}\n".encode()


def test_reads_the_sample_backup() -> None:
    assert list(read(str(SAMPLE))) == EXPECTED


def test_reads_a_gzipped_backup_alike(tmp_path: Path) -> None:
    packed = tmp_path / "backup-blog-20251006.gz"
    packed.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    assert list(read(str(packed))) == EXPECTED


def test_streams_a_line_at_a_time(tmp_path: Path) -> None:
    backup = tmp_path / "backup.jsonl"
    backup.write_bytes(META + comment_line("c1") + b"{not json\n")
    records = read(str(backup))
    first = next(records)
    assert isinstance(first, SourceComment)
    assert first.source_id == "c1"
    with pytest.raises(UnreadableFile):
        next(records)


def test_a_backup_without_metadata_and_empty_comments(tmp_path: Path) -> None:
    backup = tmp_path / "backup.jsonl"
    backup.write_bytes(comment_line("c1", text='"  "') + comment_line("c2", text='""', orig='""'))
    assert list(read(str(backup))) == [
        Skipped("c1", SkipReason.EMPTY),
        Skipped("c2", SkipReason.EMPTY),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            META + comment_line("c1") + b'{"id":"c2","pid":"","text":"<p>cut of',
            "line 3: not JSON (Unterminated string starting at, column 28)",
            id="truncated line",
        ),
        pytest.param(
            META + comment_line("c1", id=""),
            'line 2: a comment without "id"',
            id="no id",
        ),
        pytest.param(
            META + comment_line("c1", time=""),
            "line 2: comment 'c1': no \"time\"",
            id="no time",
        ),
        pytest.param(
            META + comment_line("c1", time='"2025-10-03 08:00"'),
            "line 2: comment 'c1': time '2025-10-03 08:00' is not an RFC 3339 time",
            id="bad time",
        ),
        pytest.param(
            META + comment_line("c1", locator='{"site":"blog"}'),
            "line 2: comment 'c1': no \"locator.url\"",
            id="no page",
        ),
        pytest.param(
            META + comment_line("c1") + b"\n" + comment_line("c2", site="shop"),
            "line 4: site 'shop', but line 2 is site 'blog'; a backup holds one site",
            id="mixed sites",
        ),
        pytest.param(
            META + b'["c1"]\n',
            "line 2: not a JSON object",
            id="not an object",
        ),
        pytest.param(
            META + comment_line("c1").replace(b"Ann", b"Ren\xe9e"),
            "line 2: not UTF-8 text",
            id="not UTF-8",
        ),
        pytest.param(
            b'<?xml version="1.0" encoding="utf-8"?>\n<disqus xmlns="http://disqus.com">\n',
            "line 1: XML (a WordPress or Disqus export?), not a Remark42 backup",
            id="Disqus XML",
        ),
        pytest.param(
            b'{\n  "version": 1,\n  "comments": []\n}\n',
            "line 1: one JSON document over many lines (a Commento export?), not JSON lines",
            id="pretty JSON",
        ),
        pytest.param(
            b'{"version":1,"comments":[],"commenters":[]}',
            "line 1: a Commento export, not a Remark42 backup",
            id="Commento on one line",
        ),
    ],
)
def test_a_file_it_cannot_read(tmp_path: Path, content: bytes, message: str) -> None:
    backup = tmp_path / "backup.jsonl"
    backup.write_bytes(content)
    with pytest.raises(UnreadableFile) as raised:
        list(read(str(backup)))
    assert str(raised.value) == f"{backup}: {message}"


def test_a_truncated_gzip_file(tmp_path: Path) -> None:
    packed = tmp_path / "backup.gz"
    packed.write_bytes(gzip.compress(SAMPLE.read_bytes())[:-30])
    with pytest.raises(UnreadableFile) as raised:
        list(read(str(packed)))
    assert str(raised.value) == (
        f"{packed}: line 1: Compressed file ended before the end-of-stream marker was reached"
    )


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2025-10-03T09:15:42.123456789+02:00", datetime(2025, 10, 3, 7, 15, 42, 123456)),
        ("2025-10-03T09:15:42.999999999Z", datetime(2025, 10, 3, 9, 15, 42, 999999)),
        ("2025-10-03t09:15:42.1z", datetime(2025, 10, 3, 9, 15, 42, 100000)),
        ("2025-10-03 09:15:42-00:30", datetime(2025, 10, 3, 9, 45, 42)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1)),
    ],
)
def test_rfc3339_times(text: str, moment: datetime) -> None:
    assert parse_rfc3339(text) == moment.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2025-10-03T09:15:42",  # no offset: not RFC 3339, and not guessed
        "2025-10-03",
        "2025-13-03T09:15:42Z",
        "2025-10-03T09:15:42+24:00",
        "20251003T091542Z",
        "\uff12\uff10\uff12\uff15-10-03T09:15:42Z",  # full-width digits
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_not_rfc3339_times(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)
