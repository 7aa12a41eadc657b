"""Rate limits on submissions (DESIGN §7) and previews (§10), in the notation of the
``limits`` library.

Submissions are counted in one of two places, both seen by every worker and every replica:

* the service's own database, by default (nothing more to run on one machine): the
  comments themselves are the count. Each carries a keyed hash of its client's address
  (:func:`client_hash`, never the address), and a submission is over a limit of ``N`` per
  period when the client's ``N``-th newest comment on the site is younger than the period:
  a sliding window, read from one index, inside the submission's transaction (serialized
  per client on PostgreSQL by an advisory lock), with nothing more written.
* Redis, when ``RATELIMIT_STORAGE_URI`` names one: ``limits``' fixed windows
  (``FixedWindowRateLimiter``) in its Redis storage.

Previews are counted in the same Redis, or else in each worker's memory: a preview stores
nothing the database could count it by, and writing a row to count it (taking SQLite's one
write lock) would cost more than the rendering the limit protects. Per worker, a client
gets at most the limit times the number of workers: the rendering each worker does for it
stays bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError, StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from commentsvc.models import Comment
from commentsvc.security import parse_ip
from commentsvc.services.errors import Throttled, Unavailable

logger = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")
#: A Redis that does not answer within this many seconds counts as gone.
REDIS_TIMEOUT_SECONDS = 0.5
#: A storage failure is logged at most this often per worker (a flood would repeat it).
FAILURE_LOG_INTERVAL_SECONDS = 60.0
_EXTENSION = "commentsvc.throttling"
_PREVIEW_EXTENSION = "commentsvc.preview_throttling"

#: The times of the client's newest comments on the site, since the start of the longest
#: window, at most as many as the largest limit: at most that many entries of one index.
_RECENT = (
    sa.select(Comment.created_at)
    .where(
        Comment.site_id == sa.bindparam("site_id"),
        Comment.client_hash == sa.bindparam("client_hash"),
        Comment.created_at >= sa.bindparam("since", type_=Comment.created_at.type),
    )
    .order_by(Comment.created_at.desc())
    .limit(sa.bindparam("most"))
)
#: Submissions of one client wait for each other (PostgreSQL), so that two at once cannot
#: both find room for one more.
_CLIENT_LOCK = sa.text("SELECT pg_advisory_xact_lock(:lock)")


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


def _retry_after(wait: float, period: timedelta) -> int:
    """Whole seconds to wait, between one and the limit's period: a comment that another
    worker stored after this request read the clock is newer than its ``now``, but it
    cannot hold a later one back for longer than a period from now."""
    return max(1, min(math.ceil(wait), int(period.total_seconds())))


@dataclass
class _Limits:
    """Limits of one kind of request, in ``limiter``'s storage (None: kept elsewhere)."""

    items: list[RateLimitItem]
    limiter: FixedWindowRateLimiter | None
    fail_open: bool
    _quiet_until: float = 0.0
    #: What the limits count, as the log names them when their storage is gone.
    counted: ClassVar[str]
    #: The answer (503) when their storage is gone and ``fail_open`` is off.
    unavailable: ClassVar[str]

    def __post_init__(self) -> None:
        # Derived once: the period of each limit, the longest, and the largest count.
        self._periods = [timedelta(seconds=item.get_expiry()) for item in self.items]
        self._longest = max(self._periods)
        self._most = max(item.amount for item in self.items)

    def _too_many(self, item: RateLimitItem) -> str:
        """What a request over ``item`` is told."""
        raise NotImplementedError

    def _count_in_limiter(self, limiter: FixedWindowRateLimiter, *identifiers: str) -> None:
        """Count a request of ``identifiers`` against every limit; Throttled, with the
        seconds until the window it is over ends, when it is over one."""
        try:
            for item, period in zip(self.items, self._periods, strict=True):
                if not limiter.hit(item, *identifiers):
                    reset = limiter.get_window_stats(item, *identifiers)
                    wait = reset.reset_time - time.time()
                    raise Throttled(self._too_many(item), retry_after=_retry_after(wait, period))
        except StorageError as error:
            self._storage_failed(error.storage_error)

    def _storage_failed(self, error: Exception) -> None:
        """Let the request through, or refuse it, by the configured choice."""
        now = time.time()
        if now >= self._quiet_until:
            self._quiet_until = now + FAILURE_LOG_INTERVAL_SECONDS
            counted = self.counted
            outcome = f"letting {counted} through" if self.fail_open else f"refusing {counted}"
            logger.error("rate-limit storage unreachable (%s); %s", error, outcome)
        from commentsvc.observability import count_rate_limit_failure

        count_rate_limit_failure()
        if not self.fail_open:
            raise Unavailable(self.unavailable) from error


