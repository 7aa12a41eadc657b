"""The pieces of ``benchmarks.worker``'s keep-up measurement: the delivered history its
database starts with, the query plans the worker's statements get on it, and how the
submissions' records and the webhook calls become windows and a verdict.

**The history** (:func:`seed_history`) is what a site with the run's own settings (one
webhook that hears of every event, one moderator on notify ``each`` with the default hourly
cap and digest) leaves in the outbox: ``comment.submitted`` events spread over the 28 days
before the last hour (inside the 30 days finished deliveries are kept, so the worker's
hourly prune deletes none of it), each dispatched, with its webhook call delivered and its
moderator mail delivered (the first ``NOTIFY_MAX_PER_HOUR`` of each hour) or skipped into
that hour's digest, the digest delivered ``NOTIFY_DIGEST_MINUTES`` later. Rows are written
in bulk straight into the tables, every column filled as the service fills it. The events'
comments are not seeded (nothing the worker does reads the comment of a delivered event);
their ids start at :data:`HISTORY_COMMENT_IDS`, above any the run makes. The history ends an
hour before the run, so the run's hour starts with the moderator's cap unused, as after a
quiet hour.

**Keeping up** (:func:`judge`) means, for a run at ``rate`` submissions a second cut into
windows:

- every submission was answered 201, and the receiver got every one's webhook call (within
  the wait after the traffic);
- at the end of every window, the calls still owed (submissions answered 201 by then whose
  call had not arrived) are at most :data:`OWED_SECONDS` of submissions (``rate`` of them): the
  backlog stays bounded and does not grow window over window;
- the last window's p99 delay (201 to the receiver having the call) is at most
  :data:`P99_GROWTH` times the first window's, or :data:`P99_FLOOR_MS`, whichever is more (the
  poll interval alone is 500 ms: a doubling of a small first p99 is noise, not falling
  behind).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.pool import NullPool

from benchmarks.load.procstat import cpu_seconds, machine_busy_seconds
from benchmarks.load_data import move_sequences, settle
from benchmarks.soak.traffic import ACKNOWLEDGED, Record
from benchmarks.soak.windows import percentile
from commentsvc.api.serializers import isotime
from commentsvc.models import Delivery, DeliveryState, OutboxEvent, utcnow
from commentsvc.notifications.moderators import MAIL, MODERATOR_COMMENT, MODERATOR_DIGEST
from commentsvc.services import webhooks
from commentsvc.services.events import EventType
from commentsvc.settings import SETTINGS_BY_NAME
from tests.support.receiver import Call

HISTORY_EVENTS = 100_000
#: How far back the history goes, and the quiet time between its end and the run.
HISTORY_SPAN = timedelta(days=28)
QUIET_BEFORE_RUN = timedelta(hours=1)
#: The first comment id the history's events name (the run's comments count from 1).
HISTORY_COMMENT_IDS = 10_000_001
#: Rows per insert statement.
BATCH = 10_000

EVENTS = OutboxEvent.metadata.tables[OutboxEvent.__tablename__]
DELIVERIES = Delivery.metadata.tables[Delivery.__tablename__]
#: Every column of the two tables, as the seed fills them; a changed schema fails loudly.
EVENT_COLUMNS = frozenset(
    {"id", "type", "site_id", "comment_id", "actor", "data", "created_at", "dispatched_at"}
)
DELIVERY_COLUMNS = frozenset(
    {
        "id",
        "event_id",
        "site_id",
        "channel",
        "kind",
        "webhook_id",
        "moderator_id",
        "recipient",
        "comment_id",
        "payload",
        "state",
        "attempts",
        "next_attempt_at",
        "lease_until",
        "lease_owner",
        "last_code",
        "last_error",
        "created_at",
        "finished_at",
    }
)

#: The verdict's bounds (see the module's docstring).
OWED_SECONDS = 1.0
P99_GROWTH = 2.0
P99_FLOOR_MS = 1000.0


# --- the history -------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """What :func:`seed_history` wrote."""

    events: int
    webhook_calls: int
    mails: int
    skipped_mails: int
    digests: int
    seconds: float

    @property
    def deliveries(self) -> int:
        return self.webhook_calls + self.mails + self.skipped_mails + self.digests


@dataclass(frozen=True)
class HistorySite:
    """The rows the history belongs to: its site, the site's webhook, the moderator."""

    site_id: int
    slug: str
    webhook_id: int
    moderator_id: int
    moderator_email: str


