"""Plain text to safe HTML."""

from __future__ import annotations

import pytest

from commentsvc.text import render_body


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("hello", "<p>hello</p>"),
        ("  padded  \n", "<p>padded</p>"),
        ("", ""),
        ("one\ntwo", "<p>one<br>\ntwo</p>"),
        ("one\n\ntwo", "<p>one</p><p>two</p>"),
        ("one\r\n\r\n\r\ntwo", "<p>one</p><p>two</p>"),
        ("one\n   \ntwo", "<p>one</p><p>two</p>"),
        ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"),
        ("\"quotes\" & 'apostrophes'", "<p>&#34;quotes&#34; &amp; &#39;apostrophes&#39;</p>"),
        (
            "see https://example.com/a?b=1&c=2.",
            '<p>see <a href="https://example.com/a?b=1&amp;c=2" rel="nofollow ugc noopener">'
            "https://example.com/a?b=1&amp;c=2</a>.</p>",
        ),
        (
            "(http://example.com/wiki/Foo_(bar))",
            '<p>(<a href="http://example.com/wiki/Foo_(bar)" rel="nofollow ugc noopener">'
            "http://example.com/wiki/Foo_(bar)</a>)</p>",
        ),
        ("javascript:alert(1)", "<p>javascript:alert(1)</p>"),
        ("data:text/html,<b>x</b>", "<p>data:text/html,&lt;b&gt;x&lt;/b&gt;</p>"),
        ("ftp://example.com", "<p>ftp://example.com</p>"),
        ("just http:// here", "<p>just http:// here</p>"),
    ],
)
def test_render_body(text: str, html: str) -> None:
    assert render_body(text) == html


def test_link_cannot_break_out_of_its_attribute() -> None:
    html = render_body('http://x.example/"onmouseover="alert(1)')
    assert 'onmouseover="' not in html
    assert html.count("<a ") == 1


def test_markup_in_a_url_is_escaped() -> None:
    html = render_body("http://x.example/<img src=x onerror=alert(1)>")
    assert "<img" not in html
    assert (
        '<a href="http://x.example/" rel="nofollow ugc noopener">' not in html or "&lt;img" in html
    )
