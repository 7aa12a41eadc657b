"""``commentsvc export --format wxr``: WordPress's WXR 1.2, laid out as WordPress writes it,
read back by ``commentsvc import wordpress`` into an empty site as the same threads, and
written while the comments are still being read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner
from lxml import etree

from commentsvc.extensions import db
from commentsvc.imports import export as shared
from commentsvc.imports import wxr
from commentsvc.models import Comment, CommentStatus, Page, Site
from commentsvc.text import render_body
from tests.conftest import ORIGIN
from tests.imports.test_export import thread_of

WP = "http://wordpress.org/export/1.2/"
NAMESPACES = {
    "excerpt": "http://wordpress.org/export/1.2/excerpt/",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "wfw": "http://wellformedweb.org/CommentAPI/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "wp": WP,
}
START = datetime(2025, 10, 1, 8, 0, tzinfo=UTC)
#: A text with everything XML, HTML and CDATA make special, control characters (which XML
#: cannot hold) and line breaks.
TRICKY = (
    "Tags <script>alert(1)</script> & &amp; ]]> end\x07\x1b\x0c\n"
    "second line\n\nA paragraph, Zoë\u2019s"
)
#: What survives of it: all but the control characters.
TRICKY_KEPT = (
    "Tags <script>alert(1)</script> & &amp; ]]> end\nsecond line\n\nA paragraph, Zoë\u2019s"
)
TITLE = "US-China talks: Q&A <live> ]]> updates"


@dataclass
class Threads:
    """The ids of what :func:`threads` stored."""

    talks: int
    about: int
    root: int
    reply: int
    nested: int
    spam: int
    rejected: int
    other: int
    other_reply: int


def add_comment(
    page: Page,
    minutes: int,
    author: str,
    status: CommentStatus = CommentStatus.APPROVED,
    *,
    body: str = "Stored comment",
    parent: int | None = None,
    email: str = "",
    url: str | None = None,
    ip_prefix: str | None = None,
) -> int:
    """Store a comment on ``page``, ``minutes`` after START; its id."""
    comment = Comment(
        site_id=page.site_id,
        page_id=page.id,
        parent_id=parent,
        body=body,
        body_html=render_body(body),
        author_name=author,
        author_email=email,
        author_url=url,
        page_url=page.url,
        page_title=page.title,
        status=status,
        created_at=START + timedelta(minutes=minutes),
        ip_prefix=ip_prefix,
    )
    db.session.add(comment)
    db.session.flush()
    return comment.id


@pytest.fixture
def threads(app: Flask) -> Threads:
    """Two pages on ``news``: nested replies, every status, Unicode names, a tricky text."""
    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
        assert site is not None
        talks = Page(
            site_id=site.id,
            key="/2025/10/us-china-talks",
            url=f"{ORIGIN}/2025/10/us-china-talks",
            title=TITLE,
        )
        about = Page(site_id=site.id, key="/about")
        db.session.add_all([talks, about])
        db.session.flush()
        root = add_comment(
            talks,
            0,
            "Zoë Ångström",
            body=TRICKY,
            email="zoe@example.org",
            url="https://zoe.example/?a=1&b=2",
            ip_prefix="203.0.113.0",
        )
        reply = add_comment(
            talks, 30, "李小龍", body="A reply", parent=root, email="lee@example.com"
        )
        nested = add_comment(
            talks, 60, "O'Brien & Sons", CommentStatus.PENDING, body="Deep\nreply", parent=reply
        )
        spam = add_comment(talks, 90, "Cheap Pills", CommentStatus.SPAM, body="Buy now")
        rejected = add_comment(talks, 120, "Troll", CommentStatus.REJECTED, body="Rejected")
        other = add_comment(about, 150, "Ada Lovelace", body="About", email="ada@example.com")
        other_reply = add_comment(
            about, 180, "Grace", CommentStatus.PENDING, body="Agreed", parent=other
        )
        db.session.commit()
        return Threads(talks.id, about.id, root, reply, nested, spam, rejected, other, other_reply)


def export(runner: FlaskCliRunner, *args: str) -> bytes:
    result = runner.invoke(args=["export", "--site", "news", "--format", "wxr", *args])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def test_importing_the_export_into_an_empty_site_gives_the_same_threads(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, threads: Threads
) -> None:
    exported = tmp_path / "news.xml"
    export(runner, "--output", str(exported))
    with app.app_context():
        blog = db.session.scalar(sa.select(Site).where(Site.slug == "blog"))
        assert blog is not None
        blog.origins = [ORIGIN]  # the pages' URLs are on its origins: kept
        db.session.commit()

    result = runner.invoke(args=["import", "wordpress", str(exported), "--site", "blog"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "imported 6 comments (3 approved, 2 pending, 1 spam) on 2 pages; skipped 1 "
        "(1 trashed); 0 already there"
    )
    kept = [
        tuple(TRICKY_KEPT if value == TRICKY else value for value in row)
        for row in thread_of(app, "news")
        if row[2] != CommentStatus.REJECTED  # WordPress keeps it as trash; the import skips it
    ]
    assert len(kept) == 6
    assert thread_of(app, "blog") == kept
    with app.app_context():
        blog_pages = db.session.execute(
            sa.select(Page.key, Page.url, Page.title)
            .where(Page.site_id == blog.id)
            .order_by(Page.key)
        ).all()
        assert [tuple(page) for page in blog_pages] == [
            ("/2025/10/us-china-talks", f"{ORIGIN}/2025/10/us-china-talks", TITLE),
            # No URL of its own: the site's origin and its key; no title: its key.
            ("/about", f"{ORIGIN}/about", "/about"),
        ]
        imported = db.session.scalars(
            sa.select(Comment.author_name).where(Comment.site_id == blog.id)
        )
        assert "Troll" not in set(imported)


def children(element: Any) -> dict[str, str]:
    """Qualified name (``wp:comment_id``) → text of an element's children."""
    prefixes = {uri: prefix for prefix, uri in NAMESPACES.items()}
    found = {}
    for child in element:
        name = etree.QName(child)
        prefix = f"{prefixes[name.namespace]}:" if name.namespace else ""
        found[prefix + name.localname] = child.text or ""
    return found


