"""Input declared once: one WTForms form serves JSON and the no-JavaScript HTML form.

JSON is fed to the form as a ``MultiDict`` (never through ``data=``), so that WTForms'
``DataRequired``/``Optional`` see raw input exactly as they would from an HTML form.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Collection, Mapping
from typing import Any, ClassVar, TypeVar

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, Field, Form, IntegerField, StringField, TextAreaField
from wtforms.fields.core import UnboundField
from wtforms.validators import AnyOf, DataRequired, NumberRange, Optional, StopValidation
from wtforms.validators import ValidationError as FieldError

from commentsvc.models import BLOCKLIST_KINDS, MAX_ID, STATUSES
from commentsvc.payloads import unsafe_text_reason
from commentsvc.security import UrlError, origin_of_url, parse_web_url
from commentsvc.services.errors import Invalid

FormT = TypeVar("FormT", bound=Form)


def strip(value: Any) -> Any:
    """Trim surrounding whitespace: whitespace-only input counts as missing."""
    return value.strip() if isinstance(value, str) else value


#: Bidirectional controls (embeddings, overrides, isolates, marks): in a name they reorder
#: the text shown after it, such as the email and website beside it in the panel.
_BIDI_CONTROLS = dict.fromkeys(
    map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
)


def remove_bidi_controls(value: Any) -> Any:
    """Drop bidirectional control characters (before trimming: they may hide whitespace)."""
    return value.translate(_BIDI_CONTROLS) if isinstance(value, str) else value


#: What shows nothing by itself, besides whitespace: format characters, combining marks
#: (they show only on a letter), and the fillers that fonts draw blank.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Mn", "Me", "Zs", "Zl", "Zp"})
_BLANK_FILLERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _visible(character: str) -> bool:
    return not (
        character.isspace()
        or character in _BLANK_FILLERS
        or unicodedata.category(character) in _INVISIBLE_CATEGORIES
    )


class VisibleText:
    """At least one visible character: a value of only invisible ones counts as missing
    (the same message as a blank one)."""

    def __call__(self, form: Form, field: Field) -> None:
        if field.data and not any(map(_visible, field.data)):
            field.errors[:] = []
            raise StopValidation(field.gettext("This field is required."))


class ConfiguredLength:
    """At most ``app.config[setting]`` characters; the limit is configuration.

    A value too long stops there: no later check spends time on it.
    """

    def __init__(self, setting: str) -> None:
        self.setting = setting

    def __call__(self, form: Form, field: Field) -> None:
        limit = current_app.config[self.setting]
        if field.data is not None and len(field.data) > limit:
            raise StopValidation(f"Must be at most {limit} characters.")


class NoControlCharacters:
    """Refuse NUL, lone surrogates and control characters (line breaks only where multi-line)."""

    def __init__(self, multiline: bool = False) -> None:
        self.multiline = multiline

    def __call__(self, form: Form, field: Field) -> None:
        reason = field.data and unsafe_text_reason(field.data, multiline=self.multiline)
        if reason:
            raise StopValidation(reason)


class HttpUrl:
    """An absolute ``http`` or ``https`` URL with a host, as browsers read it; kept as
    written out again from its parts (:class:`commentsvc.security.WebUrl`)."""

    def __call__(self, form: Form, field: Field) -> None:
        try:
            field.data = str(parse_web_url(field.data or ""))
        except UrlError as error:
            raise StopValidation(str(error)) from None


class OnOrigins:
    """A URL (checked by :class:`HttpUrl` before) on one of ``origins``."""

    message = "Must be a URL on one of the site's origins."

    def __init__(self, origins: Collection[str]) -> None:
        self.origins = origins

    def __call__(self, form: Form, field: Field) -> None:
        if origin_of_url(field.data or "") not in self.origins:
            raise FieldError(self.message)


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
    label: str | None = None,
    required: bool = True,
    multiline: bool = False,
    extra: tuple[Callable[[Form, Field], None], ...] = (),
    filters: tuple[Callable[[Any], Any], ...] = (),
) -> StringField:
    """A trimmed text field: required or optional, no control characters, limited length."""
    field_class = TextAreaField if multiline else StringField
    return field_class(
        label,
        filters=[*filters, strip],
        validators=[
            DataRequired() if required else Optional(),
            NoControlCharacters(multiline=multiline),
            ConfiguredLength(limit_setting),
            *extra,
        ],
    )


class Checkbox(BooleanField):
    """A checkbox as browsers send it: ticked is ``on`` (or the ``value`` a form gave it,
    ``1`` or ``true``), not ticked is absent (or ``0``, ``false``, ``off``, blank). Any
    other value is refused, not guessed: a consent is not read into a typo."""

    TICKED = frozenset({"on", "1", "true"})
    UNTICKED = frozenset({"", "0", "false", "off"})

    def process_formdata(self, valuelist: list[Any]) -> None:
        # The last value: forms that send a hidden "0" before the box mean the box's value.
        value = str(valuelist[-1]).strip().lower() if valuelist else ""
        self.data = value in self.TICKED
        if value not in self.TICKED | self.UNTICKED:
            raise ValueError("Must be ticked (on, 1 or true) or left out.")


class CommentForm(Form):
    """A comment submission, from JSON or from the plain HTML form.

    Its labels are the reader's form's (README, "Without JavaScript"): the no-JavaScript
    error page names fields by them.
    """

    page = _text("MAX_PAGE_KEY_LENGTH", label="Page")
    page_url = _text("MAX_URL_LENGTH", label="Page address", required=False, extra=(HttpUrl(),))
    page_title = _text("MAX_PAGE_TITLE_LENGTH", label="Page title", required=False)
    parent_id = IntegerField("Reply to", validators=[Optional(), NumberRange(min=1, max=MAX_ID)])
    body = _text("MAX_BODY_LENGTH", label="Comment", multiline=True, extra=(VisibleText(),))
    author_name = _text(
        "MAX_NAME_LENGTH", label="Name", extra=(VisibleText(),), filters=(remove_bidi_controls,)
    )
    author_email = _text("MAX_EMAIL_LENGTH", label="Email", extra=(NormalizedEmail(),))
    author_url = _text("MAX_URL_LENGTH", label="Website", required=False, extra=(HttpUrl(),))
    #: The honeypot (DESIGN §7): hidden from people, so whatever is in it came from a bot.
    #: Never refused, whatever it holds: the answer must not tell a bot it was caught.
    subject = StringField(filters=[strip])
    #: How long the widget's form was open before it was sent, in milliseconds (a tab open
    #: for weeks sends a large number: no upper bound, it is only compared).
    fill_ms = IntegerField(validators=[Optional(), NumberRange(min=0)])
    #: Its author asks to hear of replies by email (DESIGN §8): nothing is mailed before a
    #: moderator approves the comment, and then only after the address is confirmed.
    notify_replies = Checkbox("Notify me of follow-up comments by email.")


class CommentBodyForm(Form):
    """A comment's new text, as its author edits it (DESIGN §10): the very field of
    :class:`CommentForm`, so an edit passes every check the text of a submission does."""

    body = CommentForm.body


class Sent:
    """Check a field only when it was sent: an absent one stops its validation quietly.

    Unlike ``Optional``, a field sent blank goes on to the next check (and fails there).
    """

    field_flags: ClassVar[dict[str, bool]] = {"optional": True}

    def __call__(self, form: Form, field: Field) -> None:
        if not field.raw_data:
            field.errors = []
            raise StopValidation()


class ModerationUpdateForm(Form):
    """A moderator's change to one comment: a status, an edited body, or both; a note."""

    status = StringField(
        validators=[Sent(), AnyOf(STATUSES, message=f"Must be one of: {', '.join(STATUSES)}.")]
    )
    body = TextAreaField(
        filters=[strip],
        validators=[
            Sent(),
            DataRequired(),
            NoControlCharacters(multiline=True),
            ConfiguredLength("MAX_BODY_LENGTH"),
            VisibleText(),
        ],
    )
    note = TextAreaField(filters=[strip], validators=[Sent(), NoControlCharacters(multiline=True)])

    def validate(self, extra_validators: Mapping[str, Any] | None = None) -> bool:
        valid = super().validate(extra_validators)
        if valid and self.status.data is None and self.body.data is None:
            self.status.errors = ["Send a status, a body, or both."]
            return False
        return valid


