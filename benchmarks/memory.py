"""Memory of commentsvc after a million requests: gunicorn's master and 2 workers, sampled
over a long run of what readers send, against the target (below 200 MiB RSS, no growth).

    .venv/bin/python -m benchmarks.memory [--requests 1000000] [--warmup-requests 100000]
        [--run-seconds 10] [--mix thread=45,...] [--set NAME=VALUE ...] [--output FILE]

Run it from the project root (``make bench-memory``); it needs ``wrk`` on the PATH. On a
shared machine wrap it as the other benchmarks are: ``flock /tmp/commentsvc-bench.lock
.venv/bin/python -m benchmarks.memory``.

**The server** is the load benchmark's (:mod:`benchmarks.load.server`): ``gunicorn -c
gunicorn.conf.py`` on a free loopback port, 2 workers (``--workers``), logs at INFO (the
service's default: a JSON line per request, into a file), rate limits off, every other
setting at its default unless ``--set`` changes it.

**The data** is the load benchmark's ``queue`` SQLite database (:mod:`benchmarks.load_data`,
made once and cached in ``benchmarks/.cache/`` with its ``reads``, copied for each run):
1,000,000 comments on 10,000 pages of 5 sites, a few pages with thousands of comments and
most with 50 to 150, 70% approved. It is preferred to ``reads`` because memory is what the
workers keep per page: ``reads`` has 224 pages, 200 of them alike with 20 approved comments,
so a reader's mix over it would fill the per-worker caches once and then only hit them;
``queue`` has 10,000 pages of every size, so the thread cache (``THREAD_CACHE_MB`` per
worker, a byte budget) is filled and evicted for the whole run, and the pages' states and
the counts answers hold thousands of pages (until a submission's commit clears them), as on
a server with many sites. Its copy costs seconds; its seeding, once per schema, about half a
minute.

**The load** is wrk, closed loop (1 thread, ``--connections`` 8), with
``benchmarks/lua/readers.lua``: each request drawn from ``--mix`` (thread reads as the widget
asks, the same with ``If-None-Match`` for a page read lately, the server-rendered
``thread.html``, counts of 20 pages in a row, ``/widget.js``, ``/readyz``, and JSON
submissions, each with a body, name, email and ``Idempotency-Key`` of its own, held for
moderation so that no thread changes), its page from all 10,000, page ``n`` drawn as
``floor(10000 * r^3)``: a fifth of the draws on the 100 busiest pages, half on the 9,000
quietest. ``--requests`` in all, as consecutive wrk runs of ``--run-seconds`` (the last one
shorter). Every request carries an ``X-Request-ID`` naming its kind, which the service
echoes, so every answer is counted by kind and status: an answer with another status than
its kind expects, a socket error, or more requests without an answer than were in flight
when wrk stopped stops the benchmark at once (exit status 2) with the server's warnings.

**Samples.** Before the first request and after each wrk run: the RSS and PSS of the master
and of each worker (:func:`benchmarks.load.procstat.memory`), printed as a row as it is
taken. RSS counts every page a process maps, so pages the workers share with the master and
with each other (the interpreter, the libraries loaded before the fork) count once per
process; PSS splits each shared page between its sharers, so the PSS of the processes adds up
to the memory they take together. The target is on RSS; both are reported.

**Verdicts.** The total RSS of master and workers after the last request is below 200 MiB;
and it has not grown: the last sample's total RSS is at most 5% above that of the first
sample taken at or after ``--warmup-requests`` (100,000). The first requests fill the
per-worker caches (rendered threads up to ``THREAD_CACHE_MB``, 8 MiB each by default, the
pages' states, the counts answers, the sites), the allocator's arenas and the interpreter's
own; growth after that would be a leak. A worker replaced during the run (its memory would
start anew) stops the benchmark too.

To tell which request grows, run a workload alone for a while: ``--mix fragment=1
--requests 200000``, and compare with a run without the thread cache: ``--set
COMMENTSVC_THREAD_CACHE_MB=0``.

The report is printed and written as Markdown to
``benchmarks/results/<date>-<time>-memory.md`` (``--output``). The exit status is 1 when a
verdict is missed, 2 when the run failed or could not be set up.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import secrets
import shlex
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from benchmarks import load_data
from benchmarks.load import log
from benchmarks.load.bench import LUA_DIR
from benchmarks.load.cli import RESULTS_DIR
from benchmarks.load.machine import database_info, git_commit, gunicorn_settings, host_info
from benchmarks.load.procstat import CpuWindow, Memory, load_average, memory
from benchmarks.load.run import DEFAULT_LOG_LEVEL, DEFAULT_WORKERS
from benchmarks.load.sections import table
from benchmarks.load.server import Server, fetch, serve
from benchmarks.load.wrk import WrkLoad, WrkRun, require_wrk, run_wrk, wrk_version
from benchmarks.load_data import SetupError
from benchmarks.soak.checks import Verdict
from benchmarks.soak.report import MEMORY_GROWTH, MEMORY_TARGET_MIB
from commentsvc import PROJECT_ROOT
from tests.support.server import ServerError
from tests.support.service import CliError, base_env, service_env

#: The load benchmark's default size of the ``queue`` database: the same cached file.
QUEUE_ROWS = 1_000_000
SITES = load_data.QUEUE_SITES
PAGES_PER_SITE = load_data.QUEUE_PAGES_PER_SITE
#: Page ``n`` of all is drawn as ``floor(pages * r ** SKEW)``: a few pages much read.
SKEW = 3
SCRIPT = LUA_DIR / "readers.lua"
#: The status each kind of request of ``readers.lua`` must be answered with.
EXPECTED = {
    "thread": 200,
    "thread-304": 304,
    "fragment": 200,
    "counts": 200,
    "widget": 200,
    "readyz": 200,
    "submit": 201,
}
#: Parts of 100 of each kind: mostly thread reads (near a third of them revalidations, as
#: readers coming back), the article lists' counts, the fragment a site includes, the script
#: (which browsers cache), a health check now and then, and a few comments.
DEFAULT_MIX = {
    "thread": 45,
    "thread-304": 20,
    "fragment": 10,
    "counts": 15,
    "widget": 6,
    "readyz": 1,
    "submit": 3,
}
#: Requests ``readers.lua`` made that wrk may not have sent, besides those in flight at the
#: end of a run (see :func:`run_problems`).
UNSENT_SHARE = 0.001
REQUESTS = 1_000_000
WARMUP_REQUESTS = 100_000
RUN_SECONDS = 10
CONNECTIONS = 8
SERVER = "queue"
#: A line the service logged at INFO (its JSON log lines, the default format).
INFO = re.compile(r'"level":\s*"INFO"')


# --- the pure parts: the mix, the checks of a run, the samples and the verdicts --------------


def parse_mix(text: str) -> dict[str, int]:
    """``KIND=PARTS,...`` as a mix; ValueError for an unknown kind or no parts at all."""
    mix: dict[str, int] = {}
    for item in text.split(","):
        kind, _, parts = item.strip().partition("=")
        if kind not in EXPECTED or not parts.isdigit():
            raise ValueError(f"not KIND=PARTS with a kind of {', '.join(EXPECTED)}: {item!r}")
        mix[kind] = int(parts)
    if not any(mix.values()):
        raise ValueError("the mix has no parts")
    return {kind: parts for kind, parts in mix.items() if parts}


def mix_text(mix: Mapping[str, int]) -> str:
    """The mix as ``readers.lua`` and ``--mix`` take it."""
    return ",".join(f"{kind}={parts}" for kind, parts in mix.items())


def page_of(number: int) -> tuple[str, str]:
    """Site and key of page ``number`` of the ``queue`` database, as ``readers.lua`` and
    :func:`benchmarks.load_data.queue_plan` number them."""
    return SITES[number % len(SITES)], f"/article/{number // len(SITES):04d}"


@dataclass
class Tally:
    """The requests of one or more wrk runs by kind, and their answers by kind and status
    (the kind ``unknown``: an answer without the request id ``readers.lua`` sends)."""

    sent: Counter[str] = field(default_factory=Counter)
    answered: Counter[tuple[str, int]] = field(default_factory=Counter)

    @classmethod
    def parse(cls, text: str) -> Tally:
        """The ``sent KIND N`` and ``answered KIND STATUS N`` lines ``readers.lua`` writes."""
        tally = cls()
        for line in text.splitlines():
            match line.split():
                case ["sent", kind, count]:
                    tally.sent[kind] += int(count)
                case ["answered", kind, status, count]:
                    tally.answered[kind, int(status)] += int(count)
                case []:
                    pass
                case _:
                    raise SetupError(f"not a line of readers.lua's counts: {line!r}")
        return tally

    def add(self, other: Tally) -> None:
        """Count ``other``'s requests and answers too."""
        self.sent.update(other.sent)
        self.answered.update(other.answered)

    def answers_of(self, kind: str) -> int:
        """How many requests of ``kind`` were answered, whatever the status."""
        return sum(count for (answered, _), count in self.answered.items() if answered == kind)


