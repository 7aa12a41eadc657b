"""One error type, one RFC 9457 ``application/problem+json`` shape, one handler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError

PROBLEM_JSON = "application/problem+json"

#: Paths whose errors are always problem+json (everything else keeps HTML errors).
API_PREFIXES = ("/api/", "/openapi.json", "/healthz", "/readyz", "/metrics")
PANEL_PREFIX = "/moderation"
FRIENDLY_DETAILS = {
    400: "The request could not be understood. If you were sending a form, reload the page "
    "and try again.",
    403: "You are not allowed to do this.",
    404: "There is nothing here.",
}
#: Seconds a client is asked to wait when the database is unavailable.
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_DETAIL = "The service cannot reach its database right now. Please try again shortly."


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


def _html_error(status: int, detail: str) -> Response | None:
    """The panel's own error page for panel paths; None elsewhere (Werkzeug's page)."""
    if not request.path.startswith(PANEL_PREFIX):
        return None
    body = render_template("panel/error.html", title=_status_title(status), detail=detail)
    return current_app.response_class(body, status=status, mimetype="text/html")


def register_errorhandlers(app: Flask) -> None:
    """Answer every error on the API paths as problem+json; never leak a traceback."""

    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError) -> Response:
        if not is_api_request():
            page = _html_error(error.status, error.detail)
            if page is not None:
                return page
        return error.to_response()

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException) -> Response | HTTPException:
        if not is_api_request():
            status = error.code or 500
            detail = FRIENDLY_DETAILS.get(status, error.description or _status_title(status))
            if isinstance(error, CSRFError):
                detail = "This form has expired or did not come from this site. Reload the "
                detail += "page and try again."
            page = _html_error(status, detail)
            if page is None:
                return error
            page.headers.update(
                {
                    name: value
                    for name, value in error.get_headers()
                    if name.lower() not in {"content-type", "content-length"}
                }
            )
            return page
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

    @app.errorhandler(sa_exc.OperationalError)
    @app.errorhandler(sa_exc.TimeoutError)
    def handle_database_unavailable(error: Exception) -> Response:
        # The database refused, went away, is locked past the busy timeout, or the pool had
        # no connection in time: nothing was stored, and trying again later may succeed.
        current_app.logger.error(
            "database unavailable on %s %s: %s", request.method, request.path, error
        )
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if not is_api_request():
            page = _html_error(503, UNAVAILABLE_DETAIL)
            if page is not None:
                page.headers.update(headers)
                return page
        return problem(503, UNAVAILABLE_DETAIL, headers=headers)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response | HTTPException:
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if not is_api_request():
            page = _html_error(500, "Something went wrong on our side. Please try again.")
            return page if page is not None else InternalServerError()
        return problem(500, "The server could not complete the request.")
