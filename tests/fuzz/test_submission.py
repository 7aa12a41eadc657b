"""Arbitrary submissions to ``POST /api/v1/sites/{site}/comments``, JSON and form-encoded.

Whatever is sent: never a 5xx; a refusal is an RFC 9457 problem (or, for the no-JavaScript
form, its HTML error page) and stores nothing, neither a comment nor a page; a success
stores exactly one comment, holding exactly what was sent (trimmed; bidi controls removed
from the name; URLs written out again from their parts) and no control character, line
break (outside the body) or lone surrogate.

Most examples are a valid submission with one or two fields changed, so that a change
reaches the code behind validation; the rest are anything at all.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import sqlalchemy as sa
from email_validator import validate_email
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, currently_in_test_context, event, given, note, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse
from werkzeug.urls import iri_to_uri

from commentsvc.extensions import db
from commentsvc.forms import remove_bidi_controls
from commentsvc.models import Comment, CommentStatus, Page, Site
from commentsvc.security import origin_of_url, parse_web_url
from tests.conftest import ORIGIN, OTHER_ORIGIN, valid_submission
from tests.fuzz.conftest import OTHER_PAGE, PAGE, Seeded

SUBMIT = "/api/v1/sites/news/comments"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
PROBLEM_JSON = "application/problem+json"
TEXT_FIELDS = (
    "page",
    "page_url",
    "page_title",
    "body",
    "author_name",
    "author_email",
    "author_url",
)
FIELDS = (*TEXT_FIELDS, "parent_id")
URL_FIELDS = ("page_url", "author_url", "return_to")
SINGLE_LINE = tuple(name for name in TEXT_FIELDS if name != "body")
#: The configured limits of the fields, and of the whole request (413 past it).
LIMIT_SETTINGS = (
    "MAX_PAGE_KEY_LENGTH",
    "MAX_URL_LENGTH",
    "MAX_PAGE_TITLE_LENGTH",
    "MAX_BODY_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_EMAIL_LENGTH",
    "MAX_CONTENT_LENGTH",
)

#: Every example of a test shares its one database, on purpose: each counts the rows
#: before and after itself, and earlier examples' comments make later ones' pages exist.
#: A request takes milliseconds but varies with the disk, hence no deadline.
FUZZ_SETTINGS = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@dataclass(frozen=True)
class Sized:
    """One character repeated to a configured limit plus ``delta`` (resolved per app)."""

    character: str
    setting: str
    delta: int

    def resolve(self, config: Mapping[str, Any]) -> str:
        return self.character * max(0, config[self.setting] + self.delta)


def resolve(value: Any, config: Mapping[str, Any]) -> Any:
    return value.resolve(config) if isinstance(value, Sized) else value


# --- What is sent -------------------------------------------------------------------------

#: Characters text validation must know about, in groups drawn about equally often.
AWKWARD_CHARACTERS = st.one_of(
    st.sampled_from([*"\n\r\x0b\x0c\x1c\x1e\x85\u2028\u2029"]),  # line breaks
    st.sampled_from([*"\x00\x01\x07\x08\t\x1b\x1f\x7f\x80\x9b\x9f"]),  # C0, DEL, C1
    st.sampled_from([*"\xa0\u200b\u200d\u202e\u3000\ufeff\ufffd"]),  # spaces, bidi, BOM
    st.sampled_from([*"\ud800\udbff\udc00\udfff"]),  # lone surrogates
    st.sampled_from([*" é🙂%&=+#?/@:<>\"'\\"]),  # markup, URL and form syntax
)
AWKWARD_TEXT = st.text(
    st.one_of(AWKWARD_CHARACTERS, st.characters(exclude_categories=())), max_size=20
)
SIZED = st.builds(
    Sized,
    character=st.sampled_from(["x", "é", "🙂", " "]),
    setting=st.sampled_from(LIMIT_SETTINGS),
    delta=st.sampled_from([-1, 0, 1]),
)
PLAUSIBLE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\t\n ",
        PAGE,
        OTHER_PAGE,
        "/new-page",
        "ada@example.com",
        " Ada@EXAMPLE.com ",
        "用户@例子.广告",
        "a@b",
        "ada@@example.com",
        "https://ada.example/",
        "http://[::1]:99999/",
        "javascript:alert(1)",
        "//evil.example/x",
        "<script>alert(1)</script>",
        "Line one\n\nLine two http://x.example/(a)",
    ]
)
#: 1-7 are the seeded comments (approved, pending, approved reply, rejected, spam, other
#: page, other site); the rest are missing, out of range or not integers.
PARENT_IDS = st.sampled_from(
    [1, 2, 3, 4, 5, 6, 7, 999_999, 0, -1, 2**31 - 1, 2**31, 2**63, 1.0, 1.5, True, "1", ""]
)
URLS = st.sampled_from(
    [
        f"{ORIGIN}/2025/10/us-china-talks#comments",
        f" {ORIGIN}/x ",
        f"{ORIGIN}:443/x",
        f"{OTHER_ORIGIN}/x",
        "https://evil.example/",
        "//evil.example/x",
        f"{ORIGIN}@evil.example/",
        "javascript:alert(1)",
        "",
    ]
)


def spliced(valid: str) -> st.SearchStrategy[str]:
    """``valid`` with an awkward character or three inserted somewhere in it."""
    return st.builds(
        lambda position, piece: valid[:position] + piece + valid[position:],
        st.integers(0, len(valid)),
        st.text(AWKWARD_CHARACTERS, min_size=1, max_size=3),
    )


VALID = {**valid_submission(), "return_to": f"{ORIGIN}/2025/10/us-china-talks"}


#: A URL on the site's origin with awkward text somewhere in its path.
ON_SITE_URL = spliced("/2025/10/us-china-talks").map(lambda path: ORIGIN + path)


def text_value(name: str) -> st.SearchStrategy[Any]:
    """Values for one text field: its valid value spliced, the plausible, the oversized."""
    return st.one_of(
        spliced(VALID[name]),
        PLAUSIBLE_TEXT,
        AWKWARD_TEXT,
        SIZED,
        *([URLS, ON_SITE_URL] if name in URL_FIELDS else []),
    )


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities too: json.dumps writes them, but they are not JSON
    AWKWARD_TEXT,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
JSON_CHANGE = st.one_of(
    *(st.tuples(st.just(name), text_value(name) | JSON_VALUES) for name in TEXT_FIELDS),
    st.tuples(st.just("parent_id"), PARENT_IDS | JSON_VALUES),
    st.tuples(st.text(max_size=8), JSON_VALUES),  # unknown fields are ignored
)
FORM_CHANGE = st.one_of(
    *(st.tuples(st.just(name), text_value(name)) for name in (*TEXT_FIELDS, "return_to")),
    # return_to is read and used before anything else, and only by the form: more of it.
    st.tuples(st.just("return_to"), ON_SITE_URL),
    st.tuples(st.just("parent_id"), PARENT_IDS.map(str) | AWKWARD_TEXT),
    st.tuples(st.text(max_size=8), AWKWARD_TEXT),
)


@st.composite
def json_payloads(draw: st.DrawFn) -> Any:
    """A valid submission with a field or two changed or removed; sometimes anything."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    payload: dict[str, Any] = valid_submission()
    for name in draw(st.sets(st.sampled_from(FIELDS), max_size=1)):
        payload.pop(name, None)
    payload.update(draw(st.lists(JSON_CHANGE, min_size=1, max_size=2)))
    return payload


