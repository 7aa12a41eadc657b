"""``commentsvc worker``: plans outbox events into deliveries and sends them (DESIGN §8).

One loop per process, in rounds: record the outcomes of the attempts made since the last
round, plan new events, claim due deliveries ahead (up to :data:`AHEAD` per thread) for a
pool of ``WORKER_THREADS`` threads (each with its own app context, database session and SMTP
connection) to send, run the periodic jobs (digests, pruning), beat the heartbeat. While
there is work a round starts every :data:`ROUND` at most, so each of its writes covers a
batch: on SQLite every write transaction waits for the one writer, behind the site's own
submissions, and a transaction per delivery held the worker to about 100 a second. Idle,
it polls every ``WORKER_POLL_MS``. Nothing is sent from a web request.

SIGTERM or SIGINT stops taking new work: what is being sent is finished (a webhook waits
at most its 10 s timeout) and recorded, what was claimed and not started is given back,
then the heartbeat is removed and the process exits 0. Several workers may run at once, on
one database: see :mod:`commentsvc.services.outbox` for why none sends what another is
sending.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from commentsvc.extensions import db, write_transaction
from commentsvc.models import WorkerHeartbeat, utcnow
from commentsvc.services import outbox

log = logging.getLogger("commentsvc.worker")


def load_channels() -> None:
    """Import every module that registers planners, senders and periodic jobs."""
    from commentsvc import notifications  # noqa: F401  moderator mails, reply mails
    from commentsvc.services import retention, webhooks  # noqa: F401


@dataclass
class _Periodic:
    every: timedelta
    job: Callable[[], object]
    due: datetime = field(default_factory=utcnow)


#: Jobs the worker runs now and then: ``(every, function)``, registered with :func:`periodic`.
_PERIODIC: list[tuple[timedelta, Callable[[], object]]] = []


def periodic(every: timedelta) -> Callable[[Callable[[], object]], Callable[[], object]]:
    """Register a job the worker runs every ``every`` (in an app context)."""

    def register(job: Callable[[], object]) -> Callable[[], object]:
        _PERIODIC.append((every, job))
        return job

    return register


periodic(timedelta(hours=1))(outbox.prune)


def worker_name() -> str:
    """This process as its heartbeat names it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


#: While there is work, the shortest time from one round to the next: what a round records,
#: plans and claims is one write transaction each, whatever the number of deliveries.
ROUND = 0.05
#: Events planned per transaction. Planning takes 1 to 5 ms an event under load (its
#: webhooks, its moderator mails and their hourly cap), all of it holding SQLite's write
#: lock, which the site's submissions wait for: 20 holds it at most about 100 ms when events
#: have piled up.
DISPATCH_BATCH = 20
#: Deliveries claimed ahead per sending thread, so that a thread coming free finds its next
#: one at once. A claimed delivery waits at most that many sends: 8 of the 10 s a webhook
#: may take is well inside its 5-minute lease.
AHEAD = 8


