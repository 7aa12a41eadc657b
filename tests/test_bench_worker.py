"""The keep-up measurement's own logic (benchmarks/worker_keep_up.py): the history it
seeds, how webhook calls are matched to submissions, how a run is cut into windows, and
the verdict. A "kept up" is only worth what these are, so they are tested on made-up
records; the measurement itself runs with ``make bench-worker``."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from benchmarks.soak.traffic import Record
from benchmarks.worker_keep_up import (
    DELIVERY_COLUMNS,
    EVENT_COLUMNS,
    HISTORY_COMMENT_IDS,
    HISTORY_SPAN,
    HistorySite,
    KeepUpWindow,
    Sample,
    Submission,
    TimedCalls,
    check_columns,
    cut,
    first_arrivals,
    history_rows,
    judge,
    owed_at,
    submissions,
    table,
)
from commentsvc.models import DeliveryState
from tests.support.receiver import Call

SITE = HistorySite(
    site_id=3, slug="bench", webhook_id=5, moderator_id=7, moderator_email="m@x.test"
)
END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def call(comment_id: int, event: str = "comment.submitted") -> Call:
    body = json.dumps({"type": event, "timestamp": "t", "data": {"id": comment_id}}).encode()
    return Call("/hook", {"webhook-id": f"msg_{comment_id}"}, body, True, 200)


def submission(
    due: float, took: float = 0.01, delay: float | None = 0.3, status: int = 201, number: int = 1
) -> Submission:
    answered = due + took
    arrived = None if delay is None else answered + delay
    return Submission(due, answered, status, number, arrived)


def window(
    p99_ms: float = 300.0,
    owed: int = 0,
    submitted: int = 2000,
    acknowledged: int = 2000,
    shed: int = 0,
    unanswered: int = 0,
    refused: int = 0,
    undelivered: int = 0,
) -> KeepUpWindow:
    return KeepUpWindow(
        index=0,
        start=0.0,
        width=10.0,
        submitted=submitted,
        acknowledged=acknowledged,
        shed=shed,
        unanswered=unanswered,
        refused=refused,
        undelivered=undelivered,
        p50_ms=p99_ms / 2,
        p95_ms=p99_ms,
        p99_ms=p99_ms,
        max_ms=p99_ms,
        answer_p99_ms=20.0,
        owed=owed,
    )


# --- the history ----------------------------------------------------------------------------


def test_history_fills_every_column_and_counts_as_the_service_would() -> None:
    rows = list(history_rows(SITE, 1_000, END, cap=30, digest_after=timedelta(hours=1)))
    events = [row for name, row in rows if name == "event"]
    deliveries = [row for name, row in rows if name == "delivery"]
    assert len(events) == 1_000
    assert all(set(row) == EVENT_COLUMNS for row in events)
    assert all(set(row) == DELIVERY_COLUMNS for row in deliveries)
    assert [row["id"] for row in events] == list(range(1, 1_001))
    assert [row["id"] for row in deliveries] == list(range(1, len(deliveries) + 1))
    assert events[0]["comment_id"] == HISTORY_COMMENT_IDS
    assert all(row["dispatched_at"] is not None for row in events)
    # Every event before the run's quiet hour, inside the span the worker keeps.
    assert min(row["created_at"] for row in events) >= END - HISTORY_SPAN
    assert max(row["created_at"] for row in events) < END
    kinds = Counter((row["kind"], row["state"]) for row in deliveries)
    assert kinds[("webhook", DeliveryState.DELIVERED)] == 1_000
    mailed = kinds[("moderator_comment", DeliveryState.DELIVERED)]
    skipped = kinds[("moderator_comment", DeliveryState.SKIPPED)]
    assert mailed + skipped == 1_000
    # 1,000 events over 28 days is about 1.5 an hour: under the cap, every one mailed.
    assert skipped == 0 and kinds[("moderator_digest", DeliveryState.DELIVERED)] == 0


def test_history_past_the_cap_folds_each_hours_rest_into_its_digest() -> None:
    # 100,000 events over 28 days: about 149 an hour, 30 of them mailed.
    rows = list(history_rows(SITE, 100_000, END, cap=30, digest_after=timedelta(hours=1)))
    deliveries = {row["id"]: row for name, row in rows if name == "delivery"}
    digests = [row for row in deliveries.values() if row["kind"] == "moderator_digest"]
    skipped = [row for row in deliveries.values() if row["state"] == DeliveryState.SKIPPED]
    mailed = [
        row
        for row in deliveries.values()
        if row["kind"] == "moderator_comment" and row["state"] == DeliveryState.DELIVERED
    ]
    assert len(digests) == 28 * 24
    assert len(mailed) == 30 * len(digests)
    listed = [comment for digest in digests for comment in digest["payload"]["comment_ids"]]
    assert sorted(listed) == sorted(row["comment_id"] for row in skipped)
    for row in skipped:
        digest = deliveries[int(row["last_error"].removeprefix("in digest "))]
        assert digest["kind"] == "moderator_digest"
        assert row["comment_id"] in digest["payload"]["comment_ids"]
        assert row["finished_at"] == digest["created_at"] > row["created_at"]
        assert row["attempts"] == 0
    assert all(row["event_id"] is None and row["recipient"] == "m@x.test" for row in digests)


def test_no_history_is_no_rows() -> None:
    assert list(history_rows(SITE, 0, END, cap=30, digest_after=timedelta(hours=1))) == []


def test_the_seed_fills_the_schema_as_it_is() -> None:
    check_columns()


# --- calls and submissions ------------------------------------------------------------------


def test_first_arrivals_keep_the_first_call_of_each_submitted_comment() -> None:
    calls = [call(1), call(2), call(1), call(3, "comment.approved"), call(4)]
    calls.append(Call("/hook", {}, b"not json", None, 200))
    arrived = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert first_arrivals(calls, arrived) == {1: 1.0, 2: 2.0, 4: 5.0}


def test_timed_calls_note_when_each_arrived() -> None:
    calls = TimedCalls()
    calls.append(call(1))
    calls.append(call(2))
    received, arrived = calls.timed()
    assert len(received) == len(arrived) == 2
    assert arrived[0] <= arrived[1]
    assert first_arrivals(received, arrived) == {1: arrived[0], 2: arrived[1]}


def test_submissions_match_calls_by_comment_and_keep_the_shed() -> None:
    records = [
        Record("submit", 0.0, 0.0, 0.05, 201, False, 0, 11),
        Record("submit", 0.1, 0.1, 0.15, 201, False, 1, 12),
        Record("submit", 0.2, 0.2, 30.2, 0, False, 2, 0, "no answer"),
        Record("shed", 0.3, 0.3, 0.3, 0, False, 0, 0, "too many requests open"),
        Record("thread", 0.4, 0.4, 0.41, 200, False, 0, 0),
    ]
    found = submissions(records, {11: 0.45, 99: 1.0})
    assert len(found) == 4
    assert found[0].delay == pytest.approx(0.4)
    assert found[1].acknowledged and found[1].delay is None
    assert not found[2].acknowledged and not found[2].shed
    assert found[3].shed


def test_owed_counts_acknowledged_calls_not_yet_arrived() -> None:
    runs = [
        submission(0.0, delay=0.5),  # answered 0.01, arrived 0.51
        submission(0.2, delay=None),  # never
        submission(0.9, took=0.2),  # answered 1.1: not owed at 1.0
        submission(0.1, status=0, delay=None),  # not acknowledged: owes nothing
    ]
    assert owed_at(runs, 0.3) == 2
    assert owed_at(runs, 1.0) == 1
    assert owed_at(runs, 2.0) == 1


# --- windows --------------------------------------------------------------------------------


def test_cut_puts_each_submission_in_the_window_it_was_due_in() -> None:
    start = 1000.0
    runs = [
        # Stored to the microsecond: the first may read as due a hair before the start.
        submission(start - 4e-7, delay=0.2),
        submission(start + 5.0, delay=0.4),
        submission(start + 10.0, delay=1.0),
        submission(start + 19.9, delay=None),
        submission(start + 19.9, status=0, delay=None),
        Submission(start + 12.0, start + 12.0, 0, 0, None, shed=True),
        submission(start + 25.0),  # after the run: in no window
    ]
    samples = [
        Sample(start + 10.0 * i, 1.0 * i, 0.5 * i, 0.2 * i, 2.0 * i, 10 * i, i, 100 * i)
        for i in range(3)
    ]
    first, second = cut(runs, start, 20.0, 10.0, samples)
    assert (first.submitted, first.acknowledged, first.p99_ms) == (2, 2, pytest.approx(400))
    assert first.p50_ms == pytest.approx(200)
    assert (second.submitted, second.acknowledged, second.undelivered) == (4, 2, 1)
    assert (second.shed, second.unanswered, second.refused) == (1, 1, 0)
    assert second.max_ms == pytest.approx(1000)
    # At 10 s the call of the one due at 10 s was not even acknowledged yet; at 20 s the
    # call that never came is owed.
    assert first.owed == 0 and second.owed == 1
    assert second.end == samples[2]
    assert second.cores is not None
    assert (second.cores.worker, second.cores.server, second.cores.client) == (0.1, 0.05, 0.02)
    assert second.cores.others == pytest.approx(0.03)


def test_cut_without_samples_has_no_cpu_or_queue() -> None:
    (only,) = cut([submission(0.5)], 0.0, 10.0, 10.0)
    assert only.end is None and only.cores is None
    assert "| 0-10 s | 1 | 1 |" in table([only])[2]


# --- the verdict ----------------------------------------------------------------------------


def test_a_steady_run_kept_up() -> None:
    windows = [window(450, owed=60), window(500, owed=80), window(700, owed=40)]
    assert judge(windows, rate=200).kept_up


def test_a_small_first_p99_may_grow_up_to_the_floor() -> None:
    assert judge([window(100), window(990)], rate=200).kept_up
    verdict = judge([window(100), window(1100)], rate=200)
    assert not verdict.kept_up
    assert "p99 delay of the last window 1,100 ms, over 1,000 ms" in verdict.reasons[0]


def test_a_p99_that_more_than_doubles_did_not_keep_up() -> None:
    verdict = judge([window(800), window(900), window(1700)], rate=200)
    assert verdict.reasons == (
        "p99 delay of the last window 1,700 ms, over 1,600 ms (2 times the first"
        " window's 800 ms, at least 1,000)",
    )


def test_a_growing_backlog_did_not_keep_up() -> None:
    verdict = judge([window(owed=150), window(owed=201)], rate=200)
    assert verdict.reasons == ("201 calls owed at 10 s (more than 200, 1 s of submissions)",)


def test_submissions_without_their_201_or_their_call_did_not_keep_up() -> None:
    refused = window(submitted=2000, acknowledged=1990, shed=4, unanswered=5, refused=1)
    verdict = judge([refused, window(undelivered=3)], rate=200)
    assert verdict.reasons == (
        "10 of 4000 submissions were not answered 201 (5 no answer within the client's"
        " timeout, 1 another status, 4 not sent: too many open)",
        "3 acknowledged submissions never had their webhook call",
    )


def test_no_windows_is_no_verdict_of_keeping_up() -> None:
    assert not judge([], rate=200).kept_up
