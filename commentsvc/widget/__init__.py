"""``GET /widget.js``: the embeddable widget, its stylesheet and limits written in, with ETag.

The script and stylesheet are kept readable in ``static/`` and minified here, once per
worker, when the script is first asked for: no build step, and readers download neither
comments nor indentation (DESIGN §10's budget: ≤ 8 KB gzipped with its styles).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import rcssmin
import rjsmin
from flask import Blueprint, current_app, request
from werkzeug.wrappers import Response

from commentsvc.caching import worker_cache
from commentsvc.settings import FIELD_LENGTH_SETTINGS

bp = Blueprint("widget", __name__)

CSS_PLACEHOLDER = '"__WIDGET_CSS__"'
CONFIG_PLACEHOLDER = '"__WIDGET_CONFIG__"'
#: Browsers and CDNs may reuse the script this long, then revalidate with the ETag.
MAX_AGE = 300
#: Each form field the widget limits, and the setting that limits it.
FIELD_LIMITS = {
    field: FIELD_LENGTH_SETTINGS[field]
    for field in ("body", "author_name", "author_email", "author_url")
}


@dataclass(frozen=True)
class WidgetScript:
    """The script as served, and its ETag."""

    body: bytes
    etag: str


def readable_sources() -> tuple[str, str]:
    """widget.js and widget.css as kept in the repository."""
    files = resources.files("commentsvc.widget").joinpath("static")
    return files.joinpath("widget.js").read_text("utf-8"), files.joinpath("widget.css").read_text(
        "utf-8"
    )


@cache
def _sources() -> tuple[str, str]:
    """widget.js and widget.css minified; the script keeps its ``/*!`` banner."""
    script, css = readable_sources()
    minified_script: str = rjsmin.jsmin(script, keep_bang_comments=True)
    minified_css: str = rcssmin.cssmin(css)
    return minified_script, minified_css.strip()


def widget_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the widget must know of the server's configuration."""
    return {
        "limits": {field: config[setting] for field, setting in FIELD_LIMITS.items()},
        "countsChunk": config["MAX_COUNT_PAGES"],
    }


def build_widget(config: Mapping[str, Any]) -> WidgetScript:
    """The script with its stylesheet (so the widget is one request) and this server's
    limits written in."""
    script, css = _sources()
    body = script.replace(CSS_PLACEHOLDER, json.dumps(css))
    written = json.dumps(widget_config(config), separators=(",", ":"))
    body = body.replace(CONFIG_PLACEHOLDER, written)
    encoded = body.encode("utf-8")
    return WidgetScript(encoded, hashlib.sha256(encoded).hexdigest()[:32])


def widget_source() -> WidgetScript:
    """The script as this app serves it, built once per worker."""
    return worker_cache("widget", build_widget)


@bp.get("/widget.js")
def widget_js() -> Response:
    script = widget_source()
    response = current_app.response_class(script.body, mimetype="text/javascript")
    response.set_etag(script.etag)
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response.make_conditional(request)
