"""The widget's languages (DESIGN §10): every file says everything English says, with the same
placeholders and the plural forms its language has; each is served cacheable across origins
under a URL that changes with its content."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from commentsvc import widget
from commentsvc.widget import (
    DEFAULT_LANGUAGE,
    LANGUAGE_MAX_AGE,
    readable_languages,
    translations,
    widget_config,
)

#: The languages DESIGN §10 asks for, as the widget names them (and their files are named).
REQUIRED = {"en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "ja", "zh-Hans"}
#: Each language's plural categories for cardinal numbers, as CLDR (and so Intl.PluralRules)
#: has them; the browser tests check them against Chromium's own.
PLURAL_CATEGORIES = {
    "en": {"one", "other"},
    "de": {"one", "other"},
    "nl": {"one", "other"},
    "sv": {"one", "other"},
    "fr": {"one", "many", "other"},
    "es": {"one", "many", "other"},
    "it": {"one", "many", "other"},
    "pt": {"one", "many", "other"},
    "pl": {"one", "few", "many", "other"},
    "ja": {"other"},
    "zh-Hans": {"other"},
}
#: The texts with a plural form per category.
PLURAL_KEYS = {"count"}
PLACEHOLDER = re.compile(r"\{(\w+)\}")
#: A language tag as the files are named: language, then optionally script and region.
TAG = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2})?$")

LANGUAGES = readable_languages()
OTHERS = sorted(set(LANGUAGES) - {DEFAULT_LANGUAGE})


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def texts(value: Any) -> list[str]:
    """The strings of one entry: itself, or each of its plural forms."""
    return list(value.values()) if isinstance(value, dict) else [value]


def test_the_widget_speaks_every_language_design_asks_for() -> None:
    assert set(LANGUAGES) >= REQUIRED
    assert set(LANGUAGES) == set(PLURAL_CATEGORIES), "a new language needs its plural categories"
    for lang in LANGUAGES:
        assert TAG.match(lang), f"{lang}.json is not named by a language tag"


@pytest.mark.parametrize("lang", OTHERS)
def test_a_language_has_exactly_the_keys_of_english(lang: str) -> None:
    keys, english = set(LANGUAGES[lang]), set(LANGUAGES[DEFAULT_LANGUAGE])
    assert keys == english, (
        f"{lang}: missing {sorted(english - keys)}, extra {sorted(keys - english)}"
    )


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_text_is_a_string_or_its_plural_forms(lang: str) -> None:
    for key, value in LANGUAGES[lang].items():
        assert re.fullmatch(r"[A-Za-z_]\w*", key), f"{key!r} is not an identifier"
        if key in PLURAL_KEYS:
            assert isinstance(value, dict), f"{lang}.{key}: one form per plural category"
            assert set(value) == PLURAL_CATEGORIES[lang], f"{lang}.{key}: {sorted(value)}"
        else:
            assert isinstance(value, str), f"{lang}.{key}: a string"
        for text in texts(value):
            assert isinstance(text, str) and text == text.strip() and text, f"{lang}.{key}"


@pytest.mark.parametrize("lang", OTHERS)
def test_a_translation_has_the_placeholders_of_english(lang: str) -> None:
    english = LANGUAGES[DEFAULT_LANGUAGE]
    for key, value in LANGUAGES[lang].items():
        expected = set().union(*(placeholders(text) for text in texts(english[key])))
        for text in texts(value):
            assert placeholders(text) == expected, f"{lang}.{key}: {text!r}"


def test_english_counts_in_every_form() -> None:
    # Every plural form shows the number: in French "one" is 0 and 1 alike.
    for lang, words in LANGUAGES.items():
        for form in words["count"].values():
            assert placeholders(form) == {"n"}, f"{lang}: {form!r}"


# --- Served -------------------------------------------------------------------------------


def url(lang: str) -> str:
    return f"/widget/i18n/{lang}.{translations().version}.json"


def test_the_widget_knows_every_language_and_their_version(app: Flask) -> None:
    config = widget_config(app.config)
    assert config["languages"] == OTHERS
    assert re.fullmatch(r"[0-9a-f]{8}", config["languageVersion"])
    served = app.test_client().get("/widget.js").get_data(as_text=True)
    assert json.dumps(config["languages"], separators=(",", ":")) in served
    assert f'"languageVersion":"{config["languageVersion"]}"' in served


@pytest.mark.parametrize("lang", OTHERS)
def test_a_language_file_lists_its_texts_in_the_order_of_englishs_keys(
    client: FlaskClient, lang: str
) -> None:
    response = client.get(url(lang))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == [LANGUAGES[lang][key] for key in LANGUAGES[DEFAULT_LANGUAGE]]
    # Raw UTF-8, not \u escapes: fewer bytes.
    assert "\\u" not in response.get_data(as_text=True)


def test_a_language_file_is_public_cacheable_for_a_year_and_revalidated(
    client: FlaskClient,
) -> None:
    response = client.get(url("de"))
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.cache_control.public
    assert response.cache_control.max_age == LANGUAGE_MAX_AGE
    assert response.cache_control.immutable
    assert "Set-Cookie" not in response.headers
    again = client.get(url("de"), headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert again.get_data() == b""


@pytest.mark.parametrize(
    "path",
    [
        "/widget/i18n/de.00000000.json",  # another version: its texts may sit elsewhere
        "/widget/i18n/de.json",
        "/widget/i18n/tlh.{version}.json",
        "/widget/i18n/en.{version}.json",  # English is in the script
        "/widget/i18n/zh-hans.{version}.json",  # tags as the widget writes them
    ],
)
def test_no_other_file_is_served(client: FlaskClient, path: str) -> None:
    response = client.get(path.format(version=translations().version))
    assert response.status_code == 404
    # Readable across origins: the widget tells a missing file from a network failure.
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_the_version_changes_with_any_text_and_with_englishs_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def version_of(languages: dict[str, dict[str, Any]]) -> str:
        monkeypatch.setattr(widget, "readable_languages", lambda: languages)
        return translations.__wrapped__().version

    copy = json.loads(json.dumps(LANGUAGES))
    assert version_of(copy) == translations().version
    changed = json.loads(json.dumps(LANGUAGES))
    changed["sv"]["reply"] = "Svara nu"
    assert version_of(changed) != translations().version
    reordered = json.loads(json.dumps(LANGUAGES))
    english = reordered[DEFAULT_LANGUAGE]
    reordered[DEFAULT_LANGUAGE] = dict(reversed(list(english.items())))
    assert version_of(reordered) != translations().version
