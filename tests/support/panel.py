"""The moderator panel driven like a browser: logging in, forms posted with their CSRF token."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from commentsvc.extensions import db
from commentsvc.models import BlocklistEntry, Comment, Site
from commentsvc.services import accounts
from commentsvc.services import sites as site_service
from tests.conftest import PASSWORD
from tests.support.html import flashes, html
from tests.support.state import snapshot

PANEL = "/moderation"
LOGIN = f"{PANEL}/login"
ADMIN = "admin@example.com"
BLOG_MODERATOR = "blogger@example.com"
JSON_HEADERS = {"Accept": "application/json"}
#: The panel's cookies as the tests' apps name them (``Secure``: the default), and as an app
#: with ``SESSION_COOKIE_SECURE=False`` names them.
SESSION_COOKIE = "__Host-commentsvc_session"
DEVICE_COOKIE = "__Host-commentsvc_device"
PLAIN_SESSION_COOKIE = "commentsvc_session"
PLAIN_DEVICE_COOKIE = "commentsvc_device"


def csrf_token(client: FlaskClient, path: str | None = None) -> str:
    """The CSRF token of a form the panel renders (for the client's current session)."""
    response = client.get(path or f"{PANEL}/audit")
    if path is None and response.status_code == 302:
        response = client.get(LOGIN)
    assert response.status_code == 200, (path, response.status_code)
    return html(response).find("input", name="csrf_token").attrs["value"]


def login_path(next_url: str | None = None) -> str:
    """The login page, asked to return to ``next_url`` afterwards."""
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
    """Whether the panel sent the client to log in (and to come back to ``next_path``)."""
    if response.status_code not in {302, 303}:
        return False
    location = urlsplit(response.headers["Location"])
    if location.path != LOGIN:
        return False
    return next_path is None or parse_qs(location.query).get("next") == [next_path]


def session_cookie(response: TestResponse, name: str = SESSION_COOKIE) -> str | None:
    """The raw Set-Cookie header of the panel's session cookie (or of the cookie ``name``),
    if the response sets it."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header
    return None


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
        chosen = site_service.sites_by_slug(sites)
        moderator = accounts.create_moderator(email, password, admin=admin, sites=chosen)
        if not active:
            accounts.update_moderator(
                moderator.id, active=False, admin=admin, all_sites=not sites, sites=chosen
            )
        return moderator.id


def logged_in(app: Flask, email: str, client: FlaskClient | None = None) -> FlaskClient:
    """A client (a new one unless given) logged in through the login form."""
    client = client or app.test_client()
    assert log_in(client, email).status_code == 303
    return client


def assert_refused_unchanged(
    app: Flask,
    client: FlaskClient,
    path: str,
    data: dict[str, Any] | None = None,
    *,
    status: int,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """Submit a form the panel must answer with ``status`` and leave every stored row as it was."""
    before = snapshot(app)
    response = submit(client, path, data, headers=headers)
    assert response.status_code == status, (path, data, response.status_code)
    assert snapshot(app) == before, (path, data)
    return response


def assert_bulk_refused(
    app: Flask, client: FlaskClient, data: dict[str, Any], message: str
) -> None:
    """A bulk action the panel refuses goes back with one error flash and changes nothing."""
    response = assert_refused_unchanged(app, client, f"{PANEL}/comments/bulk", data, status=303)
    messages = flashes(client.get(response.headers["Location"]))
    assert [category for category, _ in messages] == ["error"], messages
    assert message in messages[0][1], messages


def set_verdict(
    app: Flask, comment_id: int, score: float, reasons: str = "", *, ip_prefix: str | None = None
) -> None:
    """Give a stored comment the abuse rules' score and reasons (and a client's address
    prefix), as if the rules had judged it so."""
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        assert comment is not None
        comment.spam_score = score
        comment.spam_reasons = reasons
        if ip_prefix is not None:
            comment.ip_prefix = ip_prefix
        db.session.commit()


def blocklist_rows(app: Flask) -> list[tuple[str, str, str | None, str]]:
    """(kind, value, site slug or None, created_by) of every blocklist entry, by id."""
    with app.app_context():
        rows = db.session.execute(
            sa.select(
                BlocklistEntry.kind, BlocklistEntry.value, Site.slug, BlocklistEntry.created_by
            )
            .outerjoin(Site, Site.id == BlocklistEntry.site_id)
            .order_by(BlocklistEntry.id)
        )
        return [(kind.value, value, slug, by) for kind, value, slug, by in rows]


def field_error(response: TestResponse, field: str) -> str:
    """The error message shown next to a form field (and the field points to it)."""
    doc = html(response)
    error = doc.find("span", cls="field-error", id=f"{field}-error")
    control = doc.find(id=field)
    assert f"{field}-error" in control.attrs.get("aria-describedby", "")
    return error.text
