"""The soak's report, Markdown: the machine, the settings, each phase's windows, faults and
failures, and the verdicts as target | measured | met."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from datetime import datetime
from importlib.metadata import version

from benchmarks.load.machine import database_info, git_commit, gunicorn_settings, host_info
from benchmarks.load.procstat import Memory
from benchmarks.soak.checks import Verdict, blame, listed
from benchmarks.soak.maintenance import SHOWN_SECONDS
from benchmarks.soak.run import Capacity, Phase, Plan
from benchmarks.soak.stack import Stack
from benchmarks.soak.traffic import APPROVE_AFTER
from benchmarks.soak.windows import CpuSplit, Window, condense, steadiness

#: Memory of master and workers after a long soak (issue's target), MiB.
MEMORY_TARGET_MIB = 200.0
#: Growth of the server's memory from the end of the first window to the last, tolerated.
MEMORY_GROWTH = 0.05
#: The worst window's p99 against the median window's.
P99_STEADY_RATIO = 2.0
#: Share of the due requests the generator must have sent.
SENT_SHARE = 0.999


@dataclass(frozen=True)
class Context:
    """What the report says about the run besides the phases."""

    started: datetime
    plan: Plan
    stack: Stack
    capacity: Capacity | None
    memory_start: Memory
    command: str
    #: Each process of the server at the end, by role.
    processes: Sequence[tuple[str, Memory]] = ()


def mib(memory: Memory | None) -> str:
    """RSS / PSS in MiB."""
    if memory is None:
        return "—"
    return f"{memory.rss_mib:,.0f} / {memory.pss_mib:,.0f}"


def _statuses(window: Window) -> str:
    return ", ".join(f"{code or 'none'}: {n:,}" for code, n in sorted(window.statuses.items()))


def window_table(windows: Sequence[Window], rows: int = 20) -> list[str]:
    """The series, at most ``rows`` rows (neighbouring windows merged)."""
    lines = [
        "| from s | req/s | statuses | p50 ms | p99 ms | client lag p99 ms "
        "| RSS / PSS MiB (master + workers) | CPU cores: gunicorn / PostgreSQL and Redis "
        "/ outbox worker / rest / stolen | faults; the database's maintenance "
        f"(≥ {SHOWN_SECONDS:g} s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for w in condense(windows, rows):
        lines.append(
            f"| {w.start:,.0f}-{w.start + w.width:,.0f} | {w.rate:,.0f} | {_statuses(w)} "
            f"| {w.p50_ms:.1f} | {w.p99_ms:.1f} | {w.lag_p99_ms:.1f} | {mib(w.memory)} "
            f"| {_cores(w.cpu)} | {_events(w)} |"
        )
    return lines


def _events(window: Window) -> str:
    return "; ".join(filter(None, (", ".join(window.faults), ", ".join(window.maintenance))))


def slow_windows(windows: Sequence[Window]) -> list[Window]:
    """The windows whose p99 is over the steadiness target's multiple of the median's."""
    median = steadiness(windows).median_ms
    return [w for w in windows if median and w.p99_ms > P99_STEADY_RATIO * median]


def _cores(cpu: CpuSplit | None) -> str:
    if cpu is None:
        return "—"
    return " / ".join(f"{value:.2f}" for value in astuple(cpu))


def memory_verdicts(phase: Phase, first: Memory | None) -> list[Verdict]:
    """Memory after the phase against the target, and its growth over the phase."""
    after = phase.memory_after
    verdicts = [
        Verdict(
            f"master + workers RSS < {MEMORY_TARGET_MIB:.0f} MiB after the phase",
            f"{after.rss_mib:,.0f} MiB RSS ({after.pss_mib:,.0f} MiB PSS) after "
            f"{phase.served_total:,} requests served in all",
            after.rss_mib < MEMORY_TARGET_MIB,
        )
    ]
    if first is not None and not phase.faults:
        growth = (after.rss_mib - first.rss_mib) / first.rss_mib
        verdicts.append(
            Verdict(
                f"no growth: RSS at the end within {MEMORY_GROWTH:.0%} of the first window's",
                f"{first.rss_mib:,.0f} → {after.rss_mib:,.0f} MiB RSS ({growth:+.1%}), "
                f"PSS {first.pss_mib:,.0f} → {after.pss_mib:,.0f} MiB",
                growth <= MEMORY_GROWTH,
            )
        )
    return verdicts


def verdicts(phase: Phase) -> list[Verdict]:
    """The phase's verdicts."""
    answers, subs, deliveries = phase.answers, phase.submissions, phase.deliveries
    steady = steadiness(phase.windows)
    rows = [
        Verdict(
            f"the rate held: ≥ {SENT_SHARE:.1%} of the due requests sent",
            f"{phase.sent:,} of {phase.due:,} ({phase.sent / max(1, phase.due):.2%})",
            phase.sent >= SENT_SHARE * phase.due,
        )
    ]
    if phase.faults:
        rows.append(
            Verdict(
                "while a dependency is down only 503 with Retry-After; no other failure",
                f"{len(answers.unavailable):,} answers 503 with Retry-After during the outages; "
                f"{len(answers.failures):,} failures"
                + (f" ({_reasons(phase)})" if answers.failures else ""),
                not answers.failures,
            )
        )
        rows.append(
            Verdict(
                "requests held by the SIGKILLed worker (no process can answer them)",
                f"{len(answers.dropped):,} connections closed without an answer",
                None,
            )
        )
        for fault in phase.faults:
            seconds = phase.recoveries[fault.name]
            rows.append(
                Verdict(
                    f"recovery after {fault.name}, nothing restarted by hand",
                    "no correct answer after it"
                    if seconds is None
                    else f"last wrong answer {seconds:.1f} s after it was back"
                    if seconds
                    else "every answer after it was back correct",
                    seconds is not None and seconds <= 5.0,
                )
            )
    else:
        rows.append(
            Verdict(
                "0 errors (every answer the expected status)",
                f"{len(answers.failures):,} of {answers.requests:,}"
                + (f" ({_reasons(phase)})" if answers.failures else ""),
                not answers.failures,
            )
        )
    rows += [
        Verdict(
            "acknowledged submissions == stored comments: 0 lost",
            f"{subs.acknowledged:,} acknowledged, {len(subs.lost)} lost"
            + (f" (ids {listed(subs.lost)})" if subs.lost else ""),
            not subs.lost and not subs.mismatched,
        ),
        Verdict(
            "0 duplicated",
            f"{len(subs.duplicated)} duplicated"
            + (f" ({listed(subs.duplicated)})" if subs.duplicated else ""),
            not subs.duplicated,
        ),
        Verdict(
            "stored without an acknowledgement (answered 503 or dropped after the commit)",
            f"{len(subs.stored_unacknowledged)} of {subs.unacknowledged_requests:,} "
            "submissions not acknowledged",
            None,
        ),
        Verdict(
            "acknowledged approvals == approved comments",
            f"{subs.approvals_acknowledged:,} acknowledged, {len(subs.approvals_lost)} not "
            f"approved in the database; {len(subs.approved_unacknowledged)} approved without "
            "an acknowledgement",
            not subs.approvals_lost,
        ),
        Verdict(
            "every outbox event delivered (seen by the receiver)",
            f"{sum(deliveries.events.values()):,} events, "
            f"{len(deliveries.events_unseen)} never seen, "
            f"{len(deliveries.undispatched)} never planned, "
            f"{len(deliveries.delivered_unseen)} recorded delivered but not received, "
            f"{len(deliveries.unfinished)} unfinished",
            deliveries.ok,
        ),
        Verdict(
            "duplicate deliveries (at least once is the contract, DESIGN §8)",
            f"{deliveries.duplicate_webhooks} webhook calls, {deliveries.duplicate_mails} mails",
            None,
        ),
        Verdict(
            "deliveries attempted more than once; the slowest delivery",
            f"{len(deliveries.attempted_again)}"
            + (f" (ids {listed(deliveries.attempted_again)})" if deliveries.attempted_again else "")
            + f"; {deliveries.slowest:,.1f} s from planned to finished",
            None,
        ),
        Verdict(
            "webhook signatures check out",
            f"{deliveries.unsigned} calls with a bad signature",
            deliveries.unsigned == 0,
        ),
        Verdict(
            "the worker drains at the end",
            "not within the timeout"
            if phase.drain_seconds is None
            else f"in {phase.drain_seconds:.1f} s (backlog peak {phase.backlog_peak:,})",
            phase.drain_seconds is not None,
        ),
        Verdict(
            f"p99 steady: worst window ≤ {P99_STEADY_RATIO:g} times the median window",
            f"max {steady.max_ms:.1f} ms / median {steady.median_ms:.1f} ms = {steady.ratio:.2f}x"
            + _slow_summary(phase.windows),
            steady.ratio <= P99_STEADY_RATIO if not phase.faults else None,
        ),
    ]
    first = phase.windows[0].memory if phase.windows else None
    return rows + memory_verdicts(phase, first)


