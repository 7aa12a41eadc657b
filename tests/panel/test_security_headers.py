"""Anonymous visitors refused, CSRF on every form, and the security headers of every answer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.html import html
from tests.support.panel import (
    ADMIN,
    JSON_HEADERS,
    LOGIN,
    PANEL,
    csrf_token,
    is_login_redirect,
    log_in,
    submit,
)
from tests.support.state import APPROVED, PENDING, snapshot, status_of

# --- anonymous visitors ----------------------------------------------------------------------

PAGES = [
    "/",
    "/audit",
    "/comments/{comment}",
    "/blocklist",
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
    ("/comments/{comment}/block", {"block": "email"}),
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


# --- CSRF -------------------------------------------------------------------------------------

ADMIN_POSTS = [
    ("/comments/{comment}/approve", {}),
    ("/comments/{comment}/delete", {}),
    ("/comments/bulk", {"ids": "{comment}", "action": "reject"}),
    ("/comments/{comment}/block", {"block": "email"}),
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


# --- trusted hosts ------------------------------------------------------------------------------

PUBLIC_HOST = "comments.example.com"
FORGED = {"Host": "evil.example"}


def test_unset_trusted_hosts_answer_any_host(client: FlaskClient) -> None:
    """The default: the service answers to any name, and redirects name the one asked for."""
    response = client.get(PANEL, headers=FORGED)
    assert response.status_code == 308
    assert response.headers["Location"] == "http://evil.example/moderation/"


def test_a_forged_host_gets_the_panels_400_page_not_a_redirect_to_it(
    app: Flask, client: FlaskClient
) -> None:
    app.config["TRUSTED_HOSTS"] = [PUBLIC_HOST]
    responses = [client.get(path, headers=FORGED) for path in (PANEL, f"{PANEL}/", LOGIN)]
    responses.append(client.get(f"{PANEL}/static/panel.css", headers=FORGED))
    responses.append(client.post(LOGIN, data={"email": ADMIN}, headers=FORGED))
    for response in responses:
        assert response.status_code == 400, response.request.path
        assert "Location" not in response.headers
        assert response.mimetype == "text/html"
        page = html(response)
        assert page.find("h1").text == "Bad Request"
        # Refused before routing: before any view or the CSRF check ran.
        assert "This form has expired" not in page.find("main").text
        # The panel's own page, its links relative: the forged name appears nowhere.
        assert page.find("a", cls="brand").attrs["href"] == f"{PANEL}/"
        assert "evil.example" not in response.get_data(as_text=True)
        assert "evil.example" not in str(response.headers)
        _check_security_headers(response)


def test_the_trusted_host_is_answered_on_any_port(app: Flask, client: FlaskClient) -> None:
    app.config["TRUSTED_HOSTS"] = [PUBLIC_HOST]
    for host in (PUBLIC_HOST, f"{PUBLIC_HOST}:8443"):
        response = client.get(PANEL, headers={"Host": host})
        assert response.status_code == 308
        assert response.headers["Location"] == f"http://{host}/moderation/"
        assert client.get(LOGIN, headers={"Host": host}).status_code == 200
