"""The command line of the peer benchmark: ``python -m benchmarks.peers``."""

from __future__ import annotations

import argparse
import sys
import time

import benchmarks.peers
from benchmarks.load import log
from benchmarks.load.bench import Settings
from benchmarks.load.cli import RESULTS_DIR
from benchmarks.load.wrk import require_wrk
from benchmarks.load_data import SetupError
from benchmarks.peers.report import render
from benchmarks.peers.run import run_peers
from benchmarks.peers.workloads import pairs
from commentsvc import PROJECT_ROOT
from tests.support.isso import IssoError, IssoUnavailable
from tests.support.server import ServerError
from tests.support.service import CliError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description=benchmarks.peers.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--database", choices=("sqlite",), default="sqlite", help="only SQLite for now")
    add("--duration", type=int, default=9, help="seconds per workload and system, all rounds")
    add("--rounds", type=int, default=3, help="interleaved rounds per workload")
    add("--warmup", type=int, default=2, help="seconds of load before each measured run")
    add("--connections", type=int, default=8)
    add("--workers", type=int, default=None, help="WEB_CONCURRENCY (default: gunicorn.conf.py's)")
    add("--only", default="", help="comma-separated workload keys: " + ", ".join(_keys()))
    add("--max-noise", type=float, default=0.10, help="others' CPU share tolerated")
    add("--quiet-wait", type=float, default=10.0, help="seconds to wait for quiet")
    add("--retries", type=int, default=1, help="reruns of a noisy run")
    add(
        "--budget",
        type=float,
        default=300.0,
        help="seconds of load after which waits and reruns are skipped",
    )
    return parser


def _keys() -> list[str]:
    return [pair.key for pair in pairs("")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, with the workload keys checked."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.only = {key for key in args.only.split(",") if key}
    unknown = args.only - set(_keys())
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(sorted(unknown))}")
    if args.rounds < 1 or args.duration < args.rounds:
        parser.error("--duration must give each of the --rounds at least a second")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the peer benchmark; print and write its report."""
    args = parse_args(argv)
    require_wrk()
    settings = Settings(
        duration=args.duration // args.rounds,
        warmup=args.warmup,
        connections=args.connections,
        threads=1,
        max_noise=args.max_noise,
        quiet_wait=args.quiet_wait,
        retries=args.retries,
        budget=args.budget,
    )
    started = time.monotonic()
    try:
        report = run_peers(args, settings)
    except (SetupError, ServerError, CliError, IssoError, IssoUnavailable) as error:
        sys.exit(f"benchmarks.peers: {error}")
    text = render(report)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{report.started:%Y-%m-%d-%H%M}-peers.md"
    path.write_text(text)
    print(text)
    log(f"done in {time.monotonic() - started:.0f} s; written to {path.relative_to(PROJECT_ROOT)}")
