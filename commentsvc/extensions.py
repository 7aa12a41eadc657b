"""Flask extensions, created unbound here and bound in :func:`commentsvc.create_app`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase

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
migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()

_WRITE = "commentsvc_write"
_NO_TRANSACTION = "commentsvc_no_transaction"
_READ_ENGINE = "commentsvc.read_engine"


def configure_sqlite(app: Flask, engine: Engine) -> None:
    """Make a SQLite engine safe for several gunicorn workers.

    WAL lets readers run beside one writer; the busy timeout makes writers queue instead of
    failing; write transactions start with ``BEGIN IMMEDIATE`` so that a transaction that
    read first never has to upgrade a stale snapshot (which SQLite refuses at once, without
    waiting). The driver's own transaction handling is turned off so we control ``BEGIN``.
    """
    busy_ms = app.config["SQLITE_BUSY_TIMEOUT_MS"]
    synchronous = app.config["SQLITE_SYNCHRONOUS"].upper()

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
    session.connection(execution_options={_WRITE: True})
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise
