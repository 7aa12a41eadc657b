"""The soak benchmark's own logic (benchmarks/soak): how its generator paces and records,
how records become windows, and how answers, stored comments and deliveries are judged. A
verdict of the soak is only worth what these checks are, so they are tested here, on real
records and a real HTTP server; one short real run (gunicorn, Redis, the outbox worker)
checks that the pieces fit."""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import astuple, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from benchmarks.load.procstat import CpuUse, Memory
from benchmarks.soak import cli
from benchmarks.soak.checks import (
    DeliveryRow,
    Event,
    Fault,
    StoredComment,
    blame,
    check_deliveries,
    compare_submissions,
    judge_answers,
    recovery_seconds,
)
from benchmarks.soak.maintenance import by_window, parse
from benchmarks.soak.report import slow_windows, verdicts, window_table
from benchmarks.soak.run import CpuCounters, Phase, recoveries
from benchmarks.soak.traffic import (
    Generator,
    Record,
    TrafficConfig,
    kinds_cycle,
    parse_answer,
    read_records,
    submit_marker,
)
from benchmarks.soak.windows import condense, cut, percentile, steadiness
from tests.support.server import serving


def record(
    kind: str = "thread",
    due: float = 0.0,
    took: float = 0.01,
    status: int = 200,
    retry_after: bool = False,
    number: int = 0,
    comment_id: int = 0,
    error: str = "",
) -> Record:
    return Record(kind, due, due, due + took, status, retry_after, number, comment_id, error)


# --- the generator ---------------------------------------------------------------------------


def test_a_record_survives_its_line() -> None:
    original = record("submit", 12.5, 0.25, 201, number=7, comment_id=99, error="a\tb\nc")
    again = Record.parse(original.line())
    assert again == Record("submit", 12.5, 12.5, 12.75, 201, False, 7, 99, "a b c")
    assert again.latency == pytest.approx(0.25)


def test_the_kinds_come_in_the_mix_proportions_in_every_stretch() -> None:
    kinds = kinds_cycle({"thread": 5, "submit": 3, "counts": 2}, seed=3)
    first, second = [next(kinds) for _ in range(10)], [next(kinds) for _ in range(10)]
    assert Counter(first) == Counter(second) == {"thread": 5, "submit": 3, "counts": 2}
    with pytest.raises(ValueError, match="unknown kinds"):
        next(kinds_cycle({"typo": 1}, seed=1))


def test_an_answer_is_parsed_with_lower_case_headers() -> None:
    answer = parse_answer(
        b"HTTP/1.1 503 SERVICE UNAVAILABLE\r\nRetry-After: 5\r\nContent-Type: x\r\n\r\n{}"
    )
    assert (answer.status, answer.headers["retry-after"], answer.body) == (503, "5", b"{}")
    with pytest.raises(ValueError):
        parse_answer(b"garbage")


class _Service(BaseHTTPRequestHandler):
    """Answers as the service would: 201 with an id to a submission, a thread with an ETag
    and 304 when it is sent back, 503 with Retry-After to counts."""

    submissions = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if "/counts" in self.path:
            self._answer(503, b"{}", Retry_After="5")
        elif self.headers.get("If-None-Match") == '"v1"':
            self._answer(304, b"")
        else:
            self._answer(200, b'{"comments": []}', ETag='"v1"')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        _Service.submissions += 1
        self._answer(201, f'{{"id": {1000 + _Service.submissions}}}'.encode())


@pytest.fixture
def service() -> Iterator[tuple[str, int]]:
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _Service)) as origin:
        host, port = origin.removeprefix("http://").split(":")
        yield host, int(port)


