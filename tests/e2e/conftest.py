"""Fixtures for end-to-end tests: a migrated SQLite file made with the real CLI, and a real
gunicorn serving it over HTTP on a free local port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from commentsvc import PROJECT_ROOT

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
    """This process's environment, minus any COMMENTSVC_* of its own, plus the service's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("COMMENTSVC_")}
    env.update(
        COMMENTSVC_DATABASE_URL=f"sqlite:///{database}",
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
    """Copy a SQLite database consistently (WAL included) with SQLite's backup API."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


@dataclass(frozen=True)
class Template:
    """A migrated database with a moderator and their API token, made once per module."""

    database: Path
    token: str


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    database = tmp_path_factory.mktemp("e2e-template") / "template.db"
    env = service_env(database)
    run_cli(env, "db", "upgrade")
    run_cli(env, "moderators", "add", MODERATOR_EMAIL, "--password-stdin", stdin=MODERATOR_PASSWORD)
    token = run_cli(env, "tokens", "create", MODERATOR_EMAIL).split()[-1]
    return Template(database, token)


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

    def busy_worker(self) -> int | None:
        """A worker holding a client connection (so serving a request right now), or None.

        Workers inherit the master's listening socket; any other socket is a client's.
        """
        listening = _sockets(self.process.pid)
        for pid in self.worker_pids():
            if _sockets(pid) - listening:
                return pid
        return None


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


@pytest.fixture
def server(template: Template, tmp_path: Path) -> Iterator[Server]:
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
                str(WORKERS),
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
        yield Server(process, base_url, template.token, log)
    finally:
        stop(process)
