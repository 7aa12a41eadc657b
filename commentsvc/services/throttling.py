"""Rate limits on submissions (DESIGN §7), counted by the ``limits`` library.

The counters are fixed windows (``limits``' ``FixedWindowRateLimiter``). They live where
every worker and replica sees them: in the service's own database by default (no other
service to run on one machine), or in Redis when ``RATELIMIT_STORAGE_URI`` names one. The
database has no storage in ``limits``, so :class:`DatabaseStorage` is one: a counter row
per key, bumped by one atomic upsert.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError, StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from commentsvc.extensions import db, read_connection
from commentsvc.models import RateLimitCounter
from commentsvc.security import parse_ip
from commentsvc.services.errors import Throttled, Unavailable

logger = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")
#: A Redis that does not answer within this many seconds counts as gone.
REDIS_TIMEOUT_SECONDS = 0.5
#: Expired counter rows are deleted at most this often per worker.
PURGE_INTERVAL_SECONDS = 60.0
#: A storage failure is logged at most this often per worker (a flood would repeat it).
FAILURE_LOG_INTERVAL_SECONDS = 60.0
_EXTENSION = "commentsvc.throttling"


def check_storage_uri(uri: str) -> None:
    """ValueError unless ``uri`` names a Redis the ``limits`` library can use."""
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    if scheme not in REDIS_SCHEMES:
        raise ValueError(
            f"{uri!r} is not a Redis URL: it must start with one of "
            + ", ".join(f"{scheme}://" for scheme in REDIS_SCHEMES)
        )
    try:
        urlsplit(uri).port  # noqa: B018 - raises ValueError for a port that is not a number
        storage_from_string(uri, **_redis_options())
    except (ValueError, ConfigurationError) as error:
        raise ValueError(f"{uri!r} is not a usable Redis URL ({error})") from None


def _redis_options() -> dict[str, Any]:
    """Give up on a Redis that is gone at once: redis-py would retry three times with
    backoff (seconds per request) while the request waits."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), 0),
    }


class DatabaseStorage(Storage):
    """``limits`` storage in the service's database: table ``rate_limit_counters``, shared
    by every worker and every replica on the same database.

    A hit is one upsert (atomic by itself). While :meth:`bound` to a submission's
    transaction it runs there, committed or rolled back with the submission, and costs no
    connection and no transaction of its own; otherwise it runs on a connection of its own.
    """

    STORAGE_SCHEME = None  # made by the service only, never from a URL

    def __init__(self) -> None:
        super().__init__(wrap_exceptions=False)
        self._next_purge = 0.0
        self._connection: sa.Connection | None = None

    @contextmanager
    def bound(self, connection: sa.Connection | None) -> Iterator[None]:
        """Count on ``connection`` (in its transaction) inside the block."""
        self._connection = connection
        try:
            yield
        finally:
            self._connection = None

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        if self._connection is not None:
            yield self._connection
        else:
            with read_connection() as connection:
                yield connection

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sa.exc.SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._connect() as connection:
            parameters = {"key": key, "amount": amount, "now": now, "expires": now + expiry}
            hits = int(connection.execute(_INCREMENT, parameters).scalar_one())
            if now >= self._next_purge:
                self._next_purge = now + PURGE_INTERVAL_SECONDS
                connection.execute(_PURGE, {"now": now})
        return hits

    def get(self, key: str) -> int:
        with self._connect() as connection:
            row = connection.execute(_COUNTER, {"key": key, "now": time.time()}).first()
        return int(row.hits) if row is not None else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        with self._connect() as connection:
            row = connection.execute(_COUNTER, {"key": key, "now": now}).first()
        return float(row.expires_at) if row is not None else now

    def check(self) -> bool:
        try:
            with read_connection() as connection:
                connection.execute(sa.select(1))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with db.engine.begin() as connection:
            return connection.execute(sa.delete(RateLimitCounter)).rowcount

    def clear(self, key: str) -> None:
        with db.engine.begin() as connection:
            connection.execute(sa.delete(RateLimitCounter).where(RateLimitCounter.key == key))


_COUNTER = sa.select(RateLimitCounter.hits, RateLimitCounter.expires_at).where(
    RateLimitCounter.key == sa.bindparam("key"),
    RateLimitCounter.expires_at > sa.bindparam("now"),
)
_PURGE = sa.delete(RateLimitCounter).where(RateLimitCounter.expires_at <= sa.bindparam("now"))


