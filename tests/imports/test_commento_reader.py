"""The Commento export reader: the records of a hand-written export (and of Comentario's
version 1), plain and gzipped, and one line saying what is wrong with a file it cannot read."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from commentsvc.imports.readers.commento import read
from commentsvc.imports.records import (
    BodyFormat,
    Skipped,
    SkipReason,
    SourceComment,
    SourcePage,
    SourceStatus,
    UnreadableFile,
)

SAMPLES = Path(__file__).parent / "samples" / "commento"
TALKS = SourcePage("/2025/10/talks")
QUERY_PAGE = SourcePage("/?p=42")
A1 = "a1c3e5f7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3"
B2 = "b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3"

EXPECTED = [
    # A reply before its parent; anonymous (no commenter row), kept.
    SourceComment(
        source_id=B2,
        page=TALKS,
        created_at=datetime(2025, 10, 3, 7, 15, 42, 123456, tzinfo=UTC),
        status=SourceStatus.APPROVED,
        body="Anonymous, but I agree.",
        body_format=BodyFormat.MARKDOWN,
        author_name="Anonymous",
        parent_source_id=A1,
    ),
    # Markdown verbatim, entities and script included: the renderer makes it safe.
    SourceComment(
        source_id=A1,
        page=TALKS,
        created_at=datetime(2025, 10, 3, 8, 0, tzinfo=UTC),
        status=SourceStatus.APPROVED,
        body="Tom &amp; Jerry &lt;3 <script>alert(1)</script> **bold**",
        body_format=BodyFormat.MARKDOWN,
        author_name="李雷",
        author_email="li.lei@example.cn",
        author_url="https://lilei.example/blog",
    ),
    Skipped("d3" * 32, SkipReason.DELETED),
    # Its parent was deleted: the reader names it all the same (the loader re-roots it).
    SourceComment(
        source_id="e4" * 32,
        page=TALKS,
        created_at=datetime(2025, 10, 4, 16, 0, 0, 100000, tzinfo=UTC),
        status=SourceStatus.PENDING,
        body="Still here, replying to a deleted comment.",
        body_format=BodyFormat.MARKDOWN,
        author_name="Zoë Ångström",
        author_email="zoe@example.org",
        parent_source_id="d3" * 32,
    ),
    SourceComment(
        source_id="f5" * 32,
        page=QUERY_PAGE,
        created_at=datetime(2025, 10, 5, 19, 59, 59, 999999, tzinfo=UTC),
        status=SourceStatus.SPAM,
        body="Cheap pills at http://spam.example",
        body_format=BodyFormat.MARKDOWN,
        author_name="李雷",
        author_email="li.lei@example.cn",
        author_url="https://lilei.example/blog",
    ),
    Skipped("a6" * 32, SkipReason.DELETED),
    # Its commenter row is missing from the export: kept, as Anonymous.
    SourceComment(
        source_id="b7" * 32,
        page=QUERY_PAGE,
        created_at=datetime(2025, 10, 7, 12, 0, tzinfo=UTC),
        status=SourceStatus.APPROVED,
        body="My commenter row is gone.",
        body_format=BodyFormat.MARKDOWN,
        author_name="Anonymous",
    ),
]


def write_export(tmp_path: Path, document: Any) -> Path:
    export = tmp_path / "commento-export.json"
    export.write_text(json.dumps(document), encoding="utf-8")
    return export


def comment(**fields: Any) -> dict[str, Any]:
    """A comment of an export, with ``fields`` replacing the defaults (None drops one)."""
    values = {
        "commentHex": "c1",
        "url": "/a",
        "commenterHex": "anonymous",
        "markdown": "Hi",
        "parentHex": "root",
        "state": "approved",
        "creationDate": "2025-10-03T08:00:00Z",
        "deleted": False,
    }
    values.update(fields)
    return {name: value for name, value in values.items() if value is not None}


def test_reads_the_sample_export() -> None:
    assert list(read(str(SAMPLES / "export.json"))) == EXPECTED


def test_reads_a_gzipped_export_alike(tmp_path: Path) -> None:
    packed = tmp_path / "commento-export.json.gz"
    packed.write_bytes(gzip.compress((SAMPLES / "export.json").read_bytes()))
    assert list(read(str(packed))) == EXPECTED


def test_reads_comentarios_version_1() -> None:
    assert list(read(str(SAMPLES / "comentario-v1.json"))) == [
        # Anonymous as 64 zeros; "path" beside a "url" that is a whole URL.
        SourceComment(
            source_id="1" * 64,
            page=SourcePage("/2025/10/talks", "https://blog.example/2025/10/talks"),
            created_at=datetime(2025, 11, 1, 10, 0, tzinfo=UTC),
            status=SourceStatus.APPROVED,
            body="Anonymous in Comentario.",
            body_format=BodyFormat.MARKDOWN,
            author_name="Anonymous",
        ),
        SourceComment(
            source_id="2" * 64,
            page=SourcePage("/about"),
            created_at=datetime(2025, 11, 1, 11, 30, tzinfo=UTC),
            status=SourceStatus.APPROVED,
            body="A reply with a website.",
            body_format=BodyFormat.MARKDOWN,
            author_name="Ana",
            author_email="ana@example.org",
            author_url="https://ana.example/",
            parent_source_id="1" * 64,
        ),
    ]


def test_a_blank_body_is_a_deleted_comment(tmp_path: Path) -> None:
    export = write_export(
        tmp_path, {"version": 1, "comments": [comment(markdown="  ")], "commenters": None}
    )
    assert list(read(str(export))) == [Skipped("c1", SkipReason.DELETED)]


def test_only_web_links_become_websites(tmp_path: Path) -> None:
    commenter = {"commenterHex": "f0", "name": " Bo ", "email": "", "link": "javascript:alert(1)"}
    export = write_export(
        tmp_path,
        {"version": 1, "comments": [comment(commenterHex="f0")], "commenters": [commenter]},
    )
    [record] = read(str(export))
    assert isinstance(record, SourceComment)
    assert (record.author_name, record.author_email, record.author_url) == ("Bo", None, None)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param(
            {"version": 1, "users": [], "posts": []},
            'JSON without a "comments" list, not a Commento export',
            id="no comments",
        ),
        pytest.param(
            [comment()],
            'JSON without a "comments" list, not a Commento export',
            id="a list",
        ),
        pytest.param(
            {"version": 3, "pages": [], "comments": [], "commenters": []},
            "version 3; a Commento export is version 1",
            id="Comentario v3",
        ),
        pytest.param(
            {"version": 1, "comments": [], "commenters": {}},
            '"commenters" is not a list',
            id="commenters not a list",
        ),
        pytest.param(
            {"version": 1, "comments": [], "commenters": [{"name": "Ann"}]},
            'commenters[0]: no "commenterHex"',
            id="commenter without hex",
        ),
        pytest.param(
            {"version": 1, "comments": [comment(), "c2"]},
            "comments[1]: not a JSON object",
            id="comment not an object",
        ),
        pytest.param(
            {"version": 1, "comments": [comment(commentHex=None)]},
            'comments[0]: no "commentHex"',
            id="no commentHex",
        ),
        pytest.param(
            {"version": 1, "comments": [comment(creationDate=None)]},
            'comments[0] (c1): no "creationDate"',
            id="no creationDate",
        ),
        pytest.param(
            {"version": 1, "comments": [comment(creationDate="03/10/2025")]},
            "comments[0] (c1): creationDate '03/10/2025' is not an RFC 3339 time",
            id="bad creationDate",
        ),
        pytest.param(
            {"version": 1, "comments": [comment(url=None)]},
            'comments[0] (c1): no "url"',
            id="no url",
        ),
        pytest.param(
            {"version": 1, "comments": [comment(state="rejected")]},
            "comments[0] (c1): unknown state 'rejected'",
            id="unknown state",
        ),
        pytest.param(
            {"version": 1, "comments": [comment(state=["approved"])]},
            "comments[0] (c1): unknown state ['approved']",
            id="state not a string",
        ),
        pytest.param(
            {"version": 1, "comments": [comment(state=None)]},
            "comments[0] (c1): unknown state None",
            id="no state",
        ),
    ],
)
def test_a_document_it_cannot_read(tmp_path: Path, document: Any, message: str) -> None:
    export = write_export(tmp_path, document)
    with pytest.raises(UnreadableFile) as raised:
        list(read(str(export)))
    assert str(raised.value) == f"{export}: {message}"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            (SAMPLES / "export.json").read_bytes()[:500],
            "line 15: not JSON (Expecting value, column 19)",
            id="truncated",
        ),
        pytest.param(
            b'<?xml version="1.0" encoding="utf-8"?>\n<disqus xmlns="http://disqus.com">\n',
            "XML (a WordPress or Disqus export?), not a Commento export",
            id="Disqus XML",
        ),
        pytest.param(
            b'{"version":1,"users":[],"posts":[]}\n{"id":"c1","pid":""}\n',
            "line 2: JSON lines (a Remark42 backup?), not one JSON document",
            id="Remark42 backup",
        ),
        pytest.param(
            b'{"version": 1, "comments": []}\n{"version": 1, "comments": []}\n',
            "line 2: JSON lines (a Remark42 backup?), not one JSON document",
            id="two documents",
        ),
        pytest.param(
            b'{\n  "version": 1,\n  "comments": []\n}\n]\n',
            "line 5: not JSON (Extra data, column 1)",
            id="trailing garbage",
        ),
        pytest.param(b"\n", "empty, not a Commento export", id="empty"),
        pytest.param(
            b'{"version":1,"comments":[{"markdown":"Ren\xe9e"}]}',
            "not UTF-8 text",
            id="not UTF-8",
        ),
    ],
)
def test_a_file_it_cannot_read(tmp_path: Path, content: bytes, message: str) -> None:
    export = tmp_path / "commento-export.json"
    export.write_bytes(content)
    with pytest.raises(UnreadableFile) as raised:
        list(read(str(export)))
    assert str(raised.value) == f"{export}: {message}"


def test_a_truncated_gzip_file(tmp_path: Path) -> None:
    packed = tmp_path / "commento-export.json.gz"
    packed.write_bytes(gzip.compress((SAMPLES / "export.json").read_bytes())[:-30])
    with pytest.raises(UnreadableFile) as raised:
        list(read(str(packed)))
    assert str(raised.value) == (
        f"{packed}: Compressed file ended before the end-of-stream marker was reached"
    )
