"""Soak and fault injection: commentsvc under steady load for a long time, then the same with
its dependencies taken away, over real HTTP against gunicorn as production runs it.

    .venv/bin/python -m benchmarks.soak [--database postgresql|sqlite] [--duration 600]
        [--rate N | --share 0.7] [--phases clean,faults] [--window 10] ...

Run it from the project root (``make bench-soak``). It starts everything it needs itself
(:mod:`benchmarks.soak.stack`): a private PostgreSQL cluster through
``scripts/ensure-postgres.sh`` (its own directory and port, so restarting it disturbs no test
run), seeded like the load benchmark's ``reads`` database; a Redis for the rate limits;
gunicorn with ``gunicorn.conf.py`` (2 workers); one ``commentsvc worker`` delivering every
outbox event to a webhook receiver and a mail per new comment to an SMTP server.

Unless ``--rate`` is given, the capacity of the mix is measured first (8 connections, closed
loop); each phase then sends the mix at ``--share`` (70%) of it, open loop at a fixed rate
(:mod:`benchmarks.soak.traffic`), for ``--duration`` seconds:

1. **clean soak**: every answer must be the expected one;
2. **soak with faults**: Redis killed and started again, PostgreSQL stopped and started
   again, one gunicorn worker SIGKILLed, spread over the phase. While a dependency is down
   only ``503`` with ``Retry-After`` may answer; the service must recover by itself.

After each phase the harness waits for the worker to finish (``--drain-timeout``) and checks
(:mod:`benchmarks.soak.checks`): acknowledged submissions against the comments stored (read
from the database: none lost, none twice), acknowledged approvals against approved comments,
every outbox event against the calls and mails received (repeats reported apart: delivery is
at least once, DESIGN §8). Every 10 seconds it records requests, statuses, p50/p99 latency
and the RSS and PSS of gunicorn's master and workers (:mod:`benchmarks.soak.windows`).

The report (:mod:`benchmarks.soak.report`) is printed and written to
``benchmarks/results/YYYY-MM-DD-HHMM-soak.md``. The exit status is 1 when a target was
missed, 2 when the run could not be set up.
"""
