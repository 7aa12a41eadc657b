"""The sections of a report below its main table, and the cells every table is made of."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence

from benchmarks import load_data
from benchmarks.load.bench import Measurement
from benchmarks.load.profiles import Profile
from benchmarks.load.workloads import AT_SCALE, GUARDED, ROUNDS
from commentsvc import PROJECT_ROOT

CIRCUMSTANCES = ["load avg", "others"]
#: The sizes of the databases, as the scale tables name them.
READS_SIZE, QUEUE_SIZE = "reads (~109,000)", "queue (1,000,000)"
#: The median rounds (on ``reads``, on ``queue``) of each workload of ``AT_SCALE``, by key.
AtScale = Mapping[str, tuple[Measurement, Measurement]]
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
    """What request logging at INFO, the default, costs, from the alternating rounds of the
    304 workload at INFO and at WARNING."""
    throughput = statistics.median(info.run.rps / quiet.run.rps - 1 for info, quiet in rounds)
    cpu_us = statistics.median((info.cpu_ms - quiet.cpu_ms) * 1000 for info, quiet in rounds)
    each = "; ".join(
        f"{quiet.run.rps:,.0f} -> {info.run.rps:,.0f} req/s,"
        f" {quiet.cpu_ms:.2f} -> {info.cpu_ms:.2f} ms CPU/req"
        for info, quiet in rounds
    )
    return [
        "Request logging at INFO, the service's default and the level of every other"
        " commentsvc row (one JSON line per request on standard error, here into a file),"
        f" measured on the 304 workload in {len(rounds)} alternating rounds against a second"
        " server with logs at WARNING (no line per request): throughput at INFO"
        f" {throughput:+.0%}, server CPU {cpu_us:+,.0f} µs per request (medians; rounds,"
        f" WARNING -> INFO: {each}). The WARNING row above is its median round; the INFO"
        " row of the 304 is its own run beside a ceiling."
    ]


def scale_section(
    m: dict[str, Measurement], cpu_header: str, max_noise: float, at_scale: AtScale | None = None
) -> list[str]:
    """How the first page of a thread, the moderation queue, the counts and submissions do
    as the data grows."""
    return (
        _thread_scale(m, cpu_header, max_noise)
        + _queue_scale(m, cpu_header, max_noise)
        + _counts_submit_scale(at_scale or {}, cpu_header, max_noise)
    )


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
        for suffix, size in (("", READS_SIZE), ("-1m", QUEUE_SIZE)):
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


def _counts_submit_scale(at_scale: AtScale, cpu_header: str, max_noise: float) -> list[str]:
    """The counts of 20 pages and submissions with every abuse rule on, on ``reads`` and on
    ``queue``, from their rounds."""
    rows = []
    for key in AT_SCALE:
        if key not in at_scale:
            continue
        near, far = at_scale[key]
        for size, measurement, compared in ((READS_SIZE, near, False), (QUEUE_SIZE, far, True)):
            slower = f"{near.run.rps / far.run.rps:.2f}x" if compared and far.run.rps else ""
            p99 = f"{far.run.p99_ms / near.run.p99_ms:.2f}x" if compared and near.run.p99_ms else ""
            rows.append(
                [
                    measurement.workload.label,
                    size,
                    *figures(measurement),
                    cpu(measurement),
                    slower,
                    p99,
                    *circumstances(measurement, max_noise),
                ]
            )
    if not rows:
        return []
    header = ["request", "comments in the database", "req/s", "p50", "p99", "errors"]
    header += [cpu_header, "time vs reads", "p99 vs reads", *CIRCUMSTANCES]
    return [
        "",
        "### Scale: counts and submit",
        "",
        "The same request on both databases, in the same shape. Counts: 20 pages of the site"
        " `bench`, on `reads` pages of 1 to 20 approved comments, on `queue` pages of its"
        " busiest site from its busiest (about 7,000 approved of 10,000) to one of its quietest"
        " (about 40 of 50); on SQLite each worker keeps the answer until something commits,"
        " so there the pages are read once per worker. Submissions as the widget sends them,"
        " rate limits on and counted in"
        f" the database, to a site with a blocklist of {load_data.BLOCKLIST_ENTRIES:,} entries:"
        " on `reads` `guarded`, which has no comments, on `queue` `bench`, which has about"
        " 207,000 (the 100,000 delivered outbox events of the issue's scale are not seeded: a"
        " submission only appends one). Each figure is the median (by throughput) of"
        f" {ROUNDS} runs taken in rounds alternating between the two databases, both servers"
        " up, so that a change of the machine meanwhile falls on both alike. *time vs reads*:"
        " requests per second on `reads` over those on `queue`; *p99 vs reads*: the p99 on"
        " `queue` over the one on `reads`.",
        "",
        *table(header, rows),
    ]


#: Issue 18's targets of throughput, as a share of the ceiling measured beside the workload:
#: key, what is measured, the least share.
CEILING_TARGETS = (
    ("counts", "counts of 20 pages", 0.50),
    ("thread", "thread read, 100-comment page", 0.60),
    ("fragment", "thread.html, the server-rendered thread of that page", 0.60),
    ("thread-304", "thread read, 304 (If-None-Match)", 0.75),
)
#: The p99 submissions with every abuse rule on may take, in ms.
GUARDED_P99_MS = 25.0
#: How much slower the first page of a 100,000-comment thread may be than a 10-comment one's.
SCALE_SLOWER = 1.2
#: The p99 of the moderation queue on 1,000,000 comments, in ms.
QUEUE_P99_MS = 30.0
#: Targets against Isso, which the peer benchmark (``benchmarks.peers``) judges.
PEER_TARGETS = (
    "counts of 20 pages >= 2x Isso's",
    "submit with every abuse rule on >= 4x Isso's submit",
)
NOT_MEASURED = "not measured by this run"


def targets_section(
    m: dict[str, Measurement],
    ceiling_of: Callable[[str], float],
    conditions: Sequence[str] = (),
    max_noise: float = 0.10,
    beside: Mapping[str, Measurement] | None = None,
    at_scale: AtScale | None = None,
) -> list[str]:
    """Issue 18's targets, each with what this run measured and the verdict: met, missed, or
    "-" where this run did not measure it (the workload was not selected), so that the table
    always lists every target. ``conditions``:
    sentences on how this run differs from the targets' own conditions, if it does; a figure
    from a run in which others took more than ``max_noise`` of the CPUs says so (the
    workload's, or the ceiling's run ``beside`` it, by workload), since its verdict is then
    the machine's as much as the service's."""
    if not any(key not in ("ceiling", "ceiling-end") for key in m):
        return []
    rows = _ceiling_targets(m, ceiling_of, max_noise, beside or {})
    rows += _guarded_targets(m, ceiling_of, max_noise)
    rows += _scale_targets(m, max_noise)
    rows += _flat_targets(at_scale or {}, max_noise)
    rows += [
        [target, "judged by the peer benchmark's report (`python -m benchmarks.peers`)", "-"]
        for target in PEER_TARGETS
    ]
    return [
        "",
        "### Targets",
        "",
        "Issue 18's targets, defined on SQLite, 2 gunicorn workers, 8 connections, commentsvc"
        " logging at INFO (its default: one JSON line per request). A share of the ceiling is"
        " the workload's requests per second over those of the ceiling measured right before"
        " it.",
        *(["", *conditions] if conditions else []),
        "",
        *table(["target", "measured", "verdict"], rows),
    ]


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _noise(max_noise: float, *measurements: Measurement) -> str:
    """What the figures of a target row owe to others on the machine, if anything: the
    largest share of the CPUs others took in the runs they come from."""
    share = max(measurement.cpu.others_share for measurement in measurements)
    return f"; noisy: others took {share:.0%} of the CPUs" if share > max_noise else ""


def _ceiling_targets(
    m: dict[str, Measurement],
    ceiling_of: Callable[[str], float],
    max_noise: float,
    beside: Mapping[str, Measurement],
) -> list[list[str]]:
    """Throughput as a share of the ceiling's."""
    rows = []
    for key, label, minimum in CEILING_TARGETS:
        target = f"{label} >= {minimum:.0%} of the ceiling"
        ceiling = ceiling_of(key)
        if key not in m or not ceiling:
            rows.append([target, NOT_MEASURED, "-"])
            continue
        share = m[key].run.rps / ceiling
        # One decimal: a share just under the line must not print as on it.
        measured = f"{share:.1%} ({m[key].run.rps:,.0f} of {ceiling:,.0f} req/s)"
        ceiling_run = [beside[key]] if key in beside else []
        measured += _noise(max_noise, m[key], *ceiling_run)
        rows.append([target, measured, _verdict(share >= minimum)])
    return rows


