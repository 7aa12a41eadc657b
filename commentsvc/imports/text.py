"""A source's comment text in the service's own format (DESIGN §9): HTML from a file is
converted to plain text with markdownify (line breaks, paragraphs and link targets kept),
then rendered like any new comment; no markup from a file reaches ``body_html``.

Most imported comments are plain words in paragraphs, with line breaks, entities, a link
or some emphasis. Parsing each of them with BeautifulSoup took 40% of an import's time, so
such HTML takes a path of its own (:func:`plain_html_to_text`) that builds the same small
tree with a regular expression and converts it by markdownify's rules for those elements;
anything else (another tag or attribute, a stray ``<``, an unusual entity, tags that are
not well nested) goes through markdownify. Both give the same text; the tests compare them
on a table of inputs and on generated ones.
"""

from __future__ import annotations

import html
import re
import warnings
from dataclasses import dataclass, field
from html.entities import html5
from typing import Any

from bs4 import MarkupResemblesLocatorWarning
from markdownify import MarkdownConverter

from commentsvc.imports.records import BodyFormat

_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+\n")


def _link(href: str, words: str) -> str:
    """A link as plain text: its words and its target (``words (https://…)``), the target
    alone when the words are it, the words alone when the target is not a web or mail
    address."""
    href = href.strip()
    words = words.strip()
    if not href.lower().startswith(("http://", "https://", "mailto:")):
        return words
    if not words or words == href or href.endswith(words.rstrip("/…")):
        return href
    return f"{words} ({href})"


#: Inline elements whose words are kept as they are (their markup says nothing in plain text).
_WORDS = ("b", "strong", "em", "i", "code", "del", "s", "strike", "sub", "sup", "kbd", "cite")


class _PlainText(MarkdownConverter):
    """markdownify writing plain text: emphasis as its words, a link as its words and its
    target (``words (https://…)``), an image as its description, headings and quotes as
    their lines; scripts, styles and forms leave nothing."""

    def convert_a(self, el: Any, text: str, *args: Any, **kwargs: Any) -> str:
        return _link(el.get("href") or "", text)

    def convert_img(self, el: Any, text: str, *args: Any, **kwargs: Any) -> str:
        return str(el.get("alt") or "")

    def _words(self, el: Any, text: str, *args: Any, **kwargs: Any) -> str:
        return text

    # The elements of _WORDS.
    convert_b = convert_strong = convert_em = convert_i = convert_code = _words
    convert_del = convert_s = convert_strike = convert_sub = convert_sup = _words
    convert_kbd = convert_cite = _words

    def convert_br(self, el: Any, text: str, *args: Any, **kwargs: Any) -> str:
        return "\n"

    def _nothing(self, el: Any, text: str, *args: Any, **kwargs: Any) -> str:
        return ""

    convert_script = convert_style = convert_iframe = convert_object = _nothing
    convert_embed = convert_form = convert_input = convert_button = convert_textarea = _nothing


_CONVERTER = _PlainText(
    heading_style="ATX",
    bullets="-",
    escape_asterisks=False,
    escape_underscores=False,
    escape_misc=False,
)


# --- The same conversion without the HTML parser, for simple HTML --------------------------
#
# What follows restates, for the few elements it accepts, what Python's html.parser,
# BeautifulSoup and markdownify (with the options above) do; the names of markdownify's
# steps are kept so that the two can be read side by side. html.parser and BeautifulSoup
# nest elements as they are written (no element closes another), so any well-nested
# arrangement of these elements is the tree BeautifulSoup builds.

