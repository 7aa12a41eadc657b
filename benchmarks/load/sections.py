"""The sections of a report below its main table, and the cells every table is made of."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from benchmarks import load_data
from benchmarks.load.bench import Measurement
from benchmarks.load.profiles import Profile
from benchmarks.load.workloads import GUARDED, ROUNDS
from commentsvc import PROJECT_ROOT

CIRCUMSTANCES = ["load avg", "others"]
#: Submissions with every abuse rule on keep at least this share of plain submit's throughput.
GUARDED_MINIMUM = 0.85


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def figures(measurement: Measurement) -> list[str]:
    """Requests per second, p50, p99 and errors."""
    run = measurement.run
    return [f"{run.rps:,.0f}", f"{run.p50_ms:.2f}", f"{run.p99_ms:.2f}", f"{measurement.errors:,}"]


def cpu(measurement: Measurement) -> str:
    """Server CPU ms per request; on PostgreSQL, the application's plus the database's."""
    use = measurement.cpu
    if not use.database:
        return f"{measurement.cpu_ms:.2f}"
    requests = max(measurement.run.requests, 1)
    return f"{use.app / requests * 1000:.2f} + {use.database / requests * 1000:.2f}"


def circumstances(measurement: Measurement, max_noise: float) -> list[str]:
    """The load average at the start and the share of the CPUs others took."""
    share = measurement.cpu.others_share
    noisy = " (noisy)" if share > max_noise else ""
    return [f"{measurement.load_average:.2f}", f"{share:.0%}{noisy}"]


def ratio(value: float, base: float) -> str:
    """``value`` as a percentage of ``base``."""
    return f"{value / base:.0%}" if base else "-"


def guarded_share(
    m: dict[str, Measurement], key: str, ceiling_of: Callable[[str], float]
) -> float | None:
    """The throughput of guarded workload ``key`` as a share of plain submit's, each taken as
    a share of the ceiling measured right before it (so the machine's drift cancels out)."""
    if key not in m or "submit" not in m or not ceiling_of(key) or not ceiling_of("submit"):
        return None
    submit = m["submit"].run.rps / ceiling_of("submit")
    return m[key].run.rps / ceiling_of(key) / submit if submit else None


def protection_section(
    m: dict[str, Measurement], cpu_header: str, ceiling_of: Callable[[str], float]
) -> list[str]:
    """What the abuse rules cost a submission: the guarded submit workloads against plain
    submit."""
    guarded = [key for key in GUARDED if key in m]
    if "submit" not in m or not guarded:
        return []
    submit = m["submit"]
    rows = [
        [
            m[key].workload.label,
            *figures(m[key])[:3],
            ratio(m[key].run.rps, submit.run.rps),
            f"{share:.0%}" if (share := guarded_share(m, key, ceiling_of)) is not None else "-",
            cpu(m[key]),
            ratio(submit.total_cpu_ms, m[key].total_cpu_ms),
        ]
        for key in ("submit", *guarded)
    ]
    header = ["workload", "req/s", "p50", "p99", "vs submit", "vs submit, by ceiling"]
    return [
        "",
        "### Abuse protection: what it costs a submission",
        "",
        "Plain *submit* posts as an API client does, to a site without a blocklist, rate limits"
        " off. The others post as the widget does (an `Idempotency-Key` of their own and"
        " `fill_ms` with each request) to a site with a blocklist of"
        f" {load_data.BLOCKLIST_ENTRIES:,} entries of every kind (none matching), rate"
        " limits on (a limit never reached: every request is counted, none refused), the"
        " counters in the database or in Redis. *vs submit*: requests per second as a share of"
        " submit's; *by ceiling*: the same with each as a share of the ceiling measured right"
        " before it, so that the machine's drift cancels out; *by CPU*: submit's CPU time per"
        " request (server, database and wrk; Redis counts as database) as a share of this"
        f" one's. Target: at least {GUARDED_MINIMUM:.0%} of submit.",
        "",
        *table([*header, cpu_header, "by CPU"], rows),
    ]


def spread_section(repeats: dict[str, list[Measurement]]) -> list[str]:
    """How much runs of one and the same workload differed: the noise floor of this run."""
    spreads = {
        key: max(m.run.rps for m in runs) / min(m.run.rps for m in runs) - 1
        for key, runs in repeats.items()
        if len(runs) > 1 and min(m.run.rps for m in runs) > 0
    }
    if not spreads:
        return []
    widest = max(spreads, key=lambda key: spreads[key])
    return [
        "",
        f"Run-to-run spread: {len(spreads)} workloads were measured more than once in this run"
        f" (the ceiling at the start, before each workload and at the end; the rounds below);"
        " the fastest run of one"
        f" was {statistics.median(spreads.values()):.0%} faster than its slowest (median over"
        f" the workloads), {spreads[widest]:.0%} at most ({widest}). Differences of that order"
        " between single runs are noise of this machine, not of the code.",
    ]


def logging_section(rounds: Sequence[tuple[Measurement, Measurement]]) -> list[str]:
    """What request logging at INFO costs, from the alternating rounds."""
    throughput = statistics.median(info.run.rps / warning.run.rps - 1 for warning, info in rounds)
    cpu_us = statistics.median((info.cpu_ms - warning.cpu_ms) * 1000 for warning, info in rounds)
    each = "; ".join(
        f"{warning.run.rps:,.0f} -> {info.run.rps:,.0f} req/s,"
        f" {warning.cpu_ms:.2f} -> {info.cpu_ms:.2f} ms CPU/req"
        for warning, info in rounds
    )
    return [
        "Request logging at INFO (one JSON line per request on standard error, here into a"
        f" file), measured on the 304 workload in {len(rounds)} alternating rounds against a"
        " second server with logs at WARNING: throughput"
        f" {throughput:+.0%}, server CPU {cpu_us:+,.0f} µs per request (medians; rounds: {each})."
        " The INFO row above is the median round."
    ]


def scale_section(m: dict[str, Measurement], cpu_header: str, max_noise: float) -> list[str]:
    """How the first page of a thread and the moderation queue do as the data grows."""
    return _thread_scale(m, cpu_header, max_noise) + _queue_scale(m, cpu_header, max_noise)


def _thread_scale(m: dict[str, Measurement], cpu_header: str, max_noise: float) -> list[str]:
    """The first page of threads of 10 to 100,000 comments."""
    rows = []
    for limit in ("", "-limit10"):
        base = m.get(f"thread-10{limit}")
        for count in load_data.SCALE_PAGES:
            measurement = m.get(f"thread-{count}{limit}")
            if measurement is None:
                continue
            rows.append(
                [
                    "limit=10" if limit else "as the widget asks (page size 50)",
                    f"{count:,}",
                    *figures(measurement),
                    cpu(measurement),
                    f"{base.run.rps / measurement.run.rps:.2f}x" if base else "-",
                    *circumstances(measurement, max_noise),
                ]
            )
    if not rows:
        return []
    header = ["request", "comments on the page", "req/s", "p50", "p99", "errors"]
    header += [cpu_header, "time vs 10-comment page", *CIRCUMSTANCES]
    return [
        "",
        "### Scale: first page of a thread",
        "",
        f"Each figure is the median (by throughput) of {ROUNDS} runs taken in interleaved"
        " rounds, so that a change of the machine meanwhile falls on every page size alike.",
        "",
        *table(header, rows),
    ]


def _queue_scale(m: dict[str, Measurement], cpu_header: str, max_noise: float) -> list[str]:
    """The moderation queue's first page on 109,000 and 1,000,000 comments."""
    rows = []
    for key, label in (("queue-all", "first page, all statuses"), ("queue", "status=pending")):
        for suffix, size in (("", "reads (~109,000)"), ("-1m", "queue (1,000,000)")):
            measurement = m.get(f"{key}{suffix}")
            if measurement is not None:
                rows.append(
                    [
                        label,
                        size,
                        *figures(measurement),
                        cpu(measurement),
                        *circumstances(measurement, max_noise),
                    ]
                )
    if not rows:
        return []
    header = ["request", "comments in the database", "req/s", "p50", "p99", "errors"]
    return [
        "",
        "### Scale: moderation queue",
        "",
        *table([*header, cpu_header, *CIRCUMSTANCES], rows),
    ]


def targets_section(m: dict[str, Measurement], ceiling_of: Callable[[str], float]) -> list[str]:
    """Each target the measurements can be held against, met or missed."""
    rows = _ceiling_targets(m, ceiling_of) + _scale_targets(m)
    if not rows:
        return []
    return ["", "### Targets", "", *table(["target", "measured", "verdict"], rows)]


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _ceiling_targets(
    m: dict[str, Measurement], ceiling_of: Callable[[str], float]
) -> list[list[str]]:
    """Throughput as a share of the ceiling's."""

    def share(key: str) -> float:
        ceiling = ceiling_of(key)
        return m[key].run.rps / ceiling if key in m and ceiling else 0.0

    rows = []
    if "submit" in m:
        p99 = m["submit"].run.p99_ms
        rows.append(
            [
                "submit >= 50% of the ceiling, p99 <= 20 ms",
                f"{share('submit'):.0%}, p99 {p99:.1f} ms",
                _verdict(share("submit") >= 0.5 and p99 <= 20),
            ]
        )
    for key in GUARDED:
        guarded = guarded_share(m, key, ceiling_of)
        if guarded is not None:
            rows.append(
                [
                    f"{m[key].workload.label}: >= {GUARDED_MINIMUM:.0%} of submit (by ceiling)",
                    f"{guarded:.0%}",
                    _verdict(guarded >= GUARDED_MINIMUM),
                ]
            )
    for key, label, minimum in (("thread", "thread read", 0.6), ("thread-304", "304", 0.8)):
        if key in m:
            rows.append(
                [
                    f"{label} >= {minimum:.0%} of the ceiling",
                    f"{share(key):.0%}",
                    _verdict(share(key) >= minimum),
                ]
            )
    return rows


def _scale_targets(m: dict[str, Measurement]) -> list[list[str]]:
    """Latencies that must not grow with the data."""
    rows = []
    for limit, label in (("", "as the widget asks"), ("-limit10", "limit=10")):
        small, large = m.get(f"thread-10{limit}"), m.get(f"thread-100000{limit}")
        if small and large:
            slower = small.run.rps / large.run.rps
            rows.append(
                [
                    f"first page of a 100k thread within 1.2x of a 10-comment thread ({label})",
                    f"{slower:.2f}x (p50 {small.run.p50_ms:.2f} -> {large.run.p50_ms:.2f} ms)",
                    _verdict(slower <= 1.2),
                ]
            )
    for key, label in (("queue-all-1m", "first page"), ("queue-1m", "status=pending")):
        if key in m:
            p99 = m[key].run.p99_ms
            rows.append(
                [f"queue p99 <= 30 ms at 1M rows ({label})", f"{p99:.1f} ms", _verdict(p99 <= 30)]
            )
    return rows


def profile_section(prof: Profile) -> list[str]:
    """Where a profiled workload's samples fall, by function and by package."""
    lines = [
        "",
        f"### Profile: {prof.workload.label}",
        "",
        f"py-spy, all workers, {prof.samples:,} samples; raw stacks in"
        f" `{prof.raw.relative_to(PROJECT_ROOT)}`. Share of the samples in which a function is"
        " on the stack (gunicorn's own frames above the request left out), and the share of"
        " samples by the package of the function running (own time):",
        "",
    ]
    rows = []
    for number in range(max(len(prof.inclusive), len(prof.packages))):
        row = ["", "", "", ""]
        if number < len(prof.inclusive):
            function, share = prof.inclusive[number]
            row[:2] = [f"{share:.1f}%", f"`{function}`"]
        if number < len(prof.packages):
            package, share = prof.packages[number]
            row[2:] = [f"{share:.1f}%", package]
        rows.append(row)
    return lines + table(["inclusive", "function", "own", "package"], rows)
