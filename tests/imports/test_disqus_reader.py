"""The Disqus export reader: a hand-written export read into exact records, gzipped or
not, and every file it must refuse with one line."""

from __future__ import annotations

import gzip
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from commentsvc.imports.files import iter_xml
from commentsvc.imports.readers.disqus import read
from commentsvc.imports.records import (
    BodyFormat,
    Skipped,
    SkipReason,
    SourceComment,
    SourcePage,
    SourceStatus,
    UnreadableFile,
)

SAMPLES = Path(__file__).parent / "samples" / "disqus"
EXPORT = SAMPLES / "export.xml"

HELLO = SourcePage(
    "/2024/05/hello-world/", "https://blog.example.com/2024/05/hello-world/", "Hello, world"
)
CAFE = SourcePage("/?p=42", "https://blog.example.com/?p=42", "Café & croissants")

EXPECTED = [
    HELLO,
    SourceComment(
        source_id="9000002",
        page=HELLO,
        created_at=datetime(2024, 5, 2, 10, 15, tzinfo=UTC),
        status=SourceStatus.APPROVED,
        body="<p>Agreed — thanks!</p>",
        body_format=BodyFormat.HTML,
        author_name="Zoë Ångström",
        author_email="zoe@example.org",
        parent_source_id="9000001",
    ),
    SourceComment(
        source_id="9000001",
        page=HELLO,
        created_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        status=SourceStatus.APPROVED,
        body=(
            '<p>Fish &amp; chips &lt;3 &eacute;t&eacute;</p><script>alert("x")</script>'
            "<p>2 &gt; 1<br>second line\nthird line</p>"
        ),
        body_format=BodyFormat.HTML,
        author_name="José Müller",
    ),
    SourceComment(
        source_id="9000003",
        page=HELLO,
        created_at=datetime(2024, 5, 2, 11, 0, tzinfo=UTC),
        status=SourceStatus.SPAM,
        body='<p>Cheap watches <a href="http://spam.example/" rel="nofollow noopener">here</a></p>',
        body_format=BodyFormat.HTML,
        author_name="Watch Seller",
        author_email="spam@spam.example",
    ),
    Skipped("9000004", SkipReason.DELETED),
    CAFE,
    SourceComment(
        source_id="9000005",
        page=CAFE,
        created_at=datetime(2024, 5, 3, 9, 30, tzinfo=UTC),
        status=SourceStatus.APPROVED,
        body="<p>Replying to a deleted comment.</p>",
        body_format=BodyFormat.HTML,
        author_name="reader42",
        parent_source_id="9000004",
    ),
    SourceComment(
        source_id="9000006",
        page=HELLO,
        created_at=datetime(2024, 5, 4, 23, 59, 59, tzinfo=UTC),
        status=SourceStatus.PENDING,
        body="<p>Waiting for a moderator.</p>",
        body_format=BodyFormat.HTML,
        author_name="Anonymous",
        author_email="guest@example.net",
    ),
    Skipped("9000007", SkipReason.EMPTY),
    SourceComment(
        source_id="9000008",
        page=HELLO,
        created_at=datetime(2024, 5, 6, 1, 2, 3, tzinfo=UTC),
        status=SourceStatus.APPROVED,
        body="<p>重複したスレッドから。</p>",
        body_format=BodyFormat.HTML,
        author_name="山田太郎",
        author_email="taro@example.jp",
    ),
    Skipped("9000009", SkipReason.DELETED),
]


def test_reads_an_export_into_exact_records() -> None:
    assert list(read(str(EXPORT))) == EXPECTED


def test_times_are_aware_utc() -> None:
    for record in read(str(EXPORT)):
        if isinstance(record, SourceComment):
            assert record.created_at.utcoffset() is not None
            assert record.created_at.tzinfo == UTC


