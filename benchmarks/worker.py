"""The outbox worker's speed, over real HTTP against gunicorn (DESIGN §8).

python -m benchmarks.worker [--comments 1000] [--samples 20] [--database-url URL]

Three measurements, each on a fresh database served by gunicorn (2 workers, the production
config, rate limits off), with a real ``commentsvc worker`` process (4 threads, the
default):

- **webhooks**: ``--comments`` comments are posted over HTTP with no worker running, each an
  event for one webhook (a threaded HTTP receiver on loopback that answers 200 at once);
  then a worker starts, and the time until the receiver has every call gives events per
  second, planning included.
- **mail**: the same with one moderator and an SMTP server (aiosmtpd on loopback) instead:
  a moderator mail per comment, each with its three one-click links made and rendered (the
  hourly cap raised, so that none is folded into a digest).
- **delay**: with a worker running (polling every 500 ms, the default), one comment at a
  time is posted and the time until its moderator mail reaches the SMTP server is taken,
  ``--samples`` times: the delay a moderator sees.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests

from benchmarks.load.machine import git_commit
from benchmarks.load.procstat import field_of
from tests.support.receiver import WebhookReceiver
from tests.support.server import GunicornServer
from tests.support.service import commentsvc_script, create_accounts, run_cli, service_env
from tests.support.smtp import SmtpServer

SITE = "bench"
MODERATOR = "moderator@example.com"


@contextmanager
def service(
    workdir: Path, database_url: str | None, **variables: str
) -> Iterator[tuple[GunicornServer, dict[str, str]]]:
    """gunicorn on a fresh database with the site and a moderator; its environment."""
    url = database_url or f"sqlite:///{workdir / 'worker-bench.db'}"
    env = service_env(url, COMMENTSVC_WEBHOOK_ALLOW_PRIVATE="true", **variables)
    gunicorn = GunicornServer(env, workdir / "gunicorn.log", workers=2)
    create_accounts(env, {SITE: gunicorn.url}, [])
    run_cli(env, "moderators", "add", MODERATOR, "--password-stdin", stdin="bench-password-1\n")
    with gunicorn:
        gunicorn.wait_every_worker()
        yield gunicorn, env


@contextmanager
def worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen([commentsvc_script(), "worker"], env=env, stdout=out, stderr=out)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(30)


def post_comments(base_url: str, count: int, threads: int = 8) -> float:
    """Post ``count`` comments on 8 connections; the seconds it took."""

    def post(number: int) -> None:
        with requests.Session() as session:
            response = session.post(
                f"{base_url}/api/v1/sites/{SITE}/comments",
                json={
                    "page": f"/page-{number % 20}",
                    "body": f"Comment number {number}",
                    "author_name": "Reader",
                    "author_email": f"reader{number}@example.com",
                },
                timeout=30,
            )
            response.raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(post, range(count)))
    return time.perf_counter() - started


def wait_until(done: Callable[[], int], count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while done() < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {done()} of {count} delivered in {timeout:g} s")
        time.sleep(0.02)


def throughput(
    workdir: Path, database_url: str | None, comments: int, channel: str
) -> tuple[float, float]:
    """(seconds to post, events per second delivered) for one channel."""
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        path = Path(scratch)
        if channel == "webhooks":
            with WebhookReceiver() as receiver, service(path, database_url) as (gunicorn, env):
                run_cli(env, "webhooks", "add", SITE, receiver.url, "--event", "comment.submitted")
                posting = post_comments(gunicorn.url, comments)
                started = time.perf_counter()
                with worker(env, path / "worker.log"):
                    wait_until(lambda: len(receiver.calls), comments, 600)
                    elapsed = time.perf_counter() - started
        else:
            with SmtpServer() as smtp:
                mail = {
                    "COMMENTSVC_SMTP_URL": smtp.url,
                    "COMMENTSVC_PUBLIC_URL": "https://comments.example.test",
                    # Every comment its own mail: no folding into a digest past the cap.
                    "COMMENTSVC_NOTIFY_MAX_PER_HOUR": str(comments * 2),
                }
                with service(path, database_url, **mail) as (gunicorn, env):
                    posting = post_comments(gunicorn.url, comments)
                    started = time.perf_counter()
                    with worker(env, path / "worker.log"):
                        wait_until(lambda: len(smtp.messages), comments, 600)
                        elapsed = time.perf_counter() - started
    return posting, comments / elapsed


def mail_delay(workdir: Path, database_url: str | None, samples: int) -> list[float]:
    """Seconds from a submission's 201 to its moderator mail at the SMTP server."""
    delays: list[float] = []
    with tempfile.TemporaryDirectory(dir=workdir) as scratch, SmtpServer() as smtp:
        path = Path(scratch)
        mail = {
            "COMMENTSVC_SMTP_URL": smtp.url,
            "COMMENTSVC_PUBLIC_URL": "https://comments.example.test",
        }
        with service(path, database_url, **mail) as (gunicorn, env), worker(env, path / "w.log"):
            time.sleep(2)  # the worker has started and is idle
            for number in range(samples):
                response = requests.post(
                    f"{gunicorn.url}/api/v1/sites/{SITE}/comments",
                    json={
                        "page": "/delay",
                        "body": f"How long until the moderator hears of comment {number}?",
                        "author_name": "Reader",
                        "author_email": f"reader{number}@example.com",
                    },
                    timeout=30,
                )
                response.raise_for_status()
                answered = time.perf_counter()
                smtp.wait_for(number + 1, timeout=30)
                delays.append(time.perf_counter() - answered)
                time.sleep(0.137 * (number % 5))  # not in step with the worker's poll
    return delays


def machine() -> str:
    model = field_of(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text())
    ram_kib = int(field_of(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()))
    memory = f"{ram_kib / 1024 / 1024:.0f} GiB"
    return f"{model}, {os.cpu_count()} cores, {memory}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comments", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--database-url", help="PostgreSQL URL; default a SQLite file.")
    args = parser.parse_args()
    os.environ.setdefault("COMMENTSVC_ENV_FILE", os.devnull)
    with tempfile.TemporaryDirectory(prefix="commentsvc-worker-bench-") as workdir:
        base = Path(workdir)
        post_hooks, hooks = throughput(base, args.database_url, args.comments, "webhooks")
        post_mail, mails = throughput(base, args.database_url, args.comments, "mail")
        delays = mail_delay(base, args.database_url, args.samples)
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"# Worker benchmark ({database}, commit {git_commit()})\n")
    print(f"{machine()}; gunicorn 2 workers; one `commentsvc worker`, 4 threads\n")
    print("| measurement | result |")
    print("|---|---|")
    print(f"| webhooks: {args.comments} events to a fast receiver | **{hooks:,.0f} events/s** |")
    print(f"| mail: {args.comments} moderator mails to an SMTP server | **{mails:,.0f} mails/s** |")
    print(
        f"| submission → moderator mail, {len(delays)} samples | median "
        f"**{statistics.median(delays) * 1000:,.0f} ms**, p95 "
        f"{sorted(delays)[int(len(delays) * 0.95) - 1] * 1000:,.0f} ms, max "
        f"{max(delays) * 1000:,.0f} ms |"
    )
    rate = args.comments / ((post_hooks + post_mail) / 2)
    print(f"| (posting the comments, 8 connections, outbox on) | {rate:,.0f} submissions/s |")


if __name__ == "__main__":
    main()
