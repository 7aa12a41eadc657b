"""Comment bodies in a site's markup (DESIGN §10): the Markdown subset, exactly.

Each construct of the subset, each construct left out (and what it becomes), link targets
however they are spelled, nested emphasis; then properties over any text in both markups,
and a time budget on inputs built to be slow.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from hypothesis import example, given, note, settings
from hypothesis import strategies as st

from commentsvc.markup import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    LINK_SCHEMES,
    MAX_NESTING,
    Markup,
    link_targets,
    render,
    render_markdown,
    visible_text,
)
from commentsvc.settings import MAX_BODY_LIMIT
from commentsvc.text import LINK_REL, render_body


def link(href: str, text: str | None = None) -> str:
    return f'<a href="{href}" rel="{LINK_REL}">{href if text is None else text}</a>'


SUBSET = [
    ("*em* and _em_", "<p><em>em</em> and <em>em</em></p>"),
    ("**strong** and __strong__", "<p><strong>strong</strong> and <strong>strong</strong></p>"),
    ("`code`", "<p><code>code</code></p>"),
    ("``a ` b``", "<p><code>a ` b</code></p>"),
    ("`<script>alert(1)</script>`", "<p><code>&lt;script&gt;alert(1)&lt;/script&gt;</code></p>"),
    # A fence's language is not kept: nothing would style it.
    ("```python\nprint(1 < 2)\n```", "<pre><code>print(1 &lt; 2)\n</code></pre>"),
    ("~~~\n<b>x</b>\n~~~", "<pre><code>&lt;b&gt;x&lt;/b&gt;\n</code></pre>"),
    ("> quoted\n> text", "<blockquote>\n<p>quoted<br>\ntext</p>\n</blockquote>"),
    ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
    ("1. one\n2. two", "<ol>\n<li>one</li>\n<li>two</li>\n</ol>"),
    ("3. three\n4. four", '<ol start="3">\n<li>three</li>\n<li>four</li>\n</ol>'),
    ("- a\n  - nested", "<ul>\n<li>a\n<ul>\n<li>nested</li>\n</ul>\n</li>\n</ul>"),
    ("> - quoted list", "<blockquote>\n<ul>\n<li>quoted list</li>\n</ul>\n</blockquote>"),
    (
        "1. one\n\n   more\n2. two",
        "<ol>\n<li>\n<p>one</p>\n<p>more</p>\n</li>\n<li>\n<p>two</p>\n</li>\n</ol>",
    ),
    # Line breaks as in plain text: one is a <br>, a blank line a new paragraph.
    ("line one\nline two", "<p>line one<br>\nline two</p>"),
    ("para one\n\npara two", "<p>para one</p>\n<p>para two</p>"),
    ("a\\\nb", "<p>a<br>\nb</p>"),
    ("\\*not emphasis\\*", "<p>*not emphasis*</p>"),
    # Links: inline, autolinks, bare URLs (the same ones plain text links).
    (
        "[a link](https://example.com/path?q=1&r=2)",
        f"<p>{link('https://example.com/path?q=1&amp;r=2', 'a link')}</p>",
    ),
    ("[mail me](mailto:ada@example.com)", f"<p>{link('mailto:ada@example.com', 'mail me')}</p>"),
    ("<https://example.com>", f"<p>{link('https://example.com')}</p>"),
    ("<ada@example.com>", f"<p>{link('mailto:ada@example.com', 'ada@example.com')}</p>"),
    ("see https://example.com/a.", f"<p>see {link('https://example.com/a')}.</p>"),
    ("**https://example.com/a**", f"<p><strong>{link('https://example.com/a')}</strong></p>"),
    (
        "[**bold** link](https://example.com)",
        f"<p>{link('https://example.com', '<strong>bold</strong> link')}</p>",
    ),
    # A title is not kept.
    ('[x](https://example.com "title")', f"<p>{link('https://example.com', 'x')}</p>"),
    # A bare URL inside a link's text is not a second link; one in brackets stops at them.
    (
        "[see https://a.example](https://b.example)",
        f"<p>{link('https://b.example', 'see https://a.example')}</p>",
    ),
    ("[see https://a.example/x] more", f"<p>[see {link('https://a.example/x')}] more</p>"),
    ("xhttps://example.com", "<p>xhttps://example.com</p>"),
]

NESTED_EMPHASIS = [
    ("***both***", "<p><em><strong>both</strong></em></p>"),
    ("*a **b** c*", "<p><em>a <strong>b</strong> c</em></p>"),
    ("**a *b* c**", "<p><strong>a <em>b</em> c</strong></p>"),
    ("_a **b**_", "<p><em>a <strong>b</strong></em></p>"),
    ("*a *b* c*", "<p><em>a <em>b</em> c</em></p>"),
    ("**a *b **c** d* e**", "<p><strong>a <em>b <strong>c</strong> d</em> e</strong></p>"),
    # Overlapping runs resolve as CommonMark says: closers pair with the nearest opener.
    ("*a **b* c**", "<p><em>a <em><em>b</em> c</em></em></p>"),
]

EXCLUDED = [
    ("# Heading", "<p># Heading</p>"),
    ("###### Six", "<p>###### Six</p>"),
    ("Title\n=====", "<p>Title<br>\n=====</p>"),
    ("Title\n-----", "<p>Title<br>\n-----</p>"),
    ("---", "<p>---</p>"),
    ("***", "<p>***</p>"),
    ("    indented code", "<p>indented code</p>"),
    # An image becomes a link to it.
    (
        "![alt](https://example.com/i.png)",
        f"<p>!{link('https://example.com/i.png', 'alt')}</p>",
    ),
    # Raw HTML shows as typed.
    ("<b>bold</b>", "<p>&lt;b&gt;bold&lt;/b&gt;</p>"),
    ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"),
    ("<img src=x onerror=alert(1)>", "<p>&lt;img src=x onerror=alert(1)&gt;</p>"),
    ("<div>\nblock\n</div>", "<p>&lt;div&gt;<br>\nblock<br>\n&lt;/div&gt;</p>"),
    ("<!-- comment -->", "<p>&lt;!-- comment --&gt;</p>"),
    (
        '<a href="https://example.com">x</a>',
        f'<p>&lt;a href="{link("https://example.com")}"&gt;x&lt;/a&gt;</p>',
    ),
    # Reference definitions stay, as the footnotes of plain text they look like.
    (
        "[ref][1]\n\n[1]: https://example.com",
        f"<p>[ref][1]</p>\n<p>[1]: {link('https://example.com')}</p>",
    ),
    ("| a | b |\n|---|---|\n| 1 | 2 |", "<p>| a | b |<br>\n|---|---|<br>\n| 1 | 2 |</p>"),
    ("~~strike~~", "<p>~~strike~~</p>"),
    # Entities show as typed, and so does typography.
    ("&amp; &copy; &#42;", "<p>&amp;amp; &amp;copy; &amp;#42;</p>"),
    ("&#x202e;", "<p>&amp;#x202e;</p>"),
    ("\"quotes\" -- 'single' ...", "<p>\"quotes\" -- 'single' ...</p>"),
]

LINK_TARGETS = [
    # Refused: the link stays text, as typed.
    ("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>"),
    ("[x](JaVaScRiPt:alert(1))", "<p>[x](JaVaScRiPt:alert(1))</p>"),
    ("[x](java&#x09;script:alert(1))", "<p>[x](java&amp;#x09;script:alert(1))</p>"),
    ("[x](&#106;avascript:alert(1))", "<p>[x](&amp;#106;avascript:alert(1))</p>"),
    ("[x](  javascript:alert(1))", "<p>[x](  javascript:alert(1))</p>"),
    ("[x](\njavascript:alert(1))", "<p>[x](<br>\njavascript:alert(1))</p>"),
    ("[x](<javascript:alert(1)>)", "<p>[x](&lt;javascript:alert(1)&gt;)</p>"),
    ("[x](<java script:alert(1)>)", "<p>[x](&lt;java script:alert(1)&gt;)</p>"),
    ("[x](java\\\nscript:alert(1))", "<p>[x](java<br>\nscript:alert(1))</p>"),
    ("<javascript:alert(1)>", "<p>&lt;javascript:alert(1)&gt;</p>"),
    ("javascript:alert(1)", "<p>javascript:alert(1)</p>"),
    ("[x](data:text/html;base64,PHNjcmlwdD4=)", "<p>[x](data:text/html;base64,PHNjcmlwdD4=)</p>"),
    ("[x](vbscript:msgbox(1))", "<p>[x](vbscript:msgbox(1))</p>"),
    ("[x](//evil.example/)", "<p>[x](//evil.example/)</p>"),
    ("[x](/relative/path)", "<p>[x](/relative/path)</p>"),
    ("[x](relative)", "<p>[x](relative)</p>"),
    ("[x](#top)", "<p>[x](#top)</p>"),
    ("[x](ftp://example.com/)", "<p>[x](ftp://example.com/)</p>"),
    ("<ftp://example.com>", "<p>&lt;ftp://example.com&gt;</p>"),
    # Nor a link to nowhere: a target the sanitizer would strip is no link.
    ("[x](http://#)", "<p>[x](http://#)</p>"),
    ("<https://?>", "<p>&lt;https://?&gt;</p>"),
    ("see http://# here", "<p>see http://# here</p>"),
    # Allowed, however spelled; what could break out of the attribute is encoded.
    ("[x](HTTPS://EXAMPLE.COM)", f"<p>{link('HTTPS://EXAMPLE.COM', 'x')}</p>"),
    ("[x](http&#58;//example.com)", f"<p>{link('http://example.com', 'x')}</p>"),
    ("[x](https:\\/\\/example.com)", f"<p>{link('https://example.com', 'x')}</p>"),
    ("[x](http://例え.jp/)", f"<p>{link('http://xn--r8jz45g.jp/', 'x')}</p>"),
    (
        '[x](https://example.com/"onmouseover="alert(1))',
        f"<p>{link('https://example.com/%22onmouseover=%22alert(1)', 'x')}</p>",
    ),
    ("[x](mailto:ada@example.com)", f"<p>{link('mailto:ada@example.com', 'x')}</p>"),
]


@pytest.mark.parametrize(
    ("body", "expected"), [*SUBSET, *NESTED_EMPHASIS, *EXCLUDED, *LINK_TARGETS]
)
def test_markdown_renders_exactly(body: str, expected: str) -> None:
    assert render(body, Markup.MARKDOWN) == expected


@pytest.mark.parametrize(
    "body", ["", "plain", "*not* markdown\n\nhttps://example.com/a.", "<b>&amp;</b>", "# x"]
)
def test_text_is_rendered_as_it_always_was(body: str) -> None:
    assert render(body, Markup.TEXT) == render_body(body)


def test_the_empty_body_renders_empty_in_both_markups() -> None:
    assert render("", Markup.MARKDOWN) == render("", Markup.TEXT) == ""


def test_the_parser_runs_the_subsets_rules_and_no_other() -> None:
    from commentsvc.markup import _parser

    assert _parser().get_active_rules() == {
        "core": ["normalize", "block", "inline", "text_join"],
        "block": ["fence", "blockquote", "list", "paragraph"],
        "inline": [
            "text",
            "bare_url",
            "newline",
            "escape",
            "backticks",
            "emphasis",
            "link",
            "autolink",
        ],
        "inline2": ["balance_pairs", "emphasis", "fragments_join"],
    }


def deep_list(depth: int) -> str:
    return "\n".join("  " * level + f"- item {level}" for level in range(depth))


def test_nesting_within_the_bound_is_markdown() -> None:
    html = render_markdown(deep_list(4) + "\n\nafter")
    assert html.count("<ul>") == 4
    assert "item 3" in html and html.endswith("<p>after</p>")
    quotes = render_markdown("> " * (MAX_NESTING - 1) + "deep\n\nafter")
    assert quotes.count("<blockquote>") == MAX_NESTING - 1
    assert quotes.endswith("<p>after</p>")


@pytest.mark.parametrize(
    "body",
    [
        deep_list(5) + "\n\nafter the list",
        "> " * MAX_NESTING + "deep\n\nafter the quotes",
        "- > " * MAX_NESTING + "deep",
        ">" * MAX_BODY_LIMIT,
    ],
)
def test_deeper_nesting_is_plain_text_and_nothing_is_lost(body: str) -> None:
    assert render_markdown(body) == render_body(body)


def test_link_targets_are_what_links_point_to_in_either_markup() -> None:
    body = "[x](http&#58;//a.example/?q=1&r=2) <mailto:ada@example.com> https://b.example/\"'"
    assert link_targets(render(body, Markup.MARKDOWN)) == [
        "http://a.example/?q=1&r=2",
        "mailto:ada@example.com",
        "https://b.example/",
    ]
    assert link_targets(render("see https://c.example/?a=1&b='x' ok", Markup.TEXT)) == [
        "https://c.example/?a=1&b="
    ]
    assert link_targets(render("[x](javascript:alert(1))", Markup.MARKDOWN)) == []


@pytest.mark.parametrize(
    ("body", "seen"),
    [
        ("bad*wo*rd and **bad**word", "badword and badword"),
        ("`bad`word, [bad](https://a.example/?q=>)word", "badword, badword"),
        ("a &lt;b&gt; &amp;amp; <c>", "a &lt;b&gt; &amp;amp; <c>"),
        ("line\nbreak", "line\n\nbreak"),
        ("- one\n- two\n\n> quoted", "one two quoted"),
        ("```\ncode\n```\nafter", "code after"),
    ],
)
def test_visible_text_runs_inline_elements_on_and_keeps_blocks_apart(body: str, seen: str) -> None:
    assert " ".join(visible_text(render(body, Markup.MARKDOWN)).split()) == " ".join(seen.split())


# -- properties, whatever the input --------------------------------------------------------

_OWN_TAG = re.compile(r"</?(?:" + "|".join(sorted(ALLOWED_TAGS)) + r")(?:\s[^<>]*)?>")


@dataclass
class Rendered:
    """What an HTML fragment holds: its tags with their attributes, and those still open."""

    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    open: list[str] = field(default_factory=list)


class AllowListParser(HTMLParser):
    """Parse rendered HTML, refusing anything outside the allow-list."""

    VOID = frozenset({"br"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rendered = Rendered()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in ALLOWED_TAGS, f"<{tag}> is not allowed"
        values = dict(attrs)
        assert len(values) == len(attrs), f"repeated attribute: {attrs}"
        allowed = ALLOWED_ATTRIBUTES.get(tag, frozenset()) | ({"rel"} if tag == "a" else set())
        assert set(values) <= allowed, f"<{tag}> with {attrs}"
        if tag == "a":
            assert values.get("rel") == LINK_REL, attrs
            href = values.get("href")
            assert href, attrs
            scheme = re.match(r"([a-z][a-z0-9+.-]*):", href, re.IGNORECASE)
            assert scheme is not None and scheme.group(1).lower() in LINK_SCHEMES, href
            assert "a" not in self.rendered.open, "a link inside a link"
        if tag == "ol" and "start" in values:
            assert (values["start"] or "").isdigit(), attrs
        self.rendered.tags.append((tag, values))
        if tag not in self.VOID:
            self.rendered.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise AssertionError(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        assert self.rendered.open and self.rendered.open[-1] == tag, (tag, self.rendered.open)
        self.rendered.open.pop()

    def handle_comment(self, data: str) -> None:
        raise AssertionError(f"comment <!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        raise AssertionError(f"declaration <!{decl}>")

    def handle_pi(self, data: str) -> None:
        raise AssertionError(f"processing instruction <?{data}>")

    def unknown_decl(self, data: str) -> None:
        raise AssertionError(f"declaration <![{data}]>")


class ReaderText(HTMLParser):
    """The text a reader sees in rendered HTML, read by a real parser: the text of inline
    elements runs on, blocks and line breaks begin a new line."""

    BREAKS = frozenset({"p", "br", "pre", "blockquote", "ul", "ol", "li"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self.handle_starttag(tag, [])

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def reader_text(html: str) -> str:
    parser = ReaderText()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def assert_only_allowed(html: str) -> Rendered:
    parser = AllowListParser()
    parser.feed(html)
    parser.close()
    assert not parser.rendered.open, f"left open: {parser.rendered.open}"
    outside_tags = _OWN_TAG.sub("", html)
    assert "<" not in outside_tags and ">" not in outside_tags, outside_tags
    assert not re.search(r"&(?!(?:amp|lt|gt|quot|nbsp|#\d+|#x[0-9a-fA-F]+);)", outside_tags), html
    return parser.rendered


#: Pieces of Markdown, HTML and URLs, so that random text meets the parser's paths often.
MARKUP_PIECES = st.sampled_from(
    [
        "*", "**", "***", "_", "__", "`", "``", "```", "~~~", "\n", "\n\n", "  \n", "\\",
        "> ", ">", "- ", "* ", "+ ", "1. ", "3) ", "    ", "\t", "# ", "---", "===", "|",
        "[", "]", "(", ")", "![", "](", "]: ", "<", ">", "</", "<b>", "<script>", "<!--",
        "-->", '"', "'", "&", "&amp;", "&#106;", "&#x09;", "&#58;", " ", "x", "é",
        "http://", "https://", "HTTPS://", "http://a.example/", "https://b.example/x_(y)",
        "mailto:", "ada@example.com", "javascript:", "JaVaScRiPt:", "data:", "vbscript:",
        "//", "#", "?", "=", ";", "\u202e", "\u0000", "\r\n",
    ]
)  # fmt: skip
ANY_CHARACTERS = st.text(st.characters(exclude_categories=()), max_size=12)
COMMENT_TEXT = st.lists(st.one_of(MARKUP_PIECES, ANY_CHARACTERS), max_size=40).map("".join)


@settings(max_examples=1500, derandomize=True, database=None, deadline=None)
@given(body=st.one_of(COMMENT_TEXT, st.text()), markup=st.sampled_from(Markup))
@example(body="[x](java&#x09;script:alert(1)) <a href=x onclick=y>", markup=Markup.MARKDOWN)
@example(body='[x](https://a.example/"><script>)', markup=Markup.MARKDOWN)
@example(body='<https://a.example/"onmouseover=x>', markup=Markup.MARKDOWN)
@example(body="```\n</code></pre><script>\n```", markup=Markup.MARKDOWN)
@example(body="[[[[[[[[[[[[x](https://a.example)", markup=Markup.MARKDOWN)
@example(body="see http://# and https://a:x/ and <https://?>", markup=Markup.MARKDOWN)
def test_any_text_renders_to_allowed_tags_and_attributes_only(body: str, markup: Markup) -> None:
    note(f"render({body!r}, {markup})")
    html = render(body, markup)
    rendered = assert_only_allowed(html)
    hrefs = [values["href"] for tag, values in rendered.tags if tag == "a"]
    assert link_targets(html) == hrefs
    assert visible_text(html) == reader_text(html)


# -- a time budget: one render stays bounded, whatever the body -----------------------------

#: Far above what a render takes (tens of milliseconds at worst): a guard against a
#: catastrophic (quadratic or worse) case, not a benchmark.
BUDGET_SECONDS = 0.2


def longest(piece: str) -> str:
    """``piece`` repeated to the longest body any configuration accepts."""
    return (piece * (MAX_BODY_LIMIT // len(piece) + 1))[:MAX_BODY_LIMIT]


PATHOLOGICAL = {
    "quote run": longest(">"),
    "quote lines": longest("> > > > > > > > > > > > x\n"),
    "list run": longest("- "),
    "nested lists": "\n".join("  " * n + "- x" for n in range(MAX_BODY_LIMIT // 8))[
        :MAX_BODY_LIMIT
    ],
    "star run": longest("*"),
    "star letter": longest("*a"),
    "letter star": longest("a*"),
    "underscore letter": longest("_a"),
    "emphasis opened": longest("*a **"),
    "bracket run": longest("["),
    "brackets closed late": "[" * (MAX_BODY_LIMIT // 2) + "]" * (MAX_BODY_LIMIT // 2),
    "link openers": longest("[a]("),
    "empty links": longest("[]("),
    "nested link texts": "[" * 1000 + "x" + "](https://a.example)" * 200,
    "bare urls to nowhere": longest("https://a.example)]("),
    "bare urls with a backslash": longest("https://a\\"),
    "bare urls with a bad port": longest("https://a:x/"),
    "backtick run": longest("`"),
    "backticks mixed": longest("`a``"),
    "angle run": longest("<"),
    "autolink openers": longest("<a:"),
    "fences": longest("```\n"),
    "line breaks": longest("a\n"),
    "urls": longest("https://a.example/ "),
    "url with brackets": "https://a.example/" + longest("(")[:-20],
    "schemes": longest("http:"),
    "scheme slashes": longest("https://"),
    "escapes": longest("\\*"),
    "titles": longest('[a](https://x "'),
    "everything": longest("*[`>_<\\!&"),
}


@pytest.mark.parametrize("body", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
@pytest.mark.parametrize("markup", list(Markup))
def test_one_render_stays_within_its_budget(body: str, markup: Markup) -> None:
    assert len(body) <= MAX_BODY_LIMIT
    took = []
    for _ in range(3):  # the best of three: a pause of the machine is not the renderer's
        started = time.perf_counter()
        html = render(body, markup)
        took.append(time.perf_counter() - started)
    assert min(took) < BUDGET_SECONDS, f"{min(took):.3f} s"
    assert_only_allowed(html)
    started = time.perf_counter()
    visible_text(html)  # what the word blocklist reads on Markdown sites
    assert time.perf_counter() - started < BUDGET_SECONDS
