"""The run of one database: its servers, one after the other, and the workloads each serves."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import load_data
from benchmarks.load import log
from benchmarks.load.bench import Bench, Measurement, Settings
from benchmarks.load.machine import machine_info, worker_class_variables
from benchmarks.load.procstat import Memory, load_average, memory
from benchmarks.load.profiles import Profile, profile
from benchmarks.load.server import Server, fetch, redis_pids, serve
from benchmarks.load.submissions import SubmitCheck, check_submissions
from benchmarks.load.workloads import (
    AT_SCALE,
    BESIDE,
    QUIET,
    ROUNDS,
    Workload,
    fragment_path,
    selected,
    thread_path,
    workloads,
    workloads_by_key,
)
from benchmarks.load.wrk import WrkRun
from benchmarks.load_data import Databases, SetupError
from tests.support.service import service_env

# Best of 2, 3 and 4 on the reference machine (2 vCPU) with --workers-sweep: the work is
# CPU-bound Python, wrk needs a share of the same two CPUs, and every extra SQLite writer
# waits on the database lock.
DEFAULT_WORKERS = 2
#: The submission limits of the servers with rate limits on: the default's. Every request
#: comes from a reader of its own (submit.lua's "widget" sender, through one trusted proxy),
#: so every one is counted and none is refused, as on a site with many readers.
GUARDED_RATE_LIMIT = "5/minute;30/hour"
REDIS_URL_VARIABLE = "COMMENTSVC_TEST_REDIS_URL"


@dataclass
class Report:
    """What one database run measured, with the circumstances to judge it by."""

    dialect: str
    started: datetime
    machine: dict[str, str]
    notes: list[str]
    measurements: dict[str, Measurement] = field(default_factory=dict)
    memory: dict[str, Memory] = field(default_factory=dict)
    #: The check after each submit workload, by workload.
    submit_checks: dict[str, SubmitCheck] = field(default_factory=dict)
    profiles: list[Profile] = field(default_factory=list)
    #: (logs at INFO, logs at WARNING) measurements of the 304 workload, in rounds.
    logging_rounds: list[tuple[Measurement, Measurement]] = field(default_factory=list)
    #: The median rounds (on ``reads``, on ``queue``) of each workload of ``AT_SCALE`` and
    #: its counterpart on ``reads``, by the key of the one on ``queue``.
    at_scale: dict[str, tuple[Measurement, Measurement]] = field(default_factory=dict)
    #: Every run of the workloads measured more than once, by workload.
    repeats: dict[str, list[Measurement]] = field(default_factory=dict)
    #: The ceiling measured right before each workload of the main table, by workload.
    beside: dict[str, Measurement] = field(default_factory=dict)
    workers: int = DEFAULT_WORKERS


def run_database(
    dialect: str, args: argparse.Namespace, settings: Settings, worker_counts: Sequence[int]
) -> list[Report]:
    """Prepare the databases of one dialect; run the selected workloads with each number of
    workers; tear down."""
    reports = []
    secret_key = secrets.token_hex(32)
    end = time.monotonic() + settings.budget
    redis_url = _redis_url(args.only)  # before seeding: fail fast
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
                DatabaseRun(report, bench, databases, args, work, secret_key, redis_url).run_all()
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
            " .venv/bin/python -m benchmarks.load --database postgresql"
        )
    with load_data.postgres_databases(url, args.queue_rows, secret_key, log) as databases:
        yield databases


def _redis_url(only: set[str]) -> str:
    """The Redis of ``COMMENTSVC_TEST_REDIS_URL``, answering, when a selected workload keeps
    its rate limits there; else ""."""
    if not any(TARGETS[w.server][3] == "redis" for w in workloads({}, "", "") if selected(w, only)):
        return ""
    url = os.environ.get(REDIS_URL_VARIABLE, "")
    if not url:
        raise SetupError(
            f"submit-guarded-redis keeps its rate limits in Redis: set {REDIS_URL_VARIABLE},"
            f' e.g.\n  {REDIS_URL_VARIABLE}="$(./scripts/ensure-redis.sh)"'
            " .venv/bin/python -m benchmarks.load"
        )
    redis_pids(url)
    return url


def planned_runs(args: argparse.Namespace) -> int:
    """How many measured workloads (and profiles) a database run has: for its time budget."""
    chosen = [w for w in workloads({}, "", "") if selected(w, args.only)]
    keys = {w.key for w in chosen}
    runs = len(keys) + 1 + len(args.profile)  # the ceiling runs twice
    runs += sum(1 for w in chosen if w.key in BESIDE)  # and beside these
    runs += sum(ROUNDS - 1 for w in chosen if w.in_rounds)
    if QUIET in keys:
        # Both servers in each round: the quiet one's key is counted once already.
        runs += 2 * ROUNDS - 1
    # Both databases in each round, the same: the one on queue is counted once already.
    runs += sum(2 * ROUNDS - 1 for key in keys if key in AT_SCALE)
    return runs


#: The service's default log level (one JSON line per request), at which the targets are
#: defined: every commentsvc server of the main table logs at it.
DEFAULT_LOG_LEVEL = "INFO"
#: Each server of a run: the app it serves, its database ("reads" or "queue"), its log level,
#: where its rate-limit counters live ("database" or "redis"; None: rate limits off). The
#: ceiling app logs nothing at any level; ``reads-quiet`` logs only warnings, to show what the
#: default's line per request costs.
TARGETS = {
    "ceiling": ("ceiling", None, "WARNING", None),
    "reads": ("wsgi", "reads", DEFAULT_LOG_LEVEL, None),
    "reads-quiet": ("wsgi", "reads", "WARNING", None),
    "reads-guarded": ("wsgi", "reads", DEFAULT_LOG_LEVEL, "database"),
    "reads-guarded-redis": ("wsgi", "reads", DEFAULT_LOG_LEVEL, "redis"),
    "queue": ("wsgi", "queue", DEFAULT_LOG_LEVEL, None),
    "queue-guarded": ("wsgi", "queue", DEFAULT_LOG_LEVEL, "database"),
}


def rate_limit_variables(storage_uri: str = "") -> dict[str, str]:
    """The environment of a server with every abuse rule on: rate limits at
    :data:`GUARDED_RATE_LIMIT`, counted in the database (or in the Redis of ``storage_uri``),
    a failing storage refusing rather than letting submissions through uncounted, the client
    taken from one trusted proxy's ``X-Forwarded-For`` (submit.lua's readers)."""
    variables = {
        "COMMENTSVC_RATELIMIT_ENABLED": "true",
        "COMMENTSVC_SUBMIT_RATE_LIMIT": GUARDED_RATE_LIMIT,
        "COMMENTSVC_RATELIMIT_FAIL_OPEN": "false",
        "COMMENTSVC_TRUSTED_PROXIES": "1",
    }
    if storage_uri:
        variables["COMMENTSVC_RATELIMIT_STORAGE_URI"] = storage_uri
    return variables


class DatabaseRun:
    """The ceiling first and again last (the machine may have changed meanwhile); in between,
    commentsvc on each database, with the workloads it serves."""

    def __init__(
        self,
        report: Report,
        bench: Bench,
        databases: Databases,
        args: argparse.Namespace,
        work: Path,
        secret_key: str,
        redis_url: str = "",
    ):
        self.report = report
        self.bench = bench
        self.databases = databases
        self.args = args
        self.work = work
        self.secret_key = secret_key
        self.redis_url = redis_url
        self.run_tag = secrets.token_hex(4)
        self.keys = [
            w.key for w in workloads(databases.tokens, "", self.run_tag) if selected(w, args.only)
        ]
        self.stem = f"{report.started:%Y-%m-%d-%H%M}-{report.dialect}"
        #: The ceiling's workload and server, once it runs.
        self.ceiling: tuple[Workload, Server] | None = None

    def run_all(self) -> None:
        """Every server of the run in turn, the ceiling around the others."""
        report = self.report
        with self.start("ceiling") as ceiling:
            ceiling_workload = workloads({}, "", "")[0]
            self.run(ceiling_workload, ceiling)
            self.ceiling = (ceiling_workload, ceiling)
            # Each database's queue is read before submissions add to it (the ones to
            # queue come with reads-guarded's, see compare_at_scale).
            for name in ("reads", "queue", "reads-guarded", "reads-guarded-redis"):
                self.serve_commentsvc(name)
            self.run(ceiling_workload, ceiling, "ceiling-end")
            report.repeats["ceiling"] = [
                report.measurements["ceiling"],
                *report.repeats.get("ceiling", []),
                report.measurements["ceiling-end"],
            ]
            report.memory["ceiling"] = memory(ceiling.pids())

    def start(self, name: str) -> AbstractContextManager[Server]:
        """The server ``name`` of :data:`TARGETS`, ready and idle."""
        app, database, level, limits = TARGETS[name]
        url = {"reads": self.databases.reads_url, "queue": self.databases.queue_url}.get(
            database or ""
        )
        variables = {"COMMENTSVC_LOG_LEVEL": level}
        storage_pids: frozenset[int] = frozenset()
        if limits:
            # A storage that fails shows as 503s, not as submissions let through uncounted.
            variables |= rate_limit_variables(self.redis_url if limits == "redis" else "")
        if limits == "redis":
            storage_pids = redis_pids(self.redis_url)
        variables |= worker_class_variables(self.bench.settings.worker_class)
        env = service_env(url or "sqlite://", self.secret_key, **variables)
        log(f"{self.report.dialect}: serving {name} with {self.report.workers} workers")
        return serve(name, app, env, self.report.workers, self.work, url, storage_pids)

    def serve_commentsvc(self, name: str) -> None:
        """commentsvc on the database ``name``, with the selected workloads it serves (a
        workload of :data:`AT_SCALE` is measured beside the server of its counterpart)."""
        server_of = {key: workload.server for key, workload in workloads_by_key().items()}
        served = [key for key in self.keys if server_of[key] == name and key not in AT_SCALE]
        at_scale = [
            key for key in self.keys if key in AT_SCALE and server_of[AT_SCALE[key]] == name
        ]
        logging = name == "reads" and QUIET in self.keys
        if not served and not at_scale and not logging:
            return
        with self.start(name) as server:
            etag = _etag(server, thread_path(load_data.THREAD_PAGE))
            fragment_etag = _etag(server, fragment_path(load_data.THREAD_PAGE))
            current = {
                w.key: w
                for w in workloads(self.databases.tokens, etag, self.run_tag, fragment_etag)
            }
            group = [current[key] for key in served if current[key].in_rounds]
            for key in served:
                if not current[key].in_rounds:
                    self.run(current[key], server)
                elif current[key] is group[0]:
                    _measure_in_rounds(self.report, self.bench, group, server)
            for key in at_scale:
                self.compare_at_scale(current[AT_SCALE[key]], server, current[key])
            if logging:
                with self.start("reads-quiet") as quiet_server:
                    _compare_logging(self.report, self.bench, current, server, quiet_server)
                    self.report.memory["reads-quiet"] = memory(quiet_server.pids())
            self.report.memory[name] = memory(server.pids())

    def run(self, workload: Workload, server: Server, key: str | None = None) -> Measurement:
        """Measure ``workload`` (beside a ceiling run, for the main table) into the report."""
        report, bench = self.report, self.bench
        probe(server, workload)
        if workload.key in BESIDE and self.ceiling:
            # The machine's speed drifts by tens of percent over minutes: each workload of
            # the main table is compared with a ceiling measured just before it.
            seconds = max(1, bench.settings.duration // ROUNDS)
            report.beside[workload.key] = bench.measure(*self.ceiling, seconds)
            report.repeats.setdefault("ceiling", []).append(report.beside[workload.key])
        measurement = report.measurements[key or workload.key] = bench.measure(workload, server)
        # Before a profile's run adds comments of its own.
        self.check_submissions(workload.key, workload, server, measurement.all_runs)
        if workload.key in self.args.profile and not key:
            report.profiles.append(profile(bench, workload, server, self.stem))
        return measurement

    def compare_at_scale(self, near: Workload, near_server: Server, far: Workload) -> None:
        """``far``, a request on the ``queue`` database, and ``near``, the same on ``reads``
        (served by ``near_server``), both servers up, in alternating rounds: whether the
        request stays as fast as the data grows, measured so that a change of the machine
        meanwhile falls on both alike."""
        report = self.report
        if near.submit_tag:
            # Pages of their own, so the check of these runs finds exactly their comments
            # (the main table's run of the same workload has been checked on its own).
            near = dataclasses.replace(near, submit_tag=f"{near.submit_tag}.rounds")
        with self.start(far.server) as far_server:
            rounds = _rounds(self.bench, [(near, near_server), (far, far_server)])
            sides = (
                (f"{near.key} (rounds)", near, near_server, [pair[0] for pair in rounds]),
                (far.key, far, far_server, [pair[1] for pair in rounds]),
            )
            for key, workload, server, measurements in sides:
                report.repeats.setdefault(key, []).extend(measurements)
                runs = [run for measurement in measurements for run in measurement.all_runs]
                self.check_submissions(key, workload, server, runs)
            report.at_scale[far.key] = (_median(sides[0][3]), _median(sides[1][3]))
            report.measurements[far.key] = report.at_scale[far.key][1]
            if far.key in self.args.profile:
                report.profiles.append(profile(self.bench, far, far_server, self.stem))
            report.memory[far.server] = memory(far_server.pids())

    def check_submissions(
        self, key: str, workload: Workload, server: Server, runs: Sequence[WrkRun]
    ) -> None:
        """After a submit workload's ``runs``: what the database of ``server`` stored on their
        pages, against what they saw acknowledged (nothing for other workloads)."""
        if not workload.submit_tag or not server.database_url:
            return
        check = self.report.submit_checks[key] = check_submissions(
            server.database_url, workload.submit_tag, runs, self.bench.settings.connections
        )
        log(f"  {check.describe()}")


def _rounds(
    bench: Bench, entries: Sequence[tuple[Workload, Server]]
) -> list[tuple[Measurement, ...]]:
    """Each workload of ``entries`` on its server in turn, ``ROUNDS`` times, for a third of
    ``--duration`` (warmed up in the first round only), so that a change of the machine
    meanwhile falls on all of them alike; the measurements of each round, in that order."""
    for workload, server in entries:
        probe(server, workload)
    seconds = max(1, bench.settings.duration // ROUNDS)
    return [
        tuple(
            bench.measure(workload, server, seconds, warmup=number == 0)
            for workload, server in entries
        )
        for number in range(ROUNDS)
    ]


def _measure_in_rounds(
    report: Report, bench: Bench, group: Sequence[Workload], server: Server
) -> None:
    """Each workload of ``group`` in rounds (:func:`_rounds`): the run with the median
    throughput stands for it."""
    rounds = _rounds(bench, [(workload, server) for workload in group])
    for column, workload in enumerate(group):
        report.repeats.setdefault(workload.key, []).extend(row[column] for row in rounds)
        report.measurements[workload.key] = _median(report.repeats[workload.key])


def _median(measurements: Sequence[Measurement]) -> Measurement:
    by_throughput = sorted(measurements, key=lambda measurement: measurement.run.rps)
    return by_throughput[len(by_throughput) // 2]


def _compare_logging(
    report: Report, bench: Bench, current: dict[str, Workload], info: Server, warning: Server
) -> None:
    """The 304 workload on two servers, logs at INFO (the default, as in the main table) and
    at WARNING, in alternating rounds: what request logging costs, measured so that a change
    of the machine meanwhile does not pass for it."""
    servers = [(current["thread-304"], info), (current[QUIET], warning)]
    for logged, quiet in _rounds(bench, servers):
        report.logging_rounds.append((logged, quiet))
        report.repeats.setdefault("thread-304 (rounds)", []).append(logged)
        report.repeats.setdefault(QUIET, []).append(quiet)
    report.measurements[QUIET] = _median([quiet for _, quiet in report.logging_rounds])
    # The INFO row stands on its own run beside a ceiling when it had one.
    report.measurements.setdefault("thread-304", _median([i for i, _ in report.logging_rounds]))


def _etag(server: Server, path: str) -> str:
    """The ETag ``server`` answers ``path`` with now (its 304 workload sends it back)."""
    return {name.lower(): value for name, value in fetch(server.url + path)[1].items()}.get(
        "etag", ""
    )


def probe(server: Server, workload: Workload) -> None:
    """One request before the load: the workload answers what it should (GETs only)."""
    if workload.submit_tag:
        return
    headers = dict(header.split(": ", 1) for header in workload.headers)
    status, answered, body = fetch(server.url + workload.path, headers)
    if status not in workload.expected:
        raise SetupError(f"{workload.key}: {workload.path} answered {status}: {body[:300]!r}")
    media = {name.lower(): value for name, value in answered.items()}.get("content-type", "")
    if workload.content_type and media.split(";")[0].strip() != workload.content_type:
        raise SetupError(
            f"{workload.key}: {workload.path} answered {media or 'no Content-Type'},"
            f" not {workload.content_type}: {body[:200]!r}"
        )
    total = workload.page_total
    if total is not None and json.loads(body).get("total") != total:
        raise SetupError(f"{workload.key}: the page does not have {total} comments: {body[:200]!r}")
