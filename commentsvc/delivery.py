"""``commentsvc worker``: plans outbox events into deliveries and sends them (DESIGN §8).

One loop per process: dispatch new events, lease due deliveries and send them on a pool of
``WORKER_THREADS`` threads (each with its own app context, database session and SMTP
connection), run the periodic jobs (digests, pruning), beat the heartbeat. Nothing is sent
from a web request. SIGTERM or SIGINT stops taking new work; what is being sent is finished
(a webhook waits at most its 10 s timeout), then the heartbeat is removed and the process
exits 0. Several workers may run at once, on one database: see
:mod:`commentsvc.services.outbox` for why none sends what another is sending.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
        self._counts_lock = threading.Lock()
        self._in_flight: set[Future[None]] = set()
        #: Leased deliveries whose send the database interrupted, to send again.
        self._unsent: set[int] = set()
        #: Outcomes of attempts the database could not record, to record again.
        self._unrecorded: dict[int, outbox.Outcome] = {}
        self._jobs = [_Periodic(every, job) for every, job in _PERIODIC]
        self._next_beat = utcnow()
        #: Six beats in the time after which a worker is taken for dead.
        self.beat_every = timedelta(seconds=int(app.config["WORKER_STALE_SECONDS"])) / 6

    # -- one round ----------------------------------------------------------------------

    def run_once(self, pool: ThreadPoolExecutor | None = None) -> int:
        """Dispatch, send what is due (on ``pool``, or here), run due jobs: how much work
        was found (0: the worker may sleep)."""
        work = self._resume()
        work += outbox.dispatch()
        free = self.threads - len(self._in_flight) if pool else self.threads
        if free > 0:
            unsent = self._take_unsent(free)
            try:
                claimed = outbox.claim(self.name, free - len(unsent)) if free > len(unsent) else []
            except SQLAlchemyError:
                with self._counts_lock:
                    self._unsent.update(unsent)  # still to send, when the database is back
                raise
            for delivery_id in [*unsent, *claimed]:
                work += 1
                if pool is None:
                    self._send(delivery_id)
                else:
                    future = pool.submit(self._send_in_context, delivery_id)
                    self._in_flight.add(future)
                    future.add_done_callback(self._in_flight.discard)
        work += self._run_jobs()
        self.beat()
        return work

    def _pause(self, work: int) -> None:
        """Between rounds: with every thread sending, until one is free (or the poll
        interval passed); with nothing found, the poll interval; else not at all."""
        busy = set(self._in_flight)
        if len(busy) >= self.threads:
            wait(busy, timeout=self.poll, return_when=FIRST_COMPLETED)
        elif not work:
            self.stopping.wait(self.poll)

    def _send_in_context(self, delivery_id: int) -> None:
        with self.app.app_context():
            self._send(delivery_id)

    def _send(self, delivery_id: int) -> None:
        try:
            outcome = outbox.send(delivery_id, self.name)
        except outbox.Unrecorded as unrecorded:
            self._forget_session()
            log.warning("worker: %s; recording it when the database is back", unrecorded)
            with self._counts_lock:
                self._unrecorded[delivery_id] = unrecorded.outcome
            return
        except SQLAlchemyError:
            # Before anything was sent: the lease is still this worker's, so it is sent as
            # soon as the database is back, not when the lease runs out minutes later.
            self._forget_session()
            log.warning(
                "worker: delivery %s not sent, the database is unavailable; trying again",
                delivery_id,
                exc_info=True,
            )
            with self._counts_lock:
                self._unsent.add(delivery_id)
            return
        if outcome is None:
            return
        state = outcome.state.value if outcome.state else "retry"
        with self._counts_lock:
            self.counts[state] += 1

    def _forget_session(self) -> None:
        with contextlib.suppress(SQLAlchemyError):
            db.session.rollback()

    def _take_unsent(self, most: int) -> list[int]:
        """Deliveries this worker leased whose send the database interrupted: sent again
        first (still under this worker's lease)."""
        with self._counts_lock:
            taken = sorted(self._unsent)[:most]
            self._unsent.difference_update(taken)
        return taken

    def _resume(self) -> int:
        """Record the outcomes the database could not take when they were known (a failure
        here leaves them for the next round)."""
        with self._counts_lock:
            pending = dict(self._unrecorded)
        for delivery_id, outcome in pending.items():
            outbox.finish(delivery_id, self.name, outcome)
            with self._counts_lock:
                del self._unrecorded[delivery_id]
                self.counts[outcome.state.value if outcome.state else "retry"] += 1
        return len(pending)

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
        with self._counts_lock:
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
        """Stop after the deliveries in flight (the SIGTERM and SIGINT handler)."""
        if not self.stopping.is_set():
            log.info("worker %s stopping: finishing %d deliveries", self.name, len(self._in_flight))
        self.stopping.set()

    def run(self) -> None:
        """Deliver until stopped."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
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
                    try:
                        work = self.run_once(pool)
                    except SQLAlchemyError:
                        db.session.rollback()
                        log.warning(
                            "worker: the database is unavailable; trying again", exc_info=True
                        )
                        work = 0
                        self.stopping.wait(max(self.poll, 1.0))
                    self._pause(work)
                pool.shutdown(wait=True)
            self._close_connections()
            try:
                self._remove_heartbeat()
            except SQLAlchemyError:
                log.warning("worker: could not remove the heartbeat", exc_info=True)
        log.info("worker %s stopped", self.name)


def drain(app: Flask, rounds: int = 50) -> None:
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