def test_reads_the_gzipped_export_disqus_mails(tmp_path: Path) -> None:
    packed = tmp_path / "example-blog-2024-05-06T00:00:00.000000-all.xml.gz"
    packed.write_bytes(gzip.compress(EXPORT.read_bytes()))

    assert list(read(str(packed))) == EXPECTED


def test_streams_records_before_a_truncated_end_and_names_its_line(tmp_path: Path) -> None:
    text = EXPORT.read_text(encoding="utf-8")
    cut = tmp_path / "truncated.xml"
    cut.write_text(text[: text.index('<post dsq:id="9000003">') + 60], encoding="utf-8")

    records = read(str(cut))
    assert next(records) == HELLO
    with pytest.raises(UnreadableFile) as refused:
        list(records)

    message = str(refused.value)
    assert re.match(rf"{re.escape(str(cut))}: line \d+: ", message), message
    assert "\n" not in message


def test_refuses_a_truncated_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(EXPORT.read_bytes())
    cut = tmp_path / "export.xml.gz"
    cut.write_bytes(packed[: len(packed) // 2])

    with pytest.raises(UnreadableFile) as refused:
        list(read(str(cut)))

    assert str(refused.value) == (
        f"{cut}: Compressed file ended before the end-of-stream marker was reached"
    )


def test_refuses_a_billion_laughs_at_once() -> None:
    path = str(SAMPLES / "billion-laughs.xml")
    started = time.monotonic()

    with pytest.raises(UnreadableFile) as refused:
        list(read(path))

    assert time.monotonic() - started < 1
    assert str(refused.value) == f"{path}: declares XML entities; an export never does (refused)"


def test_refuses_a_wordpress_export_saying_what_it_is() -> None:
    path = str(SAMPLES / "wordpress.xml")

    with pytest.raises(UnreadableFile) as refused:
        list(read(path))

    assert str(refused.value) == (
        f"{path}: a WordPress export (WXR), not a Disqus export; import it as wordpress"
    )


def test_refuses_other_xml_naming_its_root(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text('<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>')

    with pytest.raises(UnreadableFile) as refused:
        list(read(str(path)))

    assert str(refused.value) == (
        f"{path}: not a Disqus export: the root is <{{http://www.w3.org/2005/Atom}}feed>,"
        ' not <disqus xmlns="http://disqus.com">'
    )


def test_refuses_another_kind_of_file_before_reading_past_its_root(tmp_path: Path) -> None:
    """The root is judged as it opens: a WordPress export cut short (or huge) is named as
    what it is, not parsed to its end first."""
    text = (SAMPLES / "wordpress.xml").read_text(encoding="utf-8")
    cut = tmp_path / "cut.xml"
    cut.write_text(text[: text.index("<item>") + 20], encoding="utf-8")

    with pytest.raises(UnreadableFile) as refused:
        list(read(str(cut)))

    assert str(refused.value) == (
        f"{cut}: a WordPress export (WXR), not a Disqus export; import it as wordpress"
    )


THREAD = """<thread dsq:id="1">
    <link>https://blog.example.com/a/</link><title>A</title>
  </thread>"""


def _post(
    *,
    dsq_id: str = ' dsq:id="10"',
    created_at: str = "<createdAt>2024-05-01T00:00:00Z</createdAt>",
    thread: str = '<thread dsq:id="1" />',
    deleted: str = "false",
) -> str:
    return f"""<post{dsq_id}>
    <message><![CDATA[<p>Hi</p>]]></message>
    {created_at}
    <isDeleted>{deleted}</isDeleted><isSpam>false</isSpam>
    <author><name>N</name></author>
    {thread}
  </post>"""


def _export(tmp_path: Path, *entries: str) -> str:
    path = tmp_path / "export.xml"
    body = "\n  ".join(entries)
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals">\n'
        f"  {body}\n</disqus>\n",
        encoding="utf-8",
    )
    return str(path)


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ((THREAD, _post(dsq_id="")), "line 6: a post without dsq:id"),
        ((THREAD, _post(created_at="")), "line 6: post 10 without createdAt"),
        (
            (THREAD, _post(created_at="<createdAt>yesterday</createdAt>")),
            "line 6: post 10: createdAt 'yesterday' is not ISO 8601",
        ),
        ((THREAD, _post(thread="")), "line 6: post 10 names no thread"),
        (
            (THREAD, _post(thread='<thread dsq:id="2" />')),
            "line 6: post 10 names thread 2, not in the file before it",
        ),
        ((_post(), THREAD), "line 3: post 10 names thread 1, not in the file before it"),
        (
            ("<thread><link>https://blog.example.com/a/</link></thread>",),
            "line 3: a thread without dsq:id",
        ),
        (
            ('<thread dsq:id="1"><id /><title>A</title></thread>',),
            "line 3: thread 1 has neither a link nor an id",
        ),
    ],
)
def test_refuses_a_post_or_thread_missing_what_it_needs(
    tmp_path: Path, entries: tuple[str, ...], problem: str
) -> None:
    path = _export(tmp_path, *entries)

    with pytest.raises(UnreadableFile) as refused:
        list(read(path))

    assert str(refused.value) == f"{path}: {problem}"


