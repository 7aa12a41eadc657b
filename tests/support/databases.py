"""The databases the tests run on: SQLite files, or PostgreSQL databases when the environment
variable ``COMMENTSVC_TEST_DATABASE_URL`` names a PostgreSQL database to start from
(``scripts/ensure-postgres.sh`` starts a local server and prints such a URL).

Tests name a database by a path in their temporary directory, as they name a SQLite file.
On PostgreSQL each path stands for a database of its own on the server, created empty when
first used and dropped when the test is done with it (or at the end of the run); but the
fresh copies of the migrated template that most tests start from (``fresh``) are one and the
same database, emptied between tests: a few milliseconds, where CREATE DATABASE … TEMPLATE
plus DROP DATABASE take a fifth of a second.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import sqlite3
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

URL_VARIABLE = "COMMENTSVC_TEST_DATABASE_URL"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class SQLiteDatabases:
    """Each database is the SQLite file at its path; the files go with the temporary dirs."""

    dialect = "sqlite"

    def url(self, database: Path) -> str:
        """The SQLAlchemy URL of ``database``."""
        return f"sqlite:///{database}"

    def copy(self, source: Path, target: Path) -> None:
        """Make ``target`` a copy of ``source`` (its WAL included) with SQLite's backup API."""
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        src.close()
        dst.close()

    def fresh(self, template: Path, database: Path) -> None:
        """Make ``database`` a fresh copy of ``template``, which nobody has open."""
        shutil.copyfile(template, database)

    def drop(self, database: Path) -> None:
        """Done with ``database``: nothing to do, the file goes with the temporary directory."""

    def close(self) -> None:
        """The run is over."""


class _Scratch:
    """A copy of a template that tests reuse, emptied before each of them."""

    def __init__(self, name: str, connection: sa.Connection) -> None:
        self.name = name
        self.connection = connection
        metadata = sa.MetaData()
        metadata.reflect(connection)
        connection.commit()  # no transaction left open while the tests run
        # Children before parents, so that no foreign key objects to a delete.
        self.tables = [
            table for table in reversed(metadata.sorted_tables) if table.name != "alembic_version"
        ]
        self.table_names = set(metadata.tables)

    def intact(self) -> bool:
        """Whether every table of the template is still there (a test may drop one, such as
        ``alembic_version`` to see the service not ready)."""
        present = set(sa.inspect(self.connection).get_table_names())
        self.connection.commit()
        return present == self.table_names

    def empty(self) -> None:
        """Back to the template's state: connections of earlier tests ended, rows deleted,
        sequences restarted."""
        connection = self.connection
        connection.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        for table in self.tables:
            connection.execute(sa.delete(table))
        connection.execute(
            sa.text(
                "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass,"
                " start_value, false) FROM pg_sequences WHERE schemaname = current_schema()"
            )
        )
        connection.commit()

    def close(self) -> None:
        self.connection.close()
        self.connection.engine.dispose()


class PostgresDatabases:
    """Each database is a database on one PostgreSQL server, named after this process."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.server = sa.make_url(url)
        # DDL such as CREATE DATABASE cannot run in a transaction.
        self.engine = sa.create_engine(
            self.server, isolation_level="AUTOCOMMIT", poolclass=NullPool
        )
        self.admin = self.engine.connect()
        self.prefix = f"commentsvc_t{os.getpid()}_"
        self.numbers = itertools.count(1)
        self.names: dict[Path, str] = {}
        self.owned: set[str] = set()
        self.scratches: dict[str, _Scratch] = {}
        self._drop_stale()

    def url(self, database: Path) -> str:
        """The SQLAlchemy URL of ``database``, created empty when new."""
        name = self.names.get(database)
        if name is None:
            name = self._create()
            self.names[database] = name
        return self._url_of(name)

    def copy(self, source: Path, target: Path) -> None:
        """Make ``target`` a new copy of ``source``, which nobody may have open."""
        self.names[target] = self._create(template=self.names[source])

    def fresh(self, template: Path, database: Path) -> None:
        """Make ``database`` a fresh copy of ``template``, which nobody has open.

        Successive calls hand out one and the same database, emptied each time: whoever had
        it before is done with it (connections still open to it are ended).
        """
        template_name = self.names[template]
        scratch = self.scratches.get(template_name)
        if scratch is not None:
            try:
                scratch.empty()
                if not scratch.intact():
                    raise sa.exc.InvalidRequestError("the schema changed")
            except sa.exc.SQLAlchemyError:
                # A test changed the schema under it: start over from the template.
                del self.scratches[template_name]
                scratch.close()
                self._drop(scratch.name)
                scratch = None
        if scratch is None:
            name = self._create(template=template_name)
            connection = sa.create_engine(
                self.server.set(database=name), poolclass=NullPool
            ).connect()
            scratch = self.scratches[template_name] = _Scratch(name, connection)
        self.names[database] = scratch.name

    def drop(self, database: Path) -> None:
        """Done with ``database``: drop it, ending any connection still open to it."""
        name = self.names.pop(database, None)
        if name in self.owned and name not in {s.name for s in self.scratches.values()}:
            self._drop(name)

    def close(self) -> None:
        """The run is over: drop every database it made."""
        for scratch in self.scratches.values():
            scratch.close()
        self.scratches.clear()
        for name in sorted(self.owned):
            self._drop(name)
        self.admin.close()
        self.engine.dispose()

    def _url_of(self, name: str) -> str:
        return self.server.set(database=name).render_as_string(hide_password=False)

    def _create(self, template: str | None = None) -> str:
        name = f"{self.prefix}{next(self.numbers)}"
        # template0 is empty by definition; template1 may hold whatever the server's admin added.
        source = template or "template0"
        self.admin.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        self.owned.add(name)
        return name

    def _drop(self, name: str) -> None:
        self.admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.owned.discard(name)

    def _drop_stale(self) -> None:
        """Drop what earlier runs on this machine left behind when they were killed."""
        if self.server.host not in LOOPBACK:
            return
        names = self.admin.execute(
            sa.text("SELECT datname FROM pg_database WHERE datname LIKE 'commentsvc\\_t%'")
        ).scalars()
        for name in names:
            match = re.fullmatch(r"commentsvc_t(\d+)_\d+", name)
            if match and not _process_exists(int(match.group(1))):
                self._drop(name)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


Databases = SQLiteDatabases | PostgresDatabases


@cache
def run_databases() -> Databases:
    """The databases of this run, chosen by ``COMMENTSVC_TEST_DATABASE_URL``."""
    url = os.environ.get(URL_VARIABLE, "")
    if not url:
        return SQLiteDatabases()
    if sa.make_url(url).get_backend_name() != "postgresql":
        raise ValueError(f"{URL_VARIABLE} must name a PostgreSQL database, not {url!r}")
    return PostgresDatabases(url)


def close_run_databases() -> None:
    """Drop what this run made (PostgreSQL); the next call starts afresh."""
    if run_databases.cache_info().currsize:
        run_databases().close()
        run_databases.cache_clear()
