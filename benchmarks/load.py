"""Load benchmark of commentsvc over real HTTP: gunicorn with the production config, wrk as client.

    .venv/bin/python benchmarks/load.py [--database sqlite|postgresql|both] [--duration 10]
        [--warmup 2] [--connections 8] [--workers N] [--queue-rows 1000000]
        [--only KEY,...] [--profile KEY,...] [--workers-sweep 2,3,4] [--list]

Needs ``wrk`` on the PATH (Debian: ``apt-get install wrk``); ``--profile`` needs py-spy
(``pip install py-spy``); PostgreSQL needs ``COMMENTSVC_TEST_DATABASE_URL`` naming a database on
the server to use (``scripts/ensure-postgres.sh`` starts a local one and prints such a URL):
the benchmark makes its own databases there, ``commentsvc_bench_*``, and drops them at the end.

For each database it prepares a ``reads`` and a ``queue`` database (see ``load_data.py``: the
real schema and accounts through the CLI, the comments in bulk; SQLite files are cached in
``benchmarks/.cache/``), then serves, each on a free loopback port with
``gunicorn -c gunicorn.conf.py`` (as many workers as that file starts on this machine unless
``--workers`` says otherwise, rate limits off, logs at WARNING):

* ``benchmarks/ceiling_app.py``, a Flask app answering a fixed small JSON body: the ceiling of
  this stack on this machine. It is measured first, for a third of ``--duration`` right
  before each workload of the main table (that workload's throughput is compared with that
  run: the speed of a shared virtual machine drifts by tens of percent over minutes), and
  again last;
* commentsvc on ``reads``: ``GET /healthz`` (no I/O: what every request costs in the
  application's hooks); ``GET /widget.js``; the thread of a 100-comment page as the widget
  asks for it, and the same with ``If-None-Match`` (304); approved counts of 20 pages; the
  moderation queue (``status=pending``, bearer token) and its first page of all statuses;
  the first page of threads of 10, 1,000 and 100,000 comments, as the widget asks for it and
  with ``limit=10``; JSON submissions, each with a body of its own, on 200 pages per wrk run;
* beside it, commentsvc on ``reads`` with logs at INFO (one JSON line per request): the 304
  workload on both servers in alternating rounds, to show what request logging costs;
* commentsvc on ``queue`` (1,000,000 comments): the queue's first page, all statuses and
  ``status=pending``.

Every workload is a ``wrk`` run from a separate process (``--connections``, one wrk thread by
default) for ``--duration`` seconds after ``--warmup`` seconds of the same load; workloads
that are compared with each other (the thread sizes, WARNING against INFO) run in three
interleaved rounds of a third of that instead, and the median round stands for each. The
answers are counted by status with the Lua scripts in ``benchmarks/lua/``, so a status other
than the expected one counts as an error.

The machine may be shared. Before each run the harness waits (up to ``--quiet-wait`` seconds)
until other processes use less than ``--max-noise`` of the CPUs; it records the load average,
measures the CPU time of the server, of its database server processes and of wrk (per request)
and the share of the CPUs that anybody else took during the run, and runs a workload again (up
to ``--retries`` times) when that share was over ``--max-noise``, keeping the quietest run.
Waiting and reruns stop in time to keep a database's run within ``--budget`` seconds. The
report states how far repeated runs of one workload differed: the noise floor of the run.

After the submissions the database must hold every comment acknowledged with 201, each id
once; the only rows allowed beyond those are requests wrk abandoned in flight when its time
was up (at most one per connection and wrk run). Server memory is the sum of the RSS (and
PSS) of the gunicorn master and its workers, read from /proc after each server's last run.

The tables are printed and written as Markdown to ``benchmarks/results/<date>-<time>-<db>.md``.
``--profile`` runs the named workloads once more under ``py-spy record`` (all workers,
non-blocking: wall time of requests in progress, waits for the database included) and adds
where the time goes to the report; the raw stacks are kept in ``benchmarks/.cache/profiles/``
(speedscope and flamegraph.pl read them). ``--workers-sweep`` runs the selected workloads
(default: thread read and submit, with the ceiling) for each number of workers given, to
choose ``WEB_CONCURRENCY``; ``--only`` reruns some workloads (the ceiling always runs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import runpy
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from unittest import mock

# Run as a script from anywhere: the application and load_data.py beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import load_data
import sqlalchemy as sa
from load_data import Databases, SetupError
from sqlalchemy.pool import NullPool

from commentsvc import PROJECT_ROOT

BENCH_DIR = Path(__file__).resolve().parent
LUA_DIR = BENCH_DIR / "lua"
RESULTS_DIR = BENCH_DIR / "results"
PROFILES_DIR = load_data.CACHE_ROOT / "profiles"
# Best of 2, 3 and 4 on the reference machine (2 vCPU) with --workers-sweep: the work is
# CPU-bound Python, wrk needs a share of the same two CPUs, and every extra SQLite writer
# waits on the database lock.
DEFAULT_WORKERS = 2


def production_workers() -> int:
    """The number of workers ``gunicorn.conf.py`` starts on this machine by default."""
    with mock.patch.dict(os.environ, load_data.base_env(), clear=True):
        settings = runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    return int(settings["workers"])


SUBMIT_PAGES = 200
STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 15.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPUS = len(os.sched_getaffinity(0))
API = f"/api/v1/sites/{load_data.SITE}"
QUEUE = "/api/v1/moderation/comments"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- processes, from /proc -------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Pids of the live children of ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue  # ended while we looked
        # The command name is in parentheses and may hold anything; the fields follow it.
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if int(parent) == pid and state != "Z":
            found.append(int(entry))
    return sorted(found)


def cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """User plus system CPU seconds of each process still running."""
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return times


def machine_busy_seconds() -> float:
    """CPU seconds of all CPUs spent in user, nice and system time, or stolen by the host."""
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (
        int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + steal) / CLOCK_TICKS


def own_seconds() -> float:
    """CPU seconds of this process and of its children that ended (wrk runs)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _field(pattern: str, text: str) -> str:
    """The first group of ``pattern`` (multi-line) in ``text``; it must be there."""
    match = re.search(pattern, text, re.M)
    if match is None:
        raise SetupError(f"no {pattern!r} in {text[:200]!r}")
    return match.group(1)


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


@dataclass(frozen=True)
class Memory:
    processes: int
    rss_mib: float
    pss_mib: float


