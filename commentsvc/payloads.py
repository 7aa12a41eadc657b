"""Raw input read strictly: request bodies (JSON objects, form data) and unsafe text.

Everything here answers bad input with a 400 problem before any form or service sees it.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from flask import Request, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from commentsvc.errors import ApiError

MAX_FORM_FIELDS = 50
# C0 and C1 control characters. C1 holds NEL (U+0085), a line break, and CSI (U+009B),
# which starts terminal escape sequences. Tab and line feed only where text is multi-line.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def unsafe_text_reason(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be stored as text (NUL, control characters, lone surrogates)."""
    if "\x00" in value:
        return "Must not contain NUL characters."
    if _SURROGATE.search(value):
        return "Must be valid Unicode text."
    if (_CONTROL if multiline else _CONTROL_OR_NEWLINE).search(value):
        return "Must not contain control characters or line breaks."
    return None


def refuse_nul(*, form: bool = False) -> None:
    """400 when the path or query string (and, with ``form``, a form field) has a NUL.

    Nothing stored contains one (every write refuses it, and PostgreSQL cannot store it in
    text at all), so such a value can only fail: refuse it before it reaches a query.
    """
    query = request.query_string
    if not form and b"%00" not in query and b"\x00" not in query and "\x00" not in request.path:
        return  # the common case, without decoding the query string
    fields = [*request.args.items(multi=True)]
    if form:
        fields += request.form.items(multi=True)
    bad = sorted({name for name, value in fields if "\x00" in name or "\x00" in value})
    if bad or "\x00" in request.path:
        raise ApiError(
            400,
            "The request contains a NUL character.",
            errors={name: ["Must not contain NUL characters."] for name in bad},
        )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def read_body(request: Request) -> bytes:
    """The request body; 413 when it exceeds ``MAX_CONTENT_LENGTH``, chunked bodies too.

    Werkzeug refuses a declared Content-Length over the limit, but a chunked body is only
    cut off at the limit; a cut-off body must not be parsed as if it were whole.
    """
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        raise RequestEntityTooLarge()
    return raw


def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 problem saying what is wrong with it."""
    raw = read_body(request)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "The request body is not valid UTF-8.", title="Bad Request") from None
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ApiError(400, "The request body is not valid JSON.", title="Malformed JSON") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "The request body must be a JSON object.", title="Bad Request")
    return payload


def read_urlencoded(request: Request) -> MultiDict[str, str]:
    """The body of a form post, decoded strictly as UTF-8 (a 400 problem otherwise)."""
    raw = read_body(request)
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        raise ApiError(400, "The form data is not valid UTF-8.", title="Bad Request") from None
    except ValueError:
        raise ApiError(400, "The form data could not be parsed.", title="Bad Request") from None
    return MultiDict(pairs)
