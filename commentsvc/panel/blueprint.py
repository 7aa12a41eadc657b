"""The panel's blueprint, its request hooks and its session handling."""

from __future__ import annotations

from flask import Blueprint, Flask, Request, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin

from commentsvc.extensions import csrf
from commentsvc.paths import PANEL_PREFIX, in_panel
from commentsvc.payloads import refuse_nul

bp = Blueprint(
    "panel",
    __name__,
    url_prefix=PANEL_PREFIX,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)


@bp.before_request
def refuse_nul_input() -> None:
    """No panel URL or form field carries a NUL character (see :func:`refuse_nul`)."""
    refuse_nul(form=True)


@bp.before_request
def check_csrf() -> None:
    """Every unsafe panel request carries the session's CSRF token (400 otherwise).

    Checked here rather than by Flask-WTF's app-wide hook: the APIs authenticate with tokens
    or are public, so only the panel's forms carry one, and the hot public paths skip the
    check's cost altogether.
    """
    csrf.protect()


def security_headers(response: Response) -> Response:
    """Every panel response: a strict CSP (no inline script), no framing, no sniffing."""
    if not in_panel(request.path):
        return response
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "panel.static":
        response.headers["Cache-Control"] = "no-store"
    return response


class PanelSessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions for the panel only.

    The APIs and the widget never use the session: elsewhere it starts empty without reading
    the cookie (no signature check on every public request), and is never saved, which would
    only add ``Vary: Cookie`` (spoiling shared caches of public threads) and stray cookies.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not in_panel(request.path):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if in_panel(request.path):
            super().save_session(app, session, response)
