"""One run of the peer benchmark: both systems seeded alike and served side by side, then each
pair of workloads measured in interleaved rounds."""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import requests

from benchmarks.load import log
from benchmarks.load.bench import Bench, Measurement, Settings
from benchmarks.load.machine import git_commit, host_info, resolved_config
from benchmarks.load.procstat import Memory, load_average, memory
from benchmarks.load.run import DEFAULT_LOG_LEVEL, rate_limit_variables
from benchmarks.load.server import Server, gunicorn_server, serve_gunicorn
from benchmarks.load.submissions import SubmitCheck, check_submissions
from benchmarks.load.wrk import WrkRun, wrk_version
from benchmarks.load_data import GUARDED_SITE
from benchmarks.peers.data import (
    GUARDED_ORIGIN,
    MODERATOR,
    ORIGIN,
    SITE,
    CommentsvcStorage,
    IssoStorage,
    Storage,
    seed,
    seed_blocklist,
)
from benchmarks.peers.isso_serving import IssoPeer, isso_peer, isso_submit_check, shared_settings
from benchmarks.peers.workloads import COMMENTSVC, ISSO, SYSTEMS, Answer, Pair, pairs
from commentsvc import PROJECT_ROOT, __version__
from commentsvc.serving import worker_count
from tests.support.server import GunicornServer
from tests.support.service import base_env, create_accounts, service_env

#: How the report names a server of :data:`benchmarks.peers.workloads.SERVERS`.
SERVER_NAMES = {"isso": "Isso", "commentsvc-guarded": "commentsvc, every abuse rule on"}