def test_the_paced_generator_sends_at_its_rate_and_records_every_answer(
    service: tuple[str, int], tmp_path: Path
) -> None:
    host, port = service
    config = TrafficConfig(
        host=host,
        port=port,
        site="bench",
        token="t",
        run="r",
        records=str(tmp_path / "records.tsv"),
        duration=1.0,
        start_at=time.monotonic() + 0.1,
        rate=100.0,
        mix={"thread": 2, "thread-304": 1, "counts": 1, "submit": 1},
        count_pages=("/a",),
    )
    out = io.StringIO()
    asyncio.run(Generator(config, out).paced())
    records = [Record.parse(line) for line in out.getvalue().splitlines()]
    assert len(records) == 100
    dues = sorted(r.due - config.start_at for r in records)
    assert dues[0] == pytest.approx(0.0, abs=1e-6) and dues[-1] == pytest.approx(0.99)
    by_kind = Counter((r.kind, r.status, r.retry_after) for r in records)
    assert by_kind[("submit", 201, False)] == 20
    assert by_kind[("counts", 503, True)] == 20
    # A conditional read before any ETag was seen is a plain read.
    assert by_kind[("thread-304", 304, False)] in (19, 20)
    assert by_kind[("thread-304", 304, False)] + by_kind[("thread", 200, False)] == 60
    submits = [r for r in records if r.kind == "submit"]
    assert sorted(r.number for r in submits) == list(range(20))
    assert all(r.comment_id > 1000 for r in submits)
    assert all("503" not in r.error for r in records if r.status != 503)
    assert submit_marker("r", 3) == "soak r #3"


def test_records_are_read_back_from_their_file(tmp_path: Path) -> None:
    path = tmp_path / "records.tsv"
    path.write_text(record(due=1.0).line() + "\n" + record("counts", 2.0).line())
    assert [r.kind for r in read_records(path)] == ["thread", "counts"]


# --- windows ---------------------------------------------------------------------------------


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile([], 0.99)) == (
        50.0,
        99.0,
        0.0,
    )


def test_records_fall_into_the_window_they_were_due_in() -> None:
    start = 100.0
    records = [record(due=start + i * 0.1, took=0.002 * (1 + i % 10)) for i in range(300)]
    records += [record(due=start + 25.0, status=0, error="reset")]
    records += [record(due=start + 31.0)]  # after the run: not counted
    memory = {0: Memory(3, 150.0, 100.0), 2: Memory(3, 151.0, 101.0)}
    windows = cut(records, start, 30.0, 10.0, memory, {2: ["Redis restart"]})
    assert [w.requests for w in windows] == [100, 100, 101]
    assert windows[2].unanswered == 1 and windows[2].statuses == {200: 100, 0: 1}
    assert windows[0].p50_ms == pytest.approx(10.0) and windows[0].p99_ms == pytest.approx(20.0)
    assert windows[0].rate == 10.0
    assert windows[1].memory is None and windows[2].memory == memory[2]
    assert windows[2].faults == ("Redis restart",)


def test_steadiness_is_the_worst_window_over_the_median_one() -> None:
    windows = cut(
        [record(due=10.0 * i + 1, took=took) for i, took in enumerate((0.01, 0.02, 0.08))],
        0.0,
        30.0,
    )
    steady = steadiness(windows)
    assert steady.series_ms == pytest.approx((10.0, 20.0, 80.0))
    assert steady.ratio == pytest.approx(4.0)


def test_condensing_merges_neighbours_but_never_a_fault_window() -> None:
    records = [record(due=i + 0.5, took=0.001 * (i + 1)) for i in range(60)]
    windows = cut(records, 0.0, 60.0, 1.0, faults={30: ["PostgreSQL restart"]})
    rows = condense(windows, rows=6)
    assert sum(r.requests for r in rows) == 60
    assert [r.faults for r in rows if r.faults] == [("PostgreSQL restart",)]
    fault_row = next(r for r in rows if r.faults)
    assert (fault_row.start, fault_row.width) == (30.0, 1.0)
    assert rows[0].p99_ms == pytest.approx(10.0)  # the worst of the merged windows


