"""The command line of the soak: ``python -m benchmarks.soak``."""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shlex
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import benchmarks.soak
from benchmarks.load import log
from benchmarks.load.procstat import Memory, memory
from benchmarks.load_data import SetupError
from benchmarks.soak import stack as soak_stack
from benchmarks.soak.report import Context, render, verdicts
from benchmarks.soak.run import Plan, run_phases
from benchmarks.soak.traffic import DEFAULT_MIX
from commentsvc import PROJECT_ROOT
from tests.support.server import ServerError
from tests.support.service import CliError

RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"
#: Far above what the soak sends from its one address: counted on every submission, never
#: reached.
RATE_LIMIT = "100000/minute;5000000/hour"


def _mix(text: str) -> dict[str, int]:
    """``thread=50,counts=20,…`` as a mix."""
    mix = dict(DEFAULT_MIX)
    for part in filter(None, text.split(",")):
        kind, _, parts = part.partition("=")
        mix[kind.strip()] = int(parts)
    return {kind: parts for kind, parts in mix.items() if parts > 0}


def parser() -> argparse.ArgumentParser:
    """The options, each with the default of a full run."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description=benchmarks.soak.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--database", choices=("postgresql", "sqlite"), default="postgresql")
    add("--duration", type=float, default=600.0, help="seconds per phase (default 600)")
    add("--rate", type=float, default=None, help="requests per second (default: measured)")
    add("--share", type=float, default=0.7, help="of the capacity, without --rate (0.7)")
    add("--capacity-seconds", type=float, default=20.0, help="capacity run, warm-up included")
    add("--connections", type=int, default=8, help="of the capacity run (8)")
    add("--phases", default="clean,faults", help="clean, faults or both (the default)")
    add("--window", type=float, default=10.0, help="seconds per window (10)")
    add("--workers", type=int, default=2, help="gunicorn workers (2)")
    add("--mix", type=_mix, default=dict(DEFAULT_MIX), help="e.g. submit=10,thread=40")
    add("--max-in-flight", type=int, default=512)
    add(
        "--drain-timeout",
        type=float,
        default=420.0,
        help="seconds for the worker to finish after a phase (420: longer than its 5-minute lease)",
    )
    add("--redis-down", type=float, default=5.0, help="seconds Redis stays down")
    add("--postgres-down", type=float, default=5.0, help="seconds PostgreSQL stays down")
    add("--database-timeout", type=float, default=5.0, help="COMMENTSVC_DATABASE_TIMEOUT_SECONDS")
    add("--rate-limit", default=RATE_LIMIT, help="COMMENTSVC_SUBMIT_RATE_LIMIT")
    add(
        "--fail-closed",
        action="store_true",
        help="COMMENTSVC_RATELIMIT_FAIL_OPEN=false: 503 while Redis is down",
    )
    add("--log-level", default="WARNING", help="COMMENTSVC_LOG_LEVEL (WARNING)")
    add(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="another setting of the service, e.g. COMMENTSVC_THREAD_CACHE_MB=0 (repeatable)",
    )
    add(
        "--pg-dir",
        type=Path,
        default=Path("/tmp/commentsvc-soak-pg"),
        help="the private PostgreSQL cluster's directory (kept between runs)",
    )
    add("--output", type=Path, default=None, help="report file (default benchmarks/results/)")
    add("--keep", type=Path, default=None, help="keep the logs and records in this directory")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run the soak; print and write the report; exit 1 when a target was missed."""
    args = parser().parse_args(argv)
    phases = tuple(p.strip() for p in args.phases.split(",") if p.strip())
    if not phases or set(phases) - {"clean", "faults"}:
        sys.exit("--phases: clean, faults or clean,faults")
    os.environ.setdefault("COMMENTSVC_ENV_FILE", os.devnull)
    plan = Plan(
        duration=args.duration,
        window=args.window,
        share=args.share,
        rate=args.rate,
        capacity_seconds=args.capacity_seconds,
        connections=args.connections,
        max_in_flight=args.max_in_flight,
        drain_timeout=args.drain_timeout,
        redis_down=args.redis_down,
        postgres_down=args.postgres_down,
        phases=phases,
        mix=args.mix,
    )
    settings = soak_stack.Settings(
        dialect=args.database,
        workers=args.workers,
        submit_rate_limit=args.rate_limit,
        fail_open=not args.fail_closed,
        log_level=args.log_level,
        pg_dir=args.pg_dir,
        database_timeout=args.database_timeout,
        extra=dict(item.split("=", 1) for item in args.set),
    )
    started = datetime.now(UTC)
    tag = started.strftime("%H%M%S")
    command = "python -m benchmarks.soak " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        with tempfile.TemporaryDirectory(prefix="commentsvc-soak-") as tmp:
            workdir = args.keep or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            with soak_stack.running(settings, workdir, secrets.token_hex(32)) as stack:
                capacity, results, memory_start = run_phases(stack, plan, tag)
                context = Context(
                    started, plan, stack, capacity, memory_start, command, _processes(stack)
                )
                report = render(context, results)
                _print_logs(stack)
                # Written before the stack stops: nothing in its teardown can lose it.
                output = args.output or RESULTS_DIR / f"{started:%Y-%m-%d-%H%M}-soak.md"
                output.parent.mkdir(parents=True, exist_ok=True)
                output.write_text(report + "\n")
                print(report, flush=True)
                log(f"report written to {output}")
    except (SetupError, ServerError, CliError) as error:
        sys.exit(f"benchmarks.soak: {error}")
    missed = [v for phase in results for v in verdicts(phase) if v.met is False]
    sys.exit(1 if missed else 0)


#: An INFO line of the service's JSON log (orjson writes no space after the colon).
_INFO = re.compile(r'"level":\s*"INFO"')


def above_info(log_text: str) -> list[str]:
    """The lines of a log that are not the service's INFO lines."""
    return [line for line in log_text.splitlines() if not _INFO.search(line)]


def _print_logs(stack: soak_stack.Stack) -> None:
    """What gunicorn and the worker logged at WARNING and above, briefly, for the failures."""
    for name, text in (
        ("gunicorn", stack.server.gunicorn.log_text()),
        ("outbox worker", _read(stack.workdir / "outbox-worker.log")),
    ):
        lines = above_info(text)
        if lines:
            log(f"--- {name} log ({len(lines)} lines but INFO; the last 15) ---")
            for line in lines[-15:]:
                log(line[:400])


def _processes(stack: soak_stack.Stack) -> list[tuple[str, Memory]]:
    """RSS and PSS of gunicorn's master and of each worker."""
    gunicorn = stack.server.gunicorn
    found = [("master", memory([gunicorn.pid]))]
    for number, pid in enumerate(gunicorn.worker_pids(), start=1):
        found.append((f"worker {number}", memory([pid])))
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
