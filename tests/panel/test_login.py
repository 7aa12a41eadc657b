"""Logging in and out, the panel's cookies, and how long a session lasts (throttling of
failed logins: test_login_throttling)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import timedelta
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import itsdangerous.timed
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from commentsvc.extensions import db
from commentsvc.models import LoginAttempt, Moderator
from commentsvc.services import accounts
from tests.conftest import PASSWORD
from tests.support.html import flashes, html
from tests.support.panel import (
    BLOG_MODERATOR,
    DEVICE_COOKIE,
    LOGIN,
    PANEL,
    PLAIN_DEVICE_COOKIE,
    PLAIN_SESSION_COOKIE,
    SESSION_COOKIE,
    csrf_token,
    is_login_redirect,
    log_in,
    session_cookie,
    submit,
)
from tests.support.state import PENDING, database_bytes

BAD_LOGIN = "Invalid email or password."


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
    assert "domain" not in attributes
    assert "samesite=lax" in cookie.lower()
    assert "path=/;" in cookie.lower() + ";"
    queue = client.get(f"{PANEL}/")
    assert queue.status_code == 200
    assert html(queue).find("span", cls="whoami").text == "mod@example.com"
    with app.app_context():
        moderator = db.session.scalar(sa.select(Moderator))
        assert moderator is not None
        assert moderator.last_login_at is not None


def _attributes(header: str) -> dict[str, str]:
    """A Set-Cookie header's attributes, by lower-case name."""
    parts = [part.strip().partition("=") for part in header.split(";")[1:]]
    return {name.lower(): value for name, _, value in parts}


@pytest.mark.parametrize(
    ("secure", "session_name", "device_name"),
    [(True, SESSION_COOKIE, DEVICE_COOKIE), (False, PLAIN_SESSION_COOKIE, PLAIN_DEVICE_COOKIE)],
    ids=["secure", "plain-http"],
)
def test_cookie_names_and_attributes(
    make_panel_app: Callable[..., Flask],
    make_moderator: Callable[..., int],
    secure: bool,
    session_name: str,
    device_name: str,
) -> None:
    """Secure cookies are ``__Host-`` cookies (this host only, Path=/, no Domain), which a
    sibling subdomain can neither plant nor overwrite."""
    make_moderator("mod@example.com")
    client = make_panel_app(SESSION_COOKIE_SECURE=secure).test_client()
    response = log_in(client, "mod@example.com")
    assert response.status_code == 303
    names = {header.partition("=")[0] for header in response.headers.getlist("Set-Cookie")}
    assert names == {session_name, device_name}
    session = session_cookie(response, session_name)
    device = session_cookie(response, device_name)
    assert session is not None and device is not None
    for header in (session, device):
        attributes = _attributes(header)
        assert ("secure" in attributes) is secure
        assert "httponly" in attributes
        assert attributes["path"] == "/"
        assert "domain" not in attributes
    assert _attributes(session)["samesite"] == "Lax"
    # The device cookie: long-lived, never sent along from another site.
    assert _attributes(device)["samesite"] == "Strict"
    assert int(_attributes(device)["max-age"]) == 365 * 24 * 3600
    assert client.get(f"{PANEL}/").status_code == 200


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
    cookie = admin_client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    assert submit(admin_client, f"{PANEL}/logout").status_code == 303
    replay = app.test_client()
    replay.set_cookie(SESSION_COOKIE, cookie.value)
    assert is_login_redirect(replay.get(f"{PANEL}/"))


def test_logout_by_get_is_not_allowed(admin_client: FlaskClient) -> None:
    response = admin_client.get(f"{PANEL}/logout")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert admin_client.get(f"{PANEL}/").status_code == 200


def test_deactivated_moderator_is_logged_out(app: Flask, blog_client: FlaskClient) -> None:
    assert blog_client.get(f"{PANEL}/").status_code == 200
    with app.app_context():
        moderator = accounts.find_moderator(BLOG_MODERATOR)
        assert moderator is not None
        accounts.update_moderator(
            moderator.id, active=False, admin=False, all_sites=False, sites=moderator.sites
        )
    assert is_login_redirect(blog_client.get(f"{PANEL}/"))


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
    morsel = SimpleCookie(header)[SESSION_COOKIE]
    assert morsel["expires"] or morsel["max-age"]
    # Each request moves the deadline: the timeout is for idleness.
    assert session_cookie(client.get(f"{PANEL}/")) is not None


def test_idle_session_expires_on_the_server(
    monkeypatch: pytest.MonkeyPatch,
    admin_client: FlaskClient,
    app: Flask,
) -> None:
    cookie = admin_client.get_cookie(SESSION_COOKIE)
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
    replay.set_cookie(SESSION_COOKIE, cookie.value)
    assert replay.get(f"{PANEL}/").status_code == 200
    # ...and past it the old cookie is refused, whatever the browser does with Expires.
    monkeypatch.setattr(
        signer, "get_timestamp", lambda self: real(self) + int(idle.total_seconds()) + 60
    )
    stale = app.test_client()
    stale.set_cookie(SESSION_COOKIE, cookie.value)
    assert is_login_redirect(stale.get(f"{PANEL}/"))


def test_session_ends_its_maximum_lifetime_after_login_however_active(
    make_panel_app: Callable[..., Flask], make_moderator: Callable[..., int]
) -> None:
    make_moderator("mod@example.com")
    app = make_panel_app(SESSION_MAX_HOURS=3)
    client = app.test_client()
    assert log_in(client, "mod@example.com").status_code == 303
    lifetime = 3 * 3600
    with client.session_transaction(f"{PANEL}/") as session:
        logged_in_at = session["logged_in_at"]
        assert abs(logged_in_at - time.time()) < 60
        session["logged_in_at"] = int(time.time()) - lifetime + 60
    assert client.get(f"{PANEL}/").status_code == 200  # a request keeps it going...
    with client.session_transaction(f"{PANEL}/") as session:
        session["logged_in_at"] = int(time.time()) - lifetime - 1
    assert is_login_redirect(client.get(f"{PANEL}/"), f"{PANEL}/")  # ...but not past it
    assert log_in(client, "mod@example.com").status_code == 303
    assert client.get(f"{PANEL}/").status_code == 200


def test_session_without_a_login_time_is_refused(admin_client: FlaskClient) -> None:
    with admin_client.session_transaction(f"{PANEL}/") as session:
        del session["logged_in_at"]
    assert is_login_redirect(admin_client.get(f"{PANEL}/"))