def test_the_file_is_wxr_1_2_as_wordpress_writes_it(
    runner: FlaskCliRunner, threads: Threads
) -> None:
    data = export(runner)

    root = etree.fromstring(data)
    assert root.tag == "rss" and root.get("version") == "2.0"
    assert root.nsmap == NAMESPACES
    channel = root.find("channel")
    assert channel is not None
    head = children(channel)
    assert (head["title"], head["link"], head["wp:wxr_version"]) == ("News", ORIGIN, "1.2")
    assert head["wp:base_site_url"] == head["wp:base_blog_url"] == ORIGIN
    talks, about = channel.findall("item")
    item = children(talks)
    assert {name: item[name] for name in item if name != "wp:comment"} == {
        "title": TITLE,
        "link": f"{ORIGIN}/2025/10/us-china-talks",
        "pubDate": "Wed, 01 Oct 2025 08:00:00 +0000",
        "dc:creator": "news",
        "guid": f"{ORIGIN}/2025/10/us-china-talks",
        "description": "",
        "content:encoded": "",
        "excerpt:encoded": "",
        "wp:post_id": str(threads.talks),
        "wp:post_date": "2025-10-01 08:00:00",
        "wp:post_date_gmt": "2025-10-01 08:00:00",
        "wp:comment_status": "open",
        "wp:ping_status": "closed",
        "wp:post_name": "us-china-talks",
        "wp:status": "publish",
        "wp:post_parent": "0",
        "wp:menu_order": "0",
        "wp:post_type": "page",
        "wp:post_password": "",
        "wp:is_sticky": "0",
    }
    assert children(about)["link"] == f"{ORIGIN}/about"
    assert [
        (c.findtext(f"{{{WP}}}comment_id"), c.findtext(f"{{{WP}}}comment_parent"))
        for c in about.findall(f"{{{WP}}}comment")
    ] == [(str(threads.other), "0"), (str(threads.other_reply), str(threads.other))]
    assert children(about)["title"] == "/about"
    assert children(about)["wp:post_name"] == "about"

    comments = [children(c) for c in talks.findall(f"{{{WP}}}comment")]
    assert comments[0] == {
        "wp:comment_id": str(threads.root),
        "wp:comment_author": "Zoë Ångström",
        "wp:comment_author_email": "zoe@example.org",
        "wp:comment_author_url": "https://zoe.example/?a=1&b=2",
        "wp:comment_author_IP": "203.0.113.0",
        "wp:comment_date": "2025-10-01 08:00:00",
        "wp:comment_date_gmt": "2025-10-01 08:00:00",
        "wp:comment_content": (
            "Tags &lt;script&gt;alert(1)&lt;/script&gt; &amp; &amp;amp; ]]&gt; end\n"
            "second line\n\nA paragraph, Zoë\u2019s"
        ),
        "wp:comment_approved": "1",
        "wp:comment_type": "comment",
        "wp:comment_parent": "0",
        "wp:comment_user_id": "0",
    }
    assert [(c["wp:comment_id"], c["wp:comment_parent"]) for c in comments] == [
        (str(threads.root), "0"),
        (str(threads.reply), str(threads.root)),
        (str(threads.nested), str(threads.reply)),
        (str(threads.spam), "0"),
        (str(threads.rejected), "0"),
    ]
    assert [c["wp:comment_approved"] for c in comments] == ["1", "1", "0", "spam", "trash"]
    assert comments[2]["wp:comment_author"] == "O'Brien & Sons"
    assert comments[2]["wp:comment_date_gmt"] == "2025-10-01 09:00:00"
    assert comments[1]["wp:comment_author_IP"] == comments[1]["wp:comment_author_url"] == ""

    # Free text in CDATA, a "]]>" split as WordPress splits it; one element a line.
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<rss ")
    assert "<title><![CDATA[US-China talks: Q&A <live> ]]]]><![CDATA[> updates]]></title>" in (
        data.decode("utf-8")
    )
    assert b"\n\t\t\t<wp:comment_content><![CDATA[Tags &lt;script&gt;" in data
    assert b"\n\t<wp:wxr_version>1.2</wp:wxr_version>\n" in data
    assert not any(byte < 0x20 and byte not in b"\t\n\r" for byte in data)


