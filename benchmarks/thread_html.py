"""Throughput of the server-rendered thread (DESIGN §10) beside the JSON thread, over HTTP.

Starts gunicorn with the production config (``gunicorn.conf.py``: as many workers as it
starts on this machine unless ``--workers`` says otherwise; logs at WARNING, rate limits
off) on a fresh SQLite database made with the real CLI, and beside it the stack's ceiling
(``benchmarks/ceiling_app.py``). One page gets ``--comments`` comments through the public API
(one in five a reply, one in ten of those a reply to a reply; bodies with paragraphs and
links, a third of the authors with a website), approved through the moderation API. Then
wrk (``benchmarks/lua/count_statuses.lua``, which counts the answers by status) loads, in
``--rounds`` interleaved rounds so that the machine's drift touches every workload alike:

* ``ceiling``: the minimal Flask app, the most this stack serves on this machine;
* ``fragment``: ``GET /sites/{site}/thread.html?page=KEY``, the whole thread as HTML;
* ``fragment-304``: the same with ``If-None-Match``;
* ``json``: ``GET /api/v1/sites/{site}/comments?page=KEY&limit=N``, the same slice as JSON;
* ``discuss``: ``GET /sites/{site}/discuss?page=KEY``, the page with the thread and the form.

The median round stands for each workload; each run also records the server's CPU time per
request and the share of the CPUs others took (the machine may be shared).

    .venv/bin/python -m benchmarks.thread_html [--comments 200] [--duration 6] [--warmup 2]
        [--rounds 3] [--connections 8] [--workers N]
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks.load import log
from benchmarks.load.bench import LUA_DIR
from benchmarks.load.machine import git_commit
from benchmarks.load.procstat import CPUS, CpuWindow, field_of
from benchmarks.load.server import Server, serve
from benchmarks.load.wrk import WrkLoad, WrkRun, require_wrk, run_wrk, wrk_version
from commentsvc.serving import worker_count
from tests.support.service import Moderator, base_env, create_accounts, service_env

SITE = "bench"
ORIGIN = "https://bench.example"
PAGE_KEY = "/2025/10/a-long-discussion"
MODERATOR = Moderator("bench@example.com", "bench-pass-123")


@dataclass(frozen=True)
class Workload:
    """One kind of request: its key, what it is, the server, the path, headers, status."""

    key: str
    label: str
    server: str
    path: str
    headers: tuple[str, ...] = ()
    expected: int = 200


@dataclass(frozen=True)
class Run:
    """One measured wrk run, with the CPU the server used and the share others took."""

    wrk: WrkRun
    cpu_ms: float
    others_share: float


@contextmanager
def servers(directory: Path, workers: int) -> Iterator[tuple[Server, Server, str]]:
    """commentsvc on a fresh database with the site and a moderator, and the ceiling; the
    moderator's token."""
    env = service_env(f"sqlite:///{directory / 'bench.db'}", COMMENTSVC_LOG_LEVEL="WARNING")
    token = create_accounts(env, {SITE: ORIGIN}, [MODERATOR], token_for=MODERATOR.email)
    assert token is not None
    with ExitStack() as stack:
        app = stack.enter_context(serve("commentsvc", "wsgi", env, workers, directory, None))
        ceiling = stack.enter_context(serve("ceiling", "ceiling", env, workers, directory, None))
        yield app, ceiling, token


def body_of(number: int) -> str:
    """A comment's text: two or three paragraphs, a link in some."""
    words = "Some words of a reader about the article, with an opinion of their own. "
    link = f"\n\nSee https://source{number}.example/article for more." if number % 4 == 0 else ""
    return f"Comment number {number}. {words * 3}\n\n{words * 2}{link}"