def _slow_summary(windows: Sequence[Window]) -> str:
    slow = slow_windows(windows)
    if not slow:
        return ""
    beside = sum(1 for w in slow if w.maintenance)
    return (
        f"; {len(slow)} window{'s' if len(slow) != 1 else ''} over {P99_STEADY_RATIO:g}x, "
        f"{beside} of them during the database's maintenance"
    )


def _reasons(phase: Phase) -> str:
    return ", ".join(f"{why}: {n:,}" for why, n in phase.answers.failure_reasons.most_common())


def failures_list(phase: Phase, start: float, most: int = 30) -> list[str]:
    """The failed requests, each with what it was and what it got."""
    failures = phase.answers.failures
    if not failures:
        return []
    lines = [
        f"Failed requests ({len(failures):,}; the first {min(most, len(failures))}):",
        "",
        "| at s | request | status | why | answer or error |",
        "|---|---|---|---|---|",
    ]
    for failure in failures[:most]:
        r = failure.record
        what = r.kind + (f" #{r.number}" if r.kind == "submit" else "")
        what += f" comment {r.number}" if r.kind == "approve" else ""
        error = r.error.replace("|", "\\|")
        lines.append(
            f"| {r.due - start:.2f} | {what} | {r.status or 'none'} | {failure.why} | {error} |"
        )
    return [*lines, ""]


