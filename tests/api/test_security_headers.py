"""The security headers of every API answer, the no-JavaScript form's pages, and refused hosts."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from commentsvc.models import CommentStatus
from commentsvc.services import sites
from tests.conftest import ORIGIN, valid_submission
from tests.support.html import html

SUBMIT = "/api/v1/sites/news/comments"
PAGE = "/2025/10/us-china-talks"
THREAD = f"{SUBMIT}?page={PAGE}"
MODERATION = "/api/v1/moderation"
PUBLIC_HOST = "comments.example.com"


def policy_of(response: TestResponse) -> dict[str, list[str]]:
    """The response's Content-Security-Policy, as directive -> sources."""
    return {
        directive.split()[0]: directive.split()[1:]
        for directive in response.headers["Content-Security-Policy"].split(";")
        if directive.strip()
    }


# --- the public API ----------------------------------------------------------------------------


def test_every_public_json_answer_is_never_sniffed(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment()
    responses = {
        "thread": client.get(THREAD, headers={"Origin": ORIGIN}),
        "comment": client.get(f"{SUBMIT}/{comment}"),
        "counts": client.get(f"/api/v1/sites/news/counts?page={PAGE}"),
        "submitted": client.post(SUBMIT, json=valid_submission(), headers={"Origin": ORIGIN}),
        "invalid": client.post(SUBMIT, json=valid_submission(author_email="x")),
        "no page": client.get(SUBMIT),
        "unknown site": client.get("/api/v1/sites/nope/comments?page=/a"),
        "no such comment": client.get(f"{SUBMIT}/999999"),
        "no such method": client.put(SUBMIT),
        "no such path": client.get("/api/v1/sites/news/nothing-here"),
        "form for JSON": client.post(
            SUBMIT, data=valid_submission(body=""), headers={"Accept": "application/json"}
        ),
    }
    statuses = {name: response.status_code for name, response in responses.items()}
    assert statuses == {
        "thread": 200,
        "comment": 200,
        "counts": 200,
        "submitted": 201,
        "invalid": 422,
        "no page": 400,
        "unknown site": 404,
        "no such comment": 404,
        "no such method": 405,
        "no such path": 404,
        "form for JSON": 422,
    }
    for name, response in responses.items():
        assert response.is_json, name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        # Nothing an HTML page needs rides along on the hot path.
        assert "Content-Security-Policy" not in response.headers, name


def test_thread_headers_keep_their_caching_and_cors(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    make_comment()
    first = client.get(THREAD, headers={"Origin": ORIGIN})
    assert first.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert first.headers["Vary"] == "Origin"
    assert set(first.headers["Cache-Control"].split(", ")) == {"public", "no-cache"}
    again = client.get(THREAD, headers={"Origin": ORIGIN, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Vary"] == "Origin"
    assert again.headers["Access-Control-Allow-Origin"] == ORIGIN


def _form_pages(client: FlaskClient) -> dict[str, TestResponse]:
    return {
        "error": client.post(SUBMIT, data=valid_submission(body="", author_email="x")),
        "refused return_to": client.post(
            SUBMIT, data=valid_submission(return_to="https://evil.example/")
        ),
        "refused origin": client.post(
            SUBMIT, data=valid_submission(), headers={"Origin": "https://evil.example"}
        ),
        "thanks": client.post(SUBMIT, data=valid_submission(page_url="")),
    }


def test_the_no_javascript_forms_pages_get_the_panels_protections(client: FlaskClient) -> None:
    pages = _form_pages(client)
    assert {name: page.status_code for name, page in pages.items()} == {
        "error": 422,
        "refused return_to": 400,
        "refused origin": 403,
        "thanks": 201,
    }
    for name, page in pages.items():
        assert page.mimetype == "text/html", name
        policy = policy_of(page)
        assert policy["default-src"] == ["'none'"], name
        assert "script-src" not in policy, name  # so no script at all, by default-src
        assert policy["frame-ancestors"] == ["'none'"], name
        assert policy["base-uri"] == ["'none'"], name
        assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"], name
        assert page.headers["X-Frame-Options"] == "DENY", name
        assert page.headers["X-Content-Type-Options"] == "nosniff", name
        assert page.headers["Referrer-Policy"] == "no-referrer", name
    # Only the page that shows the form again may post, to this service and, through the
    # 303 of a success, to the article's origin.
    assert policy_of(pages["error"])["form-action"] == ["'self'", ORIGIN]
    for name in ("refused return_to", "refused origin", "thanks"):
        assert policy_of(pages[name])["form-action"] == ["'none'"], name


def test_an_internationalized_article_origin_is_allowed_in_ascii(
    app: Flask, client: FlaskClient
) -> None:
    """A header is ASCII: the host of the form-action source is written as xn--."""
    with app.app_context():
        site = sites.get_site("news")
        assert site is not None
        sites.update_site(site.id, "News", ["https://bücher.example"], True)
    sent = valid_submission(page_url="", body="", return_to="https://bücher.example/a")
    response = client.post(SUBMIT, data=sent)
    assert response.status_code == 422
    assert policy_of(response)["form-action"] == ["'self'", "https://xn--bcher-kva.example"]


def test_the_pages_style_is_allowed_by_its_hash_and_nothing_else_is_inline(
    client: FlaskClient,
) -> None:
    for name, page in _form_pages(client).items():
        text = page.get_data(as_text=True)
        styles = re.findall(r"<style>(.*?)</style>", text, re.S)
        assert len(styles) == 1, name
        digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
        assert policy_of(page)["style-src"] == [f"'sha256-{digest}'"], name
        for element in html(page).iter():
            assert element.tag not in {"script", "img", "iframe", "object", "link"}, name
            assert "style" not in element.attrs, (name, element.tag)
            assert not [attr for attr in element.attrs if attr.startswith("on")], name


# --- the moderation API ------------------------------------------------------------------------


def test_every_moderation_answer_is_never_stored_or_sniffed(
    client: FlaskClient, auth: dict[str, str], make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=CommentStatus.PENDING)
    responses = {
        "list": client.get(f"{MODERATION}/comments", headers=auth),
        "one": client.get(f"{MODERATION}/comments/{comment}", headers=auth),
        "changed": client.patch(
            f"{MODERATION}/comments/{comment}", json={"status": "approved"}, headers=auth
        ),
        "events": client.get(f"{MODERATION}/events", headers=auth),
        "invalid": client.patch(
            f"{MODERATION}/comments/{comment}", json={"status": "nonsense"}, headers=auth
        ),
        "deleted": client.delete(f"{MODERATION}/comments/{comment}", headers=auth),
        "no token": client.get(f"{MODERATION}/comments"),
        "no such comment": client.get(f"{MODERATION}/comments/999999", headers=auth),
        "no such method": client.put(f"{MODERATION}/comments", headers=auth),
        "no such path": client.get(f"{MODERATION}/nothing-here", headers=auth),
    }
    statuses = {name: response.status_code for name, response in responses.items()}
    assert statuses == {
        "list": 200,
        "one": 200,
        "changed": 200,
        "events": 200,
        "invalid": 422,
        "deleted": 204,
        "no token": 401,
        "no such comment": 404,
        "no such method": 405,
        "no such path": 404,
    }
    for name, response in responses.items():
        assert response.headers["Cache-Control"] == "no-store", name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name


# --- TRUSTED_HOSTS ------------------------------------------------------------------------------


@pytest.fixture
def trusted_hosts(app: Flask) -> None:
    """The service answers only to its public name (the setting, as Flask reads it)."""
    app.config["TRUSTED_HOSTS"] = [PUBLIC_HOST]


@pytest.mark.usefixtures("trusted_hosts")
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", THREAD),
        ("post", SUBMIT),
        ("get", f"{MODERATION}/comments"),
        ("get", f"{MODERATION}/comments/"),
        ("get", "/healthz"),
    ],
)
def test_an_untrusted_host_gets_400_problem_json(
    client: FlaskClient, auth: dict[str, str], method: str, path: str
) -> None:
    response = getattr(client, method)(
        path, headers={"Host": "evil.example", **auth}, json=valid_submission()
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 400
    assert "Location" not in response.headers
    if path.startswith("/api/"):
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.usefixtures("trusted_hosts")
def test_the_trusted_host_is_answered_with_any_port(
    client: FlaskClient, auth: dict[str, str], comment_count: Callable[[], int]
) -> None:
    for host in (PUBLIC_HOST, f"{PUBLIC_HOST}:8443"):
        assert client.get(THREAD, headers={"Host": host}).status_code == 200, host
        assert client.get(f"{MODERATION}/comments", headers={"Host": host, **auth}).is_json
    response = client.post(SUBMIT, json=valid_submission(), headers={"Host": PUBLIC_HOST})
    assert response.status_code == 201
    assert comment_count() == 1
