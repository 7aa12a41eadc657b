"""Flask extensions, created unbound here and bound in :func:`commentsvc.create_app`."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from flask import Flask, current_app
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase

from commentsvc._meta import PROJECT_ROOT

# Stable constraint names, so Alembic migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
csrf = CSRFProtect()
login_manager = LoginManager()
log = logging.getLogger(__name__)


def migrations_folder(app: Flask) -> str:
    """The Alembic migrations folder of ``app``."""
    return app.config["MIGRATIONS_DIR"] or str(PROJECT_ROOT / "migrations")


def init_migrate(app: Flask) -> None:
    """Flask-Migrate on ``app``, for the ``db`` commands. Only the command line needs it:
    Flask-Migrate brings Alembic and Mako, about 11 MiB in each process, which serving never
    uses (the readiness check reads the migrations' heads without them, see
    :mod:`commentsvc.health`)."""
    if "migrate" in app.extensions:
        return
    from flask_migrate import Migrate

    Migrate(app, db, directory=migrations_folder(app), compare_type=True, render_as_batch=True)


_WRITE = "commentsvc_write"
_NO_TRANSACTION = "commentsvc_no_transaction"
_READ_ENGINE = "commentsvc.read_engine"
_WRITERS = "commentsvc.sqlite_writers"


class SqliteWriters:
    """The processes of this machine that write one SQLite file take turns on a lock file
    (``<database>.writers.lock``) before ``BEGIN IMMEDIATE``.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25… ms between its tries: a
    writer that finds the lock taken sleeps whole milliseconds while the holder needs a
    fraction of one, and at a few concurrent submissions those sleeps were nearly all of
    their 99th percentile. Here a waiter tries again every 0.1 ms at first (at most every
    millisecond), so the lock changes hands about as soon as it is free. The kernel releases
    a dead process's lock. After the busy timeout a writer stops waiting here and leaves the
    rest to SQLite's own wait; a writer that does not use this (another program, a shell)
    is waited for by SQLite's busy handler as before.

    A lock file's lock belongs to the open file, which all threads of a process share: the
    threads of one process (the outbox worker's senders) take turns on a lock of their own
    first, or they would all "hold" the file's lock at once and meet in SQLite's busy
    handler after all.
    """

    def __init__(self, path: str, timeout_ms: int) -> None:
        self._path = path
        self._timeout = timeout_ms / 1000
        self._fd: int | None = None
        self._pid = 0
        self._depth = threading.local()

    def _descriptor(self) -> int | None:
        # A child process of a fork shares its parent's open file, and so its lock: each
        # process opens the file itself.
        if self._fd is None or self._pid != os.getpid():
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                self._fd = None  # a read-only directory: SQLite's busy handler alone
            self._pid = os.getpid()
            self._depth = threading.local()  # forked inside a turn: the child holds none
        return self._fd

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the lock for the block (or, after the busy timeout, go on without it)."""
        fd = self._descriptor()
        if fd is None:
            yield
            return
        deadline = time.monotonic() + self._timeout
        threads = _thread_turn(self._path)
        if not threads.acquire(timeout=self._timeout):
            yield  # SQLite's own busy handler waits from here
            return
        depth = getattr(self._depth, "value", 0)  # a turn taken inside this thread's turn
        held = depth > 0 or self._wait(fd, deadline)
        self._depth.value = depth + 1
        try:
            yield
        finally:
            self._depth.value = depth
            if held and depth == 0:
                fcntl.flock(fd, fcntl.LOCK_UN)
            threads.release()

    def _wait(self, fd: int, deadline: float) -> bool:
        pause = 0.0001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.001)


#: Per lock file, the lock the threads of this process take turns on (see SqliteWriters).
_thread_turns: dict[str, threading.RLock] = {}
_thread_turns_guard = threading.Lock()


def _thread_turn(path: str) -> threading.RLock:
    with _thread_turns_guard:
        lock = _thread_turns.get(path)
        if lock is None:
            lock = _thread_turns[path] = threading.RLock()
        return lock


