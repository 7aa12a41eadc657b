"""``/widget.js``: served with its stylesheet and English, cacheable, revalidated with an ETag,
small; and each language file within a budget of its own."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.widget import (
    CONFIG_PLACEHOLDER,
    CSS_PLACEHOLDER,
    ENGLISH_PLACEHOLDER,
    PARTS,
    build_widget,
    part_script,
    readable_languages,
    readable_sources,
    translations,
)

#: The gzipped size budget of widget.js with its CSS (DESIGN §10; see benchmarks/README.md).
GZIP_BUDGET = 8 * 1024
#: The gzipped size budget of each part of the widget fetched only where it is needed.
PART_GZIP_BUDGET = 2 * 1024
#: The gzipped size budget of each language file the widget fetches.
LANGUAGE_GZIP_BUDGET = 1024
#: A JavaScript string literal in double quotes, as the readable source writes them.
JS_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
#: A string literal, or (group 1) an unquoted key of an object literal.
JS_STRING_OR_KEY = re.compile(r'"(?:[^"\\\n]|\\.)*"|(\w+):')


def test_widget_is_served_cacheable_with_an_etag(client: FlaskClient) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["ETag"]
    assert "public" in response.headers["Cache-Control"]
    assert "max-age=" in response.headers["Cache-Control"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in response.headers
    again = client.get("/widget.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert again.get_data() == b""


def test_stylesheet_is_inlined_into_the_script(client: FlaskClient) -> None:
    text = client.get("/widget.js").get_data(as_text=True)
    assert CSS_PLACEHOLDER not in text
    assert ":host{all:initial!important" in text
    assert "prefers-color-scheme:dark" in text


def test_widget_takes_its_limits_from_the_servers_configuration(app: Flask) -> None:
    app.config.update(MAX_BODY_LENGTH=4321, MAX_NAME_LENGTH=77, MAX_COUNT_PAGES=9)
    text = app.test_client().get("/widget.js").get_data(as_text=True)
    assert CONFIG_PLACEHOLDER not in text
    written = re.search(r'var \w+=(\{"limits":.*?\});', text)
    assert written, "the widget carries no configuration"
    config = json.loads(written.group(1))
    assert config["limits"]["body"] == 4321
    assert config["limits"]["author_name"] == 77
    assert config["limits"]["author_email"] == app.config["MAX_EMAIL_LENGTH"]
    assert config["countsChunk"] == 9


def test_widget_fits_its_gzip_budget(client: FlaskClient) -> None:
    body = client.get("/widget.js").get_data()
    size = len(gzip.compress(body, compresslevel=9))
    assert size <= GZIP_BUDGET, f"widget.js is {size} bytes gzipped, budget {GZIP_BUDGET}"


@pytest.mark.parametrize("lang", sorted(translations().bodies))
def test_each_language_file_fits_its_gzip_budget(client: FlaskClient, lang: str) -> None:
    response = client.get(f"/widget/i18n/{lang}.{translations().version}.json")
    assert response.status_code == 200
    size = len(gzip.compress(response.get_data(), compresslevel=9))
    assert size <= LANGUAGE_GZIP_BUDGET, (
        f"{lang}.json is {size} bytes gzipped, budget {LANGUAGE_GZIP_BUDGET}"
    )


def test_widget_is_served_minified_with_every_string_intact(client: FlaskClient) -> None:
    served = client.get("/widget.js").get_data(as_text=True)
    script, css = readable_sources()
    assert len(served) < 0.9 * (len(script) + len(css)), "not minified"
    assert "\n  " not in served, "indentation is served"
    # Whitespace and comments go; no string the reader sees may change.
    code = re.sub(r"^\s*//.*$", "", script, flags=re.M)  # comments quote words too
    literals = set(JS_STRING.findall(code)) - {CSS_PLACEHOLDER, CONFIG_PLACEHOLDER}
    literals -= {ENGLISH_PLACEHOLDER}
    assert len(literals) > 100
    missing = sorted(literal for literal in literals if literal not in served)
    assert missing == []


def test_english_is_written_into_the_widget(client: FlaskClient) -> None:
    served = client.get("/widget.js").get_data(as_text=True)
    assert ENGLISH_PLACEHOLDER not in served
    # The first object literal whose first key is the first of en.json (names are minified).
    english = readable_languages()["en"]
    found = re.search(rf"var \w+=(\{{{next(iter(english))}:)", served)
    assert found, "the widget carries no English"
    # Keys are written unquoted (identifiers); quoted, the literal is en.json, in its order.
    quoted = JS_STRING_OR_KEY.sub(
        lambda m: f'"{m[1]}":' if m[1] else m[0], served[found.start(1) :]
    )
    written, _ = json.JSONDecoder().raw_decode(quoted)
    assert written == english
    assert list(written) == list(english)


def test_the_widget_uses_no_text_english_lacks() -> None:
    script, _ = readable_sources()
    used = set(re.findall(r"\bt\.(\w+)", script))
    assert {"heading", "post", "count", "none"} <= used
    assert used - set(readable_languages()["en"]) == set()


def test_widget_defines_no_global_names(app: Flask) -> None:
    text = build_widget(app.config).body.decode()
    # One IIFE after the banner; nothing assigned to window.*.
    banner = re.match(r"/\*!.*?\*/\s*", text, re.S)
    assert banner, "no /*! banner"
    code = text[banner.end() :].strip()
    assert code.startswith("(function(){"), code[:40]
    assert code.endswith("})();"), code[-40:]
    assert not re.search(r"window\.[A-Za-z_$][\w$]*\s*=[^=]", text)


def test_widget_never_uses_inner_html_or_eval(app: Flask) -> None:
    texts = [build_widget(app.config).body.decode()]
    texts += [part_script(name).body.decode() for name in PARTS]
    for text in texts:
        for dangerous in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function"):
            assert dangerous not in text


@pytest.mark.parametrize("name", PARTS)
def test_each_part_is_served_by_its_version_for_a_year(client: FlaskClient, name: str) -> None:
    version = part_script(name).version
    widget = client.get("/widget.js").get_data(as_text=True)
    config = re.search(r'var \w+=(\{"limits":.*?\});', widget)
    assert config and json.loads(config.group(1))["parts"][name] == version
    response = client.get(f"/widget/{name}.{version}.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.cache_control.max_age == 365 * 24 * 3600
    assert response.cache_control.immutable
    again = client.get(f"/widget/{name}.{version}.js", headers={"If-None-Match": version})
    assert again.status_code == 304
    # Another version (an old page's script) is not this one: not found, never stale code.
    assert client.get(f"/widget/{name}.00000000.js").status_code == 404


def test_only_the_parts_are_served_as_parts(client: FlaskClient) -> None:
    version = part_script("own").version
    for name in ("widget", "i18n", "../own", "nope"):
        assert client.get(f"/widget/{name}.{version}.js").status_code == 404


@pytest.mark.parametrize("name", PARTS)
def test_each_part_is_small_minified_and_hands_itself_over_in_an_event(name: str) -> None:
    body = part_script(name).body
    assert len(gzip.compress(body, compresslevel=9)) <= PART_GZIP_BUDGET
    text = body.decode()
    assert text.startswith("/*! commentsvc: ")
    assert "\n  " not in text, "indentation is served"
    assert f'new CustomEvent("commentsvc-{name}",' in text
    assert CSS_PLACEHOLDER not in text
    assert not re.search(r"window\.[A-Za-z_$][\w$]*\s*=[^=]", text)


def test_the_own_part_carries_its_styles() -> None:
    assert ".csv-mine>article{" in part_script("own").body.decode()
