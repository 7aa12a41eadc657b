"""The Markdown report of a database run, and of a sweep over numbers of workers."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from benchmarks.load.bench import Settings
from benchmarks.load.run import DEFAULT_LOG_LEVEL, TARGETS, Report
from benchmarks.load.sections import (
    CIRCUMSTANCES,
    circumstances,
    cpu,
    figures,
    logging_section,
    profile_section,
    protection_section,
    ratio,
    scale_section,
    spread_section,
    table,
    targets_section,
)
from benchmarks.load.workloads import MAIN, ROUNDS

ROW_LABELS = {
    "ceiling": "ceiling (minimal Flask app), at the start",
    "ceiling-end": "ceiling, again at the end",
}
#: Requests per second and CPU ms per request (server, database and wrk) of a ceiling run.
CeilingOf = Callable[[str], tuple[float, float]]


def render(report: Report, settings: Settings, databases_label: str) -> str:
    """The report of one database run, in Markdown."""
    m = report.measurements
    ceiling_of = _ceiling_of(report)
    cpu_header = "CPU ms/req" + (" (app + db)" if report.dialect == "postgresql" else "")
    lines = _introduction(report, settings, databases_label)
    lines += _main_table(report, settings, ceiling_of, cpu_header)
    lines += protection_section(m, cpu_header, lambda key: ceiling_of(key)[0])
    lines += spread_section(report.repeats)
    if report.logging_rounds:
        lines += ["", *logging_section(report.logging_rounds)]
    lines += scale_section(m, cpu_header, settings.max_noise, report.at_scale)
    if report.submit_checks:
        lines += ["", "### Submissions stored", ""]
        lines += [f"- `{key}`: {check.describe()}" for key, check in report.submit_checks.items()]
    lines += ["", "### Server memory after the runs (master + workers)", ""]
    lines += table(
        ["server", "processes", "RSS sum (MiB)", "PSS sum (MiB)"],
        [
            [name, str(mem.processes), f"{mem.rss_mib:,.0f}", f"{mem.pss_mib:,.0f}"]
            for name, mem in report.memory.items()
        ],
    )
    conditions = target_conditions(report, settings)
    lines += targets_section(
        m,
        lambda key: ceiling_of(key)[0],
        conditions,
        settings.max_noise,
        report.beside,
        report.at_scale,
    )
    for prof in report.profiles:
        lines += profile_section(prof)
    return "\n".join(lines) + "\n"


def target_conditions(report: Report, settings: Settings) -> list[str]:
    """How this run differs from the conditions the targets are defined for (SQLite, 2
    workers, 8 connections, logs at INFO): nothing when it does not."""
    differences = []
    if report.dialect != "sqlite":
        differences.append(report.dialect)
    if report.workers != 2:
        differences.append(f"{report.workers} workers")
    if settings.connections != 8:
        differences.append(f"{settings.connections} connections")
    if settings.worker_class:
        differences.append(f"worker class {settings.worker_class}")
    if not differences:
        return []
    return [
        f"This run differs from those conditions ({', '.join(differences)}): its verdicts"
        " compare, they do not decide."
    ]


def log_level(key: str, report: Report) -> str:
    """The log level of the server a main-table row was measured on ("-" for the ceiling,
    which logs nothing)."""
    server = report.measurements[key].workload.server
    return "-" if server == "ceiling" else TARGETS[server][2]


def _ceiling_of(report: Report) -> CeilingOf:
    """The ceiling run to compare a workload with: the one right before it, else the mean of
    the runs at the start and at the end."""
    m = report.measurements
    ceilings = [m[key] for key in ("ceiling", "ceiling-end") if key in m]
    mean_rps = statistics.fmean(c.run.rps for c in ceilings) if ceilings else 0.0
    mean_cpu = statistics.fmean(c.total_cpu_ms for c in ceilings) if ceilings else 0.0

    def ceiling_of(key: str) -> tuple[float, float]:
        beside = report.beside.get(key)
        return (beside.run.rps, beside.total_cpu_ms) if beside else (mean_rps, mean_cpu)

    return ceiling_of


def _introduction(report: Report, settings: Settings, databases_label: str) -> list[str]:
    """The title, the machine, and how to read the main table."""
    return [
        f"## Load benchmark: {databases_label} ({report.started:%Y-%m-%d %H:%M} UTC)",
        "",
        *(f"- **{name}**: {value}" for name, value in report.machine.items()),
        *(f"- {note}" for note in report.notes),
        "",
        f"### Workloads ({settings.connections} connections, {settings.duration:g} s after"
        f" {settings.warmup:g} s warm-up; `WEB_CONCURRENCY={report.workers}`)",
        "",
        f"*logs*: the level commentsvc logged at, {DEFAULT_LOG_LEVEL} (its default: one JSON"
        " line per request, here into a file) on every row but the one that says WARNING; the"
        " ceiling app logs nothing.",
        "",
        "Latencies in ms. *errors*: answers with another status than expected, plus socket"
        " errors. *vs ceiling*: requests per second as a share of the ceiling's, measured"
        f" for {max(1, settings.duration // ROUNDS):g} s right before the workload (the"
        " machine's speed drifts; for the rows without one, the mean of the ceiling's runs at"
        " the start and at the end). *ceiling beside*: that run of the ceiling. *CPU ms/req*:"
        " CPU time of the gunicorn master and workers (and, on PostgreSQL, of the server"
        " processes serving the benchmark's database) per request. *by CPU*: the ceiling's CPU"
        " time per request (server, database and wrk) as a share of the workload's, an estimate"
        " of *vs ceiling* that other processes on the machine disturb much less. *load avg*: at"
        " the start of the run (it includes the benchmark's own earlier runs). *others*: share"
        " of the machine's CPU that other processes took during the run; runs over"
        f" {settings.max_noise:.0%} are marked noisy.",
        "",
    ]


def _main_table(
    report: Report, settings: Settings, ceiling_of: CeilingOf, cpu_header: str
) -> list[str]:
    """One row per workload of :data:`MAIN` that ran."""
    m = report.measurements
    header = ["workload", "logs", "req/s", "p50", "p99", "errors", "vs ceiling"]
    header += ["ceiling beside", cpu_header, "by CPU", *CIRCUMSTANCES]
    rows = [
        [
            ROW_LABELS.get(key, m[key].workload.label),
            log_level(key, report),
            *figures(m[key]),
            ratio(m[key].run.rps, ceiling_of(key)[0]),
            f"{report.beside[key].run.rps:,.0f}" if key in report.beside else "",
            cpu(m[key]),
            ratio(ceiling_of(key)[1], m[key].total_cpu_ms),
            *circumstances(m[key], settings.max_noise),
        ]
        for key in MAIN
        if key in m
    ]
    return table(header, rows)


def render_sweep(reports: Sequence[Report], label: str) -> str:
    """Throughput and p99 of each workload measured, for each number of workers."""
    measured = [key for key in MAIN if any(key in report.measurements for report in reports)]
    rows = []
    for report in reports:
        m = report.measurements
        row = [str(report.workers)]
        for key in measured:
            run = m[key].run if key in m else None
            row += [f"{run.rps:,.0f}", f"{run.p99_ms:.1f}"] if run else ["-", "-"]
        row.append(f"{report.memory['reads'].pss_mib:,.0f}" if "reads" in report.memory else "-")
        row.append(f"{max(measurement.cpu.others_share for measurement in m.values()):.0%}")
        rows.append(row)
    header = ["workers"]
    for key in measured:
        header += [f"{key} req/s", "p99 ms"]
    header += ["PSS MiB (reads)", "others (max)"]
    lines = [f"## WEB_CONCURRENCY sweep: {label} ({reports[0].started:%Y-%m-%d %H:%M} UTC)", ""]
    lines += [
        f"- **{name}**: {value}" for name, value in reports[0].machine.items() if name != "gunicorn"
    ]
    return "\n".join([*lines, "", *table(header, rows)]) + "\n"
