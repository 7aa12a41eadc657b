"""Headers the hot reads write straight into the response (commentsvc/responses.py)."""

from __future__ import annotations

import pytest
from flask import Response

from commentsvc.responses import vary_on


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, "Origin"),
        ("Accept-Encoding", "Accept-Encoding, Origin"),
        ("origin", "origin"),
        ("Accept-Encoding, ORIGIN", "Accept-Encoding, ORIGIN"),
        ("Originator", "Originator, Origin"),
    ],
)
def test_vary_names_each_header_once(before: str | None, after: str) -> None:
    response = Response()
    if before is not None:
        response.headers["Vary"] = before
    vary_on(response, "Origin")
    assert response.headers.getlist("Vary") == [after]
    assert set(response.vary) == {part.strip() for part in after.split(",")}
