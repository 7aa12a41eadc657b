"""Liveness and readiness probes."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from commentsvc.errors import ApiError
from commentsvc.extensions import db

bp = Blueprint("health", __name__)


@cache
def _schema_heads(directory: str) -> frozenset[str]:
    return frozenset(ScriptDirectory(directory).get_heads())


def migrations_dir() -> Path:
    """The Alembic migrations folder of this application."""
    return Path(current_app.extensions["migrate"].directory)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers. No I/O."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: the database answers and its schema is at the newest migration."""
    try:
        current = set(db.session.scalars(sa.text("SELECT version_num FROM alembic_version")))
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.warning("readiness check: database unavailable", exc_info=True)
        detail = "The database is unavailable or not migrated."
        return ApiError(503, detail, title="Not ready").to_response()
    expected = _schema_heads(str(migrations_dir()))
    if current != expected:
        detail = "The database schema is not at the newest migration: run `commentsvc db upgrade`."
        return ApiError(503, detail, title="Not ready").to_response()
    return jsonify({"status": "ok", "database": "ok", "schema": sorted(current)})
