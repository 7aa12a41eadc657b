"""Debian's Chromium, driven headless through Playwright (whose own browsers are never
downloaded): the browser tests, the widget render benchmark and the screenshots use it."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Playwright

CHROMIUM = Path("/usr/bin/chromium")
# Root in a container, no GPU, and a closed network: no sandbox, no background traffic.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
MISSING = f"{CHROMIUM} is missing: install Debian's chromium (make browser)."


def launch(playwright: Playwright) -> Browser:
    """A headless Debian Chromium."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
