"""Readers without JavaScript and search engines (DESIGN §10), in a real Chromium with
JavaScript off: an article whose server includes the thread fragment (as nginx's SSI does,
``<!--# include virtual="/commentsvc/sites/…/thread.html?page=…" -->`` with ``/commentsvc/``
proxied to the service) shows the approved comments with their microdata; its "Leave a
Comment" and "Reply" links lead to the discuss page, whose form posts and comes back saying
the comment awaits moderation.

The site is ``blog``, whose only origin (https://blog.example) is neither the article's nor
the service's: the discuss page's post is taken because it comes from the service's own
origin.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, Request, expect

from commentsvc import PROJECT_ROOT
from tests.browser.conftest import BLOG_ORIGIN, Live, Pages
from tests.support.server import send_page, serving

pytestmark = pytest.mark.browser

SITE = "blog"
PAGE_KEY = "/2025/10/ssi-article"
ARTICLE = PROJECT_ROOT / "tests" / "browser" / "widget_pages" / "ssi-article.html"
#: The location nginx proxies to the service (README: "Without JavaScript and for search
#: engines").
PROXIED = "/commentsvc/"
INCLUDE = re.compile(r'<!--# include virtual="([^"]+)" -->')
COMMENT = "https://schema.org/Comment"
PENDING_NOTE = "Your comment is awaiting moderation."


def with_includes(text: str, service: str) -> str:
    """``text`` with each SSI include of the proxied location replaced by what the service
    answers for it, as nginx does."""

    def include(match: re.Match[str]) -> str:
        virtual = match[1]
        assert virtual.startswith(PROXIED), virtual
        response = requests.get(service + "/" + virtual.removeprefix(PROXIED), timeout=10)
        assert response.status_code == 200, response.text
        return response.text

    return INCLUDE.sub(include, text)


@contextmanager
def serve_article(service: str) -> Iterator[str]:
    """Serve the article, its includes made at each request, as every page of a new origin
    on 127.0.0.1; yields the origin."""
    template = ARTICLE.read_text("utf-8")
    for name, value in {"SITE": SITE, "PAGE": PAGE_KEY, "API": service, "LANG": ""}.items():
        template = template.replace("{{" + name + "}}", value)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            send_page(self, with_includes(template, service))

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a test's output is its assertions."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with serving(server, "ssi-article") as origin:
        yield origin


@pytest.fixture(scope="module")
def thread(live: Live) -> dict[str, int]:
    """The article's comments by name: two approved with a reply, one still pending."""
    ids = {
        "ada": live.submit(
            PAGE_KEY,
            site=SITE,
            author_name="Ada Lovelace",
            author_url="https://ada.example/",
            body="The engine weaves algebraic patterns.",
        ),
        "grace": live.submit(PAGE_KEY, site=SITE, author_name="Grace Hopper", body="Ship it."),
    }
    for comment_id in ids.values():
        live.approve(comment_id)
    ids["reply"] = live.submit(
        PAGE_KEY, site=SITE, author_name="Alan Turing", body="Agreed.", parent_id=ids["ada"]
    )
    live.approve(ids["reply"])
    ids["pending"] = live.submit(PAGE_KEY, site=SITE, body="Not yet approved.")
    return ids


@pytest.fixture(scope="module")
def origin(live: Live) -> Iterator[str]:
    with serve_article(live.base_url) as served:
        yield served


def open_article(pages: Pages, origin: str) -> Page:
    page = pages.open(java_script_enabled=False)
    page.goto(f"{origin}{PAGE_KEY}")
    heading = "An article with its comments included by the server"
    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
    return page


def post(page: Page) -> Request:
    """Click the form's button; the request the form sent (after the navigation)."""
    with (
        page.expect_request(lambda request: request.method == "POST") as sent,
        page.expect_navigation(),
    ):
        page.get_by_role("button", name="Post Comment").click()
    return sent.value


