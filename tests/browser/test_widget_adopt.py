"""The widget adopting a thread the page already holds (DESIGN §10), in a real Chromium.

A site includes ``GET /sites/{site}/thread.html?page=KEY`` server-side inside the widget's
container: ``widget_pages/ssi-article.html``, served here by a small server of its own
origin that makes the include as nginx's SSI would (``with_includes`` of
``test_thread_html.py``), for two sites registered for that origin, one in plain text and one
in Markdown. (Not through ``page.route``: Chromium takes a page fulfilled that way for a
public one, and refuses it the loopback service.)

The widget reads the comments from that markup and shows them at once, without waiting for
the API, then revalidates them with the fragment's ETag: a 304 keeps what is shown, a 200
redraws it. The reader never sees the thread shrink while the widget mounts, whatever its
language; a reader who wants the newest first gets the thread loaded anew.

The gunicorn, Chromium, page keys and helpers are those of ``test_widget.py``.
"""

# ruff: noqa: F811 (tests take the fixtures imported from test_widget.py as arguments)
from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import Page, Request, Response, Route, expect

from tests.browser.conftest import Live
from tests.browser.test_thread_html import INCLUDE, with_includes
from tests.browser.test_widget import (  # noqa: F401 (host, host_pages, key, page: fixtures)
    POST,
    assert_accessible,
    bulk,
    comment,
    fill_form,
    host,
    host_pages,
    key,
    page,
    widget,
)
from tests.support.databases import run_databases
from tests.support.host_pages import PLACEHOLDER, WIDGET_PAGES
from tests.support.server import send_page, serving
from tests.support.service import run_cli, service_env

pytestmark = pytest.mark.browser

SITE = "adopt"  # plain text
MARKDOWN_SITE = "adopt-md"
ARTICLE = "ssi-article.html"
I18N = "/widget/i18n/"
API = "**/api/v1/**"
SORT = "commentsvc:sort "

#: Each comment of a tree (the page's copy in the light DOM, or the widget's in its shadow
#: root), in document order: its id, the id of the comment it sits under (0: none), its
#: author's name and website, its time and its text.
COMMENTS_OF = """root => [...root.querySelectorAll("li.csv-comment")].map(li => {
  const article = li.querySelector(":scope > article");
  const author = article.querySelector(".csv-author");
  const website = author.matches("a") ? author : author.querySelector("a");
  const parent = li.parentElement.closest("li.csv-comment");
  return {
    id: Number(li.dataset.id),
    parent: parent ? Number(parent.dataset.id) : 0,
    author: author.textContent.trim(),
    website: website ? website.getAttribute("href") : null,
    time: article.querySelector("time").getAttribute("datetime"),
    text: article.querySelector(".csv-body").textContent.trim(),
  };
})"""
SHADOW = 'document.querySelector("#comments").shadowRoot'
LIGHT = 'document.querySelector("#comments section[data-rendered]")'

# Recorded from the first frame the container is whole in (its next sibling is parsed): how
# many comments the reader sees in it, and whether the widget's root is attached.
FRAMES = """
window.__frames = [];
(function frame() {
  const container = document.querySelector("#comments");
  if (container && container.nextElementSibling) {
    const root = container.shadowRoot;
    const seen = e => e.checkVisibility();
    const light = [...container.querySelectorAll("article[itemscope]")].filter(seen).length;
    const shadow = root ? [...root.querySelectorAll("li.csv-comment")].filter(seen).length : 0;
    window.__frames.push({ root: !!root, seen: light + shadow });
  }
  requestAnimationFrame(frame);
})();
"""


# --- Helpers ------------------------------------------------------------------------------------


