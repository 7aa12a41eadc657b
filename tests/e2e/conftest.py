"""Fixtures for end-to-end tests: a migrated database made with the real CLI, and a real
gunicorn serving it over HTTP on a free local port (:mod:`tests.support.server`). The database
is a SQLite file or, when ``COMMENTSVC_TEST_DATABASE_URL`` is set, a PostgreSQL database (see
:mod:`tests.support.databases`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from commentsvc.models import Comment, Page
from tests.support.databases import run_databases
from tests.support.server import GunicornServer
from tests.support.service import Moderator, create_accounts, run_cli, service_env

MODERATOR = Moderator("x@example.com", "e2e-password-123")
WORKERS = 2
#: Shorter than gunicorn.conf.py's 8 s, so that a request left hanging by a test holds up
#: its teardown less; test_shutdown's slow requests finish well within it.
GRACEFUL_TIMEOUT = 5.0


@dataclass(frozen=True)
class Template:
    """A migrated database with a moderator and their API token, made once per module."""

    database: Path
    token: str


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    database = tmp_path_factory.mktemp("e2e-template") / "template.db"
    env = service_env(run_databases().url(database))
    token = create_accounts(env, {}, [MODERATOR], token_for=MODERATOR.email)
    assert token is not None
    yield Template(database, token)
    run_databases().drop(database)


@dataclass
class Server:
    """A running gunicorn serving one fresh database with the site ``e2e``, and an API token."""

    gunicorn: GunicornServer
    token: str

    @property
    def base_url(self) -> str:
        return self.gunicorn.url

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def comments_on(self, page: str) -> dict[int, str]:
        """The comments stored on ``page`` of any site, whatever their status, as id: body;
        read from the database itself, not through the service."""
        engine = sa.create_engine(self.gunicorn.env["COMMENTSVC_DATABASE_URL"], poolclass=NullPool)
        statement = (
            sa.select(Comment.id, Comment.body)
            .join(Page, Page.id == Comment.page_id)
            .where(Page.key == page)
        )
        try:
            with engine.connect() as connection:
                return dict(connection.execute(statement).tuples().all())
        finally:
            engine.dispose()


@contextmanager
def serve(
    template: Template, tmp_path: Path, workers: int = WORKERS, **variables: str
) -> Iterator[Server]:
    """A gunicorn with ``workers`` workers on a fresh copy of the template database, each
    worker started; ``variables`` (full names) add to its environment or override it."""
    database = tmp_path / "e2e.db"
    run_databases().copy(template.database, database)
    env = service_env(run_databases().url(database), **variables)
    gunicorn = GunicornServer(
        env, tmp_path / "gunicorn.log", workers=workers, graceful_timeout=GRACEFUL_TIMEOUT
    )
    run_cli(env, "sites", "add", "e2e", "--origin", gunicorn.url)
    try:
        with gunicorn:
            gunicorn.wait_every_worker()
            yield Server(gunicorn, template.token)
    finally:
        run_databases().drop(database)


@pytest.fixture
def server(template: Template, tmp_path: Path) -> Iterator[Server]:
    with serve(template, tmp_path) as running:
        yield running
