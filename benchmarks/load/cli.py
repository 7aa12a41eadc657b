"""The command line of the load benchmark: ``python -m benchmarks.load``."""

from __future__ import annotations

import argparse
import sys
import time

import benchmarks.load
from benchmarks.load import log
from benchmarks.load.bench import Settings
from benchmarks.load.report import render, render_sweep
from benchmarks.load.run import run_database
from benchmarks.load.workloads import workloads
from benchmarks.load.wrk import require_wrk
from benchmarks.load_data import SetupError
from commentsvc import PROJECT_ROOT
from commentsvc.serving import worker_count
from tests.support.server import ServerError
from tests.support.service import CliError, base_env

RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load",
        description=benchmarks.load.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--database", choices=("sqlite", "postgresql", "both"), default="sqlite")
    add("--duration", type=int, default=10, help="seconds per measured run")
    add("--warmup", type=int, default=2, help="seconds of load before each")
    add("--connections", type=int, default=8)
    add("--threads", type=int, default=1, help="wrk threads (default 1)")
    add("--workers", type=int, default=None, help="WEB_CONCURRENCY (default: gunicorn.conf.py's)")
    add("--queue-rows", type=int, default=1_000_000, help="comments in the queue database")
    add("--only", default="", help="comma-separated workload keys (the ceiling always runs)")
    add("--profile", default="", help="comma-separated workload keys to profile")
    add("--workers-sweep", default="", help="comma-separated worker counts")
    add("--max-noise", type=float, default=0.10, help="others' CPU share tolerated")
    add("--quiet-wait", type=float, default=20.0, help="seconds to wait for quiet")
    add("--retries", type=int, default=2, help="reruns of a noisy run")
    add(
        "--budget",
        type=float,
        default=570.0,
        help="seconds per database (seeding included) after which waits and reruns are skipped",
    )
    add(
        "--worker-class",
        default="",
        help="gunicorn worker class of every server, e.g. sync (default: gunicorn.conf.py's)",
    )
    add("--rebuild", action="store_true", help="seed the SQLite cache again")
    add("--list", action="store_true", help="list the workload keys and exit")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, with the workload keys checked."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.only = {key for key in args.only.split(",") if key}
    args.profile = {key for key in args.profile.split(",") if key}
    known = {w.key for w in workloads({}, "", "")}
    unknown = (args.only | args.profile) - known
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(sorted(unknown))}; --list shows them")
    if args.threads > args.connections:
        parser.error("--threads cannot exceed --connections")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark on each database asked for; print and write each report."""
    args = parse_args(argv)
    if args.list:
        for workload in workloads({}, "", ""):
            print(f"{workload.key:<22} {workload.label} ({workload.server})")
        return
    require_wrk()
    settings = Settings(
        args.duration,
        args.warmup,
        args.connections,
        args.threads,
        args.max_noise,
        args.quiet_wait,
        args.retries,
        args.budget,
        args.worker_class,
    )
    dialects = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    sweep = [int(count) for count in args.workers_sweep.split(",") if count]
    if sweep:
        args.only = args.only or {"thread", "submit"}
    RESULTS_DIR.mkdir(exist_ok=True)
    try:
        for dialect in dialects:
            _run_dialect(dialect, args, settings, sweep)
    except (SetupError, ServerError, CliError) as error:
        sys.exit(f"benchmarks.load: {error}")


def _run_dialect(
    dialect: str, args: argparse.Namespace, settings: Settings, sweep: list[int]
) -> None:
    started = time.monotonic()
    # As many workers as gunicorn.conf.py starts on this machine, whatever the shell says.
    workers = args.workers or worker_count(base_env())
    reports = run_database(dialect, args, settings, sweep or [workers])
    stem = f"{reports[0].started:%Y-%m-%d-%H%M}-{dialect}"
    if sweep:
        text = render_sweep(reports, LABELS[dialect])
        path = RESULTS_DIR / f"{stem}-workers.md"
    else:
        text, path = render(reports[0], settings, LABELS[dialect]), RESULTS_DIR / f"{stem}.md"
    path.write_text(text)
    print(text)
    elapsed = time.monotonic() - started
    log(f"{dialect}: done in {elapsed:.0f} s; written to {path.relative_to(PROJECT_ROOT)}")
