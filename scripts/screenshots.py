"""Screenshots of the moderation panel for docs/screenshots/, taken from the real panel.

By default it serves the panel itself: gunicorn on a fresh database made with the real CLI
(the site ``demo`` and the administrator demo@example.com), seeded with the sample comments
below, so that every run shows the same queue. Against a service that already runs (``make
run`` in another terminal), give its URL and an API token; the samples are added to it:

    .venv/bin/python -m scripts.screenshots [--out docs/screenshots]
    .venv/bin/python -m scripts.screenshots --base http://127.0.0.1:8000 --token TOKEN \
        [--email demo@example.com] [--password demo-password]

Run it from the project root. Needs Debian's Chromium at /usr/bin/chromium (make browser).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import requests
from playwright.sync_api import Browser, Page, sync_playwright

from commentsvc import PROJECT_ROOT
from tests.support.chromium import CHROMIUM, MISSING, launch
from tests.support.server import GunicornServer
from tests.support.service import Moderator, create_accounts, service_env

OUT = PROJECT_ROOT / "docs" / "screenshots"
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


@contextmanager
def own_service(site: str, email: str, password: str) -> Iterator[tuple[str, str]]:
    """The panel on a fresh database with ``site`` and the administrator; its URL and token."""
    with tempfile.TemporaryDirectory(prefix="commentsvc-screenshots-") as tmp:
        directory = Path(tmp)
        # Production settings over plain HTTP, as the browser tests run them.
        env = service_env(
            f"sqlite:///{directory / 'screenshots.db'}",
            COMMENTSVC_ENV="production",
            COMMENTSVC_SESSION_COOKIE_SECURE="false",
        )
        server = GunicornServer(env, directory / "gunicorn.log")
        administrator = Moderator(email, password, admin=True)
        token = create_accounts(env, {site: server.url}, [administrator], token_for=email)
        assert token is not None
        with server:
            yield server.url, token


def seed(base: str, site: str, token: str) -> int:
    """Submit the samples (the first approved, with a reply); the first one's id."""
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
    return int(ids[0])


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
    parser.add_argument("--out", type=Path, default=OUT, help=f"default: {OUT}")
    args = parser.parse_args()
    if args.base and not args.token:
        parser.error("--base needs --token")
    if not CHROMIUM.exists():
        sys.exit(MISSING)
    service: AbstractContextManager[tuple[str, str]] = (
        nullcontext((args.base.rstrip("/"), args.token))
        if args.base
        else own_service(args.site, args.email, args.password)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    with service as (base, token), sync_playwright() as playwright:
        detail = seed(base, args.site, token)
        browser = launch(playwright)
        try:
            shoot(browser, base, (args.email, args.password), detail, args.out)
        finally:
            browser.close()
    print(f"screenshots written to {args.out}")


if __name__ == "__main__":
    main()
