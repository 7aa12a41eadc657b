"""``GET /widget.js``: the embeddable widget, its stylesheet inlined, with ETag and caching."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources

from flask import Blueprint, current_app, request
from werkzeug.wrappers import Response

bp = Blueprint("widget", __name__)

CSS_PLACEHOLDER = '"__WIDGET_CSS__"'
#: Browsers and CDNs may reuse the script this long, then revalidate with the ETag.
MAX_AGE = 300


@cache
def widget_source() -> tuple[bytes, str]:
    """The script with its stylesheet inlined (so the widget is one request), and its ETag."""
    files = resources.files("commentsvc.widget").joinpath("static")
    script = files.joinpath("widget.js").read_text("utf-8")
    css = files.joinpath("widget.css").read_text("utf-8")
    body = script.replace(CSS_PLACEHOLDER, json.dumps(css.strip())).encode("utf-8")
    return body, hashlib.sha256(body).hexdigest()[:32]


@bp.get("/widget.js")
def widget_js() -> Response:
    body, etag = widget_source()
    response = current_app.response_class(body, mimetype="text/javascript")
    response.set_etag(etag)
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response.make_conditional(request)