def test_each_window_tells_the_cores_each_part_of_the_machine_used() -> None:
    before = CpuCounters(
        at=100.0,
        groups={"gunicorn": {1: 10.0, 2: 10.0}, "storage": {3: 5.0}, "worker": {4: 2.0}},
        busy=50.0,
        stolen=1.0,
    )
    after = CpuCounters(
        at=110.0,
        # Worker 2 was killed and 5 replaced it: the new one counts from its start.
        groups={"gunicorn": {1: 18.0, 5: 2.0}, "storage": {3: 7.0}, "worker": {4: 5.0}},
        busy=71.0,
        stolen=2.0,
    )
    split = after.since(before)
    assert astuple(split) == pytest.approx((1.0, 0.2, 0.3, 0.5, 0.1))
    windows = cut([record(due=i + 0.5) for i in range(4)], 0.0, 4.0, 1.0, cpu={0: split, 1: split})
    assert windows[0].cpu == split and windows[2].cpu is None
    merged = condense(windows, rows=2)
    assert merged[0].cpu == split  # the mean of two equal windows
    assert merged[1].cpu is None  # none sampled


# --- the database's maintenance --------------------------------------------------------------

#: Four entries of a cluster's log: two of the soak's database (one short), one of another
#: database, and one without its elapsed line (cut off by the end of the file).
CLUSTER_LOG = """\
2026-12-01 14:30:14.936 UTC [2957] LOG:  automatic vacuum of table "soak_1.public.mail_links": index
\tpages: 0 removed, 38 remain, 38 scanned (100.00% of total)
\tsystem usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.04 s
2026-12-01 14:30:15.000 UTC [2960] LOG:  checkpoint starting: time
2026-12-01 14:30:16.084 UTC [2957] LOG:  automatic analyze of table "soak_1.public.comments"
\tavg read rate: 89.153 MB/s, avg write rate: 0.969 MB/s
\tsystem usage: CPU: user: 0.31 s, system: 0.06 s, elapsed: 0.98 s
2026-12-01 14:30:17.000 UTC [2958] LOG:  automatic analyze of table "soak_12.public.comments"
\tsystem usage: CPU: user: 0.31 s, system: 0.06 s, elapsed: 0.50 s
2026-12-01 14:31:15.135 UTC [7135] LOG:  automatic vacuum of table "soak_1.public.deliveries": index
"""


def test_the_databases_maintenance_is_read_from_the_cluster_log() -> None:
    runs = parse(CLUSTER_LOG.splitlines(), "soak_1")
    assert [(r.kind, r.table, r.elapsed) for r in runs] == [
        ("vacuum", "mail_links", 0.04),
        ("analyze", "comments", 0.98),
    ]
    ended = datetime(2026, 12, 1, 14, 30, 16, 84000, tzinfo=UTC).timestamp()
    assert runs[1].ended == pytest.approx(ended)
    assert runs[1].label == "autoanalyze comments 0.98 s"


def test_maintenance_is_shown_in_every_window_it_overlapped_and_only_if_long() -> None:
    start = datetime(2026, 12, 1, 14, 29, 56, tzinfo=UTC).timestamp()
    runs = parse(CLUSTER_LOG.splitlines(), "soak_1")
    # The analyze ran from 15.104 to 16.084 s past 14:30: 19.1-20.1 s into the phase.
    assert by_window(runs, start, 60.0, 10.0) == {
        1: ["autoanalyze comments 0.98 s"],
        2: ["autoanalyze comments 0.98 s"],
    }
    assert by_window(runs, start, 60.0, 10.0, shown=0.01)[1] == [
        "autovacuum mail_links 0.04 s",
        "autoanalyze comments 0.98 s",
    ]
    assert by_window(runs, start + 30.0, 60.0, 10.0) == {}  # before the phase
    assert by_window(runs, start - 120.0, 60.0, 10.0) == {}  # after it