def _guarded_targets(
    m: dict[str, Measurement], ceiling_of: Callable[[str], float], max_noise: float
) -> list[list[str]]:
    """The p99 of submissions with every abuse rule on (rate limits, a blocklist of 1,000
    entries, the duplicate check, the outbox event)."""
    rows = []
    for key in GUARDED:
        where = "Redis" if key.endswith("redis") else "the database"
        target = f"submit, every abuse rule on (limits in {where}): p99 <= {GUARDED_P99_MS:g} ms"
        if key not in m:
            rows.append([target, NOT_MEASURED, "-"])
            continue
        run = m[key].run
        ceiling = ceiling_of(key)
        share = f", {run.rps / ceiling:.1%} of the ceiling" if ceiling else ""
        measured = f"p99 {run.p99_ms:.1f} ms ({run.rps:,.0f} req/s{share})"
        measured += _noise(max_noise, m[key])
        rows.append([target, measured, _verdict(run.p99_ms <= GUARDED_P99_MS)])
    return rows


def _scale_targets(m: dict[str, Measurement], max_noise: float) -> list[list[str]]:
    """Throughput and latencies that must not fall or grow with the data."""
    rows = []
    for limit, label in (("", "as the widget asks"), ("-limit10", "limit=10")):
        target = (
            f"first page of a 100k thread within {SCALE_SLOWER:g}x of a 10-comment thread"
            f" ({label}; req/s of the 10 over req/s of the 100k)"
        )
        small, large = m.get(f"thread-10{limit}"), m.get(f"thread-100000{limit}")
        if not (small and large and large.run.rps):
            rows.append([target, NOT_MEASURED, "-"])
            continue
        rows.append(_slower_row(target, small, large, max_noise))
    for key, label in (("queue-all-1m", "first page, all statuses"), ("queue-1m", "pending")):
        target = f"queue p99 <= {QUEUE_P99_MS:g} ms at 1M comments ({label})"
        if key not in m:
            rows.append([target, NOT_MEASURED, "-"])
            continue
        p99 = m[key].run.p99_ms
        measured = f"p99 {p99:.1f} ms" + _noise(max_noise, m[key])
        rows.append([target, measured, _verdict(p99 <= QUEUE_P99_MS)])
    return rows


