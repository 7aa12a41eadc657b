"""Input declared once: one WTForms form serves JSON and the no-JavaScript HTML form.

JSON is fed to the form as a ``MultiDict`` (never through ``data=``), so that WTForms'
``DataRequired``/``Optional`` see raw input exactly as they would from an HTML form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import Request, current_app, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import Field, Form, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, NumberRange, Optional, StopValidation
from wtforms.validators import ValidationError as FieldError

from commentsvc.errors import ApiError
from commentsvc.models import MAX_ID

MAX_FORM_FIELDS = 50
# C0 and C1 control characters. C1 holds NEL (U+0085), a line break, and CSI (U+009B),
# which starts terminal escape sequences. Tab and line feed only where text is multi-line.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def strip(value: Any) -> Any:
    """Trim surrounding whitespace: whitespace-only input counts as missing."""
    return value.strip() if isinstance(value, str) else value


class ConfiguredLength:
    """At most ``app.config[setting]`` characters; the limit is configuration."""

    def __init__(self, setting: str) -> None:
        self.setting = setting

    def __call__(self, form: Form, field: Field) -> None:
        limit = current_app.config[self.setting]
        if field.data is not None and len(field.data) > limit:
            raise FieldError(f"Must be at most {limit} characters.")


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


class NoControlCharacters:
    """Refuse NUL, lone surrogates and control characters (line breaks only where multi-line)."""

    def __init__(self, multiline: bool = False) -> None:
        self.multiline = multiline

    def __call__(self, form: Form, field: Field) -> None:
        reason = field.data and unsafe_text_reason(field.data, multiline=self.multiline)
        if reason:
            raise StopValidation(reason)


class HttpUrl:
    """An absolute ``http`` or ``https`` URL with a host."""

    def __call__(self, form: Form, field: Field) -> None:
        value = field.data or ""
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise FieldError("Must be a valid http or https URL.") from None
        if parts.scheme.lower() not in {"http", "https"}:
            raise FieldError("Must start with http:// or https://.")
        if not parts.hostname or " " in value:
            raise FieldError("Must be a valid http or https URL.")


class NormalizedEmail:
    """A deliverable-looking address by email-validator's rules; stored normalized."""

    def __call__(self, form: Form, field: Field) -> None:
        try:
            info = validate_email(
                field.data,
                check_deliverability=current_app.config["EMAIL_CHECK_DELIVERABILITY"],
                allow_smtputf8=True,
                # strict: also the RFC 5321 length limits (64 characters before the @).
                strict=True,
            )
        except EmailNotValidError as exc:
            raise FieldError(str(exc)) from None
        field.data = info.normalized


def _text(
    limit_setting: str,
    *,
    required: bool = True,
    multiline: bool = False,
    extra: tuple[Callable[[Form, Field], None], ...] = (),
) -> StringField:
    """A trimmed text field: required or optional, no control characters, limited length."""
    field_class = TextAreaField if multiline else StringField
    return field_class(
        filters=[strip],
        validators=[
            DataRequired() if required else Optional(),
            NoControlCharacters(multiline=multiline),
            ConfiguredLength(limit_setting),
            *extra,
        ],
    )


class CommentForm(Form):
    """A comment submission, from JSON or from the plain HTML form."""

    page = _text("MAX_PAGE_KEY_LENGTH")
    page_url = _text("MAX_URL_LENGTH", required=False, extra=(HttpUrl(),))
    page_title = _text("MAX_PAGE_TITLE_LENGTH", required=False)
    parent_id = IntegerField(validators=[Optional(), NumberRange(min=1, max=MAX_ID)])
    body = _text("MAX_BODY_LENGTH", multiline=True)
    author_name = _text("MAX_NAME_LENGTH")
    author_email = _text("MAX_EMAIL_LENGTH", extra=(NormalizedEmail(),))
    author_url = _text("MAX_URL_LENGTH", required=False, extra=(HttpUrl(),))


#: JSON fields whose values are integers; every other declared field is a string.
INTEGER_FIELDS = frozenset({"parent_id"})
STRING_FIELDS = frozenset(
    {"page", "page_url", "page_title", "body", "author_name", "author_email", "author_url"}
)


def json_to_formdata(
    payload: Mapping[str, Any],
) -> tuple[MultiDict[str, str], dict[str, list[str]]]:
    """Turn a JSON object into form data for :class:`CommentForm`, checking JSON types.

    Unknown fields are dropped; ``null`` counts as absent. Returns the form data and the
    errors for fields of the wrong JSON type (those fields are left out of the data).
    """
    data: MultiDict[str, str] = MultiDict()
    errors: dict[str, list[str]] = {}
    for name, value in payload.items():
        if value is None:
            continue
        if name in STRING_FIELDS:
            if isinstance(value, str):
                data[name] = value
            else:
                errors[name] = ["Must be a string."]
        elif name in INTEGER_FIELDS:
            if isinstance(value, int) and not isinstance(value, bool):
                data[name] = str(value)
            else:
                errors[name] = ["Must be an integer."]
    return data, errors


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
