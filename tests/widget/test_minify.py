"""The widget's scripts are minified in a helper process (commentsvc.minify)."""

from __future__ import annotations

import pytest

from commentsvc.minify import MinifyError, minify_script, minify_scripts

SCRIPT = (
    "/*! widget 1 */\n"
    "function greet(name) {\n  var greeting = 'Hello, ' + name;\n  return greeting;\n}\n"
)


def test_the_helper_minifies_each_script_as_in_process() -> None:
    other = "var total = 0; // running\nfor (var i = 0; i < 3; i++) { total += i; }\n"
    minified = minify_scripts([SCRIPT, other])
    assert minified == [minify_script(SCRIPT), minify_script(other)]
    assert minified[0].startswith("/*! widget 1 */\n")
    assert "greeting" not in minified[0]  # a local name shortened
    assert len(minified[1]) < len(other)


def test_a_script_the_parser_refuses_is_an_error_naming_the_helpers_complaint() -> None:
    with pytest.raises(MinifyError, match="minifying the widget failed") as raised:
        minify_scripts(["function ( {"])
    assert "Error" in str(raised.value)  # the helper's own traceback, not an empty message
