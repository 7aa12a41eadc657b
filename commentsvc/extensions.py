"""Flask extensions, created unbound here and bound in :func:`commentsvc.create_app`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
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
        immediate = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction() -> Iterator[None]:
    """Run the block as one write transaction: commit at the end, roll back on error.

    Any read-only transaction the request opened before is closed first, so that on SQLite
    the write starts with the write lock held (see :func:`configure_sqlite`).
    """
    session = db.session()
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={_WRITE: True})
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise
