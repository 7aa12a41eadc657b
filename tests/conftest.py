"""Fixtures: an app on a fresh, migrated database per test; client, runner, factories.

The database is a SQLite file, or a PostgreSQL database when ``COMMENTSVC_TEST_DATABASE_URL``
is set (see :mod:`tests.support.databases`). Tests marked ``sqlite_only`` check SQLite itself (its
pragmas, its file) and run in the SQLite run only; tests marked ``postgresql_only`` in the
PostgreSQL run only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade

from commentsvc import create_app
from commentsvc.cli import register_commands
from commentsvc.delivery import drain
from commentsvc.extensions import db
from commentsvc.models import ApiToken, Comment, CommentStatus, Moderator, Page, Site
from commentsvc.security import hash_password, hash_token
from commentsvc.text import render_body
from tests.support.databases import URL_VARIABLE, close_run_databases, run_databases
from tests.support.receiver import WebhookReceiver
from tests.support.redis import RedisServer, flush_all, shared_redis_url
from tests.support.smtp import SmtpServer

ORIGIN = "https://news.example"

# The apps the tests build read no env file: not the one `make run` keeps in instance/.
os.environ["COMMENTSVC_ENV_FILE"] = os.devnull
OTHER_ORIGIN = "https://blog.example"
PASSWORD = "correct horse battery"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Connect to the PostgreSQL server of the run, if any, before anything else runs."""
    try:
        run_databases()
    except Exception as error:
        raise pytest.UsageError(
            f"{URL_VARIABLE}: cannot use the database server ({error}). "
            "./scripts/ensure-postgres.sh starts a local one and prints its URL."
        ) from error


def pytest_sessionfinish(session: pytest.Session) -> None:
    close_run_databases()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests for one database belong to that database's run only (``make test`` runs both):
    in the other run they are deselected, not skipped, so no run reports a skip.

    The browser tests run in the SQLite run: they check the widget and the panel in
    Chromium, and what those call is checked on both databases by the API and panel tests
    (running them twice would take CI past its time)."""
    dialect = run_databases().dialect
    only = {"sqlite_only": "sqlite", "postgresql_only": "postgresql", "browser": "sqlite"}
    elsewhere = [
        item
        for item in items
        if any(item.get_closest_marker(m) and dialect != db for m, db in only.items())
    ]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if item not in elsewhere]


def make_app(database: Path) -> Flask:
    """An app on ``database`` (a path naming a database of this run, created when new)."""
    app = create_app(
        {
            "ENV": "testing",
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": run_databases().url(database),
            "RATELIMIT_ENABLED": False,
        }
    )
    register_commands(app)  # the CLI, and Flask-Migrate for upgrade()
    return app


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database migrated to head once per run; each test gets a fresh copy of it."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    app = make_app(path)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return path


@pytest.fixture
def app(tmp_path: Path, migrated_database: Path) -> Iterator[Flask]:
    database = tmp_path / "test.db"
    run_databases().fresh(migrated_database, database)
    app = make_app(database)
    with app.app_context():
        db.session.add_all(
            [
                Site(slug="news", name="News", origins=[ORIGIN]),
                Site(slug="blog", name="Blog", origins=[OTHER_ORIGIN]),
            ]
        )
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()
    run_databases().drop(database)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis for this test (the run's shared instance), emptied before the test."""
    url = shared_redis_url()
    flush_all(url)
    yield url


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private Redis server for this test alone, which it may stop; gone after the test."""
    with RedisServer(tmp_path) as server:
        yield server


def count_comments(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) or 0


@pytest.fixture
def comment_count(app: Flask) -> Callable[[], int]:
    """How many comments are stored, whatever their status."""
    return lambda: count_comments(app)


def valid_submission(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "page": "/2025/10/us-china-talks",
        "page_url": f"{ORIGIN}/2025/10/us-china-talks",
        "page_title": "US-China talks",
        "body": "A thoughtful comment.",
        "author_name": "Ada Lovelace",
        "author_email": "ada@example.com",
        "author_url": "https://ada.example/",
    }
    data.update(overrides)
    return data


@pytest.fixture
def make_comment(app: Flask) -> Callable[..., int]:
    """Store a comment directly (status, site and page chosen by the test); returns its id."""

    def make(
        *,
        site: str = "news",
        page: str = "/2025/10/us-china-talks",
        status: CommentStatus = CommentStatus.APPROVED,
        body: str = "Stored comment",
        author_email: str = "reader@example.com",
        parent_id: int | None = None,
    ) -> int:
        with app.app_context():
            site_row = db.session.scalar(sa.select(Site).where(Site.slug == site))
            assert site_row is not None
            page_row = db.session.scalar(
                sa.select(Page).where(Page.site_id == site_row.id, Page.key == page)
            )
            if page_row is None:
                page_row = Page(site_id=site_row.id, key=page)
                db.session.add(page_row)
                db.session.flush()
            comment = Comment(
                site_id=site_row.id,
                page_id=page_row.id,
                parent_id=parent_id,
                body=body,
                body_html=render_body(body),
                author_name="Reader",
                author_email=author_email,
                status=status,
            )
            db.session.add(comment)
            if status == CommentStatus.APPROVED:
                page_row.approved_count += 1
            page_row.version += 1
            db.session.commit()
            return comment.id

    return make


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free loopback port, for this test."""
    with SmtpServer() as server:
        yield server


#: The service's external address in the tests' mails.
PUBLIC_URL = "https://comments.example.test"


@pytest.fixture
def mail_app(app: Flask, smtp_server: SmtpServer) -> Flask:
    """``app`` sending mail to ``smtp_server``, linking to :data:`PUBLIC_URL`."""
    app.config.update(
        SMTP_URL=smtp_server.url,
        PUBLIC_URL=PUBLIC_URL,
        MAIL_FROM="Comments <comments@example.test>",
    )
    return app


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A real HTTP receiver of webhooks on a free loopback port, for this test."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def deliver(app: Flask) -> Callable[[], None]:
    """Run the outbox worker in this thread until nothing is due now."""

    def run() -> None:
        with app.app_context():
            drain(app)

    return run


@cache
def password_hash() -> str:
    """The hash of PASSWORD, computed once (scrypt is deliberately slow)."""
    return hash_password(PASSWORD)


@pytest.fixture
def make_token(app: Flask) -> Callable[..., str]:
    """Create a moderator (optionally limited to some sites) and return an API token."""

    def make(email: str = "mod@example.com", sites: tuple[str, ...] = ()) -> str:
        token = f"csv_test_{email}"
        with app.app_context():
            chosen = list(db.session.scalars(sa.select(Site).where(Site.slug.in_(sites))))
            moderator = Moderator(
                email=email,
                password_hash=password_hash(),
                all_sites=not sites,
                sites=chosen,
            )
            db.session.add(moderator)
            db.session.flush()
            db.session.add(
                ApiToken(moderator_id=moderator.id, name="test", token_hash=hash_token(token))
            )
            db.session.commit()
        return token

    return make


@pytest.fixture
def auth(make_token: Callable[..., str]) -> dict[str, str]:
    """Authorization headers of a moderator of every site."""
    return {"Authorization": f"Bearer {make_token()}"}