def _forget_thread_turns() -> None:
    """In a forked child no thread holds a turn, whatever the parent's threads held."""
    global _thread_turns_guard
    _thread_turns_guard = threading.Lock()
    _thread_turns.clear()


os.register_at_fork(after_in_child=_forget_thread_turns)


def sqlite_writers() -> SqliteWriters | None:
    """The lock of this app's SQLite file's writers (None: not SQLite, or in memory)."""
    writers: SqliteWriters | None = current_app.extensions.get(_WRITERS)
    return writers


def sqlite_file(engine: Engine) -> str | None:
    """The absolute path of ``engine``'s SQLite database file; None for another database,
    one in memory, or a ``file:`` URI (whose path is not the file's)."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return os.path.abspath(path)


def configure_sqlite(app: Flask, engine: Engine) -> None:
    """Make a SQLite engine safe for several gunicorn workers.

    WAL lets readers run beside one writer; the busy timeout makes writers queue instead of
    failing; write transactions start with ``BEGIN IMMEDIATE`` so that a transaction that
    read first never has to upgrade a stale snapshot (which SQLite refuses at once, without
    waiting). The driver's own transaction handling is turned off so we control ``BEGIN``.
    """
    busy_ms = app.config["SQLITE_BUSY_TIMEOUT_MS"]
    synchronous = app.config["SQLITE_SYNCHRONOUS"].upper()
    path = sqlite_file(engine)
    if path is not None:
        app.extensions[_WRITERS] = SqliteWriters(path + ".writers.lock", busy_ms)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get(_NO_TRANSACTION, False):
            return  # see read_connection: each statement is a transaction of its own
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_WRITE, False) else "BEGIN")


def _read_engine() -> Engine:
    """The engine's connections, without transactions (see :func:`read_connection`)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    engine: Engine | None = app.extensions.get(_READ_ENGINE)
    if engine is None or engine.pool is not db.engine.pool:
        if db.engine.dialect.name == "sqlite":
            engine = db.engine.execution_options(**{_NO_TRANSACTION: True})
        else:
            engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        app.extensions[_READ_ENGINE] = engine
    return engine


@contextmanager
def read_connection() -> Iterator[Connection]:
    """A pooled connection for reads of one statement each, outside any transaction.

    A read of one statement sees one consistent state by itself, so the hot public reads
    skip the ``BEGIN`` and ``ROLLBACK`` around it: on SQLite two statements fewer, on
    PostgreSQL (autocommit) two round trips fewer per request. Reads that must agree with
    each other use the session, whose transaction gives them one snapshot.
    """
    with _read_engine().connect() as connection:
        yield connection


@contextmanager
def write_transaction() -> Iterator[None]:
    """Run the block as one write transaction: commit at the end, roll back on error.

    Any read-only transaction the request opened before is closed first, so that on SQLite
    the write starts with the write lock held (see :func:`configure_sqlite`). The session
    must hold no unsaved changes then: they belong to no use case.
    """
    session = db.session()
    if session.new or session.dirty or session.deleted:
        # Changes made outside a use case would be committed by it, unseen: a trap.
        raise RuntimeError("write_transaction() started with unsaved changes in the session")
    if session.in_transaction():
        session.commit()
    writers = sqlite_writers()
    with writers.turn() if writers is not None else nullcontext():
        session.connection(execution_options={_WRITE: True})
        try:
            yield
            session.commit()
        except BaseException:
            session.rollback()
            raise


def end_session(error: BaseException | None = None) -> None:
    """Close the app context's session, whatever became of its connection: registered to
    run before Flask-SQLAlchemy's own teardown, which then finds nothing left to close.

    A request's session may still hold a transaction when its answer is ready (a read).
    If the database drops the connection just then (PostgreSQL stopping, a failover), the
    rollback of closing it raised out of Flask's teardown: gunicorn turned a finished 200
    into its own HTML 500. The connection is invalidated by that error, so closing the
    session once more returns it to the pool; the answer stands.
    """
    try:
        db.session.remove()
    except SQLAlchemyError as failed:
        log.warning("the database connection was lost while the session closed: %s", failed)
        try:
            db.session.remove()
        except SQLAlchemyError:
            db.session.registry.clear()  # given up: a new session for the next context