def run_problems(tally: Tally, run: WrkRun, connections: int) -> list[str]:
    """What is wrong with one wrk run: an answer with another status than its kind expects
    (or of no known kind), socket errors, answers the counts cannot account for, or more
    requests without an answer than the ``connections`` that may have been in flight when
    wrk stopped, give or take one in :data:`UNSENT_SHARE` (now and then wrk asks the script
    for a request that never reaches the server, without counting an error: once or twice in
    a run of 6,000 in trials)."""
    problems = [
        f"{count:,} {kind} answered {status}"
        for (kind, status), count in sorted(tally.answered.items())
        if EXPECTED.get(kind) != status
    ]
    if run.socket_errors:
        problems.append(f"{run.socket_errors:,} socket errors")
    answered = sum(tally.answered.values())
    if answered != run.requests:
        problems.append(f"{answered:,} answers counted by kind, {run.requests:,} by wrk")
    for kind, sent in sorted(tally.sent.items()):
        if tally.answers_of(kind) > sent:
            problems.append(f"{tally.answers_of(kind):,} answers to {sent:,} {kind} requests")
    sent = sum(tally.sent.values())
    unanswered = sent - answered
    if unanswered > connections + sent * UNSENT_SHARE:
        problems.append(
            f"{unanswered:,} requests without an answer ({connections} in flight at most)"
        )
    return problems


