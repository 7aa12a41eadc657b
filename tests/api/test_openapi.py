"""The OpenAPI description: valid, one entry per route, and true to what the code answers.

Real responses are validated against the schema the document gives for their operation,
status and content type. The check is stricter than the document itself: every object
schema is closed (``additionalProperties: false``), so a field the code adds without
describing it fails here as surely as a field the document promises and the code drops.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.test import TestResponse

from commentsvc import create_app
from commentsvc.api.openapi import spec
from commentsvc.extensions import db
from commentsvc.models import CommentStatus
from tests.conftest import ORIGIN, valid_submission

PUBLIC = "/api/v1/sites/{site}"
MODERATION = "/api/v1/moderation"
PAGE = "/2025/10/us-china-talks"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
#: Flask's names for path variables, where the document uses another.
PATH_PARAMETER_NAMES = {"site_slug": "site"}
#: Blueprints that answer HTML, JavaScript or Prometheus text, not JSON: not in the document.
HTML_ENDPOINTS = {"static", "panel", "widget", "metrics", "notifications", "mail_links", "pages"}
DOCUMENT_URI = "urn:commentsvc:openapi"
#: What a successful answer with a body may be: JSON, an HTML page, an Atom feed.
SUCCESS_TYPES = {"application/json", "text/html", "application/atom+xml"}

Document = dict[str, Any]


@pytest.fixture
def document(client: FlaskClient) -> Document:
    """The OpenAPI document as served."""
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: Document = response.get_json()
    return document


def flask_operations(app: Flask) -> set[tuple[str, str]]:
    """Every (path, method) the app serves, in OpenAPI spelling."""

    def parameter(match: re.Match[str]) -> str:
        return "{" + PATH_PARAMETER_NAMES.get(match[1], match[1]) + "}"

    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in HTML_ENDPOINTS:
            continue
        path = re.sub(r"<(?:[^<>:]+:)?([^<>:]+)>", parameter, rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            operations.add((path, method.lower()))
    return operations


def documented_operations(document: Document) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def closed(document: Document) -> Document:
    """A copy whose object schemas refuse properties they do not declare."""
    strict = copy.deepcopy(document)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(strict["components"]["schemas"])
    return strict


def pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def resolve(
    document: Document, node: dict[str, Any], location: tuple[str, ...]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Follow a ``$ref`` to a reusable component, if ``node`` is one; and where it lives."""
    if "$ref" not in node:
        return node, location
    parts = tuple(node["$ref"].removeprefix("#/").split("/"))
    target: dict[str, Any] = document
    for part in parts:
        target = target[part]
    return target, parts


