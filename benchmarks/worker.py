"""The outbox worker's speed, over real HTTP against gunicorn (DESIGN §8).

python -m benchmarks.worker [--only NAME ...] [--comments 1000] [--samples 20]
    [--rate 200] [--duration 60] [--history 100000] [--profile FILE] [--no-mail]
    [--database-url URL]

Four measurements (all by default, about five minutes; ``--only`` picks some: ``webhooks``,
``mail``, ``delay``, ``keep-up``), each on a fresh database served by gunicorn (2 workers,
the production config, rate limits off), with a real ``commentsvc worker`` process (4
threads, polling every 500 ms: the defaults):

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
- **keep-up** (issue 18: "the worker keeps up with 200 submissions a second" with 100k outbox
  events delivered): the database starts with ``--history`` delivered events and their
  deliveries (:mod:`benchmarks.worker_keep_up`), one webhook (the threaded receiver) and one
  moderator on notify ``each`` with SMTP (aiosmtpd), every mail setting at its default: the
  hourly cap's 30 mails go out, the rest are held for the hourly digest, as a real site's
  would be at this rate. The plans the worker's statements get on that history are printed
  (``EXPLAIN QUERY PLAN`` of one real round, on a probe comment). Then, with a worker
  running, the soak's open-loop generator (:mod:`benchmarks.soak.traffic`, a process of its
  own) posts ``--rate`` submissions a second on schedule for ``--duration`` seconds, and each
  submission's delay from its 201 to the receiver having its webhook call is taken. Per 10 s
  window: the delay's p50, p95, p99 and max, the calls still owed at the window's end, the
  queue in the database, and the CPU used. It kept up (:func:`benchmarks.worker_keep_up.judge`)
  when every submission got its 201 and its call, at most 1 s of submissions was owed at the
  end of every window, and the last window's p99 delay is at most twice the first's (or 1 s).
  ``--profile FILE`` records the worker with py-spy during the traffic (collapsed stacks,
  idle threads included); ``--no-mail`` leaves SMTP unset (the history keeps its mails), to
  tell the mail planning's share from the rest.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks import worker_keep_up
from benchmarks.load.machine import git_commit
from benchmarks.load.procstat import field_of
from benchmarks.soak.traffic import ACKNOWLEDGED, TrafficConfig, read_records
from commentsvc import PROJECT_ROOT
from tests.support.receiver import WebhookReceiver
from tests.support.server import GunicornServer
from tests.support.service import commentsvc_script, create_accounts, run_cli, service_env
from tests.support.smtp import SmtpServer

SITE = "bench"
MODERATOR = "moderator@example.com"
MEASUREMENTS = ("webhooks", "mail", "delay", "keep-up")
#: The keep-up run: its windows, the generator's head start, how long the calls may take
#: to arrive after the traffic, and how long the worker gets to settle before it.
WINDOW = 10.0
LEAD = 2.0
DRAIN_TIMEOUT = 180.0
SETTLE = 3.0


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


@dataclass(frozen=True)
class KeepUp:
    """What the keep-up measurement found."""

    rate: float
    duration: float
    history: worker_keep_up.History
    plans: list[worker_keep_up.Explained]
    windows: list[worker_keep_up.KeepUpWindow]
    verdict: worker_keep_up.Verdict
    #: Seconds from the traffic's end until the last call arrived (None: not all did).
    drained_after: float | None
    mails: int
    unsigned: int
    with_mail: bool


def keep_up(
    workdir: Path,
    database_url: str | None,
    rate: float,
    duration: float,
    history: int,
    profile: Path | None = None,
    with_mail: bool = True,
) -> KeepUp:
    """Submissions at ``rate`` a second for ``duration`` s on a database with ``history``
    delivered events, a worker running: did it keep up with their webhook calls? Without
    ``with_mail``, no SMTP is set: nothing is planned for the moderator."""
    from commentsvc import create_app
    from commentsvc.config import instance_folder, load_config
    from commentsvc.delivery import drain

    with (
        tempfile.TemporaryDirectory(dir=workdir) as scratch,
        WebhookReceiver() as receiver,
        SmtpServer() as smtp,
    ):
        path = Path(scratch)
        calls = worker_keep_up.TimedCalls()
        receiver.calls = calls
        mail = {
            "COMMENTSVC_SMTP_URL": smtp.url,
            "COMMENTSVC_PUBLIC_URL": "https://comments.example.test",
        }
        with service(path, database_url, **(mail if with_mail else {})) as (gunicorn, env):
            receiver.secret = run_cli(env, "webhooks", "add", SITE, receiver.url).split()[-1]
            url = env["COMMENTSVC_DATABASE_URL"]
            seeded = worker_keep_up.seed_history(url, history, SITE, MODERATOR)
            print(
                f"keep-up: history of {seeded.events:,} events and {seeded.deliveries:,}"
                f" deliveries seeded in {seeded.seconds:.0f} s",
                file=sys.stderr,
            )
            # One real round of the service's worker code on a probe comment, in this
            # process, to see the plans its statements get on the history.
            post_comments(gunicorn.url, 1, threads=1)
            quiet = {**env, "COMMENTSVC_LOG_LEVEL": "WARNING"}  # no log lines in this process
            app = create_app(load_config(instance_folder(), environ=quiet))
            plans = worker_keep_up.explain_round(app, lambda: drain(app))
            receiver.wait_for(1)
            worker_log = path / "worker.log"
            with worker(env, worker_log) as process:
                wait_until(lambda: worker_log.read_text().count(" started: "), 1, 30)
                time.sleep(SETTLE)  # its first round: the prune and digest jobs
                start = time.monotonic() + LEAD
                records = path / "records.tsv"
                config = TrafficConfig(
                    host="127.0.0.1",
                    port=gunicorn.port,
                    site=SITE,
                    token="",
                    run="keep-up",
                    records=str(records),
                    duration=duration,
                    start_at=start,
                    rate=rate,
                    mix={"submit": 1},
                )
                (path / "traffic.json").write_text(config.to_json())
                traffic = subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.soak.traffic", str(path / "traffic.json")],
                    cwd=PROJECT_ROOT,
                )
                pids = {
                    "worker": [process.pid],
                    "server": [gunicorn.pid, *gunicorn.worker_pids()],
                    "client": [os.getpid(), traffic.pid],
                }
                sampler = worker_keep_up.Sampler(url, pids, start, WINDOW, round(duration / WINDOW))
                sampler.start()
                profiler = py_spy(process.pid, start, duration, profile) if profile else None
                traffic.wait()
                ended = start + duration
                answered = read_records(records)
                wanted = {r.comment_id for r in answered if r.status in ACKNOWLEDGED}
                drained_after = wait_for_calls(calls, wanted, DRAIN_TIMEOUT, ended)
                sampler.stop()
                if profiler is not None:
                    profiler.wait(60)
            received, arrived = calls.timed()
            arrivals = worker_keep_up.first_arrivals(received, arrived)
            runs = worker_keep_up.submissions(answered, arrivals)
            windows = worker_keep_up.cut(runs, start, duration, WINDOW, sampler.samples)
            unsigned = sum(1 for call in received if call.verified is False)
            mails = len(smtp.messages)
    return KeepUp(
        rate,
        duration,
        seeded,
        plans,
        windows,
        worker_keep_up.judge(windows, rate),
        drained_after,
        mails,
        unsigned,
        with_mail,
    )


def wait_for_calls(
    calls: worker_keep_up.TimedCalls, wanted: set[int], timeout: float, ended: float
) -> float | None:
    """Wait until the receiver has a call for every comment in ``wanted``; seconds after
    ``ended`` that the last one arrived, or None at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(calls) >= len(wanted):
            arrivals = worker_keep_up.first_arrivals(*calls.timed())
            if wanted.issubset(arrivals):
                return max((arrivals[i] for i in wanted), default=ended) - ended
        time.sleep(0.5)
    return None


