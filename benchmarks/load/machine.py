"""What a report says about the machine, the software and the settings it was measured with."""

from __future__ import annotations

import os
import platform
import re
import secrets
import sqlite3
import subprocess
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from pathlib import Path

from benchmarks import load_data
from benchmarks.load.bench import Settings
from benchmarks.load.procstat import CPUS, field_of
from benchmarks.load.server import gunicorn_server
from benchmarks.load.wrk import wrk_version
from benchmarks.load_data import Databases
from commentsvc import PROJECT_ROOT
from tests.support.service import service_env


def machine_info(
    dialect: str, databases: Databases, workers: int, settings: Settings
) -> dict[str, str]:
    """The machine, the database, gunicorn and wrk of a run, by name."""
    info = {
        **host_info(),
        "packages": ", ".join(
            f"{name} {version(name)}" for name in ("flask", "sqlalchemy", "gunicorn", "psycopg")
        ),
        "database": database_info(dialect, databases.reads_url),
        "gunicorn": gunicorn_settings(databases.reads_url, workers, settings.worker_class),
        "wrk": (
            f"{wrk_version()}, {settings.threads} thread(s), {settings.connections} connections,"
            f" {settings.duration:g} s per run after {settings.warmup:g} s warm-up, same machine"
        ),
        "commit": git_commit(),
    }
    return info


def host_info() -> dict[str, str]:
    """The CPU, memory, kernel and Python of this machine, by name."""
    model = field_of(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text())
    ram_kib = int(field_of(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()))
    return {
        "CPU": f"{model}, {CPUS} cores",
        "RAM": f"{ram_kib / 1024 / 1024:.1f} GiB",
        "kernel": f"Linux {platform.release()}",
        "Python": platform.python_version(),
    }


def database_info(dialect: str, url: str) -> str:
    """The database's version and the settings that change what is measured."""
    if dialect == "sqlite":
        return f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL)"
    pg = load_data.postgres_settings(url)
    return (
        f"PostgreSQL {pg['server_version']} on loopback (fsync={pg['fsync']},"
        f" synchronous_commit={pg['synchronous_commit']},"
        f" shared_buffers={pg['shared_buffers']},"
        f" autovacuum={pg['autovacuum']})"
    )


def gunicorn_settings(database_url: str, workers: int, worker_class: str = "") -> str:
    """The settings gunicorn resolves from gunicorn.conf.py for the benchmark's environment."""
    env = service_env(
        database_url,
        secrets.token_hex(32),
        COMMENTSVC_LOG_LEVEL="INFO",
        **worker_class_variables(worker_class),
    )
    # Only its command line is used: nothing starts, nothing is logged.
    server = gunicorn_server("wsgi", env, workers, Path(os.devnull))
    resolved = resolved_config(server.command(), env)
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
        " each connection is closed after its response (keepalive 0, or sync workers)"
    )


def resolved_config(command: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """Every setting, by name, as gunicorn resolves it for ``command`` (a gunicorn command
    line) in ``env``: what ``--print-config`` prints."""
    result = subprocess.run(
        [*command, "--print-config"],
        cwd=PROJECT_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    return dict(re.findall(r"^(\w+)\s+= (.*)$", result.stdout, re.M))


def worker_class_variables(worker_class: str) -> dict[str, str]:
    """The environment that makes gunicorn use ``worker_class`` (none for the default)."""
    return {"GUNICORN_CMD_ARGS": f"--worker-class {worker_class}"} if worker_class else {}


def git_commit() -> str:
    """The checked-out commit, and whether tracked files differ from it."""

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
        )
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{commit}{' with uncommitted changes' if dirty else ''}"
