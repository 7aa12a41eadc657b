"""The README's no-JavaScript form in a real Chromium with JavaScript off (DESIGN §4).

The article is served from an origin of its own, registered as the only origin of the site
``noscript``, and sends no referrer (``<meta name="referrer" content="no-referrer">``), so
Chromium posts the form with ``Origin: null`` (first-hour review, finding 6). The form is
the README's snippet itself, read from README.md, with the service's URL, the site and the
article's origin put in: the README and this test cannot drift apart.
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
from tests.browser.conftest import ADMIN_EMAIL, PASSWORD, Live, PageLog, Pages
from tests.support.server import send_page, serving

pytestmark = pytest.mark.browser

SITE = "noscript"
ARTICLE = PROJECT_ROOT / "tests" / "browser" / "widget_pages" / "noscript-article.html"
MARKER = "<!-- README snippet -->"
# What the README's snippet is written for, and what this test serves instead.
README_SERVICE = "https://comments.example.com"
README_SITE_PATH = "/api/v1/sites/news/"
README_ORIGIN = "https://news.example"
README_PAGE = "/2025/10/us-china-talks"
PENDING_NOTE = "Thank you! Your comment is awaiting moderation."
CSRF_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def readme_snippet() -> str:
    """The first html block after the README's "**Without JavaScript**" paragraph."""
    readme = (PROJECT_ROOT / "README.md").read_text("utf-8")
    after = readme.split("**Without JavaScript**", 1)[1]
    found = re.search(r"```html\n(.*?)```", after, re.S)
    assert found, "no html snippet after the README's Without JavaScript paragraph"
    return found[1]


def article_html(service: str, origin: str) -> str:
    """The article page with the README's snippet, pointed at the live service and site."""
    snippet = readme_snippet()
    for written in (README_SERVICE, README_SITE_PATH, README_ORIGIN):
        assert written in snippet, f"the README's snippet no longer has {written}"
    snippet = (
        snippet.replace(README_SERVICE, service)
        .replace(README_SITE_PATH, f"/api/v1/sites/{SITE}/")
        .replace(README_ORIGIN, origin)
    )
    page = ARTICLE.read_text("utf-8")
    assert MARKER in page
    return page.replace(MARKER, snippet)


@contextmanager
def serve_article(service: str) -> Iterator[str]:
    """Serve the article (:func:`article_html`) as every page of a new origin on 127.0.0.1;
    yields the origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    page = article_html(service, origin)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            send_page(self, page)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a test's output is its assertions."""

    server.RequestHandlerClass = Handler
    server.daemon_threads = True
    with serving(server, "noscript-article"):
        yield origin


def register_site(live: Live, origin: str) -> None:
    """Add the site for ``origin`` as an administrator does: the panel's site form."""

    def token(page: requests.Response) -> str:
        found = CSRF_TOKEN.search(page.text)
        assert found, "no CSRF token in the panel's form"
        return found[1]

    with requests.Session() as admin:
        login = admin.get(live.url("/moderation/login"), timeout=10)
        credentials = {"csrf_token": token(login), "email": ADMIN_EMAIL, "password": PASSWORD}
        response = admin.post(
            live.url("/moderation/login"), data=credentials, allow_redirects=False, timeout=10
        )
        assert response.status_code in (302, 303), response.text
        form = admin.get(live.url("/moderation/sites"), timeout=10)
        site = {"slug": SITE, "name": "No JavaScript", "origins": origin, "comments_open": "y"}
        response = admin.post(
            live.url("/moderation/sites"),
            data={"csrf_token": token(form), **site},
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code == 303, response.text


@pytest.fixture(scope="module")
def origin(live: Live) -> Iterator[str]:
    """The article's origin, the only origin of the site ``noscript``."""
    with serve_article(live.base_url) as served:
        register_site(live, served)
        yield served


def open_article(pages: Pages, origin: str) -> Page:
    page = pages.open(java_script_enabled=False)
    page.goto(f"{origin}{README_PAGE}")
    expect(page.get_by_role("heading", name="An article read without JavaScript")).to_be_visible()
    return page


def post(page: Page) -> Request:
    """Click the form's button; the request the form sent (after the navigation)."""
    with (
        page.expect_request(lambda request: request.method == "POST") as sent,
        page.expect_navigation(),
    ):
        page.get_by_role("button", name="Post Comment").click()
    return sent.value


def pending_bodies(live: Live) -> list[str]:
    """The bodies of the site's pending comments (a form sends line breaks as CRLF)."""
    ids = live.ids("pending", site=SITE)
    comments = [comment for comment in map(live.comment, ids) if comment is not None]
    return [str(comment["body"]).replace("\r\n", "\n") for comment in comments]


def test_a_post_comes_back_to_the_article_saying_it_awaits_moderation(
    live: Live, pages: Pages, origin: str
) -> None:
    page = open_article(pages, origin)
    note = page.locator("#comment-pending")
    expect(note).to_be_hidden()  # not before posting
    body = "Posted without JavaScript."
    page.get_by_role("textbox", name="Comment").fill(body)
    page.get_by_role("textbox", name="Name").fill("Ada Lovelace")
    page.get_by_role("textbox", name="Email").fill("ada@example.com")

    sent = post(page)

    assert sent.header_value("origin") == "null"  # the no-referrer page hides its origin
    assert page.url == f"{origin}{README_PAGE}#comment-pending"
    expect(note).to_be_visible()
    expect(note).to_have_text(PENDING_NOTE)
    assert body in pending_bodies(live)


def test_an_invalid_post_can_be_corrected_on_the_error_page(
    live: Live, pages: Pages, page_log: PageLog, origin: str
) -> None:
    # Chromium logs the error page's status as a failed load.
    page_log.expect_console_error(r"status of 422")
    page = open_article(pages, origin)
    body = "A long comment the reader\nwould hate to type again."
    page.get_by_role("textbox", name="Comment").fill(body)
    page.get_by_role("textbox", name="Name").fill("Ada Lovelace")
    page.get_by_role("textbox", name="Email").fill("ada@example.com")
    page.get_by_role("textbox", name="Website").fill("ftp://ada.example")  # a URL, but not http(s)

    post(page)

    assert page.url == live.url(f"/api/v1/sites/{SITE}/comments")
    expect(page.get_by_role("heading", name="Your comment was not posted")).to_be_visible()
    expect(page.locator("li")).to_have_text(["Website: Must start with http:// or https://."])
    expect(page.get_by_role("textbox", name="Comment")).to_have_value(body)
    expect(page.get_by_role("textbox", name="Website")).to_have_value("ftp://ada.example")
    message = "Must start with http:// or https://."
    expect(page.locator("#author_url-error")).to_have_text(message)
    back = page.get_by_role("link", name="Back to the article")
    expect(back).to_have_attribute("href", f"{origin}{README_PAGE}")
    assert body not in pending_bodies(live)

    page.get_by_role("textbox", name="Website").fill("https://ada.example/")
    sent = post(page)

    assert sent.header_value("origin") == "null"  # the error page sends no referrer either
    assert page.url == f"{origin}{README_PAGE}#comment-pending"
    expect(page.locator("#comment-pending")).to_have_text(PENDING_NOTE)
    expect(page.locator("#comment-pending")).to_be_visible()
    assert pending_bodies(live).count(body) == 1
