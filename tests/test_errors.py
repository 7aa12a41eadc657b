"""One error shape: what a service refuses becomes problem+json once, or the panel's page."""

from __future__ import annotations

import pytest
from flask import Flask

from commentsvc.errors import from_service_error
from commentsvc.services.errors import (
    Closed,
    Conflict,
    Invalid,
    NotFound,
    ServiceError,
    Throttled,
)


@pytest.mark.parametrize(
    ("error", "status", "title"),
    [
        (NotFound("There is no comment 7."), 404, "Not Found"),
        (Conflict.on("slug", "site 'news' already exists"), 409, "Conflict"),
        (Closed("Comments are closed on this site."), 403, "Comments closed"),
        (Throttled("too many failed logins; try again later"), 429, "Too Many Requests"),
        (ServiceError("something else"), 400, "Bad Request"),
    ],
)
def test_each_refusal_has_its_status(
    app: Flask, error: ServiceError, status: int, title: str
) -> None:
    with app.test_request_context("/api/v1/moderation/comments"):
        response = from_service_error(error).to_response()
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert (body["status"], body["title"], body["detail"]) == (status, title, error.message)
    assert body.get("errors", {}) == error.errors


def test_invalid_input_is_a_validation_problem_naming_every_field(app: Flask) -> None:
    error = Invalid({"ids": ["Must be a list."], "action": ["Must be one of: approve."]})
    with app.test_request_context("/api/v1/moderation/comments/bulk"):
        body = from_service_error(error).to_response().get_json()
    assert body == {
        "type": "urn:commentsvc:problem:validation",
        "title": "Validation failed",
        "status": 422,
        "detail": "Some fields are invalid: action, ids.",
        "errors": {"ids": ["Must be a list."], "action": ["Must be one of: approve."]},
    }


def test_one_field_errors_name_their_field() -> None:
    error = Invalid.on("slug", "the slug must be 1-64 of a-z, 0-9, '-' and '_'")
    assert (error.field, str(error)) == ("slug", error.message)
    assert error.errors == {"slug": [error.message]}
    assert ServiceError("no field").field is None


def test_a_refusal_on_a_panel_page_is_the_panels_error_page(app: Flask) -> None:
    @app.get("/moderation/refusing")
    def refusing() -> str:
        raise NotFound("There is no comment 7.")

    response = app.test_client().get("/moderation/refusing")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert "There is nothing here." in text
    assert "comment 7" not in text
