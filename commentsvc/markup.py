"""Comment bodies to safe HTML in the markup a site chose (DESIGN §3, §10).

``text`` (the default) is :func:`commentsvc.text.render_body`: escaped text, paragraphs,
line breaks and linked bare URLs. ``markdown`` is a subset of CommonMark: emphasis, strong,
inline code, fenced code blocks, block quotes, lists and links to ``http``, ``https`` and
``mailto`` targets; nothing else. markdown-it-py parses it with only the subset's rules on
(an allow-list of rules, so a construct a later release adds stays off), and nh3 (ammonia)
cleans its HTML against an allow-list of tags, attributes and URL schemes as the very last
step: whatever the parser lets through, the output holds nothing else.

Either way a body is rendered once, when it is written (submitted, edited, or its site's
markup changed), and its HTML is stored beside it.
"""

from __future__ import annotations

import html
import re
from enum import StrEnum
from functools import cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.parser_block import ParserBlock
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from markdown_it.utils import PresetType

from commentsvc.text import LINK_REL, render_body, url_at


class Markup(StrEnum):
    """How a site's comments are written (DESIGN §10): plain text, or the Markdown subset."""

    TEXT = "text"
    MARKDOWN = "markdown"


#: Every tag a Markdown body's HTML may hold; the sanitizer drops any other.
ALLOWED_TAGS = frozenset(
    {"p", "br", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a"}
)
#: Every attribute it may hold, by tag: a link's target and an ordered list's first number.
#: A fenced block's language (``class``) is not kept: nothing would style it.
ALLOWED_ATTRIBUTES = {"a": frozenset({"href"}), "ol": frozenset({"start"})}
#: The schemes a link may have; relative and protocol-relative links are refused too.
LINK_SCHEMES = frozenset({"http", "https", "mailto"})

#: How deeply blocks may nest: a quote takes one level, a list two (the list and its item),
#: a paragraph one more, so four levels of lists or nine of quotes. markdown-it drops
#: whatever lies deeper, and the rest of the body with it; such a body is shown as plain
#: text instead (:func:`render_markdown`). The bound also caps markdown-it's lookahead for
#: the end of a link's text, the costliest work on a run of ``[``.
MAX_NESTING = 10

#: The subset, as markdown-it's rules (every rule not named here is off):
#:
#: - block: ``blockquote``, ``fence`` (fenced code), ``list``, ``paragraph``. Off:
#:   ``heading`` and ``lheading`` (no headings), ``html_block`` (no raw HTML), ``code``
#:   (indented code: text pasted with an indent would turn into a code block), ``hr``
#:   (not in the subset: ``---`` stays text), ``reference`` (a line ``[1]: http://…``, the
#:   way plain text writes a footnote, would vanish from the comment), ``table``.
#: - inline: ``autolink`` (``<http://…>``), ``backticks`` (inline code), ``emphasis``,
#:   ``escape`` (``\\*`` for a literal asterisk), ``link``, ``newline`` (with ``breaks``: a
#:   line break is a ``<br>``, as in text), ``text``. Off: ``image`` (``![alt](url)``
#:   becomes ``!`` and a link to the image), ``html_inline`` (no raw HTML: tags show as
#:   typed), ``entity`` (``&amp;`` shows as typed, as in text: readers see the characters
#:   the author typed, which moderators read and the blocklist's words are matched in),
#:   ``strikethrough``, ``linkify`` (bare URLs: :func:`_bare_url`).
#: - core: ``normalize``, ``block``, ``inline``, ``text_join``. Off: ``replacements`` and
#:   ``smartquotes`` (typography), ``linkify``.
_SUBSET: PresetType = {
    "options": {
        "maxNesting": MAX_NESTING,
        "html": False,
        "linkify": False,
        "typographer": False,
        "quotes": "\u201c\u201d\u2018\u2019",
        "xhtmlOut": False,
        "breaks": True,
        "langPrefix": "language-",
        "highlight": None,
    },
    "components": {
        "core": {"rules": ["normalize", "block", "inline", "text_join"]},
        "block": {"rules": ["blockquote", "fence", "list", "paragraph"]},
        "inline": {
            "rules": ["autolink", "backticks", "emphasis", "escape", "link", "newline", "text"],
            "rules2": ["balance_pairs", "emphasis", "fragments_join"],
        },
    },
}

_LINK_SCHEME = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
#: The scheme of a bare URL, at the end of the text read so far (its last five characters).
_SCHEME_BEFORE = re.compile(r"https?$", re.IGNORECASE)
#: Where a URL's authority (``user@host:port``) ends.
_AUTHORITY_END = re.compile(r"[/?#]")
_HREF = re.compile(r'<a href="([^"]*)"')
#: A tag of the sanitizer's output (its attribute values are double-quoted, and may hold a
#: ``>``; its text never holds a bare ``<``), and those of them that break the text.
_TAG = re.compile(r'<(?:[^>"]|"[^"]*")*>')
_BREAK = re.compile(r'</?(?:p|br|pre|blockquote|ul|ol|li)\b(?:[^>"]|"[^"]*")*>')
#: A lone surrogate: no text holds one (input validation refuses it), and no encoder takes it.
_SURROGATE = re.compile("[\ud800-\udfff]")


class _TooDeep(Exception):
    """The body nests blocks deeper than :data:`MAX_NESTING`."""


class _BlockParser(ParserBlock):
    """markdown-it's block parser, which says so where it would drop a body's deeper part."""

    def tokenize(self, state: StateBlock, start_line: int, end_line: int) -> None:
        # The test markdown-it makes before it drops the lines left, on the first of them
        # (the level stays the same for every block of one call).
        line = state.skipEmptyLines(start_line)
        if (
            state.level >= state.md.options.maxNesting
            and line < end_line
            and state.sCount[line] >= state.blkIndent
        ):
            raise _TooDeep
        super().tokenize(state, start_line, end_line)


def _bare_url(state: StateInline, silent: bool) -> bool:
    """Link a bare http(s) URL, the same one plain text links (:func:`url_at`).

    markdown-it stops its text at ``:``; the rule fires there, when ``//`` follows and the
    text just read ends with the scheme. Not inside a link's text, and not when markdown-it
    only looks ahead for the ``]`` that ends a link's text (``silent``): a URL must not
    swallow it.
    """
    position = state.pos
    if silent or state.linkLevel > 0 or not state.src.startswith("://", position):
        return False
    found = _SCHEME_BEFORE.search(state.pending[-5:])
    if found is None:
        return False
    scheme = found.group()
    start = position - len(scheme)
    if state.src[start:position] != scheme:  # read from the source as it stands there
        return False
    url = url_at(state.src, start, state.posMax)
    if url is None:
        return False
    # The authority (host, port) first: an http(s) URL is refused for it, never for its
    # path or query, which are percent-encoded. After a refusal the next scheme starts a
    # new candidate, inside this one: checking only authorities, which never overlap,
    # keeps a body of many refused URLs linear; the whole URL is read once, when taken.
    authority = _AUTHORITY_END.search(url, len(scheme) + 3)
    head = url if authority is None else url[: authority.start()]
    if not state.md.validateLink(state.md.normalizeLink(head)):
        return False
    href = state.md.normalizeLink(url)
    if not state.md.validateLink(href):
        return False
    state.pending = state.pending[: -len(scheme)]
    token = state.push("link_open", "a", 1)
    token.attrs = {"href": href}
    token.markup, token.info = "linkify", "auto"
    token = state.push("text", "", 0)
    token.content = url
    token = state.push("link_close", "a", -1)
    token.markup, token.info = "linkify", "auto"
    state.pos = start + len(url)
    return True


class _SubsetParser(MarkdownIt):
    """markdown-it with the subset's rules only (:data:`_SUBSET`), bare URLs linked, and
    links only to :data:`LINK_SCHEMES` targets."""

    def __init__(self) -> None:
        super().__init__(_SUBSET)
        self.block = _BlockParser()
        self.configure(_SUBSET)
        self.inline.ruler.before("linkify", "bare_url", _bare_url)

    def validateLink(self, url: str) -> bool:
        """Only links the sanitizer keeps, to ``http``, ``https`` and ``mailto`` targets:
        anything else stays text, as typed, rather than becoming a link to nowhere.

        ``url`` is decoded (entities, backslash escapes) and normalized (percent-encoded),
        so ``java&#x09;script:`` arrives as ``java%09script:`` and is refused here. The
        sanitizer itself says whether it keeps the rest (``http://#`` has no host).
        """
        if _LINK_SCHEME.match(url) is None:
            return False
        kept = _cleaner().clean(f'<a href="{html.escape(url)}"></a>')
        return kept.startswith("<a href=")


@cache
def _parser() -> _SubsetParser:
    return _SubsetParser()


@cache
def _cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        # "*": no attribute on every tag (ammonia's default allows lang and title).
        attributes={"*": set(), **{tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()}},
        url_schemes=set(LINK_SCHEMES),
        url_relative="deny",
        link_rel=LINK_REL,
        strip_comments=True,
    )