def assert_documented(
    document: Document, response: TestResponse, path: str, method: str = "get"
) -> None:
    """The response's status, content type, headers and body are as documented."""
    status = str(response.status_code)
    responses = document["paths"][path][method]["responses"]
    assert status in responses, f"{method.upper()} {path} {status} undocumented"
    location: tuple[str, ...] = ("paths", path, method, "responses", status)
    documented, location = resolve(document, responses[status], location)

    for header, spec_header in documented.get("headers", {}).items():
        spec_header, _ = resolve(document, spec_header, ())
        if spec_header.get("required"):
            assert header in response.headers, f"{header} missing from {status}"

    content = documented.get("content", {})
    if not response.data:
        assert response.status_code in {204, 304}
        assert not content
        return
    mimetype = response.mimetype or ""
    assert mimetype in content, f"{status} {mimetype} undocumented"
    strict = closed(document)
    registry = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(strict, default_specification=DRAFT202012)
    )
    target = pointer(*location, "content", mimetype, "schema")
    validator = Draft202012Validator(
        {"$ref": f"{DOCUMENT_URI}#/{target}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    body = response.get_json() if response.is_json else response.get_data(as_text=True)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(body)
    ]
    assert not errors, errors


# --- the document itself ------------------------------------------------------------------


def test_served_as_json_and_valid_openapi_3_1(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "commentsvc"
    bearer = document["components"]["securitySchemes"]["bearerAuth"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")


def test_the_served_lengths_are_this_servers_settings(app: Flask) -> None:
    limits = {"MAX_BODY_LENGTH": 50, "MAX_NAME_LENGTH": 40, "MAX_URL_LENGTH": 300}
    configured = create_app(
        {
            "ENV": "testing",
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": app.config["DATABASE_URL"],
            **limits,
        }
    )
    document = configured.test_client().get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    for name in ("CommentSubmission", "CommentFormSubmission"):
        properties = schemas[name]["properties"]
        assert properties["body"]["maxLength"] == 50
        assert properties["author_name"]["maxLength"] == 40
        assert properties["author_url"]["maxLength"] == properties["page_url"]["maxLength"] == 300
        assert properties["author_email"]["maxLength"] == 254  # the default
    assert schemas["CommentUpdate"]["properties"]["body"]["maxLength"] == 50
    with configured.app_context():
        db.engine.dispose()


def test_every_route_is_documented_and_every_documented_operation_exists(
    app: Flask, document: Document
) -> None:
    served = flask_operations(app)
    assert ("/api/v1/sites/{site}/comments/{comment_id}", "get") in served
    assert ("/api/v1/moderation/comments/{comment_id}", "patch") in served
    assert served - documented_operations(document) == set(), "routes missing from the spec"
    assert documented_operations(document) - served == set(), "spec entries without a route"


def test_a_route_without_a_spec_entry_is_noticed(app: Flask) -> None:
    app.add_url_rule("/api/v1/sites/<site_slug>/extra/<int:comment_id>", "extra", lambda: "")
    missing = flask_operations(app) - documented_operations(spec())
    assert missing == {("/api/v1/sites/{site}/extra/{comment_id}", "get")}


def test_errors_are_problem_json_and_successes_json(document: Document) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            for status, response in operation["responses"].items():
                response, _ = resolve(document, response, ())
                types = set(response.get("content", {}))
                if int(status) >= 400:
                    assert "application/problem+json" in types, (path, method, status)
                    assert types <= {"application/problem+json", "text/html"}
                elif int(status) < 300 and types:
                    assert types & SUCCESS_TYPES, (path, method, status)
                    assert "application/problem+json" not in types


def test_moderation_operations_require_the_bearer_token_and_edits_the_edit_token(
    document: Document,
) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            moderation = path.startswith(MODERATION)
            assert (operation.get("security") == [{"bearerAuth": []}]) is moderation
            # A public operation asks for a token only as its author's edit token.
            tokened = moderation or operation.get("security") == [{"editToken": []}]
            assert ("401" in operation["responses"]) is tokened


# --- real responses against the document ----------------------------------------------------


def test_submit_201_and_form_303(client: FlaskClient, document: Document) -> None:
    path = f"{PUBLIC}/comments"
    response = client.post("/api/v1/sites/news/comments", json=valid_submission())
    assert response.status_code == 201
    assert_documented(document, response, path, "post")

    form = {**valid_submission(), "body": "Another comment.", "return_to": f"{ORIGIN}{PAGE}"}
    response = client.post("/api/v1/sites/news/comments", data=form)
    assert response.status_code == 303
    assert_documented(document, response, path, "post")


def test_submit_problems(client: FlaskClient, document: Document) -> None:
    path = f"{PUBLIC}/comments"
    invalid = client.post(
        "/api/v1/sites/news/comments", json=valid_submission(author_email="nope", body=" ")
    )
    assert invalid.status_code == 422
    assert set(invalid.get_json()["errors"]) == {"author_email", "body"}
    assert_documented(document, invalid, path, "post")

    url = "/api/v1/sites/news/comments"
    too_large = b"x" * (client.application.config["MAX_CONTENT_LENGTH"] + 1)
    for response, status in [
        (client.post(url, data="{", content_type="application/json"), 400),
        (client.post(url, json={}, headers={"Origin": "https://x.example"}), 403),
        (client.post("/api/v1/sites/nowhere/comments", json=valid_submission()), 404),
        (client.post(url, data="x", content_type="text/plain"), 415),
        (client.post(url, data=too_large, content_type="application/json"), 413),
    ]:
        assert response.status_code == status
        assert_documented(document, response, path, "post")


def test_thread_200_and_304(
    client: FlaskClient, document: Document, make_comment: Callable[..., int]
) -> None:
    parent = make_comment()
    make_comment(parent_id=parent)
    url = f"/api/v1/sites/news/comments?page={PAGE}&limit=1"
    response = client.get(url)
    assert response.status_code == 200
    assert response.get_json()["next_cursor"] is not None
    assert_documented(document, response, f"{PUBLIC}/comments")

    cursor = response.get_json()["next_cursor"]
    reply = client.get(f"{url}&cursor={cursor}")
    assert reply.get_json()["comments"][0]["parent_id"] == parent
    assert_documented(document, reply, f"{PUBLIC}/comments")

    etag = response.headers["ETag"]
    unchanged = client.get(url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.headers["ETag"] == etag
    assert_documented(document, unchanged, f"{PUBLIC}/comments")

    missing_page = client.get("/api/v1/sites/news/comments")
    assert missing_page.status_code == 400
    assert_documented(document, missing_page, f"{PUBLIC}/comments")


def test_published_comment_and_counts(
    client: FlaskClient, document: Document, make_comment: Callable[..., int]
) -> None:
    approved = make_comment()
    pending = make_comment(status=CommentStatus.PENDING)
    path = f"{PUBLIC}/comments/{{comment_id}}"
    for comment_id, status in [(approved, 200), (pending, 404)]:
        response = client.get(f"/api/v1/sites/news/comments/{comment_id}")
        assert response.status_code == status
        assert_documented(document, response, path)

    counts = client.get(f"/api/v1/sites/news/counts?page={PAGE}&page=/elsewhere")
    assert counts.get_json() == {"counts": {PAGE: 1, "/elsewhere": 0}}
    assert_documented(document, counts, f"{PUBLIC}/counts")


def test_moderation_list_get_patch_delete(
    client: FlaskClient,
    document: Document,
    make_comment: Callable[..., int],
    auth: dict[str, str],
) -> None:
    comment_id = make_comment(status=CommentStatus.PENDING)
    one = f"{MODERATION}/comments/{{comment_id}}"

    unauthorized = client.get(f"{MODERATION}/comments")
    assert unauthorized.status_code == 401
    assert_documented(document, unauthorized, f"{MODERATION}/comments")

    patched = client.patch(
        f"{MODERATION}/comments/{comment_id}",
        json={"status": "approved", "note": "fine"},
        headers=auth,
    )
    assert patched.status_code == 200
    assert patched.get_json()["moderated_by"] == "mod@example.com"
    assert_documented(document, patched, one, "patch")

    bad_status = client.patch(
        f"{MODERATION}/comments/{comment_id}", json={"status": "nope"}, headers=auth
    )
    assert bad_status.status_code == 422
    assert_documented(document, bad_status, one, "patch")

    listed = client.get(f"{MODERATION}/comments?status=approved", headers=auth)
    assert [c["id"] for c in listed.get_json()["comments"]] == [comment_id]
    assert_documented(document, listed, f"{MODERATION}/comments")

    fetched = client.get(f"{MODERATION}/comments/{comment_id}", headers=auth)
    assert [e["action"] for e in fetched.get_json()["events"]] == ["approve"]
    assert_documented(document, fetched, one)

    deleted = client.delete(f"{MODERATION}/comments/{comment_id}", headers=auth)
    assert deleted.status_code == 204
    assert_documented(document, deleted, one, "delete")

    gone = client.get(f"{MODERATION}/comments/{comment_id}", headers=auth)
    assert gone.status_code == 404
    assert_documented(document, gone, one)


def test_bulk_and_events(
    client: FlaskClient,
    document: Document,
    make_comment: Callable[..., int],
    auth: dict[str, str],
) -> None:
    ids = [make_comment(status=CommentStatus.PENDING) for _ in range(2)]
    bulk = f"{MODERATION}/comments/bulk"

    result = client.post(bulk, json={"ids": ids, "action": "spam"}, headers=auth)
    assert result.get_json() == {"action": "spam", "ids": ids, "changed": ids}
    assert_documented(document, result, bulk, "post")

    for payload, status in [
        ({"ids": [*ids, 999_999], "action": "approve"}, 404),
        ({"ids": ids, "action": "publish"}, 422),
    ]:
        response = client.post(bulk, json=payload, headers=auth)
        assert response.status_code == status
        assert_documented(document, response, bulk, "post")

    not_json = client.post(bulk, data="ids=1", headers=auth)
    assert not_json.status_code == 415
    assert_documented(document, not_json, bulk, "post")

    events = client.get(f"{MODERATION}/events?comment_id={ids[0]}", headers=auth)
    assert [e["to_status"] for e in events.get_json()["events"]] == ["spam"]
    assert_documented(document, events, f"{MODERATION}/events")

    bad_cursor = client.get(f"{MODERATION}/events?cursor=nonsense", headers=auth)
    assert bad_cursor.status_code == 400
    assert_documented(document, bad_cursor, f"{MODERATION}/events")


def test_health_ready_and_not_ready(app: Flask, client: FlaskClient, document: Document) -> None:
    assert_documented(document, client.get("/healthz"), "/healthz")
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert_documented(document, ready, "/readyz")

    with app.app_context():
        db.session.execute(sa.text("DROP TABLE alembic_version"))
        db.session.commit()
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert_documented(document, not_ready, "/readyz")


def test_openapi_json_matches_its_own_entry(client: FlaskClient, document: Document) -> None:
    assert_documented(document, client.get("/openapi.json"), "/openapi.json")


def test_personal_data_operations(
    app: Flask,
    client: FlaskClient,
    document: Document,
    make_comment: Callable[..., int],
    make_token: Callable[..., str],
) -> None:
    make_comment(author_email="ada@example.com")
    token = make_token("admin@example.com")
    with app.app_context():
        db.session.execute(sa.text("UPDATE moderators SET is_admin = true"))
        db.session.commit()
    admin = {"Authorization": f"Bearer {token}"}
    export = f"{MODERATION}/personal-data"
    for response, status in [
        (client.get(export, query_string={"email": "ada@example.com"}, headers=admin), 200),
        (client.get(export, headers=admin), 422),
        (client.get(export), 401),
    ]:
        assert response.status_code == status
        assert_documented(document, response, export)
    erase = f"{MODERATION}/personal-data/erase"
    for response, status in [
        (client.post(erase, json={"email": "ada@example.com"}, headers=admin), 200),
        (client.post(erase, json={"email": "x", "delete_comments": 1}, headers=admin), 422),
        (client.post(erase, data="x", content_type="text/plain", headers=admin), 415),
    ]:
        assert response.status_code == status
        assert_documented(document, response, erase, "post")
    ask = "/api/v1/sites/news/personal-data-requests"
    path = f"{PUBLIC}/personal-data-requests"
    for response, status in [
        (client.post(ask, json={"email": "ada@example.com", "kind": "erase"}), 202),
        (client.post(ask, json={"email": "ada@example.com", "kind": "all"}), 422),
        (client.post(ask, json={}, headers={"Origin": "https://x.example"}), 403),
    ]:
        assert response.status_code == status
        assert_documented(document, response, path, "post")


def test_own_comment_edit_and_delete(client: FlaskClient, document: Document) -> None:
    created = client.post("/api/v1/sites/news/comments", json=valid_submission()).get_json()
    url = f"/api/v1/sites/news/comments/{created['id']}"
    path = f"{PUBLIC}/comments/{{comment_id}}"
    token = {"Authorization": f"Bearer {created['edit_token']}"}
    for response, status in [
        (client.patch(url, json={"body": "Edited."}, headers=token), 200),
        (client.patch(url, json={"body": " "}, headers=token), 422),
        (client.patch(url, json={"body": "x"}), 401),
        (client.patch(url, json={"body": "x"}, headers={"Authorization": "Bearer x"}), 403),
    ]:
        assert response.status_code == status
        assert_documented(document, response, path, "patch")
    for response, status in [
        (client.delete(url, headers={"Authorization": "Bearer x"}), 403),
        (client.delete(url, headers=token), 204),
        (client.delete(url, headers=token), 404),
    ]:
        assert response.status_code == status
        assert_documented(document, response, path, "delete")


def test_preview(client: FlaskClient, document: Document) -> None:
    url = "/api/v1/sites/news/preview"
    path = f"{PUBLIC}/preview"
    for response, status in [
        (client.post(url, json={"body": "Hello https://example.org"}), 200),
        (client.post(url, json={"body": " "}), 422),
        (client.post(url, data="x", content_type="text/plain"), 415),
    ]:
        assert response.status_code == status
        assert_documented(document, response, path, "post")


def test_a_preview_over_the_limit(app: Flask, document: Document) -> None:
    limited = create_app(
        {
            "ENV": "testing",
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": app.config["DATABASE_URL"],
            "RATELIMIT_ENABLED": True,
            "PREVIEW_RATE_LIMIT": "1/minute",
        }
    )
    client = limited.test_client()
    url = "/api/v1/sites/news/preview"
    assert client.post(url, json={"body": "Hello"}).status_code == 200
    response = client.post(url, json={"body": "Hello again"})
    assert response.status_code == 429
    assert_documented(document, response, f"{PUBLIC}/preview", "post")
    with limited.app_context():
        db.engine.dispose()


def test_a_nul_in_the_query_is_a_documented_400_on_every_api_operation(
    client: FlaskClient, document: Document, auth: dict[str, str]
) -> None:
    """The fuzzer's finding: the APIs refuse a NUL in the query string before anything else
    (400), and operations without a 400 of their own did not say so."""
    for path, item in document["paths"].items():
        if not path.startswith(("/api/v1/sites/", MODERATION)):
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: "news" if m.group(1) == "site" else "1", path)
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            headers = auth if path.startswith(MODERATION) else {}
            response = client.open(f"{url}?x=%00", method=method.upper(), headers=headers)
            assert response.status_code == 400, f"{method.upper()} {path}"
            assert "400" in operation["responses"], f"{method.upper()} {path}"
            assert_documented(document, response, path, method)