def render(context: Context, phases: Sequence[Phase]) -> str:
    """The whole report."""
    plan, stack, settings = context.plan, context.stack, context.stack.settings
    info = host_info()
    lines = [
        f"# Soak and faults: commentsvc under gunicorn ({context.started:%Y-%m-%d %H:%M} UTC)",
        "",
        f"`{context.command}`",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in info.items()),
        "| packages | "
        + ", ".join(
            f"{name} {version(name)}"
            for name in ("flask", "sqlalchemy", "gunicorn", "psycopg", "redis")
        )
        + " |",
        f"| database | {database_info(settings.dialect, stack.database_url)} |",
        f"| gunicorn | {gunicorn_settings(stack.database_url, settings.workers)} |",
        f"| commit | {git_commit()} |",
        "",
        "## Settings",
        "",
        f"- Traffic: a Python asyncio generator in a process of its own, **open loop at a "
        f"fixed rate** (each request due at its time whatever became of the earlier ones; "
        f"latency measured from that time), one connection per request, at most "
        f"{plan.max_in_flight} open. wrk was not used: it has no constant-rate mode, and with "
        f"its Lua `delay()` each connection waits for its answer before the next request, so "
        f"a stalling server would be sent less.",
        "- Mix (parts of 100): "
        + ", ".join(f"{kind} {parts}" for kind, parts in sorted(plan.mix.items()))
        + f". `thread-304` sends the last ETag seen (200 when the thread changed); `approve` "
        f"approves a comment acknowledged at least {APPROVE_AFTER:g} s earlier through the "
        "moderation API (PATCH, bearer token), or reads the pending queue when there is "
        "none. Every submission has a body, name and email of its own (no duplicate "
        f"refusals) on {20} pages of the run; threads are read from the seeded "
        "`/thread/100` and `/scale/10` and from the run's pages (whose ETags change with "
        "each approval).",
        f"- Rate limits **on**, counted in Redis, with `COMMENTSVC_SUBMIT_RATE_LIMIT="
        f"{settings.submit_rate_limit}` per client address: the whole load comes from one "
        "address, so the default (`5/minute;30/hour`) would refuse it; this limit is never "
        f"reached. `RATELIMIT_FAIL_OPEN={'true' if settings.fail_open else 'false'}`"
        + (
            " (the default): while Redis is down submissions pass unlimited."
            if settings.fail_open
            else ": while Redis is down submissions get 503."
        ),
        "- Outbox: one `commentsvc worker` process (4 threads, 500 ms poll) delivering every "
        "event to one webhook (all events) on a threaded HTTP receiver and a mail per new "
        "comment (`notify each`, hourly cap raised) to an aiosmtpd server.",
        f"- Logs at {settings.log_level}; `COMMENTSVC_DATABASE_TIMEOUT_SECONDS="
        f"{settings.database_timeout:g}`"
        + "".join(f"; `{name}={value}`" for name, value in settings.extra.items())
        + ".",
        f"- {plan.duration:g} s per phase, windows of {plan.window:g} s; drain timeout "
        f"{plan.drain_timeout:g} s.",
        *(f"- {note}" for note in stack.notes),
        "",
    ]
    if context.capacity:
        c = context.capacity
        lines += [
            "## Capacity",
            "",
            f"{c.connections} connections, closed loop (each sends its next request when "
            f"answered), the same mix, {c.seconds:g} s after {5:g} s of warm-up: "
            f"**{c.rate:,.0f} req/s** of correct answers ({c.errors} others). The soak runs "
            f"at {plan.share:.0%} of it: **{phases[0].rate:,.0f} req/s**."
            if phases
            else "",
            "",
        ]
    elif phases:
        lines += [f"Rate given on the command line: {phases[0].rate:,.0f} req/s.", ""]
    for phase in phases:
        lines += phase_section(phase)
    lines += [
        "## Memory: gunicorn master + workers",
        "",
        "| when | requests served | RSS / PSS MiB |",
        "|---|---|---|",
        f"| before any traffic | 0 | {mib(context.memory_start)} |",
    ]
    for phase in phases:
        first = phase.windows[0].memory if phase.windows else None
        lines.append(f"| {phase.name}: end of its first window | | {mib(first)} |")
        lines.append(f"| {phase.name}: end | {phase.served_total:,} | {mib(phase.memory_after)} |")
    if phases and phases[-1].worker_memory_after:
        lines.append(
            f"| the outbox worker process, at the end | | {mib(phases[-1].worker_memory_after)} |"
        )
    if context.processes:
        lines += [
            "",
            "At the end, each process: "
            + "; ".join(f"{role} {mib(m)} MiB" for role, m in context.processes)
            + ".",
        ]
    lines += [
        "",
        "RSS counts pages shared by the master and its forked workers once per process; "
        "PSS divides each shared page among the processes sharing it (their sum is what the "
        "three really take). After the SIGKILL the replaced worker starts fresh.",
        "",
    ]
    return "\n".join(lines)