@dataclass
class PairResult:
    """What one pair of workloads measured, round by round."""

    pair: Pair
    #: Each system's answer, checked before the load (None: not checked).
    answers: tuple[Answer, Answer] | None
    #: Each round's measurement of each system, in :data:`SYSTEMS` order.
    rounds: list[tuple[Measurement, Measurement]] = field(default_factory=list)
    #: After submissions: what each system stored against what it acknowledged.
    checks: tuple[SubmitCheck, SubmitCheck] | None = None

    def median(self, system: int) -> Measurement:
        """The round of median throughput of ``system``: it stands for the system."""
        ordered = sorted((measured[system] for measured in self.rounds), key=lambda m: m.run.rps)
        return ordered[len(ordered) // 2]


@dataclass
class Report:
    """A run of the peer benchmark and the circumstances to judge it by."""

    started: datetime
    settings: Settings
    rounds: int
    workers: int
    machine: dict[str, str]
    #: How each system was served: its gunicorn command line, by system.
    commands: dict[str, str]
    #: How commentsvc was configured for each of its servers, by server.
    commentsvc_env: dict[str, str]
    #: The gunicorn settings both resolved to, by name.
    shared: dict[str, str]
    isso_config: str
    notes: list[str] = field(default_factory=list)
    results: list[PairResult] = field(default_factory=list)
    memory: dict[str, Memory] = field(default_factory=dict)


def run_peers(args: argparse.Namespace, settings: Settings) -> Report:
    """Prepare, seed and serve both systems; measure the selected pairs; tear down."""
    workers = args.workers or worker_count(base_env())
    chosen = [
        pair for pair in pairs(secrets.token_hex(4)) if not args.only or pair.key in args.only
    ]
    with tempfile.TemporaryDirectory(prefix="commentsvc-peers-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        database = work / "commentsvc.db"
        url = f"sqlite:///{database}"
        # Each system logs at its default level: commentsvc one JSON line per request.
        secret_key = secrets.token_hex(32)
        env = service_env(url, secret_key, COMMENTSVC_LOG_LEVEL=DEFAULT_LOG_LEVEL)
        log(f"commentsvc: a database, the sites {SITE!r} and {GUARDED_SITE!r} and a moderator…")
        token = create_accounts(
            env,
            {SITE: ORIGIN, GUARDED_SITE: GUARDED_ORIGIN},
            [MODERATOR],
            token_for=MODERATOR.email,
            token_name="peers",
        )
        assert token is not None
        ours = gunicorn_server("wsgi", env, workers, work / "gunicorn-commentsvc.log")
        ours_settings = resolved_config(ours.command(), env)
        log("Isso: its virtualenv, with gunicorn beside it…")
        peer = isso_peer(work / "isso", workers, ours_settings)
        theirs_settings = resolved_config(peer.gunicorn.command(), peer.gunicorn.env)
        report = Report(
            started=datetime.now(UTC),
            settings=settings,
            rounds=args.rounds,
            workers=workers,
            machine=_machine(peer),
            commands={"commentsvc": _shown(ours), "Isso": _shown(peer.gunicorn)},
            commentsvc_env={
                "commentsvc": f"COMMENTSVC_LOG_LEVEL={DEFAULT_LOG_LEVEL}, rate limits off",
                "commentsvc-guarded": f"COMMENTSVC_LOG_LEVEL={DEFAULT_LOG_LEVEL}, "
                + ", ".join(f"{name}={value}" for name, value in rate_limit_variables().items()),
            },
            shared=shared_settings(ours_settings, theirs_settings),
            isso_config=peer.settings_file.read_text(),
        )
        log("serving both…")
        commentsvc = stack.enter_context(serve_gunicorn("commentsvc", ours, url))
        isso = stack.enter_context(serve_gunicorn("isso", peer.gunicorn, None))
        servers = {"commentsvc": commentsvc, "isso": isso}
        _seed_both(commentsvc.url, token, peer)
        if any(pair.workloads[COMMENTSVC].server == "commentsvc-guarded" for pair in chosen):
            with requests.Session() as http:
                held = seed_blocklist(commentsvc.url, token, http)
            log(f"  commentsvc: {held:,} blocklist entries on {GUARDED_SITE!r}")
            # The same database and gunicorn settings; every abuse rule on, rate limits
            # counted in the database, as the load benchmark's submit-guarded.
            guarded_env = env | rate_limit_variables()
            log_file = work / "gunicorn-commentsvc-guarded.log"
            guarded = gunicorn_server("wsgi", guarded_env, workers, log_file)
            servers["commentsvc-guarded"] = stack.enter_context(
                serve_gunicorn("commentsvc-guarded", guarded, url)
            )
        report.notes.append(
            f"journal mode of each database file: commentsvc {_journal(database)},"
            f" Isso {_journal(peer.client.database)} (each system's own choice)"
        )
        report.notes.append(f"load average {load_average():.2f} at the start of the load")
        # SQLite: no database server whose processes' CPU would count as the database's.
        runs = len(chosen) * 2 * args.rounds
        bench = Bench(settings, work, lambda _: set(), time.monotonic() + args.budget, runs)
        for pair in chosen:
            pair_servers = (
                servers[pair.workloads[COMMENTSVC].server],
                servers[pair.workloads[ISSO].server],
            )
            result = _measure(bench, pair, pair_servers, args.rounds)
            if pair.workloads[COMMENTSVC].submit_tag:
                result.checks = _check_submissions(result, url, peer, settings.connections)
            report.results.append(result)
        report.memory = {
            SERVER_NAMES.get(name, name): memory(server.pids()) for name, server in servers.items()
        }
    return report


def _seed_both(commentsvc_url: str, token: str, peer: IssoPeer) -> None:
    """The same comments into both, side by side, each through its own API."""
    with requests.Session() as http, ThreadPoolExecutor(max_workers=2) as pool:
        storages: dict[str, Storage] = {
            "commentsvc": CommentsvcStorage(commentsvc_url, token, http),
            "Isso": IssoStorage(peer.client),
        }
        started = time.monotonic()
        timed = {name: pool.submit(_timed, seed, storage) for name, storage in storages.items()}
        for name, future in timed.items():
            posted, seconds = future.result()
            log(f"  {name}: {posted} comments posted and moderated in {seconds:.1f} s")
    log(f"seeded both in {time.monotonic() - started:.1f} s")


def _timed(function: Callable[[Storage], int], storage: Storage) -> tuple[int, float]:
    started = time.monotonic()
    return function(storage), time.monotonic() - started


def _measure(bench: Bench, pair: Pair, servers: tuple[Server, Server], rounds: int) -> PairResult:
    """Check both answers, then measure both in ``rounds`` rounds, the first system to run
    alternating from round to round (commentsvc, Isso; Isso, commentsvc; …) so that a drift of
    the machine's speed falls on both alike. Each run is warmed up."""
    answers = None
    if pair.check is not None:
        ours, theirs = (
            check(server.url) for check, server in zip(pair.check, servers, strict=True)
        )
        answers = (ours, theirs)
    log(f"{pair.key}:")
    result = PairResult(pair, answers)
    for number in range(rounds):
        measured: dict[int, Measurement] = {}
        for system in round_order(number):
            log(f"  round {number + 1}, {SYSTEMS[system]}")
            measured[system] = bench.measure(pair.workloads[system], servers[system])
        result.rounds.append((measured[COMMENTSVC], measured[ISSO]))
    return result


def round_order(number: int) -> tuple[int, int]:
    """The systems in the order they run in round ``number`` (from 0): commentsvc first in
    every other round."""
    return (COMMENTSVC, ISSO) if number % 2 == 0 else (ISSO, COMMENTSVC)


def _check_submissions(
    result: PairResult, commentsvc_url: str, peer: IssoPeer, connections: int
) -> tuple[SubmitCheck, SubmitCheck]:
    """Every comment each system acknowledged is stored, pending, once (warm-ups included)."""
    ours, theirs = result.pair.workloads
    assert ours.submit_tag and theirs.submit_tag
    checks = (
        check_submissions(
            commentsvc_url, ours.submit_tag, _all_runs(result, COMMENTSVC), connections
        ),
        isso_submit_check(peer, theirs.submit_tag, _all_runs(result, ISSO), connections),
    )
    for name, check in zip(SYSTEMS, checks, strict=True):
        log(f"  {name}: {check.describe()}")
    return checks


def _all_runs(result: PairResult, system: int) -> list[WrkRun]:
    return [run for measured in result.rounds for run in measured[system].all_runs]


def _machine(peer: IssoPeer) -> dict[str, str]:
    """The machine, and the versions of what each system runs on."""
    theirs = peer.versions()
    return {
        **host_info(),
        "commentsvc": f"{__version__} (commit {git_commit()})",
        "Isso": f"{theirs['Isso']} from PyPI, in `{_relative(peer.gunicorn.venv)}`",
        "gunicorn": f"{version('gunicorn')} (commentsvc), {theirs['gunicorn']} (Isso)",
        "Python": f"{sys.version.split()[0]} (commentsvc), {theirs['Python']} (Isso)",
        "SQLite": f"{sqlite3.sqlite_version} (commentsvc), {theirs['SQLite']} (Isso)",
        "wrk": wrk_version(),
    }


def _journal(path: Path) -> str:
    """The journal mode of a database file (WAL, once set, stays with the file)."""
    with closing(sqlite3.connect(path)) as connection:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])


def _shown(server: GunicornServer) -> str:
    """``server``'s command line with paths relative to the project."""
    return " ".join(
        _relative(Path(part)) if part.startswith("/") else part for part in server.command()
    )


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)
