"""Render time of the widget on a page with 200 approved comments, embedded from another origin.

Starts gunicorn (two workers, rate limits off) on a fresh SQLite database made with the real
CLI, submits the comments to one page through the public API and approves them with one
bulk request of the moderation API, serves a host page from a second origin, and measures in
Debian's Chromium the time from navigation start until the last comment is in the widget's
shadow DOM (a MutationObserver on the shadow root, timestamps from ``performance.now()``).
The host page is tests/browser/widget_pages/thread.html, served as the widget tests serve it
(tests/support/host_pages.py); the reader's clock runs a day ahead, so the comments read
"yesterday" as in a real thread.

Each cold run is a fresh browser context (empty HTTP cache); each warm run reloads the page
in the context of a cold run (widget.js from the cache, the thread revalidated with its
ETag). The service answers the widget's first request with ``PAGE_SIZE`` comments; with a
page size below the number of comments the harness clicks "Load more comments" as soon as
it appears, so the figure includes the extra round trips a reader would need.

With ``--included`` the host page holds the thread as a site includes it server-side
(``GET /sites/{site}/thread.html``, fetched once after seeding, as a static site generator
would): the widget draws the comments from the page and only revalidates them (a 304).

    .venv/bin/python -m benchmarks.widget_render [--comments 200] [--runs 5] [--page-size 200]
        [--included]
"""

from __future__ import annotations

import argparse
import gzip
import html
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from playwright.sync_api import Browser, sync_playwright

from tests.support.chromium import CHROMIUM, MISSING, launch
from tests.support.host_pages import PLACEHOLDER, WIDGET_PAGES, HostSite, serve_host_pages
from tests.support.server import GunicornServer, free_port, send_page, serving
from tests.support.service import Moderator, create_accounts, service_env

SITE = "bench"
PAGE_KEY = "/2025/10/benchmark-article"
MODERATOR = Moderator("bench@example.com", "bench-pass-123")

# Installed before the page's scripts: when the widget attaches its shadow root, watch it and
# note when the first and the last comment are in it, clicking "Load more" whenever shown.
# The reader's clock runs a day ahead: the freshly seeded comments then read "yesterday", as
# in a real thread, instead of "just now" (a shortcut that skips the date formatting).
PROBE = """
(target) => {
  const marks = (window.__bench = { target });
  const now = Date.now;
  Date.now = () => now() + 86400000;
  const attachShadow = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    const root = attachShadow.call(this, init);
    marks.shadow = performance.now();
    const observer = new MutationObserver(() => {
      const count = root.querySelectorAll("li.csv-comment").length;
      if (count && !marks.first) marks.first = performance.now();
      if (count >= target) {
        marks.last = performance.now();
        observer.disconnect();
        // The frame that shows them: after its rAF callbacks, style, layout and paint.
        requestAnimationFrame(() => setTimeout(() => { marks.painted = performance.now(); }));
        return;
      }
      const more = root.querySelector(".csv-more");
      if (more && !more.hidden && !more.disabled) more.click();
    });
    observer.observe(root, { childList: true, subtree: true, attributes: true });
    return root;
  };
}
"""
RESULTS = """() => {
  const entries = performance.getEntriesByType("resource");
  const end = (part) => entries.filter((e) => e.name.includes(part)).map((e) => e.responseEnd);
  const [nav] = performance.getEntriesByType("navigation");
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  return {
    ...window.__bench,
    html: nav.responseEnd,
    fcp: paint ? paint.startTime : NaN,
    script: end("/widget.js")[0],
    thread: Math.max(...end("/comments?")),
    requests: end("/comments?").length,
  };
}"""

HOST_PAGE = "thread.html"
#: Where the included thread goes in the host page: its container.
CONTAINER_END = "></div>"


