"""The load and peer benchmarks' own arithmetic (benchmarks/load, benchmarks/peers): which
servers log at which level, how many runs a database run plans for its time budget, and how
measurements become the targets tables' verdicts. A verdict is only worth what this
arithmetic is, and a full run takes many minutes, so it is tested here on made-up
measurements."""

from __future__ import annotations

import argparse
from collections import Counter

import pytest

from benchmarks.load.bench import Measurement
from benchmarks.load.procstat import CpuUse
from benchmarks.load.run import DEFAULT_LOG_LEVEL, TARGETS, planned_runs, rate_limit_variables
from benchmarks.load.sections import (
    NOT_MEASURED,
    PEER_TARGETS,
    logging_section,
    scale_section,
    targets_section,
)
from benchmarks.load.workloads import (
    AT_SCALE,
    BESIDE,
    MAIN,
    QUIET,
    ROUNDS,
    Workload,
    workloads,
    workloads_by_key,
)
from benchmarks.load.wrk import WrkRun
from benchmarks.peers.report import targets_section as peer_targets_section
from benchmarks.peers.run import PairResult
from benchmarks.peers.workloads import COMMENTSVC, ISSO, SERVERS, pairs


def measured(
    key: str, rps: float, p99_ms: float = 5.0, cpu_app: float = 1.0, others: float = 0.0
) -> Measurement:
    """A measurement of workload ``key`` (of either benchmark) with these figures, others
    taking ``others`` of the CPUs meanwhile."""
    known = workloads_by_key()
    workload = known.get(key) or Workload(key, key, "commentsvc", "/")
    requests = int(rps * 10)
    run = WrkRun(requests, 10.0, rps, p99_ms / 2, p99_ms, 0, 0, Counter({200: requests}))
    return Measurement(workload, run, 0.5, CpuUse(cpu_app, 0.0, 0.5, others), [run])


def rows_of(lines: list[str]) -> dict[str, list[str]]:
    """A Markdown table's rows by their first cell."""
    rows = [line.strip("| ").split(" | ") for line in lines if line.startswith("| ")]
    return {row[0]: row for row in rows[1:]}


def options(*only: str) -> argparse.Namespace:
    return argparse.Namespace(only=set(only), profile=set())


# --- which server logs at which level ------------------------------------------------------


def test_every_commentsvc_server_but_the_quiet_one_logs_at_the_default_level() -> None:
    levels = {name: level for name, (app, _, level, _) in TARGETS.items() if app == "wsgi"}
    assert DEFAULT_LOG_LEVEL == "INFO"
    assert levels.pop("reads-quiet") == "WARNING"
    assert set(levels.values()) == {"INFO"}


def test_main_table_keys_name_workloads_on_known_servers() -> None:
    known = workloads_by_key()
    assert set(MAIN) - set(known) == {"ceiling-end"}
    assert all(workload.server in TARGETS for workload in known.values())
    assert known[QUIET].server == "reads-quiet"
    assert QUIET not in BESIDE and {"fragment", "thread-304", "counts"} <= BESIDE


def test_the_fragment_workload_asks_for_the_100_comment_page_as_html() -> None:
    by_key = {w.key: w for w in workloads({}, '"thread"', "run", '"fragment"')}
    fragment, not_modified = by_key["fragment"], by_key["fragment-304"]
    assert fragment.path == "/sites/bench/thread.html?page=%2Fthread%2F100"
    assert (fragment.expected, fragment.content_type) == (frozenset({200}), "text/html")
    assert not_modified.headers == ('If-None-Match: "fragment"',)
    assert not_modified.expected == frozenset({304})
    assert by_key[QUIET].headers == by_key["thread-304"].headers == ('If-None-Match: "thread"',)


