"""The moderator web panel, served at ``/moderation/``: server-rendered, works without JS."""

from __future__ import annotations

from flask import Flask

from commentsvc.extensions import csrf, login_manager
from commentsvc.panel.blueprint import PanelSessionInterface, bp, security_headers


def init_panel(app: Flask) -> None:
    """Register the panel; bind CSRF (only the panel's forms use it) and logins."""
    from commentsvc.panel import admin, auth, views  # noqa: F401  (their routes are on bp)
    from commentsvc.panel.helpers import relative_time

    app.session_interface = PanelSessionInterface()
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # see blueprint.check_csrf
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "panel.login"
    login_manager.login_message = "Please log in to moderate."
    login_manager.session_protection = "strong"
    app.register_blueprint(bp)
    # On the app, not the blueprint, so errors outside any panel route get them too.
    app.after_request(security_headers)
    app.jinja_env.filters.setdefault("relative_time", relative_time)
