"""The outbox of DESIGN §8: every change of a comment is written as an :class:`OutboxEvent`
in the change's own transaction; the worker (:mod:`commentsvc.delivery`) plans each event
into deliveries once, then sends each delivery at least once, with retries.

Three steps, each its own transaction, each safe with several workers at once:

1. :func:`record` (in the web request's transaction): the event, with the comment as the
   moderation API shows it right after the change.
2. :func:`dispatch`: undispatched events are taken in id order (on PostgreSQL with
   ``FOR UPDATE SKIP LOCKED``; SQLite has one writer at a time), each planner registered
   with :func:`planner` says what to send (moderator mails, reply mails, webhook calls), the
   deliveries are written and the event marked dispatched, together: an event is planned
   exactly once.
3. :func:`claim` leases due deliveries to one worker (``lease_until``, ``lease_owner``),
   a batch at a time; the worker makes an :func:`attempt` of each with the :func:`sender`
   of its kind, and :func:`finish` records the outcomes of a batch of attempts in one
   transaction: delivered, given up, skipped, or another attempt after an exponential
   backoff. A worker killed while sending leaves its leases and its heartbeat behind; once
   that heartbeat is stale (or the lease ran out) another worker takes the deliveries
   again: at least once. A worker that stops cleanly gives back what it claimed and did
   not attempt (:func:`release`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from flask import current_app

from commentsvc.extensions import db, read_connection, write_transaction
from commentsvc.models import (
    Delivery,
    DeliveryState,
    OutboxEvent,
    WorkerHeartbeat,
    utcnow,
)
from commentsvc.services.events import CommentEvent, comment_changed
from commentsvc.services.listing import ONE_COMMENT

#: How long a delivery stays with the worker that claimed it (longer than any send takes).
LEASE = timedelta(minutes=5)
#: How long a failing delivery is retried before it is given up, per channel.
RETRY_FOR = {"webhook": timedelta(hours=24), "mail": timedelta(hours=24)}
#: The first retry's delay; each further one doubles it, up to :data:`MAX_BACKOFF`.
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=4)
#: Longest error text kept with a delivery (never a whole response body).
MAX_ERROR = 300
T = TypeVar("T")
M = TypeVar("M")
#: The states a delivery ends in.
FINISHED = frozenset({DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.SKIPPED})


# -- 1. recording ---------------------------------------------------------------------


def snapshot(comment_id: int) -> dict[str, Any] | None:
    """The comment as the moderation API shows it now, in the current transaction (Core:
    the row is columns, not objects, and the ORM's result handling is not free)."""
    from commentsvc.api.serializers import moderation_comment  # the API's own allow-list

    session = db.session()
    session.flush()  # a change made through ORM objects (moderation) is in the row read
    row = session.connection().execute(ONE_COMMENT, {"comment_id": comment_id}).first()
    return moderation_comment(row) if row is not None else None


#: Core, not the ORM's bulk insert: an event is a plain row, and the ORM's insert path cost
#: more than the rest of recording it (every submission and moderation writes one).
_INSERT_EVENT = sa.insert(OutboxEvent)


@comment_changed.connect
def record(change: CommentEvent) -> None:
    """Write the outbox event of ``change`` in the change's transaction."""
    data = dict(change.data) if change.data is not None else snapshot(change.comment_id)
    db.session.connection().execute(
        _INSERT_EVENT,
        {
            "type": change.type.value,
            "site_id": change.site_id,
            "comment_id": change.comment_id,
            "actor": change.actor,
            "data": data or {"id": change.comment_id},
            "created_at": change.at,
        },
    )


# -- 2. planning ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Planned:
    """A delivery a planner wants made (see :class:`~commentsvc.models.Delivery`)."""

    channel: str
    kind: str
    recipient: str | None = None
    moderator_id: int | None = None
    webhook_id: int | None = None
    comment_id: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    state: DeliveryState = DeliveryState.PENDING
    #: Why it is not pending (held for a digest, skipped for a cap), kept as its error.
    reason: str | None = None


#: Given an event (in the dispatch transaction), the deliveries it calls for.
Planner = Callable[[OutboxEvent], Iterable[Planned]]
_PLANNERS: list[Planner] = []


def planner(function: Planner) -> Planner:
    """Register ``function`` to plan deliveries for every event."""
    _PLANNERS.append(function)
    return function


def _rows(
    site_id: int, planned: Iterable[Planned], event_id: int | None, now: datetime
) -> list[dict[str, Any]]:
    """The delivery rows of ``planned``, as :data:`_INSERT_DELIVERIES` takes them."""
    return [
        {
            "event_id": event_id,
            "site_id": site_id,
            "channel": item.channel,
            "kind": item.kind,
            "recipient": item.recipient,
            "moderator_id": item.moderator_id,
            "webhook_id": item.webhook_id,
            "comment_id": item.comment_id,
            "payload": dict(item.payload),
            "state": item.state,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "last_error": item.reason,
            # Planned as finished (a skip): finished now, and pruned in its time.
            "finished_at": now if item.state in FINISHED else None,
        }
        for item in planned
    ]


#: Core on the table: the ORM's bulk insert leaves out the columns a row has as None and
#: makes a statement per run of rows alike (a webhook call, then a mail, then a call…).
_INSERT_DELIVERIES = sa.insert(cast(sa.Table, Delivery.__table__))


def add_deliveries(
    site_id: int,
    planned: Iterable[Planned],
    event_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Write ``planned`` deliveries (in the current transaction); how many."""
    rows = _rows(site_id, planned, event_id, now or utcnow())
    if rows:
        db.session.connection().execute(_INSERT_DELIVERIES, rows)
    return len(rows)


@dataclass
class _Batch:
    """One dispatch transaction's planning: what planners looked up, and the deliveries
    planned and not written yet."""

    looked_up: dict[Hashable, Any] = field(default_factory=dict)
    unwritten: list[dict[str, Any]] = field(default_factory=list)


_BATCH = "commentsvc.outbox.batch"


def _batch() -> _Batch | None:
    batch: _Batch | None = db.session().info.get(_BATCH)
    return batch


def once_per_batch(key: Hashable, look_up: Callable[[], T]) -> T:
    """``look_up()``, made once per dispatch transaction for each ``key``: what a planner
    reads for every event (a site's webhooks, its moderators) is read for the first event of
    a batch and kept to the batch's end, in the transaction that holds the batch's events.
    Outside a dispatch it is read every time."""
    batch = _batch()
    if batch is None:
        return look_up()
    if key not in batch.looked_up:
        batch.looked_up[key] = look_up()
    found: T = batch.looked_up[key]
    return found


def write_planned() -> None:
    """Write the deliveries planned so far in this dispatch transaction. They are written
    together at its end; a planner that reads deliveries calls this first, so that it sees
    those of the batch's earlier events."""
    batch = _batch()
    if batch is not None and batch.unwritten:
        rows, batch.unwritten = batch.unwritten, []
        db.session.connection().execute(_INSERT_DELIVERIES, rows)


_UNDISPATCHED = sa.select(OutboxEvent.id).where(OutboxEvent.dispatched_at.is_(None)).limit(1)


def dispatch(limit: int = 100) -> int:
    """Plan up to ``limit`` undispatched events into deliveries; how many were planned.

    The batch is one transaction and its deliveries one statement; planners look up what
    every event of a site needs once per batch (:func:`once_per_batch`)."""
    with read_connection() as connection:  # idle workers do not take SQLite's write lock
        if connection.execute(_UNDISPATCHED).first() is None:
            return 0
    with write_transaction():
        events = db.session.scalars(
            sa.select(OutboxEvent)
            .where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        now = utcnow()
        batch = db.session().info[_BATCH] = _Batch()
        try:
            for event in events:
                for plan in _PLANNERS:
                    # Planned first: a planner may write what the batch planned so far.
                    rows = _rows(event.site_id, plan(event), event.id, now)
                    batch.unwritten.extend(rows)
                event.dispatched_at = now
            write_planned()
        finally:
            db.session().info.pop(_BATCH, None)
        return len(events)


# -- 3. sending -----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt; ``state`` None: try again later."""

    state: DeliveryState | None
    code: int | None = None
    error: str | None = None

    @classmethod
    def delivered(cls, code: int | None = None) -> Outcome:
        return cls(DeliveryState.DELIVERED, code)

    @classmethod
    def retry(cls, error: str, code: int | None = None) -> Outcome:
        return cls(None, code, error)

    @classmethod
    def failed(cls, error: str, code: int | None = None) -> Outcome:
        return cls(DeliveryState.FAILED, code, error)

    @classmethod
    def skipped(cls, reason: str) -> Outcome:
        return cls(DeliveryState.SKIPPED, None, reason)


#: Sends one delivery (its event, if it has one): the outcome. Called outside any
#: transaction; it may read and write through ``db.session`` (its own transactions).
Sender = Callable[[Delivery, OutboxEvent | None], Outcome]
_SENDERS: dict[str, Sender] = {}


def sender(kind: str) -> Callable[[Sender], Sender]:
    """Register the function that sends deliveries of ``kind``."""

    def register(function: Sender) -> Sender:
        _SENDERS[kind] = function
        return function

    return register


def _free_lease(now: datetime) -> sa.ColumnElement[bool]:
    """A delivery nobody holds: never leased, its lease ran out, or the worker holding it
    is dead (its heartbeat went stale; a worker that stops cleanly removes its heartbeat
    only after it finished what it held)."""
    dead = sa.select(WorkerHeartbeat.name).where(WorkerHeartbeat.beat_at < now - stale_after())
    return sa.or_(
        Delivery.lease_until.is_(None),
        Delivery.lease_until < now,
        Delivery.lease_owner.in_(dead.scalar_subquery()),
    )


#: ``pending`` written into the statement, not bound: only so can PostgreSQL use the
#: partial index ``ix_deliveries_due`` in a generic plan. psycopg prepares a statement run
#: five times, and PostgreSQL may then plan it once for any value: with ``state = $1`` it
#: cannot know the index covers the rows, and it read the whole table on every round.
_IS_PENDING = Delivery.state == sa.literal(
    DeliveryState.PENDING, Delivery.state.type, literal_execute=True
)
_DUE = sa.select(Delivery.id).where(_IS_PENDING, Delivery.next_attempt_at <= sa.bindparam("now"))


def _claimable(now: datetime, limit: int) -> sa.Select[tuple[int]]:
    """The ids of up to ``limit`` deliveries due and free at ``now``, oldest due first,
    locked (those another worker is claiming are skipped)."""
    return (
        sa.select(Delivery.id)
        .where(_IS_PENDING, Delivery.next_attempt_at <= now, _free_lease(now))
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def claim(owner: str, limit: int) -> list[int]:
    """Lease up to ``limit`` due deliveries to the worker ``owner``: their ids, oldest due
    first. Each attempt is counted as it is claimed."""
    now = utcnow()
    with read_connection() as connection:
        if connection.execute(_DUE.limit(1), {"now": now}).first() is None:
            return []
    with write_transaction():
        ids = db.session.scalars(_claimable(now, limit)).all()
        if ids:
            db.session.execute(
                sa.update(Delivery)
                .where(Delivery.id.in_(ids))
                .values(lease_until=now + LEASE, lease_owner=owner, attempts=Delivery.attempts + 1)
            )
        return list(ids)


def stale_after() -> timedelta:
    """How old a heartbeat is when its worker is taken for dead (``WORKER_STALE_SECONDS``)."""
    return timedelta(seconds=int(current_app.config["WORKER_STALE_SECONDS"]))


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: doubling from
    :data:`FIRST_BACKOFF` up to :data:`MAX_BACKOFF`, with ±20% jitter so that deliveries
    failing together do not all come back together."""
    base = min(FIRST_BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF)
    return base * random.uniform(0.8, 1.2)


def _labelled(model: type[Any], prefix: str) -> list[tuple[str, sa.Label[Any]]]:
    """Each column attribute of ``model``, and its column labelled ``prefix`` + its name."""
    return [
        (attribute.key, attribute.columns[0].label(prefix + attribute.key))
        for attribute in sa.inspect(model).column_attrs
    ]


_DELIVERY_COLUMNS = _labelled(Delivery, "delivery_")
_EVENT_COLUMNS = _labelled(OutboxEvent, "event_")
#: A delivery and its event, in one statement.
_TO_ATTEMPT = (
    sa.select(*(column for _, column in _DELIVERY_COLUMNS + _EVENT_COLUMNS))
    .select_from(Delivery)
    .outerjoin(OutboxEvent, OutboxEvent.id == Delivery.event_id)
    .where(Delivery.id == sa.bindparam("delivery_id"))
)


def _unbound(model: type[M], columns: list[tuple[str, sa.Label[Any]]], row: sa.RowMapping) -> M:
    """An object of ``model`` made of a row's columns, in no session: what a sender reads."""
    return model(**{key: row[column.name] for key, column in columns})


def attempt(delivery_id: int, owner: str) -> Outcome | None:
    """Make one attempt of a delivery this worker leased: its outcome, to :func:`finish`;
    None if the lease was lost meanwhile (nothing sent).

    The delivery and its event are read in one statement outside any transaction (so none
    stays open while the sender waits on the network), as they are now, not as an earlier
    round saw them: the lease decides. The sender gets them in no session."""
    with read_connection() as connection:
        row = connection.execute(_TO_ATTEMPT, {"delivery_id": delivery_id}).mappings().first()
    if row is None or row["delivery_lease_owner"] != owner:
        return None
    delivery = _unbound(Delivery, _DELIVERY_COLUMNS, row)
    if delivery.state != DeliveryState.PENDING:
        return None
    event = _unbound(OutboxEvent, _EVENT_COLUMNS, row) if row["event_id"] is not None else None
    function = _SENDERS.get(delivery.kind)
    try:
        if function is None:
            return Outcome.failed(f"no sender for deliveries of kind {delivery.kind!r}")
        return function(delivery, event)
    except Exception as error:  # a bug in one sender must not stop the worker
        current_app.logger.exception("delivery %s (%s) failed", delivery_id, delivery.kind)
        db.session.rollback()
        return Outcome.retry(f"internal error: {type(error).__name__}")


#: The deliveries of a batch of outcomes that are still leased to the worker recording them,
#: locked until their outcomes are written.
_STILL_LEASED = (
    sa.select(
        Delivery.id,
        Delivery.channel,
        Delivery.attempts,
        Delivery.created_at,
        Delivery.next_attempt_at,
    )
    .where(
        Delivery.id.in_(sa.bindparam("ids", expanding=True)),
        Delivery.lease_owner == sa.bindparam("owner"),
    )
    .with_for_update()
)
#: An outcome written: every column, so that one statement serves a whole batch.
_RECORD = (
    sa.update(Delivery)
    .where(Delivery.id == sa.bindparam("delivery_id"))
    .values(
        state=sa.bindparam("new_state"),
        next_attempt_at=sa.bindparam("retry_at"),
        finished_at=sa.bindparam("ended_at"),
        last_code=sa.bindparam("code"),
        last_error=sa.bindparam("error"),
        lease_until=None,
        lease_owner=None,
    )
)


def finish(owner: str, outcomes: Mapping[int, Outcome]) -> None:
    """Record the ``outcomes`` (by delivery id) of attempts ``owner`` made, in one
    transaction; an attempt whose lease went to another worker meanwhile is not recorded
    (that worker's attempt counts)."""
    if not outcomes:
        return
    now = utcnow()
    with write_transaction():
        connection = db.session.connection()
        leased = connection.execute(_STILL_LEASED, {"ids": sorted(outcomes), "owner": owner}).all()
        rows = []
        for delivery in leased:
            outcome = outcomes[delivery.id]
            state, retry_at = outcome.state, delivery.next_attempt_at
            if state is None:
                later = now + backoff(delivery.attempts)
                if later - delivery.created_at > RETRY_FOR.get(delivery.channel, timedelta(0)):
                    state = DeliveryState.FAILED  # given up: its window is over
                else:
                    retry_at = later
            rows.append(
                {
                    "delivery_id": delivery.id,
                    "new_state": state or DeliveryState.PENDING,
                    "retry_at": retry_at,
                    "ended_at": now if state is not None else None,
                    "code": outcome.code,
                    "error": outcome.error[:MAX_ERROR] if outcome.error else None,
                }
            )
        if rows:
            connection.execute(_RECORD, rows)
    session = db.session()
    for delivery_id in outcomes:  # what this session holds of them is out of date now
        stale = session.identity_map.get(session.identity_key(Delivery, delivery_id))
        if stale is not None:
            session.expire(stale)


def release(owner: str, delivery_ids: Iterable[int]) -> None:
    """Give back deliveries ``owner`` claimed and never attempted (a clean stop): free for
    any worker at once, their attempt not counted."""
    ids = sorted(delivery_ids)
    if not ids:
        return
    with write_transaction():
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.lease_owner == owner)
            .values(lease_until=None, lease_owner=None, attempts=Delivery.attempts - 1)
        )


# -- upkeep ---------------------------------------------------------------------------


def prune(now: datetime | None = None) -> int:
    """Delete finished deliveries and dispatched events older than the retention, and the
    heartbeats of workers dead for an hour; how many rows went."""
    now = now or utcnow()
    cutoff = now - timedelta(days=int(current_app.config["DELIVERY_RETENTION_DAYS"]))
    finished = FINISHED
    with write_transaction():
        deleted = db.session.execute(
            sa.delete(Delivery).where(Delivery.state.in_(finished), Delivery.finished_at < cutoff)
        ).rowcount  # type: ignore[attr-defined]
        deleted += db.session.execute(
            sa.delete(OutboxEvent).where(
                OutboxEvent.dispatched_at < cutoff,
                ~sa.exists().where(Delivery.event_id == OutboxEvent.id),
            )
        ).rowcount  # type: ignore[attr-defined]
        deleted += db.session.execute(
            sa.delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - timedelta(hours=1))
        ).rowcount  # type: ignore[attr-defined]
    return int(deleted)


@dataclass
class QueueState:
    """What ``/metrics`` and ``commentsvc worker --check`` tell of the outbox."""

    undispatched: int
    pending: int
    #: Age in seconds of the oldest event not yet dispatched or delivery not yet finished.
    oldest_seconds: float
    workers: list[WorkerHeartbeat]


def queue_state(now: datetime | None = None) -> QueueState:
    """The outbox's depth, its oldest waiting item's age, and the workers' heartbeats."""
    now = now or utcnow()
    undispatched = sa.select(sa.func.count(), sa.func.min(OutboxEvent.created_at)).where(
        OutboxEvent.dispatched_at.is_(None)
    )
    pending = sa.select(sa.func.count(), sa.func.min(Delivery.created_at)).where(_IS_PENDING)
    events, oldest_event = db.session.execute(undispatched).one()
    deliveries, oldest_delivery = db.session.execute(pending).one()
    oldest = [moment for moment in (oldest_event, oldest_delivery) if moment is not None]
    oldest_seconds = max(0.0, (now - min(oldest)).total_seconds()) if oldest else 0.0
    workers = list(db.session.scalars(sa.select(WorkerHeartbeat).order_by(WorkerHeartbeat.name)))
    db.session.rollback()
    return QueueState(int(events), int(deliveries), oldest_seconds, workers)


def iter_kinds() -> Iterator[str]:
    """The kinds of delivery this service can send."""
    return iter(sorted(_SENDERS))
