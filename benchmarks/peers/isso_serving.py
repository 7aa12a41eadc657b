"""Isso served as commentsvc is: the same gunicorn, worker class, number of workers and every
setting gunicorn resolves for commentsvc that applies to any application.

Isso runs from its own virtualenv (:func:`tests.support.isso.isso_virtualenv`, the version the
import tests pin), with the gunicorn of commentsvc's virtualenv installed beside it, pinned.
Its application is ``isso.run:application``, Isso's WSGI entry point for a server of its own,
which reads its configuration file from ``ISSO_SETTINGS``: the tests' configuration (moderation
and admin on, spam guard off). gunicorn reads ``benchmarks/peers/isso_conf.py`` (commentsvc's
worker and logger classes; Isso's log as Isso sets it up); the settings of :data:`COPIED`
come on the command line with the values gunicorn resolves for commentsvc from
``gunicorn.conf.py``, and those of :data:`COMPARED` must then resolve alike for both, or the
benchmark stops.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from gunicorn.config import KNOWN_SETTINGS

from benchmarks.load.submissions import SubmitCheck
from benchmarks.load.wrk import WrkRun
from benchmarks.load_data import SetupError
from tests.support.isso import IssoServer, isso_virtualenv
from tests.support.server import LOOPBACK, GunicornServer

#: Installed beside Isso: the gunicorn of commentsvc's virtualenv, and what it needs.
EXTRAS = (f"gunicorn=={version('gunicorn')}", f"packaging=={version('packaging')}")
ISSO_APP = "isso.run:application"
ISSO_CONF = Path(__file__).with_name("isso_conf.py")
STORED_SCRIPT = Path(__file__).with_name("isso_stored.py")
#: Isso's answer to a submission it holds for moderation.
ISSO_PENDING = 202
#: Isso's mode of a comment held for moderation.
PENDING_MODE = 2
#: Settings copied from commentsvc's resolved configuration onto Isso's command line.
COPIED = (
    "timeout",
    "graceful_timeout",
    "keepalive",
    "worker_connections",
    "max_requests",
    "max_requests_jitter",
    "worker_tmp_dir",
    "loglevel",
    "backlog",
    "limit_request_line",
    "limit_request_fields",
    "limit_request_field_size",
    "forwarded_allow_ips",
)
#: Settings that must resolve alike for both (the others name hooks, where each runs from,
#: or gunicorn's own log format).
COMPARED = (
    "workers",
    "worker_class",
    "logger_class",
    "threads",
    "preload_app",
    "accesslog",
    "errorlog",
    "proxy_allow_ips",
    "reuse_port",
    "sendfile",
    *COPIED,
)
#: Settings naming a class: compared by the class's name.
CLASSES = ("worker_class", "logger_class")
#: Isso's side of the versions, printed by its own interpreter.
_VERSIONS = (
    "import json, platform, sqlite3; from importlib.metadata import version;"
    " print(json.dumps({'Isso': version('isso'), 'gunicorn': version('gunicorn'),"
    " 'Python': platform.python_version(), 'SQLite': sqlite3.sqlite_version}))"
)


@dataclass
class IssoGunicorn(GunicornServer):
    """gunicorn from Isso's virtualenv, run in Isso's directory, with ``settings`` (options)."""

    venv: Path = field(kw_only=True)
    directory: Path = field(kw_only=True)
    settings: Sequence[str] = field(kw_only=True, default=())

    def command(self) -> list[str]:
        """Isso's gunicorn script (not ``python -m``: the project stays off Isso's path)."""
        command = [str(self.venv / "bin" / "gunicorn"), "--config", str(self.config)]
        command += ["--chdir", str(self.directory), "--workers", str(self.workers)]
        command += ["--bind", f"{LOOPBACK}:{self.port}", *self.settings]
        return [*command, self.app]


@dataclass
class IssoPeer:
    """Isso to serve: its configuration file, its HTTP client (which also writes that
    configuration) and the gunicorn that serves it."""

    client: IssoServer
    gunicorn: IssoGunicorn
    settings_file: Path

    def versions(self) -> dict[str, str]:
        """Isso's, and its gunicorn's, Python's and SQLite's in Isso's virtualenv."""
        python = self.gunicorn.venv / "bin" / "python"
        done = subprocess.run(
            [str(python), "-I", "-c", _VERSIONS], capture_output=True, text=True, check=True
        )
        found: dict[str, str] = json.loads(done.stdout)
        return found

    def stored(self, prefix: str) -> list[tuple[int, int, str]]:
        """Id, mode and page of every comment Isso holds on pages under ``prefix``."""
        python = self.gunicorn.venv / "bin" / "python"
        command = [str(python), "-I", str(STORED_SCRIPT), str(self.settings_file), prefix]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SetupError(f"reading Isso's comments failed:\n{done.stderr[-2000:]}")
        return [(int(id_), int(mode), str(uri)) for id_, mode, uri in json.loads(done.stdout)]


