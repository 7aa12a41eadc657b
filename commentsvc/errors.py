"""One error type, one RFC 9457 ``application/problem+json`` shape, one handler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

PROBLEM_JSON = "application/problem+json"

#: Paths whose errors are always problem+json (everything else keeps HTML errors).
API_PREFIXES = ("/api/", "/openapi.json", "/healthz", "/readyz")


class ApiError(Exception):
    """An error to answer as problem+json; ``errors`` maps field names to messages."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: Mapping[str, Sequence[str]] | None = None,
        type: str = "about:blank",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.errors = {field: list(messages) for field, messages in (errors or {}).items()}
        self.type = type
        self.headers = dict(headers or {})

    def to_response(self) -> Response:
        """This error as an ``application/problem+json`` response."""
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title or _status_title(self.status),
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        response = jsonify(body)
        response.status_code = self.status
        response.mimetype = PROBLEM_JSON
        response.headers.update(self.headers)
        return response


class ValidationError(ApiError):
    """Input that is well-formed but breaks a rule: 422 with the failing fields."""

    def __init__(self, errors: Mapping[str, Sequence[str]], detail: str | None = None) -> None:
        fields = ", ".join(sorted(errors))
        super().__init__(
            422,
            detail or f"Some fields are invalid: {fields}.",
            title="Validation failed",
            errors=errors,
            type="urn:commentsvc:problem:validation",
        )


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: Mapping[str, Sequence[str]] | None = None,
    type: str = "about:blank",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build a problem+json response."""
    return ApiError(
        status, detail, title=title, errors=errors, type=type, headers=headers
    ).to_response()


def _status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIXES)


def register_errorhandlers(app: Flask) -> None:
    """Answer every error on the API paths as problem+json; never leak a traceback."""

    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError) -> Response:
        return error.to_response()

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException) -> Response | HTTPException:
        if not is_api_request():
            return error
        status = error.code or 500
        # Keep headers such as Allow (405) but not the HTML content type.
        headers = {
            name: value
            for name, value in error.get_headers()
            if name.lower() not in {"content-type", "content-length"}
        }
        detail = error.description or _status_title(status)
        if status >= 500:
            detail = "The server could not complete the request."
        return problem(status, detail, headers=headers)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response | HTTPException:
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if not is_api_request():
            return InternalServerError()
        return problem(500, "The server could not complete the request.")