@contextmanager
def serve_included_page(api: str) -> Iterator[tuple[HostSite, dict[str, str]]]:
    """The host page with the thread included in its container, on an origin of its own;
    the thread (``"fragment"``) is put in the dict yielded, once there is one."""
    held: dict[str, str] = {}
    values = {"API": api, "SITE": SITE, "PAGE": PAGE_KEY}
    template = PLACEHOLDER.sub(
        lambda m: html.escape(values.get(m[1], "")),
        (WIDGET_PAGES / HOST_PAGE).read_text("utf-8"),
    )
    assert template.count(CONTAINER_END) == 1, "the host page's container is not empty"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fragment = held.get("fragment", "")
            send_page(self, template.replace(CONTAINER_END, f">{fragment}</div>"))

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with serving(server, "included-page") as origin:
        yield HostSite(origin), held


def fragment(api: str) -> str:
    """The thread as the service renders it for a server-side include."""
    response = requests.get(
        f"{api}/sites/{SITE}/thread.html", params={"page": PAGE_KEY}, timeout=10
    )
    response.raise_for_status()
    assert 'class="csv-comment"' in response.text, response.text[:200]
    return response.text


@contextmanager
def service(directory: Path, port: int, page_size: int, host_origin: str) -> Iterator[str]:
    """gunicorn on ``port`` and a fresh database with the site and a moderator; their token."""
    env = service_env(
        f"sqlite:///{directory / 'bench.db'}",
        COMMENTSVC_PAGE_SIZE=str(page_size),
        COMMENTSVC_SESSION_COOKIE_SECURE="false",
    )
    token = create_accounts(env, {SITE: host_origin}, [MODERATOR], token_for=MODERATOR.email)
    assert token is not None
    with GunicornServer(env, directory / "gunicorn.log", workers=2, port=port):
        yield token