def test_a_site_without_comments_is_an_empty_channel(runner: FlaskCliRunner) -> None:
    root = etree.fromstring(export(runner))

    assert root.find("channel/title").text == "News"
    assert root.findall("channel/item") == []


def test_the_export_of_an_unknown_site_is_refused(runner: FlaskCliRunner, tmp_path: Path) -> None:
    target = tmp_path / "nope.xml"
    result = runner.invoke(
        args=["export", "--site", "nope", "--format", "wxr", "--output", str(target)]
    )

    assert result.exit_code == 1
    assert result.output == "Error: There is no site 'nope'.\n"
    assert not target.exists()


def test_it_is_written_while_the_comments_are_read(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of a bounded size, the first handed on long before the last row is read;
    rows fetched from the database a batch at a time, a page's comments across batches."""
    total = 300
    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
        assert site is not None
        pages = [Page(site_id=site.id, key=f"/page/{number}") for number in range(3)]
        db.session.add_all(pages)
        db.session.flush()
        for number in range(total):
            add_comment(pages[number % 3], number, f"Reader {number}", body="x" * 1000)
        db.session.commit()
    read = 0
    shared_rows = wxr.rows

    def counting(found: Iterator[sa.Row[Any]]) -> Iterator[sa.Row[Any]]:
        nonlocal read
        for row in found:
            read += 1
            yield row

    @contextmanager
    def counted(statement: sa.Select[Any]) -> Iterator[Iterator[sa.Row[Any]]]:
        with shared_rows(statement) as found:
            yield counting(found)

    monkeypatch.setattr(wxr, "rows", counted)
    monkeypatch.setattr(shared, "CHUNK", 40)
    with app.app_context():
        chunks = wxr.export_wxr("news")
        first = next(chunks)
        read_for_first = read
        rest = list(chunks)

    assert read_for_first < total // 3
    assert read == total
    assert len(rest) >= 3
    assert all(len(chunk) < wxr.CHUNK_BYTES + 2000 for chunk in [first, *rest])
    root = etree.fromstring(first + b"".join(rest))
    assert len(root.findall(f"channel/item/{{{WP}}}comment")) == total
    assert [
        (item.findtext(f"{{{WP}}}post_name"), len(item.findall(f"{{{WP}}}comment")))
        for item in root.iter("item")
    ] == [("0", 100), ("1", 100), ("2", 100)]


def test_an_export_abandoned_halfway_ends_its_read_transaction(
    app: Flask, threads: Threads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closed pipe or a full disk stops the command: the generator is closed, and with it
    the transaction (and, on PostgreSQL, the server-side cursor) it was reading in."""
    monkeypatch.setattr(wxr, "CHUNK_BYTES", 1)
    with app.app_context():
        chunks = wxr.export_wxr("news")
        assert b"<wp:comment>" in next(chunks)
        assert db.session().in_transaction()

        chunks.close()

        assert not db.session().in_transaction()