def isso_peer(directory: Path, workers: int, commentsvc: Mapping[str, str]) -> IssoPeer:
    """Isso in ``directory`` (its database, configuration and log), to be served by gunicorn
    with the settings ``commentsvc`` resolved to."""
    venv = isso_virtualenv(*EXTRAS)
    directory.mkdir(parents=True, exist_ok=True)
    client = IssoServer(directory)
    settings_file = directory / "isso.cfg"
    settings_file.write_text(client.config())
    # Nothing of the caller's environment but PATH, as the tests run Isso.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(directory),
        "ISSO_SETTINGS": str(settings_file),
    }
    gunicorn = IssoGunicorn(
        env,
        directory / "gunicorn.log",
        app=ISSO_APP,
        workers=workers,
        config=ISSO_CONF,
        port=client.port,
        ready_path="/info",
        startup_timeout=60.0,
        shutdown_timeout=15.0,
        venv=venv,
        directory=directory,
        settings=copied_options(commentsvc),
    )
    return IssoPeer(client, gunicorn, settings_file)


def copied_options(commentsvc: Mapping[str, str]) -> list[str]:
    """gunicorn's command-line options for :data:`COPIED`, with commentsvc's values."""
    flags = {
        setting.name: next(flag for flag in setting.cli if flag.startswith("--"))
        for setting in KNOWN_SETTINGS
        if setting.cli
    }
    missing = [name for name in COPIED if name not in commentsvc]
    if missing:
        raise SetupError(f"gunicorn resolved no {', '.join(missing)} for commentsvc")
    return [option for name in COPIED for option in (flags[name], _option(commentsvc[name]))]


def _option(value: str) -> str:
    """A resolved value as the command line takes it: a list (``['127.0.0.1']``) comma-separated."""
    if value.startswith("["):
        return ",".join(str(item) for item in ast.literal_eval(value))
    return value


def shared_settings(commentsvc: Mapping[str, str], isso: Mapping[str, str]) -> dict[str, str]:
    """The settings of :data:`COMPARED`, which must resolve alike for both; SetupError
    naming those that do not."""
    shared, differ = {}, []
    for name in COMPARED:
        ours, theirs = commentsvc.get(name), isso.get(name)
        if name in CLASSES:
            ours, theirs = _class_name(ours), _class_name(theirs)
        if ours != theirs:
            differ.append(f"{name}: commentsvc {commentsvc.get(name)}, Isso {isso.get(name)}")
        shared[name] = commentsvc.get(name, "?")
    if differ:
        raise SetupError("gunicorn settings differ between the peers:\n" + "\n".join(differ))
    return shared


def _class_name(value: str | None) -> str | None:
    """A class setting by the class's name alone: commentsvc's names its module
    (``commentsvc.worker.BufferingWorker``), Isso's is the class of the same file, loaded by
    path (gunicorn prints ``<BufferingWorker()>``)."""
    named = re.fullmatch(r"[\w.]*?(\w+)|<(\w+)\(\)>", value or "")
    return next(name for name in named.groups() if name) if named else value


def isso_submit_check(
    peer: IssoPeer, tag: str, runs: Sequence[WrkRun], connections: int
) -> SubmitCheck:
    """What Isso holds on a submit workload's pages (URIs ``/load/<tag>-…``) against what wrk
    saw acknowledged: the check :func:`benchmarks.load.submissions.check_submissions` makes of
    commentsvc's database, made through Isso's own database layer."""
    rows = peer.stored(f"/load/{tag}-")
    return SubmitCheck.compare(
        runs,
        [comment_id for comment_id, _, _ in rows],
        connections,
        not_pending=sum(mode != PENDING_MODE for _, mode, _ in rows),
        flagged=0,  # Isso's guard is off: it flags nothing
        counted_pages=len({uri for _, mode, uri in rows if mode == 1}),
        status=ISSO_PENDING,
    )