def py_spy(pid: int, start: float, duration: float, output: Path) -> subprocess.Popen[bytes]:
    """py-spy recording the worker ``pid`` from ``start`` (monotonic) for ``duration`` s:
    collapsed stacks by thread, idle ones included (a thread waiting on the database's
    write lock or on a socket is where time goes too)."""
    program = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or "py-spy"
    time.sleep(max(0.0, start - time.monotonic()))
    return subprocess.Popen(
        [
            *(program, "record", "--pid", str(pid), "--duration", f"{duration:.0f}"),
            *("--rate", "100", "--idle", "--threads", "--format", "raw", "--output", str(output)),
        ],
        stdout=subprocess.DEVNULL,
    )


def keep_up_report(found: KeepUp) -> list[str]:
    """The keep-up measurement as Markdown: the plans, the windows, the verdict."""
    history = found.history
    lines = [
        f"## Keep-up: {found.rate:g} submissions/s for {found.duration:g} s, {history.events:,}"
        f" events delivered before, {'one moderator on mail' if found.with_mail else 'no mail'}"
        "\n",
        f"History: {history.events:,} events, {history.deliveries:,} deliveries"
        f" ({history.webhook_calls:,} webhook calls, {history.mails:,} moderator mails,"
        f" {history.skipped_mails:,} folded into {history.digests:,} digests),"
        f" seeded in {history.seconds:.0f} s.\n",
        "Plans of the worker's statements on it (one round, on a probe comment):\n",
    ]
    for explained in found.plans:
        lines.append(f"- `{explained.short_sql}`")
        lines.extend(f"  - {step}" for step in explained.plan)
    lines.append("")
    lines.extend(worker_keep_up.table(found.windows))
    drained = (
        "not all within the wait"
        if found.drained_after is None
        else f"the last {found.drained_after:.1f} s after the traffic"
    )
    lines.append(
        f"\nCalls: {sum(w.acknowledged for w in found.windows):,} submissions answered 201,"
        f" their calls received ({drained}); {found.unsigned} badly signed;"
        f" {found.mails} moderator mails sent"
        f"{' (the rest held for the digest)' if found.with_mail else ''}."
    )
    if found.verdict.kept_up:
        lines.append("\n**Kept up.**")
    else:
        lines.append("\n**Did not keep up:** " + "; ".join(found.verdict.reasons) + ".")
    return lines


