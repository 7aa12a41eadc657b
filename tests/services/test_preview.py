"""Previewing a comment (DESIGN §10): its text rendered as it would be stored, nothing stored."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from flask import Flask

from commentsvc.markup import Markup
from commentsvc.services.errors import Invalid
from commentsvc.services.preview import preview
from commentsvc.services.sites import PublicSite, get_site, set_markup
from tests.api.test_submit_bad_input import BAD_INPUT, JSON, Bad


def site(slug: str = "news") -> PublicSite:
    found = get_site(slug)
    assert found is not None
    return found


def test_a_preview_is_rendered_in_the_sites_markup(context: None) -> None:
    body = "  *Hello* https://a.example/ <b>  "
    assert preview(site(), body, None) == (
        '<p>*Hello* <a href="https://a.example/" rel="nofollow ugc noopener">'
        "https://a.example/</a> &lt;b&gt;</p>"
    )
    set_markup("news", Markup.MARKDOWN)
    assert preview(site(), body, None) == (
        '<p><em>Hello</em> <a href="https://a.example/" rel="nofollow ugc noopener">'
        "https://a.example/</a> &lt;b&gt;</p>"
    )
    assert preview(site("blog"), "*x*", None) == "<p>*x*</p>"


def _body_cases() -> list[Any]:
    """The bad-input table's cases of a JSON submission refused for its body."""
    return [
        param
        for param in BAD_INPUT
        if param.values[0].field == "body"
        and (param.values[0].json is not None or param.values[0].content_type == JSON)
    ]


def _sent_body(case: Bad, config: Mapping[str, Any]) -> object:
    """The ``body`` a case sends (absent: None, as the API passes it on)."""
    if case.json is not None:
        return dict(case.json(config) if callable(case.json) else case.json).get("body")
    assert case.raw is not None
    return json.loads(case.raw).get("body")


BODY_CASES = _body_cases()


def test_the_table_has_body_cases() -> None:
    assert len(BODY_CASES) >= 10


@pytest.mark.parametrize("case", BODY_CASES)
def test_a_body_is_checked_as_a_submissions_is(
    app: Flask, context: None, comment_count: Callable[[], int], case: Bad
) -> None:
    with pytest.raises(Invalid) as refused:
        preview(site(), _sent_body(case, app.config), None)
    assert set(refused.value.errors) == {"body"}
    assert comment_count() == 0