def seed(api: str, token: str, count: int) -> None:
    """``count`` comments on one page, approved with one bulk request."""
    ids = []
    with requests.Session() as http:
        for number in range(1, count + 1):
            response = http.post(
                f"{api}/api/v1/sites/{SITE}/comments",
                json={
                    "page": PAGE_KEY,
                    "body": f"Comment number {number}. " + "Some words of a reader. " * 8,
                    "author_name": f"Reader {number}",
                    "author_email": f"reader{number}@example.com",
                    "author_url": f"https://reader{number}.example/" if number % 3 else None,
                },
                timeout=10,
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        response = http.post(
            f"{api}/api/v1/moderation/comments/bulk",
            json={"ids": ids, "action": "approve"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        thread = http.get(
            f"{api}/api/v1/sites/{SITE}/comments",
            params={"page": PAGE_KEY, "limit": "1"},
            timeout=10,
        )
        assert thread.json()["total"] == count, thread.text


@contextmanager
def plain_host_pages(api: str) -> Iterator[tuple[HostSite, dict[str, str]]]:
    """The widget tests' host pages, the container empty."""
    with serve_host_pages(api, SITE) as host:
        yield host, {}


def script_sizes(api: str) -> dict[str, Any]:
    """widget.js as served, and gzipped at two levels."""
    response = requests.get(f"{api}/widget.js", headers={"Accept-Encoding": "gzip"}, timeout=10)
    response.raise_for_status()
    body = response.content  # decoded, should the service ever compress it itself
    return {
        "raw": len(body),
        "gzip -6": len(gzip.compress(body, compresslevel=6)),
        "gzip -9": len(gzip.compress(body, compresslevel=9)),
        "content-encoding": response.headers.get("Content-Encoding", "none"),
    }


def measure(browser: Browser, url: str, comments: int, runs: int) -> list[dict[str, Any]]:
    """One cold and one warm load per run."""
    results = []
    errors: list[str] = []
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(f"({PROBE})({comments})")
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        for kind in ("cold", "warm"):
            if kind == "cold":
                page.goto(url)
            else:
                page.reload()
            page.wait_for_function("() => window.__bench && window.__bench.painted", timeout=30_000)
            results.append({"kind": kind, **page.evaluate(RESULTS)})
        context.close()
        assert not errors, errors
    return results


def summarize(results: list[dict[str, Any]], kind: str) -> dict[str, float]:
    """The median of each milestone over the loads of one kind."""
    rows = [row for row in results if row["kind"] == kind]
    names = ("html", "fcp", "script", "shadow", "thread", "first", "last", "painted")
    # A mark the browser did not give (a reload may have no paint entry) is left out.
    known = {name: [row[name] for row in rows if row[name] == row[name]] for name in names}
    return {
        name: statistics.median(values) if values else math.nan for name, values in known.items()
    }


def parse_args() -> argparse.Namespace:
    """The options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.widget_render", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--comments", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--included",
        action="store_true",
        help="the host page holds the thread, included server-side (thread.html)",
    )
    parser.add_argument(
        "--page-size",
        type=int,
        default=200,
        help="the service's PAGE_SIZE (default 200, so the first request brings them all; "
        "the service's own default is 50)",
    )
    return parser.parse_args()


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """Serve and seed the thread, then load it in Chromium: the runs, the script's sizes and
    the browser's version."""
    with tempfile.TemporaryDirectory(prefix="widget-bench-") as tmp:
        # The host page points at the service, and the service's site at the host page.
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        with (
            serve_included_page(api) if args.included else plain_host_pages(api) as (host, held),
            service(Path(tmp), port, args.page_size, host.origin) as token,
        ):
            seed(api, token, args.comments)
            if args.included:
                held["fragment"] = fragment(api)
            sizes = script_sizes(api)
            url = host.url(HOST_PAGE, page=PAGE_KEY)
            with sync_playwright() as playwright:
                browser = launch(playwright)
                try:
                    browser.new_page().goto("about:blank")  # start-up, not measured
                    return measure(browser, url, args.comments, args.runs), sizes, browser.version
                finally:
                    browser.close()


def print_report(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    sizes: dict[str, Any],
    version: str,
    seconds: float,
) -> None:
    """The medians of the cold and warm loads, and the script's sizes."""
    print(f"widget render benchmark: {args.comments} approved comments on one page,")
    print(f"PAGE_SIZE={args.page_size}, {args.runs} runs, Chromium {version} headless,")
    print(f"host page and service on different origins (setup {seconds:.0f} s)")
    if args.included:
        print("the thread included in the host page (thread.html), revalidated by the widget")
    print()
    print("ms after navigation start (median)  cold   warm")
    cold, warm = summarize(results, "cold"), summarize(results, "warm")
    labels = {
        "html": "host page received",
        "fcp": "first contentful paint",
        "script": "widget.js received",
        "shadow": "shadow root attached",
        "thread": "last thread JSON received",
        "first": "first comment in shadow DOM",
        "last": f"comment #{args.comments} in shadow DOM",
        "painted": "that frame painted",
    }
    for name, label in labels.items():
        both = (
            f"{value:6.0f}" if value == value else "     —" for value in (cold[name], warm[name])
        )
        print(f"  {label:<33} {' '.join(both)}")
    every = ", ".join(f"{row['last']:.0f}" for row in results if row["kind"] == "cold")
    print(f"  cold runs, comment #{args.comments} in DOM: {every}")
    print(f"  thread requests per load: {results[0]['requests']}")
    print()
    print(
        f"/widget.js as served: {sizes['raw']:,} bytes, gzip -6 {sizes['gzip -6']:,} bytes, "
        f"gzip -9 {sizes['gzip -9']:,} bytes (Content-Encoding: {sizes['content-encoding']})"
    )


def main() -> None:
    """Measure and print."""
    args = parse_args()
    if not CHROMIUM.exists():
        sys.exit(MISSING)
    started = time.monotonic()
    results, sizes, version = run(args)
    print_report(args, results, sizes, version, time.monotonic() - started)


if __name__ == "__main__":
    main()
