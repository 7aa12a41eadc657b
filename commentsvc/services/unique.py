"""Adding a row whose name must be unique, race-safe on both databases."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from commentsvc.extensions import db, write_transaction
from commentsvc.services.errors import Conflict


def insert_unique(row: Any, same_name: sa.ColumnElement[bool], field: str, taken: str) -> None:
    """Store ``row`` unless a row matching ``same_name`` exists: Conflict on ``field`` then.

    The check comes first for a clear answer; the unique constraint catches a row added by
    somebody else since (PostgreSQL runs such writes side by side).
    """
    exists = sa.select(sa.literal(1)).select_from(type(row)).where(same_name)
    try:
        with write_transaction():
            if db.session.scalar(exists) is not None:
                raise Conflict.on(field, taken)
            db.session.add(row)
    except IntegrityError:
        if db.session.scalar(exists) is not None:
            raise Conflict.on(field, taken) from None
        raise
