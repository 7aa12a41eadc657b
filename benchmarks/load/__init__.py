"""Load benchmark of commentsvc over real HTTP: gunicorn with the production config, wrk as client.

    .venv/bin/python -m benchmarks.load [--database sqlite|postgresql|both] [--duration 10]
        [--warmup 2] [--connections 8] [--workers N] [--queue-rows 1000000]
        [--only KEY,...] [--profile KEY,...] [--workers-sweep 2,3,4] [--list]

Run it from the project root (``make bench`` runs it on both databases, then the peer
benchmark, :mod:`benchmarks.peers`).

Needs ``wrk`` on the PATH (Debian: ``apt-get install wrk``); ``--profile`` needs py-spy
(``pip install py-spy``); PostgreSQL needs ``COMMENTSVC_TEST_DATABASE_URL`` naming a database on
the server to use (``scripts/ensure-postgres.sh`` starts a local one and prints such a URL):
the benchmark makes its own databases there, ``commentsvc_bench_*``, and drops them at the end.
The ``submit-guarded-redis`` workload needs ``COMMENTSVC_TEST_REDIS_URL`` naming a Redis on this
machine (``scripts/ensure-redis.sh`` starts one and prints its URL); it only adds counters there.

For each database it prepares a ``reads`` and a ``queue`` database (see
``benchmarks/load_data.py``: the real schema and accounts through the CLI, the comments in
bulk; SQLite files are cached in ``benchmarks/.cache/``), then serves, each on a free
loopback port with ``gunicorn -c gunicorn.conf.py`` (as many workers as that file starts on
this machine unless ``--workers`` says otherwise, rate limits off unless said below, logs at
INFO, the service's default: one JSON line per request, into a file, as the targets are
defined; only the one server said below logs at WARNING):

* ``benchmarks/ceiling_app.py``, a Flask app answering a fixed small JSON body: the ceiling of
  this stack on this machine. It is measured first, for a third of ``--duration`` right
  before each workload of the main table (that workload's throughput is compared with that
  run: the speed of a shared virtual machine drifts by tens of percent over minutes), and
  again last;
* commentsvc on ``reads``: ``GET /healthz`` (no I/O: what every request costs in the
  application's hooks); ``GET /widget.js``; the thread of a 100-comment page as the widget
  asks for it, and the same with ``If-None-Match`` (304); the same page's server-rendered
  thread, ``GET /sites/{site}/thread.html?page=KEY`` (an HTML fragment of all 100 comments,
  rendered once and cached by the service), and its 304; approved counts of 20 pages; the
  moderation queue (``status=pending``, bearer token) and its first page of all statuses;
  the first page of threads of 10, 1,000 and 100,000 comments, as the widget asks for it and
  with ``limit=10``; JSON submissions, each with a body of its own, on 200 pages per wrk run;
* beside it, commentsvc on ``reads`` with logs at WARNING (``reads-quiet``: no line per
  request): the 304 workload on both servers in alternating rounds (``thread-304`` at INFO,
  ``thread-304-quiet`` at WARNING), to show what request logging costs;
* commentsvc on ``reads`` with every abuse rule on, twice: rate limits on (a limit never
  reached: every submission is counted, none refused), their counters in the database, then
  in Redis; the same submissions as the widget sends them (an ``Idempotency-Key`` of their
  own, ``fill_ms``) to a site with a blocklist of 1,000 entries. The report compares them
  with plain submissions: what abuse protection costs;
* commentsvc on ``queue`` (1,000,000 comments): the queue's first page, all statuses and
  ``status=pending``, read before any submission adds to it; and whether a request stays as
  fast as the data grows: the counts of 20 pages of its busiest site (``counts-1m``, from
  its busiest page to one of its quietest) in rounds alternating with the counts on
  ``reads``, both servers up; submissions with every abuse rule on as above (a second server
  on ``queue``, rate limits counted in the database) to that site, which has the same
  blocklist of 1,000 entries (``submit-guarded-1m``), in rounds alternating with those to
  ``guarded`` on ``reads``.

Every workload is a ``wrk`` run from a separate process (``--connections``, one wrk thread by
default) for ``--duration`` seconds after ``--warmup`` seconds of the same load; workloads
that are compared with each other (the thread sizes, INFO against WARNING, a request on
``reads`` against the same on ``queue``) run in three interleaved rounds of a third of that
instead, and the median round stands for each (a workload of the main table compared so
keeps its own run there too). The answers are counted by status with the Lua scripts in
``benchmarks/lua/``, so a status other than the expected one counts as an error.

The machine may be shared. Before each run the harness waits (up to ``--quiet-wait`` seconds)
until other processes use less than ``--max-noise`` of the CPUs; it records the load average,
measures the CPU time of the server, of its database server processes and of wrk (per request)
and the share of the CPUs that anybody else took during the run, and runs a workload again (up
to ``--retries`` times) when that share was over ``--max-noise``, keeping the quietest run.
Waiting and reruns stop in time to keep a database's run within ``--budget`` seconds. The
report states how far repeated runs of one workload differed: the noise floor of the run.

After each submit workload (and after its rounds, apart) every answer must have been 201 and
the database it posted to must hold every comment acknowledged, each id once, pending and
flagged by no abuse rule; the only rows allowed beyond those are requests wrk abandoned in
flight when its time was up (at most one per connection and wrk run). Server memory is the
sum of the RSS (and PSS) of the gunicorn master and its workers, read from /proc after each
server's last run.

The tables are printed and written as Markdown to ``benchmarks/results/<date>-<time>-<db>.md``;
their *Targets* table holds each of issue 18's targets with the figure this run measured and
met, missed or "-" (not measured: shares of the ceiling, p99s, the ratios of scale, counts
and submissions flat on ``queue`` against ``reads``); the targets relative to Isso are judged
by the peer benchmark's report.
``--profile`` runs the named workloads once more under ``py-spy record`` (all workers,
non-blocking: wall time of requests in progress, waits for the database included) and adds
where the time goes to the report; the raw stacks are kept in ``benchmarks/.cache/profiles/``
(speedscope and flamegraph.pl read them). ``--workers-sweep`` runs the selected workloads
(default: thread read and submit, with the ceiling) for each number of workers given, to
choose ``WEB_CONCURRENCY``; ``--only`` reruns some workloads (the ceiling always runs).
"""

from __future__ import annotations

import sys


def log(message: str) -> None:
    """Progress on standard error; the report goes to standard output."""
    print(message, file=sys.stderr, flush=True)
