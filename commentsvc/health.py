"""Liveness and readiness probes."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from commentsvc.errors import ApiError
from commentsvc.extensions import db, migrations_folder

bp = Blueprint("health", __name__)


@cache
def schema_heads(directory: str) -> frozenset[str]:
    """The head revisions of the migrations in ``directory``: those no other revision
    revises. Read from each script's ``revision`` and ``down_revision`` as written, without
    Alembic, whose import (about 11 MiB with Mako) a serving worker would otherwise carry for
    this one question; a test holds it to Alembic's own answer."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in sorted(Path(directory, "versions").glob("*.py")):
        names = _assigned(ast.parse(script.read_bytes(), str(script)))
        revision = names.get("revision")
        if isinstance(revision, str):
            revisions.add(revision)
            down = names.get("down_revision")
            if isinstance(down, str):
                revised.add(down)
            elif isinstance(down, tuple | list):
                revised.update(str(each) for each in down)
    return frozenset(revisions - revised)


def _assigned(module: ast.Module) -> dict[str, object]:
    """The module's top-level names assigned a literal (``name = …`` or ``name: T = …``)."""
    found: dict[str, object] = {}
    for node in module.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            try:
                found[target.id] = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError):  # not a literal
                continue
    return found


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
    expected = schema_heads(migrations_folder(current_app))
    if current != expected:
        detail = "The database schema is not at the newest migration: run `commentsvc db upgrade`."
        return ApiError(503, detail, title="Not ready").to_response()
    return jsonify({"status": "ok", "database": "ok", "schema": sorted(current)})