class Worker:
    """The delivery loop of one process."""

    def __init__(self, app: Flask, name: str | None = None, threads: int | None = None) -> None:
        load_channels()
        self.app = app
        self.name = name or worker_name()
        self.threads = threads or int(app.config["WORKER_THREADS"])
        self.poll = int(app.config["WORKER_POLL_MS"]) / 1000
        self.stopping = threading.Event()
        self.started_at = utcnow()
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        #: Claimed deliveries handed to the pool and not attempted yet or being attempted.
        self._in_flight: dict[Future[None], int] = {}
        #: Leased deliveries whose attempt the database interrupted, to attempt again.
        self._unsent: set[int] = set()
        #: Outcomes of attempts not recorded yet: at the next round (or, if the database
        #: cannot take them then, the one after).
        self._outcomes: dict[int, outbox.Outcome] = {}
        self._jobs = [_Periodic(every, job) for every, job in _PERIODIC]
        self._next_beat = utcnow()
        #: Six beats in the time after which a worker is taken for dead.
        self.beat_every = timedelta(seconds=int(app.config["WORKER_STALE_SECONDS"])) / 6

    # -- one round ----------------------------------------------------------------------

    def run_once(self, pool: ThreadPoolExecutor | None = None) -> int:
        """Record, dispatch, claim and hand out what is due (to ``pool``, or attempt it here
        and record it at once), run due jobs: how much work was found (0: the worker may
        sleep)."""
        work = self._record()
        work += outbox.dispatch(limit=DISPATCH_BATCH)
        room = self.threads * AHEAD - len(self._in_flight) if pool else self.threads
        if room > 0:
            unsent = self._take_unsent(room)
            try:
                claimed = outbox.claim(self.name, room - len(unsent)) if room > len(unsent) else []
            except SQLAlchemyError:
                with self._lock:
                    self._unsent.update(unsent)  # still to send, when the database is back
                raise
            for delivery_id in [*unsent, *claimed]:
                work += 1
                if pool is None:
                    self._attempt(delivery_id)
                else:
                    future = pool.submit(self._attempt_in_context, delivery_id)
                    with self._lock:
                        self._in_flight[future] = delivery_id
                    future.add_done_callback(self._landed)
            if pool is None:
                self._record()
        work += self._run_jobs()
        self.beat()
        return work

    def _pause(self, work: int, began: float) -> None:
        """Between rounds: while deliveries are out or work was found, until :data:`ROUND`
        after the round ``began`` (a free thread has its next delivery already); idle, the
        poll interval."""
        if self._in_flight or work:
            left = began + min(ROUND, self.poll) - time.monotonic()
            if left > 0:
                self.stopping.wait(left)
        else:
            self.stopping.wait(self.poll)

    def _landed(self, future: Future[None]) -> None:
        with self._lock:
            self._in_flight.pop(future, None)

    def _attempt_in_context(self, delivery_id: int) -> None:
        with self.app.app_context():
            self._attempt(delivery_id)

    def _attempt(self, delivery_id: int) -> None:
        try:
            outcome = outbox.attempt(delivery_id, self.name)
        except SQLAlchemyError:
            # Before anything was sent: the lease is still this worker's, so it is sent as
            # soon as the database is back, not when the lease runs out minutes later.
            self._forget_session()
            log.warning(
                "worker: delivery %s not sent, the database is unavailable; trying again",
                delivery_id,
                exc_info=True,
            )
            with self._lock:
                self._unsent.add(delivery_id)
            return
        if outcome is not None:
            with self._lock:
                self._outcomes[delivery_id] = outcome

    def _forget_session(self) -> None:
        with contextlib.suppress(SQLAlchemyError):
            db.session.rollback()

    def _take_unsent(self, most: int) -> list[int]:
        """Deliveries this worker leased whose attempt the database interrupted: attempted
        again first (still under this worker's lease)."""
        with self._lock:
            taken = sorted(self._unsent)[:most]
            self._unsent.difference_update(taken)
        return taken

    def _record(self) -> int:
        """Record the outcomes of the attempts made since the last round, in one transaction
        (when the database cannot take them, they wait for the next round): how many."""
        with self._lock:
            outcomes = dict(self._outcomes)
        if not outcomes:
            return 0
        outbox.finish(self.name, outcomes)
        with self._lock:
            for delivery_id, outcome in outcomes.items():
                del self._outcomes[delivery_id]
                self.counts[outcome.state.value if outcome.state else "retry"] += 1
        return len(outcomes)

    def _run_jobs(self) -> int:
        """Run the jobs that are due: the work they made (a job that adds deliveries, such
        as a digest, returns how many, so that they are sent now rather than after a sleep)."""
        now = utcnow()
        made = 0
        for job in self._jobs:
            if job.due <= now:
                job.due = now + job.every
                try:
                    result = job.job()
                    made += result if isinstance(result, int) else 0
                except Exception:
                    db.session.rollback()
                    log.exception("periodic job %s failed", job.job.__qualname__)
        return made

    def beat(self, force: bool = False) -> None:
        """Write the heartbeat (every :attr:`beat_every`, or now with ``force``)."""
        now = utcnow()
        if not force and now < self._next_beat:
            return
        self._next_beat = now + self.beat_every
        with self._lock:
            counts = dict(self.counts)
        values = {"started_at": self.started_at, "beat_at": now, "counts": counts}
        with write_transaction():
            updated = db.session.execute(
                sa.update(WorkerHeartbeat).where(WorkerHeartbeat.name == self.name).values(values)
            ).rowcount  # type: ignore[attr-defined]
            if not updated:
                db.session.execute(sa.insert(WorkerHeartbeat).values(name=self.name, **values))

    def _close_connections(self) -> None:
        mailer = self.app.extensions.get("commentsvc.mailer")
        if mailer is not None:
            mailer.close_all()

    def _remove_heartbeat(self) -> None:
        with write_transaction():
            db.session.execute(sa.delete(WorkerHeartbeat).where(WorkerHeartbeat.name == self.name))

    # -- the process ----------------------------------------------------------------------

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Stop after the deliveries being sent (the SIGTERM and SIGINT handler)."""
        if not self.stopping.is_set():
            # No lock in a signal handler: the interrupted main thread may hold it. Copying
            # the keys is one step under the GIL.
            sending = sum(1 for future in tuple(self._in_flight) if future.running())
            log.info("worker %s stopping: finishing %d deliveries", self.name, sending)
        self.stopping.set()

    def run(self) -> None:
        """Deliver until SIGTERM or SIGINT."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.serve()

    def serve(self) -> None:
        """Deliver until :meth:`stop`."""
        log.info(
            "worker %s started: %d threads, polling every %d ms",
            self.name,
            self.threads,
            self.poll * 1000,
        )
        with self.app.app_context():
            self.beat(force=True)
            with ThreadPoolExecutor(self.threads, thread_name_prefix="delivery") as pool:
                while not self.stopping.is_set():
                    began = time.monotonic()
                    try:
                        work = self.run_once(pool)
                    except SQLAlchemyError:
                        db.session.rollback()
                        log.warning(
                            "worker: the database is unavailable; trying again", exc_info=True
                        )
                        work = 0
                        self.stopping.wait(max(self.poll, 1.0))
                    self._pause(work, began)
                unstarted = self._cancel_unstarted()
                pool.shutdown(wait=True)
            self._wind_down(unstarted)
        log.info("worker %s stopped", self.name)

    def _cancel_unstarted(self) -> list[int]:
        """Take back from the pool the deliveries no thread has started: their ids."""
        with self._lock:
            handed = list(self._in_flight.items())
        return [delivery_id for future, delivery_id in handed if future.cancel()]

    def _wind_down(self, unstarted: list[int]) -> None:
        """Record what was sent, give back what was not, remove the heartbeat. With the
        database away, a step is skipped: what it left is taken again once this worker's
        heartbeat is stale or the leases ran out (at least once)."""
        steps: list[tuple[str, Callable[[], object]]] = [
            ("record the last outcomes", self._record),
            (
                "give back the deliveries not sent",
                lambda: outbox.release(self.name, [*unstarted, *self._unsent]),
            ),
            ("remove the heartbeat", self._remove_heartbeat),
        ]
        self._close_connections()
        if unstarted:
            log.info("worker %s: giving back %d deliveries not started", self.name, len(unstarted))
        for what, step in steps:
            try:
                step()
            except SQLAlchemyError:
                db.session.rollback()
                log.warning("worker: could not %s", what, exc_info=True)