def render_markdown(body: str) -> str:
    """Render a body written in the Markdown subset to HTML, sanitized as the last step.

    A body that nests blocks deeper than :data:`MAX_NESTING` is rendered as plain text:
    markdown-it would drop its deeper part, and everything after it. A lone surrogate shows
    as U+FFFD, as markdown-it shows a NUL.
    """
    try:
        parsed = _parser().render(_SURROGATE.sub("\ufffd", body))
    except _TooDeep:
        return render_body(body)
    return _cleaner().clean(parsed).rstrip("\n")


def render(body: str, markup: Markup) -> str:
    """Render a comment body to the HTML stored beside it, in its site's ``markup``."""
    if markup == Markup.MARKDOWN:
        return render_markdown(body)
    return render_body(body)


def link_targets(body_html: str) -> list[str]:
    """The targets of the links in a body rendered by :func:`render` (in either markup), in
    order: what the links really point to, however the body spelled them."""
    return [html.unescape(href) for href in _HREF.findall(body_html)]


def visible_text(body_html: str) -> str:
    """The text a reader sees in a body rendered by :func:`render`: what inline elements
    (emphasis, code, links) hold runs on into the text around them, as on the screen
    (``bad<em>wo</em>rd`` reads "badword"), while blocks and line breaks stay apart."""
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", body_html)))
