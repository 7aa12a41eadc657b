"""Screenshots of the moderation panel and of the widget for docs/screenshots/, taken from the
real panel and the real widget.

By default it serves the panel itself: gunicorn on a fresh database made with the real CLI
(the site ``demo``, in Markdown as ``make run``'s, and the administrator demo@example.com),
seeded with the sample comments below, so that every run shows the same queue; and the demo
article of demo/ on another origin, as ``make run`` serves it (scripts/demo_site.py, which
includes the thread as nginx's SSI would). After the panel, the article's samples are
approved, and the widget is taken in light and dark: its Preview tab showing Markdown, then
the reader's own comment, just posted, awaiting moderation. Against a service that already
runs (``make run`` in another terminal), give its URL and an API token; the samples are added
to it, and the widget is taken on its demo article (``--article``):

    .venv/bin/python -m scripts.screenshots [--out docs/screenshots]
    .venv/bin/python -m scripts.screenshots --base http://127.0.0.1:8000 --token TOKEN \
        [--email demo@example.com] [--password demo-password] \
        [--article http://127.0.0.1:8001/article.html]

Run it from the project root. Needs Debian's Chromium at /usr/bin/chromium (make browser).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import requests
from playwright.sync_api import Browser, FloatRect, Locator, Page, expect, sync_playwright

from commentsvc import PROJECT_ROOT
from tests.support.chromium import CHROMIUM, MISSING, launch
from tests.support.host_pages import DemoHandler
from tests.support.server import LOOPBACK, GunicornServer, serving
from tests.support.service import Moderator, create_accounts, run_cli, service_env

OUT = PROJECT_ROOT / "docs" / "screenshots"
#: The demo article's page key (demo/article.html), which the first samples comment on.
ARTICLE_KEY = "/2025/10/us-china-talks"
#: What the reader types into the widget: Markdown with emphasis, a code span, a list, a link.
MARKDOWN = (
    "The *second* round went better than the first: the `tariff-schedule.pdf` annex lists\n\n"
    "- steel and aluminium, **halved** by March\n"
    "- a review of the [2019 exemptions](https://example.org/exemptions) within 90 days"
)
READER = ("Rosa Díaz", "rosa@example.com")
#: The widget's crop: its container and this much of the page around it (CSS px), in a
#: window wide enough for the demo article's column (42rem).
MARGIN = {"x": 24, "y": 16}
VIEWPORT_WIDTH = 760
SCHEMES: tuple[Literal["light", "dark"], ...] = ("light", "dark")
#: Seconds the demo site asks a comment from the widget to have taken (min_fill_seconds),
#: and some: a quicker one would be held for a moderator as too fast.
FILL_SECONDS = 3.5
SAMPLES = [
    (
        "/2025/10/us-china-talks",
        "US-China trade talks resume",
        "Maria Santos",
        "maria@example.org",
        "Finally some movement. The tariff schedule in the second paragraph is worth a read:\n"
        "https://example.org/tariffs-2025",
    ),
    (
        "/2025/10/us-china-talks",
        "US-China trade talks resume",
        "J. Okafor",
        "okafor@example.net",
        "I doubt anything concrete comes out of this round.\n\nThe last three ended the same way.",
    ),
    (
        "/2025/10/rate-decision",
        "Central bank holds rates",
        "Lena Fischer",
        "lena@example.de",
        "Good explainer. Could you add a chart of the last ten decisions?",
    ),
    (
        "/2025/10/rate-decision",
        "Central bank holds rates",
        "CheapMeds4U",
        "deals@spam.example",
        "BEST PRICES!!! visit http://spam.example/buy-now <script>alert(1)</script>",
    ),
    (
        "/2025/11/city-budget",
        "City council passes budget",
        "Tom Becker",
        "tom@example.com",
        "The library funding cut is disappointing.",
    ),
]


def log_in(page: Page, base: str, email: str, password: str) -> None:
    """Log in through the panel's form and land on the queue."""
    page.goto(f"{base}/moderation/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/moderation/")


@dataclass(frozen=True)
class Service:
    """The service to take: its URL, an API token, and the demo article that embeds its
    widget (on another origin)."""

    base: str
    token: str
    article: str


@contextmanager
def own_service(site: str, email: str, password: str) -> Iterator[Service]:
    """The panel on a fresh database with ``site`` (Markdown) and the administrator, and the
    demo article on another origin, which ``site`` allows."""
    with tempfile.TemporaryDirectory(prefix="commentsvc-screenshots-") as tmp:
        directory = Path(tmp)
        # Production settings over plain HTTP, as the browser tests run them.
        env = service_env(
            f"sqlite:///{directory / 'screenshots.db'}",
            COMMENTSVC_ENV="production",
            COMMENTSVC_SESSION_COOKIE_SECURE="false",
        )
        server = GunicornServer(env, directory / "gunicorn.log")
        demo: ThreadingHTTPServer = DemoHandler.make_server(LOOPBACK, 0, server.url, site)
        with serving(demo) as article_origin:
            administrator = Moderator(email, password, admin=True)
            origins = [server.url, article_origin]
            token = create_accounts(env, {site: origins}, [administrator], token_for=email)
            assert token is not None
            run_cli(env, "sites", "set", site, "--markup", "markdown")
            with server:
                yield Service(server.url, token, f"{article_origin}/article.html")


def article_of(base: str) -> str:
    """The demo article that ``make run`` serves beside the service at ``base``."""
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.hostname}:{(parts.port or 80) + 1}/article.html"