def memory(pids: Sequence[int]) -> Memory:
    """Summed resident (RSS) and proportional (PSS, shared pages split) memory."""
    rss = pss = 0
    for pid in pids:
        rss += int(_field(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text()))
        pss += int(_field(r"^Pss:\s+(\d+) kB", Path(f"/proc/{pid}/smaps_rollup").read_text()))
    return Memory(len(pids), rss / 1024, pss / 1024)


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds used during a window, by whom, and the share of the machine others took."""

    app: float
    database: float
    #: This process and wrk.
    client: float
    others_share: float


class CpuWindow:
    """Who used the CPUs between two instants: the server, its database server processes, the
    benchmark itself (wrk included) or anybody else on the machine."""

    def __init__(self, app_pids: Callable[[], set[int]], database_pids: Callable[[], set[int]]):
        self.app_pids = app_pids
        self.database_pids = database_pids
        self.started = time.monotonic()
        self.app = cpu_seconds(sorted(app_pids()))
        self.database = cpu_seconds(sorted(database_pids()))
        self.own = own_seconds()
        self.busy = machine_busy_seconds()

    def finish(self) -> CpuUse:
        elapsed = time.monotonic() - self.started
        busy = machine_busy_seconds() - self.busy
        app = self._used(self.app, self.app_pids())
        database = self._used(self.database, self.database_pids())
        client = own_seconds() - self.own
        others = busy - app - database - client
        share = max(0.0, others) / (elapsed * CPUS) if elapsed > 0 else 0.0
        return CpuUse(app, database, client, share)

    @staticmethod
    def _used(before: dict[int, float], pids: set[int]) -> float:
        # Processes that started during the window count from zero.
        now = cpu_seconds(sorted(pids | set(before)))
        return sum(seconds - before.get(pid, 0.0) for pid, seconds in now.items())


# --- gunicorn --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one GET."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:  # includes 304
        return error.code, dict(error.headers), error.read()


@dataclass
class Server:
    """A running gunicorn: the master's process, its URL and what it serves."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    database_url: str | None

    def pids(self) -> list[int]:
        return [self.process.pid, *children(self.process.pid)]


def gunicorn_command(app: str) -> list[str]:
    """The production command line: the project's gunicorn.conf.py, ``app`` as the WSGI app."""
    command = [sys.executable, "-m", "gunicorn", "-c", str(PROJECT_ROOT / "gunicorn.conf.py")]
    if app == "ceiling":
        return [*command, "--pythonpath", str(BENCH_DIR), "ceiling_app:app"]
    return [*command, "wsgi:app"]


@contextmanager
def serve(
    name: str,
    app: str,
    env: dict[str, str],
    workers: int,
    directory: Path,
    database_url: str | None,
) -> Iterator[Server]:
    """gunicorn serving ``app`` on a free loopback port, ready and idle; stopped at the end."""
    port = free_port()
    env = {**env, "WEB_CONCURRENCY": str(workers), "GUNICORN_BIND": f"127.0.0.1:{port}"}
    log_path = directory / f"gunicorn-{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            gunicorn_command(app),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, process, f"http://127.0.0.1:{port}", log_path, database_url)
    try:
        _wait_ready(server, "/" if app == "ceiling" else "/healthz", workers)
        yield server
    finally:
        _stop(process)


def _wait_ready(server: Server, path: str, workers: int) -> None:
    """Answering, with every worker started and (as far as can be seen) done loading the app."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise SetupError(f"gunicorn exited with {server.process.returncode}:\n{_tail(server)}")
        try:
            answered = fetch(server.url + path)[0] == 200
        except (urllib.error.URLError, OSError):
            answered = False  # not listening yet
        started = answered and len(children(server.process.pid)) == workers
        if started:
            before = cpu_seconds(server.pids())
            time.sleep(0.5)
            # A worker still importing the application uses CPU; an idle one does not.
            if cpu_seconds(server.pids()) == before or time.monotonic() > deadline:
                return
        elif time.monotonic() > deadline:
            raise SetupError(f"gunicorn was not ready in {STARTUP_TIMEOUT:.0f} s:\n{_tail(server)}")
        else:
            time.sleep(0.2)


def _tail(server: Server) -> str:
    return "\n".join(server.log.read_text(errors="replace").splitlines()[-30:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the master (it stops its workers); SIGKILL its process group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=SHUTDOWN_TIMEOUT)


# --- wrk -------------------------------------------------------------------------------------


@dataclass
class WrkRun:
    """What one wrk run reports, plus the answers its Lua script counted."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: int
    statuses: Counter[int]
    ids: list[int] = field(default_factory=list)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise SetupError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkRun:
    """The figures of wrk's ``--latency`` report and the ``@status`` lines of the Lua script."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.M)
        if match is None:
            raise SetupError(f"unexpected wrk output (no {pattern!r}):\n{output}")
        return match

    total = find(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkRun(
        requests=int(total.group(1)),
        seconds=_ms(total.group(2) + total.group(3)) / 1000,
        rps=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)").group(1)),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
        statuses=Counter(
            {
                int(code): int(count)
                for code, count in re.findall(r"^@status (\d+) (\d+)$", output, re.M)
            }
        ),
    )


def wrk_version() -> str:
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (result.stdout + result.stderr).split(" Copyright")[0].strip()


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        sys.exit(
            "load.py: wrk is not installed (it is the HTTP load generator this benchmark uses).\n"
            "Install it: sudo apt-get install wrk (Debian/Ubuntu), brew install wrk (macOS)."
        )


# --- workloads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One kind of request, sent by wrk to one of the servers."""

    key: str
    label: str
    server: str  # "ceiling", "reads", "reads-info" or "queue"
    path: str
    headers: tuple[str, ...] = ()
    expected: frozenset[int] = frozenset({200})
    #: Submissions: wrk runs submit.lua, the comments' pages start with /load/<tag>-.
    submit_tag: str | None = None
    #: Thread reads: the ``total`` the page must answer (checked before the load).
    page_total: int | None = None
    #: Measured in interleaved rounds with the others of its group, to compare them.
    in_rounds: bool = False


def thread_path(page: str, limit: int | None = None) -> str:
    query = {"page": page} | ({"limit": str(limit)} if limit else {})
    return f"{API}/comments?{urllib.parse.urlencode(query)}"