#: A tag, or what might be one: anything from ``<`` to the next ``>``.
_TAG = re.compile(r"(<[^<>]*>)")
#: Elements around whose edges markdownify drops whitespace.
_BLOCKS = ("p", "blockquote")
#: The elements accepted, as they are written: lower case, no attributes but a link's.
_OPENING = {f"<{name}>": name for name in (*_BLOCKS, *_WORDS)}
_CLOSING = {f"</{name}>": name for name in (*_BLOCKS, *_WORDS, "a")}
_BREAKS = {"<br>", "<br/>", "<br />"}
_ANCHOR = re.compile(r'<a href="([^"<>]*)"(?: rel="[^"<>]*")?>')
#: Entities decoded here: named ones with their semicolon, numeric ones of ordinary
#: characters (html.parser turns others, such as ``&#150;`` or ``&#0;``, into something
#: else), and a lone ``&`` before anything that cannot start an entity.
_ENTITY = re.compile(r"&(?:([A-Za-z][A-Za-z0-9]*);|#([0-9]{1,7});|#[xX]([0-9A-Fa-f]{1,6});)?")
_ORDINARY = re.compile("[\x20-\x7e\xa0-\ud7ff\ue000-\U0010ffff]")
_ENTITY_START = re.compile(r"[A-Za-z0-9#]")
#: BeautifulSoup's ASCII whitespace: a string of only these becomes one space or newline.
_ASCII_SPACES = frozenset("\x20\x0a\x09\x0c\x0d")
# markdownify's patterns.
_NEWLINE_WHITESPACE = re.compile(r"[\t \r\n]*[\r\n][\t \r\n]*")
_WHITESPACE = re.compile(r"[\t ]+")
_EXTRACT_NEWLINES = re.compile(r"^(\n*)((?:.*[^\n])?)(\n*)$", flags=re.DOTALL)
_LINE_WITH_CONTENT = re.compile(r"^(.*)", flags=re.MULTILINE)


class _NotSimple(Exception):
    """The HTML holds something the parser-free path does not restate."""


@dataclass(eq=False, slots=True)
class _Element:
    name: str
    href: str = ""
    block: bool = False
    children: list[_Element | str] = field(default_factory=list)


def _decode(match: re.Match[str]) -> str:
    named, decimal, hexadecimal = match.groups()
    if named is not None:
        character = html5.get(named + ";")
        if character is None:
            raise _NotSimple  # html.parser keeps an unknown name, without its semicolon
        return character
    number = decimal or hexadecimal
    if number is not None:
        code = int(number, 10 if decimal else 16)
        if code > 0x10FFFF or not _ORDINARY.fullmatch(chr(code)):
            raise _NotSimple  # html.parser replaces it (U+FFFD, or Windows-1252's character)
        return chr(code)
    following = match.string[match.end() : match.end() + 1]
    if _ENTITY_START.match(following):
        raise _NotSimple  # an entity without its semicolon, or an incomplete one
    return "&"


def _text_node(text: str) -> str:
    """A run of character data as BeautifulSoup stores it."""
    if "<" in text:
        raise _NotSimple  # html.parser's reading of a stray "<" depends on what follows
    if "&" in text:
        text = _ENTITY.sub(_decode, text)
    if all(character in _ASCII_SPACES for character in text):
        return "\n" if "\n" in text else " "
    return text


def _tree(source: str) -> _Element:
    """The document BeautifulSoup would build from ``source``; _NotSimple for any other."""
    document = _Element("[document]")
    open_elements = [document]
    for number, part in enumerate(_TAG.split(source)):
        if not number % 2:
            if part:
                open_elements[-1].children.append(_text_node(part))
            continue
        parent = open_elements[-1]
        if part in _BREAKS:
            parent.children.append(_Element("br"))
        elif part in _OPENING:
            name = _OPENING[part]
            element = _Element(name, block=name in _BLOCKS)
            parent.children.append(element)
            open_elements.append(element)
        elif part in _CLOSING:
            if parent.name != _CLOSING[part]:
                raise _NotSimple  # not well nested: html.parser and BeautifulSoup repair it
            open_elements.pop()
        else:
            anchor = _ANCHOR.fullmatch(part)
            if anchor is None:
                raise _NotSimple
            element = _Element("a", html.unescape(anchor.group(1)))
            parent.children.append(element)
            open_elements.append(element)
    if len(open_elements) != 1:
        raise _NotSimple
    return document


def _is_block(node: _Element | str | None) -> bool:
    return type(node) is _Element and node.block


