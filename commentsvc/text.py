"""Plain text in, safe HTML out: nothing a commenter writes ever becomes markup."""

from __future__ import annotations

import re

from markupsafe import escape

_URL = re.compile(r"\bhttps?://[^\s<>\"'`\x00-\x1f\x7f]+", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")
_TRAILING_PUNCTUATION = ".,;:!?'\"*"
#: The closing brackets a URL keeps only when balanced, each with its opening one.
_OPENING = {")": "(", "]": "["}
LINK_REL = "nofollow ugc noopener"


def _split_url(candidate: str) -> tuple[str, str]:
    """Split trailing punctuation (and unbalanced closing brackets) off a matched URL.

    The brackets are counted once and the balance kept while stripping (only closing
    brackets and punctuation are stripped), so a long run of them costs linear time.
    """
    opened = {closing: candidate.count(opening) for closing, opening in _OPENING.items()}
    closed = {closing: candidate.count(closing) for closing in _OPENING}
    end = len(candidate)
    while end:
        last = candidate[end - 1]
        if last in _OPENING and opened[last] < closed[last]:
            closed[last] -= 1
        elif last not in _TRAILING_PUNCTUATION:
            break
        end -= 1
    return candidate[:end], candidate[end:]


def _linkify(line: str) -> str:
    parts: list[str] = []
    position = 0
    for match in _URL.finditer(line):
        url, rest = _split_url(match.group(0))
        parts.append(str(escape(line[position : match.start()])))
        if url.lower() in {"http://", "https://"}:
            parts.append(str(escape(url)))
        else:
            parts.append(f'<a href="{escape(url)}" rel="{LINK_REL}">{escape(url)}</a>')
        parts.append(str(escape(rest)))
        position = match.end()
    parts.append(str(escape(line[position:])))
    return "".join(parts)


def url_at(text: str, start: int, end: int | None = None) -> str | None:
    """The bare http(s) URL that begins at ``start`` of ``text[:end]``, as
    :func:`render_body` would link it there; None when it would link nothing.

    The Markdown renderer (:mod:`commentsvc.markup`) finds bare URLs with this, so both
    markups link the same ones (Markdown only those its sanitizer keeps).
    """
    match = _URL.match(text, start, len(text) if end is None else end)
    if match is None:
        return None
    url = _split_url(match.group(0))[0]
    return None if url.lower() in {"http://", "https://"} else url


def count_links(text: str) -> int:
    """How many http(s) links ``text`` has, counted as :func:`render_body` makes them."""
    return sum(
        1
        for match in _URL.finditer(text)
        if _split_url(match.group(0))[0].lower() not in {"http://", "https://"}
    )


def render_body(text: str) -> str:
    """Render a comment body: escape, blank lines to paragraphs, bare http(s) URLs to links."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return ""
    paragraphs = _BLANK_LINES.split(text)
    return "".join(
        "<p>" + "<br>\n".join(_linkify(line) for line in paragraph.split("\n")) + "</p>"
        for paragraph in paragraphs
    )
