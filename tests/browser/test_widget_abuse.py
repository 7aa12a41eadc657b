"""DESIGN §7 as the widget carries it, in a real Chromium against a real gunicorn.

The honeypot ``subject`` (out of sight and reach of people, filled by bots), the proof of how
long the form was open (``fill_ms``), an ``Idempotency-Key`` that survives a lost answer, and
the reader's side of a 409 (the same comment again) and a 429 (posting too often). Every
verdict is read back from the moderation API, as a moderator would see it.

The host pages, page keys and seeding helpers are those of ``test_widget.py``, whose fixtures
are reused here. The 429 tests need rate limits, which the module's server runs
without, so they get a gunicorn of their own with a tiny limit. The lost answer is a real one:
a loopback proxy between the browser and the service forwards a submission, lets the service
store it, and closes the connection instead of passing the answer on.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Locator, Page, Request, Response, expect

from commentsvc.services.sites import SiteRules
from tests.browser import test_widget as widget_tests
from tests.browser.conftest import ADMIN_EMAIL, PASSWORD, WORKERS, Live, PageLog, Pages
from tests.browser.test_widget import (
    AWAITING,
    HTTP_STATUS_ERROR,
    POST,
    SITE,
    HostPages,
    assert_accessible,
    fill_form,
    focused,
    is_submission,
    open_thread,
    post,
    stored,
    submit,
    textbox,
    widget,
)
from tests.support.databases import run_databases
from tests.support.host_pages import HostSite, serve_host_pages
from tests.support.server import GunicornServer
from tests.support.service import Moderator, create_accounts, service_env

pytestmark = pytest.mark.browser

# The fixtures of the widget's other browser tests: host pages on their own origin, a fresh
# page there for each test, and a page key of its own.
host = widget_tests.host
host_pages = widget_tests.host_pages
page = widget_tests.page
key = widget_tests.key

#: The site setting every test here runs with (DESIGN §7: ``min_fill_seconds``, default 3).
MIN_FILL_MS = SiteRules().min_fill_seconds * 1000
#: Submissions per minute the throttled server takes from one address and site.
LIMIT = 2
DUPLICATE = "You have already posted this comment."
# Chromium logs a connection closed without an answer as a console error.
LOST_ANSWER = r"Failed to load resource: net::ERR_(EMPTY_RESPONSE|CONNECTION_(CLOSED|RESET))"

#: The reply-notification checkbox of the forms (DESIGN §8).
NOTIFY = "Notify me of follow-up comments by email."


def sent(response: Response) -> dict[str, Any]:
    """The JSON the widget sent in the request that ``response`` answers."""
    payload = response.request.post_data_json
    assert isinstance(payload, dict), payload
    return payload


def is_submission_request(request: Request) -> bool:
    return request.method == "POST" and request.url.endswith(f"/{SITE}/comments")


def idempotency_key(response: Response) -> str:
    return response.request.all_headers()["idempotency-key"]


def status_line(page: Page) -> Locator:
    """The widget's live region for messages about the form."""
    return widget(page).get_by_role("status")


def assert_kept(page: Page, body: str, website: str = "") -> None:
    """Everything the reader typed is still in the form, and Post works again."""
    expect(textbox(page, "Comment")).to_have_value(body)
    expect(textbox(page, "Name")).to_have_value("Ada Lovelace")
    expect(textbox(page, "Email")).to_have_value("ada@example.com")
    expect(textbox(page, "Website")).to_have_value(website)
    button = widget(page).locator("button[type=submit]")
    expect(button).not_to_have_attribute("aria-disabled", "true")
    expect(button).to_have_text(POST)


def assert_beside_the_button(page: Page) -> None:
    """The live region sits right under the form's Post button."""
    button = widget(page).locator("button[type=submit]").bounding_box()
    message = status_line(page).bounding_box()
    assert button and message, (button, message)
    gap = message["y"] - (button["y"] + button["height"])
    assert 0 <= gap < button["height"], f"the message is {gap:.0f}px below the button"


