"""Atom feeds (DESIGN §8): a site's and a page's newest approved comments, their ETag, and
the site setting that turns them off (CLI and panel)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.test import TestResponse

from commentsvc.extensions import db
from commentsvc.models import Comment, CommentStatus, Site
from commentsvc.services.feeds import ENTRIES
from tests.api.test_openapi import assert_documented
from tests.conftest import ORIGIN, OTHER_ORIGIN, valid_submission
from tests.support.html import html
from tests.support.panel import ADMIN, PANEL, add_moderator, logged_in, submit

SUBMIT = "/api/v1/sites/news/comments"
FEED = "/api/v1/sites/news/feed.atom"
PAGE = "/2025/10/us-china-talks"
PAGE_FEED = f"{FEED}?page={PAGE}"
DOCUMENTED = "/api/v1/sites/{site}/feed.atom"
ATOM = "{http://www.w3.org/2005/Atom}"


def parse(response: TestResponse) -> ET.Element:
    """The feed of a 200 answer, checked to be an Atom document."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    root = ET.fromstring(response.get_data())
    assert root.tag == f"{ATOM}feed"
    return root


def text(element: ET.Element, name: str) -> str:
    found = element.find(f"{ATOM}{name}")
    assert found is not None, name
    return found.text or ""


def links(element: ET.Element, rel: str) -> list[str]:
    """The hrefs of an element's links of relation ``rel`` (none written: ``alternate``)."""
    return [
        link.attrib["href"]
        for link in element.findall(f"{ATOM}link")
        if link.get("rel", "alternate") == rel
    ]


def entries(root: ET.Element) -> list[ET.Element]:
    return root.findall(f"{ATOM}entry")


def entry_ids(root: ET.Element) -> list[int]:
    """The comment ids of the feed's entries, in the feed's order."""
    ids = []
    for entry in entries(root):
        match = re.fullmatch(
            r"tag:localhost,\d{4}-\d{2}-\d{2}:news/comments/(\d+)", text(entry, "id")
        )
        assert match, text(entry, "id")
        ids.append(int(match[1]))
    return ids


def stored(app: Flask, comment_id: int) -> Comment:
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        assert comment is not None
        db.session.expunge(comment)
        return comment


@pytest.fixture
def publish(client: FlaskClient, auth: dict[str, str]) -> Callable[..., int]:
    """Submit a comment through the public API and approve it as a moderator; its id."""

    def publish(**overrides: object) -> int:
        created = client.post(SUBMIT, json=valid_submission(**overrides))
        assert created.status_code == 201, created.get_json()
        comment_id: int = created.get_json()["id"]
        approved = client.patch(
            f"/api/v1/moderation/comments/{comment_id}",
            json={"status": "approved"},
            headers=auth,
        )
        assert approved.status_code == 200, approved.get_json()
        return comment_id

    return publish


def test_a_sites_feed_holds_its_approved_comments_newest_first(
    app: Flask,
    client: FlaskClient,
    publish: Callable[..., int],
    make_comment: Callable[..., int],
) -> None:
    first = publish(body="The first word.")
    elsewhere = publish(
        body="On another article.", page="/other", page_url=f"{ORIGIN}/other", page_title="Other"
    )
    client.post(SUBMIT, json=valid_submission(body="Still waiting.", author_email="w@example.com"))
    make_comment(site="blog", body="Another site's comment.")
    response = client.get(FEED)
    feed = parse(response)

    assert entry_ids(feed) == [elsewhere, first]
    assert text(feed, "id") == "http://localhost/api/v1/sites/news/feed.atom"
    assert text(feed, "title") == "Comments on News"
    assert links(feed, "self") == ["http://localhost/api/v1/sites/news/feed.atom"]
    newest, oldest = entries(feed)
    assert text(feed, "updated") == text(newest, "updated")
    assert text(newest, "title") == "Ada Lovelace on Other"

    comment = stored(app, first)
    assert text(oldest, "title") == "Ada Lovelace on US-China talks"
    assert datetime.fromisoformat(text(oldest, "published")) == comment.created_at
    assert text(oldest, "updated") == text(oldest, "published")
    author = oldest.find(f"{ATOM}author")
    assert author is not None
    assert (text(author, "name"), text(author, "uri")) == ("Ada Lovelace", "https://ada.example/")
    assert author.find(f"{ATOM}email") is None
    content = oldest.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "html"
    assert content.text == comment.body_html == "<p>The first word.</p>"
    assert links(oldest, "alternate") == [f"{ORIGIN}{PAGE}#comment-{first}"]
    assert links(newest, "alternate") == [f"{ORIGIN}/other#comment-{elsewhere}"]
    # The same comment as the public JSON shows it.
    assert client.get(f"{SUBMIT}/{first}").get_json()["body_html"] == content.text

    body = response.get_data()
    assert b"@example.com" not in body
    assert b"Still waiting" not in body and b"Another site" not in body


