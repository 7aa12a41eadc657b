"""Migrations and models agree; the schema upgrades from empty and downgrades cleanly.

Both run on the database of the test run: SQLite, or PostgreSQL when
``COMMENTSVC_TEST_DATABASE_URL`` is set (``make test`` runs the suite on each).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from commentsvc import PROJECT_ROOT
from commentsvc.extensions import db
from commentsvc.health import schema_heads
from tests.conftest import make_app


def drift() -> list[Any]:
    """What autogenerate would write to take the database to the models (nothing, we hope)."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, db.metadata))


def schema_objects() -> dict[str, list[str]]:
    """The tables and sequences of the database, but Alembic's own version table."""
    with db.engine.connect() as connection:
        inspector = sa.inspect(connection)
        tables = [name for name in inspector.get_table_names() if name != "alembic_version"]
        sequences = inspector.get_sequence_names() if connection.dialect.supports_sequences else []
    return {"tables": sorted(tables), "sequences": sorted(sequences)}


def test_upgraded_database_has_no_drift(tmp_path: Path) -> None:
    app = make_app(tmp_path / "fresh.db")
    with app.app_context():
        upgrade()
        assert drift() == []
        db.engine.dispose()


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    app = make_app(tmp_path / "roundtrip.db")
    with app.app_context():
        upgrade()
        assert set(schema_objects()["tables"]) == set(db.metadata.tables)
        downgrade(revision="base")
        assert schema_objects() == {"tables": [], "sequences": []}
        upgrade()
        assert drift() == []
        db.engine.dispose()


def test_0004_keeps_page_urls_on_the_site_and_drops_the_others(tmp_path: Path) -> None:
    """Before 0004 the first comment of a page set its URL and title, unchecked: a page
    keeps them only when the URL is on its site's origins and an approved comment is there;
    the comments keep the page's URL only when it is on the site's origins."""
    app = make_app(tmp_path / "pages.db")
    with app.app_context():
        upgrade(revision="0003_abuse_protection")
        with db.engine.begin() as connection:
            run = connection.execute
            run(
                sa.text(
                    "INSERT INTO sites (id, slug, name, origins, settings, created_at)"
                    " VALUES (1, 'news', 'News', :origins, '{}', CURRENT_TIMESTAMP)"
                ),
                {"origins": '["https://news.example"]'},
            )
            pages = [
                (1, "/a", "https://news.example/a", "Article A"),
                (2, "/b", "https://evil.example/login", "Session expired"),
                (3, "/c", "https://news.example\\@evil.example/", "Backslash"),
                (4, "/d", "https://news.example/d", "Only pending"),
            ]
            for page_id, key, url, title in pages:
                run(
                    sa.text(
                        "INSERT INTO pages (id, site_id, key, url, title, approved_count,"
                        " version, created_at)"
                        " VALUES (:id, 1, :key, :url, :title, 0, 0, CURRENT_TIMESTAMP)"
                    ),
                    {"id": page_id, "key": key, "url": url, "title": title},
                )
                status = "pending" if page_id == 4 else "approved"
                run(
                    sa.text(
                        "INSERT INTO comments (site_id, page_id, body, body_html, author_name,"
                        " author_email, status, created_at, updated_at, spam_score,"
                        " spam_reasons)"
                        " VALUES (1, :page, 'b', '<p>b</p>', 'n', 'n@example.com', :status,"
                        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, '')"
                    ),
                    {"page": page_id, "status": status},
                )
        upgrade()
        with db.engine.connect() as connection:
            pages_now = connection.execute(sa.text("SELECT id, url, title FROM pages ORDER BY id"))
            comments_now = connection.execute(
                sa.text("SELECT page_id, page_url, page_title FROM comments ORDER BY page_id")
            )
            assert pages_now.all() == [
                (1, "https://news.example/a", "Article A"),
                (2, None, None),
                (3, None, None),
                (4, None, None),  # no approved comment defines it yet
            ]
            assert comments_now.all() == [
                (1, "https://news.example/a", "Article A"),
                (2, None, None),
                (3, None, None),
                (4, "https://news.example/d", "Only pending"),
            ]
        db.engine.dispose()


def test_the_readiness_checks_heads_are_alembics() -> None:
    """/readyz reads the heads without importing Alembic; they are Alembic's."""
    directory = str(PROJECT_ROOT / "migrations")
    assert schema_heads(directory) == frozenset(ScriptDirectory(directory).get_heads())


def test_the_heads_of_branches_and_a_merge_are_alembics(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (tmp_path / "script.py.mako").write_text("")
    scripts = {
        "a": "revision = 'a'\ndown_revision = None\n",
        "b": "revision: str = 'b'\ndown_revision: str | None = 'a'\n",
        "c": "revision = 'c'\ndown_revision = 'a'\n",
        "d": "revision = \"d\"\ndown_revision = ('b', 'c')\ndepends_on = None\n",
        "e": "from alembic import op\nrevision = 'e'\ndown_revision = 'a'\nbranch_labels = None\n",
    }
    for name, text in scripts.items():
        (versions / f"{name}_x.py").write_text(f'"""{name}"""\n{text}')
    heads = schema_heads(str(tmp_path))
    assert heads == frozenset(ScriptDirectory(str(tmp_path)).get_heads())
    assert heads == {"d", "e"}
