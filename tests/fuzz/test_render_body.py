"""Properties of the comment renderer (``commentsvc.text.render_body``) on arbitrary text.

What the renderer promises (DESIGN §3), stated exactly:

* The input is normalized first: ``\\r\\n`` and ``\\r`` become ``\\n``, then surrounding
  whitespace (``str.strip``) is removed. Call the result N. An empty N renders as ``""``.
* The output is a sequence of ``<p>`` elements and nothing else; inside them only text,
  ``<br>`` and ``<a href=… rel="nofollow ugc noopener">``; no other tag or attribute.
* The visible text round-trips: the character data of the paragraphs (entities decoded,
  ``<br>`` contributing nothing) are N's paragraphs. N is split at *blank lines*: a line
  break, optional spaces and tabs, a line break, and any whitespace after it (so the next
  paragraph starts at its first non-blank character). Every other character of N is kept,
  in order. Inside a paragraph each ``\\n`` is preceded by a ``<br>``, and there is no other
  ``<br>``.
* A link's ``href`` is an ``http``/``https`` URL equal to the link's visible text, which is
  a bare URL of the input: it begins at a word boundary with ``http://`` or ``https://``
  (any case), holds no whitespace, quote, backtick, ``<``, ``>`` or control character, does
  not end in trailing punctuation (``.,;:!?'"*``) or an unbalanced ``)`` or ``]``, and is
  more than the scheme alone.
* Every bare URL is linked: the text outside links holds no ``http(s)://`` at a word
  boundary followed by a character that a link would have kept.
* Escaping is complete, not just enough for a forgiving parser: outside the renderer's own
  tags, and in ``href``, no ``<``, ``>``, ``"`` or ``'`` appears raw and every ``&`` starts
  one of the entities the escaper writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from hypothesis import example, given, note, settings
from hypothesis import strategies as st

from commentsvc.text import LINK_REL, render_body

#: A paragraph break: a blank line (only spaces and tabs on it) and the whitespace after it.
BLANK_LINE_SEPARATOR = r"\n[ \t]*\n\s*"
URL_FORBIDDEN = "\x00-\x1f\x7f\"'`<>"
#: Characters a link never ends with (unbalanced closing brackets are checked apart).
TRAILING_PUNCTUATION = ".,;:!?'\"*"
#: ``http(s)://`` at a word boundary and a character a link would keep: such text must be linked.
UNLINKED_URL = re.compile(
    rf"\bhttps?://[^\s{URL_FORBIDDEN}{re.escape(TRAILING_PUNCTUATION)})\]]", re.IGNORECASE
)


@dataclass
class Link:
    href: str
    text: str = ""


@dataclass
class Paragraph:
    """A ``<p>``: its text (``<br>`` as nothing), where its ``<br>`` are, and its links."""

    text: str = ""
    breaks: list[int] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    unlinked: list[str] = field(default_factory=list)


class StrictRenderedHtml(HTMLParser):
    """Parse rendered HTML, refusing anything outside the renderer's allow-list."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[Paragraph] = []
        self.open: list[str] = []

    @property
    def paragraph(self) -> Paragraph:
        assert self.open[:1] == ["p"], f"content outside a paragraph: {self.open}"
        return self.paragraphs[-1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "p":
            assert not self.open, f"<p> inside {self.open}"
            assert attrs == [], attrs
            self.paragraphs.append(Paragraph())
            self.open.append("p")
        elif tag == "br":
            assert self.open == ["p"], f"<br> inside {self.open}"
            assert attrs == [], attrs
            self.paragraph.breaks.append(len(self.paragraph.text))
        elif tag == "a":
            assert self.open == ["p"], f"<a> inside {self.open}"
            names = [name for name, _ in attrs]
            assert names == ["href", "rel"], attrs
            values = dict(attrs)
            assert values["rel"] == LINK_REL, attrs
            href = values["href"]
            assert href is not None
            self.paragraph.links.append(Link(href))
            self.open.append("a")
        else:
            raise AssertionError(f"tag <{tag}> is not allowed")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise AssertionError(f"self-closing <{tag}/> is not produced by the renderer")

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        paragraph = self.paragraph
        paragraph.text += data
        if self.open[-1] == "a":
            paragraph.links[-1].text += data
        else:
            paragraph.unlinked.append(data)

    def handle_comment(self, data: str) -> None:
        raise AssertionError(f"comment <!--{data}--> in the output")

    def handle_decl(self, decl: str) -> None:
        raise AssertionError(f"declaration <!{decl}> in the output")

    def handle_pi(self, data: str) -> None:
        raise AssertionError(f"processing instruction <?{data}> in the output")

    def unknown_decl(self, data: str) -> None:
        raise AssertionError(f"declaration <![{data}]> in the output")


#: The renderer's own markup; what lies between (and inside ``href``) is escaped text.
OWN_TAG = re.compile(r'(<p>|</p>|<br>|<a href="([^"]*)" rel="nofollow ugc noopener">|</a>)')
ESCAPED_TEXT = re.compile(r"(?:[^<>&\"']|&(?:amp|lt|gt|#34|#39);)*")


def assert_fully_escaped(html: str) -> None:
    pieces = OWN_TAG.split(html)
    texts, hrefs = pieces[::3], [href for href in pieces[2::3] if href is not None]
    for text in texts + hrefs:
        assert ESCAPED_TEXT.fullmatch(text), (text, html)


def parse(html: str) -> list[Paragraph]:
    parser = StrictRenderedHtml()
    parser.feed(html)
    parser.close()
    assert not parser.open, f"unclosed {parser.open}"
    return parser.paragraphs


def normalized(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def assert_is_bare_url(link: Link) -> None:
    url = link.text
    assert link.href == url, link
    # The scheme as a browser reads it: no leading space or control character to strip first.
    assert re.match(r"https?://", url, re.IGNORECASE), link
    assert url.lower() not in {"http://", "https://"}, link
    assert not re.search(rf"[\s{URL_FORBIDDEN}]", url), link
    assert url[-1] not in TRAILING_PUNCTUATION, link
    for opening, closing in ("()", "[]"):
        assert not (url.endswith(closing) and url.count(opening) < url.count(closing)), link


#: Text that is mostly the interesting characters: markup, entities, URLs, line breaks.
MARKUP_PIECES = st.sampled_from(
    [
        "<",
        ">",
        "&",
        '"',
        "'",
        "`",
        "&amp;",
        "&lt;",
        "&#34;",
        "&#x27;",
        "<script>",
        "</p>",
        "<a href=",
        "<!--",
        "-->",
        "<![CDATA[",
        "javascript:",
        "http://",
        "https://",
        "HTTP://",
        "http://x.example",
        "https://x.example/a?b=1&c=2",
        "www.example.com",
        "(",
        ")",
        "[",
        "]",
        ".",
        ",",
        "!",
        "*",
        "_",
        " ",
        "\t",
        "\n",
        "\r",
        "\r\n",
        "\n\n",
        "\n \t\n",
        "\x00",
        "\x0b",
        "\x0c",
        "\x1f",
        "\x7f",
        "\x85",
        "\xa0",
        "\u2028",
        "\u3000",
        "\ufeff",
        "\ud800",
        "é",
        "\U0001d518",  # outside the Basic Multilingual Plane
    ]
)
ANY_CHARACTERS = st.text(st.characters(exclude_categories=()), max_size=20)
COMMENT_TEXT = st.lists(st.one_of(MARKUP_PIECES, ANY_CHARACTERS), max_size=25).map("".join)


@settings(max_examples=1500, derandomize=True, database=None, deadline=None)
@given(text=st.one_of(COMMENT_TEXT, st.text()))
@example(text='see http://x.example/"onmouseover="alert(1)')
@example(text="http://x.example/<img src=x onerror=alert(1)>")
@example(text="(http://example.com/wiki/Foo_(bar)) and [https://x.example/a]].")
@example(text="one\r\n\r\n\r\ntwo\n \t\n  three\rfour")
@example(text="http://. http://) https://?! HTTPS://X")
@example(text="'http://x.example/a' http://x.example/it's \"https://y.example\" `http://z.example`")
@example(text="a\n\xa0\nb\n\u3000\n\nc\n\x0b\nd")
def test_render_body_allows_only_safe_markup_and_keeps_the_text(text: str) -> None:
    note(f"render_body({text!r})")
    html = render_body(text)
    assert_fully_escaped(html)
    paragraphs = parse(html)
    n = normalized(text)

    if not n:
        assert html == ""
        return
    assert html.startswith("<p>") and html.endswith("</p>"), html

    texts = [paragraph.text for paragraph in paragraphs]
    expected = BLANK_LINE_SEPARATOR.join(re.escape(paragraph) for paragraph in texts)
    assert re.fullmatch(expected, n), (n, texts)
    for paragraph in paragraphs:
        assert paragraph.text, paragraphs
        assert not paragraph.text[0].isspace(), paragraph
        assert not re.search(r"\n[ \t]*\n", paragraph.text), paragraph
        line_starts = [match.end() for match in re.finditer("\n", paragraph.text)]
        assert [position + 1 for position in paragraph.breaks] == line_starts, paragraph
        for link in paragraph.links:
            assert_is_bare_url(link)
        for segment in paragraph.unlinked:
            assert not UNLINKED_URL.search(segment), (segment, paragraph)