def test_a_pages_feed_holds_that_page_only(
    client: FlaskClient, publish: Callable[..., int]
) -> None:
    first = publish(body="One.")
    publish(body="Elsewhere.", page="/other", page_url=f"{ORIGIN}/other")
    second = publish(body="Two.")
    feed = parse(client.get(PAGE_FEED))
    assert entry_ids(feed) == [second, first]
    assert text(feed, "title") == "Comments on US-China talks (News)"
    self_url = f"http://localhost/api/v1/sites/news/feed.atom?page={PAGE}"
    assert text(feed, "id") == self_url
    assert links(feed, "self") == [self_url]
    assert links(feed, "alternate") == [f"{ORIGIN}{PAGE}"]


def test_a_page_nobody_commented_on_has_an_empty_feed(client: FlaskClient) -> None:
    for url in (f"{FEED}?page=/not-yet", f"{FEED}?page=/not-yet&page=/ignored"):
        feed = parse(client.get(url))
        assert entries(feed) == []
        assert text(feed, "title") == "Comments on /not-yet (News)"
        assert links(feed, "alternate") == []
        datetime.fromisoformat(text(feed, "updated"))  # a time, if no comment's
    # A blank page is no page: the site's feed.
    assert text(parse(client.get(f"{FEED}?page=%20")), "title") == "Comments on News"


def test_a_comment_with_markup_arrives_as_escaped_html(
    client: FlaskClient, publish: Callable[..., int]
) -> None:
    publish(body="Look: <script>alert(1)</script> & <b>bold</b>")
    response = client.get(FEED)
    [entry] = entries(parse(response))
    content = entry.find(f"{ATOM}content")
    assert content is not None
    # body_html, as the thread has it: the commenter's markup is text, never HTML.
    assert content.text == (
        "<p>Look: &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;</p>"
    )
    assert b"<script" not in response.get_data()
    assert b"&lt;script" not in response.get_data()  # escaped twice: once as HTML, once as XML


