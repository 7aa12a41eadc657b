"""``GET /widget.js``: the embeddable widget, its stylesheet, English and limits written in,
with ETag; ``GET /widget/i18n/{lang}.{version}.json``: the widget's words in another language.

The script and stylesheet are kept readable in ``static/`` and minified once per worker,
when the script is first asked for (the scripts in a helper process, see
:mod:`commentsvc.minify`): no build step, and readers download neither
comments nor indentation (DESIGN §10's budget: ≤ 8 KB gzipped with its styles).

Each language is a file ``static/i18n/{lang}.json`` with the keys of ``en.json``. English is
written into the script; every other language is fetched by the widget only on a page that
needs it (DESIGN §10), from a URL named by its content, so a browser keeps it for a year and
a new version is a new URL. Such a file is served as the list of its texts in the order of
English's keys, which the widget knows: a quarter of its size is keys it need not download.
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
from flask import Blueprint, abort, current_app, request
from werkzeug.wrappers import Response

from commentsvc.caching import worker_cache
from commentsvc.minify import minify_scripts
from commentsvc.settings import FIELD_LENGTH_SETTINGS

bp = Blueprint("widget", __name__)

CSS_PLACEHOLDER = '"__WIDGET_CSS__"'
CONFIG_PLACEHOLDER = '"__WIDGET_CONFIG__"'
ENGLISH_PLACEHOLDER = '"__WIDGET_EN__"'
#: The language written into the script; every other one is a file of its own.
DEFAULT_LANGUAGE = "en"
#: Browsers and CDNs may reuse the script this long, then revalidate with the ETag.
MAX_AGE = 300
#: The URLs of the language files and parts change with their content: kept for a year.
LANGUAGE_MAX_AGE = 365 * 24 * 3600
#: Hex digits of the language files' content hash in their URLs.
VERSION_LENGTH = 8
#: Each form field the widget limits, and the setting that limits it.
FIELD_LIMITS = {
    field: FIELD_LENGTH_SETTINGS[field]
    for field in ("body", "author_name", "author_email", "author_url")
}


#: The parts of the widget fetched only where needed: ``static/{name}.js`` with
#: ``static/{name}.css`` (if any) written in.
PARTS = ("markdown", "own")


@dataclass(frozen=True)
class PartScript:
    """A part of the widget as served, and the version in its URL."""

    body: bytes
    version: str


@cache
def part_script(name: str) -> PartScript:
    """A part minified, with its styles, built once per worker; its URL changes with its
    content."""
    files = resources.files("commentsvc.widget").joinpath("static")
    script = _minified()[name]
    styles = files.joinpath(f"{name}.css")
    if styles.is_file():
        script = script.replace(
            CSS_PLACEHOLDER, json.dumps(rcssmin.cssmin(styles.read_text("utf-8")).strip())
        )
    body = script.encode("utf-8")
    return PartScript(body, hashlib.sha256(body).hexdigest()[:VERSION_LENGTH])


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


def readable_languages() -> dict[str, dict[str, Any]]:
    """Every language file of ``static/i18n/`` as kept in the repository, by language tag."""
    folder = resources.files("commentsvc.widget").joinpath("static", "i18n")
    return {
        entry.name.removesuffix(".json"): json.loads(entry.read_text("utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda entry: entry.name)
        if entry.name.endswith(".json")
    }


@dataclass(frozen=True)
class Translations:
    """Every language but English as the widget fetches it: each one's texts in the order
    of English's keys, by language tag; and the version that names them all."""

    bodies: dict[str, bytes]
    version: str