def machine() -> str:
    model = field_of(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text())
    ram_kib = int(field_of(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()))
    memory = f"{ram_kib / 1024 / 1024:.0f} GiB"
    return f"{model}, {os.cpu_count()} cores, {memory}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", action="append", choices=MEASUREMENTS, help="A measurement to run (repeat)."
    )
    parser.add_argument("--comments", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200, help="keep-up: submissions a second")
    parser.add_argument("--duration", type=float, default=60, help="keep-up: seconds")
    parser.add_argument("--history", type=int, default=100_000, help="keep-up: events delivered")
    parser.add_argument("--profile", type=Path, help="keep-up: py-spy's stacks of the worker")
    parser.add_argument(
        "--no-mail", action="store_true", help="keep-up: no SMTP, so no moderator mail planned"
    )
    parser.add_argument("--database-url", help="PostgreSQL URL; default a SQLite file.")
    args = parser.parse_args()
    chosen = set(args.only or MEASUREMENTS)
    os.environ.setdefault("COMMENTSVC_ENV_FILE", os.devnull)
    rows = []
    found = None
    with tempfile.TemporaryDirectory(prefix="commentsvc-worker-bench-") as workdir:
        base = Path(workdir)
        if "webhooks" in chosen:
            posting, hooks = throughput(base, args.database_url, args.comments, "webhooks")
            rows.append(
                f"| webhooks: {args.comments} events to a fast receiver | **{hooks:,.0f} events/s**"
                f" (posting them, 8 connections: {args.comments / posting:,.0f} submissions/s) |"
            )
        if "mail" in chosen:
            posting, mails = throughput(base, args.database_url, args.comments, "mail")
            rows.append(
                f"| mail: {args.comments} moderator mails to an SMTP server | **{mails:,.0f}"
                f" mails/s** (posting them: {args.comments / posting:,.0f} submissions/s) |"
            )
        if "delay" in chosen:
            delays = mail_delay(base, args.database_url, args.samples)
            rows.append(
                f"| submission → moderator mail, {len(delays)} samples | median "
                f"**{statistics.median(delays) * 1000:,.0f} ms**, p95 "
                f"{sorted(delays)[int(len(delays) * 0.95) - 1] * 1000:,.0f} ms, max "
                f"{max(delays) * 1000:,.0f} ms |"
            )
        if "keep-up" in chosen:
            found = keep_up(
                base,
                args.database_url,
                args.rate,
                args.duration,
                args.history,
                args.profile,
                with_mail=not args.no_mail,
            )
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"# Worker benchmark ({database}, commit {git_commit()})\n")
    print(f"{machine()}; gunicorn 2 workers; one `commentsvc worker`, 4 threads\n")
    if rows:
        print("| measurement | result |")
        print("|---|---|")
        print("\n".join(rows) + "\n")
    if found is not None:
        print("\n".join(keep_up_report(found)))


if __name__ == "__main__":
    main()