def test_a_slow_window_is_reported_with_the_maintenance_beside_it() -> None:
    records = [record(due=i * 0.1, took=0.01) for i in range(300)]
    records[150:160] = [record(due=15.0 + i * 0.01, took=0.09) for i in range(10)]
    windows = cut(records, 0.0, 30.0, 10.0, maintenance={1: ["autoanalyze comments 0.98 s"]})
    assert [w.maintenance for w in windows] == [(), ("autoanalyze comments 0.98 s",), ()]
    assert slow_windows(windows) == [windows[1]]
    [row] = [line for line in window_table(windows) if line.startswith("| 10-20 ")]
    assert row.endswith("| autoanalyze comments 0.98 s |")
    merged = condense(cut(records, 0.0, 30.0, 1.0, maintenance={15: ["a"], 16: ["a", "b"]}), 3)
    assert merged[1].maintenance == ("a", "b")
    rows = {v.target: v for v in verdicts(replace(phase(records, [], 150.0), windows=windows))}
    steady = rows["p99 steady: worst window ≤ 2 times the median window"]
    assert steady.met is False
    assert steady.measured.endswith(
        "; 1 window over 2x, 1 of them during the database's maintenance"
    )


# --- answers ---------------------------------------------------------------------------------

OUTAGE = Fault("PostgreSQL restart", started=50.0, restored=56.0)
KILL = Fault("gunicorn worker SIGKILL", started=80.0, restored=80.5, kills_connections=True)


def test_only_503_with_retry_after_is_excused_and_only_during_an_outage() -> None:
    records = [
        record(due=10.0),
        record(due=52.0, status=503, retry_after=True),
        record(due=60.0, status=503, retry_after=True),  # within the grace after the outage
        record(due=53.0, status=503),  # no Retry-After
        record(due=53.0, status=500),
        record(due=20.0, status=503, retry_after=True),  # no outage then
        record("submit", due=54.0, status=201, number=1, comment_id=9),
        record(due=79.9, took=0.2, status=0, error="reset"),  # held by the killed worker
        record(due=90.0, status=0, error="refused"),
        record("shed", due=95.0, status=0),
        record("counts", due=96.0, status=404),
    ]
    check = judge_answers(records, [OUTAGE, KILL])
    assert check.requests == 11 and check.correct == 2
    assert [r.due for r in check.unavailable] == [52.0, 60.0]
    assert [r.due for r in check.dropped] == [79.9]
    assert check.failure_reasons == {
        "503 without Retry-After": 1,
        "500 during an outage": 1,
        "503 outside any outage": 1,
        "no answer": 1,
        "not sent: too many requests open": 1,
        "404": 1,
    }


def test_recovery_is_the_last_wrong_answer_after_the_fault_ended() -> None:
    records = [
        record(due=55.0, status=503, retry_after=True),
        record(due=56.5, status=503, retry_after=True),
        record(due=57.0),
    ]
    assert recovery_seconds(records, OUTAGE) == pytest.approx(0.51)
    assert recovery_seconds(records[:2], OUTAGE) is None
    assert recovery_seconds([record(due=57.0)], OUTAGE) == 0.0


def test_a_request_the_next_fault_cut_is_not_charged_to_the_one_before() -> None:
    """The 09:43 soak's finding: a request sent just before the SIGKILL and held by the
    killed worker made the PostgreSQL restart's recovery 144.6 s (until the kill), though
    every answer between the two was correct."""
    held_by_the_killed = record(due=79.9, took=0.2, status=0, error="reset")
    records = [record(due=57.0), record(due=70.0), held_by_the_killed]
    assert recovery_seconds(records, OUTAGE, until=KILL.started) == 0.0
    assert recoveries(records, [OUTAGE, KILL]) == {OUTAGE.name: 0.0, KILL.name: None}


def test_a_wrong_answer_is_put_down_to_the_fault_it_came_in() -> None:
    redis = Fault("Redis restart", started=40.0, restored=45.0)
    faults = [redis, OUTAGE]
    during_postgres = record(due=51.0, status=503, retry_after=True)
    assert blame(during_postgres, faults) is OUTAGE
    assert blame(record(due=44.0, status=503, retry_after=True), faults) is redis
    assert blame(record(due=10.0, status=503, retry_after=True), faults) is None
    records = [record(due=46.0), during_postgres, record(due=57.0)]
    # The PostgreSQL outage's 503s are not a slow recovery from the Redis restart.
    assert recoveries(records, faults) == {"Redis restart": 0.0, "PostgreSQL restart": 0.0}
    assert recoveries(records, []) == {}


# --- stored comments -------------------------------------------------------------------------


def stored(comment_id: int, number: int, status: str = "pending") -> StoredComment:
    return StoredComment(comment_id, f"Comment {submit_marker('r', number)}: words.", status)


def test_acknowledged_submissions_are_compared_with_the_stored_comments() -> None:
    records = [
        record("submit", status=201, number=1, comment_id=11),
        record("submit", status=201, number=2, comment_id=12),  # lost
        record("submit", status=201, number=3, comment_id=13),  # another's text under its id
        record("submit", status=503, retry_after=True, number=4),  # stored all the same
        record("submit", status=0, number=5),  # not stored
        record("approve", status=200, number=11),
        record("approve", status=200, number=13),  # not approved in the database
    ]
    comments = [
        stored(11, 1, "approved"),
        stored(13, 6),
        stored(14, 4),
        stored(15, 1),  # submission 1 stored twice
        stored(16, 7, "approved"),  # approved, its request answered 503
    ]
    check = compare_submissions(records, comments)
    assert (check.acknowledged, check.stored) == (3, 5)
    assert check.lost == (12,)
    assert check.mismatched == (13,)
    assert check.duplicated == (1,)
    assert check.stored_unacknowledged == (4, 6, 7)
    assert check.unacknowledged_requests == 2
    assert (check.approvals_acknowledged, check.approvals_lost) == (2, (13,))
    assert check.approved_unacknowledged == (16,)
    assert not check.ok


def test_everything_stored_once_is_ok() -> None:
    records = [record("submit", status=201, number=n, comment_id=10 + n) for n in range(3)]
    check = compare_submissions(records, [stored(10 + n, n) for n in range(3)])
    assert check.ok and check.lost == check.duplicated == check.stored_unacknowledged == ()


# --- deliveries ------------------------------------------------------------------------------


def test_every_event_must_reach_the_receiver_and_repeats_are_counted() -> None:
    events = [
        Event(1, "comment.submitted", 100),
        Event(2, "comment.approved", 100),
        Event(3, "comment.submitted", 101),
        Event(4, "comment.submitted", 102),
    ]
    deliveries = [
        DeliveryRow(10, 1, "webhook", "webhook", "delivered", 100),
        DeliveryRow(11, 1, "mail", "moderator_comment", "delivered", 100),
        DeliveryRow(12, 2, "webhook", "webhook", "delivered", 100, attempts=2, seconds=300.5),
        DeliveryRow(13, 3, "webhook", "webhook", "delivered", 101),  # never received
        DeliveryRow(14, 3, "mail", "moderator_comment", "skipped", 101, "already moderated"),
        DeliveryRow(15, 4, "webhook", "webhook", "pending", 102),
    ]
    check = check_deliveries(
        events, [], deliveries, webhook_calls={10: 1, 12: 3}, mails={100: 2}, unsigned=1
    )
    assert check.events == {"comment.submitted": 3, "comment.approved": 1}
    assert check.events_unseen == (3, 4)
    assert check.delivered_unseen == (13,)
    assert check.unfinished == (15,)
    assert check.skipped == {"already moderated": 1}
    assert (check.duplicate_webhooks, check.duplicate_mails, check.unsigned) == (2, 1, 1)
    assert check.attempted_again == (12,) and check.slowest == 300.5
    assert not check.ok
    everything = check_deliveries(events[:2], [], deliveries[:3], {10: 1, 12: 1}, {100: 1})
    assert everything.ok


# --- verdicts --------------------------------------------------------------------------------


