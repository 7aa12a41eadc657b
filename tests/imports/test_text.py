"""Imported HTML as plain text (``commentsvc.imports.text``): the parser-free path for
simple HTML gives exactly what BeautifulSoup and markdownify give, and declines the rest."""

from __future__ import annotations

from html.entities import html5

import pytest
from hypothesis import example, given, note, settings
from hypothesis import strategies as st

from commentsvc.imports.text import (
    html_to_text,
    newlines_as_html,
    parsed_html_to_text,
    plain_html_to_text,
)

#: HTML the parser-free path takes, and the text both paths give.
SIMPLE = [
    ("plain words", "plain words"),
    ("", ""),
    ("  \n\t ", ""),
    ("<p>One</p><p>Two</p>", "One\n\nTwo"),
    ("<p>line one<br>line two</p>", "line one\nline two"),
    ("<p>a<br/>b<br />c</p>", "a\nb\nc"),
    ("<p> padded <br> lines </p>", "padded\n lines"),
    ("<p>a</p>\n\n<p>b</p>", "a\n\nb"),
    ("text <p>then a paragraph</p> and text", "text\n\nthen a paragraph\n\nand text"),
    ("<p></p><p> </p><p>&nbsp;</p><p>x</p>", "x"),
    ("<p>a<br><br><br><br>b</p>", "a\n\nb"),
    ("<p>Fish &amp; chips</p>", "Fish & chips"),
    ("&amp;lt;script&amp;gt;", "&lt;script&gt;"),
    ("&lt;b&gt;not bold&lt;/b&gt;", "<b>not bold</b>"),
    ("a&nbsp;b &nbsp; c", "a\xa0b \xa0 c"),
    (
        "&#8217;quoted&#8217; &#x201C;double&#X201D; &#65;&#x42;",
        "\u2019quoted\u2019 \u201cdouble\u201d AB",
    ),
    ("&AMP; &Tab;tab &NewLine;newline &copy; &hellip;", "& tab\nnewline © …"),
    ("Q & A, a &, & b", "Q & A, a &, & b"),
    ("fish &", "fish &"),
    ("a > b and c >= d", "a > b and c >= d"),
    ("> quoted line\n> another", "> quoted line\n> another"),
    ("one\ntwo\n\n\nthree", "one\ntwo\nthree"),
    ("one\r\ntwo\rthree", "one\ntwo\nthree"),
    ("tabs\tand   spaces", "tabs and spaces"),
    ("<p>\u3000ideographic\u3000</p>", "ideographic"),
    ("<em>emphasis</em> <strong>strong</strong> <b>b</b> <i>i</i>", "emphasis strong b i"),
    ("<code>x = 1</code> <del>gone</del> <s>s</s> <strike>k</strike>", "x = 1 gone s k"),
    ("<sub>2</sub><sup>3</sup> <kbd>Ctrl</kbd> <cite>Ada</cite>", "23 Ctrl Ada"),
    ("a <em> spaced </em> b", "a  spaced  b"),
    ("<em></em>", ""),
    ('<a href="https://ada.example/notes">my notes</a>', "my notes (https://ada.example/notes)"),
    (
        '<a href="https://x.example/?a=1&amp;b=2" rel="nofollow ugc">q</a>',
        "q (https://x.example/?a=1&b=2)",
    ),
    ('<a href="https://x.example/">https://x.example/</a>', "https://x.example/"),
    ('<a href="https://x.example/long">x.example/long</a>', "https://x.example/long"),
    ('<a href="mailto:ada@example.com">mail me</a>', "mail me (mailto:ada@example.com)"),
    ('<a href="javascript:alert(1)">click</a>', "click"),
    ('<a href="">nothing</a> <a href="https://x.example/"></a>', "nothing https://x.example/"),
    ('<a href="https://x.example/"><em>nested</em> words</a>', "nested words (https://x.example/)"),
    ("<blockquote>quoted</blockquote>reply", "> quoted\n\nreply"),
    ("<blockquote><p>one</p><p>two</p></blockquote>", "> one\n>\n> two"),
    ("<p><blockquote>in a paragraph</blockquote></p>", "> in a paragraph"),
    ("<blockquote> </blockquote>after", "after"),
    ("<p>a<p>nested</p>b</p>", "a\n\nnested\n\nb"),
    ("<em>a<p>block in inline</p>b</em>", "a\n\nblock in inline\n\nb"),
    ("Ünïcödé 李小龍 \U0001f600", "Ünïcödé 李小龍 \U0001f600"),
    ("*not* _markdown_ # 1. [x](y) `z`", "*not* _markdown_ # 1. [x](y) `z`"),
]