def next_run_seconds(remaining: int, rps: float | None, longest: int = RUN_SECONDS) -> int:
    """Whole seconds of the next wrk run: ``longest``, or as many as ``remaining`` requests
    take at the last run's ``rps``, at least 1."""
    if not rps:
        return longest
    return max(1, min(longest, math.ceil(remaining / rps)))


@dataclass(frozen=True)
class Sample:
    """Memory of the server's processes after ``requests`` requests (wrk's, all runs so far),
    and the wrk run that ended just before it (none for the first sample)."""

    requests: int
    master: Memory
    workers: tuple[Memory, ...]
    worker_pids: tuple[int, ...]
    rps: float | None = None
    p99_ms: float | None = None
    #: The share of the CPUs other processes took during that run.
    others_share: float | None = None

    @property
    def total(self) -> Memory:
        """Master and workers together."""
        processes = (self.master, *self.workers)
        return Memory(
            sum(process.processes for process in processes),
            sum(process.rss_mib for process in processes),
            sum(process.pss_mib for process in processes),
        )


def reference(samples: Sequence[Sample], warmup: int) -> Sample | None:
    """The first sample taken after ``warmup`` requests or more, the caches filled."""
    return next((sample for sample in samples if sample.requests >= warmup), None)


def verdicts(
    samples: Sequence[Sample],
    warmup: int,
    target_mib: float = MEMORY_TARGET_MIB,
    growth: float = MEMORY_GROWTH,
) -> list[Verdict]:
    """The total RSS after the last request against ``target_mib``; its growth since the
    reference sample (:func:`reference`) against ``growth``, unmeasured (None) when the run
    ended before it or the reference is the last sample."""
    last = samples[-1]
    total = last.total
    rows = [
        Verdict(
            f"master + {len(last.workers)} workers: RSS < {target_mib:.0f} MiB after the last"
            " request",
            f"{total.rss_mib:,.1f} MiB RSS ({total.pss_mib:,.1f} MiB PSS) after"
            f" {last.requests:,} requests",
            total.rss_mib < target_mib,
        )
    ]
    first = reference(samples, warmup)
    target = (
        f"no growth: RSS of the last sample within {growth:.0%} of the sample after"
        f" {warmup:,} requests"
    )
    if first is None or first is last:
        rows.append(Verdict(target, f"not measured: no sample after {warmup:,} and later", None))
        return rows
    before = first.total
    change = (total.rss_mib - before.rss_mib) / before.rss_mib
    rows.append(
        Verdict(
            target,
            f"{before.rss_mib:,.1f} MiB after {first.requests:,} → {total.rss_mib:,.1f} MiB"
            f" ({change:+.1%}); PSS {before.pss_mib:,.1f} → {total.pss_mib:,.1f} MiB",
            change <= growth,
        )
    )
    return rows


