"""Measuring a workload with wrk on a shared machine: warm up, wait for quiet, rerun if noisy."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.load import log
from benchmarks.load.procstat import CpuUse, CpuWindow, load_average
from benchmarks.load.server import Server
from benchmarks.load.workloads import Workload
from benchmarks.load.wrk import WrkLoad, WrkRun, run_wrk

LUA_DIR = Path(__file__).resolve().parent.parent / "lua"
#: Pages one wrk run of the submit workload spreads its comments over.
SUBMIT_PAGES = 200


@dataclass
class Settings:
    """How every workload is loaded, and how much noise and time a run tolerates."""

    duration: int
    warmup: int
    connections: int
    threads: int
    max_noise: float
    quiet_wait: float
    retries: int
    #: Seconds one database's run should take at most (seeding included).
    budget: float
    #: gunicorn's worker class for every server; empty: gunicorn.conf.py's.
    worker_class: str = ""


@dataclass
class Measurement:
    """The kept run of a workload and the circumstances it ran in."""

    workload: Workload
    run: WrkRun
    load_average: float
    cpu: CpuUse
    #: Every wrk run of the workload, warm-ups included (submissions are checked over all).
    all_runs: list[WrkRun]

    @property
    def cpu_ms(self) -> float:
        """Server CPU time (application and database) per request, in milliseconds."""
        return (self.cpu.app + self.cpu.database) / max(self.run.requests, 1) * 1000

    @property
    def total_cpu_ms(self) -> float:
        """CPU time per request of everything the benchmark runs: server, database and wrk."""
        cpu = self.cpu
        return (cpu.app + cpu.database + cpu.client) / max(self.run.requests, 1) * 1000

    @property
    def errors(self) -> int:
        """Answers with a status the workload does not expect, plus socket errors."""
        unexpected = sum(
            count
            for status, count in self.run.statuses.items()
            if status not in self.workload.expected
        )
        return unexpected + self.run.socket_errors


class Bench:
    """Runs wrk against servers, minding the noise of a shared machine."""

    def __init__(
        self,
        settings: Settings,
        work: Path,
        backend_pids: Callable[[str], set[int]],
        deadline: float,
        workloads: int,
    ):
        self.settings = settings
        self.work = work
        self.backend_pids = backend_pids
        self.invocations = 0
        #: Waiting for quiet and rerunning noisy runs stop in time to end before this.
        self.deadline = deadline
        self.remaining = workloads

    def window(self, server: Server) -> CpuWindow:
        """A CPU window on ``server`` and the database server processes serving it (and the
        Redis of its rate limits, if it has one)."""
        url = server.database_url
        return CpuWindow(
            lambda: set(server.pids()),
            lambda: (self.backend_pids(url) if url else set()) | server.storage_pids,
        )

    def wrk(self, workload: Workload, server: Server, seconds: float) -> WrkRun:
        """One wrk run of ``workload`` for ``seconds``."""
        self.invocations += 1
        env = dict(os.environ)
        ids_file = self.work / f"ids-{self.invocations}.txt"
        script_args = workload.script_args
        if workload.submit_tag:
            script_args = (
                f"{workload.submit_tag}-{self.invocations}",
                str(SUBMIT_PAGES),
                "widget" if workload.like_widget else "api",
            )
            env["LOAD_IDS_FILE"] = str(ids_file)
        script = workload.script or ("submit.lua" if workload.submit_tag else "count_statuses.lua")
        load = WrkLoad(
            self.settings.threads,
            self.settings.connections,
            LUA_DIR / script,
            workload.headers,
            script_args,
        )
        run = run_wrk(server.url + workload.path, load, seconds, env)
        if workload.submit_tag:
            run.ids = [int(line) for line in ids_file.read_text().split()]
        return run

    def spare_seconds(self) -> float:
        """Time this workload may spend on waiting and reruns within the run's budget."""
        left = self.deadline - time.monotonic()
        runs = self.remaining * (self.settings.warmup + self.settings.duration + 2)
        return max(0.0, (left - runs) / max(self.remaining, 1))

    def wait_quiet(self, server: Server, patience: float) -> None:
        """Wait up to ``patience`` seconds until others leave the CPUs to the benchmark."""
        deadline = time.monotonic() + patience
        while True:
            window = self.window(server)
            time.sleep(1.0)
            share = window.finish().others_share
            if share <= self.settings.max_noise or time.monotonic() > deadline:
                return
            log(f"    others use {share:.0%} of the CPUs; waiting")

    def measure(
        self, workload: Workload, server: Server, seconds: float | None = None, warmup: bool = True
    ) -> Measurement:
        """Warm up, then the measured run (of ``seconds``, default ``--duration``); again while
        others were busy, keeping the quietest."""
        settings = self.settings
        seconds = seconds or settings.duration
        spare = self.spare_seconds()
        started = time.monotonic()
        all_runs = [self.wrk(workload, server, settings.warmup)] if warmup else []
        best: Measurement | None = None
        for attempt in range(settings.retries + 1):
            used = time.monotonic() - started - (settings.warmup if warmup else 0.0)
            if attempt and used + seconds + 2 > spare:
                break  # no time left for another run
            self.wait_quiet(server, min(settings.quiet_wait, spare - used))
            load = load_average()
            cpu_window = self.window(server)
            run = self.wrk(workload, server, seconds)
            measurement = Measurement(workload, run, load, cpu_window.finish(), all_runs)
            all_runs.append(run)
            if best is None or measurement.cpu.others_share < best.cpu.others_share:
                best = measurement
            _report(measurement)
            if measurement.cpu.others_share <= settings.max_noise:
                break
        self.remaining -= 1
        assert best is not None
        return best


def _report(measurement: Measurement) -> None:
    """One line per measured run on standard error."""
    run, cpu, workload = measurement.run, measurement.cpu, measurement.workload
    unexpected = set(run.statuses) - workload.expected
    log(
        f"  {workload.key:<22} {run.rps:8.0f} req/s  p50 {run.p50_ms:6.2f} ms"
        f"  p99 {run.p99_ms:6.2f} ms  cpu {measurement.cpu_ms:5.2f} ms/req"
        f"  load {measurement.load_average:4.2f}  others {cpu.others_share:4.0%}"
        + (f"  statuses {dict(run.statuses)}" if unexpected else "")
    )