@st.composite
def form_fields(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """A valid form with a field or two changed or removed; then maybe a repeated field."""
    fields: dict[str, Any] = valid_submission()
    if draw(st.booleans()):
        fields["return_to"] = VALID["return_to"]
    for name in draw(st.sets(st.sampled_from(FIELDS), max_size=1)):
        fields.pop(name, None)
    fields.update(draw(st.lists(FORM_CHANGE, min_size=1, max_size=2)))
    # A repeated field counts once, by its first value; repeats come after the first ones.
    return [*fields.items(), *draw(st.lists(FORM_CHANGE, max_size=1))]


HEADERS = st.fixed_dictionaries(
    {},
    optional={
        # Mostly the site's own origin, so that most requests get past the origin check.
        "Origin": st.sampled_from([ORIGIN, ORIGIN, ORIGIN, OTHER_ORIGIN, "null"]),
        # Any Latin-1 text a header can carry; longer than the stored maximum sometimes.
        "User-Agent": st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=600),
    },
)


def form_encoded(fields: list[tuple[str, str]]) -> bytes:
    """Percent-encoded UTF-8 (a lone surrogate as the bytes it would be, not UTF-8)."""

    def encoded(value: str) -> str:
        return quote(value.encode("utf-8", "surrogatepass"), safe="")

    return "&".join(f"{encoded(name)}={encoded(value)}" for name, value in fields).encode()