def test_the_workloads_on_1m_comments_ask_what_their_counterparts_on_reads_ask() -> None:
    by_key = {w.key: w for w in workloads({}, "", "run")}
    counts, counts_1m = by_key["counts"], by_key["counts-1m"]
    assert (counts.server, counts_1m.server) == ("reads", "queue")
    assert counts_1m.path.startswith("/api/v1/sites/bench/counts?page=/article/0000&page=")
    assert counts_1m.path.count("page=") == counts.path.count("page=") == 20
    guarded, guarded_1m = by_key["submit-guarded"], by_key["submit-guarded-1m"]
    assert TARGETS[guarded_1m.server] == ("wsgi", "queue", DEFAULT_LOG_LEVEL, "database")
    assert TARGETS[guarded.server][3] == "database"
    assert guarded_1m.path == "/api/v1/sites/bench/comments"
    assert guarded_1m.like_widget and guarded.like_widget
    assert (guarded_1m.expected, guarded_1m.submit_tag) == (
        frozenset({201}),
        "run.submit.guarded.1m",
    )
    assert {by_key[near].server for near in AT_SCALE.values()} == {"reads", "reads-guarded"}
    # The submissions check finds a workload's pages by the prefix /load/<tag>-; the rounds
    # on reads add ".rounds" to their workload's tag.
    tags = [w.submit_tag for w in by_key.values() if w.submit_tag]
    tags += [f"{tag}.rounds" for near in AT_SCALE.values() if (tag := by_key[near].submit_tag)]
    assert len(set(tags)) == len(tags)
    assert not any(a != b and a.startswith(f"{b}-") for a in tags for b in tags)


