"""The servers of a load run: gunicorn with the production config (:mod:`tests.support.server`),
every worker started and idle before the first request is measured."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from benchmarks.load.procstat import cpu_seconds
from benchmarks.load_data import SetupError
from tests.support.redis import quick_options
from tests.support.server import GunicornServer, ServerError

#: A server with a large database may take a while to answer its first request.
STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 15.0
CEILING_APP = "benchmarks.ceiling_app:app"


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one GET."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:  # includes 304
        return error.code, dict(error.headers), error.read()


def redis_pids(url: str) -> frozenset[int]:
    """The process of the Redis at ``url`` if it runs on this machine; SetupError if that Redis
    does not answer."""
    try:
        with redis.Redis.from_url(url, **quick_options()) as client:
            pid = int(client.info("server")["process_id"])
    except redis.RedisError as error:
        raise SetupError(
            f"cannot reach the Redis at {url} ({error}); ./scripts/ensure-redis.sh starts one"
        ) from None
    try:
        name = Path(f"/proc/{pid}/comm").read_text()
    except OSError:
        return frozenset()  # elsewhere, or in a container of its own
    return frozenset({pid}) if name.startswith("redis") else frozenset()


@dataclass
class Server:
    """A running gunicorn of the benchmark: what it is called and which database it serves."""

    name: str
    gunicorn: GunicornServer
    database_url: str | None
    #: Other server processes it uses (the Redis of its rate limits): their CPU time counts
    #: as the database's, not as others'.
    storage_pids: frozenset[int] = frozenset()

    @property
    def url(self) -> str:
        """The base URL."""
        return self.gunicorn.url

    def pids(self) -> list[int]:
        """The master and its workers."""
        return [self.gunicorn.pid, *self.gunicorn.worker_pids()]


def gunicorn_server(app: str, env: Mapping[str, str], workers: int, log: Path) -> GunicornServer:
    """gunicorn as production runs it, serving commentsvc (``app`` "wsgi") or the ceiling."""
    ceiling = app == "ceiling"
    return GunicornServer(
        env,
        log,
        app=CEILING_APP if ceiling else "wsgi:app",
        workers=workers,
        ready_path="/" if ceiling else "/readyz",
        startup_timeout=STARTUP_TIMEOUT,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )


@contextmanager
def serve(
    name: str,
    app: str,
    env: Mapping[str, str],
    workers: int,
    directory: Path,
    database_url: str | None,
    storage_pids: frozenset[int] = frozenset(),
) -> Iterator[Server]:
    """gunicorn serving ``app`` on a free loopback port, ready and idle; stopped at the end."""
    gunicorn = gunicorn_server(app, env, workers, directory / f"gunicorn-{name}.log")
    with serve_gunicorn(name, gunicorn, database_url, storage_pids) as server:
        yield server


@contextmanager
def serve_gunicorn(
    name: str,
    gunicorn: GunicornServer,
    database_url: str | None,
    storage_pids: frozenset[int] = frozenset(),
) -> Iterator[Server]:
    """``gunicorn`` (another app or interpreter than :func:`serve`'s: a peer of the
    service) started, ready and idle; stopped at the end."""
    with gunicorn:
        server = Server(name, gunicorn, database_url, storage_pids)
        _wait_idle(server)
        yield server


def _wait_idle(server: Server) -> None:
    """Every worker started and, as far as can be seen, done loading the app."""
    gunicorn = server.gunicorn
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while len(gunicorn.worker_pids()) != gunicorn.workers:
        if gunicorn.running().poll() is not None or time.monotonic() > deadline:
            raise ServerError(f"not every gunicorn worker started:\n{gunicorn.log_tail()}")
        time.sleep(0.2)
    while time.monotonic() < deadline:
        before = cpu_seconds(server.pids())
        time.sleep(0.5)
        # A worker still importing the application uses CPU; an idle one does not.
        if cpu_seconds(server.pids()) == before:
            return