def _hi(source_id: str, page: SourcePage) -> SourceComment:
    """The comment :func:`_post` writes."""
    return SourceComment(
        source_id=source_id,
        page=page,
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
        status=SourceStatus.APPROVED,
        body="<p>Hi</p>",
        body_format=BodyFormat.HTML,
        author_name="N",
    )


def test_streams_a_large_gzip_and_refuses_where_it_is_cut_short(tmp_path: Path) -> None:
    posts = "\n  ".join(_post(dsq_id=f' dsq:id="{number}"') for number in range(2000))
    packed = gzip.compress(Path(_export(tmp_path, THREAD, posts)).read_bytes())
    cut = tmp_path / "export.xml.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    page = SourcePage("/a/", "https://blog.example.com/a/", "A")

    records = read(str(cut))
    assert [next(records), next(records), next(records)] == [page, _hi("0", page), _hi("1", page)]
    with pytest.raises(UnreadableFile) as refused:
        list(records)

    assert str(refused.value) == (
        f"{cut}: Compressed file ended before the end-of-stream marker was reached"
    )


def test_a_deleted_post_needs_only_its_id(tmp_path: Path) -> None:
    path = _export(tmp_path, _post(created_at="", thread="", deleted="true"))

    assert list(read(path)) == [Skipped("10", SkipReason.DELETED)]


def test_a_thread_without_a_link_is_keyed_by_its_identifier(tmp_path: Path) -> None:
    thread = '<thread dsq:id="1"><id>post-17</id><title>A</title></thread>'
    path = _export(tmp_path, thread, _post())

    page = SourcePage("post-17", None, "A")
    assert list(read(path)) == [page, _hi("10", page)]


def test_the_roots_children_are_read_whole_and_let_go(tmp_path: Path) -> None:
    """What the reader parses with: only the root's children, a post's own ``<thread/>``
    reference intact, every entry passed (categories too) cleared and dropped from the
    root, so of what came before an entry the root keeps one cleared element at most."""
    category = '<category dsq:id="7"><forum>example</forum><title>General</title></category>'
    path = _export(tmp_path, category, THREAD, _post(), _post(dsq_id=' dsq:id="11"'))
    dsq_id = "{http://disqus.com/disqus-internals}id"
    seen = []

    for entry in iter_xml(path, {"thread", "post"}, top_level=True):
        before = list(entry.itersiblings(preceding=True))
        assert len(before) <= 1 and all(len(passed) == 0 for passed in before)
        reference = entry.findall("{*}thread")
        seen.append(
            (etree.QName(entry).localname, entry.get(dsq_id), [r.get(dsq_id) for r in reference])
        )

    assert seen == [("thread", "1", []), ("post", "10", ["1"]), ("post", "11", ["1"])]