def test_rate_limits_count_in_the_database_unless_given_a_storage() -> None:
    assert "COMMENTSVC_RATELIMIT_STORAGE_URI" not in rate_limit_variables()
    in_redis = rate_limit_variables("redis://127.0.0.1:1/0")
    assert in_redis["COMMENTSVC_RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:1/0"
    assert in_redis["COMMENTSVC_RATELIMIT_ENABLED"] == "true"


# --- the runs a database run plans for ------------------------------------------------------


@pytest.mark.parametrize(
    ("only", "runs"),
    [
        # the ceiling at the start and at the end, one ceiling beside, the workload
        (("fragment",), 4),
        # the ceiling twice, and both servers in each round
        ((QUIET,), 2 + 2 * ROUNDS),
        # and the INFO 304 on its own, beside a ceiling
        (("thread-304", QUIET), 2 + 2 + 2 * ROUNDS),
        # two thread sizes in rounds, no ceiling beside them
        (("thread-10", "thread-100000"), 2 + 2 * ROUNDS),
        # counts on both databases in each round
        (("counts-1m",), 2 + 2 * ROUNDS),
        # and counts on reads on its own, beside a ceiling; submit alike
        (("counts", "counts-1m", "submit-guarded", "submit-guarded-1m"), 2 + 2 * (2 + 2 * ROUNDS)),
    ],
)
def test_planned_runs_count_every_measurement(only: tuple[str, ...], runs: int) -> None:
    assert planned_runs(options(*only)) == runs


# --- the load benchmark's targets ------------------------------------------------------------


def test_load_targets_give_a_verdict_for_each_target_measured() -> None:
    m = {
        "ceiling": measured("ceiling", 10_000),
        "thread": measured("thread", 7_000),
        "thread-304": measured("thread-304", 7_490, others=0.3),
        "fragment": measured("fragment", 6_000),
        "submit-guarded": measured("submit-guarded", 900, p99_ms=20.0),
        "submit-guarded-redis": measured("submit-guarded-redis", 700, p99_ms=31.0),
        "thread-10": measured("thread-10", 5_500),
        "thread-100000": measured("thread-100000", 5_000),
        "thread-10-limit10": measured("thread-10-limit10", 6_000),
        "thread-100000-limit10": measured("thread-100000-limit10", 4_000),
        "queue-1m": measured("queue-1m", 500, p99_ms=29.0),
        "queue-all-1m": measured("queue-all-1m", 500, p99_ms=31.0),
    }
    beside = {"counts": measured("ceiling", 10_000, others=0.2)}
    rows = rows_of(targets_section(m, lambda key: 10_000.0, beside=beside))
    verdicts = {target: row[2] for target, row in rows.items()}
    assert verdicts["thread read, 100-comment page >= 60% of the ceiling"] == "met"
    assert rows["thread read, 100-comment page >= 60% of the ceiling"][1] == (
        "70.0% (7,000 of 10,000 req/s)"
    )
    # Just under the line, and said to be from a noisy run.
    assert rows["thread read, 304 (If-None-Match) >= 75% of the ceiling"][1:] == [
        "74.9% (7,490 of 10,000 req/s); noisy: others took 30% of the CPUs",
        "**missed**",
    ]
    fragment = "thread.html, the server-rendered thread of that page >= 60% of the ceiling"
    assert verdicts[fragment] == "met"
    assert rows["counts of 20 pages >= 50% of the ceiling"][1:] == [NOT_MEASURED, "-"]
    m["counts"] = measured("counts", 5_000)
    rows = rows_of(targets_section(m, lambda key: 10_000.0, beside=beside))
    # The ceiling's run beside it was noisy: so is the share.
    assert rows["counts of 20 pages >= 50% of the ceiling"][1:] == [
        "50.0% (5,000 of 10,000 req/s); noisy: others took 20% of the CPUs",
        "met",
    ]
    guarded = [row for target, row in rows.items() if target.startswith("submit, every")]
    assert [row[2] for row in guarded] == ["met", "**missed**"]
    scale = [row for target, row in rows.items() if target.startswith("first page of a 100k")]
    assert [row[1].split()[0] for row in scale] == ["1.10x", "1.50x"]
    assert [row[2] for row in scale] == ["met", "**missed**"]
    queue = [row[2] for target, row in rows.items() if target.startswith("queue p99")]
    assert queue == ["**missed**", "met"]  # all statuses 31 ms, pending 29 ms
    flat = [row for target, row in rows.items() if " flat as the data grows" in target]
    assert [row[1:] for row in flat] == [[NOT_MEASURED, "-"]] * 2
    for target in PEER_TARGETS:
        assert rows[target][2] == "-"


def flat_rows(at_scale: dict[str, tuple[Measurement, Measurement]]) -> list[list[str]]:
    """The rows of the targets "counts flat" and "submit flat", in that order."""
    m = {key: far for key, (_, far) in at_scale.items()} or {"thread": measured("thread", 1)}
    rows = rows_of(targets_section(m, lambda key: 10_000.0, at_scale=at_scale))
    return [row for target, row in rows.items() if " flat as the data grows" in target]


def test_counts_and_submit_flat_when_1m_comments_cost_at_most_a_fifth_more() -> None:
    counts, submit = flat_rows(
        {
            "counts-1m": (measured("counts", 5_000), measured("counts-1m", 4_200)),
            "submit-guarded-1m": (
                measured("submit-guarded", 1_000, p99_ms=20.0),
                measured("submit-guarded-1m", 1_100, p99_ms=23.9, others=0.25),
            ),
        }
    )
    assert counts[0].startswith("counts flat as the data grows")
    assert counts[1:] == ["1.19x (5,000 -> 4,200 req/s, p50 2.50 -> 2.50 ms)", "met"]
    # Faster on 1M is flat too; the 1M run was noisy, and says so.
    assert submit[0].startswith("submit flat as the data grows")
    assert submit[1:] == [
        "p99 1.19x (20.0 -> 23.9 ms), time per request 0.91x (1,000 -> 1,100 req/s);"
        " noisy: others took 25% of the CPUs",
        "met",
    ]


@pytest.mark.parametrize(
    ("rps_1m", "p99_1m", "verdicts"),
    [
        # counts and submit's throughput a quarter slower on 1M
        (800, 20.0, ["**missed**", "**missed**"]),
        # submit's p99 a quarter longer, its throughput flat
        (1_000, 25.0, ["met", "**missed**"]),
    ],
)
def test_counts_and_submit_not_flat_when_1m_comments_cost_more(
    rps_1m: float, p99_1m: float, verdicts: list[str]
) -> None:
    rows = flat_rows(
        {
            "counts-1m": (measured("counts", 1_000), measured("counts-1m", rps_1m)),
            "submit-guarded-1m": (
                measured("submit-guarded", 1_000, p99_ms=20.0),
                measured("submit-guarded-1m", rps_1m, p99_ms=p99_1m),
            ),
        }
    )
    assert [row[2] for row in rows] == verdicts


def test_counts_and_submit_flat_not_measured_without_their_workloads() -> None:
    only_counts = {"counts-1m": (measured("counts", 5_000), measured("counts-1m", 5_000))}
    assert [row[2] for row in flat_rows(only_counts)] == ["met", "-"]
    assert [row[1:] for row in flat_rows({})] == [[NOT_MEASURED, "-"]] * 2


def test_the_scale_table_of_counts_and_submit_compares_each_with_reads() -> None:
    at_scale = {
        "submit-guarded-1m": (
            measured("submit-guarded", 1_000, p99_ms=20.0),
            measured("submit-guarded-1m", 800, p99_ms=30.0),
        )
    }
    lines = scale_section({}, "CPU ms/req", 0.10, at_scale)
    assert "### Scale: counts and submit" in lines
    rows = [line.strip("| ").split(" | ") for line in lines if line.startswith("| ")][1:]
    assert [row[1] for row in rows] == ["reads (~109,000)", "queue (1,000,000)"]
    assert [row[7:9] for row in rows] == [["", ""], ["1.25x", "1.50x"]]
    assert scale_section({}, "CPU ms/req", 0.10, {}) == []


def test_a_run_of_the_ceiling_alone_has_no_targets_table() -> None:
    assert targets_section({"ceiling": measured("ceiling", 9_000)}, lambda key: 9_000.0) == []


def test_the_targets_say_how_a_run_differs_from_their_conditions() -> None:
    lines = targets_section(
        {"thread": measured("thread", 5_000)}, lambda key: 9_000.0, ["PostgreSQL: compare."]
    )
    assert "PostgreSQL: compare." in lines


def test_logging_section_reads_info_against_warning() -> None:
    rounds = [
        (measured("thread-304", 900, cpu_app=3.0), measured(QUIET, 1_000, cpu_app=2.0))
        for _ in range(ROUNDS)
    ]
    text = logging_section(rounds)[0]
    assert "throughput at INFO -10%" in text
    assert "1,000 -> 900 req/s" in text


# --- the peer benchmark's targets ------------------------------------------------------------


def pair_result(key: str, ours: float, theirs: float, p99_ms: float = 5.0) -> PairResult:
    pair = next(pair for pair in pairs("run") if pair.key == key)
    result = PairResult(pair, None)
    result.rounds = [(measured(key, ours, p99_ms), measured(key, theirs)) for _ in range(3)]
    return result


def test_peer_targets_hold_each_pair_to_its_ratio() -> None:
    results = [
        pair_result("thread-50", 4_000, 90),
        pair_result("counts", 3_500, 2_900),
        pair_result("submit", 700, 450),
        pair_result("submit-guarded", 1_900, 450, p99_ms=30.0),
    ]
    lines = peer_targets_section(results)
    rows = [line.strip("| ").split(" | ") for line in lines if line.startswith("| ")][1:]
    by_target = {(row[0], row[1]): (row[2], row[3]) for row in rows}
    labels = {result.pair.key: result.pair.label for result in results}
    assert by_target[(labels["thread-50"], "faster than Isso (> 1x)")][1] == "met"
    assert by_target[(labels["counts"], ">= 2x Isso's")] == (
        "1.21x (3,500 / 2,900 req/s)",
        "**missed**",
    )
    assert by_target[(labels["submit"], "faster than Isso (> 1x)")][1] == "met"
    assert by_target[(labels["submit-guarded"], ">= 4x Isso's submit")][1] == "met"
    assert by_target[(labels["submit-guarded"], "commentsvc p99 <= 25 ms")] == (
        "p99 30.0 ms",
        "**missed**",
    )
    assert not any("This run differs" in line for line in lines)
    assert any("This run differs (3 workers" in line for line in peer_targets_section(results, 3))


def test_the_guarded_peer_pair_posts_as_the_widget_to_the_guarded_site() -> None:
    by_key = {pair.key: pair for pair in pairs("run")}
    ours = by_key["submit-guarded"].workloads[COMMENTSVC]
    theirs = by_key["submit-guarded"].workloads[ISSO]
    assert (ours.server, ours.like_widget) == ("commentsvc-guarded", True)
    assert ours.path == "/api/v1/sites/guarded/comments"
    assert theirs.path == by_key["submit"].workloads[ISSO].path
    assert {w.server for pair in by_key.values() for w in pair.workloads} == set(SERVERS)
    tags = [w.submit_tag for pair in by_key.values() for w in pair.workloads if w.submit_tag]
    # The submissions check finds a workload's pages by the prefix /load/<tag>-.
    assert len(set(tags)) == 4
    assert not any(a != b and a.startswith(f"{b}-") for a in tags for b in tags)
