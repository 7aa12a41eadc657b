"""A source's comment text in the service's own format (DESIGN §9): HTML from a file is
converted to plain text with markdownify (line breaks, paragraphs and link targets kept),
then rendered like any new comment; no markup from a file reaches ``body_html``."""

from __future__ import annotations

import re
from typing import Any

from markdownify import MarkdownConverter

from commentsvc.imports.records import BodyFormat

_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+\n")


class _PlainText(MarkdownConverter):
    """markdownify writing plain text: emphasis as its words, a link as its words and its
    target (``words (https://…)``), an image as its description, headings and quotes as
    their lines; scripts, styles and forms leave nothing."""

    def convert_a(self, el: Any, text: str, *args: Any, **kwargs: Any) -> str:
        href = (el.get("href") or "").strip()
        words = text.strip()
        if not href.lower().startswith(("http://", "https://", "mailto:")):
            return words
        if not words or words == href or href.endswith(words.rstrip("/…")):
            return href
        return f"{words} ({href})"

    def convert_img(self, el: Any, text: str, *args: Any, **kwargs: Any) -> str:
        return str(el.get("alt") or "")

    def _words(self, el: Any, text: str, *args: Any, **kwargs: Any) -> str:
        return text

    convert_b = convert_strong = convert_em = convert_i = convert_code = _words
    convert_del = convert_s = convert_sub = convert_sup = convert_kbd = _words

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


def html_to_text(html: str) -> str:
    """Plain text of a comment written in HTML: paragraphs as blank lines, ``<br>`` as a
    line break, entities decoded, links with their targets."""
    text = _CONVERTER.convert(html.replace("\r\n", "\n"))
    text = _TRAILING.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def newlines_as_html(html: str) -> str:
    """HTML whose line breaks mean something (WordPress stores comments so and adds the
    paragraphs when it shows them): a blank line ends a paragraph, a line break is a
    ``<br>``."""
    paragraphs = re.split(r"\n[ \t]*\n", html.replace("\r\n", "\n").strip())
    return "".join(f"<p>{part.replace(chr(10), '<br>')}</p>" for part in paragraphs if part)


def site_text(body: str, body_format: BodyFormat) -> str:
    """``body`` as the service stores it (plain text)."""
    if body_format == BodyFormat.HTML:
        return html_to_text(body)
    return body.replace("\r\n", "\n").strip()