def test_a_feed_holds_the_newest_comments_only(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    ids = [make_comment(body=f"comment {n}") for n in range(ENTRIES + 1)]
    for url in (FEED, PAGE_FEED):
        assert entry_ids(parse(client.get(url))) == ids[:0:-1]


def test_entries_link_to_pages_on_the_sites_origins_only(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    on_site = make_comment(page=f"{ORIGIN}/by-url?x=1#top")
    off_site = make_comment(page=f"{OTHER_ORIGIN}/copied")
    a_path = make_comment(page="/no-url-known")
    feed = parse(client.get(FEED))
    found = dict(zip(entry_ids(feed), entries(feed), strict=True))
    assert links(found[on_site], "alternate") == [f"{ORIGIN}/by-url?x=1#comment-{on_site}"]
    assert links(found[off_site], "alternate") == []
    assert links(found[a_path], "alternate") == []
    assert links(parse(client.get(f"{FEED}?page={ORIGIN}/by-url?x=1%23top")), "alternate") == [
        f"{ORIGIN}/by-url?x=1#top"
    ]


def test_text_xml_cannot_hold_is_left_out(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    make_comment(body="A bell\x07 and a form feed\x0c.")
    [entry] = entries(parse(client.get(FEED)))
    content = entry.find(f"{ATOM}content")
    assert content is not None and content.text == "<p>A bell and a form feed.</p>"


def test_the_etag_gives_304_until_the_feed_changes(
    client: FlaskClient, publish: Callable[..., int], auth: dict[str, str]
) -> None:
    comment_id = publish(body="Before the edit.")
    for url in (FEED, PAGE_FEED):
        first = client.get(url)
        tag = first.headers["ETag"]
        assert tag.startswith('"')  # strong
        assert first.headers["Cache-Control"] == "public, no-cache"
        again = client.get(url, headers={"If-None-Match": tag})
        assert again.status_code == 304
        assert again.get_data() == b""
        assert (again.headers["ETag"], again.headers["Cache-Control"]) == (tag, "public, no-cache")
        assert client.get(url).headers["ETag"] == tag  # the same comments, the same bytes

    tags = {url: client.get(url).headers["ETag"] for url in (FEED, PAGE_FEED)}
    edited = client.patch(
        f"/api/v1/moderation/comments/{comment_id}", json={"body": "After the edit."}, headers=auth
    )
    assert edited.status_code == 200
    for url, tag in tags.items():
        changed = client.get(url, headers={"If-None-Match": tag})
        assert changed.status_code == 200
        assert changed.headers["ETag"] != tag
        assert b"After the edit." in changed.get_data()


def test_readers_without_an_origin_and_the_sites_pages_get_the_feed(
    client: FlaskClient, publish: Callable[..., int]
) -> None:
    publish()
    reader = client.get(FEED)  # feed readers send no Origin
    assert reader.status_code == 200
    assert "Access-Control-Allow-Origin" not in reader.headers
    page = client.get(FEED, headers={"Origin": ORIGIN})
    assert page.status_code == 200
    assert page.headers["Access-Control-Allow-Origin"] == ORIGIN
    # Another site's page is refused as on every public path (DESIGN §4).
    assert client.get(FEED, headers={"Origin": OTHER_ORIGIN}).status_code == 403


def test_an_unknown_site_is_the_same_404_as_on_other_public_paths(client: FlaskClient) -> None:
    feed = client.get("/api/v1/sites/nowhere/feed.atom")
    thread = client.get(f"/api/v1/sites/nowhere/comments?page={PAGE}")
    assert feed.status_code == thread.status_code == 404
    assert feed.mimetype == "application/problem+json"
    assert feed.get_json() == thread.get_json()


def test_a_page_key_too_long_is_a_400(app: Flask, client: FlaskClient) -> None:
    too_long = "/" + "x" * app.config["MAX_PAGE_KEY_LENGTH"]
    response = client.get(f"{FEED}?page={too_long}")
    assert response.status_code == 400
    assert response.get_json()["errors"] == {
        "page": [f"Must be at most {app.config['MAX_PAGE_KEY_LENGTH']} characters."]
    }


def feeds_setting(app: Flask, slug: str = "news") -> object:
    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == slug))
        assert site is not None
        return site.settings.get("feeds")


def test_the_cli_turns_a_sites_feeds_off_and_on(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, publish: Callable[..., int]
) -> None:
    publish()
    assert (
        "moderation=all max_links=2 min_fill_seconds=3 feeds=on"
        in runner.invoke(args=["sites", "list"]).output
    )

    off = runner.invoke(args=["sites", "set", "news", "--no-feeds"])
    assert off.exit_code == 0, off.output
    assert off.output == "site news: feeds=off\n"
    assert feeds_setting(app) is False
    for url in (FEED, PAGE_FEED):
        refused = client.get(url)
        assert refused.status_code == 404
        assert refused.mimetype == "application/problem+json"
        assert refused.get_json()["detail"] == "Site 'news' has its Atom feeds turned off."
    # Only the feeds: the thread and the other site's feed are there as before.
    assert client.get(f"{SUBMIT}?page={PAGE}").status_code == 200
    assert client.get("/api/v1/sites/blog/feed.atom").status_code == 200
    listed = runner.invoke(args=["sites", "list"]).output
    assert re.search(r"^news\t.*\tmoderation=all .* feeds=off$", listed, re.M), listed
    assert re.search(r"^blog\t.* feeds=on$", listed, re.M), listed

    # Changing a rule keeps the feeds as they are.
    assert runner.invoke(args=["sites", "set", "news", "--max-links", "3"]).exit_code == 0
    assert feeds_setting(app) is False

    on = runner.invoke(args=["sites", "set", "news", "--feeds"])
    assert on.output == "site news: feeds=on\n"
    assert len(entries(parse(client.get(FEED)))) == 1
    assert runner.invoke(args=["sites", "set", "nowhere", "--feeds"]).exit_code == 1


def test_the_panels_site_page_turns_feeds_off_and_on(app: Flask, client: FlaskClient) -> None:
    add_moderator(app, ADMIN, admin=True)
    admin = logged_in(app, ADMIN, app.test_client())
    with app.app_context():
        site_id = db.session.scalar(sa.select(Site.id).where(Site.slug == "news"))
    path = f"{PANEL}/sites/{site_id}"
    page = html(admin.get(path))
    checkbox = page.find("form", id="site-form").find("input", type="checkbox", name="feeds")
    assert "checked" in checkbox.attrs
    assert any(label.text == "Publish Atom feeds" for label in page.find_all("label"))
    snippet = page.find("pre", id="feed-link").text
    assert 'type="application/atom+xml"' in snippet
    assert "http://localhost/api/v1/sites/news/feed.atom" in snippet

    form = {"name": "News", "origins": ORIGIN, "comments_open": "y"}
    assert submit(admin, path, form).status_code == 303
    assert feeds_setting(app) is False
    assert client.get(FEED).status_code == 404
    page = html(admin.get(path))
    assert "checked" not in page.find("input", name="feeds").attrs
    assert not page.find_all("pre", id="feed-link")

    assert submit(admin, path, {**form, "feeds": "y"}).status_code == 303
    assert feeds_setting(app) is True
    assert client.get(FEED).status_code == 200


def test_the_feed_is_as_documented(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, publish: Callable[..., int]
) -> None:
    document = client.get("/openapi.json").get_json()
    publish()
    ok = client.get(PAGE_FEED)
    assert_documented(document, ok, DOCUMENTED)
    unchanged = client.get(PAGE_FEED, headers={"If-None-Match": ok.headers["ETag"]})
    assert unchanged.status_code == 304
    assert_documented(document, unchanged, DOCUMENTED)
    too_long = client.get(f"{FEED}?page={'x' * (app.config['MAX_PAGE_KEY_LENGTH'] + 1)}")
    assert too_long.status_code == 400
    assert_documented(document, too_long, DOCUMENTED)
    assert_documented(document, client.get("/api/v1/sites/nowhere/feed.atom"), DOCUMENTED)
    runner.invoke(args=["sites", "set", "news", "--no-feeds"])
    off = client.get(FEED)
    assert off.status_code == 404
    assert_documented(document, off, DOCUMENTED)
    operation = document["paths"][DOCUMENTED]["get"]
    assert f"{ENTRIES} newest" in operation["description"]


def test_pending_rejected_and_spam_comments_never_appear(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    shown = make_comment(body="Approved.")
    for status in (CommentStatus.PENDING, CommentStatus.REJECTED, CommentStatus.SPAM):
        make_comment(body=f"Hidden {status}.", status=status, author_email=f"{status}@x.example")
    for url in (FEED, PAGE_FEED):
        response = client.get(url)
        assert entry_ids(parse(response)) == [shown]
        assert b"Hidden" not in response.get_data() and b"@" not in response.get_data()
