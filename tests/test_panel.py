"""The moderator web panel: login, CSRF, headers, queue, actions, undo, scope, detail, audit.

Everything goes through the Flask test client with CSRF on; tokens are scraped from the
pages the panel renders, so the tests exercise the real forms. The admin pages are in
``test_panel_admin.py``, which reuses the helpers below.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import itsdangerous.timed
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from commentsvc import create_app
from commentsvc.extensions import db
from commentsvc.models import (
    ApiToken,
    Comment,
    CommentStatus,
    LoginAttempt,
    ModerationEvent,
    Moderator,
    Page,
    Site,
    moderator_sites,
)
from commentsvc.pagination import encode_cursor
from commentsvc.services import accounts
from tests.conftest import ORIGIN, PASSWORD, valid_submission

PANEL = "/moderation"
LOGIN = f"{PANEL}/login"
ADMIN = "admin@example.com"
BLOG_MODERATOR = "blogger@example.com"
BAD_LOGIN = "Invalid email or password."
PENDING = CommentStatus.PENDING
APPROVED = CommentStatus.APPROVED


# --- a small HTML tree, enough to assert on structure -------------------------------------

VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
    | {"track", "wbr"}
)


@dataclass
class Element:
    """One HTML element: its tag, attributes and children (elements and text)."""

    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def _strings(self) -> str:
        return "".join(c if isinstance(c, str) else c._strings() for c in self.children)

    @property
    def text(self) -> str:
        """The text content, whitespace collapsed."""
        return " ".join(self._strings().split())

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    def iter(self) -> Iterator[Element]:
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def find_all(
        self, tag: str | None = None, cls: str | None = None, **attrs: str
    ) -> list[Element]:
        """Descendants by tag, class and attributes (``data_id`` means ``data-id``)."""
        wanted = {name.rstrip("_").replace("_", "-"): value for name, value in attrs.items()}
        return [
            element
            for element in self.iter()
            if (tag is None or element.tag == tag)
            and (cls is None or cls in element.classes)
            and all(element.attrs.get(name) == value for name, value in wanted.items())
        ]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag} class={cls!r} {attrs}> in the page"
        return found[0]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID_ELEMENTS:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def html(response: TestResponse) -> Element:
    """The response body as an element tree."""
    assert response.mimetype == "text/html", response.mimetype
    builder = _TreeBuilder()
    builder.feed(response.get_data(as_text=True))
    builder.close()
    return builder.root


def flashes(response: TestResponse) -> list[tuple[str, str]]:
    """(category, message) of every flash message on a page."""
    return [
        (
            next(c.removeprefix("flash-") for c in box.classes if c.startswith("flash-")),
            box.find("span", cls="flash-message").text,
        )
        for box in html(response).find_all("div", cls="flash")
    ]


def shown_ids(response: TestResponse) -> list[int]:
    """Ids of the comments a queue page shows, in order."""
    return [int(item.attrs["data-id"]) for item in html(response).find_all("article", "comment")]


def tab_counts(response: TestResponse) -> dict[str, int]:
    tabs = html(response).find("nav", cls="status-tabs")
    return {
        tab.attrs["data-status"]: int(tab.find("span", cls="count").text)
        for tab in tabs.find_all("a")
    }


# --- logging in and posting forms ----------------------------------------------------------


def csrf_token(client: FlaskClient, path: str | None = None) -> str:
    """The CSRF token of a form the panel renders (for the client's current session)."""
    response = client.get(path or f"{PANEL}/audit")
    if path is None and response.status_code == 302:
        response = client.get(LOGIN)
    assert response.status_code == 200, (path, response.status_code)
    return html(response).find("input", name="csrf_token").attrs["value"]


def login_path(next_url: str | None = None) -> str:
    return LOGIN if next_url is None else f"{LOGIN}?{urlencode({'next': next_url})}"


def log_in(
    client: FlaskClient, email: str, password: str = PASSWORD, next_url: str | None = None
) -> TestResponse:
    """Log in through the login form, with the token scraped from the login page."""
    path = login_path(next_url)
    token = csrf_token(client, path)
    return client.post(path, data={"csrf_token": token, "email": email, "password": password})


def submit(
    client: FlaskClient,
    path: str,
    data: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """POST a panel form with a valid CSRF token."""
    return client.post(
        path, data={"csrf_token": csrf_token(client), **(data or {})}, headers=headers
    )


def is_login_redirect(response: TestResponse, next_path: str | None = None) -> bool:
    if response.status_code not in {302, 303}:
        return False
    location = urlsplit(response.headers["Location"])
    if location.path != LOGIN:
        return False
    return next_path is None or parse_qs(location.query).get("next") == [next_path]


def session_cookie(response: TestResponse) -> str | None:
    """The raw Set-Cookie header of the panel's session cookie, if the response sets it."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("commentsvc_session="):
            return header
    return None


JSON_HEADERS = {"Accept": "application/json"}


# --- stored state --------------------------------------------------------------------------


def status_of(app: Flask, comment_id: int) -> CommentStatus | None:
    """A comment's status; None once it is deleted."""
    with app.app_context():
        return db.session.scalar(sa.select(Comment.status).where(Comment.id == comment_id))


def events_of(app: Flask, comment_id: int) -> list[tuple[str, str | None, str | None, str | None]]:
    """(action, from, to, note) of a comment's audit events, oldest first."""
    with app.app_context():
        return [
            (
                event.action.value,
                event.from_status and event.from_status.value,
                event.to_status and event.to_status.value,
                event.note,
            )
            for event in db.session.scalars(
                sa.select(ModerationEvent)
                .where(ModerationEvent.comment_id == comment_id)
                .order_by(ModerationEvent.id)
            )
        ]


def snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a panel form could change (not login bookkeeping)."""
    queries = {
        "comments": sa.select(Comment.id, Comment.status, Comment.body, Comment.moderated_by_id),
        "events": sa.select(ModerationEvent.id, ModerationEvent.action, ModerationEvent.note),
        "pages": sa.select(Page.id, Page.approved_count, Page.version),
        "sites": sa.select(Site.id, Site.slug, Site.name, Site.origins, Site.settings),
        "moderators": sa.select(
            Moderator.id,
            Moderator.email,
            Moderator.password_hash,
            Moderator.is_active,
            Moderator.is_admin,
            Moderator.all_sites,
        ),
        "moderator_sites": sa.select(moderator_sites.c.moderator_id, moderator_sites.c.site_id),
        "tokens": sa.select(ApiToken.id, ApiToken.name, ApiToken.token_hash, ApiToken.revoked_at),
    }
    with app.app_context():
        return {
            name: sorted(tuple(row) for row in db.session.execute(query))
            for name, query in queries.items()
        }


def database_bytes(app: Flask) -> bytes:
    """What the database stores: the raw bytes of a SQLite file and its WAL; on a server whose
    files are out of reach (PostgreSQL), every row of every table, as text."""
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(
            candidate.read_bytes()
            for candidate in (path, path.with_name(path.name + "-wal"))
            if candidate.exists()
        )
    with app.app_context():
        metadata = sa.MetaData()
        metadata.reflect(db.engine)
        return b"".join(
            repr(tuple(row)).encode()
            for table in metadata.sorted_tables
            for row in db.session.execute(sa.select(table))
        )


# --- fixtures ------------------------------------------------------------------------------


def add_moderator(
    app: Flask,
    email: str = ADMIN,
    *,
    admin: bool = False,
    sites: tuple[str, ...] = (),
    active: bool = True,
    password: str = PASSWORD,
) -> int:
    """Create a moderator through the accounts service (scrypt: slow-ish); returns its id."""
    with app.app_context():
        chosen = accounts.sites_by_slug(sites)
        moderator = accounts.create_moderator(email, password, admin=admin, sites=chosen)
        if not active:
            accounts.update_moderator(moderator.id, active=False, admin=admin, sites=chosen)
        return moderator.id


def logged_in(app: Flask, email: str, client: FlaskClient | None = None) -> FlaskClient:
    """A client (a new one unless given) logged in through the login form."""
    client = client or app.test_client()
    assert log_in(client, email).status_code == 303
    return client


def existing_rows(app: Flask, make_comment: Callable[..., int]) -> dict[str, int]:
    """Ids of one row of each kind a panel URL names."""
    comment = make_comment(status=PENDING)
    moderator = add_moderator(app, "someone@example.com", sites=("news",))
    with app.app_context():
        owner = db.session.get(Moderator, moderator)
        assert owner is not None
        token = accounts.create_token(owner, "ci").token.id
        site = db.session.scalar(sa.select(Site.id).where(Site.slug == "news"))
    assert site is not None
    return {"comment": comment, "moderator": moderator, "token": token, "site": site}


@pytest.fixture
def make_moderator(app: Flask) -> Callable[..., int]:
    """Create a moderator: ``make_moderator(email, admin=, sites=, active=, password=)``."""
    return partial(add_moderator, app)


@pytest.fixture
def admin_client(app: Flask, client: FlaskClient) -> FlaskClient:
    """The default client, logged in as an administrator of every site."""
    add_moderator(app, ADMIN, admin=True)
    return logged_in(app, ADMIN, client)


@pytest.fixture
def blog_client(app: Flask) -> FlaskClient:
    """A second client, logged in as a moderator of the site "blog" only."""
    add_moderator(app, BLOG_MODERATOR, sites=("blog",))
    return logged_in(app, BLOG_MODERATOR)


@pytest.fixture
def make_panel_app(app: Flask) -> Iterator[Callable[..., Flask]]:
    """Another app on the same database, with some settings changed."""
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        other = create_app(
            {
                "ENV": "testing",
                "SECRET_KEY": "test-secret",
                "DATABASE_URL": app.config["DATABASE_URL"],
                "RATELIMIT_ENABLED": False,
                **overrides,
            }
        )
        made.append(other)
        return other

    yield make
    for other in made:
        with other.app_context():
            db.engine.dispose()


@pytest.fixture
def existing(app: Flask, make_comment: Callable[..., int]) -> dict[str, int]:
    """Ids of one comment, site, moderator and token."""
    return existing_rows(app, make_comment)


# --- anonymous visitors ----------------------------------------------------------------------

PAGES = [
    "/",
    "/audit",
    "/comments/{comment}",
    "/sites",
    "/sites/{site}",
    "/moderators",
    "/moderators/{moderator}",
    "/tokens",
]

POSTS = [
    ("/comments/{comment}/approve", {}),
    ("/comments/{comment}/delete", {}),
    ("/comments/bulk", {"ids": "{comment}", "action": "spam"}),
    ("/undo", {}),
    ("/sites", {"slug": "evil", "name": "Evil", "origins": "https://evil.example"}),
    ("/sites/{site}", {"name": "Hacked", "origins": "https://evil.example"}),
    ("/moderators", {"email": "evil@example.com", "password": "evil-password", "admin": "y"}),
    ("/moderators/{moderator}", {"active": "y", "admin": "y"}),
    ("/tokens", {"name": "evil", "moderator": "someone@example.com"}),
    ("/tokens/{token}/revoke", {}),
    ("/logout", {}),
]


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_pages_redirect_to_login(
    client: FlaskClient, existing: dict[str, int], page: str
) -> None:
    path = PANEL + page.format(**existing)
    response = client.get(path)
    assert response.status_code == 302
    assert is_login_redirect(response, next_path=path)
    assert "Please log in to moderate." in client.get(response.headers["Location"]).text


def _post_data(data: dict[str, str], ids: dict[str, int]) -> dict[str, str]:
    return {name: value.format(**ids) for name, value in data.items()}


@pytest.mark.parametrize(("path", "data"), POSTS)
def test_anonymous_posts_without_token_are_refused(
    app: Flask, client: FlaskClient, existing: dict[str, int], path: str, data: dict[str, str]
) -> None:
    before = snapshot(app)
    response = client.post(PANEL + path.format(**existing), data=_post_data(data, existing))
    assert response.status_code == 400
    assert snapshot(app) == before


@pytest.mark.parametrize(("path", "data"), POSTS)
def test_anonymous_posts_with_token_go_to_login_and_change_nothing(
    app: Flask, client: FlaskClient, existing: dict[str, int], path: str, data: dict[str, str]
) -> None:
    before = snapshot(app)
    token = csrf_token(client, LOGIN)
    response = client.post(
        PANEL + path.format(**existing), data={"csrf_token": token, **_post_data(data, existing)}
    )
    assert is_login_redirect(response)
    assert snapshot(app) == before


# --- logging in ------------------------------------------------------------------------------


def test_login_page_has_the_form(client: FlaskClient) -> None:
    response = client.get(LOGIN)
    assert response.status_code == 200
    form = html(response).find("form", id="login-form")
    assert form.attrs["method"] == "post"
    assert form.find("input", name="csrf_token").attrs["value"]
    assert form.find("input", name="email").attrs["autocomplete"] == "username"
    password = form.find("input", name="password")
    assert password.attrs["type"] == "password"
    assert password.attrs["autocomplete"] == "current-password"


def _normalized(response: TestResponse, email: str) -> str:
    body = response.get_data(as_text=True).replace(email, "EMAIL")
    return re.sub(r'value="[^"]*"', 'value=""', body)


def test_failed_logins_all_look_the_same(
    app: Flask, client: FlaskClient, make_moderator: Callable[..., int]
) -> None:
    make_moderator("active@example.com")
    make_moderator("gone@example.com", active=False)
    attempts = {
        "unknown email": ("nobody@example.com", PASSWORD),
        "wrong password": ("active@example.com", "not the password"),
        "inactive moderator": ("gone@example.com", PASSWORD),
    }
    bodies = {}
    for reason, (email, password) in attempts.items():
        response = log_in(client, email, password)
        assert response.status_code == 401, reason
        assert html(response).find("p", cls="error").text == BAD_LOGIN, reason
        bodies[reason] = _normalized(response, email)
        assert is_login_redirect(client.get(f"{PANEL}/"))
    assert len(set(bodies.values())) == 1, bodies
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt)) == 3
        assert not db.session.scalar(sa.select(sa.func.count()).where(LoginAttempt.succeeded))


def test_login_sets_a_strict_session_cookie(
    app: Flask, client: FlaskClient, make_moderator: Callable[..., int]
) -> None:
    make_moderator("mod@example.com")
    response = log_in(client, "Mod@Example.com ")
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PANEL}/"
    cookie = session_cookie(response)
    assert cookie is not None
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "expires", "path"} <= attributes
    assert "samesite=lax" in cookie.lower()
    queue = client.get(f"{PANEL}/")
    assert queue.status_code == 200
    assert html(queue).find("span", cls="whoami").text == "mod@example.com"
    with app.app_context():
        moderator = db.session.scalar(sa.select(Moderator))
        assert moderator is not None
        assert moderator.last_login_at is not None


def test_session_cookie_is_not_secure_when_configured(
    make_panel_app: Callable[..., Flask], make_moderator: Callable[..., int]
) -> None:
    make_moderator("mod@example.com")
    client = make_panel_app(SESSION_COOKIE_SECURE=False).test_client()
    cookie = session_cookie(log_in(client, "mod@example.com"))
    assert cookie is not None
    assert "secure" not in cookie.lower()
    assert "httponly" in cookie.lower()


def test_login_page_redirects_a_logged_in_moderator(admin_client: FlaskClient) -> None:
    response = admin_client.get(LOGIN)
    assert response.status_code == 302
    assert response.headers["Location"] == f"{PANEL}/"


@pytest.mark.parametrize(
    ("next_url", "landing"),
    [
        (f"{PANEL}/audit", f"{PANEL}/audit"),
        (f"{PANEL}/?status=spam&site=blog", f"{PANEL}/?status=spam&site=blog"),
        (f"http://localhost{PANEL}/sites", f"{PANEL}/sites"),
        (f"https://evil.example{PANEL}/", f"{PANEL}/"),
        (f"//evil.example{PANEL}/", f"{PANEL}/"),
        ("//evil.example", f"{PANEL}/"),
        ("https://evil.example/", f"{PANEL}/"),
        ("/\\evil.example/", f"{PANEL}/"),
        (f"{PANEL}/\\\\evil.example", f"{PANEL}/"),
        ("/api/v1/moderation/comments", f"{PANEL}/"),
        ("/", f"{PANEL}/"),
        ("javascript:alert(1)", f"{PANEL}/"),
        ("", f"{PANEL}/"),
    ],
)
def test_login_follows_next_only_inside_the_panel(
    client: FlaskClient, make_moderator: Callable[..., int], next_url: str, landing: str
) -> None:
    make_moderator("mod@example.com")
    response = log_in(client, "mod@example.com", next_url=next_url)
    assert response.status_code == 303
    assert response.headers["Location"] == landing


def test_login_returns_to_the_page_that_asked_for_it(
    client: FlaskClient, make_moderator: Callable[..., int], make_comment: Callable[..., int]
) -> None:
    make_moderator("mod@example.com")
    comment = make_comment(status=PENDING)
    wanted = f"{PANEL}/comments/{comment}"
    redirect = client.get(wanted)
    next_url = parse_qs(urlsplit(redirect.headers["Location"]).query)["next"][0]
    response = log_in(client, "mod@example.com", next_url=next_url)
    assert response.headers["Location"] == wanted
    assert client.get(wanted).status_code == 200


def test_login_without_csrf_token_is_refused(
    app: Flask, client: FlaskClient, make_moderator: Callable[..., int]
) -> None:
    make_moderator("mod@example.com")
    client.get(LOGIN)
    response = client.post(LOGIN, data={"email": "mod@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert is_login_redirect(client.get(f"{PANEL}/"))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt)) == 0


def test_login_with_a_nul_in_the_email_is_refused(
    app: Flask, client: FlaskClient, make_moderator: Callable[..., int]
) -> None:
    """Nothing stored holds a NUL, and PostgreSQL refuses one in a query outright."""
    make_moderator("mod@example.com")
    response = log_in(client, "mod\x00@example.com")
    assert response.status_code == 400
    assert is_login_redirect(client.get(f"{PANEL}/"))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt)) == 0


@pytest.mark.parametrize(
    "query",
    ["/?q=a%00b", "/?site=ne%00ws", "/?page=/a%00b", "/audit?moderator=a%00b", "/audit?site=a%00b"],
)
def test_a_nul_in_a_filter_is_refused_with_400(admin_client: FlaskClient, query: str) -> None:
    response = admin_client.get(PANEL + query)
    assert response.status_code == 400
    assert response.mimetype == "text/html"


def test_login_with_another_sessions_token_is_refused(
    app: Flask, client: FlaskClient, make_moderator: Callable[..., int]
) -> None:
    make_moderator("mod@example.com")
    foreign = csrf_token(app.test_client(), LOGIN)
    client.get(LOGIN)
    response = client.post(
        LOGIN, data={"csrf_token": foreign, "email": "mod@example.com", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert is_login_redirect(client.get(f"{PANEL}/"))


def test_password_is_never_logged_nor_stored_in_clear(
    app: Flask,
    client: FlaskClient,
    make_moderator: Callable[..., int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    make_moderator("mod@example.com")
    failed = log_in(client, "mod@example.com", PASSWORD + "-wrong")
    assert PASSWORD not in failed.get_data(as_text=True)
    assert log_in(client, "mod@example.com").status_code == 303
    logged = caplog.text + " ".join(repr(record.args) for record in caplog.records)
    assert PASSWORD not in logged
    with app.app_context():
        stored = db.session.scalar(sa.select(Moderator.password_hash))
    assert stored is not None
    assert stored.startswith("scrypt:")
    assert PASSWORD not in stored
    assert PASSWORD.encode() not in database_bytes(app)


# --- throttling ----------------------------------------------------------------------------------


def _fail(client: FlaskClient, email: str, times: int) -> None:
    for _ in range(times):
        assert log_in(client, email, "not the password").status_code == 401


def test_account_is_locked_after_too_many_failures(
    make_panel_app: Callable[..., Flask], make_moderator: Callable[..., int]
) -> None:
    make_moderator("mod@example.com")
    make_moderator("other@example.com")
    app = make_panel_app(RATELIMIT_ENABLED=True)
    limit = app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
    assert limit < app.config["LOGIN_MAX_FAILURES_PER_CLIENT"]
    client = app.test_client()
    _fail(client, "mod@example.com", limit)
    refused = log_in(client, "mod@example.com")
    assert refused.status_code == 429
    assert "Too many failed attempts" in html(refused).find("p", cls="error").text
    assert is_login_redirect(client.get(f"{PANEL}/"))
    # From somewhere else too: the lock is on the account.
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert log_in(elsewhere, "mod@example.com").status_code == 429
    # Other accounts from the same client are not locked.
    assert log_in(client, "other@example.com").status_code == 303


def test_client_is_refused_after_too_many_failures(
    make_panel_app: Callable[..., Flask], make_moderator: Callable[..., int]
) -> None:
    make_moderator("mod@example.com")
    app = make_panel_app(
        RATELIMIT_ENABLED=True, LOGIN_MAX_FAILURES_PER_CLIENT=3, LOGIN_MAX_FAILURES_PER_ACCOUNT=50
    )
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    for number in range(3):
        assert log_in(attacker, f"guess{number}@example.com", "x" * 9).status_code == 401
    assert log_in(attacker, "mod@example.com").status_code == 429
    neighbour = app.test_client()
    neighbour.environ_base["REMOTE_ADDR"] = "198.51.100.8"  # same anonymized /24
    assert log_in(neighbour, "mod@example.com").status_code == 429
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert log_in(elsewhere, "mod@example.com").status_code == 303


def test_no_throttling_when_rate_limits_are_off(
    app: Flask, client: FlaskClient, make_moderator: Callable[..., int]
) -> None:
    assert app.config["RATELIMIT_ENABLED"] is False
    make_moderator("mod@example.com")
    _fail(client, "mod@example.com", app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] + 2)
    assert log_in(client, "mod@example.com").status_code == 303


# --- logging out ---------------------------------------------------------------------------------


def test_logout_ends_the_session(admin_client: FlaskClient) -> None:
    response = submit(admin_client, f"{PANEL}/logout")
    assert response.status_code == 303
    assert response.headers["Location"] == LOGIN
    assert ("success", "You have been logged out.") in flashes(admin_client.get(LOGIN))
    assert is_login_redirect(admin_client.get(f"{PANEL}/"))


def test_session_cookie_from_before_logout_no_longer_works(
    app: Flask, admin_client: FlaskClient
) -> None:
    cookie = admin_client.get_cookie("commentsvc_session")
    assert cookie is not None
    assert submit(admin_client, f"{PANEL}/logout").status_code == 303
    replay = app.test_client()
    replay.set_cookie("commentsvc_session", cookie.value)
    assert is_login_redirect(replay.get(f"{PANEL}/"))


def test_logout_by_get_is_not_allowed(admin_client: FlaskClient) -> None:
    response = admin_client.get(f"{PANEL}/logout")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert admin_client.get(f"{PANEL}/").status_code == 200


# --- CSRF -------------------------------------------------------------------------------------

ADMIN_POSTS = [
    ("/comments/{comment}/approve", {}),
    ("/comments/{comment}/delete", {}),
    ("/comments/bulk", {"ids": "{comment}", "action": "reject"}),
    ("/undo", {}),
    ("/sites", {"slug": "docs", "name": "Docs", "origins": "https://docs.example"}),
    ("/sites/{site}", {"name": "Renamed", "origins": "https://news.example"}),
    ("/moderators", {"email": "new@example.com", "password": "a long password"}),
    ("/moderators/{moderator}", {"admin": "y", "active": "y"}),
    ("/tokens", {"name": "ci", "moderator": ADMIN}),
    ("/tokens/{token}/revoke", {}),
    ("/logout", {}),
]


@pytest.fixture
def undoable(app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]) -> int:
    """A comment the admin just approved, so the session holds an undo."""
    comment = make_comment(status=PENDING)
    assert submit(admin_client, f"{PANEL}/comments/{comment}/approve").status_code == 303
    assert status_of(app, comment) == APPROVED
    return comment


@pytest.mark.parametrize("token", [None, "forged-token", "other-session"])
@pytest.mark.parametrize(("path", "data"), ADMIN_POSTS)
def test_posts_without_a_valid_token_are_refused(
    app: Flask,
    admin_client: FlaskClient,
    existing: dict[str, int],
    undoable: int,
    path: str,
    data: dict[str, str],
    token: str | None,
) -> None:
    if token == "other-session":
        token = csrf_token(app.test_client(), LOGIN)
    form = _post_data(data, existing)
    if token is not None:
        form["csrf_token"] = token
    before = snapshot(app)
    response = admin_client.post(PANEL + path.format(**existing), data=form)
    assert response.status_code == 400
    assert "This form has expired" in html(response).find("main").text
    assert snapshot(app) == before
    assert admin_client.get(f"{PANEL}/").status_code == 200  # still logged in
    assert status_of(app, undoable) == APPROVED


def test_json_actions_need_the_token_too(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    response = admin_client.post(f"{PANEL}/comments/{comment}/approve", headers=JSON_HEADERS)
    assert response.status_code == 400
    assert status_of(app, comment) == PENDING
    # The script sends the token in a header; that is accepted.
    response = admin_client.post(
        f"{PANEL}/comments/{comment}/approve",
        headers={**JSON_HEADERS, "X-CSRFToken": csrf_token(admin_client)},
    )
    assert response.status_code == 200
    assert status_of(app, comment) == APPROVED


# --- security headers --------------------------------------------------------------------------


def _check_security_headers(response: TestResponse, *, page: bool = True) -> None:
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in response.headers["Content-Security-Policy"].split(";")
        if directive.strip()
    }
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in {
        "same-origin",
        "no-referrer",
        "strict-origin",
        "strict-origin-when-cross-origin",
    }
    if page:
        assert "no-store" in response.headers["Cache-Control"]


def test_security_headers_for_anonymous_visitors(client: FlaskClient) -> None:
    for path, status in [
        (LOGIN, 200),
        (f"{PANEL}/", 302),
        (f"{PANEL}/nothing-here", 404),
        (f"{PANEL}/comments/x", 404),
    ]:
        response = client.get(path)
        assert response.status_code == status, path
        _check_security_headers(response)
    refused = client.post(LOGIN, data={"email": "a@example.com", "password": "x"})
    assert refused.status_code == 400
    _check_security_headers(refused)
    failed = log_in(client, "nobody@example.com")
    assert failed.status_code == 401
    _check_security_headers(failed)
    for name in ("panel.js", "panel.css"):
        static = client.get(f"{PANEL}/static/{name}")
        assert static.status_code == 200
        _check_security_headers(static, page=False)
        static.close()


def test_security_headers_on_every_page_of_a_session(
    admin_client: FlaskClient, blog_client: FlaskClient, existing: dict[str, int]
) -> None:
    responses = [admin_client.get(PANEL + page.format(**existing)) for page in PAGES] + [
        admin_client.get(f"{PANEL}/comments/999999"),
        admin_client.get(f"{PANEL}/logout"),
        blog_client.get(f"{PANEL}/sites"),
        submit(admin_client, f"{PANEL}/comments/{existing['comment']}/approve"),
        submit(
            admin_client,
            f"{PANEL}/comments/{existing['comment']}/reject",
            headers=JSON_HEADERS,
        ),
        admin_client.post(f"{PANEL}/undo"),
    ]
    assert [r.status_code for r in responses[len(PAGES) :]] == [404, 405, 403, 303, 200, 400]
    for response in responses:
        _check_security_headers(response)


def test_pages_need_no_inline_script_or_style(
    admin_client: FlaskClient, existing: dict[str, int]
) -> None:
    """The CSP forbids inline script and style; no page may depend on them."""
    submit(admin_client, f"{PANEL}/comments/{existing['comment']}/approve")
    pages = [PANEL + page.format(**existing) for page in PAGES]
    for path in [*pages, f"{PANEL}/comments/999999"]:
        response = admin_client.get(path)
        for element in html(response).iter():
            assert element.tag != "style", path
            assert "style" not in element.attrs, (path, element.tag)
            assert not [name for name in element.attrs if name.startswith("on")], path
            if element.tag == "script":
                assert element.attrs.get("src", "").startswith(f"{PANEL}/static/"), path
                assert not element.text, path
            if element.tag == "a" and "href" in element.attrs:
                assert not element.attrs["href"].lower().startswith("javascript:"), path


# --- the queue ------------------------------------------------------------------------------


def test_queue_shows_pending_comments_newest_first(
    admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    first = make_comment(status=PENDING)
    make_comment(status=APPROVED)
    second = make_comment(status=PENDING, site="blog", page="/post")
    third = make_comment(status=PENDING)
    make_comment(status=CommentStatus.SPAM)
    response = admin_client.get(f"{PANEL}/")
    assert response.status_code == 200
    assert shown_ids(response) == [third, second, first]
    current = html(response).find("nav", cls="status-tabs").find("a", aria_current="page")
    assert current.attrs["data-status"] == "pending"


def test_queue_tabs_count_each_status(
    admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    for status, number in [(PENDING, 3), (APPROVED, 2), (CommentStatus.SPAM, 1)]:
        for _ in range(number):
            make_comment(status=status)
    response = admin_client.get(f"{PANEL}/")
    assert tab_counts(response) == {"pending": 3, "approved": 2, "rejected": 0, "spam": 1}


@pytest.mark.parametrize("status", list(CommentStatus))
def test_status_tabs_show_their_status(
    admin_client: FlaskClient, make_comment: Callable[..., int], status: CommentStatus
) -> None:
    made = {s: make_comment(status=s) for s in CommentStatus}
    response = admin_client.get(f"{PANEL}/?status={status.value}")
    assert shown_ids(response) == [made[status]]
    current = html(response).find("nav", cls="status-tabs").find("a", aria_current="page")
    assert current.attrs["data-status"] == status.value
    items = html(response).find_all("article", cls="comment")
    assert [item.attrs["data-status"] for item in items] == [status.value]


def test_unknown_status_falls_back_to_pending(
    admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    pending = make_comment(status=PENDING)
    make_comment(status=APPROVED)
    response = admin_client.get(f"{PANEL}/?status=bogus&cursor=not-a-cursor")
    assert response.status_code == 200
    assert shown_ids(response) == [pending]


def test_queue_filters_by_site_page_and_text(
    admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    news_a = make_comment(status=PENDING, page="/a", body="About the election")
    news_b = make_comment(status=PENDING, page="/b", author_email="needle@example.com")
    blog_a = make_comment(status=PENDING, site="blog", page="/a", body="Needle in a haystack")
    make_comment(status=APPROVED, site="blog", page="/a", body="needle approved")

    assert shown_ids(admin_client.get(f"{PANEL}/?site=blog")) == [blog_a]
    assert shown_ids(admin_client.get(f"{PANEL}/?page=/a")) == [blog_a, news_a]
    assert shown_ids(admin_client.get(f"{PANEL}/?site=news&page=/a")) == [news_a]
    assert shown_ids(admin_client.get(f"{PANEL}/?q=NEEDLE")) == [blog_a, news_b]
    assert shown_ids(admin_client.get(f"{PANEL}/?q=election")) == [news_a]
    assert shown_ids(admin_client.get(f"{PANEL}/?q=%25")) == []
    filtered = admin_client.get(f"{PANEL}/?site=blog&q=needle")
    assert shown_ids(filtered) == [blog_a]
    assert tab_counts(filtered) == {"pending": 1, "approved": 1, "rejected": 0, "spam": 0}
    # The tabs keep the filters; the filter form shows them.
    doc = html(filtered)
    approved_tab = doc.find("nav", cls="status-tabs").find("a", data_status="approved")
    query = parse_qs(urlsplit(approved_tab.attrs["href"]).query)
    assert query == {"status": ["approved"], "site": ["blog"], "q": ["needle"]}
    form = doc.find("form", id="filters")
    assert form.find("option", value="blog").attrs.get("selected") is not None
    assert form.find("input", name="q").attrs["value"] == "needle"


def test_queue_pages_with_a_cursor(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    app.config["PANEL_PAGE_SIZE"] = 2
    made = [make_comment(status=PENDING) for _ in range(5)]
    make_comment(status=PENDING, site="blog")
    seen: list[list[int]] = []
    path: str | None = f"{PANEL}/?site=news"
    while path is not None:
        response = admin_client.get(path)
        seen.append(shown_ids(response))
        links = html(response).find_all("a", rel="next")
        path = links[0].attrs["href"] if links else None
        if path is not None:
            assert parse_qs(urlsplit(path).query)["site"] == ["news"]
    assert seen == [made[4:2:-1], made[2:0:-1], made[:1]]


def test_queue_item_shows_what_a_moderator_needs(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    page = "/2025/10/us-china-talks"
    parent = make_comment(status=APPROVED, page=page, body="The parent comment says this.")
    public = app.test_client()
    public.environ_base["REMOTE_ADDR"] = "203.0.113.77"
    submitted = public.post(
        "/api/v1/sites/news/comments",
        json=valid_submission(parent_id=parent, body="A reply."),
        headers={"Origin": ORIGIN},
    )
    assert submitted.status_code == 201
    reply = submitted.get_json()["id"]

    response = admin_client.get(f"{PANEL}/")
    item = html(response).find("article", cls="comment", data_id=str(reply))
    assert item.find(cls="author-name").text == "Ada Lovelace"
    assert item.find(cls="author-email").text == "ada@example.com"
    website = item.find("a", cls="author-url")
    assert website.attrs["href"] == "https://ada.example/"
    assert "nofollow" in website.attrs["rel"]
    page_link = item.find("a", cls="page-link")
    assert page_link.attrs["href"] == f"{ORIGIN}{page}"
    assert page_link.text == "US-China talks"
    time = item.find("time")
    assert time.attrs["datetime"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", time.attrs["title"])
    assert time.text == "just now"
    assert item.find(cls="ip").text == "203.0.113.0"
    assert "203.0.113.77" not in response.get_data(as_text=True)
    excerpt = item.find("blockquote", cls="parent-excerpt")
    assert "The parent comment says this." in excerpt.text
    assert item.find(cls="body").text == "A reply."
    buttons = {b.attrs["data-action"] for b in item.find_all("button", cls="act")}
    assert buttons == {"approve", "reject", "spam", "delete"}


def test_comment_text_is_escaped(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    parent = make_comment(status=APPROVED, body='<script>alert("parent")</script>')
    submitted = app.test_client().post(
        "/api/v1/sites/news/comments",
        json=valid_submission(
            parent_id=parent,
            body='<script>alert("x")</script> <img src=x onerror=alert(1)>',
            author_name="<b>Bold</b>",
            page_title="<i>Title</i>",
        ),
        headers={"Origin": ORIGIN},
    )
    assert submitted.status_code == 201
    comment = submitted.get_json()["id"]
    for path in (f"{PANEL}/", f"{PANEL}/comments/{comment}"):
        raw = admin_client.get(path).get_data(as_text=True)
        assert "<script>alert" not in raw
        assert "<img src=x" not in raw
        assert "<b>Bold" not in raw
        assert "<i>Title" not in raw
        assert "&lt;script&gt;alert(" in raw
        assert "&lt;b&gt;Bold&lt;/b&gt;" in raw
        assert len(re.findall(r"<script\b", raw)) == 1  # panel.js only


def test_empty_queue_says_so(admin_client: FlaskClient) -> None:
    response = admin_client.get(f"{PANEL}/?status=spam&q=zzz")
    assert html(response).find("p", cls="empty").text == "No spam comments match these filters."


# --- per-comment actions ----------------------------------------------------------------------

ACTIONS = [
    ("approve", CommentStatus.APPROVED, "Approved 1 comment."),
    ("reject", CommentStatus.REJECTED, "Rejected 1 comment."),
    ("spam", CommentStatus.SPAM, "Marked as spam: 1 comment."),
    ("delete", None, "Deleted 1 comment."),
]


@pytest.mark.parametrize(("action", "status", "message"), ACTIONS)
def test_action_on_one_comment(
    app: Flask,
    admin_client: FlaskClient,
    make_comment: Callable[..., int],
    action: str,
    status: CommentStatus | None,
    message: str,
) -> None:
    comment = make_comment(status=PENDING)
    other = make_comment(status=PENDING)
    back = f"{PANEL}/?status=pending&site=news"
    response = submit(admin_client, f"{PANEL}/comments/{comment}/{action}", {"next": back})
    assert response.status_code == 303
    assert response.headers["Location"] == back
    assert status_of(app, comment) == status
    assert status_of(app, other) == PENDING
    to_status = status.value if status else None
    assert events_of(app, comment) == [(action, "pending", to_status, None)]
    with app.app_context():
        event = db.session.scalar(sa.select(ModerationEvent))
        assert event is not None
        assert event.actor == ADMIN
        if status is not None:
            stored = db.session.get(Comment, comment)
            assert stored is not None
            assert stored.moderated_by is not None
            assert stored.moderated_by.email == ADMIN
            assert stored.moderated_at is not None
        page = db.session.scalar(sa.select(Page))
        assert page is not None
        assert page.approved_count == (1 if status == APPROVED else 0)
    page_after = admin_client.get(back)
    assert ("success", message) in flashes(page_after)
    assert comment not in shown_ids(page_after)
    # A flash is shown once.
    assert flashes(admin_client.get(back)) == []


def test_action_goes_back_only_to_panel_pages(
    admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    for back in ("https://evil.example/", "//evil.example/", "/api/v1/sites/news/comments"):
        comment = make_comment(status=PENDING)
        response = submit(admin_client, f"{PANEL}/comments/{comment}/approve", {"next": back})
        assert response.headers["Location"] == f"{PANEL}/"


def test_deleting_from_the_detail_page_goes_back_to_the_queue(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    detail = f"{PANEL}/comments/{comment}"
    form = html(admin_client.get(detail)).find("form", id="detail-form")
    back = form.find("input", name="next").attrs["value"]
    assert back == detail
    response = submit(admin_client, f"{detail}/delete", {"next": back})
    assert response.headers["Location"] == f"{PANEL}/"
    assert status_of(app, comment) is None
    # Other actions from the detail page go back to it.
    kept = make_comment(status=PENDING)
    response = submit(
        admin_client, f"{PANEL}/comments/{kept}/spam", {"next": f"{PANEL}/comments/{kept}"}
    )
    assert response.headers["Location"] == f"{PANEL}/comments/{kept}"


@pytest.mark.parametrize("action", ["frobnicate", "requeue", "edit", "Approve", "approve "])
def test_unknown_action_is_404(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int], action: str
) -> None:
    """Only approve, reject, spam and delete are panel actions."""
    comment = make_comment(status=CommentStatus.REJECTED)
    before = snapshot(app)
    response = submit(admin_client, f"{PANEL}/comments/{comment}/{action}")
    assert response.status_code == 404
    assert snapshot(app) == before


def test_action_on_a_missing_comment_is_404(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    before = snapshot(app)
    assert submit(admin_client, f"{PANEL}/comments/{comment + 1}/approve").status_code == 404
    assert submit(admin_client, f"{PANEL}/comments/0/approve").status_code == 404
    assert submit(admin_client, f"{PANEL}/comments/{2**31}/approve").status_code == 404
    assert snapshot(app) == before


def test_action_as_json(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    make_comment(status=PENDING)
    response = submit(admin_client, f"{PANEL}/comments/{comment}/approve", headers=JSON_HEADERS)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    data = response.get_json()
    assert {"message", "changed", "undo", "counts"} <= set(data)
    assert data["message"] == "Approved 1 comment."
    assert data["changed"] == [comment]
    assert data["undo"] is True
    assert data["counts"] == {"pending": 1, "approved": 1, "rejected": 0, "spam": 0}
    assert status_of(app, comment) == APPROVED
    # JSON answers carry no flash for the next page.
    assert flashes(admin_client.get(f"{PANEL}/")) == []

    deleted = submit(admin_client, f"{PANEL}/comments/{comment}/delete", headers=JSON_HEADERS)
    data = deleted.get_json()
    assert data["message"] == "Deleted 1 comment."
    assert data["undo"] is False
    assert data["counts"] == {"pending": 1, "approved": 0, "rejected": 0, "spam": 0}


def test_approving_an_approved_comment_changes_nothing(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=APPROVED)
    response = submit(admin_client, f"{PANEL}/comments/{comment}/approve", headers=JSON_HEADERS)
    assert response.get_json()["changed"] == []
    assert response.get_json()["undo"] is False
    assert events_of(app, comment) == []


# --- bulk actions ---------------------------------------------------------------------------


def test_bulk_action(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    chosen = [make_comment(status=PENDING) for _ in range(3)]
    left = make_comment(status=PENDING)
    page = admin_client.get(f"{PANEL}/")
    form = html(page).find("form", id="bulk-form")
    assert form.attrs["action"] == f"{PANEL}/comments/bulk"
    assert {b.attrs["value"] for b in form.find_all("button", name="action")} == {
        "approve",
        "reject",
        "spam",
        "delete",
    }
    boxes = [box.attrs["value"] for box in form.find_all("input", name="ids")]
    assert sorted(map(int, boxes)) == sorted([*chosen, left])
    response = submit(
        admin_client,
        f"{PANEL}/comments/bulk",
        {"ids": [str(i) for i in chosen], "action": "reject", "next": f"{PANEL}/"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PANEL}/"
    after = admin_client.get(f"{PANEL}/")
    assert ("success", "Rejected 3 comments.") in flashes(after)
    assert shown_ids(after) == [left]
    for comment in chosen:
        assert status_of(app, comment) == CommentStatus.REJECTED
        assert events_of(app, comment) == [("reject", "pending", "rejected", None)]
    assert status_of(app, left) == PENDING


def test_bulk_without_ids_changes_nothing(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    make_comment(status=PENDING)
    before = snapshot(app)
    for ids in ([], ["abc"], ["-1"], ["\uff11"]):
        response = submit(admin_client, f"{PANEL}/comments/bulk", {"ids": ids, "action": "approve"})
        assert response.status_code == 303
        assert ("error", "Select at least one comment first.") in flashes(
            admin_client.get(response.headers["Location"])
        )
    assert snapshot(app) == before


def test_bulk_with_unknown_action_changes_nothing(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=CommentStatus.REJECTED)
    before = snapshot(app)
    for action in ("", "requeue", "edit", "publish"):
        response = submit(
            admin_client, f"{PANEL}/comments/bulk", {"ids": str(comment), "action": action}
        )
        assert response.status_code == 400, action
    assert snapshot(app) == before


def test_bulk_with_an_unknown_id_changes_nothing(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    before = snapshot(app)
    response = submit(
        admin_client,
        f"{PANEL}/comments/bulk",
        {"ids": [str(comment), str(comment + 100)], "action": "delete"},
    )
    assert response.status_code == 303
    messages = flashes(admin_client.get(response.headers["Location"]))
    assert [category for category, _ in messages] == ["error"]
    assert "nothing was changed" in messages[0][1]
    assert snapshot(app) == before


@pytest.mark.parametrize("too_large", [str(2**31), str(2**63), "9" * 30])
def test_bulk_with_an_id_beyond_any_row_changes_nothing(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int], too_large: str
) -> None:
    """Ids are 32-bit on PostgreSQL: a larger one is an unknown comment, not a database error."""
    comment = make_comment(status=PENDING)
    before = snapshot(app)
    response = submit(
        admin_client,
        f"{PANEL}/comments/bulk",
        {"ids": [str(comment), too_large], "action": "approve"},
    )
    assert response.status_code == 303
    messages = flashes(admin_client.get(response.headers["Location"]))
    assert [category for category, _ in messages] == ["error"]
    assert "nothing was changed" in messages[0][1]
    assert snapshot(app) == before


def test_bulk_respects_the_bulk_limit(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    """MAX_BULK_IDS bounds every bulk moderation request, the panel's as well as the API's."""
    app.config["MAX_BULK_IDS"] = 2
    ids = [str(make_comment(status=PENDING)) for _ in range(3)]
    before = snapshot(app)
    response = submit(admin_client, f"{PANEL}/comments/bulk", {"ids": ids, "action": "spam"})
    assert response.status_code in {303, 400, 413, 422}
    assert snapshot(app) == before
    assert (
        submit(
            admin_client, f"{PANEL}/comments/bulk", {"ids": ids[:2], "action": "spam"}
        ).status_code
        == 303
    )


# --- undo ------------------------------------------------------------------------------------


def test_undo_restores_previous_statuses(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    pending = make_comment(status=PENDING)
    spam = make_comment(status=CommentStatus.SPAM)
    response = submit(
        admin_client,
        f"{PANEL}/comments/bulk",
        {"ids": [str(pending), str(spam)], "action": "approve", "next": f"{PANEL}/?status=spam"},
    )
    page = admin_client.get(response.headers["Location"])
    flash = html(page).find("div", cls="flash-success")
    assert flash.find("span", cls="flash-message").text == "Approved 2 comments."
    undo_form = flash.find("form", cls="undo")
    assert undo_form.attrs["action"] == f"{PANEL}/undo"
    assert undo_form.find("input", name="next").attrs["value"] == f"{PANEL}/?status=spam"

    undone = admin_client.post(
        f"{PANEL}/undo",
        data={
            "csrf_token": undo_form.find("input", name="csrf_token").attrs["value"],
            "next": undo_form.find("input", name="next").attrs["value"],
        },
    )
    assert undone.status_code == 303
    assert undone.headers["Location"] == f"{PANEL}/?status=spam"
    assert ("success", "Undone: 2 comments restored.") in flashes(
        admin_client.get(undone.headers["Location"])
    )
    assert status_of(app, pending) == PENDING
    assert status_of(app, spam) == CommentStatus.SPAM
    assert events_of(app, pending)[-1] == ("requeue", "approved", "pending", "undo")
    assert events_of(app, spam)[-1] == ("spam", "approved", "spam", "undo")
    with app.app_context():
        page_row = db.session.scalar(sa.select(Page))
        assert page_row is not None
        assert page_row.approved_count == 0
    # An undo is used once.
    again = submit(admin_client, f"{PANEL}/undo")
    assert ("success", "There is nothing to undo.") in flashes(
        admin_client.get(again.headers["Location"])
    )


def test_undo_leaves_comments_changed_since_alone(
    app: Flask,
    admin_client: FlaskClient,
    make_comment: Callable[..., int],
    make_token: Callable[..., str],
) -> None:
    first = make_comment(status=PENDING)
    second = make_comment(status=PENDING)
    submit(
        admin_client,
        f"{PANEL}/comments/bulk",
        {"ids": [str(first), str(second)], "action": "approve"},
    )
    # Somebody else rejects one of them in the meantime.
    token = make_token("colleague@example.com")
    changed = app.test_client().patch(
        f"/api/v1/moderation/comments/{second}",
        json={"status": "rejected"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert changed.status_code == 200
    response = submit(admin_client, f"{PANEL}/undo", headers=JSON_HEADERS)
    data = response.get_json()
    assert data["message"] == "Undone: 1 comment restored."
    assert data["restored"] == [first]
    assert data["counts"] == {"pending": 1, "approved": 0, "rejected": 1, "spam": 0}
    assert status_of(app, first) == PENDING
    assert status_of(app, second) == CommentStatus.REJECTED


def test_nothing_to_undo(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    make_comment(status=PENDING)
    before = snapshot(app)
    response = submit(admin_client, f"{PANEL}/undo", {"next": f"{PANEL}/audit"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PANEL}/audit"
    assert ("success", "There is nothing to undo.") in flashes(admin_client.get(f"{PANEL}/audit"))
    assert snapshot(app) == before


def test_delete_offers_no_undo(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    approved = make_comment(status=PENDING)
    deleted = make_comment(status=PENDING)
    submit(admin_client, f"{PANEL}/comments/{approved}/approve")
    response = submit(admin_client, f"{PANEL}/comments/{deleted}/delete")
    page = admin_client.get(response.headers["Location"])
    assert ("success", "Deleted 1 comment.") in flashes(page)
    assert html(page).find_all("form", cls="undo") == []
    # The earlier approve cannot be undone once something else was done since.
    assert (
        submit(admin_client, f"{PANEL}/undo", headers=JSON_HEADERS).get_json()["message"]
        == "There is nothing to undo."
    )
    assert status_of(app, approved) == APPROVED
    assert status_of(app, deleted) is None


def test_undo_belongs_to_the_session(
    app: Flask,
    admin_client: FlaskClient,
    blog_client: FlaskClient,
    make_comment: Callable[..., int],
) -> None:
    comment = make_comment(status=PENDING, site="blog")
    submit(admin_client, f"{PANEL}/comments/{comment}/approve")
    data = submit(blog_client, f"{PANEL}/undo", headers=JSON_HEADERS).get_json()
    assert data["message"] == "There is nothing to undo."
    assert status_of(app, comment) == APPROVED


# --- scope: a moderator of some sites -------------------------------------------------------


def test_limited_moderator_sees_only_their_sites(
    blog_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    blog = make_comment(status=PENDING, site="blog", page="/post")
    make_comment(status=PENDING, site="news")
    make_comment(status=APPROVED, site="news")
    make_comment(status=CommentStatus.SPAM, site="news")
    response = blog_client.get(f"{PANEL}/")
    assert shown_ids(response) == [blog]
    assert tab_counts(response) == {"pending": 1, "approved": 0, "rejected": 0, "spam": 0}
    options = html(response).find("form", id="filters").find_all("option")
    assert [option.attrs["value"] for option in options] == ["", "blog"]
    asked = blog_client.get(f"{PANEL}/?site=news&status=spam")
    assert shown_ids(asked) == []
    assert tab_counts(asked) == {"pending": 0, "approved": 0, "rejected": 0, "spam": 0}
    # No admin links for a moderator.
    nav = html(response).find("nav", aria_label="Main")
    assert {a.attrs["href"] for a in nav.find_all("a")} == {f"{PANEL}/", f"{PANEL}/audit"}


def test_limited_moderator_gets_404_for_other_sites_comments(
    app: Flask, blog_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    news = make_comment(status=PENDING, site="news")
    blog = make_comment(status=PENDING, site="blog", page="/post")
    assert blog_client.get(f"{PANEL}/comments/{news}").status_code == 404
    assert blog_client.get(f"{PANEL}/comments/{blog}").status_code == 200
    before = snapshot(app)
    for action in ("approve", "reject", "spam", "delete"):
        response = submit(blog_client, f"{PANEL}/comments/{news}/{action}")
        assert response.status_code == 404, action
        response = submit(blog_client, f"{PANEL}/comments/{news}/{action}", headers=JSON_HEADERS)
        assert response.status_code == 404, action
    assert snapshot(app) == before
    response = submit(
        blog_client, f"{PANEL}/comments/bulk", {"ids": [str(blog), str(news)], "action": "spam"}
    )
    assert response.status_code == 303
    assert [c for c, _ in flashes(blog_client.get(response.headers["Location"]))] == ["error"]
    assert snapshot(app) == before
    # Their own site's comments they can moderate.
    assert submit(blog_client, f"{PANEL}/comments/{blog}/approve").status_code == 303
    assert status_of(app, blog) == APPROVED


def test_admin_sees_every_site(admin_client: FlaskClient, make_comment: Callable[..., int]) -> None:
    news = make_comment(status=PENDING, site="news")
    blog = make_comment(status=PENDING, site="blog", page="/post")
    response = admin_client.get(f"{PANEL}/")
    assert shown_ids(response) == [blog, news]
    assert tab_counts(response)["pending"] == 2
    nav = html(response).find("nav", aria_label="Main")
    assert f"{PANEL}/sites" in {a.attrs["href"] for a in nav.find_all("a")}
    for comment in (news, blog):
        assert admin_client.get(f"{PANEL}/comments/{comment}").status_code == 200


def test_deactivated_moderator_is_logged_out(app: Flask, blog_client: FlaskClient) -> None:
    assert blog_client.get(f"{PANEL}/").status_code == 200
    with app.app_context():
        moderator = accounts.find_moderator(BLOG_MODERATOR)
        assert moderator is not None
        accounts.update_moderator(moderator.id, active=False, admin=False, sites=moderator.sites)
    assert is_login_redirect(blog_client.get(f"{PANEL}/"))


# --- the detail page -------------------------------------------------------------------------


def test_detail_shows_body_history_and_same_author(
    app: Flask,
    admin_client: FlaskClient,
    blog_client: FlaskClient,
    make_comment: Callable[..., int],
) -> None:
    email = "repeat@example.com"
    comment = make_comment(
        status=PENDING, site="blog", body="First paragraph.\n\nSecond one.", author_email=email
    )
    older = make_comment(status=CommentStatus.SPAM, site="blog", page="/x", author_email=email)
    news = make_comment(status=APPROVED, site="news", author_email=email)
    make_comment(status=PENDING, site="blog", author_email="someone-else@example.com")
    submit(admin_client, f"{PANEL}/comments/{comment}/approve")
    submit(admin_client, f"{PANEL}/comments/{comment}/reject")

    response = admin_client.get(f"{PANEL}/comments/{comment}")
    assert response.status_code == 200
    doc = html(response)
    body = doc.find("article", cls="comment").find("div", cls="body")
    assert [p.text for p in body.find_all("p")] == ["First paragraph.", "Second one."]
    history = doc.find("ol", cls="history").find_all("li")
    assert len(history) == 2
    assert ADMIN in history[0].text
    assert "approve" in history[0].text
    assert "pending → approved" in history[0].text
    assert "approved → rejected" in history[1].text
    same = doc.find("section", cls="same-author")
    assert email in same.find("h2").text
    linked = {a.attrs["href"] for a in same.find_all("a")}
    assert linked == {f"{PANEL}/comments/{older}", f"{PANEL}/comments/{news}"}

    # A moderator of the blog does not learn about the news comment.
    limited = html(blog_client.get(f"{PANEL}/comments/{comment}"))
    linked = {a.attrs["href"] for a in limited.find("section", cls="same-author").find_all("a")}
    assert linked == {f"{PANEL}/comments/{older}"}


def test_detail_of_a_fresh_comment(
    admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    doc = html(admin_client.get(f"{PANEL}/comments/{comment}"))
    assert doc.find_all("ol", cls="history") == []
    assert doc.find("section", cls="same-author").find("p", cls="empty").text == "None."
    assert admin_client.get(f"{PANEL}/comments/{comment + 1}").status_code == 404


# --- the audit log ---------------------------------------------------------------------------


def _audit_rows(response: TestResponse) -> list[list[str]]:
    rows = html(response).find("table", cls="audit").find("tbody").find_all("tr")
    return [[cell.text for cell in row.find_all("td")] for row in rows]


def test_audit_lists_events_newest_first(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    first = make_comment(status=PENDING)
    second = make_comment(status=PENDING, site="blog", page="/post")
    submit(admin_client, f"{PANEL}/comments/{first}/approve")
    submit(admin_client, f"{PANEL}/comments/{second}/spam")
    submit(admin_client, f"{PANEL}/comments/{first}/delete")
    rows = _audit_rows(admin_client.get(f"{PANEL}/audit"))
    assert [(row[1], row[2], row[3], row[4]) for row in rows] == [
        (ADMIN, "delete", f"#{first}", "news"),
        (ADMIN, "spam pending → spam", f"#{second}", "blog"),
        (ADMIN, "approve pending → approved", f"#{first}", "news"),
    ]
    assert all(row[0] == "just now" for row in rows)


def test_audit_filters(
    app: Flask,
    admin_client: FlaskClient,
    blog_client: FlaskClient,
    make_comment: Callable[..., int],
) -> None:
    news = make_comment(status=PENDING)
    blog = make_comment(status=PENDING, site="blog", page="/post")
    submit(admin_client, f"{PANEL}/comments/{news}/approve")
    submit(blog_client, f"{PANEL}/comments/{blog}/reject")
    submit(admin_client, f"{PANEL}/comments/{blog}/approve")

    def comments_in(path: str) -> list[str]:
        return [row[3] for row in _audit_rows(admin_client.get(path))]

    assert comments_in(f"{PANEL}/audit?comment_id={blog}") == [f"#{blog}", f"#{blog}"]
    assert comments_in(f"{PANEL}/audit?moderator={BLOG_MODERATOR.upper()}") == [f"#{blog}"]
    assert comments_in(f"{PANEL}/audit?site=news") == [f"#{news}"]
    assert comments_in(f"{PANEL}/audit?site=blog&moderator={ADMIN}") == [f"#{blog}"]
    for unknown in (999999, 2**31, 2**63):  # ids are 32-bit on PostgreSQL
        empty = admin_client.get(f"{PANEL}/audit?comment_id={unknown}")
        assert html(empty).find("p", cls="empty").text == "No events."
    # Bad values are ignored rather than failing.
    assert admin_client.get(f"{PANEL}/audit?comment_id=abc&cursor=zz").status_code == 200
    beyond = encode_cursor(2**31)
    assert admin_client.get(f"{PANEL}/audit?cursor={beyond}").status_code == 200
    assert admin_client.get(f"{PANEL}/?cursor={beyond}").status_code == 200


def test_audit_is_limited_to_the_moderators_sites(
    admin_client: FlaskClient, blog_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    news = make_comment(status=PENDING)
    blog = make_comment(status=PENDING, site="blog", page="/post")
    submit(admin_client, f"{PANEL}/comments/{news}/approve")
    submit(admin_client, f"{PANEL}/comments/{blog}/approve")
    rows = _audit_rows(blog_client.get(f"{PANEL}/audit"))
    assert [row[3] for row in rows] == [f"#{blog}"]
    assert html(blog_client.get(f"{PANEL}/audit?site=news")).find("p", cls="empty")
    assert html(blog_client.get(f"{PANEL}/audit?comment_id={news}")).find("p", cls="empty")


def test_audit_pages_with_a_cursor(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    app.config["PANEL_PAGE_SIZE"] = 1  # two events a page
    made = [make_comment(status=PENDING) for _ in range(3)]
    for comment in made:
        submit(admin_client, f"{PANEL}/comments/{comment}/approve")
    first = admin_client.get(f"{PANEL}/audit")
    assert [row[3] for row in _audit_rows(first)] == [f"#{made[2]}", f"#{made[1]}"]
    older = html(first).find("a", rel="next").attrs["href"]
    second = admin_client.get(older)
    assert [row[3] for row in _audit_rows(second)] == [f"#{made[0]}"]
    assert html(second).find_all("a", rel="next") == []


# --- session lifetime ------------------------------------------------------------------------


def test_session_lasts_the_idle_timeout(
    make_panel_app: Callable[..., Flask], make_moderator: Callable[..., int]
) -> None:
    make_moderator("mod@example.com")
    app = make_panel_app(SESSION_IDLE_MINUTES=7)
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(minutes=7)
    client = app.test_client()
    header = session_cookie(log_in(client, "mod@example.com"))
    assert header is not None
    morsel = SimpleCookie(header)["commentsvc_session"]
    assert morsel["expires"] or morsel["max-age"]
    # Each request moves the deadline: the timeout is for idleness.
    assert session_cookie(client.get(f"{PANEL}/")) is not None


def test_idle_session_expires_on_the_server(
    monkeypatch: pytest.MonkeyPatch,
    admin_client: FlaskClient,
    app: Flask,
) -> None:
    cookie = admin_client.get_cookie("commentsvc_session")
    assert cookie is not None
    idle = app.config["PERMANENT_SESSION_LIFETIME"]
    assert idle == timedelta(minutes=app.config["SESSION_IDLE_MINUTES"])
    signer = itsdangerous.timed.TimestampSigner
    real = signer.get_timestamp
    # Just inside the timeout the session still works...
    monkeypatch.setattr(
        signer, "get_timestamp", lambda self: real(self) + int(idle.total_seconds()) - 30
    )
    replay = app.test_client()
    replay.set_cookie("commentsvc_session", cookie.value)
    assert replay.get(f"{PANEL}/").status_code == 200
    # ...and past it the old cookie is refused, whatever the browser does with Expires.
    monkeypatch.setattr(
        signer, "get_timestamp", lambda self: real(self) + int(idle.total_seconds()) + 60
    )
    stale = app.test_client()
    stale.set_cookie("commentsvc_session", cookie.value)
    assert is_login_redirect(stale.get(f"{PANEL}/"))
