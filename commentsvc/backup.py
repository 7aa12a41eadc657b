"""Backups of the database: ``commentsvc db backup PATH`` and ``commentsvc db restore PATH``.

SQLite is copied with its online backup API: a consistent snapshot (WAL included) taken
while the service keeps serving. PostgreSQL is dumped and restored with ``pg_dump`` and
``pg_restore`` (custom format), which must be installed beside the command and match the
server's major version.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url


class BackupError(RuntimeError):
    """The backup or restore could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int


def backup(database_url: str, target: Path, *, overwrite: bool = False) -> BackupResult:
    """Write a consistent copy of the database to ``target``."""
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists: choose another path or pass --force")
    url = make_url(database_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        if url.get_backend_name() == "sqlite":
            _sqlite_copy(_sqlite_path(url), partial)
        elif url.get_backend_name() == "postgresql":
            _run_pg("pg_dump", url, "--format=custom", "--no-owner", f"--file={partial}")
        else:
            raise BackupError(f"backups of {url.get_backend_name()} databases are not supported")
        # Only a finished backup ever appears under the name asked for.
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, target.stat().st_size)


def restore(database_url: str, source: Path) -> None:
    """Replace the database's content with the backup at ``source``."""
    if not source.is_file():
        raise BackupError(f"{source} is not a file")
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        _check_sqlite_backup(source)
        _sqlite_copy(source, _sqlite_path(url))
    elif url.get_backend_name() == "postgresql":
        _run_pg(
            "pg_restore",
            url,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            str(source),
        )
    else:
        raise BackupError(f"restores of {url.get_backend_name()} databases are not supported")


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("the database is in memory: there is nothing to back up")
    return Path(url.database)


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy page by page with SQLite's backup API; readers and writers of ``source`` go on."""
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    except sqlite3.Error as error:
        raise BackupError(f"copying {source} to {target} failed: {error}") from None
    finally:
        dst.close()
        src.close()


def _check_sqlite_backup(source: Path) -> None:
    """Refuse a file that is not a sound commentsvc SQLite database."""
    try:
        connection = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            (integrity,) = connection.execute("PRAGMA quick_check").fetchone()
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise BackupError(f"{source} is not a SQLite database: {error}") from None
    if integrity != "ok":
        raise BackupError(f"{source} is damaged: {integrity}")
    if not {"alembic_version", "comments"} <= tables:
        raise BackupError(f"{source} is not a commentsvc database")


def _run_pg(program: str, url: URL, *args: str) -> None:
    """Run a PostgreSQL client program against ``url``; the password goes in the environment."""
    executable = shutil.which(program)
    if executable is None:
        raise BackupError(
            f"{program} is not installed: install the PostgreSQL client of the server's major "
            f"version (Debian: apt-get install postgresql-client), or run it where it is, "
            f"such as in the postgres container (README: Backups and restores)"
        )
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    result = subprocess.run(
        [executable, f"--dbname={dsn}", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"{program} failed: {result.stderr.strip()}")
