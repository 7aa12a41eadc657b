"""``GET /openapi.json``: the OpenAPI 3.1 description of every JSON endpoint."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, Response, current_app

from commentsvc.caching import worker_cache
from commentsvc.settings import FIELD_LENGTH_SETTINGS

bp = Blueprint("openapi", __name__)

#: The schemas of submitted and edited comments, whose lengths are this server's settings.
LIMITED_SCHEMAS = ("CommentSubmission", "CommentFormSubmission", "CommentUpdate")


@cache
def spec() -> dict[str, Any]:
    """The OpenAPI document, read once from the package (with the default limits)."""
    text = resources.files("commentsvc.api").joinpath("openapi.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def served_spec(config: Mapping[str, Any]) -> bytes:
    """The document as this server describes itself: its length limits written in."""
    document = copy.deepcopy(spec())
    for name in LIMITED_SCHEMAS:
        properties = document["components"]["schemas"][name]["properties"]
        for field, schema in properties.items():
            setting = FIELD_LENGTH_SETTINGS.get(field)
            if setting is not None and "maxLength" in schema:
                schema["maxLength"] = config[setting]
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


@bp.get("/openapi.json")
def openapi() -> Response:
    body = worker_cache("openapi", served_spec)
    return current_app.response_class(body, mimetype="application/json")