def seed(api: str, token: str, count: int) -> None:
    """``count`` approved comments on one page: top-level ones, then replies to them, then
    replies to those (a reply's parent must be approved when it is posted)."""
    replies = count // 5
    nested = replies // 10
    with requests.Session() as http:

        def post(number: int, parent_id: int | None) -> int:
            response = http.post(
                f"{api}/api/v1/sites/{SITE}/comments",
                json={
                    "page": PAGE_KEY,
                    "page_url": ORIGIN + PAGE_KEY,
                    "page_title": "A long discussion",
                    "body": body_of(number),
                    "author_name": f"Reader {number}",
                    "author_email": f"reader{number}@example.com",
                    "author_url": f"https://reader{number}.example/" if number % 3 == 0 else None,
                    "parent_id": parent_id,
                },
                timeout=10,
            )
            assert response.status_code == 201, response.text
            return int(response.json()["id"])

        def approve(ids: list[int]) -> None:
            if not ids:
                return
            response = http.post(
                f"{api}/api/v1/moderation/comments/bulk",
                json={"ids": ids, "action": "approve"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert response.status_code == 200, response.text

        top = [post(n, None) for n in range(count - replies)]
        approve(top)
        first = [post(len(top) + n, top[n * 3 % len(top)]) for n in range(replies - nested)]
        approve(first)
        second = [post(count - nested + n, first[n]) for n in range(nested)]
        approve(second)
        thread = http.get(
            f"{api}/api/v1/sites/{SITE}/comments", params={"page": PAGE_KEY, "limit": "1"}
        )
        assert thread.json()["total"] == count, thread.text


def workloads(api: str) -> list[Workload]:
    """The workloads, with the fragment's ETag for the 304 and its slice size for the JSON."""
    fragment = f"/sites/{SITE}/thread.html?page={PAGE_KEY}"
    answer = requests.get(api + fragment, timeout=10)
    tag = answer.headers["ETag"]
    limit = int(field_of(r'data-limit="(\d+)"', answer.text))
    return [
        Workload("ceiling", "ceiling (minimal Flask app)", "ceiling", "/"),
        Workload("fragment", "thread as HTML fragment", "commentsvc", fragment),
        Workload(
            "fragment-304",
            "thread as HTML fragment, If-None-Match (304)",
            "commentsvc",
            fragment,
            (f"If-None-Match: {tag}",),
            304,
        ),
        Workload(
            "json",
            f"thread as JSON, the same slice (limit={limit})",
            "commentsvc",
            f"/api/v1/sites/{SITE}/comments?page={PAGE_KEY}&limit={limit}",
        ),
        Workload(
            "discuss",
            "discuss page (thread and form)",
            "commentsvc",
            f"/sites/{SITE}/discuss?page={PAGE_KEY}",
        ),
    ]


def measure(workload: Workload, server: Server, args: argparse.Namespace, seconds: float) -> Run:
    """A warm-up, then one measured run; every answer must have the expected status."""
    load = WrkLoad(1, args.connections, LUA_DIR / "count_statuses.lua", workload.headers)
    url = server.url + workload.path
    run_wrk(url, load, args.warmup, base_env())
    window = CpuWindow(lambda: set(server.pids()), lambda: set())
    run = run_wrk(url, load, seconds, base_env())
    cpu = window.finish()
    unexpected = {status: n for status, n in run.statuses.items() if status != workload.expected}
    assert not unexpected and not run.socket_errors, (workload.key, run.statuses)
    return Run(run, cpu.app / max(run.requests, 1) * 1000, cpu.others_share)


def response_size(api: str, workload: Workload) -> int:
    """The body's size as served (uncompressed)."""
    headers = dict(header.split(": ", 1) for header in workload.headers)
    return len(requests.get(api + workload.path, headers=headers, timeout=10).content)


def machine() -> str:
    """nproc, the CPU model, RAM, and the software measured."""
    model = field_of(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text())
    ram_kib = int(field_of(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()))
    return (
        f"nproc {CPUS}, {model}, {ram_kib / 1024 / 1024:.1f} GiB RAM, Linux "
        f"{platform.release()}, Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version} (WAL), {wrk_version()}, commit {git_commit()}"
    )


def report(
    runs: dict[str, list[Run]],
    items: list[Workload],
    sizes: dict[str, int],
    args: argparse.Namespace,
) -> str:
    """The Markdown report: the median round of each workload."""
    ceiling = statistics.median(run.wrk.rps for run in runs["ceiling"])
    lines = [
        f"{args.comments} approved comments on one page; gunicorn with {args.workers} workers, "
        f"wrk 1 thread, {args.connections} connections, {args.rounds} interleaved rounds of "
        f"{args.duration / args.rounds:g} s (after {args.warmup} s warm-up each); median round.",
        "",
        f"Machine: {machine()}.",
        "",
        "| workload | req/s | of the ceiling | p50 ms | p99 ms | server CPU ms/req | body bytes"
        " | others' CPU share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for workload in items:
        measured = sorted(runs[workload.key], key=lambda run: run.wrk.rps)
        middle = measured[len(measured) // 2]
        lines.append(
            f"| {workload.label} | **{middle.wrk.rps:,.0f}** | {middle.wrk.rps / ceiling:.0%}"
            f" | {middle.wrk.p50_ms:.2f} | {middle.wrk.p99_ms:.2f} | {middle.cpu_ms:.2f}"
            f" | {sizes[workload.key]:,} | {max(run.others_share for run in measured):.0%} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    """The options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.thread_html", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--comments", type=int, default=200)
    parser.add_argument("--duration", type=int, default=6, help="seconds per workload in all")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None, help="default: gunicorn.conf.py's")
    return parser.parse_args()


def main() -> None:
    """Serve, seed, measure, print the report."""
    args = parse_args()
    require_wrk()
    args.workers = args.workers or worker_count(base_env())
    with (
        tempfile.TemporaryDirectory() as directory,
        servers(Path(directory), args.workers) as (
            app,
            ceiling,
            token,
        ),
    ):
        started = time.monotonic()
        seed(app.url, token, args.comments)
        log(f"seeded {args.comments} comments in {time.monotonic() - started:.0f} s")
        items = workloads(app.url)
        by_name = {"commentsvc": app, "ceiling": ceiling}
        sizes = {item.key: response_size(by_name[item.server].url, item) for item in items}
        runs: dict[str, list[Run]] = {item.key: [] for item in items}
        for round_number in range(args.rounds):
            for item in items:
                run = measure(item, by_name[item.server], args, args.duration / args.rounds)
                runs[item.key].append(run)
                log(
                    f"round {round_number + 1} {item.key:<13} {run.wrk.rps:8.0f} req/s"
                    f"  p99 {run.wrk.p99_ms:6.2f} ms  cpu {run.cpu_ms:5.2f} ms/req"
                    f"  others {run.others_share:4.0%}"
                )
        print(report(runs, items, sizes, args))


if __name__ == "__main__":
    main()