def _slower_row(target: str, near: Measurement, far: Measurement, max_noise: float) -> list[str]:
    """A target of time per request as the data grows: ``far`` (more data) at most
    :data:`SCALE_SLOWER` times slower than ``near``, with their throughput and p50."""
    slower = near.run.rps / far.run.rps
    measured = (
        f"{slower:.2f}x ({near.run.rps:,.0f} -> {far.run.rps:,.0f} req/s,"
        f" p50 {near.run.p50_ms:.2f} -> {far.run.p50_ms:.2f} ms)"
    ) + _noise(max_noise, near, far)
    return [target, measured, _verdict(slower <= SCALE_SLOWER)]


def _flat_targets(at_scale: AtScale, max_noise: float) -> list[list[str]]:
    """Counts and submissions on 1,000,000 comments against the same on ``reads``, from
    their rounds."""
    rows = []
    target = (
        "counts flat as the data grows: counts of 20 pages on 1M comments within"
        f" {SCALE_SLOWER:g}x of the time per request on `reads` (req/s on reads over req/s"
        " on 1M)"
    )
    counts = at_scale.get("counts-1m")
    if counts is None or not counts[1].run.rps:
        rows.append([target, NOT_MEASURED, "-"])
    else:
        rows.append(_slower_row(target, *counts, max_noise))
    target = (
        "submit flat as the data grows: submit with every abuse rule on (limits in the"
        f" database) on 1M comments, p99 and time per request within {SCALE_SLOWER:g}x of"
        " on `reads`"
    )
    submit = at_scale.get("submit-guarded-1m")
    if submit is None or not submit[1].run.rps or not submit[0].run.p99_ms:
        rows.append([target, NOT_MEASURED, "-"])
    else:
        near, far = submit
        slower = near.run.rps / far.run.rps
        p99 = far.run.p99_ms / near.run.p99_ms
        measured = (
            f"p99 {p99:.2f}x ({near.run.p99_ms:.1f} -> {far.run.p99_ms:.1f} ms), time per"
            f" request {slower:.2f}x ({near.run.rps:,.0f} -> {far.run.rps:,.0f} req/s)"
        ) + _noise(max_noise, near, far)
        rows.append([target, measured, _verdict(max(slower, p99) <= SCALE_SLOWER)])
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