# --- What is stored -----------------------------------------------------------------------


NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class Rows:
    comments: int
    pages: int


def rows(app: Flask) -> Rows:
    with app.app_context():
        comments = db.session.scalar(sa.select(sa.func.count()).select_from(Comment))
        pages = db.session.scalar(sa.select(sa.func.count()).select_from(Page))
        return Rows(comments or 0, pages or 0)


def page_exists(app: Flask, key: str) -> bool:
    if NOT_TEXT.search(key):
        return False  # nothing stored holds one, and the database would refuse the query
    with app.app_context():
        statement = sa.select(Page.id).join(Site).where(Site.slug == "news", Page.key == key)
        return db.session.scalar(statement) is not None


def newest_comment_id(app: Flask) -> int:
    with app.app_context():
        newest = db.session.scalar(sa.select(sa.func.max(Comment.id)))
        assert newest is not None
        return newest


@dataclass(frozen=True)
class Stored:
    site: str
    status: CommentStatus
    page: str
    page_url: str | None
    page_title: str | None
    parent_id: int | None
    body: str
    body_html: str
    author_name: str
    author_email: str
    author_url: str | None


def stored(app: Flask, comment_id: int) -> Stored:
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        assert comment is not None, f"comment {comment_id} was answered but not stored"
        return Stored(
            site=comment.site.slug,
            status=comment.status,
            page=comment.page.key,
            page_url=comment.page_url,
            page_title=comment.page_title,
            parent_id=comment.parent_id,
            body=comment.body,
            body_html=comment.body_html,
            author_name=comment.author_name,
            author_email=comment.author_email,
            author_url=comment.author_url,
        )


#: Never stored: control characters (C0 and C1), line and paragraph separators, lone
#: surrogates; except that the body keeps its tabs and line breaks.
REFUSED_CATEGORIES = {"Cc", "Zl", "Zp", "Cs"}
BODY_CONTROLS = {"\t", "\n", "\r", "\u2028", "\u2029"}


def refused_characters(value: str | None, allowed: set[str]) -> list[str]:
    return [
        character
        for character in value or ""
        if unicodedata.category(character) in REFUSED_CATEGORIES and character not in allowed
    ]


def _meaning(url: str) -> tuple[Any, ...]:
    """What a URL says: its scheme, host, port (the default one made explicit), path,
    query and fragment."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}[parts.scheme]
    return parts.scheme, parts.hostname, port, parts.path, parts.query, parts.fragment


def assert_same_url(stored: str | None, sent: Any) -> None:
    """``stored`` is the URL ``sent`` (or both are none), written out again from its parts."""
    sent_text = str(sent or "").strip()
    if not sent_text:
        assert stored is None
        return
    assert stored is not None
    assert _meaning(stored) == _meaning(sent_text), (stored, sent_text)
    assert str(parse_web_url(stored)) == stored


def assert_stored_once(
    app: Flask, before: Rows, comment_id: int, sent: Mapping[str, Any], new_page: bool
) -> Stored:
    """One more comment (and page, if its key was new), holding what was sent, trimmed."""
    assert rows(app) == Rows(before.comments + 1, before.pages + int(new_page))
    comment = stored(app, comment_id)
    assert (comment.site, comment.status) == ("news", CommentStatus.PENDING), comment
    assert comment.page == sent["page"].strip(), comment
    assert comment.body == sent["body"].strip(), comment
    assert comment.author_name == remove_bidi_controls(sent["author_name"]).strip(), comment
    assert_same_url(comment.author_url, sent.get("author_url"))
    email = validate_email(sent["author_email"].strip(), check_deliverability=False)
    assert comment.author_email == email.normalized, comment
    # The comment keeps the page URL (on the site's origin) and title it was sent.
    assert_same_url(comment.page_url, sent.get("page_url"))
    if comment.page_url is not None:
        assert origin_of_url(comment.page_url) == ORIGIN, comment
    assert comment.page_title == (str(sent.get("page_title") or "").strip() or None)
    parent_id = str(sent.get("parent_id") or "").strip()  # blank counts as absent
    assert comment.parent_id == (int(parent_id) if parent_id else None), comment
    assert not refused_characters(comment.body, BODY_CONTROLS), comment
    for name in SINGLE_LINE:
        assert not refused_characters(getattr(comment, name), set()), (name, comment)
    return comment


def assert_problem(response: TestResponse) -> None:
    """An RFC 9457 problem document whose ``status`` is the response's."""
    assert response.mimetype == PROBLEM_JSON, (response.status, response.get_data(as_text=True))
    problem = response.get_json()
    assert isinstance(problem, dict), problem
    assert problem["status"] == response.status_code, problem
    for member in ("type", "title", "detail"):
        assert isinstance(problem[member], str) and problem[member], problem
    if response.status_code == 422:
        assert problem["type"] == "urn:commentsvc:problem:validation", problem
        assert problem.get("errors"), problem
    errors = problem.get("errors", {})
    assert isinstance(errors, dict), problem
    for field, messages in errors.items():
        assert isinstance(field, str) and isinstance(messages, list) and messages, problem
        assert all(isinstance(message, str) and message for message in messages), problem