def mib(memory: Memory) -> str:
    """RSS / PSS in MiB."""
    return f"{memory.rss_mib:,.1f} / {memory.pss_mib:,.1f}"


def sample_table(samples: Sequence[Sample]) -> list[str]:
    """A Markdown row per sample: requests so far, the last run's req/s and p99, RSS / PSS of
    the master, of each worker and of all, and the share of the CPUs others took."""
    workers = max((len(sample.workers) for sample in samples), default=0)
    header = ["requests", "req/s", "p99 ms", "master RSS / PSS MiB"]
    header += [f"worker {number} RSS / PSS" for number in range(1, workers + 1)]
    header += ["total RSS / PSS", "others' CPU"]
    rows = []
    for sample in samples:
        row = [
            f"{sample.requests:,}",
            "-" if sample.rps is None else f"{sample.rps:,.0f}",
            "-" if sample.p99_ms is None else f"{sample.p99_ms:.1f}",
            mib(sample.master),
        ]
        row += [mib(worker) for worker in sample.workers]
        row += ["-"] * (workers - len(sample.workers))
        row += [
            f"**{mib(sample.total)}**",
            "-" if sample.others_share is None else f"{sample.others_share:.0%}",
        ]
        rows.append(row)
    return table(header, rows)


def sample_line(sample: Sample) -> str:
    """One sample as a line of the progress printed while the run goes on."""
    workers = "  ".join(mib(worker) for worker in sample.workers)
    rps = "" if sample.rps is None else f"{sample.rps:7,.0f} req/s"
    return (
        f"{sample.requests:>11,} {rps:>13}  master {mib(sample.master)}  workers {workers}"
        f"  total {mib(sample.total)} MiB RSS / PSS"
    )


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Run:
    """What a run measured."""

    started: datetime
    #: The checked-out commit as the server starts (its files may change meanwhile).
    commit: str
    samples: list[Sample] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    wrk_runs: int = 0
    seconds: float = 0.0


def take_sample(server: Server, run: WrkRun | None, requests: int, others: float | None) -> Sample:
    """The memory of the master and of each worker now."""
    gunicorn = server.gunicorn
    pids = tuple(gunicorn.worker_pids())
    return Sample(
        requests,
        memory([gunicorn.pid]),
        tuple(memory([pid]) for pid in pids),
        pids,
        run.rps if run else None,
        run.p99_ms if run else None,
        others,
    )


def probe(server: Server, mix: Mapping[str, int]) -> None:
    """One request of each kind of the mix but submissions (the wrk runs check those), to the
    busiest and the quietest page: SetupError unless each is answered as expected."""
    for number in (0, len(SITES) * PAGES_PER_SITE - 1):
        site, key = page_of(number)
        origin = {"Origin": f"https://{site}.example"}
        quoted = key.replace("/", "%2F")
        thread = f"/api/v1/sites/{site}/comments?sort=oldest&page={quoted}"
        status, headers, body = fetch(server.url + thread, origin)
        if status != 200 or not json.loads(body).get("total"):
            raise SetupError(f"{thread} answered {status} (no comments?): {body[:200]!r}")
        etag = {name.lower(): value for name, value in headers.items()}.get("etag", "")
        paths = {
            "thread-304": (thread, {**origin, "If-None-Match": etag}),
            "fragment": (f"/sites/{site}/thread.html?page={quoted}", {}),
            "counts": (f"/api/v1/sites/{site}/counts?page={quoted}", origin),
            "widget": ("/widget.js", {}),
            "readyz": ("/readyz", {}),
        }
        for kind, (path, sent) in paths.items():
            if kind in mix:
                status, _, body = fetch(server.url + path, sent)
                if status != EXPECTED[kind]:
                    raise SetupError(f"{kind}: {path} answered {status}: {body[:200]!r}")


def warnings(server: Server, most: int = 15) -> str:
    """The last lines the server logged above INFO."""
    lines = [line for line in server.gunicorn.log_text().splitlines() if not INFO.search(line)]
    return "\n".join(line[:400] for line in lines[-most:]) or "(none)"


def load(server: Server, args: argparse.Namespace, work: Path, result: Run) -> None:
    """wrk runs until ``args.requests`` requests were answered, a sample after each."""
    counts_file = work / "counts.txt"
    env = {**base_env(), "READERS_COUNTS_FILE": str(counts_file)}
    tag = secrets.token_hex(3)
    rps: float | None = None
    requests = 0
    first_pids = result.samples[0].worker_pids
    while requests < args.requests:
        seconds = next_run_seconds(args.requests - requests, rps, args.run_seconds)
        script_args = (
            f"{tag}.{result.wrk_runs}",
            ",".join(SITES),
            str(PAGES_PER_SITE),
            str(SKEW),
            mix_text(args.mix),
        )
        wrk_load = WrkLoad(1, args.connections, SCRIPT, script_args=script_args)
        window = CpuWindow(lambda: set(server.pids()), lambda: set())
        wrk = run_wrk(server.url + "/", wrk_load, seconds, env)
        others = window.finish().others_share
        tally = Tally.parse(counts_file.read_text())
        problems = run_problems(tally, wrk, args.connections)
        if problems:
            raise SetupError(
                f"wrk run {result.wrk_runs + 1} after {requests:,} requests: "
                + "; ".join(problems)
                + f".\nThe server's last warnings:\n{warnings(server)}"
            )
        result.wrk_runs += 1
        result.seconds += wrk.seconds
        result.tally.add(tally)
        requests += wrk.requests
        rps = wrk.rps
        sample = take_sample(server, wrk, requests, others)
        if sample.worker_pids != first_pids:
            raise SetupError(
                f"gunicorn's workers changed from {first_pids} to {sample.worker_pids} after"
                f" {requests:,} requests: a replaced worker starts its memory anew.\n"
                f"The server's last warnings:\n{warnings(server)}"
            )
        result.samples.append(sample)
        log(sample_line(sample))


def measure(args: argparse.Namespace, work: Path) -> tuple[Run, str]:
    """Serve the ``queue`` database, sample, load and sample; the run and the server's
    description."""
    secret = secrets.token_hex(32)
    with load_data.sqlite_databases(work, QUEUE_ROWS, secret, log) as databases:
        url = databases.queue_url
        variables = {"COMMENTSVC_LOG_LEVEL": DEFAULT_LOG_LEVEL, **args.settings}
        env = service_env(url, secret, **variables)
        described = gunicorn_settings(url, args.workers)
        result = Run(datetime.now(UTC), git_commit())
        with serve(SERVER, "wsgi", env, args.workers, work, url) as server:
            result.samples.append(take_sample(server, None, 0, None))
            log(f"load average {load_average():.2f}; idle after start-up:")
            log(sample_line(result.samples[0]))
            probe(server, args.mix)
            load(server, args, work, result)
    return result, described


# --- the report ------------------------------------------------------------------------------


def render(result: Run, args: argparse.Namespace, gunicorn: str, command: str) -> str:
    """The report, in Markdown."""
    settings = "".join(f"; `{name}={value}`" for name, value in args.settings.items())
    lines = [
        f"# Memory after {args.requests:,} requests ({result.started:%Y-%m-%d %H:%M} UTC)",
        "",
        f"`{command}`",
        "",
        *table(
            ["", ""],
            [
                *([name, value] for name, value in host_info().items()),
                [
                    "packages",
                    ", ".join(
                        f"{name} {version(name)}" for name in ("flask", "sqlalchemy", "gunicorn")
                    ),
                ],
                [
                    "database",
                    f"{database_info('sqlite', '')}: the load benchmark's `queue` database,"
                    f" {QUEUE_ROWS:,} comments on {len(SITES) * PAGES_PER_SITE:,} pages of"
                    f" {len(SITES)} sites",
                ],
                ["gunicorn", gunicorn],
                [
                    "wrk",
                    f"{wrk_version()}, 1 thread, {args.connections} connections, closed loop,"
                    f" runs of {args.run_seconds} s, `benchmarks/lua/{SCRIPT.name}`",
                ],
                ["commit", f"{result.commit} (as the server started)"],
            ],
        ),
        "",
        "## Settings",
        "",
        "- Mix (parts of "
        + f"{sum(args.mix.values())}): "
        + ", ".join(f"{kind} {parts}" for kind, parts in args.mix.items())
        + f"; page n of {len(SITES) * PAGES_PER_SITE:,} drawn as floor(N·r^{SKEW}) (the first"
        " 100, the busiest threads, get a fifth of the draws; the last 9,000 half). thread-304"
        " revalidates a page its wrk thread read lately; submissions are held for moderation,"
        " so no thread changes.",
        f"- Logs at {DEFAULT_LOG_LEVEL} into a file, rate limits off{settings}; every other"
        " setting at its default.",
        f"- {result.wrk_runs} wrk runs, {result.seconds:,.0f} s of load; a sample before the"
        " first request and after each run. The first requests fill each worker's caches"
        " (rendered threads up to `THREAD_CACHE_MB`, the pages' states, the counts answers):"
        f" growth is judged from the first sample after {args.warmup_requests:,} requests.",
        "- RSS counts the pages the processes share (the interpreter and the libraries loaded"
        " before the fork) once in each of them; PSS splits every shared page between its"
        " sharers, so the processes' PSS adds up to what they take together. The target is on"
        " RSS.",
        "",
        "## Verdicts",
        "",
        *table(
            ["target", "measured", "verdict"],
            [
                [v.target, v.measured, v.word]
                for v in verdicts(result.samples, args.warmup_requests)
            ],
        ),
        "",
        "## Samples (MiB)",
        "",
        *sample_table(result.samples),
        "",
        "## Requests",
        "",
        *table(
            ["kind", "requests", "answered", "status"],
            [
                [
                    kind,
                    f"{result.tally.sent[kind]:,}",
                    f"{result.tally.answers_of(kind):,}",
                    str(EXPECTED[kind]),
                ]
                for kind in EXPECTED
                if result.tally.sent[kind]
            ],
        ),
        "",
        "Every answer had the status its kind expects (the service echoes the request id"
        " that names it); the requests without an answer were in flight when a wrk run"
        " stopped.",
    ]
    return "\n".join(lines) + "\n"


# --- the command line ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options, the mix and the settings parsed."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--requests", type=int, default=REQUESTS, help="requests in all")
    add(
        "--warmup-requests",
        type=int,
        default=WARMUP_REQUESTS,
        help="growth is judged from the first sample after this many",
    )
    add("--run-seconds", type=int, default=RUN_SECONDS, help="seconds per wrk run")
    add("--connections", type=int, default=CONNECTIONS)
    add("--workers", type=int, default=DEFAULT_WORKERS)
    add("--mix", default=mix_text(DEFAULT_MIX), help="KIND=PARTS,... (default: %(default)s)")
    add(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the service, e.g. COMMENTSVC_THREAD_CACHE_MB=0 (repeat)",
    )
    add("--output", type=Path, help="the report's file (default: benchmarks/results/)")
    args = parser.parse_args(argv)
    try:
        args.mix = parse_mix(args.mix)
    except ValueError as error:
        parser.error(f"--mix: {error}")
    if any("=" not in item for item in args.set):
        parser.error("--set takes NAME=VALUE")
    args.settings = dict(item.split("=", 1) for item in args.set)
    if args.requests < 1 or args.run_seconds < 1:
        parser.error("--requests and --run-seconds must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run, print and write the report; exit 1 when a verdict is missed, 2 on failure."""
    args = parse_args(argv)
    require_wrk()
    command = "python -m benchmarks.memory " + shlex.join(
        sys.argv[1:] if argv is None else list(argv)
    )
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="commentsvc-memory-") as tmp:
            result, gunicorn = measure(args, Path(tmp))
    except (SetupError, ServerError, CliError) as error:
        print(f"benchmarks.memory: {error}", file=sys.stderr)
        sys.exit(2)
    report = render(result, args, gunicorn, command.strip())
    output = args.output or RESULTS_DIR / f"{result.started:%Y-%m-%d-%H%M}-memory.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    print(report)
    shown = output.relative_to(PROJECT_ROOT) if output.is_relative_to(PROJECT_ROOT) else output
    log(f"done in {time.monotonic() - started:.0f} s; written to {shown}")
    if any(verdict.met is False for verdict in verdicts(result.samples, args.warmup_requests)):
        sys.exit(1)


if __name__ == "__main__":
    main()
