"""The memory benchmark's own logic (benchmarks/memory.py), without a server: the verdicts,
the table of samples, the checks of a wrk run's answers, the mix and the pages it reads."""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks import load_data, memory
from benchmarks.load.procstat import Memory
from benchmarks.load.wrk import WrkRun
from benchmarks.memory import Sample, Tally


def sample(requests: int, worker_rss: float, master_rss: float = 40.0) -> Sample:
    """Master and two workers, each worker at ``worker_rss`` MiB (PSS 20 MiB less)."""
    worker = Memory(1, worker_rss, worker_rss - 20)
    return Sample(
        requests,
        Memory(1, master_rss, master_rss - 15),
        (worker, worker),
        (101, 102),
        rps=None if requests == 0 else 1_500.0,
        p99_ms=None if requests == 0 else 12.3,
        others_share=None if requests == 0 else 0.04,
    )


def wrk_run(requests: int, socket_errors: int = 0) -> WrkRun:
    return WrkRun(requests, 10.0, requests / 10, 1.0, 5.0, 0, socket_errors, Counter())


def test_sample_totals_master_and_workers() -> None:
    total = sample(0, 70.0).total

    assert total == Memory(3, 180.0, 125.0)


def test_verdicts_met_below_the_target_and_flat_after_the_warmup() -> None:
    samples = [sample(0, 60.0), sample(50_000, 75.0), sample(104_000, 78.0), sample(1_003_000, 79)]

    target, growth = memory.verdicts(samples, warmup=100_000)

    assert target.met is True
    assert "198.0 MiB RSS (143.0 MiB PSS) after 1,003,000 requests" in target.measured
    # Judged from the first sample at or after 100,000 requests, not from the idle server.
    assert growth.met is True
    assert growth.measured.startswith("196.0 MiB after 104,000 → 198.0 MiB (+1.0%)")


def test_verdicts_missed_over_the_target_or_growing_more_than_five_percent() -> None:
    samples = [sample(0, 60.0), sample(100_000, 100.0), sample(1_000_000, 106.0)]

    target, growth = memory.verdicts(samples, warmup=100_000)

    assert (target.met, target.word) == (False, "**missed**")
    assert "252.0 MiB RSS" in target.measured
    # 240 → 252 MiB: +5.0%, at the line, is still met; one MiB more per worker is not.
    assert growth.met is True
    samples[-1] = sample(1_000_000, 107.0)
    assert memory.verdicts(samples, warmup=100_000)[1].met is False


def test_growth_is_not_judged_without_a_later_sample_after_the_warmup() -> None:
    short = [sample(0, 60.0), sample(40_000, 75.0), sample(90_000, 75.0)]
    ends_at_warmup = [sample(0, 60.0), sample(100_000, 75.0)]

    for samples in (short, ends_at_warmup):
        growth = memory.verdicts(samples, warmup=100_000)[1]
        assert (growth.met, growth.word) == (None, "reported")
        assert growth.measured.startswith("not measured")


def test_sample_table_has_a_row_per_sample_with_each_process() -> None:
    lines = memory.sample_table([sample(0, 60.0), sample(35_120, 75.5)])

    assert lines[0] == (
        "| requests | req/s | p99 ms | master RSS / PSS MiB | worker 1 RSS / PSS"
        " | worker 2 RSS / PSS | total RSS / PSS | others' CPU |"
    )
    assert lines[1] == "|---|---|---|---|---|---|---|---|"
    assert lines[2] == (
        "| 0 | - | - | 40.0 / 25.0 | 60.0 / 40.0 | 60.0 / 40.0 | **160.0 / 105.0** | - |"
    )
    assert lines[3] == (
        "| 35,120 | 1,500 | 12.3 | 40.0 / 25.0 | 75.5 / 55.5 | 75.5 / 55.5"
        " | **191.0 / 136.0** | 4% |"
    )
    assert len(lines) == 4