def fragment(live: Live, key: str, site: str = SITE) -> str:
    """The thread fragment of ``key`` as the service renders it now."""
    response = requests.get(
        live.url(f"/sites/{site}/thread.html"), params={"page": key}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.text


class ArticleSite:
    """The origin of the articles that include their thread server-side."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        #: Page key -> the fragment to include instead of the service's current one.
        self.frozen: dict[str, str] = {}

    def url(self, key: str, **params: str) -> str:
        return f"{self.origin}/w/{ARTICLE}?{urlencode({'page': key, **params})}"


def article_handler(service: str, site: ArticleSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != f"/w/{ARTICLE}":
                self.send_error(404)
                return
            values = {"SITE": SITE, **{k.upper(): v for k, v in parse_qsl(parts.query)}}
            values["API"] = service
            text = PLACEHOLDER.sub(
                lambda m: html.escape(values.get(m[1], "")),
                (WIDGET_PAGES / ARTICLE).read_text("utf-8"),
            )
            frozen = site.frozen.get(values.get("PAGE", ""))
            if frozen is None:
                text = with_includes(text, service)
            else:
                text = INCLUDE.sub(lambda _: frozen, text)
            send_page(self, text)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a test's output is its assertions."""

    return Handler


@pytest.fixture(scope="module")
def articles(live: Live) -> Iterator[ArticleSite]:
    """The articles' origin, on a port of its own, and the two sites registered for it with
    the CLI on the live server's database (as the ``live`` fixture made it)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    site = ArticleSite(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = article_handler(live.base_url, site)
    server.daemon_threads = True
    env = service_env(
        run_databases().url(live.log.parent / "panel.db"),
        COMMENTSVC_ENV="production",
        COMMENTSVC_SESSION_COOKIE_SECURE="false",
    )
    run_cli(env, "sites", "add", SITE, "--origin", site.origin)
    run_cli(env, "sites", "add", MARKDOWN_SITE, "--origin", site.origin)
    run_cli(env, "sites", "set", MARKDOWN_SITE, "--markup", "markdown")
    with serving(server, "adopt-articles"):
        yield site


def etag_of(included: str) -> str:
    found = re.search(r'data-etag="([^"]+)"', included)
    assert found, "no data-etag in the fragment"
    return found[1].replace("&#34;", '"').replace("&quot;", '"')


def shown(page: Page) -> list[dict[str, Any]]:
    """The comments the widget shows (its shadow root), in order; [] before it has one."""
    found: list[dict[str, Any]] = page.evaluate(f"() => {SHADOW} ? ({COMMENTS_OF})({SHADOW}) : []")
    return found


def included_comments(page: Page) -> list[dict[str, Any]]:
    """The comments of the page's own copy of the thread (the light DOM), in order."""
    found: list[dict[str, Any]] = page.evaluate(f"() => ({COMMENTS_OF})({LIGHT})")
    return found


def ids(comments: list[dict[str, Any]]) -> list[int]:
    return [c["id"] for c in comments]


def outline(comments: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Each comment's id and the id of the comment it sits under (0: none), in order."""
    return [(c["id"], c["parent"]) for c in comments]


def wait_for_shown(page: Page, count: int) -> None:
    """Until the widget's own root shows ``count`` comments."""
    page.wait_for_function(
        f"n => {SHADOW} && {SHADOW}.querySelectorAll('li.csv-comment').length === n", arg=count
    )


def visible_copies(page: Page) -> int:
    """How many comments of the page's own copy the reader still sees."""
    return int(
        page.evaluate(
            "() => [...document.querySelectorAll('#comments article[itemscope]')]"
            ".filter(e => e.checkVisibility()).length"
        )
    )


@dataclass
class Calls:
    """The widget's requests for the thread (``…/comments``), with their answers."""

    requests: list[Request] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def watch(self, page: Page) -> Calls:
        page.on("request", lambda r: self.requests.append(r) if is_thread(r.url) else None)
        page.on("response", lambda r: self.statuses.append(r.status) if is_thread(r.url) else None)
        return self


def is_thread(url: str) -> bool:
    return urlsplit(url).path.endswith("/comments")


def thread_response(page: Page) -> Callable[[Response], bool]:
    return lambda response: is_thread(response.url) and response.request.method == "GET"


class Held:
    """Every request of ``page`` matching ``pattern``, held until :meth:`release`."""

    def __init__(self, page: Page, pattern: str) -> None:
        self.routes: list[Route] = []
        self.released = False
        page.route(pattern, self.route)

    def route(self, route: Route) -> None:
        if self.released:
            route.continue_()
        else:
            self.routes.append(route)

    def release(self) -> None:
        self.released = True
        for route in self.routes:
            route.continue_()


def write(
    live: Live,
    key: str,
    name: str,
    website: str | None = None,
    parent: int | None = None,
    site: str = SITE,
) -> int:
    """A comment of ``name`` on ``key``, stored pending; its id."""
    return live.submit(
        key,
        site=site,
        page_url=None,
        author_name=name,
        author_url=website,
        body=f"{name.split()[0]} writes *this*.",
        parent_id=parent,
    )


def seed_thread(live: Live, key: str, site: str = SITE) -> list[int]:
    """Four approved comments as the fragment shows them: Ada (no website), Alan's reply to
    her (a website), Grace (a website), Barbara (none)."""
    ada = write(live, key, "Ada Lovelace", site=site)
    grace = write(live, key, "Grace Hopper", "https://grace.example/", site=site)
    barbara = write(live, key, "Barbara Liskov", site=site)
    bulk(live, [ada, grace, barbara])
    alan = write(live, key, "Alan Turing", "https://alan.example/", ada, site=site)
    bulk(live, [alan])
    return [ada, alan, grace, barbara]


# --- 1. Adopted once, revalidated with its ETag ------------------------------------------------


def test_the_included_thread_is_shown_once_and_revalidated_with_its_etag(
    live: Live, page: Page, articles: ArticleSite, key: str
) -> None:
    [ada, alan, grace, barbara] = seed_thread(live, key)
    url = articles.url(key)
    included = fragment(live, key)
    calls = Calls().watch(page)
    with page.expect_response(thread_response(page)) as revalidated:
        page.goto(url)
    assert revalidated.value.status == 304
    wait_for_shown(page, 4)
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("4 comments")

    copy = included_comments(page)
    assert outline(copy) == [(ada, 0), (alan, ada), (grace, 0), (barbara, 0)]
    # Each once, in the page's order, the replies under their parents; the page's own copy
    # out of sight.
    assert outline(shown(page)) == outline(copy)
    assert visible_copies(page) == 0, "the page's copy shows beside the widget's"

    [sent] = calls.requests
    assert sent.header_value("if-none-match") == etag_of(included)
    query = parse_qs(urlsplit(sent.url).query)
    assert query["sort"] == ["oldest"] and query["page"] == [key]
    assert calls.statuses == [304]
    page.wait_for_load_state("networkidle")
    assert len(calls.requests) == 1, "only the revalidation asks for the thread"
    # Exactly the page's comments: each with its own author, website, time and text.
    assert shown(page) == copy


def test_the_included_comments_show_before_any_answer_of_the_api(
    live: Live, page: Page, articles: ArticleSite, key: str
) -> None:
    made = seed_thread(live, key)
    url = articles.url(key)
    held = Held(page, API)
    page.goto(url)
    wait_for_shown(page, len(made))

    assert held.routes, "the widget asked the API for nothing"
    assert ids(shown(page)) == made
    assert outline(shown(page)) == outline(included_comments(page))
    assert [c["text"] for c in shown(page)] == [c["text"] for c in included_comments(page)]
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("4 comments")
    expect(
        comment(page, made[2]).get_by_role("button", name="Reply to Grace Hopper")
    ).to_be_visible()

    with page.expect_response(thread_response(page)) as revalidated:
        held.release()
    assert revalidated.value.status == 304
    page.wait_for_load_state("networkidle")
    assert ids(shown(page)) == made


def test_a_stale_included_thread_is_redrawn_with_the_new_comments(
    live: Live, page: Page, articles: ArticleSite, key: str
) -> None:
    [first, second] = [write(live, key, "Ada Lovelace"), write(live, key, "Grace Hopper")]
    bulk(live, [first, second])
    url = articles.url(key)
    included = fragment(live, key)
    third = write(live, key, "Barbara Liskov")  # after the page was made
    bulk(live, [third])
    articles.frozen[key] = included
    held = Held(page, API)
    page.goto(url)
    wait_for_shown(page, 2)
    assert ids(shown(page)) == [first, second]

    with page.expect_response(thread_response(page)) as revalidated:
        held.release()
    assert revalidated.value.status == 200
    expect(comment(page, third)).to_be_visible()
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("3 comments")
    assert ids(shown(page)) == [first, second, third]
    assert visible_copies(page) == 0


# --- 2. No jump while mounting ------------------------------------------------------------------


def frames(page: Page) -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = page.evaluate("window.__frames")
    return recorded


def more_frames(page: Page, count: int = 5) -> None:
    """Until ``count`` more frames are painted."""
    page.wait_for_function("n => window.__frames.length >= n", arg=len(frames(page)) + count)


def test_the_thread_never_shrinks_while_the_widget_mounts(
    live: Live, page: Page, articles: ArticleSite, key: str
) -> None:
    made = seed_thread(live, key)
    page.context.add_init_script(FRAMES)
    url = articles.url(key)
    with page.expect_response(thread_response(page)):
        page.goto(url)
    wait_for_shown(page, len(made))
    more_frames(page)

    recorded = frames(page)
    assert recorded[-1] == {"root": True, "seen": len(made)}
    assert min(f["seen"] for f in recorded) == len(made), recorded


def test_a_translated_widget_keeps_the_pages_copy_in_sight_until_it_draws(
    live: Live, page: Page, articles: ArticleSite, key: str
) -> None:
    made = seed_thread(live, key)
    page.context.add_init_script(FRAMES)
    url = articles.url(key, lang="de")
    held = Held(page, f"**{I18N}**")
    page.goto(url)
    page.wait_for_function("() => window.__frames.length > 0")
    more_frames(page, 20)
    assert held.routes, "the widget asked for no German"

    # Its words are not here yet: the page's copy is what the reader sees.
    assert page.evaluate("() => document.querySelector('#comments').shadowRoot") is None
    assert visible_copies(page) == len(made)
    with page.expect_response(thread_response(page)):
        held.release()
    wait_for_shown(page, len(made))
    more_frames(page)

    expect(widget(page).get_by_role("heading", level=2)).to_have_text("4 Kommentare")
    recorded = frames(page)
    assert any(not f["root"] for f in recorded) and recorded[-1]["root"]
    assert min(f["seen"] for f in recorded) == len(made), recorded
    assert ids(shown(page)) == made


def test_the_thread_does_not_shrink_for_a_reader_with_comments_of_their_own(
    live: Live, page: Page, articles: ArticleSite, key: str
) -> None:
    made = seed_thread(live, key)
    url = articles.url(key)
    page.goto(url)
    wait_for_shown(page, len(made))
    fill_form(page, "Mine, awaiting moderation.")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        widget(page).get_by_role("button", name=POST, exact=True).click()
    mine = posted.value.json()["id"]
    expect(comment(page, mine)).to_be_visible()

    # Their next visit fetches own.js (their comments) as well: however long that takes,
    # the thread stays in sight.
    page.context.add_init_script(FRAMES)
    held = Held(page, "**/widget/own.*.js")
    page.reload(wait_until="commit")  # its load event waits for own.js
    page.wait_for_function("() => window.__frames.length > 0")
    more_frames(page, 20)
    assert held.routes, "own.js was not asked for"
    held.release()
    expect(comment(page, mine)).to_be_visible()
    more_frames(page)

    recorded = frames(page)
    assert min(f["seen"] for f in recorded) >= len(made), recorded
    assert ids(shown(page)) == [*made, mine]


# --- 3. Newest first ---------------------------------------------------------------------------


def test_a_reader_who_wants_the_newest_first_gets_the_thread_loaded_anew(
    live: Live, page: Page, articles: ArticleSite, key: str
) -> None:
    [ada, alan, grace, barbara] = seed_thread(live, key)
    url = articles.url(key)
    page.goto(url)
    wait_for_shown(page, 4)
    page.evaluate(
        "([key, value]) => localStorage.setItem(key, value)",
        [SORT + live.url(f"/api/v1/sites/{SITE}"), json.dumps("newest")],
    )
    calls = Calls().watch(page)
    with page.expect_response(thread_response(page)) as loaded:
        page.reload()
    assert loaded.value.status == 200
    wait_for_shown(page, 4)

    assert ids(included_comments(page)) == [ada, alan, grace, barbara]
    assert ids(shown(page)) == [barbara, grace, ada, alan]
    newest = widget(page).get_by_role("button", name="Newest first")
    expect(newest).to_have_attribute("aria-pressed", "true")
    [sent] = calls.requests
    assert "sort=newest" in sent.url
    assert sent.header_value("if-none-match") is None
    assert visible_copies(page) == 0


# --- 4. Markdown, accessibility, one's own comment ---------------------------------------------


def test_a_markdown_sites_included_thread_brings_write_and_preview(
    live: Live, page: Page, articles: ArticleSite, key: str
) -> None:
    made = seed_thread(live, key, site=MARKDOWN_SITE)
    url = articles.url(key, site=MARKDOWN_SITE)
    held = Held(page, API)
    page.goto(url)
    wait_for_shown(page, len(made))
    # From the page's copy alone (data-markup="markdown"): the API has not answered yet.
    container = widget(page)
    expect(container.get_by_role("tab", name="Write")).to_have_attribute("aria-selected", "true")
    expect(container.get_by_role("tab", name="Preview")).to_be_visible()
    expect(comment(page, made[2]).locator(".csv-body em")).to_have_text("this")
    with page.expect_response(thread_response(page)) as revalidated:
        held.release()
    assert revalidated.value.status == 304
    expect(container.get_by_role("tab")).to_have_count(2)


def test_axe_finds_no_serious_violations_after_adoption(
    live: Live, page: Page, articles: ArticleSite, key: str
) -> None:
    made = seed_thread(live, key)
    url = articles.url(key)
    with page.expect_response(thread_response(page)):
        page.goto(url)
    wait_for_shown(page, len(made))
    assert_accessible(page, "an adopted thread")


def test_ones_own_comment_in_the_included_thread_is_edited_from_its_text(
    live: Live, page: Page, articles: ArticleSite, key: str
) -> None:
    url = articles.url(key)
    page.goto(url)
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("No comments yet.")
    fill_form(page, "Mine, soon approved.")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        widget(page).get_by_role("button", name=POST, exact=True).click()
    mine = posted.value.json()["id"]
    expect(comment(page, mine)).to_be_visible()  # kept by own.js
    live.approve(mine)

    with page.expect_response(thread_response(page)) as revalidated:
        page.reload()
    assert revalidated.value.status == 304
    assert ids(included_comments(page)) == [mine]
    item = comment(page, mine)
    edit = item.get_by_role("button", name="Edit", exact=True)
    expect(edit).to_be_visible()
    edit.click()
    box = item.get_by_role("textbox", name="Comment", exact=True)
    expect(box).to_be_focused()
    expect(box).to_have_value("Mine, soon approved.")
