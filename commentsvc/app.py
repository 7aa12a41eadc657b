"""The Flask application: :func:`create_app` builds it, with every blueprint, extension and
command of the service."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from flask import Flask
from werkzeug.exceptions import NotFound
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, ValidationError

from commentsvc.models import MAX_ID


class IdConverter(IntegerConverter):
    """``<id:name>``: a row id; anything out of range is no row (404, not a 500 or 405)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, min=1, max=MAX_ID)

    def to_python(self, value: str) -> int:
        try:
            return super().to_python(value)
        except ValidationError:
            # Left to Werkzeug, a path that fails here goes on to the same path's routes for
            # other methods, whose methods then "match": 405 instead of 404.
            raise NotFound() from None


class CommentsApp(Flask):
    """Flask, with its per-request overhead trimmed where it repeats the same work."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's answer, looked up once per function: Flask asks for each hook and view on
        every request, and the check (``inspect.iscoroutinefunction``) is not free."""
        known = self._sync_functions.get(func)
        if known is None:
            known = self._sync_functions[func] = super().ensure_sync(func)
        return known

    @cached_property
    def _sync_functions(self) -> dict[Callable[..., Any], Callable[..., Any]]:
        return {}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application; ``config`` overrides settings (tests use it)."""
    from commentsvc.config import instance_folder, load_config

    app = CommentsApp("commentsvc", instance_path=instance_folder(), instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(load_config(app.instance_path, overrides=config))
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.converters["id"] = IdConverter
    register_observability(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_middleware(app)
    return app


def create_app_or_exit(status: int = 1) -> Flask:
    """Build the application from the environment, or say in one line which setting is
    wrong and exit with ``status`` (instead of a traceback)."""
    from commentsvc.config import ConfigError, exit_for

    try:
        return create_app()
    except ConfigError as error:
        exit_for(error, status)


def register_observability(app: Flask) -> None:
    from commentsvc.observability import init_observability

    init_observability(app)


def register_extensions(app: Flask) -> None:
    from commentsvc.extensions import configure_sqlite, db, end_session
    from commentsvc.services import outbox  # noqa: F401  every change writes its outbox event
    from commentsvc.services.throttling import init_throttling

    db.init_app(app)
    app.teardown_appcontext(end_session)  # runs before Flask-SQLAlchemy's (reverse order)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(app, db.engine)
    init_throttling(app)


def register_blueprints(app: Flask) -> None:
    from commentsvc import health, pages, widget
    from commentsvc.api import moderation, openapi, public
    from commentsvc.extensions import csrf
    from commentsvc.notifications import links as mail_links
    from commentsvc.notifications import pages as notification_pages
    from commentsvc.panel import init_panel

    app.register_blueprint(public.bp)
    app.register_blueprint(moderation.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(widget.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(notification_pages.bp)
    init_panel(app)
    # Under the panel's prefix: its look, its security headers.
    app.register_blueprint(mail_links.bp)
    # The APIs authenticate with tokens or are public, the one-click links of moderators'
    # mails and of reply mails with the signed token in their URL; only the panel's forms
    # carry CSRF.
    for blueprint in (public.bp, moderation.bp, mail_links.bp, notification_pages.bp):
        csrf.exempt(blueprint)


def register_errorhandlers(app: Flask) -> None:
    from commentsvc.errors import register_errorhandlers as register

    register(app)


def register_middleware(app: Flask) -> None:
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )
