"""The phases of a soak on a running stack: the capacity, the clean soak, the soak with
faults; each phase's traffic, samples, drain and checks."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from benchmarks.load import log
from benchmarks.load.procstat import (
    CpuUse,
    CpuWindow,
    Memory,
    cpu_seconds,
    machine_busy_seconds,
    stolen_seconds,
)
from benchmarks.load_data import SetupError
from benchmarks.soak.checks import (
    AnswerCheck,
    DeliveryCheck,
    Fault,
    SubmissionCheck,
    check_deliveries,
    compare_submissions,
    judge_answers,
    recovery_seconds,
)
from benchmarks.soak.maintenance import by_window
from benchmarks.soak.stack import SITE, Stack
from benchmarks.soak.store import Store
from benchmarks.soak.traffic import DEFAULT_MIX, EXPECTED, Record, TrafficConfig, read_records
from benchmarks.soak.windows import CpuSplit, Window, cut, window_count
from commentsvc import PROJECT_ROOT

#: Seconds between the generator's start and its first request (its interpreter starts).
LEAD = 2.0
#: Of a capacity run, the first seconds are warm-up, not counted.
CAPACITY_WARMUP = 5.0
#: Pages a phase comments on.
SUBMIT_PAGES = 20
#: The seeded pages the readers read beside the run's own.
READ_PAGES = ("/thread/100", "/scale/10")


@dataclass(frozen=True)
class Plan:
    """What a run does."""

    duration: float
    window: float
    share: float
    rate: float | None
    capacity_seconds: float
    connections: int
    max_in_flight: int
    drain_timeout: float
    redis_down: float
    postgres_down: float
    phases: tuple[str, ...]
    mix: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MIX))


@dataclass(frozen=True)
class Capacity:
    """The closed-loop run that sets the soak's rate."""

    seconds: float
    connections: int
    requests: int
    rate: float
    errors: int


@dataclass
class Phase:
    """One soak phase and everything measured of it."""

    name: str
    run: str
    rate: float
    duration: float
    #: When its first request was due (monotonic).
    started: float
    windows: list[Window]
    answers: AnswerCheck
    submissions: SubmissionCheck
    deliveries: DeliveryCheck
    faults: list[Fault]
    recoveries: dict[str, float | None]
    #: Seconds the worker took to finish after the traffic stopped (None: not within the
    #: timeout).
    drain_seconds: float | None
    memory_before: Memory
    memory_after: Memory
    worker_memory_after: Memory | None
    #: Answered requests since the server started, at the phase's end.
    served_total: int
    cpu: CpuUse
    sent: int
    due: int
    other_mails: int
    backlog_peak: int


class Soak:
    """The phases of one run on ``stack``."""

    def __init__(self, stack: Stack, plan: Plan, tag: str) -> None:
        self.stack = stack
        self.plan = plan
        self.tag = tag
        self.store = Store(stack.database_url)
        self.served = 0
        self.number = 0

    # --- traffic ---------------------------------------------------------------------------

    def traffic(
        self, run: str, rate: float | None, duration: float, start_at: float
    ) -> subprocess.Popen[bytes]:
        """Start the generator; it sends from ``start_at`` for ``duration``."""
        host, port = self.stack.host_port
        records = self.stack.workdir / f"records-{run}.tsv"
        config = TrafficConfig(
            host=host,
            port=port,
            site=SITE,
            token=self.stack.token,
            run=run,
            records=str(records),
            duration=duration,
            start_at=start_at,
            rate=rate,
            connections=self.plan.connections,
            max_in_flight=self.plan.max_in_flight,
            mix=self.plan.mix,
            thread_pages=(*READ_PAGES, *(f"/soak/{run}/{n}" for n in range(SUBMIT_PAGES))),
            count_pages=tuple(f"/soak/{run}/{n}" for n in range(SUBMIT_PAGES)),
            submit_pages=SUBMIT_PAGES,
            first_number=self.number,
        )
        path = self.stack.workdir / f"traffic-{run}.json"
        path.write_text(config.to_json())
        return subprocess.Popen(
            [sys.executable, "-m", "benchmarks.soak.traffic", str(path)], cwd=PROJECT_ROOT
        )

    def records(self, run: str) -> list[Record]:
        """What the generator of ``run`` recorded."""
        return read_records(self.stack.workdir / f"records-{run}.tsv")

    def capacity(self) -> Capacity:
        """Requests per second of the mix with ``connections`` clients sending back to back
        (the outbox worker delivering what they cause, as it does during the soak)."""
        seconds = self.plan.capacity_seconds
        run = f"{self.tag}-capacity"
        baseline = self.store.last_event_id()
        start = time.monotonic() + LEAD
        log(f"capacity: {self.plan.connections} connections, closed loop, {seconds:g} s…")
        self.traffic(run, None, seconds, start).wait()
        records = self.records(run)
        self.served += sum(1 for r in records if r.status)
        self.number = 1 + max((r.number for r in records if r.kind == "submit"), default=-1)
        counted = [r for r in records if r.sent >= start + CAPACITY_WARMUP]
        measured = seconds - CAPACITY_WARMUP
        correct = sum(1 for r in counted if r.status in EXPECTED.get(r.kind, ()))
        errors = len(counted) - correct
        # The soak starts with the worker idle, not with the capacity run's backlog.
        self.drain(baseline, "after the capacity run")
        self.stack.take_webhook_calls()
        self.stack.mails.take()
        return Capacity(measured, self.plan.connections, len(counted), correct / measured, errors)

    # --- the worker's backlog ----------------------------------------------------------------

    def drain(self, after: int, what: str) -> float | None:
        """Wait until the worker has planned and finished every event after ``after``; the
        seconds it took, or None at the timeout."""
        started = time.monotonic()
        deadline = started + self.plan.drain_timeout
        while time.monotonic() < deadline:
            try:
                if self.store.backlog(after).empty:
                    return time.monotonic() - started
            except sa.exc.OperationalError:
                pass  # the database is still coming back
            time.sleep(0.5)
        log(f"the outbox worker did not finish {what} within {self.plan.drain_timeout:g} s")
        return None

    # --- a phase ---------------------------------------------------------------------------

    def phase(self, name: str, rate: float, faults: bool) -> Phase:
        """One phase at ``rate`` for the plan's duration, faults injected or not."""
        plan, stack = self.plan, self.stack
        run = f"{self.tag}-{'faults' if faults else 'clean'}"
        baseline = self.store.last_event_id()
        memory_before = stack.server_memory()
        start = time.monotonic() + LEAD
        # The epoch's seconds at `start`: the database logs its maintenance in those.
        start_epoch = time.time() + (start - time.monotonic())
        log(f"{name}: {rate:,.0f} req/s for {plan.duration:g} s (run {run})…")
        cpu = CpuWindow(
            lambda: set(stack.server.pids()),
            lambda: (
                (stack.postgres.pids() if stack.postgres else set())
                | set(stack.server.storage_pids)
            ),
        )
        generator = self.traffic(run, rate, plan.duration, start)
        sampler = Sampler(stack, self.store, baseline, start, plan.window, plan.duration)
        sampler.start()
        injected: list[Fault] = []
        if faults:
            injected = self.inject(start)
        generator.wait()
        sampler.stop()
        usage = cpu.finish()
        log(f"{name}: traffic done; waiting for the outbox worker…")
        drained = self.drain(baseline, name)
        records = self.records(run)
        self.served += sum(1 for r in records if r.status)
        self.number = 1 + max((r.number for r in records if r.kind == "submit"), default=-1)
        calls, unsigned = stack.take_webhook_calls()
        mails, other_mails = stack.mails.take()
        events, undispatched = self.store.events(baseline)
        deliveries = self.store.deliveries(baseline)
        fault_windows: dict[int, list[str]] = {}
        for fault in injected:
            fault_windows.setdefault(int((fault.started - start) // plan.window), []).append(
                fault.name
            )
        due = [r for r in records if r.due < start + plan.duration]
        log(f"{name}: {len(records):,} requests; checking…")
        result = Phase(
            name=name,
            run=run,
            rate=rate,
            duration=plan.duration,
            started=start,
            windows=cut(
                records,
                start,
                plan.duration,
                plan.window,
                sampler.memory,
                fault_windows,
                sampler.cpu,
                by_window(stack.database_maintenance(), start_epoch, plan.duration, plan.window),
            ),
            answers=judge_answers(records, injected),
            submissions=compare_submissions(records, self.store.comments(run)),
            deliveries=check_deliveries(events, undispatched, deliveries, calls, mails, unsigned),
            faults=injected,
            recoveries=recoveries(records, injected),
            drain_seconds=drained,
            memory_before=memory_before,
            memory_after=sampler.last_memory or stack.server_memory(),
            worker_memory_after=stack.worker_memory(),
            served_total=self.served,
            cpu=usage,
            sent=sum(1 for r in due if r.kind != "shed"),
            due=len(due),
            other_mails=other_mails,
            backlog_peak=sampler.backlog_peak,
        )
        return result

    def inject(self, start: float) -> list[Fault]:
        """Redis, PostgreSQL (when used) and a gunicorn worker, one after the other, spread
        over the phase: each at its moment, so the service has time to recover in between."""
        stack, plan = self.stack, self.plan
        steps: list[tuple[float, Callable[[], Fault]]] = [
            (0.2, lambda: stack.restart_redis(plan.redis_down)),
            (0.7, stack.kill_gunicorn_worker),
        ]
        if stack.postgres is not None:
            steps.insert(1, (0.45, lambda: stack.restart_postgres(plan.postgres_down)))
        injected = []
        for share, action in steps:
            wait = start + share * plan.duration - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            fault = action()
            log(f"  fault: {fault.name} ({fault.detail}), {fault.restored - fault.started:.1f} s")
            injected.append(fault)
        return injected

    def close(self) -> None:
        """Release the database connection."""
        self.store.close()


def recoveries(records: Sequence[Record], faults: Sequence[Fault]) -> dict[str, float | None]:
    """Each fault's recovery, judged on the requests sent before the next one began."""
    ends = [f.started for f in faults[1:]] + [float("inf")] if faults else []
    return {
        f.name: recovery_seconds(records, f, until) for f, until in zip(faults, ends, strict=True)
    }


@dataclass(frozen=True)
class CpuCounters:
    """CPU seconds so far: of each group's processes (by pid), of the machine, stolen."""

    at: float
    groups: dict[str, dict[int, float]]
    busy: float
    stolen: float

    def since(self, before: CpuCounters) -> CpuSplit:
        """The cores used between ``before`` and these counters. A process that started
        meanwhile (a replaced worker, a restarted database) counts from its start."""
        elapsed = max(self.at - before.at, 1e-9)

        def cores(name: str) -> float:
            then = before.groups[name]
            used = sum(now - then.get(pid, 0.0) for pid, now in self.groups[name].items())
            return max(0.0, used) / elapsed

        gunicorn, storage, worker = cores("gunicorn"), cores("storage"), cores("worker")
        stolen = max(0.0, self.stolen - before.stolen) / elapsed
        busy = max(0.0, self.busy - before.busy) / elapsed
        rest = max(0.0, busy - stolen - gunicorn - storage - worker)
        return CpuSplit(gunicorn, storage, worker, rest, stolen)


class Sampler:
    """At the end of every window: the server's memory, the cores each part of the machine
    used, and the outbox backlog."""

    def __init__(
        self, stack: Stack, store: Store, baseline: int, start: float, width: float, duration: float
    ) -> None:
        self.stack = stack
        self.store = store
        self.baseline = baseline
        self.start_at = start
        self.width = width
        self.windows = window_count(duration, width)
        self.memory: dict[int, Memory] = {}
        self.last_memory: Memory | None = None
        self.cpu: dict[int, CpuSplit] = {}
        self.backlog_peak = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="soak-sampler", daemon=True)

    def start(self) -> None:
        """Sample in a thread of its own."""
        self.thread.start()

    def stop(self) -> None:
        """Stop sampling (after the last window's sample, which is due by now)."""
        self.stopping.set()
        self.thread.join(timeout=30)

    def _counters(self) -> CpuCounters:
        stack = self.stack
        storage = (stack.postgres.pids() if stack.postgres else set()) | set(
            stack.server.storage_pids
        )
        return CpuCounters(
            at=time.monotonic(),
            groups={
                "gunicorn": cpu_seconds(sorted(stack.server.pids())),
                "storage": cpu_seconds(sorted(storage)),
                "worker": cpu_seconds([stack.worker_process.pid]),
            },
            busy=machine_busy_seconds(),
            stolen=stolen_seconds(),
        )

    def _loop(self) -> None:
        self.stopping.wait(max(0.0, self.start_at - time.monotonic()))
        counters = self._counters()
        for index in range(self.windows):
            end = self.start_at + min((index + 1) * self.width, self.windows * self.width)
            if self.stopping.wait(max(0.0, end - time.monotonic())) and index < self.windows - 1:
                return
            now = self._counters()
            self.cpu[index] = now.since(counters)
            counters = now
            try:
                sample = self.stack.server_memory()
            except (OSError, SetupError):  # a worker ended between listing and reading it
                continue
            self.memory[index] = sample
            self.last_memory = sample
            try:
                backlog = self.store.backlog(self.baseline)
            except sa.exc.OperationalError:
                continue  # the database is down: a fault of this phase
            self.backlog_peak = max(self.backlog_peak, backlog.undispatched + backlog.deliveries)


def run_phases(stack: Stack, plan: Plan, tag: str) -> tuple[Capacity | None, list[Phase], Memory]:
    """Capacity (unless the rate is given), then the plan's phases; and the server's memory
    before any traffic."""
    soak = Soak(stack, plan, tag)
    try:
        memory_start = stack.server_memory()
        capacity = None
        rate = plan.rate
        if rate is None:
            capacity = soak.capacity()
            rate = capacity.rate * plan.share
            log(f"capacity {capacity.rate:,.0f} req/s: the soak runs at {rate:,.0f} req/s")
        phases = []
        names = {"clean": "clean soak", "faults": "soak with faults"}
        for key in plan.phases:
            phases.append(soak.phase(names[key], rate, faults=key == "faults"))
        return capacity, phases, memory_start
    finally:
        soak.close()
