"""Everything a soak run serves with, as production runs it, and the faults it injects.

- the database: a private PostgreSQL cluster started by ``scripts/ensure-postgres.sh``
  (its own directory and port, so stopping it disturbs no test run on the shared one;
  autovacuum on, as on a real server), seeded by :mod:`benchmarks.load_data`; or SQLite;
- Redis for the rate limits (:class:`tests.support.redis.RedisServer`: killed like a crash,
  started again on the same port);
- gunicorn with ``gunicorn.conf.py`` (:mod:`benchmarks.load.server`);
- one ``commentsvc worker`` process (:func:`benchmarks.worker.worker`) delivering to a real
  webhook receiver (:mod:`tests.support.receiver`) and a real SMTP server
  (:mod:`tests.support.smtp`), whose messages are counted by comment as they arrive.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from benchmarks import load_data
from benchmarks.load import log
from benchmarks.load.procstat import Memory, memory
from benchmarks.load.server import Server, redis_pids, serve
from benchmarks.load_data import SetupError
from benchmarks.soak.checks import Fault
from benchmarks.soak.maintenance import Maintenance, parse
from benchmarks.worker import worker
from commentsvc import PROJECT_ROOT
from tests.support.receiver import WebhookReceiver
from tests.support.redis import RedisServer
from tests.support.server import child_pids, free_port
from tests.support.service import base_env, run_cli, service_env
from tests.support.smtp import SmtpServer

SITE = load_data.SITE
MODERATOR = load_data.MODERATOR.email
PUBLIC_URL = "https://comments.soak.example"
#: The seeded queue database is not used by the soak: keep it small.
QUEUE_ROWS = 1_000
PG_DATABASE_PREFIX = "commentsvc_soak_"
ENSURE_POSTGRES = PROJECT_ROOT / "scripts" / "ensure-postgres.sh"
PANEL_LINK = re.compile(r"Open in the panel: \S*/moderation/comments/(\d+)")


@dataclass(frozen=True)
class Settings:
    """How the stack is served."""

    dialect: str
    workers: int
    #: The submission limit per client address: the whole load comes from one address.
    submit_rate_limit: str
    fail_open: bool
    log_level: str
    pg_dir: Path
    #: Seconds PostgreSQL waits for a connection before the service answers 503.
    database_timeout: float = 5.0
    #: More settings of the service (``--set``), by full name.
    extra: dict[str, str] = field(default_factory=dict)


class PrivatePostgres:
    """A PostgreSQL cluster of the soak's own, through ``scripts/ensure-postgres.sh``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()

    def _run(self, *args: str) -> str:
        env = base_env()
        env.update(
            COMMENTSVC_TEST_PG_DIR=str(self.directory), COMMENTSVC_TEST_PG_PORT=str(self.port)
        )
        env.pop("CI", None)
        result = subprocess.run(
            [str(ENSURE_POSTGRES), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            raise SetupError(f"ensure-postgres.sh {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout.strip()

    def start(self) -> str:
        """Start (install, initialise) the cluster; the URL of its database."""
        url = self._run()
        if not url.startswith("postgresql"):
            raise SetupError(f"ensure-postgres.sh printed no URL: {url!r}")
        return url

    def stop(self) -> None:
        """Stop it, ``pg_ctl -m fast``: sessions are ended, the data stays."""
        self._run("stop")

    def superuser(self, sql: str) -> str:
        """Run ``sql`` as the cluster's superuser (over its socket); what it printed."""
        psql = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
        command = [str(psql[-1]) if psql else "psql", "-h", str(self.directory)]
        command += ["-p", str(self.port), "-U", "postgres", "-d", "postgres", "-qAt", "-c", sql]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise SetupError(f"psql -c {sql!r} failed:\n{result.stderr}")
        return result.stdout

    def production_like(self) -> None:
        """ensure-postgres.sh turns autovacuum off (its databases live for one test); a
        server under a soak's steady writes needs it, as production has it. Each of its runs
        is logged, in UTC, for the report (:mod:`benchmarks.soak.maintenance`)."""
        self.superuser("ALTER SYSTEM SET autovacuum = on")
        self.superuser("ALTER SYSTEM SET log_autovacuum_min_duration = 0")
        self.superuser("ALTER SYSTEM SET log_timezone = 'UTC'")
        self.superuser("SELECT pg_reload_conf()")

    def maintenance(self, database: str) -> list[Maintenance]:
        """The autovacuum and autoanalyze runs on ``database`` that the cluster's log holds."""
        try:
            with (self.directory / "postgres.log").open(encoding="utf-8", errors="replace") as log:
                return parse(log, database)
        except FileNotFoundError:
            return []

    def pids(self) -> set[int]:
        """The postmaster and its children."""
        try:
            postmaster = int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return set()
        return {postmaster, *child_pids(postmaster)}


@dataclass
class MailCounter:
    """Moderator mails received, by comment id (read from the panel link), counted as they
    arrive and then dropped: a soak's thousands of parsed messages would fill the memory."""

    smtp: SmtpServer
    by_comment: Counter[int] = field(default_factory=Counter)
    other: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def collect(self) -> None:
        """Move what the SMTP server holds into the counts."""
        handler = self.smtp.handler
        with handler.condition:
            received = list(handler.messages)
            handler.messages.clear()
        for message in received:
            text = message.part("plain")
            match = PANEL_LINK.search(text)
            with self.lock:
                if match:
                    self.by_comment[int(match.group(1))] += 1
                else:
                    self.other += 1

    def loop(self) -> None:
        """Collect every half second until stopped."""
        while not self.stopping.wait(0.5):
            self.collect()
        self.collect()

    def take(self) -> tuple[Counter[int], int]:
        """The counts so far, which start again from zero."""
        self.collect()
        with self.lock:
            counts, other = self.by_comment, self.other
            self.by_comment, self.other = Counter(), 0
        return counts, other


@dataclass
class Stack:
    """The running services of a soak."""

    settings: Settings
    database_url: str
    token: str
    env: dict[str, str]
    server: Server
    redis: RedisServer
    receiver: WebhookReceiver
    mails: MailCounter
    worker_process: subprocess.Popen[bytes]
    postgres: PrivatePostgres | None
    workdir: Path
    notes: list[str]

    @property
    def host_port(self) -> tuple[str, int]:
        """Where gunicorn listens."""
        return "127.0.0.1", self.server.gunicorn.port

    def server_memory(self) -> Memory:
        """RSS and PSS of gunicorn's master and workers."""
        return memory(self.server.pids())

    def database_maintenance(self) -> list[Maintenance]:
        """PostgreSQL's autovacuum and autoanalyze runs on the soak's database so far (none
        on SQLite)."""
        if self.postgres is None:
            return []
        return self.postgres.maintenance(sa.make_url(self.database_url).database or "")

    def worker_memory(self) -> Memory | None:
        """RSS and PSS of the outbox worker, while it runs."""
        if self.worker_process.poll() is not None:
            return None
        return memory([self.worker_process.pid])

    def take_webhook_calls(self) -> tuple[Counter[int], int]:
        """Calls received by delivery id (``webhook-id`` is ``msg_<id>``) and how many had
        a signature that did not check out; the receiver then starts again from zero."""
        calls = list(self.receiver.calls)
        del self.receiver.calls[: len(calls)]
        counts: Counter[int] = Counter()
        for call in calls:
            counts[int(call.webhook_id.removeprefix("msg_"))] += 1
        return counts, sum(1 for call in calls if call.verified is False)

    # --- faults ------------------------------------------------------------------------------

    def restart_redis(self, down: float) -> Fault:
        """Kill Redis (SIGKILL, as a crash), leave it down ``down`` s, start it again."""
        started = time.monotonic()
        self.redis.stop()
        time.sleep(down)
        self.redis.start()
        return Fault("Redis restart", started, time.monotonic(), detail=f"killed, {down:g} s down")

    def restart_postgres(self, down: float) -> Fault:
        """Stop PostgreSQL (``pg_ctl -m fast``), leave it down ``down`` s, start it again."""
        if self.postgres is None:
            raise SetupError("no PostgreSQL to restart on SQLite")
        started = time.monotonic()
        self.postgres.stop()
        stopped = time.monotonic()
        time.sleep(down)
        self.postgres.start()
        return Fault(
            "PostgreSQL restart",
            started,
            time.monotonic(),
            detail=f"stopped in {stopped - started:.1f} s, {down:g} s down",
        )

    def kill_gunicorn_worker(self) -> Fault:
        """SIGKILL one gunicorn worker; back once the master has replaced it and the new one
        takes connections."""
        gunicorn = self.server.gunicorn
        victim = gunicorn.worker_pids()[0]
        started = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        deadline = started + 60
        while True:
            workers = gunicorn.worker_pids()
            ready = {int(pid) for pid in re.findall(r"Worker (\d+) ready", gunicorn.log_text())}
            if victim not in workers and len(workers) >= gunicorn.workers and ready >= set(workers):
                break
            if time.monotonic() > deadline:
                raise SetupError(
                    f"gunicorn did not replace worker {victim}:\n{gunicorn.log_tail()}"
                )
            time.sleep(0.05)
        return Fault(
            "gunicorn worker SIGKILL",
            started,
            time.monotonic(),
            kills_connections=True,
            detail=f"worker {victim} killed, replaced by {sorted(set(workers))}",
        )


@contextmanager
def seeded_postgres(
    postgres: PrivatePostgres, server_url: str, secret: str, notes: list[str]
) -> Iterator[tuple[str, str]]:
    """The load benchmark's ``reads`` database (:func:`benchmarks.load_data.reads_plan`) on
    the private cluster: its URL and API token. It is made and dropped by the cluster's
    superuser (only a superuser may end the autovacuum workers' sessions in it)."""
    name = f"{PG_DATABASE_PREFIX}{os.getpid()}"
    # The cluster is the soak's alone: whatever an interrupted run left goes.
    listing = "SELECT datname FROM pg_database WHERE datname LIKE 'commentsvc\\_soak\\_%'"
    for stale in postgres.superuser(listing).split():
        postgres.superuser(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)')
    load_data.check_columns()
    owner = sa.make_url(server_url).username
    postgres.superuser(f'CREATE DATABASE "{name}" OWNER "{owner}" TEMPLATE template0')
    try:
        url = sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
        plan = load_data.reads_plan()
        started = time.monotonic()
        log(f"seeding PostgreSQL database {name} ({plan.comments:,} comments)…")
        token = load_data.create_accounts(
            service_env(url, secret, COMMENTSVC_LOG_LEVEL="WARNING"), plan.sites
        )
        load_data.seed(url, plan, log)
        notes.append(
            f"PostgreSQL database made and seeded in {time.monotonic() - started:.0f} s "
            f"({plan.comments:,} comments: the load benchmark's `reads` database)"
        )
        yield url, token
    finally:
        postgres.superuser(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def service_settings(
    settings: Settings, database_url: str, secret: str, **more: str
) -> dict[str, str]:
    """The service's environment for the soak (gunicorn, its CLI and the outbox worker)."""
    return service_env(
        database_url,
        secret,
        COMMENTSVC_LOG_LEVEL=settings.log_level,
        COMMENTSVC_RATELIMIT_ENABLED="true",
        COMMENTSVC_SUBMIT_RATE_LIMIT=settings.submit_rate_limit,
        COMMENTSVC_RATELIMIT_FAIL_OPEN="true" if settings.fail_open else "false",
        COMMENTSVC_PUBLIC_URL=PUBLIC_URL,
        # Every new comment its own mail (no folding into a digest past the hourly cap).
        COMMENTSVC_NOTIFY_MAX_PER_HOUR="10000000",
        COMMENTSVC_WEBHOOK_ALLOW_PRIVATE="true",
        COMMENTSVC_DATABASE_TIMEOUT_SECONDS=f"{settings.database_timeout:g}",
        **more,
    )


@contextmanager
def running(settings: Settings, workdir: Path, secret: str) -> Iterator[Stack]:
    """The whole stack, ready, for the block; everything stopped at the end."""
    notes: list[str] = []
    with ExitStack() as stack:
        postgres = None
        if settings.dialect == "postgresql":
            postgres = PrivatePostgres(settings.pg_dir)
            log(f"PostgreSQL: a private cluster in {settings.pg_dir}…")
            # A cluster left running in the directory (an interrupted run) listens on
            # another port: stopped first, it starts again on this run's.
            postgres.stop()
            server_url = postgres.start()
            stack.callback(postgres.stop)
            postgres.production_like()
            database_url, token = stack.enter_context(
                seeded_postgres(postgres, server_url, secret, notes)
            )
        else:
            databases = stack.enter_context(
                load_data.sqlite_databases(workdir, QUEUE_ROWS, secret, log)
            )
            database_url, token = databases.reads_url, databases.tokens["reads"]
            notes += databases.notes
        redis = stack.enter_context(RedisServer(workdir / "redis"))
        receiver = stack.enter_context(WebhookReceiver())
        smtp = stack.enter_context(SmtpServer())
        env = service_settings(
            settings,
            database_url,
            secret,
            COMMENTSVC_RATELIMIT_STORAGE_URI=redis.url,
            COMMENTSVC_SMTP_URL=smtp.url,
        )
        env.update(settings.extra)
        output = run_cli(env, "webhooks", "add", SITE, receiver.url)
        receiver.secret = output.split()[-1]
        run_cli(env, "moderators", "set", MODERATOR, "--notify", "each")
        if settings.workers:
            env["WEB_CONCURRENCY"] = str(settings.workers)
        server = stack.enter_context(
            serve(
                "soak",
                "wsgi",
                env,
                settings.workers,
                workdir,
                database_url,
                redis_pids(redis.url),
            )
        )
        mails = MailCounter(smtp)
        collector = threading.Thread(target=mails.loop, name="mail-counter", daemon=True)
        collector.start()
        stack.callback(collector.join, 5)
        stack.callback(mails.stopping.set)
        process = stack.enter_context(worker(env, workdir / "outbox-worker.log"))
        yield Stack(
            settings,
            database_url,
            token,
            env,
            server,
            redis,
            receiver,
            mails,
            process,
            postgres,
            workdir,
            notes,
        )
