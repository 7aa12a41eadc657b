"""A real Redis for the tests, never a fake one.

Most tests share the run's Redis: the one ``COMMENTSVC_TEST_REDIS_URL`` names
(``scripts/ensure-redis.sh`` starts a private server on 127.0.0.1 and prints its URL; ``make
pytest`` sets the variable), or else a ``redis-server`` this process starts once, in a temporary
directory, and stops when it exits (:func:`shared_redis_url`). Tests that stop Redis under the
service's feet start a :class:`RedisServer` of their own.

Either way Redis keeps nothing on disk. A missing ``redis-server`` is an error, never a skip.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.server import free_port

URL_VARIABLE = "COMMENTSVC_TEST_REDIS_URL"
MISSING = (
    "redis-server is missing: run ./scripts/ensure-redis.sh (as root it installs Debian's "
    "redis-server) or `apt-get install redis-server`."
)
HOST = "127.0.0.1"
START_TIMEOUT = 10.0
START_ATTEMPTS = 3  # a free port may be taken between finding it and the server binding it


def quick_options() -> dict[str, Any]:
    """Options for a client that fails at once when Redis is gone: redis-py's default retries
    with backoff take some ten seconds to give up on a refused connection."""
    return {"socket_connect_timeout": 2.0, "socket_timeout": 5.0, "retry": Retry(NoBackoff(), 0)}


def answers(host: str, port: int) -> bool:
    """Whether a Redis on ``host:port`` answers PING."""
    try:
        with redis.Redis(host=host, port=port, **quick_options()) as client:
            return bool(client.ping())
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        return False


class RedisServer:
    """A private ``redis-server`` on a free port of 127.0.0.1, in memory only.

    Its output goes to a log file in ``directory``. :meth:`stop` kills it (SIGKILL, as a
    crash would); :meth:`start` after :meth:`stop` starts it again on the same port, so
    :attr:`url` stays valid. Used as a context manager, it runs inside the ``with`` block.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._started = False

    @property
    def url(self) -> str:
        """The ``redis://`` URL of the server (database 0)."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        """The file that the server's standard output and error go to (appended to)."""
        return self.directory / f"redis-{self.port}.log"

    @property
    def running(self) -> bool:
        """Whether the server process is alive (started and not stopped, nor dead)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server unless it runs, and wait until it answers PING."""
        if self.running:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(MISSING)
        self.directory.mkdir(parents=True, exist_ok=True)
        # Once started, the port stays: a restart must keep the URL that clients were given.
        attempts = 1 if self._started else START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            process = self._spawn(binary)
            if self._wait_until_ready(process):
                self._process = process
                self._started = True
                return
            log = self._log_tail()
            if attempt < attempts and "Address already in use" in log:
                self.port = free_port()
                continue
            raise RuntimeError(
                f"redis-server on {HOST}:{self.port} did not answer PING within "
                f"{START_TIMEOUT:g} s (exit status {process.returncode}); its log, "
                f"{self.log_path}, ends with:\n{log}"
            )

    def stop(self) -> None:
        """Kill the server, if it runs (nothing to save: it keeps nothing on disk)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def client(self) -> redis.Redis:
        """A client of the server that fails at once, without retrying, when it is down.
        Close it (or use it as a context manager) when done."""
        return redis.Redis(host=HOST, port=self.port, **quick_options())

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, binary: str) -> subprocess.Popen[bytes]:
        command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.directory),
        ]
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            return subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> bool:
        """Whether ``process`` answers PING in time; if not, it is dead or killed."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            if answers(HOST, self.port):
                return True
            time.sleep(0.02)
        process.kill()
        process.wait()
        return False

    def _log_tail(self, lines: int = 10) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@cache
def _shared_server() -> RedisServer:
    """This process's own Redis, started on first use and stopped when the process exits."""
    directory = Path(tempfile.mkdtemp(prefix="commentsvc-test-redis-"))
    # Registered first, so run last: after the server has stopped.
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    server = RedisServer(directory)
    server.start()
    atexit.register(server.stop)
    return server


def shared_redis_url() -> str:
    """The URL of the run's Redis: ``COMMENTSVC_TEST_REDIS_URL`` when set (and not empty),
    else that of a server this process starts once. Raises RuntimeError when
    ``redis-server`` is missing."""
    return os.environ.get(URL_VARIABLE) or _shared_server().url


def flush_all(url: str) -> None:
    """Empty every database of the Redis at ``url`` (FLUSHALL)."""
    try:
        with redis.Redis.from_url(url, **quick_options()) as client:
            client.flushall()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
        raise RuntimeError(
            f"cannot reach the Redis at {url} ({error}); when {URL_VARIABLE} names it, "
            "./scripts/ensure-redis.sh starts a local one and prints its URL."
        ) from error
