"""A real Isso for the import tests: the database the Isso reader is tested on is written by
Isso itself, through its HTTP API, never by hand.

Isso is installed from PyPI, pinned with everything it pulls in, into a virtualenv of its
own (it must not share the service's dependencies), once per version: the first run builds
``.venv/isso-<version>`` in the project (about ten seconds), later runs reuse it. A lock
keeps two test processes from building it at once; a half-built one (no ``requirements.txt``
written last) is built again. The peer benchmark (``benchmarks/peers``) serves the same Isso
with gunicorn, which :func:`isso_virtualenv` adds beside it, pinned.

    with IssoServer(tmp_path) as isso:
        first = isso.new("/post-1", text="Hello", author="Zoë", title="Post one")
        isso.activate(first.id)
    # isso.database is Isso's SQLite file, Isso stopped.

Isso runs moderated (a new comment is pending until :meth:`IssoServer.activate`, which goes
through Isso's own admin login and moderation link), with its spam guard off (it would
refuse more than two comments a minute from one address) and its admin on.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests

from commentsvc import PROJECT_ROOT
from tests.support.server import LOOPBACK, free_port

ISSO_VERSION = "0.14.0"
#: Isso and what it installs, each pinned: the schema and escaping the tests see stay put.
REQUIREMENTS = (
    f"isso=={ISSO_VERSION}",
    "bleach==6.4.0",
    "cffi==2.1.1",
    "html5lib==1.1",
    "itsdangerous==2.2.0",
    "Jinja2==3.1.6",
    "MarkupSafe==3.0.4",
    "misaka==2.1.1",
    "mistune==3.4.0",
    "pycparser==3.12",
    "six==1.17.0",
    "webencodings==0.6.1",
    "Werkzeug==3.1.9",
)
VENV = PROJECT_ROOT / ".venv" / f"isso-{ISSO_VERSION}"
INSTALL_TIMEOUT = 600.0
ADMIN_PASSWORD = "isso admin for the tests"
#: In the admin page, each comment's moderation key: ``validate_com(7, 'key', …)``.
_MODERATION_KEY = re.compile(r"validate_com\((\d+), '([^']+)'")


class IssoUnavailable(RuntimeError):
    """Isso could not be installed (no PyPI?); the message ends with pip's output."""


class IssoError(RuntimeError):
    """Isso did not start, or refused a request; the message ends with its log."""


def isso_executable() -> Path:
    """The ``isso`` script of the pinned Isso, installing it first when needed."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    marker = VENV / "requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    with _locked():
        if not (marker.exists() and marker.read_text() == wanted):
            _install(wanted)
            marker.write_text(wanted)
    return VENV / "bin" / "isso"


def isso_virtualenv(*extras: str) -> Path:
    """The pinned Isso's virtualenv (its scripts in ``bin/``), with ``extras`` (pinned
    requirements, e.g. ``gunicorn==23.0.0`` for the peer benchmark) installed beside Isso
    when missing. A rebuild of the virtualenv forgets them, so the next call installs them
    again."""
    isso_executable()
    marker = VENV / "extras.txt"
    with _locked():
        installed = set(marker.read_text().split()) if marker.exists() else set()
        missing = [requirement for requirement in extras if requirement not in installed]
        if missing:
            pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            _run([*pip, *missing])
            marker.write_text("".join(f"{name}\n" for name in sorted(installed | set(missing))))
    return VENV


@contextmanager
def _locked() -> Iterator[None]:
    """Hold the lock that keeps two processes from changing the virtualenv at once."""
    with Path(f"{VENV}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _install(requirements: str) -> None:
    """A fresh virtualenv at :data:`VENV` with ``requirements`` installed by pip."""
    shutil.rmtree(VENV, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", *REQUIREMENTS],
    ]
    for command in steps:
        try:
            _run(command)
        except IssoUnavailable:
            shutil.rmtree(VENV, ignore_errors=True)
            raise


def _run(command: list[str]) -> None:
    """Run an installation step; IssoUnavailable with its output when it fails."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise IssoUnavailable(f"{' '.join(command)}: no answer in {INSTALL_TIMEOUT:g} s") from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-3000:]
        raise IssoUnavailable(f"{' '.join(command)} failed:\n{output}")


