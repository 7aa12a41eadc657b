"""What the database holds, read directly (not through the service): the comments of a
phase, its outbox events and their deliveries, and the backlog the worker still has."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from benchmarks.soak.checks import DeliveryRow, Event, StoredComment


@dataclass(frozen=True)
class Backlog:
    """Work the outbox worker has not finished, among the events after ``since``."""

    undispatched: int
    deliveries: int

    @property
    def empty(self) -> bool:
        """Nothing left to plan or to send."""
        return self.undispatched == 0 and self.deliveries == 0


class Store:
    """Queries of the service's database, each on a connection of its own (the database
    may be restarted between two of them)."""

    def __init__(self, url: str) -> None:
        connect_args = {"connect_timeout": 3} if url.startswith("postgresql") else {}
        self.engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)

    @contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as connection:
            yield connection

    def close(self) -> None:
        """Release the engine."""
        self.engine.dispose()

    def last_event_id(self) -> int:
        """The newest outbox event's id (0: none yet)."""
        with self._connection() as connection:
            return int(connection.scalar(sa.text("SELECT max(id) FROM outbox_events")) or 0)

    def comments(self, run: str) -> list[StoredComment]:
        """Every comment on the run's pages (``/soak/RUN/…``), whatever its status."""
        statement = sa.text(
            "SELECT c.id, c.body, c.status FROM comments c JOIN pages p ON p.id = c.page_id"
            " WHERE p.key LIKE :prefix ORDER BY c.id"
        )
        with self._connection() as connection:
            rows = connection.execute(statement, {"prefix": f"/soak/{run}/%"})
            return [StoredComment(int(i), body, str(status)) for i, body, status in rows]

    def events(self, after: int, until: int | None = None) -> tuple[list[Event], list[int]]:
        """Events with ids in (``after``, ``until``], and the ids of those not planned yet."""
        bound = "" if until is None else " AND id <= :until"
        statement = sa.text(
            "SELECT id, type, comment_id, dispatched_at IS NULL FROM outbox_events"
            f" WHERE id > :after{bound} ORDER BY id"
        )
        with self._connection() as connection:
            rows = connection.execute(statement, {"after": after, "until": until}).all()
        events = [Event(int(i), kind, comment) for i, kind, comment, _ in rows]
        return events, [int(i) for i, _, _, waiting in rows if waiting]

    def deliveries(self, after: int, until: int | None = None) -> list[DeliveryRow]:
        """Deliveries planned from the events with ids in (``after``, ``until``]."""
        bound = "" if until is None else " AND event_id <= :until"
        statement = sa.text(
            "SELECT id, event_id, channel, kind, state, comment_id, last_error, attempts,"
            " created_at, finished_at FROM deliveries"
            f" WHERE event_id > :after{bound} ORDER BY id"
        )
        with self._connection() as connection:
            rows = connection.execute(statement, {"after": after, "until": until})
            return [_delivery(*row) for row in rows]

    def backlog(self, after: int) -> Backlog:
        """Events after ``after`` not yet planned, and their deliveries not yet finished."""
        with self._connection() as connection:
            undispatched = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM outbox_events WHERE id > :after AND dispatched_at IS NULL"
                ),
                {"after": after},
            )
            deliveries = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM deliveries WHERE event_id > :after"
                    " AND state IN ('pending', 'held')"
                ),
                {"after": after},
            )
        return Backlog(int(undispatched or 0), int(deliveries or 0))


def _delivery(
    id: int,
    event: int | None,
    channel: str,
    kind: str,
    state: object,
    comment: int | None,
    error: str | None,
    attempts: int | None,
    created: datetime | str | None,
    finished: datetime | str | None,
) -> DeliveryRow:
    seconds = None
    if finished and created:
        seconds = (_time(finished) - _time(created)).total_seconds()
    return DeliveryRow(
        int(id), event, channel, kind, str(state), comment, error, int(attempts or 0), seconds
    )


def _time(value: datetime | str) -> datetime:
    # SQLite hands textual statements their times as text.
    return datetime.fromisoformat(value) if isinstance(value, str) else value