def post(
    client: FlaskClient, raw: bytes, content_type: str, headers: dict[str, str]
) -> TestResponse:
    """Post ``raw``, noting the request so that a failure shows how to reproduce it."""
    if currently_in_test_context():
        shown = raw if len(raw) <= 2000 else raw[:2000] + b"... (%d bytes)" % len(raw)
        note(f"POST {SUBMIT}\nContent-Type: {content_type}\nheaders: {headers!r}\nbody: {shown!r}")
    response = client.post(SUBMIT, data=raw, content_type=content_type, headers=headers)
    assert response.status_code < 500, response.get_data(as_text=True)
    return response


def submit_json(
    app: Flask, client: FlaskClient, payload: Any, ascii_escapes: bool, headers: dict[str, str]
) -> TestResponse:
    """Submit ``payload`` as JSON and check the outcome, whatever it is."""
    # With ASCII escapes a lone surrogate is valid JSON (``"\ud800"``); without, the body
    # holds the surrogate's bytes, which are not UTF-8.
    raw = json.dumps(payload, ensure_ascii=ascii_escapes).encode("utf-8", "surrogatepass")
    before = rows(app)
    page = payload.get("page") if isinstance(payload, dict) else None
    new_page = not (isinstance(page, str) and page_exists(app, page.strip()))

    response = post(client, raw, JSON, headers)

    if response.status_code == 201:
        assert response.mimetype == JSON
        answer = response.get_json()
        comment = assert_stored_once(app, before, answer["id"], payload, new_page)
        assert answer["body"] == comment.body
        assert answer["body_html"] == comment.body_html
        assert answer["page"] == comment.page
        assert answer["status"] == "pending"
        assert "author_email" not in answer
        assert response.headers["Location"] == f"{SUBMIT}/{answer['id']}"
    else:
        assert response.status_code >= 400, response.status
        assert_problem(response)
        assert rows(app) == before
    return response


def submit_form(
    app: Flask,
    client: FlaskClient,
    fields: list[tuple[str, str]],
    wants_json: bool,
    headers: dict[str, str],
) -> TestResponse:
    """Submit ``fields`` as the no-JavaScript form and check the outcome, whatever it is."""
    if wants_json:
        headers = {**headers, "Accept": PROBLEM_JSON}
    sent: dict[str, str] = {}
    for name, value in fields:
        sent.setdefault(name, value)
    before = rows(app)
    new_page = not page_exists(app, sent.get("page", "").strip())

    response = post(client, form_encoded(fields), FORM, headers)

    if response.status_code in (201, 303):
        assert_stored_once(app, before, newest_comment_id(app), sent, new_page)
        if response.status_code == 303:
            # Back to return_to, else to page_url, written out again from its parts; either
            # way on the site (no open redirect).
            location = response.headers["Location"]
            targets = (sent.get("return_to", "").strip(), sent.get("page_url", "").strip())
            assert location in {
                iri_to_uri(str(parse_web_url(target))) for target in targets if target
            }, location
            assert origin_of_url(location) == ORIGIN, location
        else:
            assert response.mimetype == "text/html"
    else:
        assert response.status_code >= 400, response.status
        if wants_json or response.mimetype != "text/html":
            # A problem+json when the client asks for JSON; else every refusal of a form
            # post, before or after the form is read, is the HTML page.
            assert_problem(response)
        else:
            assert "was not posted" in response.get_data(as_text=True)
        assert rows(app) == before
    return response