def workloads(tokens: dict[str, str], etag: str, run_tag: str) -> list[Workload]:
    """Every workload of a database run, in the order they run."""
    bearer = (f"Authorization: Bearer {tokens.get('reads', '')}",)
    bearer_1m = (f"Authorization: Bearer {tokens.get('queue', '')}",)
    counts = "&".join(f"page={urllib.parse.quote(key)}" for key in load_data.COUNT_PAGES)
    scale = [
        Workload(
            f"thread-{count}" + (f"-limit{limit}" if limit else ""),
            f"thread, {count:,} comments" + (f", limit={limit}" if limit else ""),
            "reads",
            thread_path(page, limit),
            page_total=count,
            in_rounds=True,
        )
        for limit in (None, 10)
        for count, page in load_data.SCALE_PAGES.items()
    ]
    not_modified = (f"If-None-Match: {etag}",)
    return [
        Workload("ceiling", "ceiling (minimal Flask app)", "ceiling", "/"),
        Workload("healthz", "GET /healthz (no I/O: the app's fixed cost)", "reads", "/healthz"),
        Workload("widget", "GET /widget.js", "reads", "/widget.js"),
        Workload(
            "thread",
            "thread read, 100-comment page",
            "reads",
            thread_path(load_data.THREAD_PAGE),
            page_total=100,
        ),
        Workload(
            "thread-304",
            "thread read, If-None-Match (304)",
            "reads",
            thread_path(load_data.THREAD_PAGE),
            not_modified,
            frozenset({304}),
        ),
        Workload("counts", "counts of 20 pages", "reads", f"{API}/counts?{counts}"),
        Workload(
            "queue", "moderation queue, status=pending", "reads", f"{QUEUE}?status=pending", bearer
        ),
        Workload("queue-all", "moderation queue, all statuses", "reads", QUEUE, bearer),
        *scale,
        Workload(
            "submit",
            "submit (JSON POST)",
            "reads",
            f"{API}/comments",
            expected=frozenset({201}),
            submit_tag=run_tag,
        ),
        Workload(
            "thread-304-info",
            "thread read, 304, logs at INFO",
            "reads-info",
            thread_path(load_data.THREAD_PAGE),
            not_modified,
            frozenset({304}),
        ),
        Workload(
            "queue-1m",
            "moderation queue, status=pending",
            "queue",
            f"{QUEUE}?status=pending",
            bearer_1m,
        ),
        Workload("queue-all-1m", "moderation queue, all statuses", "queue", QUEUE, bearer_1m),
    ]


@dataclass
class Measurement:
    """The kept run of a workload and the circumstances it ran in."""

    workload: Workload
    run: WrkRun
    load_average: float
    cpu: CpuUse
    #: Every wrk run of the workload, warm-ups included (submissions are checked over all).
    all_runs: list[WrkRun]

    @property
    def cpu_ms(self) -> float:
        """Server CPU time (application and database) per request, in milliseconds."""
        return (self.cpu.app + self.cpu.database) / max(self.run.requests, 1) * 1000

    @property
    def total_cpu_ms(self) -> float:
        """CPU time per request of everything the benchmark runs: server, database and wrk."""
        cpu = self.cpu
        return (cpu.app + cpu.database + cpu.client) / max(self.run.requests, 1) * 1000

    @property
    def errors(self) -> int:
        unexpected = sum(
            count
            for status, count in self.run.statuses.items()
            if status not in self.workload.expected
        )
        return unexpected + self.run.socket_errors


@dataclass
class Settings:
    duration: int
    warmup: int
    connections: int
    threads: int
    max_noise: float
    quiet_wait: float
    retries: int
    #: Seconds one database's run should take at most (seeding included).
    budget: float


class Bench:
    """Runs wrk against servers, minding the noise of a shared machine."""

    def __init__(
        self,
        settings: Settings,
        work: Path,
        backend_pids: Callable[[str], set[int]],
        deadline: float,
        workloads: int,
    ):
        self.settings = settings
        self.work = work
        self.backend_pids = backend_pids
        self.invocations = 0
        #: Waiting for quiet and rerunning noisy runs stop in time to end before this.
        self.deadline = deadline
        self.remaining = workloads

    def window(self, server: Server) -> CpuWindow:
        url = server.database_url
        return CpuWindow(
            lambda: set(server.pids()), lambda: self.backend_pids(url) if url else set()
        )

    def wrk(self, workload: Workload, server: Server, seconds: float) -> WrkRun:
        """One wrk run of ``workload`` for ``seconds``."""
        settings = self.settings
        self.invocations += 1
        script = LUA_DIR / ("submit.lua" if workload.submit_tag else "count_statuses.lua")
        command = ["wrk", "-t", str(settings.threads), "-c", str(settings.connections)]
        # wrk takes whole seconds.
        command += ["-d", f"{max(1, round(seconds))}s", "--timeout", "5s", "--latency"]
        command += ["-s", str(script)]
        for header in workload.headers:
            command += ["-H", header]
        command.append(server.url + workload.path)
        env = dict(os.environ)
        ids_file = self.work / f"ids-{self.invocations}.txt"
        if workload.submit_tag:
            command += ["--", f"{workload.submit_tag}-{self.invocations}", str(SUBMIT_PAGES)]
            env["LOAD_IDS_FILE"] = str(ids_file)
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise SetupError(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        run = parse_wrk(result.stdout)
        if workload.submit_tag:
            run.ids = [int(line) for line in ids_file.read_text().split()]
        return run

    def spare_seconds(self) -> float:
        """Time this workload may spend on waiting and reruns within the run's budget."""
        left = self.deadline - time.monotonic()
        runs = self.remaining * (self.settings.warmup + self.settings.duration + 2)
        return max(0.0, (left - runs) / max(self.remaining, 1))

    def wait_quiet(self, server: Server, patience: float) -> None:
        """Wait up to ``patience`` seconds until others leave the CPUs to the benchmark."""
        deadline = time.monotonic() + patience
        while True:
            window = self.window(server)
            time.sleep(1.0)
            share = window.finish().others_share
            if share <= self.settings.max_noise or time.monotonic() > deadline:
                return
            log(f"    others use {share:.0%} of the CPUs; waiting")

    def measure(
        self, workload: Workload, server: Server, seconds: float | None = None, warmup: bool = True
    ) -> Measurement:
        """Warm up, then the measured run (of ``seconds``, default ``--duration``); again while
        others were busy, keeping the quietest."""
        settings = self.settings
        seconds = seconds or settings.duration
        spare = self.spare_seconds()
        started = time.monotonic()
        all_runs = [self.wrk(workload, server, settings.warmup)] if warmup else []
        best: Measurement | None = None
        for attempt in range(settings.retries + 1):
            used = time.monotonic() - started - (settings.warmup if warmup else 0.0)
            if attempt and used + seconds + 2 > spare:
                break  # no time left for another run
            self.wait_quiet(server, min(settings.quiet_wait, spare - used))
            load = load_average()
            window = self.window(server)
            run = self.wrk(workload, server, seconds)
            cpu = window.finish()
            all_runs.append(run)
            if best is None or cpu.others_share < best.cpu.others_share:
                best = Measurement(workload, run, load, cpu, all_runs)
            per_request = (cpu.app + cpu.database) / max(run.requests, 1) * 1000
            log(
                f"  {workload.key:<22} {run.rps:8.0f} req/s  p50 {run.p50_ms:6.2f} ms"
                f"  p99 {run.p99_ms:6.2f} ms  cpu {per_request:5.2f} ms/req"
                f"  load {load:4.2f}  others {cpu.others_share:4.0%}"
                + (
                    f"  statuses {dict(run.statuses)}"
                    if set(run.statuses) - workload.expected
                    else ""
                )
            )
            if cpu.others_share <= settings.max_noise:
                break
        self.remaining -= 1
        assert best is not None
        return best


# --- submissions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitCheck:
    acknowledged: int
    acknowledged_ids: int
    stored: int
    lost: int
    duplicated: int
    abandoned: int
    abandoned_bound: int
    not_pending: int
    counted_pages: int

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.acknowledged == self.acknowledged_ids
            and 0 <= self.abandoned <= self.abandoned_bound
            and self.not_pending == 0
            and self.counted_pages == 0
        )

    def describe(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        return (
            f"{verdict}: {self.acknowledged:,} comments acknowledged with 201 over all submit runs"
            f" (warm-ups included), {self.stored:,} stored on the run's pages;"
            f" {self.lost} acknowledged but not stored, {self.duplicated} ids acknowledged twice,"
            f" {self.abandoned} stored for requests wrk abandoned in flight when its time was up"
            f" (at most {self.abandoned_bound}: one per connection and run),"
            f" {self.not_pending} not pending,"
            f" {self.counted_pages} pages with a nonzero approved count."
        )


def check_submissions(
    database_url: str, tag: str, runs: Sequence[WrkRun], connections: int
) -> SubmitCheck:
    """Compare what the database holds on the run's pages with what was acknowledged."""
    time.sleep(1.0)  # requests wrk abandoned may still be finishing
    acknowledged_ids = [comment_id for run in runs for comment_id in run.ids]
    engine = sa.create_engine(database_url, poolclass=NullPool)
    pattern = f"/load/{tag}-%"
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT comments.id, comments.status FROM comments"
                " JOIN pages ON pages.id = comments.page_id WHERE pages.key LIKE :pattern"
            ),
            {"pattern": pattern},
        ).all()
        counted = connection.execute(
            sa.text("SELECT count(*) FROM pages WHERE key LIKE :pattern AND approved_count <> 0"),
            {"pattern": pattern},
        ).scalar_one()
    engine.dispose()
    stored = {comment_id for comment_id, _ in rows}
    acknowledged = set(acknowledged_ids)
    return SubmitCheck(
        acknowledged=sum(run.statuses.get(201, 0) for run in runs),
        acknowledged_ids=len(acknowledged_ids),
        stored=len(rows),
        lost=len(acknowledged - stored),
        duplicated=len(acknowledged_ids) - len(acknowledged),
        abandoned=len(stored - acknowledged),
        abandoned_bound=connections * len(runs),
        not_pending=sum(status != "pending" for _, status in rows),
        counted_pages=counted,
    )