@cache
def translations() -> Translations:
    """The language files as served, built once per worker.

    A text missing from a file is ``null`` (the widget shows English's); the tests see that
    none is. One version names them all and covers English's keys too, so a script that
    orders the keys otherwise asks for another version, and gets a 404 (and English), never
    texts in the wrong places; the script carries one short version, not one per language.
    """
    languages = readable_languages()
    keys = list(languages.pop(DEFAULT_LANGUAGE))
    texts = {lang: [words.get(key) for key in keys] for lang, words in languages.items()}
    bodies = {
        lang: json.dumps(listed, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        for lang, listed in texts.items()
    }
    digest = hashlib.sha256(json.dumps([keys, texts], sort_keys=True).encode("utf-8"))
    return Translations(bodies, digest.hexdigest()[:VERSION_LENGTH])


def js_literal(value: Any) -> str:
    """``value`` (JSON data with identifier keys) as a JavaScript literal, keys unquoted."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{js_literal(item)}" for key, item in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


@cache
def _sources() -> tuple[str, str]:
    """widget.js and widget.css minified."""
    minified_css: str = rcssmin.cssmin(readable_sources()[1])
    return _minified()[MAIN], minified_css.strip()


#: The name of the widget's main script among :func:`_minified`'s.
MAIN = "widget"


@cache
def _minified() -> dict[str, str]:
    """The main script and each part's, minified, by name: in one helper process (see
    :mod:`commentsvc.minify`), once per worker."""
    files = resources.files("commentsvc.widget").joinpath("static")
    names = (MAIN, *PARTS)
    scripts = [files.joinpath(f"{name}.js").read_text("utf-8") for name in names]
    return dict(zip(names, minify_scripts(scripts), strict=True))


def widget_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the widget must know of the server's configuration."""
    return {
        "limits": {field: config[setting] for field, setting in FIELD_LIMITS.items()},
        "countsChunk": config["MAX_COUNT_PAGES"],
        "languages": sorted(translations().bodies),
        "languageVersion": translations().version,
        "parts": {name: part_script(name).version for name in PARTS},
    }


def build_widget(config: Mapping[str, Any]) -> WidgetScript:
    """The script with its stylesheet and English (so the widget is one request) and this
    server's limits written in."""
    script, css = _sources()
    body = script.replace(CSS_PLACEHOLDER, json.dumps(css))
    body = body.replace(ENGLISH_PLACEHOLDER, js_literal(readable_languages()[DEFAULT_LANGUAGE]))
    written = json.dumps(widget_config(config), separators=(",", ":"))
    body = body.replace(CONFIG_PLACEHOLDER, written)
    encoded = body.encode("utf-8")
    return WidgetScript(encoded, hashlib.sha256(encoded).hexdigest()[:32])


def widget_source() -> WidgetScript:
    """The script as this app serves it, built once per worker."""
    return worker_cache("widget", build_widget)


@bp.after_request
def public_file(response: Response) -> Response:
    """The widget's files are public: any page may fetch them (their 404s too, which a host
    page's console then shows as such, not as a CORS error), and they are what they say."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/widget.js")
def widget_js() -> Response:
    script = widget_source()
    response = current_app.response_class(script.body, mimetype="text/javascript")
    response.set_etag(script.etag)
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE
    return response.make_conditional(request)


@bp.get("/widget/<name>.<version>.js")
def part_js(name: str, version: str) -> Response:
    """A part of the widget (``PARTS``); a version other than the current one is not found."""
    if name not in PARTS or version != part_script(name).version:
        abort(404)
    return _versioned_file(part_script(name).body, "text/javascript", version)


@bp.get("/widget/i18n/<name>.json")
def language_file(name: str) -> Response:
    """``{lang}.{version}.json``; a version other than the current one is not found."""
    lang, _, version = name.rpartition(".")
    served = translations()
    if lang not in served.bodies or version != served.version:
        abort(404)
    return _versioned_file(served.bodies[lang], "application/json", version)


def _versioned_file(body: bytes, mimetype: str, version: str) -> Response:
    """A file whose URL names its ``version`` (its content's): cached a year, never
    revalidated before, its version as ETag."""
    response = current_app.response_class(body, mimetype=mimetype)
    response.set_etag(version)
    response.cache_control.public = True
    response.cache_control.max_age = LANGUAGE_MAX_AGE
    response.cache_control.immutable = True
    return response.make_conditional(request)
