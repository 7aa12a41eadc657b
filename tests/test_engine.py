"""The database engine: no connection before a request needs one, and none used after it died.

gunicorn forks its workers; a connection opened while the app was built (in the master, with
``preload_app``) would be shared by every worker. And a pooled connection can die while idle
(a database restart, a proxy's idle timeout): the pool must notice before handing it out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.pool import NullPool, Pool, QueuePool

from commentsvc import create_app
from commentsvc.extensions import db
from tests.support.databases import run_databases


def test_building_the_app_connects_to_no_database(tmp_path: Path) -> None:
    url = run_databases().url(tmp_path / "engine.db")
    connects: list[Any] = []

    def on_connect(*args: Any) -> None:
        connects.append(args)

    sa.event.listen(Pool, "connect", on_connect)
    try:
        app = create_app({"ENV": "testing", "SECRET_KEY": "test-secret", "DATABASE_URL": url})
        with app.app_context():
            engine = db.engine
    finally:
        sa.event.remove(Pool, "connect", on_connect)
    assert connects == []
    assert isinstance(engine.pool, QueuePool)
    assert engine.pool.checkedin() == engine.pool.checkedout() == 0


@pytest.mark.postgresql_only  # a SQLite connection is a file handle: nothing ends it behind us
def test_a_pooled_connection_that_died_is_replaced_before_use(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
            dead = connection.connection.dbapi_connection
        assert isinstance(engine.pool, QueuePool)
        assert engine.pool.checkedin() == 1  # back in the pool, idle

        # End it behind the pool's back, as a server restart or a failover does.
        server = sa.create_engine(engine.url, poolclass=NullPool)
        with server.connect() as other:
            ended = other.execute(
                sa.text("SELECT pg_terminate_backend(:pid, 5000)"),
                {"pid": dead.info.backend_pid},  # type: ignore[union-attr]
            ).scalar()
        server.dispose()
        assert ended is True

        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT 1").scalar() == 1
            assert connection.connection.dbapi_connection is not dead
