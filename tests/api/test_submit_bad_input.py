"""Bad input to ``POST /api/v1/sites/{site}/comments`` (DESIGN §4), as one table.

Every refused submission must answer with the right status in the right shape (problem+json,
or the plain HTML page of the no-JavaScript form) and store nothing: no comment and no page
row. A page is created in the same transaction as its first comment, so a refusal that
comes late (a bad ``parent_id``) must roll the new page back too. The unusual input we do
accept has its own tests at the end.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from email_validator import validate_email
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from commentsvc.api.serializers import moderation_comment
from commentsvc.extensions import db
from commentsvc.models import Comment, CommentStatus, Page
from commentsvc.payloads import MAX_FORM_FIELDS
from commentsvc.services import listing
from commentsvc.settings import MAX_BODY_LIMIT, SETTINGS_BY_NAME
from tests.conftest import ORIGIN, OTHER_ORIGIN, valid_submission

SUBMIT = "/api/v1/sites/news/comments"
PAGE = "/2025/10/us-china-talks"
PROBLEM_JSON = "application/problem+json"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
REQUIRED = ("page", "body", "author_name", "author_email")
TWO_MEGABYTES = 2 * 1024 * 1024

Config = Mapping[str, Any]
#: What a case sends: a mapping, or a function of the app's config (for limits).
Payload = Mapping[str, Any] | Callable[[Config], Mapping[str, Any]]


def _build(payload: Payload, config: Config) -> dict[str, Any]:
    return dict(payload(config) if callable(payload) else payload)


@dataclass(frozen=True)
class Bad:
    """One refused submission: what is sent, and the status and field it must fail with."""

    status: int
    field: str | None = None
    json: Payload | None = None
    form: Payload | None = None
    raw: bytes | None = None
    content_type: str | None = None
    origin: str | None = None
    accept: str | None = None
    site: str = "news"
    #: ``make_comment`` arguments of a parent stored first; its id is sent as ``parent_id``.
    parent: Mapping[str, Any] | None = None
    #: The no-JavaScript form answers with an HTML page instead of problem+json.
    html: bool = False
    #: Send ``raw`` without a Content-Length, as gunicorn passes a chunked request on.
    chunked: bool = False

    def request(self, config: Config, parent_id: int | None) -> dict[str, Any]:
        """Keyword arguments for ``client.post``."""
        headers = {"Origin": self.origin, "Accept": self.accept}
        kwargs: dict[str, Any] = {
            "headers": {name: value for name, value in headers.items() if value is not None}
        }
        source = self.json if self.json is not None else self.form
        if source is not None:
            payload = _build(source, config)
            if parent_id is not None:
                payload["parent_id"] = parent_id
            if self.json is not None:
                kwargs["json"] = payload
            else:
                kwargs["data"] = payload
                kwargs["content_type"] = self.content_type or FORM
        elif self.chunked:
            kwargs["input_stream"] = io.BytesIO(self.raw or b"")
            kwargs["content_type"] = self.content_type
            kwargs["headers"]["Transfer-Encoding"] = "chunked"
            # What gunicorn sets: the server ends the stream, the app enforces the limit.
            kwargs["environ_overrides"] = {"wsgi.input_terminated": True}
        else:
            kwargs["data"] = self.raw
            kwargs["content_type"] = self.content_type
        return kwargs


def bad(case_id: str, status: int, field: str | None = None, **request: Any) -> Any:
    return pytest.param(Bad(status, field, **request), id=case_id)


def without(name: str) -> dict[str, Any]:
    data = valid_submission()
    del data[name]
    return data


def raw_json(payload: Any) -> bytes:
    """JSON as Python writes it: non-ASCII (and lone surrogates) as ``\\u`` escapes."""
    return json.dumps(payload).encode()


def email_of_length(length: int) -> str:
    """A syntactically valid address of exactly ``length`` characters (64-char local part)."""
    local = "l" * 64
    labels: list[str] = []
    left = length - len(local) - len("@") - len("com")
    while left > 0:
        size = min(63, left - 1)  # each label also costs the dot after it
        labels.append("d" * size)
        left -= size + 1
    address = f"{local}@{'.'.join([*labels, 'com'])}"
    assert len(address) == length
    return address


def url_of_length(length: int) -> str:
    prefix = "https://example.com/"
    return prefix + "p" * (length - len(prefix))


MISSING_OR_BLANK = [
    bad(f"{name}-{label}", 422, name, json=payload)
    for name in REQUIRED
    for label, payload in [
        ("missing", without(name)),
        ("null", valid_submission(**{name: None})),
        ("empty", valid_submission(**{name: ""})),
        ("spaces", valid_submission(**{name: "   "})),
        ("newline-tab", valid_submission(**{name: "\n\t"})),
    ]
]

MALFORMED_EMAILS = [
    bad(f"email-{label}", 422, "author_email", json=valid_submission(author_email=email))
    for label, email in [
        ("double-at", "a@@example.com"),
        ("two-at-signs", "a@b@example.com"),
        ("space-in-local-part", "a b@example.com"),
        ("space-in-domain", "ab@exa mple.com"),
        ("consecutive-dots-in-local-part", "a..b@example.com"),
        ("consecutive-dots-in-domain", "a@example..com"),
        ("leading-dot", ".a@example.com"),
        ("dot-before-at", "a.@example.com"),
        ("trailing-dot", "a@example.com."),
        ("no-domain", "a@"),
        ("no-local-part", "@example.com"),
        ("no-at-sign", "plain.example.com"),
        ("dotless-domain", "a@b"),
        ("localhost", "a@localhost"),
        ("header-injection", "a@example.com\nBcc: x@evil.example"),
        ("comma", "a,b@example.com"),
        ("two-addresses", "a@example.com,b@example.com"),
        ("quoted-local-part", '"a b"@example.com'),
        ("unbalanced-quote", '"a@example.com'),
        ("ipv4-literal", "a@[192.168.0.1]"),
        ("ipv6-literal", "a@[IPv6:::1]"),
        ("numeric-domain", "a@123.123.123.123"),
        ("underscore-in-domain", "a@exam_ple.com"),
        ("hyphen-after-at", "a@-example.com"),
        ("special-use-domain", "a@example.invalid"),
        ("nul", "a\x00b@example.com"),
        ("no-break-space", "a\u00a0b@example.com"),
        ("local-part-over-64", "l" * 65 + "@example.com"),
    ]
] + [
    bad(
        "email-over-max-length",
        422,
        "author_email",
        json=lambda c: valid_submission(author_email=email_of_length(c["MAX_EMAIL_LENGTH"] + 1)),
    ),
]

BAD_URLS = [
    bad(f"author-url-{label}", 422, "author_url", json=valid_submission(author_url=url))
    for label, url in [
        ("javascript", "javascript:alert(1)"),
        ("data", "data:text/html,<script>alert(1)</script>"),
        ("ftp", "ftp://example.com"),
        ("protocol-relative", "//example.com"),
        ("no-host", "http://"),
        ("empty-host-with-path", "http:///path"),
        ("space-in-host", "https://exa mple.com"),
        ("bad-port", "https://example.com:99999/"),
        ("newline", "https://example.com/\nx"),
        # Browsers read a backslash as a slash (host evil.example), urlsplit does not.
        ("backslash-before-userinfo", "https://evil.example\\@ada.example/"),
        ("backslash-in-path", "https://ada.example\\evil.example/"),
        ("tab", "https://ada.exa\tmple/"),
        ("carriage-return", "https://ada.example/\rx"),
        ("markup-in-host", "https://ada<b>.example/"),
    ]
] + [
    bad(
        "author-url-over-max-length",
        422,
        "author_url",
        json=lambda c: valid_submission(author_url=url_of_length(c["MAX_URL_LENGTH"] + 1)),
    ),
    bad("page-url-javascript", 422, "page_url", json=valid_submission(page_url="javascript:x")),
    # A page URL is stored only on the site's own origins (security review L1, L6).
    *[
        bad(f"page-url-{label}", 422, "page_url", json=valid_submission(page_url=url))
        for label, url in [
            ("off-origin", "https://evil.example/moderation/login"),
            ("other-sites-origin", f"{OTHER_ORIGIN}/x"),
            ("other-port", f"{ORIGIN}:8443/x"),
            ("other-scheme", ORIGIN.replace("https:", "http:") + "/x"),
            ("userinfo-then-evil-host", f"{ORIGIN}@evil.example/x"),
            ("backslash-then-site-host", "https://evil.example\\@news.example/x"),
            ("backslash-in-path", f"{ORIGIN}\\evil.example/x"),
            ("tab", f"{ORIGIN}/x\ty"),
            ("newline", f"{ORIGIN}/x\ny"),
        ]
    ],
]

#: Text that shows nothing: refused like a blank value (security review I4).
INVISIBLE = {
    "zero-width-space": "\u200b",
    "hangul-filler": "\u3164",
    "hangul-choseong-filler": "\u115f",
    "hangul-jungseong-filler": "\u1160",
    "halfwidth-hangul-filler": "\uffa0",
    "braille-blank": "\u2800",
    "combining-marks": "\u0301" * 50,
    "enclosing-mark": "\u20dd",
    "bidi-override": "\u202e",
    "bidi-isolates": "\u2067\u2069",
    "byte-order-mark": "\ufeff",
    "mixed": "\u200b \u3164\u2800\u0301\u00ad",
}
INVISIBLE_TEXT = [
    bad(f"{name}-{label}", 422, name, json=valid_submission(**{name: value}))
    for name in ("author_name", "body")
    for label, value in INVISIBLE.items()
]

TOO_LONG = [
    bad(
        "body-over-max-length",
        422,
        "body",
        json=lambda c: valid_submission(body="b" * (c["MAX_BODY_LENGTH"] + 1)),
    ),
    bad(
        "author-name-over-max-length",
        422,
        "author_name",
        json=lambda c: valid_submission(author_name="n" * (c["MAX_NAME_LENGTH"] + 1)),
    ),
    bad(
        "page-key-over-max-length",
        422,
        "page",
        json=lambda c: valid_submission(page="/" + "k" * c["MAX_PAGE_KEY_LENGTH"]),
    ),
    bad(
        "page-title-over-max-length",
        422,
        "page_title",
        json=lambda c: valid_submission(page_title="t" * (c["MAX_PAGE_TITLE_LENGTH"] + 1)),
    ),
]

WRONG_JSON_TYPES = [
    bad(f"{name}-as-{label}", 422, name, json=valid_submission(**{name: value}))
    for name, label, value in [
        ("body", "number", 42),
        ("author_name", "list", ["Ada"]),
        ("author_email", "object", {"address": "ada@example.com"}),
        ("page", "true", True),
        ("author_url", "number", 1),
        ("parent_id", "string", "abc"),
        ("parent_id", "numeric-string", "1"),
        ("parent_id", "float", 1.5),
        ("parent_id", "true", True),
        ("parent_id", "zero", 0),
        ("parent_id", "negative", -1),
        ("parent_id", "over-int32", 2**31),
    ]
]

NOT_A_JSON_OBJECT = [
    bad(f"json-{label}", 400, raw=body, content_type=JSON)
    for label, body in [
        ("truncated", b'{"body": '),
        ("empty-body", b""),
        ("array", b"[]"),
        ("string", b'"str"'),
        ("number", b"42"),
        ("null", b"null"),
        ("invalid-utf8", b'{"body": "\xff"}'),
        ("nan-constant", b'{"page": "/a", "parent_id": NaN}'),
        ("infinity-constant", b'{"page": "/a", "parent_id": Infinity}'),
        ("deeply-nested", b"[" * 10_000),
    ]
]

CONTROL_CHARACTERS = [
    bad(
        f"{name}-{label}",
        422,
        name,
        raw=raw_json(valid_submission(**{name: value})),
        content_type=JSON,
    )
    for name, label, value in [
        ("body", "nul", "Hello\x00world"),
        ("author_name", "nul", "Ada\x00"),
        ("page", "nul", "/a\x00b"),
        ("author_name", "newline", "Ada\nLovelace"),
        ("author_name", "line-separator", "Ada\u2028Lovelace"),
        # A lone surrogate is valid JSON syntax but not text: it cannot be stored.
        ("body", "lone-surrogate", "Hello \ud800"),
        ("author_name", "lone-surrogate", "Ada \udfff"),
        ("page", "lone-surrogate", "/a\ud800"),
    ]
]

TRANSPORT = [
    bad(
        "json-2mb", 413, raw=raw_json(valid_submission(body="x" * TWO_MEGABYTES)), content_type=JSON
    ),
    bad("form-2mb", 413, form=valid_submission(body="x" * TWO_MEGABYTES), html=True),
    bad(
        "form-2mb-for-json",
        413,
        form=valid_submission(body="x" * TWO_MEGABYTES),
        accept=PROBLEM_JSON,
    ),
    bad(
        "json-2mb-chunked",
        413,
        raw=raw_json(valid_submission(body="x" * TWO_MEGABYTES)),
        content_type=JSON,
        chunked=True,
    ),
    bad(
        "form-2mb-chunked-unknown-field-last",
        413,
        raw=urlencode({**valid_submission(), "padding": "x" * TWO_MEGABYTES}).encode(),
        content_type=FORM,
        chunked=True,
        html=True,
    ),
    bad(
        "content-type-text-plain", 415, raw=raw_json(valid_submission()), content_type="text/plain"
    ),
    bad("content-type-xml", 415, raw=b"<comment/>", content_type="application/xml"),
    bad("content-type-multipart", 415, form=valid_submission(), content_type="multipart/form-data"),
    bad("content-type-missing", 415, raw=raw_json(valid_submission())),
    bad("unknown-site", 404, json=valid_submission(), site="nope"),
    bad("foreign-origin", 403, json=valid_submission(), origin="https://evil.example"),
    bad("null-origin", 403, json=valid_submission(), origin="null"),
    bad("another-sites-origin", 403, json=valid_submission(), origin=OTHER_ORIGIN),
    # The form is refused the same way, in HTML unless JSON is asked for; Origin null is
    # taken from a form only with a return_to on the site's origins.
    bad("form-unknown-site", 404, form=valid_submission(), site="nope", html=True),
    bad("form-foreign-origin", 403, form=valid_submission(), origin=OTHER_ORIGIN, html=True),
    bad(
        "form-foreign-origin-for-json",
        403,
        form=valid_submission(),
        origin=OTHER_ORIGIN,
        accept="application/json",
    ),
    bad("form-null-origin-no-return-to", 403, form=valid_submission(), origin="null", html=True),
    bad(
        "form-null-origin-return-to-off-site",
        400,
        "return_to",
        form=valid_submission(return_to=f"{OTHER_ORIGIN}/a"),
        origin="null",
        html=True,
    ),
]

REPLIES = [
    bad(
        "parent-pending",
        422,
        "parent_id",
        json=valid_submission(),
        parent={"status": CommentStatus.PENDING},
    ),
    bad(
        "parent-rejected",
        422,
        "parent_id",
        json=valid_submission(),
        parent={"status": CommentStatus.REJECTED},
    ),
    bad(
        "parent-spam",
        422,
        "parent_id",
        json=valid_submission(),
        parent={"status": CommentStatus.SPAM},
    ),
    bad(
        "parent-on-another-page",
        422,
        "parent_id",
        json=valid_submission(),
        parent={"page": "/another-article"},
    ),
    bad(
        "parent-on-another-site", 422, "parent_id", json=valid_submission(), parent={"site": "blog"}
    ),
    bad("parent-missing", 422, "parent_id", json=valid_submission(parent_id=999_999)),
]

NO_JAVASCRIPT_FORM = [
    *[bad(f"form-{name}-missing", 422, name, form=without(name), html=True) for name in REQUIRED],
    bad(
        "form-email-invalid",
        422,
        "author_email",
        form=valid_submission(author_email="a@b"),
        html=True,
    ),
    bad(
        "form-parent-id-not-a-number",
        422,
        "parent_id",
        form=valid_submission(parent_id="abc"),
        html=True,
    ),
    bad(
        "form-parent-pending",
        422,
        "parent_id",
        form=valid_submission(),
        parent={"status": CommentStatus.PENDING},
        html=True,
    ),
    bad(
        "form-name-nul", 422, "author_name", form=valid_submission(author_name="Ada\x00"), html=True
    ),
    bad(
        "form-body-missing-prefers-json",
        422,
        "body",
        form=without("body"),
        accept=PROBLEM_JSON,
    ),
    *[
        bad(
            f"form-return-to-{label}",
            400,
            "return_to",
            form=valid_submission(return_to=url),
            html=True,
        )
        for label, url in [
            ("other-origin", "https://evil.example/x"),
            ("other-sites-origin", f"{OTHER_ORIGIN}/x"),
            ("protocol-relative", "//evil.example/x"),
            ("javascript", "javascript:alert(1)"),
            ("userinfo", f"{ORIGIN}@evil.example/x"),
            ("other-port", f"{ORIGIN}:8443/x"),
            ("backslash-then-site-host", "https://evil.example\\@news.example/"),
            ("tab", f"{ORIGIN}/a\tb"),
        ]
    ],
    bad(
        "form-page-url-off-origin",
        422,
        "page_url",
        form=valid_submission(page_url="https://evil.example/moderation/login"),
        html=True,
    ),
    bad(
        "form-page-url-backslash",
        422,
        "page_url",
        form=valid_submission(page_url="https://evil.example\\@news.example/x"),
        html=True,
    ),
    bad(
        "form-name-invisible",
        422,
        "author_name",
        form=valid_submission(author_name="\u3164"),
        html=True,
    ),
    # A page that is not UTF-8 posts its form in its own encoding (without accept-charset).
    bad("form-invalid-utf8", 400, raw=b"body=%FF", content_type=FORM, html=True),
    bad("form-invalid-utf8-raw-byte", 400, raw=b"body=\xff", content_type=FORM, html=True),
    bad(
        "form-invalid-utf8-for-json",
        400,
        raw=b"body=%FF",
        content_type=FORM,
        accept="application/json",
    ),
    bad(
        "form-too-many-fields",
        400,
        raw="&".join(f"f{n}=1" for n in range(MAX_FORM_FIELDS + 1)).encode(),
        content_type=FORM,
        html=True,
    ),
]

BAD_INPUT = [
    *MISSING_OR_BLANK,
    *MALFORMED_EMAILS,
    *BAD_URLS,
    *INVISIBLE_TEXT,
    *TOO_LONG,
    *WRONG_JSON_TYPES,
    *NOT_A_JSON_OBJECT,
    *CONTROL_CHARACTERS,
    *TRANSPORT,
    *REPLIES,
    *NO_JAVASCRIPT_FORM,
]


def page_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Page)) or 0


def assert_problem(response: TestResponse, status: int, field: str | None) -> None:
    assert response.mimetype == PROBLEM_JSON
    problem = response.get_json()
    assert problem["status"] == status
    for member in ("type", "title", "detail"):
        assert isinstance(problem[member], str) and problem[member], member
    if status == 422:
        assert field is not None, "a 422 case must name its field"
    if field is not None:
        assert set(problem["errors"]) == {field}
        assert problem["errors"][field]
        assert all(isinstance(message, str) and message for message in problem["errors"][field])


def error_items(html: str) -> list[str]:
    """The text of each ``<li>`` of an HTML error page."""
    return [
        re.sub(r"<[^>]+>", "", item).strip() for item in re.findall(r"<li>(.*?)</li>", html, re.S)
    ]


#: How the error page names each field: the reader's form's labels, and the page's own
#: (hidden) fields with their names for the site's owner.
LABELS = {
    "body": "Comment",
    "author_name": "Name",
    "author_email": "Email",
    "author_url": "Website",
    "page": "Page (page)",
    "page_url": "Page address (page_url)",
    "page_title": "Page title (page_title)",
    "parent_id": "Reply to (parent_id)",
    "return_to": "Return address (return_to)",
}


def assert_html_error_page(response: TestResponse, field: str | None) -> None:
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "was not posted" in html
    if field is not None:
        label = LABELS[field]
        assert any(item.startswith(f"{label}:") for item in error_items(html)), html


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_submission_is_refused_and_nothing_is_stored(
    app: Flask,
    client: FlaskClient,
    comment_count: Callable[[], int],
    make_comment: Callable[..., int],
    case: Bad,
) -> None:
    parent_id = make_comment(**case.parent) if case.parent is not None else None
    comments_before, pages_before = comment_count(), page_count(app)

    response = client.post(
        f"/api/v1/sites/{case.site}/comments", **case.request(app.config, parent_id)
    )

    assert response.status_code == case.status, response.get_data(as_text=True)
    if case.html:
        assert_html_error_page(response, case.field)
    else:
        assert_problem(response, case.status, case.field)
    if case.origin is not None:
        # A refused origin can read why (first-hour review, finding 3), and nothing else.
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Origin" in response.headers["Vary"]
    assert comment_count() == comments_before
    assert page_count(app) == pages_before
    if case.parent is None:
        assert (comments_before, pages_before) == (0, 0)


def stored(app: Flask, comment_id: int) -> dict[str, Any]:
    """The stored comment as the moderation API shows it (email and client facts included)."""
    with app.app_context():
        return moderation_comment(listing.find_comment(None, comment_id))


@pytest.mark.parametrize(
    ("sent", "normalized"),
    [
        pytest.param("first+tag@example.com", "first+tag@example.com", id="plus-addressing"),
        pytest.param("o'brien@example.com", "o'brien@example.com", id="apostrophe"),
        pytest.param("user@bücher.example", "user@bücher.example", id="idn-domain"),
        pytest.param("user@xn--bcher-kva.example", "user@bücher.example", id="punycode-domain"),
        pytest.param("用户@例子.广告", "用户@例子.广告", id="internationalized-local-part"),
        pytest.param("Ada@EXAMPLE.COM", "Ada@example.com", id="uppercase-domain"),
        pytest.param(
            "ada@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com",
            "ada@example.com",
            id="fullwidth-domain",
        ),
        pytest.param("  ada@example.com\n", "ada@example.com", id="surrounding-whitespace"),
    ],
)
def test_unusual_valid_email_is_accepted_and_stored_normalized(
    app: Flask, client: FlaskClient, sent: str, normalized: str
) -> None:
    response = client.post(SUBMIT, json=valid_submission(author_email=sent))

    assert response.status_code == 201, response.get_data(as_text=True)
    by_email_validator = validate_email(
        sent.strip(), check_deliverability=False, allow_smtputf8=True
    ).normalized
    assert by_email_validator == normalized
    assert stored(app, response.get_json()["id"])["author_email"] == normalized
    assert "author_email" not in response.get_json()


def test_limits_are_inclusive(app: Flask, client: FlaskClient) -> None:
    config = app.config
    body = "b" * config["MAX_BODY_LENGTH"]
    response = client.post(
        SUBMIT,
        json=valid_submission(
            body=f"  \n{body}\n\t ",
            author_name="n" * config["MAX_NAME_LENGTH"],
            author_email=email_of_length(config["MAX_EMAIL_LENGTH"]),
            author_url=url_of_length(config["MAX_URL_LENGTH"]),
        ),
    )

    assert response.status_code == 201, response.get_data(as_text=True)
    comment = stored(app, response.get_json()["id"])
    assert comment["body"] == body
    assert len(comment["author_name"]) == config["MAX_NAME_LENGTH"]
    assert len(comment["author_email"]) == config["MAX_EMAIL_LENGTH"]
    assert len(comment["author_url"]) == config["MAX_URL_LENGTH"]


def test_unknown_fields_are_ignored(app: Flask, client: FlaskClient) -> None:
    response = client.post(
        SUBMIT,
        json=valid_submission(
            id=424242,
            status="approved",
            site_id=2,
            moderated_by="mod@example.com",
            ip_prefix="10.0.0.0",
            is_admin=True,
        ),
    )

    assert response.status_code == 201, response.get_data(as_text=True)
    data = response.get_json()
    assert data["id"] != 424242
    assert data["status"] == "pending"
    comment = stored(app, data["id"])
    assert comment["status"] == "pending"
    assert comment["site"] == "news"
    assert comment["moderated_by"] is None
    assert comment["ip_prefix"] != "10.0.0.0"


def test_text_is_stored_trimmed_and_email_normalized(app: Flask, client: FlaskClient) -> None:
    response = client.post(
        SUBMIT,
        json=valid_submission(
            page=f"  {PAGE} ",
            body="\n  First line.\n\nSecond paragraph.  \n",
            author_name="  Ada Lovelace\t",
            author_email=" Ada@Example.COM ",
            author_url=" https://ada.example/ ",
        ),
    )

    assert response.status_code == 201, response.get_data(as_text=True)
    comment = stored(app, response.get_json()["id"])
    assert comment["body"] == "First line.\n\nSecond paragraph."
    assert comment["author_name"] == "Ada Lovelace"
    assert comment["author_email"] == "Ada@example.com"
    assert comment["author_url"] == "https://ada.example/"
    assert comment["page"]["key"] == PAGE


def test_created_answer_has_location_pending_status_and_no_email(client: FlaskClient) -> None:
    response = client.post(SUBMIT, json=valid_submission(author_email="secret.reader@example.com"))

    assert response.status_code == 201
    data = response.get_json()
    assert response.headers["Location"] == f"{SUBMIT}/{data['id']}"
    assert data["status"] == "pending"
    assert data["body"] == valid_submission()["body"]
    assert data["page"] == PAGE
    assert "author_email" not in data
    assert "secret.reader" not in response.get_data(as_text=True)


def test_the_sites_own_origin_may_post(
    client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    response = client.post(SUBMIT, json=valid_submission(), headers={"Origin": ORIGIN})

    assert response.status_code == 201
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert comment_count() == 1


def test_reply_to_an_approved_comment_on_the_same_page(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    parent_id = make_comment(status=CommentStatus.APPROVED)

    response = client.post(SUBMIT, json=valid_submission(parent_id=parent_id))

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["parent_id"] == parent_id
    assert stored(app, response.get_json()["id"])["parent_id"] == parent_id


def test_form_post_redirects_to_return_to_on_the_sites_origin(
    client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    return_to = f"{ORIGIN}/2025/10/us-china-talks?utm=x#comments"

    response = client.post(SUBMIT, data=valid_submission(return_to=return_to))

    assert response.status_code == 303
    assert response.headers["Location"] == return_to
    assert comment_count() == 1


def test_a_value_too_long_gets_one_error_and_no_further_checks(client: FlaskClient) -> None:
    """The length check stops validation: a 60 KB email is not also handed to the email
    validator (security review L5)."""
    response = client.post(
        SUBMIT, json=valid_submission(author_email="a" * 60_000 + "@example.com")
    )

    assert response.status_code == 422
    assert response.get_json()["errors"] == {"author_email": ["Must be at most 254 characters."]}


@pytest.mark.parametrize("name", ["author_name", "body"])
def test_invisible_text_is_refused_as_blank_text_is(client: FlaskClient, name: str) -> None:
    blank = client.post(SUBMIT, json=valid_submission(**{name: "   "}))
    invisible = client.post(SUBMIT, json=valid_submission(**{name: "\u200b\u3164\u0301"}))

    assert blank.status_code == invisible.status_code == 422
    assert invisible.get_json()["errors"] == blank.get_json()["errors"]
    assert blank.get_json()["errors"] == {name: ["This field is required."]}


def test_text_with_one_visible_character_is_accepted(app: Flask, client: FlaskClient) -> None:
    response = client.post(
        SUBMIT, json=valid_submission(author_name="\u200bA\u0301", body="\u3164\u00e9")
    )

    assert response.status_code == 201, response.get_data(as_text=True)
    comment = stored(app, response.get_json()["id"])
    assert (comment["author_name"], comment["body"]) == ("\u200bA\u0301", "\u3164\u00e9")


def test_bidi_controls_are_removed_from_names(app: Flask, client: FlaskClient) -> None:
    name = "\u202eAda\u200f \u2067Lovelace\u2069\u061c\u202a\u202c "
    response = client.post(SUBMIT, json=valid_submission(author_name=name))

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["author_name"] == "Ada Lovelace"
    assert stored(app, response.get_json()["id"])["author_name"] == "Ada Lovelace"


def test_urls_are_stored_as_written_out_again_from_their_parts(
    app: Flask, client: FlaskClient
) -> None:
    response = client.post(
        SUBMIT,
        json=valid_submission(
            author_url="HTTPS://Ada.EXAMPLE:443/About?x=1#me",
            page_url="https://NEWS.example:443/2025/10/us-china-talks",
        ),
    )

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["author_url"] == "https://ada.example/About?x=1#me"
    with app.app_context():
        comment = db.session.get(Comment, response.get_json()["id"])
        assert comment is not None
        assert comment.author_url == "https://ada.example/About?x=1#me"
        assert comment.page_url == f"{ORIGIN}/2025/10/us-china-talks"


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_the_longest_body_allowed_fits_the_default_request_size(
    app: Flask, client: FlaskClient, encoding: str
) -> None:
    """MAX_BODY_LENGTH's bound: a body of that many emoji, 12 bytes each in JSON's escapes
    and in a form's percent-encoding, still fits MAX_CONTENT_LENGTH's default."""
    assert app.config["MAX_CONTENT_LENGTH"] == SETTINGS_BY_NAME["MAX_CONTENT_LENGTH"].default
    app.config["MAX_BODY_LENGTH"] = MAX_BODY_LIMIT
    submission = valid_submission(body="\U0001f642" * MAX_BODY_LIMIT)
    if encoding == "json":
        raw = json.dumps(submission).encode()  # \ud83d\ude42: 12 bytes a character
        assert b"\\ud83d\\ude42" in raw
        response = client.post(SUBMIT, data=raw, content_type=JSON)
    else:
        raw = urlencode(submission).encode()  # %F0%9F%99%82: 12 bytes too
        response = client.post(SUBMIT, data=raw, content_type=FORM)
    assert len(raw) > 12 * MAX_BODY_LIMIT

    assert response.status_code in (201, 303), response.get_data(as_text=True)
