"""The embeddable widget in a real Chromium, on host pages of ANOTHER origin than the service.

The host pages (``widget_pages/`` and the demo article of ``demo/``) are served by a small HTTP
server on a port of its own (``tests/support/host_pages.py``), so everything the widget asks of
the service is a real cross-origin request answered with the service's CORS headers for the
site ``widget``, which is registered for that origin through the admin panel. One gunicorn and
one Chromium serve the whole module (``tests/browser/conftest.py``); every test opens fresh
browser contexts and works on page keys of its own. Console errors, uncaught errors and dialogs
in any page fail the test (the ``pages`` fixture), so every test here also proves the widget
ran cleanly.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import Locator, Page, Request, Response, expect

from commentsvc import PROJECT_ROOT
from commentsvc.config import SETTINGS_BY_NAME
from tests.browser.conftest import (
    ADMIN_EMAIL,
    CSP_WATCH,
    PASSWORD,
    TIMEOUT_MS,
    Live,
    PageLog,
    Pages,
)
from tests.support.host_pages import HostSite, serve_host_pages

pytestmark = pytest.mark.browser

AXE = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"
SITE = "widget"
#: The service's default page size; the live server runs with the defaults.
PAGE_SIZE: int = SETTINGS_BY_NAME["PAGE_SIZE"].default
# Chromium reports every HTTP error status as a console error, the widget's fetches included.
HTTP_STATUS_ERROR = r"Failed to load resource: the server responded with a status of {}"

HEADING = "Leave a Comment"
NOTE = "Your email address will not be published. Required fields are marked *"
SAVE = "Save my name, email, and website in this browser for the next time I comment."
NOTIFY = "Notify me of follow-up comments by email."
POST = "Post Comment"
AWAITING = "Your comment is awaiting moderation."
LOADED = re.compile(r"^(No comments yet\.|1 comment|\d+ comments)$")

CSRF_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(page: str) -> str:
    found = CSRF_TOKEN.search(page)
    assert found, "no CSRF token in the panel's form"
    return found[1]


def register_site(live: Live, slug: str, origin: str) -> None:
    """Add a site for ``origin`` the way an administrator does: the panel's site form."""
    with requests.Session() as admin:
        login = admin.get(live.url("/moderation/login"), timeout=10)
        response = admin.post(
            live.url("/moderation/login"),
            data={"csrf_token": csrf_token(login.text), "email": ADMIN_EMAIL, "password": PASSWORD},
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code in (302, 303), response.text
        form = admin.get(live.url("/moderation/sites"), timeout=10)
        response = admin.post(
            live.url("/moderation/sites"),
            data={
                "csrf_token": csrf_token(form.text),
                "slug": slug,
                "name": "Widget host pages",
                "origins": origin,
                "comments_open": "y",
            },
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code == 303, response.text


@pytest.fixture(scope="module")
def host(live: Live) -> Iterator[HostSite]:
    """The host pages' origin, registered as the only origin of the site ``widget``."""
    with serve_host_pages(live.base_url, SITE) as site:
        assert urlsplit(site.origin).port != urlsplit(live.base_url).port
        register_site(live, SITE, site.origin)
        yield site


@dataclass
class HostPages:
    """Fresh browser contexts on the host origin, watched by the ``pages`` fixture."""

    pages: Pages
    site: HostSite

    def open(self, *, color_scheme: Literal["light", "dark"] = "light") -> Page:
        context = self.pages.browser.new_context(
            base_url=self.site.origin, color_scheme=color_scheme
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        context.add_init_script(CSP_WATCH)
        # The pages fixture closes these contexts and fails the test on any page error.
        self.pages.contexts.append(context)
        page = context.new_page()
        page.on("console", self.pages.log.on_console)
        page.on("pageerror", self.pages.log.on_page_error)
        page.on("dialog", self.pages.log.on_dialog)
        return page


@pytest.fixture
def host_pages(pages: Pages, host: HostSite) -> HostPages:
    return HostPages(pages, host)


@pytest.fixture
def page(host_pages: HostPages) -> Page:
    """A page in a fresh context, to be pointed at a host page (not at the service)."""
    return host_pages.open()


_serial = itertools.count(1)


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    """A page key no other test uses."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"/t/{next(_serial)}-{name}"


# --- Seeding through the APIs ------------------------------------------------------------


def submit(live: Live, key: str, **fields: Any) -> int:
    """Submit a comment to the widget's site (stored pending); its id."""
    # No page URL: one off the site's origins (the host pages') would be refused.
    return live.submit(key, site=SITE, page_url=None, **fields)


def bulk(live: Live, ids: list[int], action: str = "approve") -> None:
    response = live.http.post(
        live.url("/api/v1/moderation/comments/bulk"),
        json={"ids": ids, "action": action},
        headers=live.auth,
        timeout=10,
    )
    assert response.status_code == 200, response.text


def approved(live: Live, key: str, count: int, **fields: Any) -> list[int]:
    """``count`` approved comments on ``key``, oldest first."""
    ids = [submit(live, key, body=f"Comment number {n}.", **fields) for n in range(1, count + 1)]
    bulk(live, ids)
    return ids


def stored(live: Live, key: str) -> list[dict[str, Any]]:
    """Every comment of ``key`` on the widget's site, any status, newest first."""
    return [live.comment(i) or {} for i in live.ids("", site=SITE, page=key)]


# --- The widget as a reader sees it --------------------------------------------------------


def widget(page: Page) -> Locator:
    """The widget's container; Playwright's CSS and role selectors pierce its shadow root."""
    return page.locator("#comments")


def textbox(page: Page, label: str) -> Locator:
    return widget(page).get_by_role("textbox", name=label, exact=True)


def comment(page: Page, comment_id: int) -> Locator:
    return widget(page).locator(f"li#comment-{comment_id}")


def open_thread(page: Page, url: str, loaded: str | re.Pattern[str] = LOADED) -> Locator:
    """Open a host page and wait until the widget has rendered its thread."""
    page.goto(url)
    container = widget(page)
    expect(container.get_by_role("heading", level=2)).to_have_text(loaded)
    return container


def fill_form(
    page: Page,
    body: str,
    *,
    name: str = "Ada Lovelace",
    email: str = "ada@example.com",
    website: str = "",
) -> None:
    textbox(page, "Comment").fill(body)
    textbox(page, "Name").fill(name)
    textbox(page, "Email").fill(email)
    textbox(page, "Website").fill(website)


def is_submission(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith(f"/{SITE}/comments")


def post(page: Page, button: str = POST) -> Response:
    """Click the form's button; the service's answer to the submission."""
    with page.expect_response(is_submission) as answer:
        widget(page).get_by_role("button", name=button, exact=True).click()
    return answer.value


def focused(page: Page) -> str:
    """The element with keyboard focus, looked up through shadow roots, as ``tag name``."""
    return str(
        page.evaluate(
            """() => {
              let e = document.activeElement;
              while (e && e.shadowRoot && e.shadowRoot.activeElement) {
                e = e.shadowRoot.activeElement;
              }
              if (!e || e === document.body) return "body";
              const name = e.getAttribute("name") || e.getAttribute("aria-label") || e.textContent;
              return e.tagName.toLowerCase() + " " + name.trim();
            }"""
        )
    )


def stored_author(page: Page) -> str:
    """Everything the host origin's localStorage holds, as one string."""
    return str(
        page.evaluate(
            "() => Object.keys(localStorage).map(k => k + '=' + localStorage.getItem(k)).join(' ')"
        )
    )


# --- 1. The form of DESIGN §2 ----------------------------------------------------------------


def test_the_demo_article_shows_every_field_of_the_form(page: Page, host: HostSite) -> None:
    open_thread(page, f"{host.origin}/article.html", "No comments yet.")
    container = widget(page)
    # The widget renders into an open shadow root and leaves the host's light DOM alone.
    assert page.evaluate(
        """() => {
          const host = document.querySelector("#comments");
          return [host.shadowRoot && host.shadowRoot.mode, host.children.length,
                  !!host.shadowRoot.querySelector("form")];
        }"""
    ) == ["open", 0, True]

    expect(container.get_by_role("heading", level=3)).to_have_text(HEADING)
    expect(container.get_by_text(NOTE, exact=True)).to_be_visible()
    labels = container.locator("form label")
    expect(labels).to_have_text(["Comment *", "Name *", "Email *", "Website", SAVE, NOTIFY])
    fields = [("Comment", "textarea", True), ("Name", "text", True)]
    fields += [("Email", "email", True), ("Website", "url", False)]
    for label, kind, required in fields:
        box = textbox(page, label)
        expect(box).to_be_visible()
        expect(box).to_be_editable()
        expect(box).to_have_value("")
        assert box.evaluate("e => e.type") == kind, label
        assert box.evaluate("e => e.required") is required, label
    save = container.get_by_role("checkbox", name=SAVE)
    expect(save).to_be_visible()
    expect(save).not_to_be_checked()
    button = container.get_by_role("button", name=POST, exact=True)
    expect(button).to_be_visible()
    expect(button).to_have_attribute("type", "submit")
    status = container.get_by_role("status")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_have_text("")


# --- 2. Server-side field errors ----------------------------------------------------------


def test_the_servers_email_error_appears_beside_the_email_field(
    live: Live, page: Page, host: HostSite, key: str, page_log: PageLog
) -> None:
    page_log.expect_console_error(HTTP_STATUS_ERROR.format(422))
    open_thread(page, host.url("thread.html", page=key))
    # Passes the widget's own quick check (something@something.tld), fails the service's.
    fill_form(page, "Double dots in my address.", email="a..b@example.com")
    response = post(page)

    assert response.status == 422, response.text()
    message = response.json()["errors"]["author_email"][0]
    assert message != "Enter a valid email address.", "the service's words, not the widget's"
    email = textbox(page, "Email")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_description(message)
    error = widget(page).locator(f"[id='{email.get_attribute('aria-describedby')}']")
    expect(error).to_be_visible()
    expect(error).to_have_text(message)
    # Beside its field: in the field's own wrapper, right after the input.
    assert error.evaluate("e => e.previousElementSibling.getAttribute('aria-invalid')") == "true"
    expect(email).to_be_focused()
    for other in ("Comment", "Name", "Website"):
        expect(textbox(page, other)).not_to_have_attribute("aria-invalid", "true")
    expect(widget(page).get_by_role("status")).not_to_have_text(AWAITING)
    assert stored(live, key) == []


# --- 3. Posting, moderation, and the thread ---------------------------------------------


def test_a_posted_comment_awaits_moderation_then_shows_once_approved(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    open_thread(page, host.url("thread.html", page=key), "No comments yet.")
    fill_form(page, "First!\n\nA second paragraph.", website="https://ada.example/")
    response = post(page)

    # A real cross-origin request, allowed by the service for the site's origin only.
    assert response.request.all_headers()["origin"] == host.origin
    assert response.headers["access-control-allow-origin"] == host.origin
    assert response.status == 201, response.text()
    status = widget(page).get_by_role("status")
    expect(status).to_have_text(AWAITING)
    expect(status).to_have_attribute("aria-live", "polite")
    # Shown to its author alone (own.js), not counted: the thread has no comment yet.
    expect(widget(page).locator("li.csv-comment")).to_have_count(1)
    expect(widget(page).locator("li.csv-mine .csv-yours")).to_contain_text(AWAITING)
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("No comments yet.")
    expect(textbox(page, "Comment")).to_have_value("")

    [mine] = stored(live, key)
    assert mine["id"] == response.json()["id"]
    assert mine["status"] == "pending"
    assert mine["site"] == SITE
    assert mine["page"]["key"] == key
    # The page's origin and path: its query string (here the page key) stays in the browser.
    assert mine["page"]["url"] == f"{host.origin}/w/thread.html"
    assert mine["body"] == "First!\n\nA second paragraph."
    assert (mine["author_name"], mine["author_email"]) == ("Ada Lovelace", "ada@example.com")
    assert mine["author_url"] == "https://ada.example/"
    assert mine["parent_id"] is None

    page.reload()
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("No comments yet.")
    live.approve(mine["id"])
    page.reload()
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("1 comment")
    shown = comment(page, mine["id"])
    expect(shown.locator(".csv-body p")).to_have_text(["First!", "A second paragraph."])
    expect(shown.get_by_role("link", name="Ada Lovelace")).to_have_attribute(
        "href", "https://ada.example/"
    )


# --- 4. Replies -------------------------------------------------------------------------------


def test_reply_moves_the_form_under_the_comment_and_nests_the_reply(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    [parent] = approved(live, key, 1, author_name="Grace Hopper")
    open_thread(page, host.url("thread.html", page=key), "1 comment")
    container = widget(page)
    form = container.locator("form")
    container.get_by_role("button", name="Reply to Grace Hopper").click()

    expect(container.get_by_role("heading", level=3)).to_have_text("Reply to Grace Hopper")
    expect(comment(page, parent).locator("form")).to_have_count(1)
    expect(textbox(page, "Comment")).to_be_focused()
    expect(container.get_by_role("button", name="Cancel reply")).to_be_visible()

    fill_form(page, "A reply to Grace.", name="Linus")
    response = post(page)
    assert response.status == 201, response.text()
    sent = response.request.post_data_json
    assert sent and sent["parent_id"] == parent
    expect(container.get_by_role("status")).to_have_text(AWAITING)
    # Back at the end of the thread, as the form for a new comment.
    expect(container.get_by_role("heading", level=3)).to_have_text(HEADING)
    expect(comment(page, parent).locator("form")).to_have_count(0)
    expect(form).to_be_visible()

    reply = response.json()["id"]
    assert (live.comment(reply) or {})["parent_id"] == parent
    live.approve(reply)
    page.reload()
    nested = comment(page, parent).locator(f"li#comment-{reply}")
    expect(nested).to_be_visible()
    expect(nested).to_contain_text("A reply to Grace.")
    assert nested.evaluate("e => e.parentElement.closest('li').id") == f"comment-{parent}"
    parent_box = comment(page, parent).locator("article").first.bounding_box()
    reply_box = nested.locator("article").bounding_box()
    assert parent_box and reply_box and reply_box["x"] > parent_box["x"], "not indented"


# --- 5. Remember me ---------------------------------------------------------------------------


def test_save_my_details_prefills_the_form_until_unchecked(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    url = host.url("thread.html", page=key)
    open_thread(page, url)
    assert "ada@example.com" not in stored_author(page)
    fill_form(page, "Remember me.", website="https://ada.example/")
    widget(page).get_by_role("checkbox", name=SAVE).check()
    response = post(page)
    assert response.status == 201, response.text()
    # The choice stays in the browser: nothing about it is sent to the service.
    assert set(response.request.post_data_json or {}) <= {
        "page",
        "page_url",
        "page_title",
        "parent_id",
        "body",
        "author_name",
        "author_email",
        "author_url",
        "subject",
        "fill_ms",
        "notify_replies",
    }
    # Reply mails are a choice of their own, unticked by default.
    assert (response.request.post_data_json or {})["notify_replies"] is False
    expect(widget(page).get_by_role("status")).to_have_text(AWAITING)
    assert "ada@example.com" in stored_author(page)

    open_thread(page, url)
    expect(textbox(page, "Name")).to_have_value("Ada Lovelace")
    expect(textbox(page, "Email")).to_have_value("ada@example.com")
    expect(textbox(page, "Website")).to_have_value("https://ada.example/")
    expect(textbox(page, "Comment")).to_have_value("")
    save = widget(page).get_by_role("checkbox", name=SAVE)
    expect(save).to_be_checked()

    save.uncheck()
    textbox(page, "Comment").fill("Forget me.")
    assert post(page).status == 201
    expect(widget(page).get_by_role("status")).to_have_text(AWAITING)
    remaining = stored_author(page)
    assert "ada@example.com" not in remaining and "Ada Lovelace" not in remaining, remaining

    open_thread(page, url)
    for label in ("Name", "Email", "Website"):
        expect(textbox(page, label)).to_have_value("")
    expect(widget(page).get_by_role("checkbox", name=SAVE)).not_to_be_checked()
    assert len(stored(live, key)) == 2


# --- 6. Comment counts on article lists -------------------------------------------------------


def test_counts_fill_every_element_with_one_request(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    approved(live, f"{key}/two", 2)
    submit(live, f"{key}/two", body="Pending: not counted.")
    submit(live, f"{key}/none", body="Pending: not counted.")
    [_, rejected] = approved(live, f"{key}/one", 2)
    live.moderate(rejected, "rejected")
    approved(live, f"{key}/a b?c=1&d", 3)
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))

    page.goto(host.url("counts.html", page=key))
    counts = page.locator("[data-comment-count]")
    expect(counts).to_have_text(
        ["2 comments", "0 comments", "1 comment", "2 comments", "3 comments"]
    )
    page.wait_for_load_state("networkidle")

    api = [url for url in seen if url.startswith(live.base_url)]
    count_requests = [url for url in api if "/counts?" in url]
    assert len(count_requests) == 1, api
    asked = parse_qs(urlsplit(count_requests[0]).query)["page"]
    assert sorted(asked) == sorted(f"{key}/{k}" for k in ("two", "none", "one", "a b?c=1&d"))
    assert [url for url in api if "/comments" in url] == [], "no thread on a list page"


# --- 7. Keyboard only ------------------------------------------------------------------------


def tab_to(page: Page, target: str, limit: int = 12) -> None:
    """Press Tab until ``target`` (as :func:`focused` names it) has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(page) == target:
            return
    pytest.fail(f"{target} never got the focus; it ended on {focused(page)!r}")


def focus_in_widget(page: Page) -> bool:
    return bool(
        page.evaluate("() => document.activeElement === document.querySelector('#comments')")
    )


def test_posting_with_the_keyboard_only(live: Live, page: Page, host: HostSite, key: str) -> None:
    open_thread(page, host.url("thread.html", page=key), "No comments yet.")
    order = []
    for _ in range(8):
        page.keyboard.press("Tab")
        order.append(focused(page))
    assert order == [
        "a Skip to the article",
        "textarea body",
        "input author_name",
        "input author_email",
        "input author_url",
        "input save",
        "input notify_replies",
        f"button {POST}",
    ], "the tab order"

    tab_to(page, "textarea body")
    page.keyboard.type("Typed without a mouse.")
    for text in ("Key Board", "keys@example.com"):
        page.keyboard.press("Tab")
        page.keyboard.type(text)
    page.keyboard.press("Tab")  # Website stays empty
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    expect(widget(page).get_by_role("checkbox", name=SAVE)).to_be_checked()
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    expect(widget(page).get_by_role("checkbox", name=NOTIFY)).to_be_checked()
    page.keyboard.press("Tab")
    assert focused(page) == f"button {POST}"
    with page.expect_response(is_submission) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 201, answer.value.text()
    assert (answer.value.request.post_data_json or {})["notify_replies"] is True
    expect(widget(page).get_by_role("status")).to_have_text(AWAITING)
    kept_after_enter = focus_in_widget(page)

    # A second comment, sent with Space on the button.
    tab_to(page, "textarea body")
    page.keyboard.type("A second one, sent with Space.")
    tab_to(page, f"button {POST}", limit=6)
    with page.expect_response(is_submission) as answer:
        page.keyboard.press("Space")
    assert answer.value.status == 201, answer.value.text()
    expect(widget(page).get_by_role("status")).to_have_text(AWAITING)
    kept_after_space = focus_in_widget(page)

    bodies = sorted(c["body"] for c in stored(live, key))
    assert bodies == ["A second one, sent with Space.", "Typed without a mouse."]
    assert {c["author_email"] for c in stored(live, key)} == {"keys@example.com"}
    assert "keys@example.com" in stored_author(page)
    # Posting must not throw the keyboard user's focus back to the top of the host page.
    assert (kept_after_enter, kept_after_space) == (True, True), (
        f"after posting, the focus was lost to {focused(page)!r}"
    )


# --- 8. XSS ------------------------------------------------------------------------------------

XSS_BODIES = (
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1;alert(1)">',
    '<svg onload="window.__xss=1">',
    '"><img src=x onerror=window.__xss=1>',
    "</textarea><script>window.__xss=1</script>",
    '<a href="javascript:window.__xss=1">click</a>',
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    "<style>*{display:none}</style>{{constructor.constructor('window.__xss=1')()}}",
    'see https://ok.example/"><img src=x onerror=window.__xss=1> now',
)
XSS_NAMES = (
    '<img src=x onerror="window.__xss=1">',
    '"><svg onload=window.__xss=1>',
    "<b>Bold</b> &amp; co",
)
XSS_URLS = (
    'https://x.example/"onmouseover="window.__xss=1',
    "https://x.example/'onmouseover='window.__xss=1'",
    "https://x.example/?q=<script>window.__xss=1</script>",
)
#: Every element the widget itself renders; anything else in its shadow root was injected.
WIDGET_TAGS = {
    "section", "h2", "h3", "ol", "li", "article", "header", "a", "span", "time", "div", "p",
    "br", "button", "form", "label", "textarea", "input",
}  # fmt: skip


def test_xss_payloads_render_as_text(live: Live, page: Page, host: HostSite, key: str) -> None:
    ids = [
        submit(
            live,
            key,
            body=body,
            author_name=XSS_NAMES[n % len(XSS_NAMES)],
            author_url=XSS_URLS[n % len(XSS_URLS)],
        )
        for n, body in enumerate(XSS_BODIES)
    ]
    bulk(live, ids)
    open_thread(page, host.url("thread.html", page=key), f"{len(ids)} comments")

    links = widget(page).locator("a")
    for index in range(links.count()):
        links.nth(index).hover()
    assert page.evaluate("typeof window.__xss") == "undefined", "a payload ran"
    assert page.evaluate("window.__cspViolations") == []

    for n, (comment_id, body) in enumerate(zip(ids, XSS_BODIES, strict=True)):
        shown = comment(page, comment_id)
        expect(shown.locator(".csv-body")).to_have_text(body)
        author = shown.locator("a.csv-author")
        expect(author).to_have_text(XSS_NAMES[n % len(XSS_NAMES)])
        expect(author).to_have_attribute("href", XSS_URLS[n % len(XSS_URLS)])
    rels = links.evaluate_all("links => links.map(a => [a.href, a.rel])")
    assert rels, "no links rendered"
    for href, rel in rels:
        assert {"nofollow", "ugc", "noopener"} <= set(rel.split()), (href, rel)
        assert href.startswith(("https://", "http://")), href
    found = page.evaluate(
        """() => {
          const root = document.querySelector("#comments").shadowRoot;
          const all = [...root.querySelectorAll("*")];
          return {
            tags: [...new Set(all.map(e => e.tagName.toLowerCase()))],
            handlers: all.flatMap(e => [...e.attributes].map(a => a.name))
                         .filter(name => name.startsWith("on")),
            hostInjected: document.querySelectorAll("img, svg, iframe, object, embed").length,
          };
        }"""
    )
    assert set(found["tags"]) <= WIDGET_TAGS, found["tags"]
    assert found["handlers"] == []
    assert found["hostInjected"] == 0


# --- 9. Hostile host CSS, and no styles leaking out --------------------------------------------


def test_hostile_host_css_leaves_a_usable_form(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    open_thread(page, host.url("hostile.html", page=key), "No comments yet.")
    container = widget(page)
    controls = [textbox(page, label) for label in ("Comment", "Name", "Email", "Website")]
    controls += [
        container.get_by_role("checkbox", name=SAVE),
        container.get_by_role("button", name=POST, exact=True),
    ]
    for control in controls:
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box and box["width"] >= 10 and box["height"] >= 10, box
    label_style = container.locator("form label").first.evaluate(
        "e => { const s = getComputedStyle(e); return [s.color, s.fontSize, s.display]; }"
    )
    assert label_style[0] not in ("transparent", "rgba(0, 0, 0, 0)"), label_style
    assert label_style[1] != "64px" and label_style[2] != "none", label_style

    fill_form(page, "Posted despite the page's CSS.")
    assert post(page).status == 201
    expect(container.get_by_role("status")).to_have_text(AWAITING)
    assert [c["body"] for c in stored(live, key)] == ["Posted despite the page's CSS."]


HOST_ELEMENTS = (
    "#host-p", "#host-a", "#host-form", "#host-label", "#host-input", "#host-textarea",
    "#host-button", "#host-h2", "#host-ol", "#host-li",
)  # fmt: skip
COMPUTED_STYLES = """selectors => Object.fromEntries(selectors.map(selector => {
  const style = getComputedStyle(document.querySelector(selector));
  const values = [...style].map(name => [name, style.getPropertyValue(name)]);
  return [selector, Object.fromEntries(values)];
}))"""


def test_the_widget_neither_restyles_the_host_page_nor_adds_globals(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    page.goto(host.url("plain.html", page=key))
    before = page.evaluate(COMPUTED_STYLES, list(HOST_ELEMENTS))
    globals_before = page.evaluate("() => Object.keys(window)")

    page.add_script_tag(url=live.url("/widget.js"))
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("No comments yet.")
    expect(widget(page).get_by_role("button", name=POST, exact=True)).to_be_visible()

    after = page.evaluate(COMPUTED_STYLES, list(HOST_ELEMENTS))
    changed = [
        f"{selector} {name}: {value!r} -> {after[selector][name]!r}"
        for selector, style in before.items()
        for name, value in style.items()
        if after[selector].get(name) != value
    ]
    assert changed == [], "\n".join(changed)
    assert set(page.evaluate("() => Object.keys(window)")) - set(globals_before) == set()


def test_the_widget_script_adds_no_globals_to_a_blank_page(
    live: Live, page: Page, host: HostSite
) -> None:
    page.goto(host.url("blank.html"))
    before = page.evaluate("() => Object.keys(window)")
    page.add_script_tag(url=live.url("/widget.js"))
    assert set(page.evaluate("() => Object.keys(window)")) - set(before) == set()


# --- 10. Load more ----------------------------------------------------------------------------


def test_load_more_shows_the_rest_of_a_long_thread(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    total = PAGE_SIZE + 10
    ids = approved(live, key, total)
    container = open_thread(page, host.url("thread.html", page=key), f"{total} comments")
    shown = container.locator("li.csv-comment")
    expect(shown).to_have_count(PAGE_SIZE)
    more = container.get_by_role("button", name="Load more comments")
    expect(more).to_be_visible()

    more.click()
    expect(shown).to_have_count(total)
    expect(more).to_be_hidden()
    shown_ids = shown.evaluate_all("items => items.map(item => Number(item.dataset.id))")
    assert shown_ids == ids, "every comment once, oldest first"


# --- 11. Languages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Translation:
    heading: str
    labels: tuple[str, ...]
    save: str
    notify: str
    button: str
    empty: str


LANGUAGES = {
    "de": Translation(
        heading="Schreibe einen Kommentar",
        labels=("Kommentar *", "Name *", "E-Mail *", "Website"),
        save="Meinen Namen, meine E-Mail-Adresse und meine Website in diesem Browser für die "
        "nächste Kommentierung speichern.",
        notify="Über weitere Kommentare per E-Mail benachrichtigen.",
        button="Kommentar abschicken",
        empty="Noch keine Kommentare.",
    ),
    "fr": Translation(
        heading="Laisser un commentaire",
        labels=("Commentaire *", "Nom *", "E-mail *", "Site web"),
        save="Enregistrer mon nom, mon e-mail et mon site dans le navigateur pour mon prochain "
        "commentaire.",
        notify="Prévenez-moi de tous les nouveaux commentaires par e-mail.",
        button="Laisser un commentaire",
        empty="Aucun commentaire pour l\u2019instant.",
    ),
}
LANG_OF = """e => {
  for (let node = e; node; node = node.parentNode || node.host) {
    if (node.nodeType === 1 && node.hasAttribute("lang")) return node.getAttribute("lang");
  }
  return null;
}"""


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_data_lang_translates_the_widget(page: Page, host: HostSite, key: str, lang: str) -> None:
    texts = LANGUAGES[lang]
    container = open_thread(page, host.url("thread.html", page=key, lang=lang), texts.empty)
    expect(container.get_by_role("heading", level=3)).to_have_text(texts.heading)
    expect(container.locator("form label")).to_have_text([*texts.labels, texts.save, texts.notify])
    expect(container.get_by_role("button", name=texts.button, exact=True)).to_be_visible()
    # The page is in English; the widget's text must be marked as the language it is in
    # (WCAG 3.1.2), or screen readers read German with English pronunciation.
    marked = container.locator("section").evaluate(LANG_OF)
    assert marked == lang, f"the widget's {lang} text is marked as lang={marked!r}"


# --- 12. axe-core -------------------------------------------------------------------------

AXE_RUN = """async () => {
  const results = await axe.run(document.querySelector("#comments"), {
    resultTypes: ["violations"],
  });
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({ target: n.target, summary: n.failureSummary })),
  }));
}"""


def axe_violations(page: Page) -> list[dict[str, Any]]:
    assert AXE.is_file(), f"{AXE} is missing: run scripts/ensure-node-deps.sh (npm ci)"
    if page.evaluate("typeof window.axe") == "undefined":
        page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate(AXE_RUN)
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']}")
        for node in violation["nodes"]:
            lines.append(f"    {node['target']}: {' '.join(node['summary'].split())}")
    return "\n".join(lines) or "none"


def assert_accessible(page: Page, state: str) -> None:
    violations = axe_violations(page)
    print(f"axe, {state}: {describe(violations)}")
    grave = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert grave == [], f"axe, {state}:\n{describe(violations)}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violations(
    live: Live, host_pages: HostPages, host: HostSite, key: str, scheme: Literal["light", "dark"]
) -> None:
    [first, _] = approved(live, key, 2, author_url="https://ada.example/")
    reply = submit(live, key, body="A reply.", parent_id=first)
    bulk(live, [reply])
    page = host_pages.open(color_scheme=scheme)
    open_thread(page, host.url("thread.html", page=key), "3 comments")
    assert_accessible(page, f"{scheme}, a thread of three")

    widget(page).get_by_role("button", name=POST, exact=True).click()
    expect(textbox(page, "Comment")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, f"{scheme}, validation errors shown")


def test_axe_dark_readers_on_a_light_only_page(
    host_pages: HostPages, host: HostSite, key: str
) -> None:
    # Most sites have one light design; a reader whose system is dark still reads the widget.
    page = host_pages.open(color_scheme="dark")
    open_thread(page, host.url("light-only.html", page=key), "No comments yet.")
    assert_accessible(page, "dark system, light-only page")


# --- 13. The page URL a comment carries ----------------------------------------------------


@pytest.mark.parametrize("asked_on", [None, "container", "script"])
def test_the_page_url_leaves_out_the_query_string_unless_the_site_asks(
    live: Live, page: Page, host: HostSite, key: str, asked_on: str | None
) -> None:
    # A host page whose address carries a reader's token; data-page-url="full" on the
    # element named by ``asked_on``.
    address = host.url("page-url.html", page=key, **({asked_on: "full"} if asked_on else {}))
    address += "&token=secret"
    to_service: list[Request] = []
    page.on("request", lambda r: to_service.append(r) if r.url.startswith(live.base_url) else None)
    open_thread(page, f"{address}#x", "No comments yet.")
    fill_form(page, "Posted from an address with a token in it.")
    response = post(page)

    assert response.status == 201, response.text()
    sent = (response.request.post_data_json or {})["page_url"]
    assert sent == (address if asked_on else f"{host.origin}/w/page-url.html")
    if asked_on is None:
        # Nor does the token reach the service any other way (the Referer of the widget's
        # requests or of the script's own).
        assert len(to_service) >= 3, "the script, the thread and the post"
        for request in to_service:
            sent_text = request.url + (request.post_data or "") + str(request.all_headers())
            assert "secret" not in sent_text, request.url


# --- 14. The no-JavaScript form's error page ---------------------------------------------------


def test_the_no_javascript_forms_error_page_is_styled_within_its_policy(
    pages: Pages, host: HostSite, page_log: PageLog
) -> None:
    """Its inline style is allowed by the page's CSP (a violation is a console error, which
    fails the test) and nothing else is needed."""
    page_log.expect_console_error(HTTP_STATUS_ERROR.format(422))
    page = pages.open(java_script_enabled=False)
    page.goto(f"{host.origin}/article.html")
    form = page.locator("form[method=post]")
    form.get_by_role("textbox", name="Comment").fill("Sent with an address the service refuses.")
    form.get_by_role("textbox", name="Name").fill("Ada Lovelace")
    form.get_by_role("textbox", name="Email").fill("a..b@example.com")
    with page.expect_navigation() as navigation:
        form.get_by_role("button", name="Post Comment").click()

    response = navigation.value
    assert response is not None and response.status == 422
    headers = response.headers
    assert "style-src 'sha256-" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    expect(page.get_by_role("heading", level=1)).to_have_text("Your comment was not posted")
    assert page.locator("body").evaluate("e => getComputedStyle(e).maxWidth") == "576px"
