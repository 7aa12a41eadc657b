"""``Idempotency-Key`` (DESIGN §7): a submission sent again with the key of an earlier one
gets that one's answer, and nothing more is stored; the key with another submission is
refused.

A key is remembered in the transaction that stores its submission, by one upsert that only
replaces a key older than :data:`REMEMBER`. Of two sends of one key at the same time, the
second waits on the first's row (PostgreSQL; SQLite has one writer), finds it taken, and
answers with what the first stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

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
    if connection.execute(_REMEMBER, values).first() is not None:
        return None
    return earlier_answer(connection, site_id, key, fingerprint, now)


#: Insert a key, or take over one older than :data:`REMEMBER`; returns a row if either.
#: Written out (the same on SQLite and PostgreSQL): SQLAlchemy does not cache the compiled
#: form of an ON CONFLICT DO UPDATE, and compiling it each time cost more than running it.
_REMEMBER = sa.text(
    "INSERT INTO idempotency_keys (site_id, key, fingerprint, comment_id, response, created_at) "
    "VALUES (:site_id, :key, :fingerprint, :comment_id, :response, :created_at) "
    "ON CONFLICT (site_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, "
    "comment_id = excluded.comment_id, response = excluded.response, "
    "created_at = excluded.created_at "
    "WHERE idempotency_keys.created_at < :since "
    "RETURNING id"
).bindparams(
    sa.bindparam("created_at", type_=IdempotencyKey.created_at.type),
    sa.bindparam("since", type_=IdempotencyKey.created_at.type),
)