def history_site(connection: sa.Connection, slug: str, moderator: str) -> HistorySite:
    """The site ``slug`` (with its one webhook) and the moderator ``moderator``."""
    site_id = connection.execute(
        sa.text("SELECT id FROM sites WHERE slug = :slug"), {"slug": slug}
    ).scalar_one()
    webhook_id = connection.execute(
        sa.text("SELECT id FROM webhooks WHERE site_id = :site"), {"site": site_id}
    ).scalar_one()
    moderator_id = connection.execute(
        sa.text("SELECT id FROM moderators WHERE email = :email"), {"email": moderator}
    ).scalar_one()
    return HistorySite(site_id, slug, webhook_id, moderator_id, moderator)


def _snapshot(site: HistorySite, comment_id: int, at: datetime) -> dict[str, Any]:
    """The event's comment as the moderation API showed it when it was submitted."""
    page = f"/article/{comment_id % 1_000:03d}"
    return {
        "id": comment_id,
        "site": site.slug,
        "page": {
            "key": page,
            "url": f"https://{site.slug}.example{page}",
            "title": f"Article {page}",
        },
        "parent_id": None,
        "status": "pending",
        "body": f"Comment {comment_id} of the history: a few words about the article.",
        "body_html": f"<p>Comment {comment_id} of the history: a few words about the article.</p>",
        "author_name": f"Reader {comment_id % 40_000}",
        "author_email": f"reader{comment_id % 40_000}@example.com",
        "author_url": None,
        "created_at": isotime(at),
        "updated_at": isotime(at),
        "moderated_at": None,
        "moderated_by": None,
        "ip_prefix": "198.51.100.0",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "spam_score": 0.0,
        "spam_reasons": [],
    }