# --- profiles --------------------------------------------------------------------------------


@dataclass
class Profile:
    workload: Workload
    samples: int
    raw: Path
    inclusive: list[tuple[str, float]]
    packages: list[tuple[str, float]]


#: Frames every sample of a gunicorn worker has, above the request it serves.
SCAFFOLDING = re.compile(
    r"\((<frozen runpy>|gunicorn/(__main__|arbiter|app/\w+|workers/base)\.py)\)$"
    r"|^SyncWorker\.(run|run_for_one|accept|handle) \("
)


def py_spy() -> str:
    found = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    if found is None:
        sys.exit("load.py: --profile needs py-spy: .venv/bin/pip install py-spy")
    return found


def profile(bench: Bench, workload: Workload, server: Server, stem: str) -> Profile:
    """Sample every worker with py-spy while wrk runs the workload once more."""
    PROFILES_DIR.mkdir(parents=True, exist_ok=True)
    raw = PROFILES_DIR / f"{stem}-{workload.key}.txt"
    seconds = bench.settings.duration
    recorder = subprocess.Popen(
        [
            py_spy(),
            "record",
            f"--pid={server.process.pid}",
            "--subprocesses",
            "--nonblocking",
            "--rate=250",
            "--format=raw",
            f"--output={raw}",
            f"--duration={seconds:g}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)  # attached before the load starts
    bench.wrk(workload, server, seconds + 1)
    bench.remaining -= 1
    _, errors = recorder.communicate(timeout=60)
    if recorder.returncode != 0 or not raw.exists():
        raise SetupError(f"py-spy failed: {errors}")
    return summarize_profile(workload, raw)


def _frame(label: str) -> str:
    """``handle (gunicorn/workers/sync.py:136)`` -> ``handle (gunicorn/workers/sync.py)``."""
    label = re.sub(r":\d+\)$", ")", label)
    return re.sub(r"\(/\S*?/(site-packages|lib/python3\.\d+|work/main)/", "(", label)


def summarize_profile(workload: Workload, raw: Path, top: int = 25) -> Profile:
    """Share of samples in each function (counted once per stack) and in each package."""
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # With --subprocesses the first frames name the processes.
        frames = [_frame(frame) for frame in stack.split(";") if not frame.startswith("process ")]
        total += count
        for frame in set(frames):
            if not SCAFFOLDING.search(frame):
                inclusive[frame] += count
        if frames:
            packages[_package(frames[-1])] += count
    share = 100.0 / total if total else 0.0
    return Profile(
        workload,
        total,
        raw,
        [(frame, count * share) for frame, count in inclusive.most_common(top)],
        [(package, count * share) for package, count in packages.most_common(top)],
    )


def _package(frame: str) -> str:
    """``Session.execute (sqlalchemy/orm/session.py)`` -> ``sqlalchemy``; ``socket.py`` alone."""
    match = re.search(r"\(([^()]*)\)$", frame)
    path = match.group(1) if match else frame
    return path.split("/", 1)[0] if "/" in path else path


# --- the run of one database -----------------------------------------------------------------


@dataclass
class Report:
    dialect: str
    started: datetime
    machine: dict[str, str]
    notes: list[str]
    measurements: dict[str, Measurement] = field(default_factory=dict)
    memory: dict[str, Memory] = field(default_factory=dict)
    submit_check: SubmitCheck | None = None
    profiles: list[Profile] = field(default_factory=list)
    #: (logs at WARNING, logs at INFO) measurements of the 304 workload, in rounds.
    logging_rounds: list[tuple[Measurement, Measurement]] = field(default_factory=list)
    #: Every run of the workloads measured more than once, by workload.
    repeats: dict[str, list[Measurement]] = field(default_factory=dict)
    #: The ceiling measured right before each workload of the main table, by workload.
    beside: dict[str, Measurement] = field(default_factory=dict)
    workers: int = DEFAULT_WORKERS


def machine_info(
    dialect: str, databases: Databases, workers: int, settings: Settings
) -> dict[str, str]:
    model = _field(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text())
    ram_kib = int(_field(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()))
    info = {
        "CPU": f"{model}, {CPUS} cores",
        "RAM": f"{ram_kib / 1024 / 1024:.1f} GiB",
        "kernel": f"Linux {platform.release()}",
        "Python": platform.python_version(),
        "packages": ", ".join(
            f"{name} {version(name)}" for name in ("flask", "sqlalchemy", "gunicorn", "psycopg")
        ),
    }
    if dialect == "sqlite":
        info["database"] = f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL)"
    else:
        pg = load_data.postgres_settings(databases.reads_url)
        info["database"] = (
            f"PostgreSQL {pg['server_version']} on loopback (fsync={pg['fsync']},"
            f" synchronous_commit={pg['synchronous_commit']},"
            f" shared_buffers={pg['shared_buffers']},"
            f" autovacuum={pg['autovacuum']})"
        )
    info["gunicorn"] = gunicorn_settings(databases.reads_url, workers)
    info["wrk"] = (
        f"{wrk_version()}, {settings.threads} thread(s), {settings.connections} connections,"
        f" {settings.duration:g} s per run after {settings.warmup:g} s warm-up, same machine"
    )
    info["commit"] = git_commit()
    return info


def gunicorn_settings(database_url: str, workers: int) -> str:
    """The settings gunicorn resolves from gunicorn.conf.py for the benchmark's environment."""
    env = load_data.service_env(database_url, secrets.token_hex(32))
    env.update(WEB_CONCURRENCY=str(workers), GUNICORN_BIND="127.0.0.1:0")
    result = subprocess.run(
        [*gunicorn_command("wsgi")[:-1], "--print-config", "wsgi:app"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    resolved = dict(re.findall(r"^(\w+)\s+= (.*)$", result.stdout, re.M))
    names = (
        "workers",
        "worker_class",
        "threads",
        "timeout",
        "keepalive",
        "preload_app",
        "accesslog",
    )
    shown = ", ".join(f"{name}={resolved.get(name, '?')}" for name in names)
    return (
        f"gunicorn -c gunicorn.conf.py ({shown});"
        " sync workers close each connection after its response"
    )


def git_commit() -> str:
    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
        )
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{commit}{' with uncommitted changes' if dirty else ''}"


def run_database(
    dialect: str, args: argparse.Namespace, settings: Settings, worker_counts: Sequence[int]
) -> list[Report]:
    """Prepare the databases of one dialect; run the selected workloads with each number of
    workers; tear down."""
    reports = []
    secret_key = secrets.token_hex(32)
    end = time.monotonic() + settings.budget
    with tempfile.TemporaryDirectory(prefix="commentsvc-load-") as tmp:
        work = Path(tmp)
        with _databases(dialect, work, args, secret_key) as databases:
            for number, workers in enumerate(worker_counts):
                # Each number of workers gets an equal share of the time that is left.
                deadline = time.monotonic() + (end - time.monotonic()) / (
                    len(worker_counts) - number
                )
                log(f"{dialect}: {workers} workers, load average {load_average():.2f}")
                report = Report(
                    dialect,
                    datetime.now(UTC),
                    machine_info(dialect, databases, workers, settings),
                    [f"load average {load_average():.2f} at the start", *databases.notes],
                    workers=workers,
                )
                bench = Bench(settings, work, databases.backend_pids, deadline, planned_runs(args))
                _run_servers(report, bench, databases, args, work, secret_key)
                reports.append(report)
    return reports


@contextmanager
def _databases(
    dialect: str, work: Path, args: argparse.Namespace, secret_key: str
) -> Iterator[Databases]:
    if dialect == "sqlite":
        with load_data.sqlite_databases(
            work, args.queue_rows, secret_key, log, args.rebuild
        ) as databases:
            yield databases
        return
    url = os.environ.get("COMMENTSVC_TEST_DATABASE_URL", "")
    if not url:
        raise SetupError(
            "PostgreSQL: set COMMENTSVC_TEST_DATABASE_URL, e.g.\n"
            '  COMMENTSVC_TEST_DATABASE_URL="$(scripts/ensure-postgres.sh)"'
            " .venv/bin/python benchmarks/load.py --database postgresql"
        )
    with load_data.postgres_databases(url, args.queue_rows, secret_key, log) as databases:
        yield databases


#: Interleaved runs (of a third of ``--duration`` each) of workloads that are compared: the
#: 304 workload with logs at WARNING and at INFO, the first page of threads of each size.
ROUNDS = 3


def planned_runs(args: argparse.Namespace) -> int:
    """How many measured workloads (and profiles) a database run has: for its time budget."""
    selected = [w for w in workloads({}, "", "") if _selected(w, args.only)]
    keys = {w.key for w in selected}
    runs = len(keys) + 1 + len(args.profile)  # the ceiling runs twice
    runs += sum(1 for w in selected if w.key in BESIDE)  # and beside these
    runs += sum(ROUNDS - 1 for w in selected if w.in_rounds)
    if "thread-304-info" in keys:
        runs += 2 * ROUNDS - 1 + ("thread-304" not in keys)
    return runs


def _run_servers(
    report: Report,
    bench: Bench,
    databases: Databases,
    args: argparse.Namespace,
    work: Path,
    secret_key: str,
) -> None:
    """The ceiling first and again last (the machine may have changed meanwhile); in between,
    commentsvc on each database, with the workloads it serves."""
    run_tag = secrets.token_hex(4)
    keys = [w.key for w in workloads(databases.tokens, "", run_tag) if _selected(w, args.only)]
    targets = {
        "ceiling": ("ceiling", None, "WARNING"),
        "reads": ("wsgi", databases.reads_url, "WARNING"),
        "reads-info": ("wsgi", databases.reads_url, "INFO"),
        "queue": ("wsgi", databases.queue_url, "WARNING"),
    }
    stem = f"{report.started:%Y-%m-%d-%H%M}-{report.dialect}"

    def start(name: str) -> contextlib.AbstractContextManager[Server]:
        app, url, level = targets[name]
        env = load_data.service_env(url or "sqlite://", secret_key, level)
        log(f"{report.dialect}: serving {name} with {report.workers} workers")
        return serve(name, app, env, report.workers, work, url)

    ceiling_runs: list[tuple[Workload, Server]] = []

    def run(workload: Workload, server: Server, key: str | None = None) -> Measurement:
        probe(server, workload)
        if workload.key in BESIDE and ceiling_runs:
            # The machine's speed drifts by tens of percent over minutes: each workload of
            # the main table is compared with a ceiling measured just before it.
            seconds = max(1, bench.settings.duration // ROUNDS)
            report.beside[workload.key] = bench.measure(*ceiling_runs[0], seconds)
            report.repeats.setdefault("ceiling", []).append(report.beside[workload.key])
        measurement = report.measurements[key or workload.key] = bench.measure(workload, server)
        if workload.submit_tag:
            # Before a profile's run adds comments of its own.
            report.submit_check = check_submissions(
                databases.reads_url, run_tag, measurement.all_runs, bench.settings.connections
            )
            log(f"  {report.submit_check.describe()}")
        if workload.key in args.profile and not key:
            report.profiles.append(profile(bench, workload, server, stem))
        return measurement

    with start("ceiling") as ceiling:
        ceiling_workload = workloads({}, "", "")[0]
        run(ceiling_workload, ceiling)
        ceiling_runs.append((ceiling_workload, ceiling))
        for name in ("reads", "queue"):
            served = [key for key in keys if workloads_by_key()[key].server == name]
            logging = name == "reads" and "thread-304-info" in keys
            if not served and not logging:
                continue
            with start(name) as server:
                etag = fetch(server.url + thread_path(load_data.THREAD_PAGE))[1].get("ETag", "")
                current = {w.key: w for w in workloads(databases.tokens, etag, run_tag)}
                group = [current[key] for key in served if current[key].in_rounds]
                for key in served:
                    if not current[key].in_rounds:
                        run(current[key], server)
                    elif current[key] is group[0]:
                        _measure_in_rounds(report, bench, group, server)
                if logging:
                    with start("reads-info") as info_server:
                        _compare_logging(report, bench, current, server, info_server)
                        report.memory["reads-info"] = memory(info_server.pids())
                report.memory[name] = memory(server.pids())
        run(ceiling_workload, ceiling, "ceiling-end")
        report.repeats["ceiling"] = [
            report.measurements["ceiling"],
            *report.repeats.get("ceiling", []),
            report.measurements["ceiling-end"],
        ]
        report.memory["ceiling"] = memory(ceiling.pids())


def _measure_in_rounds(
    report: Report, bench: Bench, group: Sequence[Workload], server: Server
) -> None:
    """Each workload of ``group`` in turn, ``ROUNDS`` times: the one with the median
    throughput stands for it, so a change of the machine meanwhile falls on all of them."""
    for workload in group:
        probe(server, workload)
    seconds = max(1, bench.settings.duration // ROUNDS)
    for number in range(ROUNDS):
        for workload in group:
            measurement = bench.measure(workload, server, seconds, warmup=number == 0)
            report.repeats.setdefault(workload.key, []).append(measurement)
    for workload in group:
        report.measurements[workload.key] = _median(report.repeats[workload.key])


def _median(measurements: Sequence[Measurement]) -> Measurement:
    by_throughput = sorted(measurements, key=lambda measurement: measurement.run.rps)
    return by_throughput[len(by_throughput) // 2]


def _compare_logging(
    report: Report, bench: Bench, current: dict[str, Workload], warning: Server, info: Server
) -> None:
    """The 304 workload on two servers, logs at WARNING and at INFO, in alternating rounds:
    what request logging costs, measured so that a change of the machine meanwhile does not
    pass for it."""
    quiet, logged = current["thread-304"], current["thread-304-info"]
    probe(warning, quiet)
    probe(info, logged)
    seconds = max(1, bench.settings.duration // ROUNDS)
    for number in range(ROUNDS):
        pair = (
            bench.measure(quiet, warning, seconds, warmup=number == 0),
            bench.measure(logged, info, seconds, warmup=number == 0),
        )
        report.logging_rounds.append(pair)
        report.repeats.setdefault("thread-304 (rounds)", []).append(pair[0])
        report.repeats.setdefault("thread-304-info", []).append(pair[1])
    report.measurements["thread-304-info"] = _median([info for _, info in report.logging_rounds])
    report.measurements.setdefault("thread-304", _median([w for w, _ in report.logging_rounds]))


def workloads_by_key() -> dict[str, Workload]:
    return {workload.key: workload for workload in workloads({}, "", "")}


def _selected(workload: Workload, only: set[str]) -> bool:
    return not only or workload.key in only or workload.key == "ceiling"


def probe(server: Server, workload: Workload) -> None:
    """One request before the load: the workload answers what it should (GETs only)."""
    if workload.submit_tag:
        return
    headers = dict(header.split(": ", 1) for header in workload.headers)
    status, _, body = fetch(server.url + workload.path, headers)
    if status not in workload.expected:
        raise SetupError(f"{workload.key}: {workload.path} answered {status}: {body[:300]!r}")
    total = workload.page_total
    if total is not None and json.loads(body).get("total") != total:
        raise SetupError(f"{workload.key}: the page does not have {total} comments: {body[:200]!r}")


# --- the report ------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _figures(measurement: Measurement) -> list[str]:
    run = measurement.run
    return [f"{run.rps:,.0f}", f"{run.p50_ms:.2f}", f"{run.p99_ms:.2f}", f"{measurement.errors:,}"]


def _cpu(measurement: Measurement) -> str:
    cpu = measurement.cpu
    if not cpu.database:
        return f"{measurement.cpu_ms:.2f}"
    requests = max(measurement.run.requests, 1)
    return f"{cpu.app / requests * 1000:.2f} + {cpu.database / requests * 1000:.2f}"


def _circumstances(measurement: Measurement, max_noise: float) -> list[str]:
    share = measurement.cpu.others_share
    noisy = " (noisy)" if share > max_noise else ""
    return [f"{measurement.load_average:.2f}", f"{share:.0%}{noisy}"]


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.0%}" if base else "-"


MAIN = (
    "ceiling",
    "ceiling-end",
    "healthz",
    "widget",
    "thread",
    "thread-304",
    "counts",
    "queue",
    "submit",
    "thread-304-info",
)
#: Workloads measured right after a run of the ceiling of their own (see ``Report.beside``).
BESIDE = frozenset(MAIN) - {"ceiling", "ceiling-end", "thread-304-info"}
ROW_LABELS = {
    "ceiling": "ceiling (minimal Flask app), at the start",
    "ceiling-end": "ceiling, again at the end",
}
CIRCUMSTANCES = ["load avg", "others"]


def render(report: Report, settings: Settings, databases_label: str) -> str:
    """The report of one database run, in Markdown."""
    m = report.measurements
    ceilings = [m[key] for key in ("ceiling", "ceiling-end") if key in m]
    ceiling = statistics.fmean(c.run.rps for c in ceilings) if ceilings else 0.0
    ceiling_cpu = statistics.fmean(c.total_cpu_ms for c in ceilings) if ceilings else 0.0

    def ceiling_of(key: str) -> tuple[float, float]:
        """The ceiling's requests per second and CPU ms per request to compare ``key`` with."""
        beside = report.beside.get(key)
        return (beside.run.rps, beside.total_cpu_ms) if beside else (ceiling, ceiling_cpu)

    cpu_header = "CPU ms/req" + (" (app + db)" if report.dialect == "postgresql" else "")
    lines = [
        f"## Load benchmark: {databases_label} ({report.started:%Y-%m-%d %H:%M} UTC)",
        "",
        *(f"- **{name}**: {value}" for name, value in report.machine.items()),
        *(f"- {note}" for note in report.notes),
        "",
        f"### Workloads ({settings.connections} connections, {settings.duration:g} s after"
        f" {settings.warmup:g} s warm-up; `WEB_CONCURRENCY={report.workers}`)",
        "",
        "Latencies in ms. *errors*: answers with another status than expected, plus socket"
        " errors. *vs ceiling*: requests per second as a share of the ceiling's, measured"
        f" for {max(1, settings.duration // ROUNDS):g} s right before the workload (the"
        " machine's speed drifts; for the rows without one, the mean of the ceiling's runs at"
        " the start and at the end). *ceiling beside*: that run of the ceiling. *CPU ms/req*:"
        " CPU time of the gunicorn master and workers (and, on PostgreSQL, of the server"
        " processes serving the benchmark's database) per request. *by CPU*: the ceiling's CPU"
        " time per request (server, database and wrk) as a share of the workload's, an estimate"
        " of *vs ceiling* that other processes on the machine disturb much less. *load avg*: at"
        " the start of the run (it includes the benchmark's own earlier runs). *others*: share"
        " of the machine's CPU that other processes took during the run; runs over"
        f" {settings.max_noise:.0%} are marked noisy.",
        "",
    ]
    header = [
        "workload",
        "req/s",
        "p50",
        "p99",
        "errors",
        "vs ceiling",
        "ceiling beside",
        cpu_header,
        "by CPU",
    ]
    rows = [
        [
            ROW_LABELS.get(key, m[key].workload.label),
            *_figures(m[key]),
            _ratio(m[key].run.rps, ceiling_of(key)[0]),
            f"{report.beside[key].run.rps:,.0f}" if key in report.beside else "",
            _cpu(m[key]),
            _ratio(ceiling_of(key)[1], m[key].total_cpu_ms),
            *_circumstances(m[key], settings.max_noise),
        ]
        for key in MAIN
        if key in m
    ]
    lines += _table(header + CIRCUMSTANCES, rows)
    lines += _spread_section(report.repeats)
    if report.logging_rounds:
        lines += ["", *_logging_section(report.logging_rounds)]
    lines += _scale_section(m, cpu_header, settings.max_noise)
    if report.submit_check:
        lines += ["", "### Submissions stored", "", report.submit_check.describe()]
    lines += ["", "### Server memory after the runs (master + workers)", ""]
    lines += _table(
        ["server", "processes", "RSS sum (MiB)", "PSS sum (MiB)"],
        [
            [name, str(mem.processes), f"{mem.rss_mib:,.0f}", f"{mem.pss_mib:,.0f}"]
            for name, mem in report.memory.items()
        ],
    )
    lines += _targets_section(m, lambda key: ceiling_of(key)[0])
    for prof in report.profiles:
        lines += _profile_section(prof)
    return "\n".join(lines) + "\n"


def _spread_section(repeats: dict[str, list[Measurement]]) -> list[str]:
    """How much runs of one and the same workload differed: the noise floor of this run."""
    spreads = {
        key: max(m.run.rps for m in runs) / min(m.run.rps for m in runs) - 1
        for key, runs in repeats.items()
        if len(runs) > 1 and min(m.run.rps for m in runs) > 0
    }
    if not spreads:
        return []
    widest = max(spreads, key=lambda key: spreads[key])
    return [
        "",
        f"Run-to-run spread: {len(spreads)} workloads were measured more than once in this run"
        f" (the ceiling at the start, before each workload and at the end; the rounds below);"
        " the fastest run of one"
        f" was {statistics.median(spreads.values()):.0%} faster than its slowest (median over"
        f" the workloads), {spreads[widest]:.0%} at most ({widest}). Differences of that order"
        " between single runs are noise of this machine, not of the code.",
    ]


def _logging_section(rounds: Sequence[tuple[Measurement, Measurement]]) -> list[str]:
    throughput = statistics.median(info.run.rps / warning.run.rps - 1 for warning, info in rounds)
    cpu = statistics.median((info.cpu_ms - warning.cpu_ms) * 1000 for warning, info in rounds)
    each = "; ".join(
        f"{warning.run.rps:,.0f} -> {info.run.rps:,.0f} req/s,"
        f" {warning.cpu_ms:.2f} -> {info.cpu_ms:.2f} ms CPU/req"
        for warning, info in rounds
    )
    return [
        "Request logging at INFO (one JSON line per request on standard error, here into a"
        f" file), measured on the 304 workload in {len(rounds)} alternating rounds against a"
        " second server with logs at WARNING: throughput"
        f" {throughput:+.0%}, server CPU {cpu:+,.0f} µs per request (medians; rounds: {each})."
        " The INFO row above is the median round."
    ]


def _scale_section(m: dict[str, Measurement], cpu_header: str, max_noise: float) -> list[str]:
    lines: list[str] = []
    thread_rows = []
    for limit in ("", "-limit10"):
        base = m.get(f"thread-10{limit}")
        for count in load_data.SCALE_PAGES:
            measurement = m.get(f"thread-{count}{limit}")
            if measurement is None:
                continue
            thread_rows.append(
                [
                    "limit=10" if limit else "as the widget asks (page size 50)",
                    f"{count:,}",
                    *_figures(measurement),
                    _cpu(measurement),
                    f"{base.run.rps / measurement.run.rps:.2f}x" if base else "-",
                    *_circumstances(measurement, max_noise),
                ]
            )
    if thread_rows:
        lines += ["", "### Scale: first page of a thread", ""]
        lines += [
            f"Each figure is the median (by throughput) of {ROUNDS} runs taken in interleaved"
            " rounds, so that a change of the machine meanwhile falls on every page size alike.",
            "",
        ]
        header = ["request", "comments on the page", "req/s", "p50", "p99", "errors"]
        header += [cpu_header, "time vs 10-comment page", *CIRCUMSTANCES]
        lines += _table(header, thread_rows)
    queue_rows = []
    for key, label in (("queue-all", "first page, all statuses"), ("queue", "status=pending")):
        for suffix, size in (("", "reads (~109,000)"), ("-1m", "queue (1,000,000)")):
            measurement = m.get(f"{key}{suffix}")
            if measurement is not None:
                queue_rows.append(
                    [
                        label,
                        size,
                        *_figures(measurement),
                        _cpu(measurement),
                        *_circumstances(measurement, max_noise),
                    ]
                )
    if queue_rows:
        lines += ["", "### Scale: moderation queue", ""]
        header = ["request", "comments in the database", "req/s", "p50", "p99", "errors"]
        lines += _table([*header, cpu_header, *CIRCUMSTANCES], queue_rows)
    return lines


def _targets_section(m: dict[str, Measurement], ceiling_of: Callable[[str], float]) -> list[str]:
    rows = []

    def share(key: str) -> float:
        ceiling = ceiling_of(key)
        return m[key].run.rps / ceiling if key in m and ceiling else 0.0

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    if "submit" in m:
        p99 = m["submit"].run.p99_ms
        rows.append(
            [
                "submit >= 50% of the ceiling, p99 <= 20 ms",
                f"{share('submit'):.0%}, p99 {p99:.1f} ms",
                verdict(share("submit") >= 0.5 and p99 <= 20),
            ]
        )
    for key, label, minimum in (("thread", "thread read", 0.6), ("thread-304", "304", 0.8)):
        if key in m:
            rows.append(
                [
                    f"{label} >= {minimum:.0%} of the ceiling",
                    f"{share(key):.0%}",
                    verdict(share(key) >= minimum),
                ]
            )
    for limit, label in (("", "as the widget asks"), ("-limit10", "limit=10")):
        small, large = m.get(f"thread-10{limit}"), m.get(f"thread-100000{limit}")
        if small and large:
            slower = small.run.rps / large.run.rps
            rows.append(
                [
                    f"first page of a 100k thread within 1.2x of a 10-comment thread ({label})",
                    f"{slower:.2f}x (p50 {small.run.p50_ms:.2f} -> {large.run.p50_ms:.2f} ms)",
                    verdict(slower <= 1.2),
                ]
            )
    for key, label in (("queue-all-1m", "first page"), ("queue-1m", "status=pending")):
        if key in m:
            p99 = m[key].run.p99_ms
            rows.append(
                [f"queue p99 <= 30 ms at 1M rows ({label})", f"{p99:.1f} ms", verdict(p99 <= 30)]
            )
    if not rows:
        return []
    return ["", "### Targets", "", *_table(["target", "measured", "verdict"], rows)]


def _profile_section(prof: Profile) -> list[str]:
    lines = [
        "",
        f"### Profile: {prof.workload.label}",
        "",
        f"py-spy, all workers, {prof.samples:,} samples; raw stacks in"
        f" `{prof.raw.relative_to(PROJECT_ROOT)}`. Share of the samples in which a function is"
        " on the stack (gunicorn's own frames above the request left out), and the share of"
        " samples by the package of the function running (own time):",
        "",
    ]
    rows = []
    for number in range(max(len(prof.inclusive), len(prof.packages))):
        row = ["", "", "", ""]
        if number < len(prof.inclusive):
            function, share = prof.inclusive[number]
            row[:2] = [f"{share:.1f}%", f"`{function}`"]
        if number < len(prof.packages):
            package, share = prof.packages[number]
            row[2:] = [f"{share:.1f}%", package]
        rows.append(row)
    return lines + _table(["inclusive", "function", "own", "package"], rows)


# --- main ------------------------------------------------------------------------------------


def render_sweep(reports: Sequence[Report], label: str) -> str:
    """Throughput and p99 of each workload measured, for each number of workers."""
    measured = [key for key in MAIN if any(key in report.measurements for report in reports)]
    rows = []
    for report in reports:
        m = report.measurements
        row = [str(report.workers)]
        for key in measured:
            run = m[key].run if key in m else None
            row += [f"{run.rps:,.0f}", f"{run.p99_ms:.1f}"] if run else ["-", "-"]
        row.append(f"{report.memory['reads'].pss_mib:,.0f}" if "reads" in report.memory else "-")
        row.append(f"{max(measurement.cpu.others_share for measurement in m.values()):.0%}")
        rows.append(row)
    header = ["workers"]
    for key in measured:
        header += [f"{key} req/s", "p99 ms"]
    header += ["PSS MiB (reads)", "others (max)"]
    lines = [f"## WEB_CONCURRENCY sweep: {label} ({reports[0].started:%Y-%m-%d %H:%M} UTC)", ""]
    lines += [
        f"- **{name}**: {value}" for name, value in reports[0].machine.items() if name != "gunicorn"
    ]
    return "\n".join([*lines, "", *_table(header, rows)]) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="WEB_CONCURRENCY (default: gunicorn.conf.py's on this machine)",
    )
    parser.add_argument(
        "--queue-rows", type=int, default=1_000_000, help="comments in the queue database"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated workload keys (the ceiling always runs)"
    )
    parser.add_argument("--profile", default="", help="comma-separated workload keys to profile")
    parser.add_argument("--workers-sweep", default="", help="comma-separated worker counts")
    parser.add_argument("--max-noise", type=float, default=0.10, help="others' CPU share tolerated")
    parser.add_argument("--quiet-wait", type=float, default=20.0, help="seconds to wait for quiet")
    parser.add_argument("--retries", type=int, default=2, help="reruns of a noisy run")
    parser.add_argument(
        "--budget",
        type=float,
        default=570.0,
        help="seconds per database (seeding included) after which waits and reruns are skipped",
    )
    parser.add_argument("--rebuild", action="store_true", help="seed the SQLite cache again")
    parser.add_argument("--list", action="store_true", help="list the workload keys and exit")
    args = parser.parse_args()
    args.only = {key for key in args.only.split(",") if key}
    args.profile = {key for key in args.profile.split(",") if key}
    known = {w.key for w in workloads({}, "", "")}
    unknown = (args.only | args.profile) - known
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(sorted(unknown))}; --list shows them")
    if args.threads > args.connections:
        parser.error("--threads cannot exceed --connections")
    return args


def main() -> None:
    args = parse_args()
    if args.list:
        for workload in workloads({}, "", ""):
            print(f"{workload.key:<22} {workload.label} ({workload.server})")
        return
    require_wrk()
    settings = Settings(
        args.duration,
        args.warmup,
        args.connections,
        args.threads,
        args.max_noise,
        args.quiet_wait,
        args.retries,
        args.budget,
    )
    dialects = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    sweep = [int(count) for count in args.workers_sweep.split(",") if count]
    if sweep:
        args.only = args.only or {"thread", "submit"}
    RESULTS_DIR.mkdir(exist_ok=True)
    try:
        for dialect in dialects:
            started = time.monotonic()
            workers = args.workers or production_workers()
            reports = run_database(dialect, args, settings, sweep or [workers])
            label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[dialect]
            stem = f"{reports[0].started:%Y-%m-%d-%H%M}-{dialect}"
            if sweep:
                text, path = render_sweep(reports, label), RESULTS_DIR / f"{stem}-workers.md"
            else:
                text, path = render(reports[0], settings, label), RESULTS_DIR / f"{stem}.md"
            path.write_text(text)
            print(text)
            elapsed = time.monotonic() - started
            log(f"{dialect}: done in {elapsed:.0f} s; written to {path.relative_to(PROJECT_ROOT)}")
    except SetupError as error:
        sys.exit(f"load.py: {error}")


if __name__ == "__main__":
    main()
