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
from flask_migrate import downgrade, upgrade

from commentsvc.extensions import db
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