#: HTML the parser-free path leaves to markdownify.
DECLINED = [
    "a < b",
    "a <",
    "1<2",
    "<div>block</div>",
    "<P>upper case</P>",
    "<p class='x'>attributes</p>",
    "<a href='single'>quotes</a>",
    '<a title="t" href="https://x.example/">other attributes</a>',
    "<em>not closed",
    "closed</em>",
    "<b><i>misnested</b></i>",
    "<!-- a comment -->",
    "<script>alert(1)</script>",
    "<img src=x alt=y>",
    "<pre>  kept  </pre>",
    "&foo; unknown",
    "&amp without semicolon",
    "&#150; windows-1252",
    "&#0; &#13; &#10;",
    "&#x110000;",
    "&#12345678;",
    "&#xD800;",
    "AT&T",
    "&#;",
]


@pytest.mark.parametrize(("source", "text"), SIMPLE)
def test_simple_html_needs_no_parser_and_reads_as_markdownify_reads_it(
    source: str, text: str
) -> None:
    assert plain_html_to_text(source) == text
    assert parsed_html_to_text(source) == text
    assert html_to_text(source) == text


@pytest.mark.parametrize("source", DECLINED)
def test_other_html_goes_through_markdownify(source: str) -> None:
    assert plain_html_to_text(source) is None
    assert html_to_text(source) == parsed_html_to_text(source)


def test_a_wordpress_comment_takes_the_fast_path() -> None:
    content = (
        "First line &amp; more\nsecond line\n\n"
        'A <a href="https://ada.example/notes" rel="nofollow ugc">link</a> &#8217;quoted&#8217;'
        " <strong>bold</strong>\n\n<blockquote>a quote</blockquote>"
    )
    source = newlines_as_html(content)
    expected = (
        "First line & more\nsecond line\n\n"
        "A link (https://ada.example/notes) \u2019quoted\u2019 bold\n\n> a quote"
    )
    assert plain_html_to_text(source) == expected
    assert parsed_html_to_text(source) == expected


def test_every_named_entity_decodes_as_html_parser_decodes_it() -> None:
    sources = [f"x&{name}y" for name in html5 if name.endswith(";")]
    assert [plain_html_to_text(s) for s in sources] == [parsed_html_to_text(s) for s in sources]


@pytest.mark.parametrize("form", ["&#{:d};", "&#x{:x};", "&#X{:X};", "&#{:07d};"])
def test_numeric_references_decode_as_html_parser_decodes_them_or_are_declined(
    form: str,
) -> None:
    codes = [*range(0x200), 0x7FF, 0xD7FF, 0xD800, 0xDFFF, 0xE000, 0xFDD0, 0xFEFF, 0xFFFE]
    codes += [0xFFFF, 0x10000, 0x10FFFF]
    for code in codes:
        source = f"<p>a{form.format(code)}b</p>"
        fast = plain_html_to_text(source)
        assert fast is None or fast == parsed_html_to_text(source), source


