"""The moderator web panel, served at ``/moderation/``: server-rendered, works without JS."""

from __future__ import annotations

from flask import Flask

from commentsvc.extensions import csrf, login_manager
from commentsvc.panel.blueprint import PanelSessionInterface, bp, security_headers


def init_panel(app: Flask) -> None:
    """Register the panel; bind CSRF (only the panel's forms use it) and logins."""
    from commentsvc.panel import (  # noqa: F401  (routes on bp)
        admin,
        auth,
        blocklist,
        my_settings,
        views,
        webhooks,
    )
    from commentsvc.panel.helpers import (
        ACTION_WORDS,
        BLOCK_WHAT,
        ascii_url,
        event_note,
        reasons,
        relative_time,
        site_url,
    )

    app.session_interface = PanelSessionInterface()
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # see blueprint.check_csrf
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "panel.login"
    login_manager.login_message = "Please log in to moderate."
    login_manager.login_message_category = "info"  # a note, not a success
    # Not "strong": for permanent sessions Flask-Login makes it "basic", which binds nothing.
    login_manager.session_protection = None
    app.register_blueprint(bp)
    # On the app, not the blueprint, so errors outside any panel route get them too.
    app.after_request(security_headers)
    app.jinja_env.filters.setdefault("relative_time", relative_time)
    app.jinja_env.filters.setdefault("reasons", reasons)
    app.jinja_env.filters.setdefault("event_note", event_note)
    app.jinja_env.filters.setdefault("ascii_url", ascii_url)
    app.jinja_env.filters.setdefault("site_url", site_url)
    app.jinja_env.globals.setdefault("ACTION_WORDS", ACTION_WORDS)
    app.jinja_env.globals.setdefault("BLOCK_WHAT", BLOCK_WHAT)