def fill_form(page: Page, body: str) -> None:
    page.get_by_role("textbox", name="Comment").fill(body)
    page.get_by_role("textbox", name="Name").fill("Barbara Liskov")
    page.get_by_role("textbox", name="Email").fill("barbara@example.com")


def pending_bodies(live: Live) -> dict[str, int | None]:
    """The pending comments of the site: body -> parent id."""
    found = [live.comment(comment_id) for comment_id in live.ids("pending", site=SITE)]
    return {str(c["body"]).replace("\r\n", "\n"): c["parent_id"] for c in found if c is not None}


def test_the_included_thread_is_read_with_its_microdata(
    live: Live, pages: Pages, origin: str, thread: dict[str, int]
) -> None:
    page = open_article(pages, origin)

    comments = page.locator(f"article[itemtype='{COMMENT}']")
    expect(comments).to_have_count(3)
    expect(page.get_by_role("heading", name="3 comments")).to_be_visible()
    for text in ("The engine weaves algebraic patterns.", "Ship it.", "Agreed."):
        expect(page.get_by_text(text)).to_be_visible()
    expect(page.get_by_text("Not yet approved.")).to_have_count(0)

    ada = page.locator(f"#comment-{thread['ada']}")
    author = ada.locator("[itemprop=author][itemtype='https://schema.org/Person']")
    expect(author.locator("[itemprop=name]")).to_have_text("Ada Lovelace")
    expect(author.locator("a[itemprop=url]")).to_have_attribute("href", "https://ada.example/")
    expect(author.locator("a[itemprop=url]")).to_have_attribute("rel", "nofollow ugc noopener")
    expect(ada.locator("[itemprop=text]")).to_have_text("The engine weaves algebraic patterns.")
    created = ada.locator("time[itemprop=dateCreated]")
    expect(created).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT.*Z$"))
    expect(ada.locator("[itemprop=url]").first).to_have_attribute(
        "href", f"{BLOG_ORIGIN}{PAGE_KEY}#comment-{thread['ada']}"
    )

    # The reply sits under its parent, as the widget shows it, and names it.
    reply = page.locator(
        f"li[data-id='{thread['ada']}'] > ol.csv-replies > li > #comment-{thread['reply']}"
    )
    expect(reply).to_be_visible()
    expect(reply.locator("link[itemprop=parentItem]")).to_have_attribute(
        "href", f"#comment-{thread['ada']}"
    )
    expect(page.locator("body")).not_to_contain_text("@")


def test_a_comment_is_posted_through_the_discuss_page(
    live: Live, pages: Pages, origin: str, thread: dict[str, int]
) -> None:
    page = open_article(pages, origin)

    page.get_by_role("link", name="Leave a Comment").click()

    discuss = live.url(f"/sites/{SITE}/discuss?page={PAGE_KEY}")
    assert page.url == f"{discuss}#respond"
    expect(page.get_by_role("heading", name=f"Comments on Article {PAGE_KEY}")).to_be_visible()
    expect(page.get_by_text("Ship it.")).to_be_visible()
    note = page.locator("#comment-pending")
    expect(note).to_be_hidden()
    body = "Posted from the discuss page without JavaScript."
    fill_form(page, body)

    sent = post(page)

    assert sent.header_value("origin") == live.base_url  # the service's own origin
    assert page.url == f"{discuss}#comment-pending"
    expect(note).to_be_visible()
    expect(note).to_have_text(PENDING_NOTE)
    assert pending_bodies(live)[body] is None


def test_a_reply_is_posted_through_the_discuss_page(
    live: Live, pages: Pages, origin: str, thread: dict[str, int]
) -> None:
    page = open_article(pages, origin)

    page.get_by_role("link", name="Reply to Grace Hopper").click()

    expect(page.get_by_role("heading", name="Reply to Grace Hopper")).to_be_visible()
    body = "A reply posted without JavaScript."
    fill_form(page, body)
    post(page)

    expect(page.locator("#comment-pending")).to_have_text(PENDING_NOTE)
    assert pending_bodies(live)[body] == thread["grace"]
