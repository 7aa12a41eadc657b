"""What PostgreSQL did by itself during a soak: its autovacuum and autoanalyze runs, read from
the private cluster's log, so that a window with a slow tail can be set beside them.

The soak shares two cores between the service, the database and the load. An autoanalyze of
``comments`` (a 30,000-row sample of a 100,000-comment table, a statistic per column) takes
0.2-0.4 s of CPU in one go, and the windows it falls in are the ones whose p99 stands out
(benchmarks/README.md, "What the soak's slow windows are"). The cluster logs every such run
(``log_autovacuum_min_duration = 0``, set by :meth:`benchmarks.soak.stack.PrivatePostgres.
production_like`); each entry's first line says when it ended and which table, a later line
how long it took.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from benchmarks.soak.windows import window_count

#: Runs shorter than this are not shown: every minute the small, busy tables (pages, the
#: outbox's) are analyzed in a few hundredths of a second.
SHOWN_SECONDS = 0.2

_HEAD = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC \[\d+\] LOG:  "
    r'automatic (vacuum|analyze) of table "([^"]+)"'
)
_ELAPSED = re.compile(r"\belapsed: (\d+(?:\.\d+)?) s\b")


@dataclass(frozen=True)
class Maintenance:
    """One autovacuum or autoanalyze run on a table of the soak's database."""

    #: ``vacuum`` or ``analyze``.
    kind: str
    table: str
    #: When it ended, seconds since the epoch.
    ended: float
    elapsed: float

    @property
    def started(self) -> float:
        """When it began, seconds since the epoch."""
        return self.ended - self.elapsed

    @property
    def label(self) -> str:
        """``autoanalyze comments 0.98 s``."""
        return f"auto{self.kind} {self.table} {self.elapsed:.2f} s"


def parse(lines: Iterable[str], database: str) -> list[Maintenance]:
    """The runs on tables of ``database`` that the log ``lines`` tell of; a run whose entry has
    no ``elapsed`` line is left out."""
    found = []
    head: tuple[str, str, float] | None = None
    for line in lines:
        match = _HEAD.match(line)
        if match:
            stamp, kind, name = match.groups()
            owner, _, table = name.rpartition(".")
            head = None
            if owner.partition(".")[0] == database:
                ended = datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
                head = (kind, table, ended)
            continue
        if not line.startswith(("\t", " ")):
            head = None
            continue
        elapsed = _ELAPSED.search(line)
        if head is not None and elapsed:
            kind, table, ended = head
            found.append(Maintenance(kind, table, ended, float(elapsed.group(1))))
            head = None
    return found


def by_window(
    runs: Sequence[Maintenance],
    start: float,
    duration: float,
    width: float,
    shown: float = SHOWN_SECONDS,
) -> dict[int, list[str]]:
    """The labels of the runs of at least ``shown`` seconds, by the index of each window of a
    phase (``start``, epoch seconds; ``duration``; windows of ``width``) that they overlap."""
    count = window_count(duration, width)
    windows: dict[int, list[str]] = {}
    for run in runs:
        if run.elapsed < shown or run.ended < start or run.started >= start + duration:
            continue
        first = max(0, int((run.started - start) // width))
        last = min(count - 1, int((run.ended - start) // width))
        for index in range(first, last + 1):
            windows.setdefault(index, []).append(run.label)
    return windows