def drain(app: Flask, rounds: int = 250) -> None:
    """Run rounds in this thread until nothing is left to do now (tests, ``--once``)."""
    worker = Worker(app, name=f"{worker_name()}:drain", threads=8)
    for _ in range(rounds):
        if not worker.run_once():
            break
    worker._close_connections()
    worker._remove_heartbeat()


def describe_workers(now: datetime | None = None) -> tuple[bool, list[str]]:
    """Whether a worker beat recently, and a line per worker and for the queue."""
    now = now or utcnow()
    state = outbox.queue_state(now)
    lines = [
        f"queue: {state.undispatched} events to plan, {state.pending} deliveries to send, "
        f"oldest waiting {state.oldest_seconds:.0f} s"
    ]
    alive = False
    for beat in state.workers:
        age = (now - beat.beat_at).total_seconds()
        fresh = age <= outbox.stale_after().total_seconds()
        alive = alive or fresh
        counts = (
            ", ".join(f"{key} {value}" for key, value in sorted(beat.counts.items())) or "nothing"
        )
        lines.append(
            f"worker {beat.name}: {'alive' if fresh else 'stale'}, last beat {age:.0f} s ago, "
            f"since {beat.started_at:%Y-%m-%d %H:%M:%S}Z: {counts}"
        )
    if not state.workers:
        lines.append("no worker has beaten: start one with `commentsvc worker`")
    return alive, lines