# --- The properties -----------------------------------------------------------------------


@FUZZ_SETTINGS
@given(payload=json_payloads(), ascii_escapes=st.booleans(), headers=HEADERS)
def test_json_submission(
    app: Flask,
    client: FlaskClient,
    seeded: Seeded,
    payload: Any,
    ascii_escapes: bool,
    headers: dict[str, str],
) -> None:
    if isinstance(payload, dict):
        payload = {name: resolve(value, app.config) for name, value in payload.items()}
    response = submit_json(app, client, payload, ascii_escapes, headers)
    event(f"{response.status_code} {response.mimetype}")


@FUZZ_SETTINGS
@given(form=form_fields(), wants_json=st.booleans(), headers=HEADERS)
def test_form_submission(
    app: Flask,
    client: FlaskClient,
    seeded: Seeded,
    form: list[tuple[str, Any]],
    wants_json: bool,
    headers: dict[str, str],
) -> None:
    fields = [(name, str(resolve(value, app.config))) for name, value in form]
    response = submit_form(app, client, fields, wants_json, headers)
    event(f"{response.status_code} {response.mimetype}")


#: One of each kind of character that text validation has to decide about.
EVERY_AWKWARD_CHARACTER = [
    *"\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1c\x1d\x1e\x1f\x7f",
    *"\x80\x85\x9b\x9f",
    *"\xa0\u2028\u2029\u200b\u200d\u202e\u3000\ufeff\ufffd",
    *"\ud800\udfff",
]


def test_every_awkward_character_in_every_field(
    app: Flask, client: FlaskClient, seeded: Seeded
) -> None:
    """Each awkward character inside each field, by JSON and by form: refused, or stored
    as sent. Deterministic and complete where the fuzzing above is neither."""
    failures: list[str] = []
    for name in (*TEXT_FIELDS, "return_to"):
        valid: str = VALID[name]
        for number, character in enumerate(EVERY_AWKWARD_CHARACTER):
            value = valid[:-2] + character + valid[-2:]
            for encoding in ("json", "form"):
                # A new page each time: each one's own comment.
                page = f"/sweep/{name}/{number}/{encoding}"
                fields = {**valid_submission(page=page, return_to=VALID["return_to"]), name: value}
                try:
                    if encoding == "json":
                        submit_json(app, client, fields, ascii_escapes=True, headers={})
                    else:
                        submit_form(app, client, [*fields.items()], False, headers={})
                except AssertionError as error:
                    summary = str(error).splitlines()[0][:150]
                    failures.append(f"{encoding} {name}={value!r}: {summary}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)


# --- What the fuzzing found, kept as plain regression tests --------------------------------


@pytest.mark.parametrize(
    ("field", "character"),
    [
        ("author_name", "\x85"),  # NEL: a line break
        ("author_name", "\x9b"),  # CSI: starts an 8-bit terminal escape sequence
        ("page", "\x80"),
        ("page_title", "\x85"),
        ("body", "\x9b"),
    ],
)
@pytest.mark.parametrize("content_type", [JSON, FORM])
def test_c1_control_characters_are_refused(
    app: Flask, client: FlaskClient, content_type: str, field: str, character: str
) -> None:
    data = valid_submission(**{field: f"a{character}b"})
    raw = json.dumps(data).encode() if content_type == JSON else form_encoded([*data.items()])

    response = client.post(
        SUBMIT, data=raw, content_type=content_type, headers={"Accept": PROBLEM_JSON}
    )

    assert response.status_code == 422, response.get_data(as_text=True)
    assert_problem(response)
    assert set(response.get_json()["errors"]) == {field}
    assert rows(app) == Rows(0, 0)


@pytest.mark.parametrize(
    "return_to", [f"{ORIGIN}/a\nSet-Cookie: x=y", f"{ORIGIN}/a\r\nb", f"{ORIGIN}/a\rb"]
)
def test_return_to_with_a_line_break_is_refused(
    app: Flask, client: FlaskClient, return_to: str
) -> None:
    fields = [*valid_submission(return_to=return_to).items()]

    response = client.post(SUBMIT, data=form_encoded(fields), content_type=FORM)

    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert "Set-Cookie" not in response.headers
    assert rows(app) == Rows(0, 0)