FRAGMENTS = st.sampled_from(
    [
        "<p>",
        "</p>",
        "<blockquote>",
        "</blockquote>",
        "<br>",
        "<br/>",
        "<br />",
        "<em>",
        "</em>",
        "<strong>",
        "</strong>",
        "<code>",
        "</code>",
        "<cite>",
        "</cite>",
        '<a href="https://x.example/a?b=1&amp;c=2">',
        '<a href="https://x.example/" rel="nofollow ugc">',
        '<a href=" mailto:m@x.example ">',
        '<a href="x">',
        '<a href="">',
        "</a>",
        "<div>",
        "</div>",
        "<span>",
        "<",
        ">",
        "&",
        "&amp;",
        "&amp;lt;",
        "&lt;",
        "&gt;",
        "&nbsp;",
        "&#8217;",
        "&#x2019;",
        "&#32;",
        "&#10;",
        "&#150;",
        "&copy",
        "&Tab;",
        "&NewLine;",
        "&foo;",
        "&#",
        ";",
        " ",
        "  ",
        "\t",
        "\n",
        "\n\n",
        "\r",
        "\r\n",
        "\x0c",
        "\x0b",
        "\xa0",
        "\u3000",
        "\u2028",
        "\x00",
        "word",
        "Zoë",
        "https://x.example/",
        "…",
        "*",
        "_",
        "#",
        "-",
        "1.",
    ]
)
HTML = st.lists(st.one_of(FRAGMENTS, st.text(max_size=4)), max_size=30).map("".join)


@settings(max_examples=3000, derandomize=True, database=None, deadline=None)
@given(source=HTML)
@example(source="<p> <em> a </em> </p>")
@example(source="<blockquote>\n<p>a</p>\n</blockquote>\n<p>b</p>")
@example(source="x<br>\n<br>\ny")
@example(source="&NewLine;&NewLine;<p>&Tab;</p>")
def test_the_fast_path_agrees_with_markdownify_or_declines(source: str) -> None:
    note(f"source={source!r}")
    fast = plain_html_to_text(source)
    if fast is not None:
        assert fast == parsed_html_to_text(source)
    assert html_to_text(source) == parsed_html_to_text(source)


#: Character data the fast path reads: words, whitespace and entities it decodes.
SIMPLE_TEXT = st.lists(
    st.sampled_from(
        [
            "word",
            "Zoë",
            " ",
            "  ",
            "\t",
            "\n",
            "\n\n",
            "\r",
            "\x0c",
            "\xa0",
            "\u3000",
            "&amp;",
            "&amp;lt;",
            "&lt;",
            "&nbsp;",
            "&#8217;",
            "&#x2019;",
            "&#32;",
            "&Tab;",
            "&NewLine;",
            "& ",
            ">",
            "https://x.example/",
        ]
    ),
    max_size=6,
).map("".join)
ELEMENTS = st.sampled_from(
    [
        ("<p>", "</p>"),
        ("<blockquote>", "</blockquote>"),
        ("<em>", "</em>"),
        ("<strong>", "</strong>"),
        ("<code>", "</code>"),
        ('<a href="https://x.example/a?b=1&amp;c=2">', "</a>"),
        ('<a href="https://x.example/" rel="nofollow ugc">', "</a>"),
        ('<a href="x">', "</a>"),
    ]
)
WELL_NESTED = st.recursive(
    SIMPLE_TEXT | st.sampled_from(["<br>", "<br />"]),
    lambda inner: (
        st.lists(inner, max_size=4).map("".join)
        | st.tuples(ELEMENTS, st.lists(inner, max_size=4).map("".join)).map(
            lambda parts: parts[0][0] + parts[1] + parts[0][1]
        )
    ),
    max_leaves=25,
)


@settings(max_examples=2000, derandomize=True, database=None, deadline=None)
@given(source=WELL_NESTED)
def test_well_nested_simple_html_takes_the_fast_path_and_agrees(source: str) -> None:
    note(f"source={source!r}")
    assert plain_html_to_text(source) == parsed_html_to_text(source)