def _process_text(
    text: str, before: _Element | str | None, after: _Element | str | None, in_block: bool
) -> str:
    """markdownify's ``process_text`` for these elements."""
    if "\n" in text or "\r" in text:
        text = _NEWLINE_WHITESPACE.sub("\n", text)
    if "  " in text or "\t" in text:  # a lone space is left as it is
        text = _WHITESPACE.sub(" ", text)
    if _is_block(before) or (in_block and before is None):
        text = text.lstrip(" \t\r\n")
    if _is_block(after) or (in_block and after is None):
        text = text.rstrip()
    return text


def _quoted(match: re.Match[str]) -> str:
    line = match.group(1)
    return "> " + line if line else ">"


def _process_tag(element: _Element) -> str:
    """markdownify's ``process_tag`` for these elements, and their conversions."""
    in_block = element.block
    children = element.children
    last = len(children) - 1
    strings: list[str] = []
    for index, child in enumerate(children):
        if type(child) is str:
            before = children[index - 1] if index else None
            after = children[index + 1] if index < last else None
            if not child.strip() and (
                (in_block and (before is None or after is None))
                or _is_block(before)
                or _is_block(after)
            ):
                continue  # whitespace beside a block's edge
            string = _process_text(child, before, after, in_block)
        else:
            string = _process_tag(child)  # type: ignore[arg-type]
        if string:
            strings.append(string)
    # Newlines where children meet: the larger count of the two, at most two.
    joined = [""]
    for string in strings:
        if string[0] != "\n" and string[-1] != "\n":
            if joined[-1]:
                joined.append(string)
            else:
                joined[-1] = string
            joined.append("")
            continue
        match = _EXTRACT_NEWLINES.match(string)
        assert match is not None  # the pattern matches every string
        leading, content, trailing = match.groups()
        if joined[-1] and leading:
            leading = "\n" * min(2, max(len(joined.pop()), len(leading)))
        joined += (leading, content, trailing)
    text = "".join(joined)
    name = element.name
    if name == "p":
        text = text.strip(" \t\r\n")
        return f"\n\n{text}\n\n" if text else ""
    if name == "blockquote":
        text = text.strip(" \t\r\n")
        if not text:
            return "\n"
        return "\n" + _LINE_WITH_CONTENT.sub(_quoted, text) + "\n\n"
    if name == "br":
        return "\n"
    if name == "a":
        return _link(element.href, text)
    if name == "[document]":
        return text.strip("\n")
    return text


def _tidy(text: str) -> str:
    if " \n" in text or "\t\n" in text:
        text = _TRAILING.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def plain_html_to_text(source: str) -> str | None:
    """What :func:`parsed_html_to_text` gives for HTML made only of text, entities,
    ``<p>``, ``<br>``, ``<em>``, ``<strong>``, ``<b>``, ``<i>`` and ``<a href>`` (well
    nested), computed without an HTML parser; None for any other HTML."""
    try:
        tree = _tree(source.replace("\r\n", "\n"))
    except _NotSimple:
        return None
    return _tidy(_process_tag(tree))


def parsed_html_to_text(source: str) -> str:
    """Plain text of a comment written in HTML, through BeautifulSoup and markdownify."""
    with warnings.catch_warnings():
        # BeautifulSoup warns when the markup looks like a URL or a file name, in case it
        # was meant to be fetched or opened; a comment that is only a link is neither.
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        text = _CONVERTER.convert(source.replace("\r\n", "\n"))
    return _tidy(text)


def html_to_text(source: str) -> str:
    """Plain text of a comment written in HTML: paragraphs as blank lines, ``<br>`` as a
    line break, entities decoded, links with their targets."""
    text = plain_html_to_text(source)
    return parsed_html_to_text(source) if text is None else text


def newlines_as_html(source: str) -> str:
    """HTML whose line breaks mean something (WordPress stores comments so and adds the
    paragraphs when it shows them): a blank line ends a paragraph, a line break is a
    ``<br>``."""
    paragraphs = re.split(r"\n[ \t]*\n", source.replace("\r\n", "\n").strip())
    return "".join(f"<p>{part.replace(chr(10), '<br>')}</p>" for part in paragraphs if part)


def site_text(body: str, body_format: BodyFormat) -> str:
    """``body`` as the service stores it (plain text)."""
    if body_format == BodyFormat.HTML:
        return html_to_text(body)
    return body.replace("\r\n", "\n").strip()