#: Count ``amount`` hits on ``key``: a new window if there is none or it ended, else added
#: to the current one; returns the window's hits. Written out (the same on SQLite and
#: PostgreSQL): SQLAlchemy does not cache the compiled form of an ON CONFLICT DO UPDATE,
#: and compiling it on every submission cost more than running it.
_INCREMENT = sa.text(
    "INSERT INTO rate_limit_counters (key, hits, expires_at) VALUES (:key, :amount, :expires) "
    "ON CONFLICT (key) DO UPDATE SET "
    "hits = CASE WHEN rate_limit_counters.expires_at <= :now THEN :amount "
    "ELSE rate_limit_counters.hits + :amount END, "
    "expires_at = CASE WHEN rate_limit_counters.expires_at <= :now THEN :expires "
    "ELSE rate_limit_counters.expires_at END "
    "RETURNING hits"
)


@dataclass
class SubmitLimits:
    """The submission limits of one app, and where their counters live."""

    items: list[RateLimitItem]
    limiter: FixedWindowRateLimiter
    storage: Storage
    fail_open: bool
    _quiet_until: float = 0.0

    @property
    def in_database(self) -> bool:
        """Whether the counters live in the service's database."""
        return isinstance(self.storage, DatabaseStorage)

    def hit(self, site_id: int, address: str | None, connection: sa.Connection | None) -> None:
        """Count one submission from ``address`` to a site (in the database: on the
        submission's ``connection``, so that a submission refused later is not counted);
        Throttled, with the seconds until the window that is full ends, when over a limit."""
        if isinstance(self.storage, DatabaseStorage):
            with self.storage.bound(connection):
                self._hit(site_id, address)
        else:
            self._hit(site_id, address)

    def _hit(self, site_id: int, address: str | None) -> None:
        client = client_key(address)
        try:
            for item in self.items:
                if not self.limiter.hit(item, "submit", str(site_id), client):
                    reset = self.limiter.get_window_stats(
                        item, "submit", str(site_id), client
                    ).reset_time
                    raise Throttled(
                        f"Too many comments from your address; the limit is {item}. "
                        "Please wait before posting again.",
                        retry_after=max(1, math.ceil(reset - time.time())),
                    )
        except StorageError as error:
            self._storage_failed(error.storage_error)

    def _storage_failed(self, error: Exception) -> None:
        """Let the submission through, or refuse it, by the configured choice."""
        now = time.time()
        if now >= self._quiet_until:
            self._quiet_until = now + FAILURE_LOG_INTERVAL_SECONDS
            outcome = "letting submissions through" if self.fail_open else "refusing submissions"
            logger.error("rate-limit storage unreachable (%s); %s", error, outcome)
        from commentsvc.observability import count_rate_limit_failure

        count_rate_limit_failure()
        if not self.fail_open:
            raise Unavailable(
                "Comments cannot be taken right now. Please try again in a moment."
            ) from error


def client_key(address: str | None) -> str:
    """Whose submissions count together: one IPv4 address, or one IPv6 /64 (a host usually
    holds a whole /64, so single IPv6 addresses would be free to rotate)."""
    ip = parse_ip(address)
    if ip is None:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def make_storage(config: Mapping[str, Any]) -> Storage:
    """Redis when ``RATELIMIT_STORAGE_URI`` is set, else the database. Errors of the
    storage are wrapped in ``limits``' StorageError, which :meth:`SubmitLimits.hit` handles
    (the database's are left alone: without it no submission is stored anyway)."""
    uri = config["RATELIMIT_STORAGE_URI"]
    if uri:
        storage = storage_from_string(uri, wrap_exceptions=True, **_redis_options())
        assert isinstance(storage, Storage)  # a redis:// URL makes a synchronous storage
        return storage
    return DatabaseStorage()


def init_throttling(app: Flask) -> None:
    """Set up the app's submission limits (nothing when rate limits are off)."""
    if not app.config["RATELIMIT_ENABLED"]:
        app.extensions[_EXTENSION] = None
        return
    storage = make_storage(app.config)
    app.extensions[_EXTENSION] = SubmitLimits(
        items=parse_many(app.config["SUBMIT_RATE_LIMIT"]),
        limiter=FixedWindowRateLimiter(storage),
        storage=storage,
        fail_open=app.config["RATELIMIT_FAIL_OPEN"],
    )


def count_submission(site_id: int, address: str | None, connection: sa.Connection) -> None:
    """Count a submission against the current app's limits, inside its transaction
    (``connection``); Throttled when over. Refused submissions (invalid, duplicate, a
    retry answered from its ``Idempotency-Key``) roll back and are not counted in the
    database; in Redis, a submission refused after this point still counts."""
    limits: SubmitLimits | None = current_app.extensions.get(_EXTENSION)
    if limits is not None:
        limits.hit(site_id, address, connection)