# --- 1. The honeypot ----------------------------------------------------------------------

BOT_TEXT = "Cheap pills, click now"
# What a form-filling bot does: a plausible value in every input and textarea there is,
# whether anyone can see it or not, then submit.
BOT_FILLS_EVERYTHING = """bot => {
  const form = document.querySelector("#comments").shadowRoot.querySelector("form");
  for (const field of form.querySelectorAll("input, textarea")) {
    if (field.type === "checkbox") field.checked = true;
    else field.value = {email: bot.email, url: bot.url}[field.type] || bot.text;
  }
  form.requestSubmit();
}"""
BOT = {"email": "bot@spam.example", "url": "https://spam.example/", "text": BOT_TEXT}


def test_a_bot_filling_every_field_is_answered_like_anyone_and_stored_as_spam(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    open_thread(page, host.url("thread.html", page=key), "No comments yet.")
    with page.expect_response(is_submission) as answer:
        page.evaluate(BOT_FILLS_EVERYTHING, BOT)
    response = answer.value

    assert sent(response)["subject"] == BOT_TEXT
    assert response.status == 201, response.text()
    assert response.json()["status"] == "pending"
    assert not [name for name in response.json() if "spam" in name], response.json()
    assert "honeypot" not in response.text()
    expect(status_line(page)).to_have_text(AWAITING)

    [caught] = stored(live, key)
    assert caught["id"] == response.json()["id"]
    assert caught["status"] == "spam"
    assert "honeypot" in caught["spam_reasons"]
    assert caught["spam_score"] == 1


def test_the_honeypot_is_out_of_sight_and_out_of_reach(
    page: Page, host: HostSite, key: str
) -> None:
    container = open_thread(page, host.url("thread.html", page=key), "No comments yet.")
    trap = container.locator("input[name=subject]")
    expect(trap).to_have_count(1)
    assert trap.evaluate("e => e.form !== null"), "the honeypot is not part of the form"

    # Laid out (bots skip display:none) but wholly outside the widget's box.
    assert trap.evaluate("e => getComputedStyle(e.parentElement).display") != "none"
    box, area = trap.bounding_box(), container.bounding_box()
    assert box and area, (box, area)
    assert box["x"] + box["width"] <= area["x"] or box["x"] >= area["x"] + area["width"], (
        box,
        area,
    )

    # Not in the accessibility tree: four textboxes for screen readers, five in the DOM.
    form = container.locator("form")
    names = form.get_by_role("textbox").evaluate_all(
        "boxes => boxes.map(box => box.getAttribute('name'))"
    )
    assert names == ["body", "author_name", "author_email", "author_url"]
    expect(form.get_by_role("textbox", include_hidden=True)).to_have_count(5)
    assert form.aria_snapshot().count("- textbox") == 4, form.aria_snapshot()

    # Out of reach of the keyboard: Tab goes from Website to the checkbox; no script can
    # focus it either (inert).
    textbox(page, "Website").focus()
    page.keyboard.press("Tab")
    assert focused(page) == "input save"
    assert trap.evaluate("e => { e.focus(); return e.getRootNode().activeElement === e; }") is False

    # Nothing for autofill to recognise: no label, a name it has no use for, autocomplete off.
    expect(trap).to_have_attribute("autocomplete", "off")
    expect(trap).to_have_attribute("tabindex", "-1")
    assert trap.evaluate("e => e.labels.length") == 0
    assert trap.evaluate("e => !!e.closest('[aria-hidden=true][inert]')")

    assert_accessible(page, "the form with its honeypot")


# --- 2. How long the form was open ---------------------------------------------------------


def test_a_reader_typing_at_a_human_pace_is_neither_spam_nor_too_fast(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    started = time.monotonic()
    open_thread(page, host.url("thread.html", page=key), "No comments yet.")
    for label, text in (
        ("Comment", "I read the whole article before writing this."),
        ("Name", "Ada Lovelace"),
        ("Email", "ada@example.com"),
    ):
        textbox(page, label).press_sequentially(text, delay=40)
    # A fast typist still takes longer than the site's minimum; make sure of it.
    page.wait_for_timeout(max(0, MIN_FILL_MS + 500 - (time.monotonic() - started) * 1000))
    response = post(page)

    assert response.status == 201, response.text()
    proof = sent(response)
    assert proof["subject"] == ""
    assert isinstance(proof["fill_ms"], int)
    assert MIN_FILL_MS <= proof["fill_ms"] <= (time.monotonic() - started) * 1000
    expect(status_line(page)).to_have_text(AWAITING)
    [mine] = stored(live, key)
    assert mine["status"] == "pending"
    assert not {"honeypot", "too_fast"} & set(mine["spam_reasons"]), mine["spam_reasons"]


def test_a_form_sent_at_once_is_held_as_too_fast(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    started = time.monotonic()
    open_thread(page, host.url("thread.html", page=key), "No comments yet.")
    fill_form(page, "Pasted in a blink.")
    response = post(page)

    assert response.status == 201, response.text()
    fill_ms = sent(response)["fill_ms"]
    assert isinstance(fill_ms, int)
    # Measured by the widget from when it showed the form: within the test's own clock.
    assert 0 <= fill_ms <= (time.monotonic() - started) * 1000
    assert fill_ms < MIN_FILL_MS, f"this machine took {fill_ms} ms to fill the form"
    expect(status_line(page)).to_have_text(AWAITING)
    [held] = stored(live, key)
    assert held["status"] == "pending"
    assert "too_fast" in held["spam_reasons"]
    assert "honeypot" not in held["spam_reasons"]


def test_a_reply_forms_time_starts_when_it_opens(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    parent = submit(live, key, author_name="Grace Hopper")
    live.approve(parent)
    open_thread(page, host.url("thread.html", page=key), "1 comment")
    # The page has been open long enough, but the reply form has only just been shown.
    page.wait_for_timeout(MIN_FILL_MS + 300)
    widget(page).get_by_role("button", name="Reply to Grace Hopper").click()
    fill_form(page, "A reply sent at once.")
    response = post(page)

    assert response.status == 201, response.text()
    assert sent(response)["parent_id"] == parent
    assert sent(response)["fill_ms"] < MIN_FILL_MS
    reply = live.comment(response.json()["id"]) or {}
    assert "too_fast" in reply["spam_reasons"]


# --- 3. Idempotency-Key across a lost answer -------------------------------------------------

#: Headers that belong to one connection, not to the message.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class LossyProxy:
    """A loopback HTTP proxy to the service that can lose the answers to submissions.

    Each answer is sent with ``Connection: close``: Chromium retries a request by itself
    only on a reused connection, so the widget alone decides what is sent again.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.lost: list[str] = []
        self._to_lose = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def lose_next_answer(self) -> None:
        """The service gets the next submission; the browser never hears its answer."""
        with self._lock:
            self._to_lose += 1

    def _take_loss(self) -> bool:
        with self._lock:
            if self._to_lose:
                self._to_lose -= 1
                return True
            return False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    name: value
                    for name, value in self.headers.items()
                    if name.lower() not in HOP_BY_HOP
                }
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=10)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.close_connection = True
                if self.command == "POST" and proxy._take_loss():
                    proxy.lost.append(data.decode("utf-8", "replace"))
                    return  # the connection closes without a byte of the answer
                self.send_response_only(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_OPTIONS = relay

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: a test's output is its assertions."""

        return Handler

    @contextmanager
    def running(self) -> Iterator[LossyProxy]:
        thread = threading.Thread(target=self.server.serve_forever, name="lossy-proxy")
        thread.daemon = True
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join(timeout=5)


@pytest.fixture(scope="module")
def proxy(live: Live) -> Iterator[LossyProxy]:
    with LossyProxy(live.base_url).running() as running:
        yield running


def test_a_retry_after_a_lost_answer_reuses_its_key_and_stores_once(
    live: Live, page: Page, host: HostSite, key: str, proxy: LossyProxy, page_log: PageLog
) -> None:
    page_log.expect_console_error(LOST_ANSWER)
    open_thread(page, host.url("proxied.html", page=key, via=proxy.url), "No comments yet.")
    failed = "Your comment could not be posted. Please try again."

    # The service stores the comment, but its answer never arrives.
    fill_form(page, "Sent on a bad connection.")
    proxy.lose_next_answer()
    with page.expect_request(is_submission_request) as attempt:
        widget(page).get_by_role("button", name=POST, exact=True).click()
    expect(status_line(page)).to_have_text(failed)
    assert attempt.value.failure, "the answer was not lost"
    first_key = attempt.value.all_headers()["idempotency-key"]
    assert_kept(page, "Sent on a bad connection.")
    [kept] = stored(live, key)
    assert [json.loads(answer)["id"] for answer in proxy.lost] == [kept["id"]]

    # Pressing Post again sends the same key: the service answers with the stored comment.
    response = post(page)
    assert idempotency_key(response) == first_key
    assert response.status == 201, response.text()
    assert response.json()["id"] == kept["id"]
    expect(status_line(page)).to_have_text(AWAITING)
    assert [c["id"] for c in stored(live, key)] == [kept["id"]]

    # After a success, the next comment has a key of its own.
    textbox(page, "Comment").fill("A second thought.")
    second = post(page)
    assert second.status == 201, second.text()
    assert idempotency_key(second) not in (first_key, "")

    # Lost again, then edited before the retry: other content, another key.
    textbox(page, "Comment").fill("A third thought.")
    proxy.lose_next_answer()
    with page.expect_request(is_submission_request) as attempt:
        widget(page).get_by_role("button", name=POST, exact=True).click()
    expect(status_line(page)).to_have_text(failed)
    assert attempt.value.failure, "the answer was not lost"
    textbox(page, "Comment").fill("A third thought, better put.")
    edited = post(page)
    assert edited.status == 201, edited.text()
    assert idempotency_key(edited) != attempt.value.all_headers()["idempotency-key"]
    assert sorted(c["body"] for c in stored(live, key)) == [
        "A second thought.",
        "A third thought, better put.",
        "A third thought.",
        "Sent on a bad connection.",
    ]


# --- 4. The same comment twice: 409 ------------------------------------------------------------


def test_the_same_comment_twice_says_so_and_keeps_the_text(
    live: Live, page: Page, host: HostSite, key: str, page_log: PageLog
) -> None:
    page_log.expect_console_error(HTTP_STATUS_ERROR.format(409))
    open_thread(page, host.url("thread.html", page=key), "No comments yet.")
    fill_form(page, "Worth saying once.", website="https://ada.example/")
    assert post(page).status == 201
    expect(status_line(page)).to_have_text(AWAITING)

    textbox(page, "Comment").fill("Worth saying once.")
    response = post(page)
    assert response.status == 409, response.text()
    expect(status_line(page)).to_have_text(DUPLICATE)
    assert_beside_the_button(page)
    assert_kept(page, "Worth saying once.", website="https://ada.example/")
    # Not a mistake in the text: the field is not marked invalid.
    expect(textbox(page, "Comment")).not_to_have_attribute("aria-invalid", "true")
    assert [c["body"] for c in stored(live, key)] == ["Worth saying once."]
    assert_accessible(page, "the 409 message shown")


# --- 5. Posting too often: 429 -------------------------------------------------------------


@dataclass(frozen=True)
class Throttled:
    """A gunicorn that takes LIMIT submissions a minute, and host pages of its own."""

    live: Live
    host: HostSite


@pytest.fixture(scope="module")
def throttled(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Throttled]:
    directory = tmp_path_factory.mktemp("throttled")
    env = service_env(
        run_databases().url(directory / "throttled.db"),
        COMMENTSVC_ENV="production",
        COMMENTSVC_SESSION_COOKIE_SECURE="false",
        COMMENTSVC_RATELIMIT_ENABLED="true",
        COMMENTSVC_SUBMIT_RATE_LIMIT=f"{LIMIT}/minute",
    )
    gunicorn = GunicornServer(env, directory / "gunicorn.log", workers=WORKERS)
    with serve_host_pages(gunicorn.url, SITE) as site:
        admin = Moderator(ADMIN_EMAIL, PASSWORD, admin=True)
        token = create_accounts(env, {SITE: site.origin}, [admin], token_for=ADMIN_EMAIL)
        assert token is not None
        with gunicorn, requests.Session() as http:
            yield Throttled(Live(gunicorn.url, token, gunicorn.log, http), site)


#: How each language says "in N seconds / minutes" (Intl.RelativeTimeFormat), one and many.
WAITS = {
    "en": {
        "second": ("in {} second", "in {} seconds"),
        "minute": ("in {} minute", "in {} minutes"),
    },
    "de": {
        "second": ("in {} Sekunde", "in {} Sekunden"),
        "minute": ("in {} Minute", "in {} Minuten"),
    },
    "fr": {
        "second": ("dans {} seconde", "dans {} secondes"),
        "minute": ("dans {} minute", "dans {} minutes"),
    },
}
TOO_OFTEN = {
    "en": "You are posting too often. Please try again {}.",
    "de": "Du kommentierst zu oft. Bitte versuche es {} erneut.",
    "fr": "Vous commentez trop souvent. Veuillez réessayer {}.",
}
BUTTONS = {"en": POST, "de": "Kommentar abschicken", "fr": "Laisser un commentaire"}
#: The labels of Comment, Name and Email.
LABELS = {
    "en": ("Comment", "Name", "Email"),
    "de": ("Kommentar", "Name", "E-Mail"),
    "fr": ("Commentaire", "Nom", "E-mail"),
}
EMPTY = {
    "en": "No comments yet.",
    "de": "Noch keine Kommentare.",
    "fr": "Aucun commentaire pour l\u2019instant.",
}
AWAITS = {
    "en": AWAITING,
    "de": "Dein Kommentar wartet auf Freischaltung.",
    "fr": "Votre commentaire est en attente de modération.",
}


def too_often(lang: str, retry_after: int) -> str:
    """The message for a Retry-After of ``retry_after`` seconds: seconds under a minute, else
    whole minutes, rounded up."""
    unit, n = (
        ("second", retry_after) if retry_after < 60 else ("minute", math.ceil(retry_after / 60))
    )
    one, many = WAITS[lang][unit]
    return TOO_OFTEN[lang].format((one if n == 1 else many).format(n))


def post_until_refused(page: Page, key: str, lang: str) -> tuple[Response, str]:
    """Post new comments until the service says 429; that answer and the refused text."""
    for n in range(1, LIMIT + 2):
        body = f"Comment {n} on {key}."
        for label, value in zip(
            LABELS[lang], (body, "Ada Lovelace", "ada@example.com"), strict=True
        ):
            textbox(page, label).fill(value)
        response = post(page, BUTTONS[lang])
        if response.status == 429:
            return response, body
        assert response.status == 201, response.text()
        expect(status_line(page)).to_have_text(AWAITS[lang])
    pytest.fail(f"{LIMIT + 1} submissions within a minute, none refused")


@pytest.mark.parametrize("lang", ["en", "de", "fr"])
def test_posting_too_often_says_how_long_to_wait_and_keeps_the_text(
    throttled: Throttled, pages: Pages, page_log: PageLog, key: str, lang: str
) -> None:
    page_log.expect_console_error(HTTP_STATUS_ERROR.format(429))
    page = HostPages(pages, throttled.host).open()
    url = throttled.host.url("thread.html", page=key, lang="" if lang == "en" else lang)
    open_thread(page, url, EMPTY[lang])
    before = len(stored(throttled.live, key))

    refused, body = post_until_refused(page, key, lang)
    assert refused.headers["content-type"].startswith("application/problem+json")
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60, retry_after

    expect(status_line(page)).to_have_text(too_often(lang, retry_after))
    assert_beside_the_button(page)
    for label, value in zip(LABELS[lang], (body, "Ada Lovelace", "ada@example.com"), strict=True):
        expect(textbox(page, label)).to_have_value(value)
    button = widget(page).locator("button[type=submit]")
    expect(button).to_have_text(BUTTONS[lang])
    expect(button).not_to_have_attribute("aria-disabled", "true")
    assert body not in [c["body"] for c in stored(throttled.live, key)], "the refused one stored"
    assert len(stored(throttled.live, key)) - before <= LIMIT
    if lang == "en":
        assert_accessible(page, "the 429 message shown")


# --- 6. The form without JavaScript (the demo article's <noscript>) ------------------------

DEMO_PAGE_KEY = "/2025/10/us-china-talks"


def open_demo_without_javascript(pages: Pages, host: HostSite) -> Page:
    page = pages.open(java_script_enabled=False)
    page.goto(f"{host.origin}/article.html")
    return page


def test_the_no_javascript_form_hides_its_honeypot_from_readers(
    live: Live, pages: Pages, host: HostSite
) -> None:
    page = open_demo_without_javascript(pages, host)
    form = page.locator("form[method=post]")
    trap = form.locator("input[name=subject]")
    expect(trap).to_have_count(1)
    box = trap.bounding_box()
    assert box and box["x"] + box["width"] <= 0, box
    expect(form.get_by_role("textbox")).to_have_count(4)
    expect(form.get_by_role("textbox", include_hidden=True)).to_have_count(5)
    expect(trap).to_have_attribute("autocomplete", "off")
    form.get_by_role("textbox", name="Website").focus()
    page.keyboard.press("Tab")
    expect(form.get_by_role("checkbox", name=NOTIFY)).to_be_focused()
    page.keyboard.press("Tab")
    expect(form.get_by_role("button", name="Post Comment")).to_be_focused()

    body = "Posted from the plain form."
    form.get_by_role("textbox", name="Comment").fill(body)
    form.get_by_role("textbox", name="Name").fill("Ada Lovelace")
    form.get_by_role("textbox", name="Email").fill("ada@example.com")
    with page.expect_navigation():
        form.get_by_role("button", name="Post Comment").click()
    assert page.url == f"{host.origin}/article.html#comment-pending", page.url
    expect(page.get_by_role("status")).to_have_text(
        "Thank you! Your comment is awaiting moderation."
    )

    [mine] = [c for c in stored(live, DEMO_PAGE_KEY) if c["body"] == body]
    assert mine["status"] == "pending"
    # No proof of fill time without JavaScript: not judged by it.
    assert not {"honeypot", "too_fast"} & set(mine["spam_reasons"]), mine["spam_reasons"]


def test_a_bot_filling_the_no_javascript_form_is_stored_as_spam(
    live: Live, pages: Pages, host: HostSite
) -> None:
    page = open_demo_without_javascript(pages, host)
    form = page.locator("form[method=post]")
    body = f"{BOT_TEXT} (plain form)"
    for field in form.locator("textarea, input:not([type=hidden])").all():
        kind = field.get_attribute("type") or ""
        value = BOT.get(kind, body if field.get_attribute("name") == "body" else BOT_TEXT)
        field.evaluate("(e, value) => { e.value = value; }", value)
    with page.expect_navigation():
        form.get_by_role("button", name="Post Comment").click()
    assert page.url == f"{host.origin}/article.html#comment-pending", page.url

    [caught] = [c for c in stored(live, DEMO_PAGE_KEY) if c["body"] == body]
    assert caught["status"] == "spam"
    assert "honeypot" in caught["spam_reasons"]