class BlocklistEntryForm(Form):
    """A blocklist entry to add (DESIGN §7); ``site`` blank: every site."""

    kind = StringField(
        filters=[strip],
        validators=[
            DataRequired(),
            AnyOf(BLOCKLIST_KINDS, message=f"Must be one of: {', '.join(BLOCKLIST_KINDS)}."),
        ],
    )
    value = _text("MAX_FILTER_LENGTH")
    site = _text("MAX_FILTER_LENGTH", required=False)


_JSON_TYPES: dict[type[Form], dict[str, type]] = {}


#: What a JSON value of the wrong type is told, by the type its field takes.
_TYPE_ERRORS = {
    int: "Must be an integer.",
    bool: "Must be true or false.",
    str: "Must be a string.",
}


def _json_type(field_class: type[Field]) -> type:
    """The JSON type a field takes: int for integer fields, bool for checkboxes, else str."""
    if issubclass(field_class, IntegerField):
        return int
    return bool if issubclass(field_class, BooleanField) else str


def _json_types(form_class: type[Form]) -> dict[str, type]:
    """The JSON type each field of ``form_class`` takes (see :func:`_json_type`)."""
    types = _JSON_TYPES.get(form_class)
    if types is None:
        types = _JSON_TYPES[form_class] = {
            name: _json_type(unbound.field_class)
            for name, unbound in vars(form_class).items()
            if isinstance(unbound, UnboundField)
        }
    return types


def json_to_formdata(
    payload: Mapping[str, Any], form_class: type[Form] = CommentForm
) -> tuple[MultiDict[str, str], dict[str, list[str]]]:
    """Turn a JSON object into form data for ``form_class``, checking JSON types.

    Unknown fields are dropped; ``null`` counts as absent. Returns the form data and the
    errors for fields of the wrong JSON type (those fields are left out of the data).
    """
    types = _json_types(form_class)
    data: MultiDict[str, str] = MultiDict()
    errors: dict[str, list[str]] = {}
    for name, value in payload.items():
        wanted = types.get(name)
        if value is None or wanted is None:
            continue
        if wanted is bool and isinstance(value, bool):
            data[name] = "true" if value else "false"
        elif isinstance(value, wanted) and not isinstance(value, bool):
            data[name] = str(value)
        else:
            errors[name] = [_TYPE_ERRORS[wanted]]
    return data, errors


def validated(
    form_class: type[FormT],
    data: MultiDict[str, str],
    type_errors: Mapping[str, list[str]],
    extra_validators: Mapping[str, list[Callable[[Form, Field], None]]] | None = None,
) -> FormT:
    """A form of ``form_class`` on ``data`` that passed validation, with ``extra_validators``
    after each field's own (those of one request: a site's origins); Invalid naming every
    failing field otherwise (``type_errors`` included)."""
    form = form_class(formdata=data)
    form.validate(extra_validators)
    errors = {**form.errors, **type_errors}
    if errors:
        raise Invalid(errors)
    return form
