"""One use case, one transaction: write_transaction commits once, or rolls back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from commentsvc.extensions import db, write_transaction
from commentsvc.models import Site


def slugs() -> list[str]:
    return list(db.session.scalars(sa.select(Site.slug).order_by(Site.slug)))


def test_a_use_case_commits_once_or_not_at_all(app: Flask) -> None:
    with app.app_context():
        with write_transaction():
            db.session.add(Site(slug="kept", name="Kept", origins=["https://k.example"]))
        with pytest.raises(RuntimeError), write_transaction():
            db.session.add(Site(slug="dropped", name="Dropped", origins=["https://d.example"]))
            raise RuntimeError("the use case failed")
        assert slugs() == ["blog", "kept", "news"]


def test_changes_made_outside_a_use_case_are_not_committed_by_the_next_one(app: Flask) -> None:
    with app.app_context():
        db.session.add(Site(slug="stray", name="Stray", origins=["https://s.example"]))
        with pytest.raises(RuntimeError, match="unsaved changes"), write_transaction():
            pass
        db.session.rollback()
        assert slugs() == ["blog", "news"]
