"""Seed a running commentsvc with sample comments and screenshot the moderation panel.

Usage (with `make run` serving on 127.0.0.1:8000 in another terminal):

    .venv/bin/python scripts/screenshots.py --token TOKEN \
        [--base http://127.0.0.1:8000] [--email demo@example.com] [--password demo-password]

Writes docs/screenshots/*.png. Needs Debian's Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import requests
from playwright.sync_api import Page, sync_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
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
    page.goto(f"{base}/moderation/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/moderation/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--site", default="demo")
    parser.add_argument("--email", default="demo@example.com")
    parser.add_argument("--password", default="demo-password")
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    api = f"{args.base}/api/v1"
    auth = {"Authorization": f"Bearer {args.token}"}

    ids = []
    for page, title, name, email, body in SAMPLES:
        response = requests.post(
            f"{api}/sites/{args.site}/comments",
            json={
                "page": page,
                "page_url": f"{args.base}{page}",
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
        f"{api}/moderation/comments/{ids[0]}", json={"status": "approved"}, headers=auth, timeout=10
    ).raise_for_status()
    reply = requests.post(
        f"{api}/sites/{args.site}/comments",
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

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        for scheme in ("light", "dark"):
            context = browser.new_context(
                viewport={"width": 1100, "height": 900}, color_scheme=scheme
            )
            page = context.new_page()
            log_in(page, args.base, args.email, args.password)
            page.keyboard.press("j")
            page.screenshot(path=OUT / f"queue-{scheme}.png", full_page=True)
            page.goto(f"{args.base}/moderation/comments/{ids[0]}")
            page.screenshot(path=OUT / f"detail-{scheme}.png", full_page=True)
            context.close()
        mobile = browser.new_context(viewport={"width": 360, "height": 780}, device_scale_factor=2)
        page = mobile.new_page()
        log_in(page, args.base, args.email, args.password)
        page.screenshot(path=OUT / "queue-mobile.png")
        browser.close()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
