"""Fixtures for real-browser tests of the moderation panel: one gunicorn per module serving a
database made with the real CLI, one Debian Chromium per module driven by Playwright, and a
fresh browser context per test whose JavaScript errors fail the test."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.support.chromium import CHROMIUM, MISSING, launch
from tests.support.databases import run_databases
from tests.support.server import GunicornServer
from tests.support.service import Moderator, create_accounts, service_env

ADMIN_EMAIL = "admin@example.com"
BLOG_MODERATOR_EMAIL = "blogmod@example.com"
PASSWORD = "browser-password-123"
MODERATORS = (
    Moderator(ADMIN_EMAIL, PASSWORD, admin=True),
    Moderator(BLOG_MODERATOR_EMAIL, PASSWORD, sites=("blog",)),
)
BLOG_ORIGIN = "https://blog.example"
WORKERS = 2
TIMEOUT_MS = 5_000
HERE = Path(__file__).resolve().parent

# Recorded in every page before its own scripts run: CSP violations (a payload that reached
# the DOM as markup and was only stopped by the policy) must fail the test, not pass quietly.
CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/browser/ is a browser test."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium; missing means skip on a workstation, but fail in CI."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{MISSING} The browser tests need it (or: sudo apt-get install chromium)."
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return CHROMIUM


@dataclass
class Live:
    """A running gunicorn serving the panel, plus HTTP helpers for the JSON APIs."""

    base_url: str
    token: str
    log: Path
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, path: str) -> str:
        return self.base_url + path

    # Public API -----------------------------------------------------------------------
    def submit_raw(self, page: str, *, site: str = "news", **fields: Any) -> requests.Response:
        """POST a comment as JSON to the public API; ``fields`` override the defaults."""
        payload: dict[str, Any] = {
            "page": page,
            "page_url": self.url(page) if site == "news" else BLOG_ORIGIN + page,
            "page_title": f"Article {page}",
            "body": "A thoughtful comment.",
            "author_name": "Ada Lovelace",
            "author_email": "ada@example.com",
        }
        payload.update(fields)
        return self.http.post(self.url(f"/api/v1/sites/{site}/comments"), json=payload, timeout=10)

    def submit(self, page: str, **fields: Any) -> int:
        """Submit a comment (it is stored pending) and return its id."""
        response = self.submit_raw(page, **fields)
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "pending"
        return int(response.json()["id"])

    def thread(self, page: str, site: str = "news") -> list[int]:
        """Ids of the approved comments the public sees on ``page``."""
        response = self.http.get(
            self.url(f"/api/v1/sites/{site}/comments"), params={"page": page}, timeout=10
        )
        assert response.status_code == 200, response.text
        return [comment["id"] for comment in response.json()["comments"]]

    # Moderation API -------------------------------------------------------------------
    def comment(self, comment_id: int) -> dict[str, Any] | None:
        """The comment as the moderation API shows it, or None once deleted."""
        response = self.http.get(
            self.url(f"/api/v1/moderation/comments/{comment_id}"), headers=self.auth, timeout=10
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def status(self, comment_id: int) -> str | None:
        comment = self.comment(comment_id)
        return None if comment is None else str(comment["status"])

    def moderate(self, comment_id: int, status: str) -> None:
        response = self.http.patch(
            self.url(f"/api/v1/moderation/comments/{comment_id}"),
            json={"status": status},
            headers=self.auth,
            timeout=10,
        )
        assert response.status_code == 200, response.text

    def approve(self, comment_id: int) -> None:
        self.moderate(comment_id, "approved")

    def ids(self, status: str, **filters: str) -> list[int]:
        """Ids of every comment with ``status`` (and filters), newest first, all pages."""
        ids: list[int] = []
        params: dict[str, str] = {"status": status, "limit": "200", **filters}
        while True:
            response = self.http.get(
                self.url("/api/v1/moderation/comments"),
                params=params,
                headers=self.auth,
                timeout=10,
            )
            assert response.status_code == 200, response.text
            data = response.json()
            ids += [comment["id"] for comment in data["comments"]]
            if not data["next_cursor"]:
                return ids
            params["cursor"] = data["next_cursor"]

    def count(self, status: str, **filters: str) -> int:
        return len(self.ids(status, **filters))

    def wait_for_status(self, comment_id: int, status: str | None, timeout: float = 5) -> None:
        """Poll the moderation API until the comment has ``status`` (None: deleted)."""
        deadline = time.monotonic() + timeout
        while (current := self.status(comment_id)) != status:
            if time.monotonic() > deadline:
                pytest.fail(f"comment {comment_id} is {current!r}, expected {status!r}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def live(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """gunicorn (production settings over plain HTTP) on a database made with the CLI."""
    directory = tmp_path_factory.mktemp("browser")
    env = service_env(
        run_databases().url(directory / "panel.db"),
        COMMENTSVC_ENV="production",
        COMMENTSVC_SESSION_COOKIE_SECURE="false",
    )
    gunicorn = GunicornServer(env, directory / "gunicorn.log", workers=WORKERS, graceful_timeout=5)
    sites = {"news": gunicorn.url, "blog": BLOG_ORIGIN}
    token = create_accounts(env, sites, MODERATORS, token_for=ADMIN_EMAIL)
    assert token is not None
    with gunicorn, requests.Session() as http:
        yield Live(gunicorn.url, token, gunicorn.log, http)


@pytest.fixture(scope="module")
def playwright(chromium: Path) -> Iterator[Playwright]:
    manager = sync_playwright().start()
    try:
        yield manager
    finally:
        manager.stop()


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium: Path) -> Iterator[Browser]:
    """One headless Chromium per module (Playwright's own browsers are never downloaded)."""
    browser = launch(playwright)
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class PageLog:
    """What went wrong in the pages of one test: console errors, uncaught errors, dialogs.

    Dialogs are answered from ``dialog_answers`` (True accepts), dismissed when it is empty.
    Expected console errors are declared with :meth:`expect_console_error`.
    """

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    dialog_answers: list[bool] = field(default_factory=list)
    # Chromium asks every origin for /favicon.ico; the panel serves none, which is noise.
    expected: list[re.Pattern[str]] = field(
        default_factory=lambda: [re.compile(r"status of 404 .*/favicon\.ico\)$")]
    )

    def expect_console_error(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def on_page_error(self, error: PlaywrightError) -> None:
        self.page_errors.append(f"{error.name}: {error.message}")

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        if self.dialog_answers and self.dialog_answers.pop(0):
            dialog.accept()
        else:
            dialog.dismiss()

    def unexpected(self) -> list[str]:
        console = [
            text
            for text in self.console_errors
            if not any(pattern.search(text) for pattern in self.expected)
        ]
        return [f"console error: {text}" for text in console] + [
            f"uncaught error: {text}" for text in self.page_errors
        ]


@dataclass
class Pages:
    """Opens pages in fresh contexts on the live server and watches them."""

    browser: Browser
    base_url: str
    log: PageLog
    contexts: list[Any] = field(default_factory=list)

    def open(self, *, java_script_enabled: bool = True) -> Page:
        context = self.browser.new_context(
            base_url=self.base_url, java_script_enabled=java_script_enabled
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        context.add_init_script(CSP_WATCH)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", self.log.on_console)
        page.on("pageerror", self.log.on_page_error)
        page.on("dialog", self.log.on_dialog)
        return page


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
def pages(browser: Browser, live: Live, page_log: PageLog) -> Iterator[Pages]:
    """Fresh contexts for this test; JavaScript errors in any of them fail the test."""
    opened = Pages(browser, live.base_url, page_log)
    yield opened
    for context in opened.contexts:
        context.close()
    problems = page_log.unexpected()
    if problems:
        pytest.fail("the pages reported errors:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def page(pages: Pages) -> Page:
    """A page in a fresh context with JavaScript on."""
    return pages.open()


def log_in(page: Page, email: str = ADMIN_EMAIL, password: str = PASSWORD) -> None:
    """Log in through the login form and land on the queue."""
    page.goto("/moderation/login")
    form = page.locator("form#login-form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(password)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert path_of(page.url) == "/moderation/", page.url


def path_of(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture
def logged_in(page: Page) -> Page:
    """The default page, logged in as the admin moderator."""
    log_in(page)
    return page
