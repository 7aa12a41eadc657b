"""Fixtures for end-to-end tests: a migrated database made with the real CLI, and a real
gunicorn serving it over HTTP on a free local port. The database is a SQLite file or, when
``COMMENTSVC_TEST_DATABASE_URL`` is set, a PostgreSQL database (see :mod:`tests.databases`)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from commentsvc import PROJECT_ROOT
from tests.databases import run_databases

SECRET_KEY = "e2e-secret-key-not-for-production"
MODERATOR_EMAIL = "x@example.com"
MODERATOR_PASSWORD = "e2e-password-123"
WORKERS = 2
STARTUP_TIMEOUT = 20.0
SHUTDOWN_TIMEOUT = 10.0


def commentsvc_script() -> str:
    """The ``commentsvc`` console script installed beside this interpreter."""
    script = shutil.which("commentsvc", path=os.path.dirname(sys.executable))
    assert script is not None, f"no commentsvc script beside {sys.executable}"
    return script


def service_env(database: Path) -> dict[str, str]:
    """This process's environment, minus any COMMENTSVC_* of its own, plus the service's.

    ``database`` names a database of this run (a new one is created empty).
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("COMMENTSVC_")}
    env.update(
        COMMENTSVC_DATABASE_URL=run_databases().url(database),
        COMMENTSVC_SECRET_KEY=SECRET_KEY,
        COMMENTSVC_RATELIMIT_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    return env


def run_cli(env: Mapping[str, str], *args: str, stdin: str | None = None) -> str:
    """Run ``commentsvc ARGS`` and return its standard output; fail the test if it fails."""
    result = subprocess.run(
        [commentsvc_script(), *args],
        env=dict(env),
        cwd=PROJECT_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"commentsvc {' '.join(args)}:\n{result.stderr}"
    return result.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copy_database(source: Path, target: Path) -> None:
    """Copy a database nobody writes to: SQLite's backup API, or PostgreSQL's templates."""
    run_databases().copy(source, target)


@dataclass(frozen=True)
class Template:
    """A migrated database with a moderator and their API token, made once per module."""

    database: Path
    token: str


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    database = tmp_path_factory.mktemp("e2e-template") / "template.db"
    env = service_env(database)
    run_cli(env, "db", "upgrade")
    run_cli(env, "moderators", "add", MODERATOR_EMAIL, "--password-stdin", stdin=MODERATOR_PASSWORD)
    token = run_cli(env, "tokens", "create", MODERATOR_EMAIL).split()[-1]
    yield Template(database, token)
    run_databases().drop(database)


@dataclass
class Server:
    """A running gunicorn serving one fresh database with the site ``e2e``."""

    process: subprocess.Popen[bytes]
    base_url: str
    token: str
    log: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def worker_pids(self) -> list[int]:
        """Pids of the live children of the gunicorn master, read from /proc."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path("/proc", entry, "stat").read_text()
            except OSError:
                continue  # the process ended while we looked
            # The command name is in parentheses and may contain anything; fields follow it.
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == self.process.pid and state != "Z":
                pids.append(int(entry))
        return sorted(pids)

    @property
    def port(self) -> int:
        return int(urlsplit(self.base_url).port or 0)

    def busy_workers(self) -> list[int]:
        """Workers holding a client connection, so serving a request right now.

        A client connection is one accepted on the server's port; a worker's other sockets
        (the listening one it inherited, its database connections) do not count.
        """
        workers = self.worker_pids()
        if shutil.which("ss"):
            # One netlink query, filtered in the kernel: the owner of each connection is read
            # with it, so a short request is not missed between two reads of /proc.
            owners = _connection_owners(self.port)
            return [pid for pid in workers if pid in owners]
        clients = _accepted_connections(self.port)
        return [pid for pid in workers if _sockets(pid) & clients]

    def busy_worker(self) -> int | None:
        """A worker holding a client connection, or None."""
        busy = self.busy_workers()
        return busy[0] if busy else None


def _connection_owners(port: int) -> set[int]:
    """Pids of the processes holding an established TCP connection on local ``port``."""
    listing = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", listing)}


def _accepted_connections(port: int) -> set[str]:
    """The ``socket:[N]`` inodes of established TCP connections whose local port is ``port``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue  # no IPv6
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:  # 01: ESTABLISHED
                inodes.add(f"socket:[{inode}]")
    return inodes


def _sockets(pid: int) -> set[str]:
    """The socket inodes a process has open, as ``socket:[N]`` links in /proc."""
    sockets: set[str] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return sockets
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed while we looked
        if target.startswith("socket:"):
            sockets.add(target)
    return sockets


def wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or listening while the workers still boot
        time.sleep(0.1)
    pytest.fail(f"gunicorn was not healthy within {STARTUP_TIMEOUT} s:\n{log.read_text()}")


def wait_until_every_worker_serves(server: Server, workers: int) -> None:
    """Wait until each worker has loaded the app and takes connections.

    A healthy answer only shows that one worker is up; the others may still be importing
    the app. One unfinished request per worker is held open until every worker holds one
    (a worker still starting leaves its connection waiting), then all are finished.
    """
    address = (urlsplit(server.base_url).hostname, server.port)
    connections = [
        socket.create_connection(address, timeout=STARTUP_TIMEOUT) for _ in range(workers)
    ]
    try:
        for connection in connections:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: e2e\r\n")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while len(server.busy_workers()) < workers:
            if server.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"not every gunicorn worker started:\n{server.log.read_text()}")
            time.sleep(0.05)
        for connection in connections:
            connection.sendall(b"Connection: close\r\n\r\n")
            while connection.recv(65536):
                pass
    finally:
        for connection in connections:
            connection.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the master (it stops its workers), then SIGKILL its process group if stuck."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            # start_new_session made the master the leader of a group of its own.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=SHUTDOWN_TIMEOUT)


@contextmanager
def serve(template: Template, tmp_path: Path, workers: int = WORKERS) -> Iterator[Server]:
    """A gunicorn with ``workers`` workers on a fresh copy of the template database."""
    database = tmp_path / "e2e.db"
    copy_database(template.database, database)
    env = service_env(database)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    run_cli(env, "sites", "add", "e2e", "--origin", base_url)

    log = tmp_path / "gunicorn.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "5",
                "wsgi:app",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_healthy(process, base_url, log)
        running = Server(process, base_url, template.token, log)
        wait_until_every_worker_serves(running, workers)
        yield running
    finally:
        stop(process)
        run_databases().drop(database)


@pytest.fixture
def server(template: Template, tmp_path: Path) -> Iterator[Server]:
    with serve(template, tmp_path) as running:
        yield running
