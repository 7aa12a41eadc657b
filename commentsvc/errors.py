"""One error type, one RFC 9457 ``application/problem+json`` shape, one handler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask.globals import request_ctx
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError

from commentsvc.paths import in_api, in_panel
from commentsvc.services.errors import (
    Closed,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    Throttled,
    Unavailable,
)

PROBLEM_JSON = "application/problem+json"

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


#: The HTTP status each kind of service refusal answers with.
SERVICE_STATUS: dict[type[ServiceError], int] = {
    NotFound: 404,
    Invalid: 422,
    Conflict: 409,
    Closed: 403,
    Forbidden: 403,
    Throttled: 429,
    Unavailable: 503,
}


def from_service_error(error: ServiceError) -> ApiError:
    """The HTTP answer to a service's refusal."""
    if isinstance(error, Invalid):
        return ValidationError(error.errors, error.message)
    status = next((code for kind, code in SERVICE_STATUS.items() if isinstance(error, kind)), 400)
    headers = {}
    if isinstance(error, Throttled) and error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, Unavailable):
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return ApiError(status, error.message, title=error.title, errors=error.errors, headers=headers)


def _status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def is_api_request() -> bool:
    """Whether the current request answers errors as problem+json."""
    return in_api(request.path)


def _html_error(status: int, detail: str) -> Response | None:
    """The panel's own error page for panel paths; None elsewhere (Werkzeug's page)."""
    if not in_panel(request.path):
        return None
    if request_ctx.url_adapter is None:
        # Flask builds no URL adapter for a Host outside TRUSTED_HOSTS (the 400 answered
        # here), so url_for would fail: the page's links are relative and need no host.
        request_ctx.url_adapter = current_app.url_map.bind(
            "", script_name=request.script_root, url_scheme=request.scheme
        )
    body = render_template("panel/error.html", title=_status_title(status), detail=detail)
    return current_app.response_class(body, status=status, mimetype="text/html")


def _kept_headers(error: HTTPException) -> dict[str, str]:
    """An HTTP error's headers (such as Allow on 405), without its HTML content type."""
    return {
        name: value
        for name, value in error.get_headers()
        if name.lower() not in {"content-type", "content-length"}
    }


def _answer(error: ApiError, html_detail: str | None = None) -> Response:
    """problem+json, or on panel paths the panel's page (with ``html_detail`` if given)."""
    if not is_api_request():
        page = _html_error(error.status, html_detail or error.detail)
        if page is not None:
            page.headers.update(error.headers)
            return page
    return error.to_response()


def handle_api_error(error: ApiError) -> Response:
    return _answer(error)


def handle_service_error(error: ServiceError) -> Response:
    answer = from_service_error(error)
    return _answer(answer, FRIENDLY_DETAILS.get(answer.status))


def handle_http_exception(error: HTTPException) -> Response | HTTPException:
    status = error.code or 500
    if is_api_request():
        detail = error.description or _status_title(status)
        if status >= 500:
            detail = "The server could not complete the request."
        return ApiError(status, detail, headers=_kept_headers(error)).to_response()
    detail = FRIENDLY_DETAILS.get(status, error.description or _status_title(status))
    if isinstance(error, CSRFError):
        detail = "This form has expired or did not come from this site. Reload the page and "
        detail += "try again."
    page = _html_error(status, detail)
    if page is None:
        return error
    page.headers.update(_kept_headers(error))
    return page


def handle_database_unavailable(error: Exception) -> Response:
    # The database refused, went away, is locked past the busy timeout, or the pool had no
    # connection in time: nothing was stored, and trying again later may succeed.
    current_app.logger.error(
        "database unavailable on %s %s: %s", request.method, request.path, error
    )
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return _answer(ApiError(503, UNAVAILABLE_DETAIL, headers=headers))


def handle_unexpected(error: Exception) -> Response | HTTPException:
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    if not is_api_request():
        page = _html_error(500, "Something went wrong on our side. Please try again.")
        return page if page is not None else InternalServerError()
    return ApiError(500, "The server could not complete the request.").to_response()


def register_errorhandlers(app: Flask) -> None:
    """Answer every error on the API paths as problem+json; never leak a traceback."""
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(ServiceError, handle_service_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(sa_exc.OperationalError, handle_database_unavailable)
    app.register_error_handler(sa_exc.TimeoutError, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
