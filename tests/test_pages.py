"""The thread for readers without JavaScript and search engines (DESIGN §10): the HTML
fragment a site includes server-side, and the discuss page with the comment form."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from commentsvc.extensions import db
from commentsvc.markup import Markup
from commentsvc.models import Comment, CommentStatus, Page, Site
from commentsvc.services import sites
from commentsvc.text import render_body
from tests.conftest import ORIGIN, valid_submission
from tests.support.html import Element, html

PAGE = "/2025/10/us-china-talks"
ARTICLE = f"{ORIGIN}{PAGE}"
FRAGMENT = f"/sites/news/thread.html?page={PAGE}"
DISCUSS = f"/sites/news/discuss?page={PAGE}"
SUBMIT = "/api/v1/sites/news/comments"
#: The test client's host: the service's own origin.
SERVICE = "http://localhost"
DISCUSS_URL = f"{SERVICE}{DISCUSS}"
PENDING = f"{DISCUSS_URL}#comment-pending"
COMMENT = "https://schema.org/Comment"
PERSON = "https://schema.org/Person"

Store = Callable[..., int]


@pytest.fixture
def store(app: Flask) -> Store:
    """Store an approved comment as it would be stored (``body_html`` rendered from
    ``body`` unless given), with an email and client facts; returns its id."""

    def make(
        body: str = "A comment.",
        *,
        body_html: str | None = None,
        author_name: str = "Reader",
        author_url: str | None = None,
        parent_id: int | None = None,
        status: CommentStatus = CommentStatus.APPROVED,
        page: str = PAGE,
    ) -> int:
        with app.app_context():
            site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
            assert site is not None
            row = db.session.scalar(
                sa.select(Page).where(Page.site_id == site.id, Page.key == page)
            )
            if row is None:
                row = Page(site_id=site.id, key=page, url=ORIGIN + page, title="US-China talks")
                db.session.add(row)
                db.session.flush()
            comment = Comment(
                site_id=site.id,
                page_id=row.id,
                parent_id=parent_id,
                body=body,
                body_html=render_body(body) if body_html is None else body_html,
                author_name=author_name,
                author_email="secret-reader@example.com",
                author_url=author_url,
                status=status,
                ip_prefix="203.0.113.0",
                user_agent="SecretAgent/1.0",
            )
            db.session.add(comment)
            if status == CommentStatus.APPROVED:
                row.approved_count += 1
            row.version += 1
            db.session.commit()
            return comment.id

    return make


def thread_of(response: TestResponse) -> Element:
    assert response.status_code == 200, response.get_data(as_text=True)
    return html(response).find("section", cls="commentsvc-thread")


def properties(item: Element) -> dict[str, list[Any]]:
    """An item's microdata properties (WHATWG microdata, without itemref): each value is
    the nested item's properties, or the element's URL, time or text."""
    found: dict[str, list[Any]] = {}

    def crawl(element: Element) -> None:
        for child in element.children:
            if isinstance(child, str):
                continue
            for name in child.attrs.get("itemprop", "").split():
                found.setdefault(name, []).append(value_of(child))
            if "itemscope" not in child.attrs:
                crawl(child)

    crawl(item)
    return found


def value_of(element: Element) -> Any:
    if "itemscope" in element.attrs:
        return {"type": element.attrs.get("itemtype"), **properties(element)}
    if element.tag in ("a", "link"):
        return element.attrs["href"]
    if element.tag == "time":
        return element.attrs["datetime"]
    return element.text


def top_level_items(root: Element) -> list[Element]:
    """The document's items that are no other item's property."""
    return [
        element
        for element in root.iter()
        if "itemscope" in element.attrs and "itemprop" not in element.attrs
    ]


def shown_ids(thread: Element) -> list[int]:
    return [int(item.attrs["data-id"]) for item in thread.find_all("li", cls="csv-comment")]


def tree(items: Element) -> list[Any]:
    """The comments of a list as (id, replies) in the order shown."""
    return [
        (int(item.attrs["data-id"]), tree(item.find("ol", cls="csv-replies")))
        for item in items.children
        if isinstance(item, Element)
    ]


# --- the fragment ---------------------------------------------------------------------------


def test_each_comment_is_an_article_with_comment_microdata(
    client: FlaskClient, store: Store
) -> None:
    first = store("First.", author_name="Ada Lovelace", author_url="https://ada.example/")
    reply = store("A reply.", author_name="Grace Hopper", parent_id=first)

    response = client.get(FRAGMENT)

    assert response.mimetype == "text/html"
    assert response.mimetype_params["charset"] == "utf-8"
    items = top_level_items(thread_of(response))
    assert [item.attrs["id"] for item in items] == [f"comment-{first}", f"comment-{reply}"]
    assert {(item.tag, item.attrs["itemtype"]) for item in items} == {("article", COMMENT)}
    data = [properties(item) for item in items]
    created = [value["dateCreated"][0] for value in data]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", time) for time in created)
    assert data == [
        {
            "url": [f"{ARTICLE}#comment-{first}"],
            "author": [{"type": PERSON, "url": ["https://ada.example/"], "name": ["Ada Lovelace"]}],
            "dateCreated": [created[0]],
            "text": ["First."],
        },
        {
            "url": [f"{ARTICLE}#comment-{reply}"],
            "parentItem": [f"#comment-{first}"],
            "author": [{"type": PERSON, "name": ["Grace Hopper"]}],  # no website: no url
            "dateCreated": [created[1]],
            "text": ["A reply."],
        },
    ]


def test_the_fragment_has_the_widgets_structure(client: FlaskClient, store: Store) -> None:
    """widget.js draws li.csv-comment > article (header.csv-meta with .csv-author and time,
    .csv-body, .csv-reply-row) + ol.csv-replies: the fragment is the same, so the widget's
    stylesheet styles it and the widget can keep it."""
    first = store("First.", author_url="https://reader.example/")
    store("Second.", parent_id=first)

    thread = thread_of(client.get(FRAGMENT))

    item = thread.find("li", cls="csv-comment")
    article = item.children[1]
    assert isinstance(article, Element) and article.tag == "article"
    header = article.find("header", cls="csv-meta")
    assert header.find(cls="csv-author").text == "Reader"
    assert header.find("time").text.endswith(" UTC")
    assert article.find("div", cls="csv-body").find("p").text == "First."
    link = article.find("p", cls="csv-reply-row").find("a", cls="csv-reply")
    assert link.text == "Reply" and link.attrs["aria-label"] == "Reply to Reader"
    assert link.attrs["rel"] == "nofollow"  # a form per comment: not for crawlers
    assert item.find("ol", cls="csv-replies").find("li").attrs["data-parent-id"] == str(first)
    assert thread.attrs["aria-label"] == "Comments" and thread.attrs["lang"] == "en"
    assert thread.find("h2").text == "2 comments"


def test_replies_nest_as_in_the_widget_three_deep_then_beside_their_parent(
    client: FlaskClient, store: Store
) -> None:
    first = store("1")
    second = store("2")
    chain = [store("1.1", parent_id=first)]
    for _ in range(4):  # 1.1.1, 1.1.1.1, then two more below the deepest level
        chain.append(store("deeper", parent_id=chain[-1]))
    late = store("1.2", parent_id=first)
    reply_to_second = store("2.1", parent_id=second)

    thread = thread_of(client.get(FRAGMENT))

    level3, below, below_that = chain[2], chain[3], chain[4]
    assert tree(thread.find("ol", cls="csv-list")) == [
        (
            first,
            [
                (chain[0], [(chain[1], [(level3, []), (below, []), (below_that, [])])]),
                (late, []),
            ],
        ),
        (second, [(reply_to_second, [])]),
    ]


def test_a_reply_to_a_comment_no_longer_public_stands_at_the_top_level(
    client: FlaskClient, store: Store, auth: dict[str, str]
) -> None:
    parent = store("Parent.")
    reply = store("Reply.", parent_id=parent)
    later = store("Later.")
    patched = client.patch(
        f"/api/v1/moderation/comments/{parent}", json={"status": "rejected"}, headers=auth
    )
    assert patched.status_code == 200

    thread = thread_of(client.get(FRAGMENT))

    assert tree(thread.find("ol", cls="csv-list")) == [(reply, []), (later, [])]
    assert "parentItem" not in properties(thread.find("article", id=f"comment-{reply}"))


def test_only_approved_comments_are_shown_and_no_email_or_client_facts(
    client: FlaskClient, store: Store
) -> None:
    shown = store("Approved.")
    for status in (CommentStatus.PENDING, CommentStatus.REJECTED, CommentStatus.SPAM):
        store(f"Hidden {status.value}.", status=status)

    response = client.get(FRAGMENT)

    assert shown_ids(thread_of(response)) == [shown]
    text = response.get_data(as_text=True)
    assert "Hidden" not in text
    for secret in ("secret-reader", "@", "203.0.113", "SecretAgent"):
        assert secret not in text, secret


def test_body_html_is_inserted_as_stored_and_everything_else_escaped(
    client: FlaskClient, store: Store
) -> None:
    """body_html was sanitized when written: the only markup inserted as it is. A name is
    text, and a website with a quote stays inside its attribute (Isso's CVE-2026-27469)."""
    stored = '<p>Read <a href="https://x.example/" rel="nofollow ugc noopener">this</a>.</p>'
    name = "<script>alert(1)</script> Mallory"
    website = 'https://mallory.example/"onmouseover="alert(1)'
    comment = store("Read this.", body_html=stored, author_name=name, author_url=website)

    response = client.get(FRAGMENT)

    text = response.get_data(as_text=True)
    assert f'<div class="csv-body" itemprop="text">{stored}</div>' in text
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; Mallory" in text
    article = thread_of(response).find("article", id=f"comment-{comment}")
    link = article.find("span", cls="csv-author").find("a")
    assert link.attrs == {
        "href": website,  # the quote is part of the URL, as a browser reads the attribute
        "rel": "nofollow ugc noopener",
        "itemprop": "url",
    }
    assert link.text == name
    assert "onmouseover=" not in re.sub(r'href="[^"]*"', "", text)


def test_a_website_that_is_not_http_is_not_linked(client: FlaskClient, store: Store) -> None:
    comment = store(author_url="javascript:alert(1)")
    article = thread_of(client.get(FRAGMENT)).find("article", id=f"comment-{comment}")
    assert article.find("span", cls="csv-author").find_all("a") == []


def test_an_unknown_page_is_an_empty_thread_and_an_unknown_site_404(
    client: FlaskClient,
) -> None:
    thread = thread_of(client.get("/sites/news/thread.html?page=/nobody-commented"))
    assert thread.find("h2").text == "No comments yet."
    assert shown_ids(thread) == []
    assert thread.attrs["data-total"] == "0"

    unknown = client.get(f"/sites/nope/thread.html?page={PAGE}")
    assert unknown.status_code == 404
    assert unknown.mimetype == "text/html"
    # Included by a server, it shows nothing; its source says why.
    assert unknown.get_data(as_text=True).strip() == (
        "<!-- commentsvc: 404 There is no such site. -->"
    )
    assert client.get("/sites/news/thread.html").status_code == 400


def test_the_fragment_is_cacheable_with_a_strong_etag(client: FlaskClient, store: Store) -> None:
    store()
    first = client.get(FRAGMENT)
    tag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{20}"', tag)  # strong
    assert first.headers["Cache-Control"] == "public, no-cache"

    again = client.get(FRAGMENT, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.headers["ETag"] == tag
    assert again.get_data() == b""

    json_tag = client.get(f"{SUBMIT}?page={PAGE}&limit=200").headers["ETag"]
    assert json_tag != tag  # another representation, another tag


def test_a_moderation_changes_the_fragment_and_its_etag(
    client: FlaskClient, store: Store, auth: dict[str, str]
) -> None:
    first = store("First.")
    before = client.get(FRAGMENT)
    assert client.get(FRAGMENT).get_data() == before.get_data()  # from the worker's cache
    pending = store("Second.", status=CommentStatus.PENDING)
    url = f"/api/v1/moderation/comments/{pending}"

    assert client.patch(url, json={"status": "approved"}, headers=auth).status_code == 200

    after = client.get(FRAGMENT, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert shown_ids(thread_of(after)) == [first, pending]
    assert client.delete(url, headers=auth).status_code == 204
    assert shown_ids(thread_of(client.get(FRAGMENT))) == [first]


def test_a_rendered_slice_is_kept_until_the_page_changes(
    app: Flask, client: FlaskClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from commentsvc import pages

    store()
    renders: list[int] = []
    render = pages._render

    def counted(*args: Any) -> bytes:
        renders.append(1)
        return render(*args)

    monkeypatch.setattr(pages, "_render", counted)

    for _ in range(3):
        client.get(FRAGMENT)
        client.get(DISCUSS)
    assert len(renders) == 1
    store()
    client.get(FRAGMENT)
    assert len(renders) == 2


def test_a_long_thread_shows_its_first_slice_and_links_to_the_rest(
    app: Flask, client: FlaskClient, store: Store
) -> None:
    """The fragment is the JSON thread's slice of MAX_PAGE_SIZE comments (200 by default):
    a page with thousands of comments still answers at once; the discuss page has the rest."""
    app.config["MAX_PAGE_SIZE"] = 3
    ids = [store(f"c{n}") for n in range(5)]

    thread = thread_of(client.get(FRAGMENT))

    assert shown_ids(thread) == ids[:3]
    assert thread.attrs["data-total"] == "5" and thread.find("h2").text == "5 comments"
    cursor = client.get(f"{SUBMIT}?page={PAGE}&limit=3").get_json()["next_cursor"]
    assert thread.attrs["data-next-cursor"] == cursor
    more = thread.find("p", cls="csv-more").find("a")
    assert more.text == "More comments"
    assert more.attrs["href"] == f"{DISCUSS_URL}&cursor={cursor}"

    rest = client.get(urlsplit(more.attrs["href"]).path + "?" + urlsplit(more.attrs["href"]).query)
    assert shown_ids(thread_of(rest)) == ids[3:]
    first = html(rest).find("a", href=DISCUSS_URL)
    assert first.text == "Back to the first comments"


def test_the_widget_can_tell_whether_the_fragment_is_current(
    client: FlaskClient, store: Store
) -> None:
    """data-etag is the JSON thread's ETag for the same slice (page, limit=data-limit): the
    widget asks for it with If-None-Match and keeps the rendered comments on a 304."""
    store()
    thread = thread_of(client.get(FRAGMENT))
    json_thread = f"{SUBMIT}?page={PAGE}&limit={thread.attrs['data-limit']}"
    etag = {"If-None-Match": thread.attrs["data-etag"], "Origin": ORIGIN}
    assert thread.attrs["data-site"] == "news" and thread.attrs["data-page"] == PAGE
    assert "data-rendered" in thread.attrs

    assert client.get(json_thread, headers=etag).status_code == 304
    # As the widget asks: its order named.
    assert client.get(f"{json_thread}&sort=oldest", headers=etag).status_code == 304
    store()
    assert client.get(json_thread, headers=etag).status_code == 200


def test_the_fragment_tells_the_widget_the_sites_markup(
    app: Flask, client: FlaskClient, store: Store
) -> None:
    """So that the widget, adopting the fragment, offers Write / Preview on Markdown sites."""
    store()
    assert thread_of(client.get(FRAGMENT)).attrs["data-markup"] == "text"
    with app.app_context():
        sites.set_markup("news", Markup.MARKDOWN)
    thread = thread_of(client.get(FRAGMENT))
    assert thread.attrs["data-markup"] == "markdown"
    # Its data-etag is still the JSON thread's, whose answer names the markup too.
    json_thread = f"{SUBMIT}?page={PAGE}&limit={thread.attrs['data-limit']}&sort=oldest"
    etag = {"If-None-Match": thread.attrs["data-etag"], "Origin": ORIGIN}
    assert client.get(json_thread, headers=etag).status_code == 304


def test_scripts_of_the_sites_origins_may_read_the_fragment(
    client: FlaskClient, store: Store
) -> None:
    store()
    own = client.get(FRAGMENT, headers={"Origin": ORIGIN})
    assert own.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert own.headers["Access-Control-Expose-Headers"] == "ETag"
    assert "Origin" in own.headers["Vary"]
    other = client.get(FRAGMENT, headers={"Origin": "https://blog.example"})
    assert other.status_code == 200  # public data: servers fetch it without any Origin
    assert "Access-Control-Allow-Origin" not in other.headers


def test_the_fragment_is_not_indexed_as_a_page_of_its_own(client: FlaskClient) -> None:
    response = client.get(FRAGMENT)
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_the_links_use_public_url_when_set(app: Flask, client: FlaskClient, store: Store) -> None:
    """An include fetches the fragment from wherever the site's server reaches the service;
    its links must name the address readers know."""
    app.config["PUBLIC_URL"] = "https://comments.example.com"
    comment = store()
    thread = thread_of(client.get(FRAGMENT))
    reply = thread.find("a", cls="csv-reply").attrs["href"]
    assert reply == f"https://comments.example.com{DISCUSS}&reply={comment}#respond"
    leave = thread.find("p", cls="csv-discuss").find("a")
    assert leave.attrs["href"] == f"https://comments.example.com{DISCUSS}#respond"


def test_each_host_the_service_is_reached_by_gets_its_own_links(
    app: Flask, client: FlaskClient, store: Store
) -> None:
    """Without PUBLIC_URL the links name the request's host; each worker keeps the links'
    base per host, which must never hand one host's links to another."""
    comment = store()
    for host in ("comments.one.example", "comments.two.example", "comments.one.example"):
        response = client.get(FRAGMENT, base_url=f"https://{host}")
        reply = thread_of(response).find("a", cls="csv-reply").attrs["href"]
        assert reply == f"https://{host}{DISCUSS}&reply={comment}#respond"
    app.config["PUBLIC_URL"] = "https://comments.example.com"
    thread = thread_of(client.get(FRAGMENT, base_url="https://comments.one.example"))
    public = thread.find("a", cls="csv-reply").attrs["href"]
    assert public == f"https://comments.example.com{DISCUSS}&reply={comment}#respond"


def test_a_closed_site_offers_no_form(app: Flask, client: FlaskClient, store: Store) -> None:
    from commentsvc.services import sites

    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
        assert site is not None
        site.settings = {**site.settings, "comments_open": False}
        db.session.commit()
        sites.forget_sites()
    store()
    thread = thread_of(client.get(FRAGMENT))
    assert thread.find_all("a", cls="csv-reply") == []
    assert thread.find_all("p", cls="csv-discuss") == []
    page = html(client.get(DISCUSS))
    assert page.find_all("form") == []
    assert page.find("h2", id="respond-heading").text == "Comments are closed."


# --- the discuss page -----------------------------------------------------------------------


def form_fields(page: Element) -> dict[str, str]:
    form = page.find("form")
    fields = {
        element.attrs["name"]: element.attrs.get("value", "")
        for element in form.find_all("input")
        if element.attrs.get("type") != "checkbox"
    }
    fields.update({area.attrs["name"]: area.text for area in form.find_all("textarea")})
    return fields


def test_the_discuss_page_is_the_thread_and_the_familiar_form(
    client: FlaskClient, store: Store
) -> None:
    comment = store("Shown here.")

    response = client.get(DISCUSS)

    assert response.status_code == 200
    page = html(response)
    assert page.find("html").attrs["lang"] == "en"
    assert page.find("title").text == "Comments on US-China talks"
    assert page.find("h1").text == "Comments on US-China talks"
    assert page.find("a", href=ARTICLE).text == "Back to the article"
    assert shown_ids(page.find("section", cls="commentsvc-thread")) == [comment]
    respond = page.find("section", id="respond")
    assert respond.find("h2").text == "Leave a Comment"
    assert respond.find("p", cls="csv-note").text == (
        "Your email address will not be published. Required fields are marked *"
    )
    labels = [label.text for label in respond.find_all("label")]
    assert labels == [
        "Comment *",
        "Name *",
        "Email *",
        "Website",
        "Notify me of follow-up comments by email.",
        "Leave this field empty",  # the honeypot, hidden from people
    ]
    assert respond.find("button").text == "Post Comment"
    form = respond.find("form")
    assert (form.attrs["method"], form.attrs["action"]) == ("post", SUBMIT)
    assert form_fields(page) == {
        "page": PAGE,
        "return_to": PENDING,
        "body": "",
        "author_name": "",
        "author_email": "",
        "author_url": "",
        "subject": "",
    }
    note = respond.find("p", id="comment-pending")
    assert (note.text, note.attrs["role"]) == ("Your comment is awaiting moderation.", "status")
    assert "#comment-pending:not(:target) { display: none; }" in response.get_data(as_text=True)


def test_the_discuss_page_is_for_search_engines_with_the_article_as_canonical(
    client: FlaskClient, store: Store
) -> None:
    store()
    page = html(client.get(DISCUSS))
    assert page.find("link", rel="canonical").attrs["href"] == ARTICLE
    assert page.find_all("meta", name="robots") == []  # indexed, links followed

    unknown = html(client.get("/sites/news/discuss?page=/no-url-known"))
    canonical = unknown.find("link", rel="canonical").attrs["href"]
    assert canonical == f"{SERVICE}/sites/news/discuss?page=/no-url-known"
    assert unknown.find("title").text == "Comments on /no-url-known"

    reply_form = html(client.get(f"{DISCUSS}&reply=1"))
    assert reply_form.find("meta", name="robots").attrs["content"] == "noindex, follow"


def test_the_discuss_page_loads_nothing_and_runs_no_script(
    client: FlaskClient, store: Store
) -> None:
    store()
    response = client.get(DISCUSS)
    policy = dict(
        (part.split()[0], part.split()[1:])
        for part in response.headers["Content-Security-Policy"].split(";")
    )
    style = re.search(r"<style>(.*?)</style>", response.get_data(as_text=True), re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style[1].encode()).digest()).decode()
    assert policy == {
        "default-src": ["'none'"],
        "style-src": [f"'sha256-{digest}'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    assert response.headers["X-Frame-Options"] == "DENY"
    # Same origin: its form's post carries the service's origin (DESIGN §10), not "null".
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "<script" not in response.get_data(as_text=True)


@pytest.mark.parametrize("origin", [SERVICE, "null", None], ids=["own origin", "null", "none"])
def test_a_post_from_the_discuss_page_comes_back_to_it_awaiting_moderation(
    client: FlaskClient, app: Flask, origin: str | None
) -> None:
    fields = form_fields(html(client.get(DISCUSS)))
    typed = {**fields, "body": "Posted without JavaScript.", "author_name": "Ada"}
    typed["author_email"] = "ada@example.com"
    headers = {"Origin": origin} if origin else {}

    response = client.post(SUBMIT, data=typed, headers=headers)

    assert response.status_code == 303
    assert response.headers["Location"] == PENDING
    with app.app_context():
        stored = db.session.scalars(sa.select(Comment)).one()
        assert (stored.body, stored.status) == ("Posted without JavaScript.", CommentStatus.PENDING)
    back = client.get(DISCUSS)
    assert "Posted without JavaScript." not in back.get_data(as_text=True)  # until approved


def test_a_reply_from_the_discuss_page(client: FlaskClient, app: Flask, store: Store) -> None:
    parent = store("The parent.", author_name="Grace")
    reply_link = thread_of(client.get(FRAGMENT)).find("a", cls="csv-reply").attrs["href"]
    parts = urlsplit(reply_link)
    assert parse_qs(parts.query) == {"page": [PAGE], "reply": [str(parent)]}

    page = html(client.get(f"{parts.path}?{parts.query}"))

    assert page.find("h2", id="respond-heading").text == "Reply to Grace"
    assert page.find("a", href=f"#comment-{parent}").text == "Their comment"
    fields = form_fields(page)
    assert fields["parent_id"] == str(parent)
    typed = {**fields, "body": "A reply.", "author_name": "Ada", "author_email": "a@example.com"}
    response = client.post(SUBMIT, data=typed, headers={"Origin": SERVICE})
    assert response.status_code == 303 and response.headers["Location"] == PENDING
    with app.app_context():
        reply = db.session.scalars(sa.select(Comment).where(Comment.id != parent)).one()
        assert reply.parent_id == parent


def test_a_reply_to_a_comment_elsewhere_shows_the_plain_form(
    client: FlaskClient, store: Store
) -> None:
    elsewhere = store(page="/another-page")
    pending = store(status=CommentStatus.PENDING)
    for parent in (elsewhere, pending, 999_999):
        page = html(client.get(f"{DISCUSS}&reply={parent}"))
        assert page.find("h2", id="respond-heading").text == "Leave a Comment"
        assert "parent_id" not in form_fields(page)
    assert client.get(f"{DISCUSS}&reply=nope").status_code == 400


def test_a_bad_post_shows_the_errors_with_a_way_back(
    client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    fields = form_fields(html(client.get(DISCUSS)))
    typed = {**fields, "body": "Kept.", "author_name": "Ada", "author_email": "not an address"}

    response = client.post(SUBMIT, data=typed, headers={"Origin": SERVICE})

    assert response.status_code == 422
    page = html(response)
    assert page.find("h1").text == "Your comment was not posted"
    assert [item.text for item in page.find("ul").find_all("li")] == [
        "Email: An email address must have an @-sign."
    ]
    assert form_fields(page)["return_to"] == PENDING
    assert page.find("textarea").text == "Kept."
    assert page.find("a", href=DISCUSS_URL).text == "Back to the article"
    assert comment_count() == 0

    again = client.post(
        SUBMIT, data={**form_fields(page), "author_email": "ada@example.com"}, headers={}
    )
    assert again.status_code == 303 and again.headers["Location"] == PENDING
    assert comment_count() == 1


@pytest.mark.parametrize(
    "return_to",
    [
        f"{SERVICE}/sites/blog/discuss?page={PAGE}",  # another site's
        f"https://evil.example/sites/news/discuss?page={PAGE}",  # not the service
        f"{SERVICE}/sites/news/thread.html?page={PAGE}",  # not the discuss page
        f"http://user@localhost/sites/news/discuss?page={PAGE}",
    ],
    ids=["other site", "other origin", "other path", "credentials"],
)
def test_return_to_on_the_service_must_be_this_sites_discuss_page(
    client: FlaskClient, comment_count: Callable[[], int], return_to: str
) -> None:
    sent = valid_submission(return_to=return_to)
    response = client.post(SUBMIT, data=sent, headers={"Origin": SERVICE})
    assert response.status_code == 400
    assert comment_count() == 0


def test_a_form_post_from_the_service_is_not_a_licence_for_json(client: FlaskClient) -> None:
    response = client.post(SUBMIT, json=valid_submission(), headers={"Origin": SERVICE})
    assert response.status_code == 403


def test_the_discuss_page_under_public_url(app: Flask, client: FlaskClient) -> None:
    """Behind a proxy that says nothing of the public address, PUBLIC_URL is the service's
    own origin: its discuss page is a valid return_to, and a post from there is taken."""
    app.config["PUBLIC_URL"] = "https://comments.example.com/c"
    public_discuss = f"https://comments.example.com/c/sites/news/discuss?page={PAGE}"
    fields = form_fields(html(client.get(DISCUSS)))
    assert fields["return_to"] == f"{public_discuss}#comment-pending"
    sent = {**fields, "body": "Hi.", "author_name": "Ada", "author_email": "a@example.com"}
    response = client.post(SUBMIT, data=sent, headers={"Origin": "https://comments.example.com"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"{public_discuss}#comment-pending"


def test_an_unknown_site_or_no_page_is_an_html_error(client: FlaskClient) -> None:
    for url, status in (("/sites/nope/discuss?page=/a", 404), ("/sites/news/discuss", 400)):
        response = client.get(url)
        assert response.status_code == status
        page = html(response)
        assert page.find("h1").text == "Comments could not be shown"
        assert page.find("meta", name="robots").attrs["content"] == "noindex"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