def phase(records: list[Record], faults: list[Fault], rss: float) -> Phase:
    windows = cut(records, 0.0, 20.0, 10.0, {0: Memory(3, 150.0, 100.0)})
    comments = [stored(r.comment_id, r.number) for r in records if r.kind == "submit"]
    return Phase(
        name="soak",
        run="r",
        rate=10.0,
        duration=20.0,
        started=0.0,
        windows=windows,
        answers=judge_answers(records, faults),
        submissions=compare_submissions(records, comments),
        deliveries=check_deliveries([], [], [], {}, {}),
        faults=faults,
        recoveries={f.name: recovery_seconds(records, f) for f in faults},
        drain_seconds=1.0,
        memory_before=Memory(3, 140.0, 90.0),
        memory_after=Memory(3, rss, 110.0),
        worker_memory_after=None,
        served_total=len(records),
        cpu=CpuUse(1.0, 1.0, 1.0, 0.0),
        sent=len(records),
        due=len(records),
        other_mails=0,
        backlog_peak=0,
    )


def test_the_verdicts_of_a_clean_phase() -> None:
    records = [record(due=i * 0.1, took=0.01) for i in range(200)]
    records[5] = record("submit", due=0.5, status=201, number=0, comment_id=1)
    rows = {v.target: v for v in verdicts(phase(records, [], rss=151.0))}
    assert rows["0 errors (every answer the expected status)"].met is True
    assert rows["acknowledged submissions == stored comments: 0 lost"].met is True
    assert rows["master + workers RSS < 200 MiB after the phase"].met is True
    assert rows["no growth: RSS at the end within 5% of the first window's"].met is True
    grown = {v.target: v for v in verdicts(phase(records, [], rss=210.0))}
    assert grown["master + workers RSS < 200 MiB after the phase"].met is False
    assert grown["no growth: RSS at the end within 5% of the first window's"].met is False


def test_the_verdicts_of_a_phase_with_faults() -> None:
    outage = Fault("Redis restart", started=5.0, restored=6.0)
    records = [record(due=i * 0.1, took=0.01) for i in range(200)]
    records[55] = record(due=5.5, status=503, retry_after=True)
    rows = {v.target: v for v in verdicts(phase(records, [outage], rss=150.0))}
    key = "while a dependency is down only 503 with Retry-After; no other failure"
    assert rows[key].met is True
    assert rows["recovery after Redis restart, nothing restarted by hand"].met is True
    records[56] = record(due=5.6, status=500)
    rows = {v.target: v for v in verdicts(phase(records, [outage], rss=150.0))}
    assert rows[key].met is False and "500 during an outage: 1" in rows[key].measured


# --- a short real run ------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.sqlite_only  # its own SQLite and Redis: once per suite is enough
def test_a_short_soak_with_faults_meets_its_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "soak.md"
    arguments = ["--database", "sqlite", "--rate", "40", "--duration", "6", "--window", "2"]
    arguments += ["--phases", "faults", "--redis-down", "1", "--drain-timeout", "60"]
    with pytest.raises(SystemExit) as exit:
        cli.main([*arguments, "--output", str(report), "--keep", str(tmp_path / "run")])
    text = report.read_text()
    assert "## Soak with faults" in text and "| Redis restart |" in text
    assert "| gunicorn worker SIGKILL |" in text
    assert "/ outbox worker / rest / stolen |" in text
    cores = [line.split(" | ")[-2] for line in text.splitlines() if line.startswith("| 0-2 |")]
    assert cores and float(cores[0].split(" / ")[0]) > 0  # gunicorn worked in the first window
    # Whatever the memory (a figure of the machine), every promise of the service is kept.
    missed = [line for line in text.splitlines() if line.endswith("| **missed** |")]
    assert all(line.startswith("| master + workers RSS") for line in missed), missed
    assert exit.value.code == (1 if missed else 0)
    capsys.readouterr()


def test_the_failure_report_leaves_out_the_services_info_lines() -> None:
    text = "\n".join(
        [
            '{"level":"INFO","logger":"commentsvc.request","message":"request"}',
            '{"level": "INFO", "logger": "gunicorn.error", "message": "Booting worker"}',
            '{"level":"WARNING","logger":"commentsvc","message":"database unavailable"}',
            "Traceback (most recent call last):",
        ]
    )
    assert cli.above_info(text) == [
        '{"level":"WARNING","logger":"commentsvc","message":"database unavailable"}',
        "Traceback (most recent call last):",
    ]
