"""``Idempotency-Key`` (DESIGN §7): a submission sent again with the key of an earlier one
gets that one's answer, and nothing more is stored; the key with another submission is
refused.

A key is remembered in the transaction that stores its submission, by one upsert that only
replaces a key older than :data:`REMEMBER`. Of two sends of one key at the same time, the
second waits on the first's row (PostgreSQL; SQLite has one writer), finds it taken, and
answers with what the first stored.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from commentsvc.models import IdempotencyKey
from commentsvc.services.errors import Invalid

#: How long a key is remembered (and, in submissions, how long a duplicate is refused).
REMEMBER = timedelta(hours=24)
#: Keys older than :data:`REMEMBER` are deleted at most this often per worker.
PURGE_INTERVAL = timedelta(hours=1)
FIELD = "Idempotency-Key"

_EARLIER = sa.select(IdempotencyKey.fingerprint, IdempotencyKey.response).where(
    IdempotencyKey.site_id == sa.bindparam("site_id"),
    IdempotencyKey.key == sa.bindparam("key"),
    IdempotencyKey.created_at >= sa.bindparam("since", type_=IdempotencyKey.created_at.type),
)
_PURGE = sa.delete(IdempotencyKey).where(
    IdempotencyKey.created_at < sa.bindparam("since", type_=IdempotencyKey.created_at.type)
)


class _Purge:
    """When this worker next deletes stale keys."""

    next_at: datetime | None = None


def earlier_answer(
    connection: sa.Connection, site_id: int, key: str, fingerprint: str, now: datetime
) -> str | None:
    """The answer recorded for ``key`` within :data:`REMEMBER`, if the same submission
    (``fingerprint``) took it; None if nobody did; Invalid if another submission did."""
    parameters = {"site_id": site_id, "key": key, "since": now - REMEMBER}
    earlier = connection.execute(_EARLIER, parameters).first()
    if earlier is None:
        return None
    if earlier.fingerprint != fingerprint:
        raise Invalid.on(FIELD, "This key was sent before with another comment; use a new key.")
    return str(earlier.response)


def remember(
    connection: sa.Connection,
    site_id: int,
    key: str,
    fingerprint: str,
    answer: str,
    comment_id: int,
    now: datetime,
) -> str | None:
    """Record ``answer`` (and the comment stored) under ``key``. If the key is taken: the
    answer recorded for it (the same submission sent twice at once), or Invalid."""
    since = now - REMEMBER
    if _Purge.next_at is None or now >= _Purge.next_at:
        _Purge.next_at = now + PURGE_INTERVAL
        connection.execute(_PURGE, {"since": since})
    values = {
        "site_id": site_id,
        "key": key,
        "fingerprint": fingerprint,
        "comment_id": comment_id,
        "response": answer,
        "created_at": now,
        "since": since,
    }
    if connection.execute(_remember(connection.dialect.name), values).first() is not None:
        return None
    return earlier_answer(connection, site_id, key, fingerprint, now)


@functools.cache
def _remember(dialect: str) -> sa.Insert:
    """Insert a key, or take over one older than :data:`REMEMBER`; returns a row if so."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(IdempotencyKey).values(
        site_id=sa.bindparam("site_id"),
        key=sa.bindparam("key"),
        fingerprint=sa.bindparam("fingerprint"),
        comment_id=sa.bindparam("comment_id"),
        response=sa.bindparam("response"),
        created_at=sa.bindparam("created_at", type_=IdempotencyKey.created_at.type),
    )
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[IdempotencyKey.site_id, IdempotencyKey.key],
        set_={
            "fingerprint": excluded.fingerprint,
            "comment_id": excluded.comment_id,
            "response": excluded.response,
            "created_at": excluded.created_at,
        },
        where=IdempotencyKey.created_at
        < sa.bindparam("since", type_=IdempotencyKey.created_at.type),
    ).returning(IdempotencyKey.id)
