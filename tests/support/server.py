"""A real gunicorn on a free loopback port: started, waited for, inspected and stopped.

The end-to-end and browser tests, the benchmarks and the screenshot script all serve the
application this one way: ``python -m gunicorn --config gunicorn.conf.py`` from the project
root (the production settings), with the workers and the address given on the command line,
which wins over the file. The service's environment and its accounts are made by
:mod:`tests.support.service`.

    with GunicornServer(env, tmp_path / "gunicorn.log", workers=2) as server:
        requests.get(server.url + "/healthz")

Small HTTP servers of their own (host pages, a demo site) serve in a thread with
:func:`serving`, their pages answered with :func:`send_page`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from commentsvc import PROJECT_ROOT

GUNICORN_CONF = PROJECT_ROOT / "gunicorn.conf.py"
LOOPBACK = "127.0.0.1"
#: The line gunicorn.conf.py's ``post_worker_init`` logs once a worker takes connections.
_EMBEDDED = re.compile(r"commentsvc worker started \(pid (\d+)\)")
_READY = re.compile(r"Worker (\d+) ready")


class ServerError(RuntimeError):
    """gunicorn did not start, or stopped answering; the message ends with its log."""


class _Server(Protocol):
    """An HTTP server of the standard library (``http.server``) or Werkzeug's."""

    server_address: Any

    def serve_forever(self) -> None: ...
    def shutdown(self) -> None: ...
    def server_close(self) -> None: ...


@contextmanager
def serving(server: _Server, name: str = "http-server") -> Iterator[str]:
    """``server`` (bound to the loopback address) serving in a thread of its own until the
    block ends; its origin."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def send_page(handler: BaseHTTPRequestHandler, text: str) -> None:
    """Answer ``handler``'s request with the HTML page ``text``, which no cache keeps."""
    body = text.encode("utf-8")
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Cache-Control", "no-store")
    handler.end_headers()
    handler.wfile.write(body)


def free_port() -> int:
    """A TCP port of the loopback address that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def child_pids(pid: int) -> list[int]:
    """Pids of the live children of ``pid``, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # The command name is in parentheses and may contain anything; fields follow it.
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if int(parent) == pid and state != "Z":
            found.append(int(entry))
    return sorted(found)


@dataclass
class GunicornServer:
    """One gunicorn master and its workers serving ``app``; its output goes to ``log``."""

    env: Mapping[str, str]
    log: Path
    app: str = "wsgi:app"
    workers: int = 2
    config: Path = GUNICORN_CONF
    #: Seconds a stopping worker may finish its request; None: gunicorn.conf.py's.
    graceful_timeout: float | None = None
    port: int = field(default_factory=free_port)
    #: Answers 200 once the app can serve: ``/readyz`` also checks the database and schema.
    ready_path: str = "/readyz"
    startup_timeout: float = 20.0
    shutdown_timeout: float = 10.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        """The master's pid."""
        return self.running().pid

    def command(self) -> list[str]:
        """The command line that serves ``app``."""
        command = [sys.executable, "-m", "gunicorn", "--config", str(self.config)]
        command += ["--workers", str(self.workers), "--bind", f"{LOOPBACK}:{self.port}"]
        if self.graceful_timeout is not None:
            command += ["--graceful-timeout", f"{self.graceful_timeout:g}"]
        return [*command, self.app]

    def start(self) -> None:
        """Start the master in a process group of its own, so a stuck one can be killed whole."""
        if self.process is not None:
            raise ServerError("this gunicorn was started already")
        with self.log.open("wb") as log_file:
            self.process = subprocess.Popen(
                self.command(),
                cwd=PROJECT_ROOT,
                env=dict(self.env),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def running(self) -> subprocess.Popen[bytes]:
        """The master's process; ServerError when it was never started."""
        if self.process is None:
            raise ServerError("gunicorn was not started")
        return self.process

    def wait_ready(self) -> None:
        """Wait until ``ready_path`` answers 200; ServerError if gunicorn exits or is too slow."""
        process = self.running()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServerError(f"gunicorn exited with {process.returncode}:\n{self.log_tail()}")
            if self._answers(self.ready_path):
                return
            time.sleep(0.1)
        raise ServerError(
            f"{self.ready_path} did not answer 200 within {self.startup_timeout:g} s:\n"
            + self.log_tail()
        )

    def wait_every_worker(self) -> None:
        """Wait until each worker has loaded the app and takes connections: each live
        worker has said so in the log (gunicorn.conf.py's ``post_worker_init``)."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            workers = self.worker_pids()
            ready = {int(pid) for pid in _READY.findall(self.log_text())}
            if len(workers) >= self.workers and ready.issuperset(workers):
                return
            if self.running().poll() is not None or time.monotonic() > deadline:
                raise ServerError(f"not every gunicorn worker started:\n{self.log_tail()}")
            time.sleep(0.05)

    def worker_pids(self) -> list[int]:
        """Pids of the live workers: the master's children, but the outbox worker it runs
        with COMMENTSVC_RUN_WORKER=true."""
        embedded = {int(pid) for pid in _EMBEDDED.findall(self.log_text())}
        return [pid for pid in child_pids(self.pid) if pid not in embedded]

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

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Send ``sig`` to the master (SIGTERM: it stops its workers gracefully), then
        SIGKILL its process group if it outlives ``shutdown_timeout``; its exit status."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=self.shutdown_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=self.shutdown_timeout)
        return process.returncode

    def log_text(self) -> str:
        """Everything gunicorn and the app wrote so far."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines gunicorn and the app wrote."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _answers(self, path: str) -> bool:
        # No proxy from the environment: the server is on this machine's loopback.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.url + path, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False  # not listening yet, not ready, or a worker still booting

    def __enter__(self) -> GunicornServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _connection_owners(port: int) -> set[int]:
    """Pids of the processes holding an established TCP connection on local ``port``."""
    return set(connection_owners_by_peer(port).values())


def connection_owners_by_peer(port: int) -> dict[int, int]:
    """The pid holding each established TCP connection on local ``port``, by the port of
    its other end (the client's)."""
    listing = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    owners = {}
    for line in listing.splitlines():
        peer = re.search(r"\s\S+:(\d+)\s+users:", line)
        pid = re.search(r"pid=(\d+)", line)
        if peer and pid:
            owners[int(peer.group(1))] = int(pid.group(1))
    return owners


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
