"""A request's session is closed whatever became of its connection (commentsvc.extensions
.end_session): a database that drops the connection after the answer is made must not turn
that answer into gunicorn's HTML 500 (the soak's PostgreSQL restart met one)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from commentsvc.extensions import db


def _terminate(app: Flask, backend_pid: int) -> None:
    """End a server process from another connection, as a fast shutdown does."""
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid})
    finally:
        engine.dispose()


@pytest.mark.postgresql_only
def test_a_connection_lost_after_the_answer_leaves_the_answer_standing(app: Flask) -> None:
    @app.get("/test-lost-connection")
    def lost_connection() -> dict[str, int]:
        # A read in the session's transaction, then the server ends that connection.
        pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        _terminate(app, pid)
        return {"backend": pid}

    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production
    client = app.test_client()
    answer = client.get("/test-lost-connection")
    assert answer.status_code == 200
    first = answer.get_json()["backend"]
    # The next request gets a live connection, and none was left checked out.
    again = client.get("/test-lost-connection")
    assert again.status_code == 200 and again.get_json()["backend"] != first
    with app.app_context():
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