@dataclass(frozen=True)
class Created:
    """A comment Isso created: its id, the cookie that lets its author delete it, and
    whether Isso holds it for moderation (202) or published it (201)."""

    id: int
    cookie: str
    pending: bool


@dataclass
class IssoServer:
    """``isso -c isso.cfg run`` on a free loopback port, its database and log in
    ``directory``."""

    directory: Path
    port: int = field(default_factory=free_port)
    startup_timeout: float = 30.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def database(self) -> Path:
        return self.directory / "comments.db"

    @property
    def log(self) -> Path:
        return self.directory / "isso.log"

    def config(self) -> str:
        """Isso's configuration. Its site (``host``) is a loopback port nothing listens on:
        Isso tries to reach it at start-up, and the tests touch no network."""
        return (
            "[general]\n"
            f"dbpath = {self.database}\n"
            f"host = http://{LOOPBACK}:{free_port()}/\n"
            "notify = stdout\n"
            "[moderation]\n"
            "enabled = true\n"
            "[admin]\n"
            "enabled = true\n"
            f"password = {ADMIN_PASSWORD}\n"
            "[guard]\n"
            "enabled = false\n"
            "[server]\n"
            f"listen = {self.url}\n"
        )

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start Isso and wait until it answers ``/info``."""
        executable = isso_executable()
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "isso.cfg"
        config.write_text(self.config())
        with self.log.open("wb") as log_file:
            self.process = subprocess.Popen(
                [str(executable), "-c", str(config), "run"],
                cwd=self.directory,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.directory)},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise IssoError(f"isso exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                if requests.get(f"{self.url}/info", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise IssoError(
            f"isso did not answer within {self.startup_timeout:g} s:\n{self.log_text()}"
        )

    def stop(self) -> None:
        """Stop Isso (SIGTERM, then SIGKILL of its process group); its file is then complete."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def info(self) -> dict[str, Any]:
        """Isso's ``/info``: its version among others."""
        answer: dict[str, Any] = self._checked(requests.get(f"{self.url}/info", timeout=10)).json()
        return answer

    def new(self, uri: str, **fields: Any) -> Created:
        """A comment posted as the widget posts it: ``POST /new?uri=…`` with JSON ``fields``
        (``text``, ``author``, ``email``, ``website``, ``parent``, ``notification``, and
        ``title`` for a thread's first comment: Isso would fetch the page for it)."""
        answer = self._checked(
            requests.post(f"{self.url}/new", params={"uri": uri}, json=fields, timeout=10)
        )
        comment_id = int(answer.json()["id"])
        return Created(comment_id, self._cookie(answer, str(comment_id)), answer.status_code == 202)

    def delete(self, comment: Created) -> None:
        """Its author deletes ``comment``: ``DELETE /id/N`` with the cookie of its creation."""
        self._checked(
            requests.delete(
                f"{self.url}/id/{comment.id}",
                cookies={str(comment.id): comment.cookie},
                timeout=10,
            )
        )

    def activate(self, *ids: int) -> None:
        """A moderator approves comments ``ids`` as in Isso's admin page: log in, take each
        comment's moderation key from the page, and ``POST`` its activation link."""
        login = self._checked(
            requests.post(
                f"{self.url}/login/",
                data={"password": ADMIN_PASSWORD},
                allow_redirects=False,
                timeout=10,
            )
        )
        session = {"admin-session": self._cookie(login, "admin-session")}
        page = self._checked(
            requests.get(f"{self.url}/admin/", params={"mode": 2}, cookies=session, timeout=10)
        )
        keys = {int(found): key for found, key in _MODERATION_KEY.findall(page.text)}
        for comment_id in ids:
            if comment_id not in keys:
                raise IssoError(f"comment {comment_id} is not pending in Isso's admin page")
            self._checked(
                requests.post(f"{self.url}/id/{comment_id}/activate/{keys[comment_id]}", timeout=10)
            )

    def _cookie(self, answer: requests.Response, name: str) -> str:
        value = answer.cookies.get(name)
        if not value:
            raise IssoError(f"{answer.url}: Isso set no cookie {name!r}\n{self.log_text()}")
        return value

    def _checked(self, answer: requests.Response) -> requests.Response:
        if answer.status_code >= 400:
            raise IssoError(
                f"{answer.request.method} {answer.url}: {answer.status_code} {answer.text[:500]}"
                f"\n{self.log_text()}"
            )
        return answer
