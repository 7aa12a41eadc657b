"""The moderation queue: status tabs, filters, paging and what each item shows."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.extensions import db
from commentsvc.models import Comment, CommentStatus
from tests.conftest import ORIGIN, valid_submission
from tests.support.html import html, shown_ids, tab_counts
from tests.support.panel import (
    PANEL,
)
from tests.support.state import APPROVED, PENDING


def test_queue_shows_pending_comments_newest_first(
    admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    first = make_comment(status=PENDING)
    make_comment(status=APPROVED)
    second = make_comment(status=PENDING, site="blog", page="/post")
    third = make_comment(status=PENDING)
    make_comment(status=CommentStatus.SPAM)
    response = admin_client.get(f"{PANEL}/")
    assert response.status_code == 200
    assert shown_ids(response) == [third, second, first]
    current = html(response).find("nav", cls="status-tabs").find("a", aria_current="page")
    assert current.attrs["data-status"] == "pending"


def test_queue_tabs_count_each_status(
    admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    for status, number in [(PENDING, 3), (APPROVED, 2), (CommentStatus.SPAM, 1)]:
        for _ in range(number):
            make_comment(status=status)
    response = admin_client.get(f"{PANEL}/")
    assert tab_counts(response) == {"pending": 3, "approved": 2, "rejected": 0, "spam": 1}


@pytest.mark.parametrize("status", list(CommentStatus))
def test_status_tabs_show_their_status(
    admin_client: FlaskClient, make_comment: Callable[..., int], status: CommentStatus
) -> None:
    made = {s: make_comment(status=s) for s in CommentStatus}
    response = admin_client.get(f"{PANEL}/?status={status.value}")
    assert shown_ids(response) == [made[status]]
    current = html(response).find("nav", cls="status-tabs").find("a", aria_current="page")
    assert current.attrs["data-status"] == status.value
    items = html(response).find_all("article", cls="comment")
    assert [item.attrs["data-status"] for item in items] == [status.value]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("status=bogus", "Unknown status."),
        ("cursor=not-a-cursor", "The cursor is not valid."),
        ("q=" + "x" * 501, "q: Must be at most 500 characters."),
    ],
)
def test_a_bad_argument_gets_the_same_400_as_from_the_api(
    admin_client: FlaskClient, auth: dict[str, str], query: str, says: str
) -> None:
    page = admin_client.get(f"{PANEL}/?{query}")
    assert page.status_code == 400
    assert page.mimetype == "text/html"
    assert says in page.get_data(as_text=True)
    api = admin_client.get(f"/api/v1/moderation/comments?{query}", headers=auth)
    assert api.status_code == 400
    assert api.get_json()["detail"] == says


def test_queue_filters_by_site_page_and_text(
    admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    news_a = make_comment(status=PENDING, page="/a", body="About the election")
    news_b = make_comment(status=PENDING, page="/b", author_email="needle@example.com")
    blog_a = make_comment(status=PENDING, site="blog", page="/a", body="Needle in a haystack")
    make_comment(status=APPROVED, site="blog", page="/a", body="needle approved")

    assert shown_ids(admin_client.get(f"{PANEL}/?site=blog")) == [blog_a]
    assert shown_ids(admin_client.get(f"{PANEL}/?page=/a")) == [blog_a, news_a]
    assert shown_ids(admin_client.get(f"{PANEL}/?site=news&page=/a")) == [news_a]
    assert shown_ids(admin_client.get(f"{PANEL}/?q=NEEDLE")) == [blog_a, news_b]
    assert shown_ids(admin_client.get(f"{PANEL}/?q=election")) == [news_a]
    assert shown_ids(admin_client.get(f"{PANEL}/?q=%25")) == []
    filtered = admin_client.get(f"{PANEL}/?site=blog&q=needle")
    assert shown_ids(filtered) == [blog_a]
    assert tab_counts(filtered) == {"pending": 1, "approved": 1, "rejected": 0, "spam": 0}
    # The tabs keep the filters; the filter form shows them.
    doc = html(filtered)
    approved_tab = doc.find("nav", cls="status-tabs").find("a", data_status="approved")
    query = parse_qs(urlsplit(approved_tab.attrs["href"]).query)
    assert query == {"status": ["approved"], "site": ["blog"], "q": ["needle"]}
    form = doc.find("form", id="filters")
    assert form.find("option", value="blog").attrs.get("selected") is not None
    assert form.find("input", name="q").attrs["value"] == "needle"


def test_queue_pages_with_a_cursor(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    app.config["PANEL_PAGE_SIZE"] = 2
    made = [make_comment(status=PENDING) for _ in range(5)]
    make_comment(status=PENDING, site="blog")
    seen: list[list[int]] = []
    path: str | None = f"{PANEL}/?site=news"
    while path is not None:
        response = admin_client.get(path)
        seen.append(shown_ids(response))
        links = html(response).find_all("a", rel="next")
        path = links[0].attrs["href"] if links else None
        if path is not None:
            assert parse_qs(urlsplit(path).query)["site"] == ["news"]
    assert seen == [made[4:2:-1], made[2:0:-1], made[:1]]


def test_queue_item_shows_what_a_moderator_needs(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    page = "/2025/10/us-china-talks"
    parent = make_comment(status=APPROVED, page=page, body="The parent comment says this.")
    public = app.test_client()
    public.environ_base["REMOTE_ADDR"] = "203.0.113.77"
    submitted = public.post(
        "/api/v1/sites/news/comments",
        json=valid_submission(parent_id=parent, body="A reply."),
        headers={"Origin": ORIGIN},
    )
    assert submitted.status_code == 201
    reply = submitted.get_json()["id"]

    response = admin_client.get(f"{PANEL}/")
    item = html(response).find("article", cls="comment", data_id=str(reply))
    assert item.find(cls="author-name").text == "Ada Lovelace"
    assert item.find(cls="author-email").text == "ada@example.com"
    website = item.find("a", cls="author-url")
    assert website.attrs["href"] == "https://ada.example/"
    assert "nofollow" in website.attrs["rel"]
    page_link = item.find("a", cls="page-link")
    assert page_link.attrs["href"] == f"{ORIGIN}{page}"
    assert page_link.text == "US-China talks"
    time = item.find("time")
    assert time.attrs["datetime"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", time.attrs["title"])
    assert time.text == "just now"
    assert item.find(cls="ip").text == "203.0.113.0"
    assert "203.0.113.77" not in response.get_data(as_text=True)
    excerpt = item.find("blockquote", cls="parent-excerpt")
    assert "The parent comment says this." in excerpt.text
    assert item.find(cls="body").text == "A reply."
    buttons = {b.attrs["data-action"] for b in item.find_all("button", cls="act")}
    assert buttons == {"approve", "reject", "spam", "delete"}


def test_comment_text_is_escaped(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    parent = make_comment(status=APPROVED, body='<script>alert("parent")</script>')
    submitted = app.test_client().post(
        "/api/v1/sites/news/comments",
        json=valid_submission(
            parent_id=parent,
            body='<script>alert("x")</script> <img src=x onerror=alert(1)>',
            author_name="<b>Bold</b>",
            page_title="<i>Title</i>",
        ),
        headers={"Origin": ORIGIN},
    )
    assert submitted.status_code == 201
    comment = submitted.get_json()["id"]
    for path in (f"{PANEL}/", f"{PANEL}/comments/{comment}"):
        raw = admin_client.get(path).get_data(as_text=True)
        assert "<script>alert" not in raw
        assert "<img src=x" not in raw
        assert "<b>Bold" not in raw
        assert "<i>Title" not in raw
        assert "&lt;script&gt;alert(" in raw
        assert "&lt;b&gt;Bold&lt;/b&gt;" in raw
        assert len(re.findall(r"<script\b", raw)) == 1  # panel.js only


def test_empty_queue_says_so(admin_client: FlaskClient) -> None:
    response = admin_client.get(f"{PANEL}/?status=spam&q=zzz")
    assert html(response).find("p", cls="empty").text == "No spam comments match these filters."


@pytest.mark.parametrize(
    "query",
    ["/?q=a%00b", "/?site=ne%00ws", "/?page=/a%00b", "/audit?moderator=a%00b", "/audit?site=a%00b"],
)
def test_a_nul_in_a_filter_is_refused_with_400(admin_client: FlaskClient, query: str) -> None:
    response = admin_client.get(PANEL + query)
    assert response.status_code == 400
    assert response.mimetype == "text/html"


def stored_as(app: Flask, comment_id: int, **values: str | None) -> None:
    """Give a comment, and its page, values as a release before the checks stored them."""
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        assert comment is not None
        page_values = {name: values.pop(name) for name in ("url", "title") if name in values}
        for name, value in {**values}.items():
            setattr(comment, name, value)
        for name, value in page_values.items():
            setattr(comment.page, name, value)
        db.session.commit()


@pytest.mark.parametrize(
    "page_url",
    [
        "https://evil.example/moderation/login",
        "https://evil.example\\@news.example/x",  # a browser goes to evil.example
        f"{ORIGIN}.evil.example/x",
        "javascript:alert(1)",
    ],
)
def test_a_page_link_off_the_site_is_shown_as_text(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int], page_url: str
) -> None:
    """Security review L1: a page URL stored before it was checked links nowhere."""
    comment = make_comment(status=PENDING)
    stored_as(app, comment, url=page_url, title="Session expired - sign in again")

    for path in (f"{PANEL}/", f"{PANEL}/comments/{comment}"):
        item = html(admin_client.get(path)).find("article", cls="comment", data_id=str(comment))
        assert item.find_all("a", cls="page-link") == []
        assert item.find("span", cls="page-link").text == "Session expired - sign in again"
        assert all("evil.example" not in a.attrs.get("href", "") for a in item.find_all("a"))


def test_a_page_shows_its_own_name_over_a_comments(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    """A comment shows the page's URL and title (from its approved comments) once the page
    has them, its own until then."""
    comment = make_comment(status=PENDING)
    stored_as(app, comment, page_url=f"{ORIGIN}/login", page_title="Sign in again")
    item = html(admin_client.get(f"{PANEL}/")).find("article", cls="comment")
    assert item.find("a", cls="page-link").text == "Sign in again"

    stored_as(app, comment, url=f"{ORIGIN}/2025/10/us-china-talks", title="US-China talks")
    item = html(admin_client.get(f"{PANEL}/")).find("article", cls="comment")
    link = item.find("a", cls="page-link")
    assert (link.attrs["href"], link.text) == (f"{ORIGIN}/2025/10/us-china-talks", "US-China talks")


def test_an_internationalized_website_host_is_shown_in_punycode(
    app: Flask, admin_client: FlaskClient
) -> None:
    """Security review I4: ``apple.com`` with a Cyrillic a (U+0430) is not apple.com."""
    submitted = app.test_client().post(
        "/api/v1/sites/news/comments", json=valid_submission(author_url="http://\u0430pple.com/x")
    )
    assert submitted.status_code == 201

    item = html(admin_client.get(f"{PANEL}/")).find("article", cls="comment")
    website = item.find("a", cls="author-url")
    assert website.attrs["href"] == website.text == "http://xn--pple-43d.com/x"


def test_a_website_stored_before_it_was_checked_is_shown_as_text(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    stored_as(app, comment, author_url="http://evil.example\\@ada.example/")

    item = html(admin_client.get(f"{PANEL}/")).find("article", cls="comment")
    assert item.find_all("a", cls="author-url") == []
    assert item.find("span", cls="author-url").text == "http://evil.example\\@ada.example/"