def seed(base: str, site: str, token: str) -> list[int]:
    """Submit the samples (the first approved, with a reply); their ids, the reply's last."""
    api = f"{base}/api/v1"
    ids = []
    for page, title, name, email, body in SAMPLES:
        response = requests.post(
            f"{api}/sites/{site}/comments",
            json={
                "page": page,
                "page_url": f"{base}{page}",
                "page_title": title,
                "author_name": name,
                "author_email": email,
                "body": body,
            },
            timeout=10,
        )
        response.raise_for_status()
        ids.append(response.json()["id"])
    requests.patch(
        f"{api}/moderation/comments/{ids[0]}",
        json={"status": "approved"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).raise_for_status()
    reply = requests.post(
        f"{api}/sites/{site}/comments",
        json={
            "page": SAMPLES[0][0],
            "parent_id": ids[0],
            "author_name": "Ana Lima",
            "author_email": "ana@example.com",
            "body": "Thanks for the link, the schedule is clearer than the article.",
        },
        timeout=10,
    )
    reply.raise_for_status()
    return [*ids, reply.json()["id"]]


def approve_article_samples(base: str, token: str, ids: list[int]) -> None:
    """The demo article's samples that still wait (a reply among them) approved."""
    on_article = [
        i for i, sample in zip(ids[:-1], SAMPLES, strict=True) if sample[0] == ARTICLE_KEY
    ]
    for comment_id in [*on_article[1:], ids[-1]]:
        requests.patch(
            f"{base}/api/v1/moderation/comments/{comment_id}",
            json={"status": "approved"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).raise_for_status()


def shoot(browser: Browser, base: str, login: tuple[str, str], detail: int, out: Path) -> None:
    """The queue and a comment's detail in light and dark, and the queue on a phone."""
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1100, "height": 900}, color_scheme=scheme)
        page = context.new_page()
        log_in(page, base, *login)
        page.keyboard.press("j")
        page.screenshot(path=out / f"queue-{scheme}.png", full_page=True)
        page.goto(f"{base}/moderation/comments/{detail}")
        page.screenshot(path=out / f"detail-{scheme}.png", full_page=True)
        context.close()
    mobile = browser.new_context(viewport={"width": 360, "height": 780}, device_scale_factor=2)
    page = mobile.new_page()
    log_in(page, base, *login)
    page.screenshot(path=out / "queue-mobile.png")
    mobile.close()


def widget_shot(page: Page, container: Locator, path: Path) -> None:
    """The widget's container and a margin of the page around it, the mouse out of the way."""
    page.mouse.move(0, 0)
    # The whole page in the viewport, from its top: the container's box is in page pixels.
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": VIEWPORT_WIDTH, "height": height})
    page.evaluate("window.scrollTo(0, 0)")
    box = container.bounding_box()
    assert box is not None
    clip = FloatRect(
        x=box["x"] - MARGIN["x"],
        y=box["y"] - MARGIN["y"],
        width=box["width"] + 2 * MARGIN["x"],
        height=box["height"] + 2 * MARGIN["y"],
    )
    page.screenshot(path=path, clip=clip)


def shoot_widget(browser: Browser, article: str, out: Path) -> None:
    """The widget on the demo article, light and dark: its Preview tab with Markdown, then
    the reader's own comment, posted and awaiting moderation, with Edit and Delete."""
    context = browser.new_context(
        viewport={"width": VIEWPORT_WIDTH, "height": 900}, device_scale_factor=1
    )
    page = context.new_page()
    page.goto(article)
    opened = time.monotonic()
    container = page.locator("#comments")
    form = container.locator("form")
    expect(container.get_by_role("tab", name="Preview")).to_be_visible()
    form.get_by_role("textbox", name="Comment").fill(MARKDOWN)
    form.get_by_role("textbox", name="Name").fill(READER[0])
    form.get_by_role("textbox", name="Email").fill(READER[1])
    form.get_by_role("tab", name="Preview").click()
    expect(form.locator("[role=tabpanel] li a")).to_have_text("2019 exemptions")
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        widget_shot(page, container, out / f"widget-preview-{scheme}.png")
    time.sleep(max(0.0, FILL_SECONDS - (time.monotonic() - opened)))
    form.get_by_role("button", name="Post Comment").click()
    expect(container.locator(".csv-mine .csv-yours")).to_be_visible()
    expect(container.locator(".csv-mine").get_by_role("button", name="Edit")).to_be_visible()
    for scheme in reversed(SCHEMES):  # dark already: one switch fewer
        page.emulate_media(color_scheme=scheme)
        widget_shot(page, container, out / f"widget-own-{scheme}.png")
    context.close()


def main() -> None:
    """Serve (or use) the panel, seed it, and write the screenshots."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.screenshots",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base", help="a running service's URL (default: serve one here)")
    parser.add_argument("--token", help="an API token of that service (required with --base)")
    parser.add_argument("--site", default="demo")
    parser.add_argument("--email", default="demo@example.com")
    parser.add_argument("--password", default="demo-password")
    parser.add_argument(
        "--article", help="with --base: its demo article (default: make run's, on port + 1)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help=f"default: {OUT}")
    args = parser.parse_args()
    if args.base and not args.token:
        parser.error("--base needs --token")
    if not CHROMIUM.exists():
        sys.exit(MISSING)
    service: AbstractContextManager[Service]
    if args.base:
        base = args.base.rstrip("/")
        service = nullcontext(Service(base, args.token, args.article or article_of(base)))
    else:
        service = own_service(args.site, args.email, args.password)
    args.out.mkdir(parents=True, exist_ok=True)
    with service as served, sync_playwright() as playwright:
        ids = seed(served.base, args.site, served.token)
        browser = launch(playwright)
        try:
            shoot(browser, served.base, (args.email, args.password), ids[0], args.out)
            approve_article_samples(served.base, served.token, ids)
            shoot_widget(browser, served.article, args.out)
        finally:
            browser.close()
    print(f"screenshots written to {args.out}")


if __name__ == "__main__":
    main()