def phase_section(phase: Phase) -> list[str]:
    """One phase: its figures, windows, faults, failures and verdicts."""
    start = phase.started
    steady = steadiness(phase.windows)
    cpu = phase.cpu
    d = phase.deliveries
    lines = [
        f"## {phase.name.capitalize()}",
        "",
        f"{phase.rate:,.0f} req/s for {phase.duration:g} s: {phase.answers.requests:,} "
        f"requests. CPU seconds: gunicorn {cpu.app:,.0f}, database and Redis "
        f"{cpu.database:,.0f}, generator and harness {cpu.client:,.0f}; others took "
        f"{cpu.others_share:.0%} of the machine. Outbox: "
        + ", ".join(f"{kind} {n:,}" for kind, n in sorted(d.events.items()))
        + "; deliveries "
        + ", ".join(f"{ch} {state} {n:,}" for (ch, state), n in sorted(d.deliveries.items()))
        + (
            "; skipped: " + ", ".join(f"{why} ({n})" for why, n in d.skipped.most_common(3))
            if d.skipped
            else ""
        )
        + ".",
        "",
        *window_table(phase.windows),
        "",
        "p99 per window, ms: " + ", ".join(f"{v:.0f}" for v in steady.series_ms),
        "",
    ]
    slow = slow_windows(phase.windows)
    if slow:
        lines += [
            f"Windows with a p99 over {P99_STEADY_RATIO:g} times the median window's: "
            + "; ".join(
                f"{w.start:,.0f}-{w.start + w.width:,.0f} s, {w.p99_ms:.0f} ms "
                f"({_events(w) or 'no fault, no maintenance logged'})"
                for w in slow
            )
            + ".",
            "",
        ]
    if phase.faults:
        lines += [
            "| fault | at s | down s | what | 503 answers | recovered |",
            "|---|---|---|---|---|---|",
        ]
        for fault in phase.faults:
            unavailable = sum(
                1 for r in phase.answers.unavailable if blame(r, phase.faults) is fault
            )
            seconds = phase.recoveries[fault.name]
            lines.append(
                f"| {fault.name} | {fault.started - start:.1f} "
                f"| {fault.restored - fault.started:.1f} | {fault.detail} | {unavailable:,} "
                f"| {'no' if seconds is None else f'+{seconds:.1f} s'} |"
            )
        lines.append("")
    lines += failures_list(phase, start)
    lines += [
        "| target | measured | met |",
        "|---|---|---|",
        *(f"| {v.target} | {v.measured} | {v.word} |" for v in verdicts(phase)),
        "",
    ]
    return lines
