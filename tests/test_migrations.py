"""Migrations and models agree; the schema upgrades from empty and downgrades cleanly."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from commentsvc.extensions import db
from tests.conftest import make_app


def test_upgraded_database_has_no_drift(tmp_path: Path) -> None:
    app = make_app(tmp_path / "fresh.db")
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, db.metadata) == []
        db.engine.dispose()


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    app = make_app(tmp_path / "roundtrip.db")
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        with db.engine.connect() as connection:
            tables = set(
                connection.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type='table'"
                ).scalars()
            )
        assert tables <= {"alembic_version"}
        upgrade()
        db.engine.dispose()
