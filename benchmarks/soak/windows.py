"""A run's records cut into windows of equal length: what a dashboard of the service would
have shown every 10 seconds, and whether the tail latency stayed steady."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from benchmarks.load.procstat import Memory
from benchmarks.soak.traffic import Record


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of ``values`` (``share`` 0.99 for p99); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(share * len(ordered) - 1e-9)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class CpuSplit:
    """The cores each part of the machine used over a window, on average."""

    gunicorn: float
    #: PostgreSQL and Redis.
    storage: float
    #: The ``commentsvc worker`` process.
    worker: float
    #: Every other process: the load generator, the harness and its receivers, the rest.
    rest: float
    #: Taken from this VM by its host (steal time).
    stolen: float

    @staticmethod
    def mean(splits: Sequence[CpuSplit]) -> CpuSplit | None:
        """The average of ``splits`` (None for none)."""
        if not splits:
            return None
        return CpuSplit(
            *(
                statistics.fmean(getattr(split, f.name) for split in splits)
                for f in fields(CpuSplit)
            )
        )


@dataclass(frozen=True)
class Window:
    """The requests due within one window of a run, and the server's memory at its end."""

    index: int
    #: Seconds since the run started.
    start: float
    width: float
    requests: int
    statuses: Counter[int]
    #: Requests without an answer (timed out, refused, reset) or not sent (shed).
    unanswered: int
    p50_ms: float
    p99_ms: float
    #: How late this client sent its requests (p99): were the load's own delays small?
    lag_p99_ms: float
    memory: Memory | None = None
    #: Faults that happened during the window, by name.
    faults: tuple[str, ...] = field(default_factory=tuple)
    cpu: CpuSplit | None = None
    #: The database's own work that overlapped the window (autoanalyze of a table…).
    maintenance: tuple[str, ...] = field(default_factory=tuple)

    @property
    def rate(self) -> float:
        """Requests due per second."""
        return self.requests / self.width


def window_count(duration: float, width: float) -> int:
    """How many windows of ``width`` a run of ``duration`` is cut into (the last one shorter
    when the width does not divide the duration)."""
    return max(1, int(duration // width + (duration % width > 1e-9)))


def cut(
    records: Sequence[Record],
    start: float,
    duration: float,
    width: float = 10.0,
    memory: Mapping[int, Memory] | None = None,
    faults: Mapping[int, Sequence[str]] | None = None,
    cpu: Mapping[int, CpuSplit] | None = None,
    maintenance: Mapping[int, Sequence[str]] | None = None,
) -> list[Window]:
    """The windows of a run that started at ``start`` (monotonic) and lasted ``duration``:
    each request in the window it was due in; ``memory``, ``faults``, ``cpu`` and
    ``maintenance`` by window index."""
    count = window_count(duration, width)
    due: list[list[Record]] = [[] for _ in range(count)]
    for record in records:
        index = int((record.due - start) // width)
        if 0 <= index < count:
            due[index].append(record)
    windows = []
    for index, these in enumerate(due):
        answered = [r for r in these if r.status]
        windows.append(
            Window(
                index=index,
                start=index * width,
                width=min(width, duration - index * width),
                requests=len(these),
                statuses=Counter(r.status for r in these),
                unanswered=len(these) - len(answered),
                p50_ms=percentile([r.latency for r in answered], 0.50) * 1000,
                p99_ms=percentile([r.latency for r in answered], 0.99) * 1000,
                lag_p99_ms=percentile([r.sent - r.due for r in these if r.kind != "shed"], 0.99)
                * 1000,
                memory=(memory or {}).get(index),
                faults=tuple((faults or {}).get(index, ())),
                cpu=(cpu or {}).get(index),
                maintenance=tuple((maintenance or {}).get(index, ())),
            )
        )
    return windows


@dataclass(frozen=True)
class Steadiness:
    """The per-window p99 series and how far its worst window is from its typical one."""

    series_ms: tuple[float, ...]
    median_ms: float
    max_ms: float

    @property
    def ratio(self) -> float:
        """Worst window's p99 over the median window's p99."""
        return self.max_ms / self.median_ms if self.median_ms else 0.0


def steadiness(windows: Sequence[Window]) -> Steadiness:
    """The p99 of every window that had answers."""
    series = tuple(w.p99_ms for w in windows if w.requests > w.unanswered)
    if not series:
        return Steadiness((), 0.0, 0.0)
    return Steadiness(series, statistics.median(series), max(series))


def condense(windows: Sequence[Window], rows: int = 20) -> list[Window]:
    """At most ``rows`` windows, neighbours merged: requests and statuses added, p50 the
    median and p99 the worst of the merged windows', memory the last one's, CPU their
    average, faults and the database's maintenance kept.
    A window with a fault is never merged with one without, so faults stay visible."""
    if len(windows) <= rows:
        return list(windows)
    size = -(-len(windows) // rows)
    groups: list[list[Window]] = []
    for window in windows:
        current = groups[-1] if groups else None
        if (
            current is None
            or len(current) >= size
            or bool(window.faults) != bool(current[-1].faults)
        ):
            groups.append([window])
        else:
            current.append(window)
    return [merge(group) for group in groups]


def merge(group: Sequence[Window]) -> Window:
    """One window standing for consecutive ``group``."""
    statuses: Counter[int] = Counter()
    for window in group:
        statuses.update(window.statuses)
    return Window(
        index=group[0].index,
        start=group[0].start,
        width=sum(w.width for w in group),
        requests=sum(w.requests for w in group),
        statuses=statuses,
        unanswered=sum(w.unanswered for w in group),
        p50_ms=statistics.median(w.p50_ms for w in group),
        p99_ms=max(w.p99_ms for w in group),
        lag_p99_ms=max(w.lag_p99_ms for w in group),
        memory=group[-1].memory,
        faults=tuple(name for w in group for name in w.faults),
        cpu=CpuSplit.mean([w.cpu for w in group if w.cpu is not None]),
        maintenance=tuple(dict.fromkeys(label for w in group for label in w.maintenance)),
    )