def history_rows(
    site: HistorySite, events: int, end: datetime, cap: int, digest_after: timedelta
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("event" | "delivery", row)`` of the history, hour by hour, ids explicit."""
    step = HISTORY_SPAN / max(events, 1)
    first = end - HISTORY_SPAN
    delivery_id = 0
    hour: list[tuple[int, datetime]] = []  # (event id, dispatched at) of the current hour
    hour_index = 0

    def close_hour() -> Iterator[tuple[str, dict[str, Any]]]:
        nonlocal delivery_id
        held = hour[cap:]
        digest_id = delivery_id + len(hour) * 2 + 1
        digest_at = held[0][1] + digest_after if held else None
        for position, (event_id, dispatched) in enumerate(hour):
            comment_id = HISTORY_COMMENT_IDS + event_id - 1
            delivery_id += 1
            yield (
                "delivery",
                _delivery(
                    delivery_id,
                    event_id,
                    site,
                    comment_id,
                    dispatched,
                    channel=webhooks.KIND,
                    kind=webhooks.KIND,
                    state=DeliveryState.DELIVERED,
                    code=200,
                    finished=dispatched + timedelta(milliseconds=200),
                ),
            )
            delivery_id += 1
            mailed = position < cap
            yield (
                "delivery",
                _delivery(
                    delivery_id,
                    event_id,
                    site,
                    comment_id,
                    dispatched,
                    channel=MAIL,
                    kind=MODERATOR_COMMENT,
                    state=DeliveryState.DELIVERED if mailed else DeliveryState.SKIPPED,
                    error=None if mailed else f"in digest {digest_id}",
                    finished=dispatched + timedelta(milliseconds=300) if mailed else digest_at,
                ),
            )
        if held and digest_at is not None:
            delivery_id += 1
            ids = [HISTORY_COMMENT_IDS + event_id - 1 for event_id, _ in held]
            yield (
                "delivery",
                _delivery(
                    delivery_id,
                    None,
                    site,
                    None,
                    digest_at,
                    channel=MAIL,
                    kind=MODERATOR_DIGEST,
                    state=DeliveryState.DELIVERED,
                    payload={"comment_ids": ids},
                    finished=digest_at + timedelta(milliseconds=500),
                ),
            )
        hour.clear()

    for number in range(events):
        event_id = number + 1
        created = first + step * number
        dispatched = created + timedelta(milliseconds=400)
        index = int((created - first) // timedelta(hours=1))
        if index != hour_index:
            yield from close_hour()
            hour_index = index
        comment_id = HISTORY_COMMENT_IDS + number
        yield (
            "event",
            {
                "id": event_id,
                "type": EventType.SUBMITTED.value,
                "site_id": site.site_id,
                "comment_id": comment_id,
                "actor": None,
                "data": _snapshot(site, comment_id, created),
                "created_at": created,
                "dispatched_at": dispatched,
            },
        )
        hour.append((event_id, dispatched))
    yield from close_hour()


def _delivery(
    delivery_id: int,
    event_id: int | None,
    site: HistorySite,
    comment_id: int | None,
    created: datetime,
    *,
    channel: str,
    kind: str,
    state: DeliveryState,
    finished: datetime | None,
    code: int | None = None,
    error: str | None = None,
    payload: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    is_mail = channel == MAIL
    return {
        "id": delivery_id,
        "event_id": event_id,
        "site_id": site.site_id,
        "channel": channel,
        "kind": kind,
        "webhook_id": None if is_mail else site.webhook_id,
        "moderator_id": site.moderator_id if is_mail else None,
        "recipient": site.moderator_email if is_mail else None,
        "comment_id": comment_id,
        "payload": dict(payload or {}),
        "state": state,
        # A mail folded into a digest was never attempted.
        "attempts": 0 if state == DeliveryState.SKIPPED else 1,
        "next_attempt_at": created,
        "lease_until": None,
        "lease_owner": None,
        "last_code": code,
        "last_error": error,
        "created_at": created,
        "finished_at": finished,
    }


def check_columns() -> None:
    """Fail loudly when the outbox's tables have columns this seed does not fill."""
    for table, columns in ((EVENTS, EVENT_COLUMNS), (DELIVERIES, DELIVERY_COLUMNS)):
        actual = set(table.columns.keys())
        if actual != columns:
            raise RuntimeError(
                f"the {table.name} table changed (columns {sorted(actual ^ columns)}):"
                " update benchmarks/worker_keep_up.py"
            )


def seed_history(url: str, events: int, site_slug: str, moderator: str) -> History:
    """Write ``events`` delivered events of ``site_slug`` and their deliveries (its one
    webhook, ``moderator``'s mails) into the migrated database at ``url``."""
    check_columns()
    started = time.monotonic()
    cap = int(SETTINGS_BY_NAME["NOTIFY_MAX_PER_HOUR"].default)
    digest_after = timedelta(minutes=int(SETTINGS_BY_NAME["NOTIFY_DIGEST_MINUTES"].default))
    end = utcnow() - QUIET_BEFORE_RUN
    tables = {"event": EVENTS, "delivery": DELIVERIES}
    counts = {"event": 0, "webhook": 0, "mail": 0, "skipped": 0, "digest": 0}
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        site = history_site(connection, site_slug, moderator)
        for table in tables.values():
            if connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one():
                raise RuntimeError(f"the history goes into an empty outbox: {table.name} has rows")
        pending: dict[str, list[dict[str, Any]]] = {"event": [], "delivery": []}

        def write(name: str) -> None:
            if pending[name]:
                connection.execute(sa.insert(tables[name]), pending[name])
                pending[name].clear()

        for name, row in history_rows(site, events, end, cap, digest_after):
            pending[name].append(row)
            if name == "event":
                counts["event"] += 1
            elif row["kind"] == MODERATOR_DIGEST:
                counts["digest"] += 1
            elif row["channel"] == MAIL:
                counts["mail" if row["state"] == DeliveryState.DELIVERED else "skipped"] += 1
            else:
                counts["webhook"] += 1
            if len(pending[name]) >= BATCH:
                write("event")  # a delivery's event is written first (its foreign key)
                write(name)
        write("event")
        write("delivery")
        move_sequences(connection, ("outbox_events", "deliveries"))
    settle(engine, ("outbox_events", "deliveries"))
    return History(
        counts["event"],
        counts["webhook"],
        counts["mail"],
        counts["skipped"],
        counts["digest"],
        time.monotonic() - started,
    )


# --- the plans of the worker's statements ------------------------------------------------

#: The outbox's tables, as a statement names them.
_OUTBOX_TABLES = re.compile(r"\b(?:FROM|UPDATE|JOIN)\s+(?:deliveries|outbox_events)\b", re.I)


@dataclass(frozen=True)
class Explained:
    """One statement the worker sent, and its query plan on the seeded database."""

    sql: str
    plan: tuple[str, ...]

    @property
    def short_sql(self) -> str:
        """The statement on one line, cut to 150 characters."""
        text = " ".join(self.sql.split())
        return text if len(text) <= 150 else text[:149] + "…"


def explain_round(app: Flask, round_of_work: Callable[[], object]) -> list[Explained]:
    """The query plans of every read, update and delete of the outbox's tables that
    ``round_of_work`` (the service's own worker code, in ``app``'s context) sends, each
    distinct statement once, in the order first sent."""
    from commentsvc.extensions import db

    sent: dict[str, Any] = {}

    def note(
        conn: sa.Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in {"SELECT", "UPDATE", "DELETE"} and _OUTBOX_TABLES.search(statement):
            sent.setdefault(statement, parameters[0] if executemany else parameters)

    with app.app_context():
        engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", note)
        try:
            round_of_work()
        finally:
            sa.event.remove(engine, "before_cursor_execute", note)
        explained = []
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            for statement, parameters in sent.items():
                prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
                rows = connection.exec_driver_sql(prefix + statement, parameters).all()
                # SQLite: (id, parent, unused, detail); PostgreSQL: one line of text per row.
                plan = tuple(str(row[-1]) for row in rows)
                explained.append(Explained(statement, plan))
        engine.dispose()
    return explained


# --- what the receiver got, and when ---------------------------------------------------------


class TimedCalls(list[Call]):
    """The list a :class:`~tests.support.receiver.WebhookReceiver` appends its calls to,
    noting when each arrived (``time.monotonic()``, the clock of every process here)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[float] = []

    def append(self, call: Call) -> None:
        self.arrived.append(time.monotonic())
        super().append(call)

    def timed(self) -> tuple[list[Call], list[float]]:
        """The calls so far and their arrival times (a call being appended meanwhile has
        its time noted first, so it is left out of both)."""
        calls = list(self)
        return calls, self.arrived[: len(calls)]


def first_arrivals(calls: Sequence[Call], arrived: Sequence[float]) -> dict[int, float]:
    """When the first call of each submitted comment arrived (delivery is at least once),
    by comment id."""
    first: dict[int, float] = {}
    for call, at in zip(calls, arrived, strict=True):
        try:
            message = json.loads(call.body)
            comment_id = message["data"]["id"]
        except (ValueError, KeyError, TypeError):
            continue
        if message.get("type") == EventType.SUBMITTED.value and isinstance(comment_id, int):
            first.setdefault(comment_id, at)
    return first


# --- windows and the verdict ---------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """One submission of the run: when it was due and answered, and when its call came."""

    due: float
    answered: float
    #: The answer's status; 0: none (timed out, refused, reset, or shed).
    status: int
    comment_id: int
    #: When the receiver had its webhook call (None: never, within the wait).
    arrived: float | None
    #: Not sent: the generator had ``max_in_flight`` requests open already.
    shed: bool = False

    @property
    def acknowledged(self) -> bool:
        return self.status in ACKNOWLEDGED

    @property
    def delay(self) -> float | None:
        """Seconds from the 201 to the receiver having the call."""
        return None if self.arrived is None else self.arrived - self.answered


def submissions(records: Sequence[Record], arrivals: Mapping[int, float]) -> list[Submission]:
    """The run's submissions, those the generator shed included."""
    return [
        Submission(
            record.due,
            record.answered,
            record.status,
            record.comment_id,
            arrivals.get(record.comment_id) if record.status in ACKNOWLEDGED else None,
            shed=record.kind == "shed",
        )
        for record in records
        if record.kind in {"submit", "shed"}
    ]


@dataclass(frozen=True)
class Sample:
    """The machine and the queue at one instant of the run: CPU seconds used so far, and
    the outbox in the database."""

    at: float
    worker_cpu: float
    server_cpu: float
    #: This process (the receiver, the SMTP server) and the traffic generator.
    client_cpu: float
    machine_busy: float
    #: Deliveries due or being sent, events not yet planned, mails held for a digest.
    pending: int
    unplanned: int
    held: int


@dataclass(frozen=True)
class Cores:
    """CPU used during a window, in cores: the outbox worker, gunicorn (master and
    workers), this benchmark's processes, and everything else on the machine."""

    worker: float
    server: float
    client: float
    others: float

    @classmethod
    def between(cls, before: Sample, after: Sample) -> Cores | None:
        took = after.at - before.at
        if took <= 0:
            return None
        worker = (after.worker_cpu - before.worker_cpu) / took
        server = (after.server_cpu - before.server_cpu) / took
        client = (after.client_cpu - before.client_cpu) / took
        busy = (after.machine_busy - before.machine_busy) / took
        return cls(worker, server, client, max(0.0, busy - worker - server - client))


@dataclass(frozen=True)
class KeepUpWindow:
    """The submissions due in one window, and the backlog at its end."""

    index: int
    #: Seconds since the run started.
    start: float
    width: float
    submitted: int
    acknowledged: int
    #: Of those not acknowledged: shed by the generator, without an answer, answered
    #: otherwise than 201.
    shed: int
    unanswered: int
    refused: int
    #: Of those acknowledged, the ones whose call never came.
    undelivered: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    #: The 201's latency (from when the submission was due), p99.
    answer_p99_ms: float
    #: At the window's end: submissions answered 201 by then whose call had not arrived.
    owed: int
    #: The queue in the database at the window's end, and the CPU during the window (None:
    #: no sample).
    end: Sample | None = None
    cores: Cores | None = None


def owed_at(runs: Sequence[Submission], moment: float) -> int:
    """Submissions answered 201 by ``moment`` whose webhook call had not arrived by then."""
    return sum(
        1
        for s in runs
        if s.acknowledged and s.answered <= moment and (s.arrived is None or s.arrived > moment)
    )


def cut(
    runs: Sequence[Submission],
    start: float,
    duration: float,
    width: float = 10.0,
    samples: Sequence[Sample] = (),
) -> list[KeepUpWindow]:
    """The windows of a run that started at ``start`` (monotonic): each submission in the
    window it was due in; ``samples`` taken at ``start`` and at each window's end."""
    count = max(1, round(duration / width))
    due: list[list[Submission]] = [[] for _ in range(count)]
    for submission in runs:
        # Records keep times to the microsecond: the first one may read as due just before
        # ``start``; to the millisecond, each falls in its window.
        index = int(round(submission.due - start, 3) // width)
        if 0 <= index < count:
            due[index].append(submission)
    windows = []
    for index, these in enumerate(due):
        acknowledged = [s for s in these if s.acknowledged]
        delays = [s.delay * 1000 for s in acknowledged if s.delay is not None]
        before = samples[index] if index < len(samples) else None
        after = samples[index + 1] if index + 1 < len(samples) else None
        windows.append(
            KeepUpWindow(
                index=index,
                start=index * width,
                width=width,
                submitted=len(these),
                acknowledged=len(acknowledged),
                shed=sum(1 for s in these if s.shed),
                unanswered=sum(1 for s in these if not s.shed and not s.status),
                refused=sum(1 for s in these if s.status and not s.acknowledged),
                undelivered=sum(1 for s in acknowledged if s.arrived is None),
                p50_ms=percentile(delays, 0.50),
                p95_ms=percentile(delays, 0.95),
                p99_ms=percentile(delays, 0.99),
                max_ms=max(delays, default=0.0),
                answer_p99_ms=percentile([(s.answered - s.due) * 1000 for s in acknowledged], 0.99),
                owed=owed_at(runs, start + (index + 1) * width),
                end=after,
                cores=Cores.between(before, after) if before and after else None,
            )
        )
    return windows


@dataclass(frozen=True)
class Verdict:
    """Whether the worker kept up, and, if not, every reason why not."""

    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def kept_up(self) -> bool:
        return not self.reasons


def judge(windows: Sequence[KeepUpWindow], rate: float) -> Verdict:
    """The keep-up verdict of a run at ``rate`` submissions a second (module docstring)."""
    if not windows:
        return Verdict(("no windows: the run recorded nothing",))
    reasons = []
    missed = sum(w.submitted - w.acknowledged for w in windows)
    if missed:
        shed = sum(w.shed for w in windows)
        unanswered = sum(w.unanswered for w in windows)
        refused = sum(w.refused for w in windows)
        reasons.append(
            f"{missed} of {sum(w.submitted for w in windows)} submissions were not answered 201"
            f" ({unanswered} no answer within the client's timeout, {refused} another status,"
            f" {shed} not sent: too many open)"
        )
    undelivered = sum(w.undelivered for w in windows)
    if undelivered:
        reasons.append(f"{undelivered} acknowledged submissions never had their webhook call")
    bound = rate * OWED_SECONDS
    for window in windows:
        if window.owed > bound:
            reasons.append(
                f"{window.owed} calls owed at {window.start + window.width:g} s"
                f" (more than {bound:g}, {OWED_SECONDS:g} s of submissions)"
            )
    first, last = windows[0].p99_ms, windows[-1].p99_ms
    limit = max(P99_GROWTH * first, P99_FLOOR_MS)
    if last > limit:
        reasons.append(
            f"p99 delay of the last window {last:,.0f} ms, over {limit:,.0f} ms"
            f" ({P99_GROWTH:g} times the first window's {first:,.0f} ms,"
            f" at least {P99_FLOOR_MS:,.0f})"
        )
    return Verdict(tuple(reasons))


# --- sampling during the run -----------------------------------------------------------------


class Sampler(threading.Thread):
    """Takes a :class:`Sample` at ``start`` and at the end of each window (the database's
    queue through a connection of its own, CPU from /proc)."""

    def __init__(
        self,
        url: str,
        pids: Mapping[str, Sequence[int]],
        start: float,
        width: float,
        count: int,
    ) -> None:
        super().__init__(name="keep-up-sampler", daemon=True)
        self.engine = sa.create_engine(url, poolclass=NullPool)
        #: "worker", "server" and "client" processes.
        self.pids = {name: list(group) for name, group in pids.items()}
        self.moments = [start + index * width for index in range(count + 1)]
        self.samples: list[Sample] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        for moment in self.moments:
            if self.stopping.wait(max(0.0, moment - time.monotonic())):
                break
            self.samples.append(self.sample())
        self.engine.dispose()

    def _cpu(self, name: str) -> float:
        return sum(cpu_seconds(self.pids.get(name, [])).values())

    def sample(self) -> Sample:
        at = time.monotonic()
        worker, server, client = (self._cpu(name) for name in ("worker", "server", "client"))
        busy = machine_busy_seconds()
        pending = sa.select(sa.func.count()).where(Delivery.state == DeliveryState.PENDING)
        held = sa.select(sa.func.count()).where(
            Delivery.kind == MODERATOR_COMMENT, Delivery.state == DeliveryState.HELD
        )
        unplanned = sa.select(sa.func.count()).where(OutboxEvent.dispatched_at.is_(None))
        with self.engine.connect() as connection:
            waiting, planning, holding = (
                int(connection.execute(query).scalar_one()) for query in (pending, unplanned, held)
            )
        return Sample(at, worker, server, client, busy, waiting, planning, holding)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


# --- the report ----------------------------------------------------------------------------


def table(windows: Sequence[KeepUpWindow]) -> list[str]:
    """The windows as a Markdown table."""
    lines = [
        "| window | due | 201 | 201 p99 | delay p50 | p95 | p99 | max | owed at end"
        " | queue at end: pending / unplanned / held | CPU cores: worker / gunicorn / bench"
        " / others |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in windows:
        queue = (
            "-" if w.end is None else f"{w.end.pending:,} / {w.end.unplanned:,} / {w.end.held:,}"
        )
        cores = (
            "-"
            if w.cores is None
            else f"{w.cores.worker:.2f} / {w.cores.server:.2f} / {w.cores.client:.2f}"
            f" / {w.cores.others:.2f}"
        )
        never = f" ({w.undelivered:,} never called)" if w.undelivered else ""
        lines.append(
            f"| {w.start:g}-{w.start + w.width:g} s | {w.submitted:,} | {w.acknowledged:,}{never}"
            f" | {w.answer_p99_ms:,.0f} ms | {w.p50_ms:,.0f} ms | {w.p95_ms:,.0f} ms"
            f" | {w.p99_ms:,.0f} ms | {w.max_ms:,.0f} ms | {w.owed:,} | {queue} | {cores} |"
        )
    return lines