@dataclass
class SubmitLimits(_Limits):
    """The submission limits of one app; ``limiter`` is None when the database keeps the
    count."""

    counted: ClassVar[str] = "submissions"
    unavailable: ClassVar[str] = "Comments cannot be taken right now. Please try again in a moment."

    def _too_many(self, item: RateLimitItem) -> str:
        return (
            f"Too many comments from your address; the limit is {item}. "
            "Please wait before posting again."
        )

    def hit(
        self,
        site_id: int,
        client: str,
        connection: sa.Connection,
        now: datetime,
    ) -> None:
        """Count a submission of ``client`` (its :func:`client_hash`) to a site before it
        is stored, on the submission's ``connection``; Throttled, with the seconds until
        the limit lets one through, when it is over a limit."""
        if self.limiter is None:
            self._count_stored(site_id, client, connection, now)
        else:
            self._count_in_limiter(self.limiter, "submit", str(site_id), client)

    def _count_stored(
        self, site_id: int, client: str, connection: sa.Connection, now: datetime
    ) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(_CLIENT_LOCK, {"lock": int(client[:15], 16)})
        parameters = {
            "site_id": site_id,
            "client_hash": client,
            "since": now - self._longest,
            "most": self._most,
        }
        recent = connection.execute(_RECENT, parameters).scalars().all()  # newest first
        for item, period in zip(self.items, self._periods, strict=True):
            # Over a limit of N per period: the N-th newest comment is within the period.
            if len(recent) >= item.amount and recent[item.amount - 1] >= now - period:
                wait = (recent[item.amount - 1] + period - now).total_seconds()
                raise Throttled(self._too_many(item), retry_after=_retry_after(wait, period))


@dataclass
class PreviewLimits(_Limits):
    """The preview limits of one app, per client address and every site together: in
    Redis when one is configured, else in this worker's memory."""

    limiter: FixedWindowRateLimiter
    counted: ClassVar[str] = "previews"
    unavailable: ClassVar[str] = "Previews cannot be made right now. Please try again in a moment."

    def _too_many(self, item: RateLimitItem) -> str:
        return (
            f"Too many previews from your address; the limit is {item}. "
            "Please wait a moment before previewing again."
        )

    def hit(self, client: str) -> None:
        """Count a preview of ``client`` (its :func:`client_hash`); Throttled, with the
        seconds until the limit lets one through, when it is over a limit."""
        self._count_in_limiter(self.limiter, "preview", client)


def client_key(address: str | None) -> str:
    """Whose submissions count together: one IPv4 address, or one IPv6 /64 (a host usually
    holds a whole /64, so single IPv6 addresses would be free to rotate)."""
    ip = parse_ip(address)
    if ip is None:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def keyed_hash(value: str) -> str:
    """A keyed hash (HMAC-SHA256 with the app's secret key, 128 bits, hex) of ``value``: it
    tells equal values apart from others without telling the value."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


def client_hash(address: str | None) -> str:
    """What a comment (and a panel login attempt) keeps of its client for the rate limits:
    the :func:`keyed_hash` of :func:`client_key`."""
    return keyed_hash(client_key(address))


def _redis_storage(uri: str) -> Storage:
    """``limits``' Redis storage; its errors wrapped in StorageError, which
    :meth:`SubmitLimits.hit` handles as configured."""
    storage = storage_from_string(uri, wrap_exceptions=True, **_redis_options())
    assert isinstance(storage, Storage)  # a redis:// URL makes a synchronous storage
    return storage


def init_throttling(app: Flask) -> None:
    """Set up the app's submission and preview limits (nothing when rate limits are off)."""
    if not app.config["RATELIMIT_ENABLED"]:
        app.extensions[_EXTENSION] = app.extensions[_PREVIEW_EXTENSION] = None
        return
    uri = app.config["RATELIMIT_STORAGE_URI"]
    in_redis = FixedWindowRateLimiter(_redis_storage(uri)) if uri else None
    app.extensions[_EXTENSION] = SubmitLimits(
        items=parse_many(app.config["SUBMIT_RATE_LIMIT"]),
        limiter=in_redis,
        fail_open=app.config["RATELIMIT_FAIL_OPEN"],
    )
    app.extensions[_PREVIEW_EXTENSION] = PreviewLimits(
        items=parse_many(app.config["PREVIEW_RATE_LIMIT"]),
        limiter=in_redis or FixedWindowRateLimiter(MemoryStorage()),
        fail_open=app.config["RATELIMIT_FAIL_OPEN"],
    )


def count_submission(site_id: int, client: str, connection: sa.Connection, now: datetime) -> None:
    """Count a submission of ``client`` (its :func:`client_hash`) against the current app's
    limits, in its transaction, before it is stored; Throttled when over."""
    limits: SubmitLimits | None = current_app.extensions.get(_EXTENSION)
    if limits is not None:
        limits.hit(site_id, client, connection, now)


def count_preview(address: str | None) -> None:
    """Count a preview asked for from ``address`` against the current app's limits;
    Throttled when over."""
    limits: PreviewLimits | None = current_app.extensions.get(_PREVIEW_EXTENSION)
    if limits is not None:
        limits.hit(client_hash(address))
