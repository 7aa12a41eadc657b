"""Render time of the widget on a page with 200 approved comments, embedded from another origin.

Starts gunicorn (two workers, rate limits off) on a fresh SQLite database made with the real
CLI, submits the comments to one page through the public API and approves them with one
bulk request of the moderation API, serves a host page from a second origin, and measures in
Debian's Chromium the time from navigation start until the last comment is in the widget's
shadow DOM (a MutationObserver on the shadow root, timestamps from ``performance.now()``).
The host page is tests/browser/widget_pages/thread.html, served as the widget tests serve it;
the reader's clock runs a day ahead, so the comments read "yesterday" as in a real thread.

Each cold run is a fresh browser context (empty HTTP cache); each warm run reloads the page
in the context of a cold run (widget.js from the cache, the thread revalidated with its
ETag). The service answers the widget's first request with ``PAGE_SIZE`` comments; with a
page size below the number of comments the harness clicks "Load more comments" as soon as
it appears, so the figure includes the extra round trips a reader would need.

    .venv/bin/python benchmarks/widget_render.py [--comments 200] [--runs 5] [--page-size 200]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Run as a script from anywhere: the helpers below live in the project's tests package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from playwright.sync_api import Browser, sync_playwright

from commentsvc import PROJECT_ROOT
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_widget import serve_host_pages
from tests.e2e.conftest import free_port, run_cli, service_env, stop, wait_until_healthy

SITE = "bench"
PAGE_KEY = "/2025/10/benchmark-article"
EMAIL = "bench@example.com"
APP = ("wsgi:app",)

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
  return {
    ...window.__bench,
    html: nav.responseEnd,
    script: end("/widget.js")[0],
    thread: Math.max(...end("/comments?page=")),
    requests: end("/comments?page=").length,
  };
}"""

HOST_PAGE = "thread.html"


@contextmanager
def service(directory: Path, port: int, page_size: int, host_origin: str) -> Iterator[str]:
    """gunicorn on ``port`` and a fresh database with the site and a moderator; their token."""
    database = directory / "bench.db"
    env = service_env(database)
    env.update(COMMENTSVC_PAGE_SIZE=str(page_size), COMMENTSVC_SESSION_COOKIE_SECURE="false")
    run_cli(env, "db", "upgrade")
    with ThreadPoolExecutor(max_workers=2) as pool:
        site = pool.submit(run_cli, env, "sites", "add", SITE, "--origin", host_origin)
        moderator = pool.submit(
            run_cli, env, "moderators", "add", EMAIL, "--password-stdin", stdin="bench-pass-123"
        )
        site.result()
        moderator.result()
    token = run_cli(env, "tokens", "create", EMAIL).split()[-1]
    url = f"http://127.0.0.1:{port}"
    log = directory / "gunicorn.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                *APP,
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_healthy(process, url, log)
        yield token
    finally:
        stop(process)


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


def script_sizes(api: str) -> dict[str, Any]:
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
    rows = [row for row in results if row["kind"] == kind]
    names = ("html", "script", "shadow", "thread", "first", "last", "painted")
    return {name: statistics.median(row[name] for row in rows) for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--page-size",
        type=int,
        default=200,
        help="the service's PAGE_SIZE (default 200, so the first request brings them all; "
        "the service's own default is 50)",
    )
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing: install Debian's chromium (make browser).")

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="widget-bench-") as tmp:
        # The host page points at the service, and the service's site at the host page.
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        with (
            serve_host_pages(api, SITE) as host,
            service(Path(tmp), port, args.page_size, host.origin) as token,
        ):
            seed(api, token, args.comments)
            sizes = script_sizes(api)
            url = host.url(HOST_PAGE, page=PAGE_KEY)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                try:
                    browser.new_page().goto("about:blank")  # start-up, not measured
                    results = measure(browser, url, args.comments, args.runs)
                    version = browser.version
                finally:
                    browser.close()

    print(f"widget render benchmark: {args.comments} approved comments on one page,")
    print(f"PAGE_SIZE={args.page_size}, {args.runs} runs, Chromium {version} headless,")
    print(f"host page and service on different origins (setup {time.monotonic() - started:.0f} s)")
    print()
    print("ms after navigation start (median)  cold   warm")
    cold, warm = summarize(results, "cold"), summarize(results, "warm")
    labels = {
        "html": "host page received",
        "script": "widget.js received",
        "shadow": "shadow root attached",
        "thread": "last thread JSON received",
        "first": "first comment in shadow DOM",
        "last": f"comment #{args.comments} in shadow DOM",
        "painted": "that frame painted",
    }
    for name, label in labels.items():
        print(f"  {label:<33} {cold[name]:6.0f} {warm[name]:6.0f}")
    every = ", ".join(f"{row['last']:.0f}" for row in results if row["kind"] == "cold")
    print(f"  cold runs, comment #{args.comments} in DOM: {every}")
    print(f"  thread requests per load: {results[0]['requests']}")
    print()
    print(
        f"/widget.js as served: {sizes['raw']:,} bytes, gzip -6 {sizes['gzip -6']:,} bytes, "
        f"gzip -9 {sizes['gzip -9']:,} bytes (Content-Encoding: {sizes['content-encoding']})"
    )


if __name__ == "__main__":
    main()
