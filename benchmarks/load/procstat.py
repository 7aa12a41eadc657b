"""Processes and CPUs, read from /proc: who used the machine during a run, and how much memory."""

from __future__ import annotations

import os
import re
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.load_data import SetupError

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPUS = len(os.sched_getaffinity(0))


def cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """User plus system CPU seconds of each process still running."""
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return times


def _all_cpus() -> list[int]:
    """The ticks of ``/proc/stat``'s ``cpu`` line: user, nice, system, idle, iowait, irq,
    softirq, steal."""
    return [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def machine_busy_seconds() -> float:
    """CPU seconds of all CPUs spent in user, nice and system time, or stolen by the host."""
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = _all_cpus()
    return (user + nice + system + steal) / CLOCK_TICKS


def stolen_seconds() -> float:
    """CPU seconds the host took from this VM's CPUs (their steal time), all CPUs."""
    return _all_cpus()[7] / CLOCK_TICKS


def own_seconds() -> float:
    """CPU seconds of this process and of its children that ended (wrk runs)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def field_of(pattern: str, text: str) -> str:
    """The first group of ``pattern`` (multi-line) in ``text``; it must be there."""
    match = re.search(pattern, text, re.M)
    if match is None:
        raise SetupError(f"no {pattern!r} in {text[:200]!r}")
    return match.group(1)


def load_average() -> float:
    """The machine's load average over the last minute."""
    return float(Path("/proc/loadavg").read_text().split()[0])


@dataclass(frozen=True)
class Memory:
    """Memory of a group of processes."""

    processes: int
    rss_mib: float
    pss_mib: float


def memory(pids: Sequence[int]) -> Memory:
    """Summed resident (RSS) and proportional (PSS, shared pages split) memory."""
    rss = pss = 0
    for pid in pids:
        rss += int(field_of(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text()))
        pss += int(field_of(r"^Pss:\s+(\d+) kB", Path(f"/proc/{pid}/smaps_rollup").read_text()))
    return Memory(len(pids), rss / 1024, pss / 1024)


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds used during a window, by whom, and the share of the machine others took."""

    app: float
    database: float
    #: This process and wrk.
    client: float
    others_share: float


class CpuWindow:
    """Who used the CPUs between two instants: the server, its database server processes, the
    benchmark itself (wrk included) or anybody else on the machine."""

    def __init__(self, app_pids: Callable[[], set[int]], database_pids: Callable[[], set[int]]):
        self.app_pids = app_pids
        self.database_pids = database_pids
        self.started = time.monotonic()
        self.app = cpu_seconds(sorted(app_pids()))
        self.database = cpu_seconds(sorted(database_pids()))
        self.own = own_seconds()
        self.busy = machine_busy_seconds()

    def finish(self) -> CpuUse:
        """What the CPUs did since the window opened."""
        elapsed = time.monotonic() - self.started
        busy = machine_busy_seconds() - self.busy
        app = self._used(self.app, self.app_pids())
        database = self._used(self.database, self.database_pids())
        client = own_seconds() - self.own
        others = busy - app - database - client
        share = max(0.0, others) / (elapsed * CPUS) if elapsed > 0 else 0.0
        return CpuUse(app, database, client, share)

    @staticmethod
    def _used(before: dict[int, float], pids: set[int]) -> float:
        # Processes that started during the window count from zero.
        now = cpu_seconds(sorted(pids | set(before)))
        return sum(seconds - before.get(pid, 0.0) for pid, seconds in now.items())
