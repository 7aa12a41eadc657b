"""``GET /openapi.json``: the OpenAPI 3.1 description of every JSON endpoint."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, Response, jsonify

bp = Blueprint("openapi", __name__)


@cache
def spec() -> dict[str, Any]:
    """The OpenAPI document, read once from the package."""
    text = resources.files("commentsvc.api").joinpath("openapi.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(spec())