def test_tally_reads_what_the_lua_script_writes() -> None:
    tally = Tally.parse(
        "sent thread 120\nsent thread-304 40\nanswered thread 200 117\n"
        "answered thread-304 304 40\nanswered thread 200 2\n\n"
    )

    assert tally.sent == Counter({"thread": 120, "thread-304": 40})
    assert tally.answered == Counter({("thread", 200): 119, ("thread-304", 304): 40})
    assert tally.answers_of("thread") == 119
    with pytest.raises(load_data.SetupError):
        Tally.parse("sent thread\n")


def test_a_run_answered_as_expected_has_no_problems() -> None:
    tally = Tally(
        Counter({"thread": 1_000, "thread-304": 300, "submit": 30}),
        Counter({("thread", 200): 995, ("thread-304", 304): 299, ("submit", 201): 30}),
    )

    # 6 requests in flight when wrk stopped, of 8 connections.
    assert memory.run_problems(tally, wrk_run(1_324), connections=8) == []


@pytest.mark.parametrize(
    ("answered", "socket_errors", "problem"),
    [
        # A revalidation answered 200 (the thread changed), a submission refused.
        ({("thread-304", 200): 1}, 0, "1 thread-304 answered 200"),
        ({("submit", 429): 2}, 0, "2 submit answered 429"),
        ({("unknown", 200): 1}, 0, "1 unknown answered 200"),
        ({}, 3, "3 socket errors"),
    ],
)
def test_a_run_with_an_unexpected_answer_has_a_problem(
    answered: dict[tuple[str, int], int], socket_errors: int, problem: str
) -> None:
    tally = Tally(
        Counter({"thread": 100, "thread-304": 10, "submit": 10}),
        Counter({("thread", 200): 100, ("thread-304", 304): 9, ("submit", 201): 8})
        + Counter(answered),
    )
    requests = sum(tally.answered.values())

    assert problem in memory.run_problems(tally, wrk_run(requests, socket_errors), connections=8)


def test_a_run_whose_answers_do_not_add_up_has_a_problem() -> None:
    tally = Tally(Counter({"thread": 5_000}), Counter({("thread", 200): 4_980}))

    problems = memory.run_problems(tally, wrk_run(4_981), connections=8)

    assert problems == [
        "4,980 answers counted by kind, 4,981 by wrk",
        "20 requests without an answer (8 in flight at most)",
    ]
    more = Tally(Counter({"thread": 10}), Counter({("thread", 200): 11}))
    assert "11 answers to 10 thread requests" in memory.run_problems(more, wrk_run(11), 8)


def test_next_run_is_whole_seconds_enough_for_the_requests_left() -> None:
    assert memory.next_run_seconds(1_000_000, None) == 10
    assert memory.next_run_seconds(500_000, 1_500.0) == 10
    assert memory.next_run_seconds(4_000, 1_500.0) == 3
    assert memory.next_run_seconds(10, 1_500.0) == 1


def test_mix_parses_kinds_and_parts() -> None:
    assert memory.parse_mix("thread=45,submit=3,readyz=0") == {"thread": 45, "submit": 3}
    assert memory.parse_mix(memory.mix_text(memory.DEFAULT_MIX)) == memory.DEFAULT_MIX
    assert sum(memory.DEFAULT_MIX.values()) == 100
    for bad in ("thread=x", "threads=4", "thread=0", "thread"):
        with pytest.raises(ValueError):
            memory.parse_mix(bad)


def test_pages_are_numbered_as_the_queue_database_seeds_them() -> None:
    plan = load_data.queue_plan(10)
    for number in (0, 1, 4, 5, 777, len(plan.pages) - 1):
        site, key = memory.page_of(number)
        assert (plan.sites[plan.pages[number][0]], plan.pages[number][1]) == (site, key)
    assert len(plan.pages) == len(memory.SITES) * memory.PAGES_PER_SITE
