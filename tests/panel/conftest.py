"""The moderator panel's fixtures: moderators, logged-in clients and the rows its URLs name.

Everything goes through the Flask test client with CSRF on; tokens are scraped from the pages
the panel renders, so the tests exercise the real forms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc import create_app
from commentsvc.extensions import db
from commentsvc.models import Moderator, Site
from commentsvc.services import accounts
from tests.support.panel import ADMIN, BLOG_MODERATOR, add_moderator, logged_in
from tests.support.state import PENDING


@pytest.fixture
def make_moderator(app: Flask) -> Callable[..., int]:
    """Create a moderator: ``make_moderator(email, admin=, sites=, active=, password=)``."""
    return partial(add_moderator, app)


@pytest.fixture
def admin_client(app: Flask, client: FlaskClient) -> FlaskClient:
    """The default client, logged in as an administrator of every site."""
    add_moderator(app, ADMIN, admin=True)
    return logged_in(app, ADMIN, client)


@pytest.fixture
def blog_client(app: Flask) -> FlaskClient:
    """A second client, logged in as a moderator of the site "blog" only."""
    add_moderator(app, BLOG_MODERATOR, sites=("blog",))
    return logged_in(app, BLOG_MODERATOR)


@pytest.fixture
def make_panel_app(app: Flask) -> Iterator[Callable[..., Flask]]:
    """Another app on the same database, with some settings changed."""
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        other = create_app(
            {
                "ENV": "testing",
                "SECRET_KEY": "test-secret",
                "DATABASE_URL": app.config["DATABASE_URL"],
                "RATELIMIT_ENABLED": False,
                **overrides,
            }
        )
        made.append(other)
        return other

    yield make
    for other in made:
        with other.app_context():
            db.engine.dispose()


@pytest.fixture
def existing(app: Flask, make_comment: Callable[..., int]) -> dict[str, int]:
    """Ids of one comment, site, moderator and token: a row of each kind a panel URL names."""
    comment = make_comment(status=PENDING)
    moderator = add_moderator(app, "someone@example.com", sites=("news",))
    with app.app_context():
        owner = db.session.get(Moderator, moderator)
        assert owner is not None
        token = accounts.create_token(owner, "ci").token.id
        site = db.session.scalar(sa.select(Site.id).where(Site.slug == "news"))
    assert site is not None
    return {"comment": comment, "moderator": moderator, "token": token, "site": site}
