"""commentsvc beside a peer, Isso: the same data, the same gunicorn settings, the same load.

    .venv/bin/python -m benchmarks.peers [--duration 9] [--rounds 3] [--warmup 2]
        [--connections 8] [--workers N] [--database sqlite] [--only KEY,...]

Run it from the project root (``make bench-peers``; ``make bench`` runs it after the load
benchmark). Needs ``wrk`` on the PATH and, the first time, PyPI: Isso (the version
``tests/support/isso.py`` pins, in ``.venv/isso-<version>``) gets the gunicorn of commentsvc's
virtualenv installed beside it, pinned.

Both systems run on SQLite, each in a fresh database, served at once on free loopback ports by
gunicorn with the same settings (:mod:`benchmarks.peers.isso_serving`): as many workers as
``gunicorn.conf.py`` starts on this machine (or ``--workers``), commentsvc's worker class, and
every other setting gunicorn resolves for commentsvc, copied onto Isso's command line and
compared; each application logs at its default level, as it ships: commentsvc at INFO (one JSON
line per request), Isso as it sets itself up (INFO: the comment and its moderation links for
each new one, nothing per read). Isso is ``isso.run:application``, configured as the import
tests configure it (moderation and admin on, spam guard off).

Both get the same comments through their own HTTP APIs and moderation
(:mod:`benchmarks.peers.data`): threads of 50 and 100 approved comments, 20 pages with 1 to 20
approved comments and one pending each. Before the load, one answer of each system is
checked: every comment of the thread, the seeded counts. Then wrk (``--connections``, one
thread) sends each pair of equivalent requests (:mod:`benchmarks.peers.workloads`), as each
system's own client sends them:

* thread of 50 comments, and of 100: commentsvc ``GET /api/v1/sites/{site}/comments?sort=
  oldest&page=KEY`` (``widget.js``), Isso ``GET /?uri=KEY&sort=oldest&offset=0&nested_limit=5``
  (``embed.js``); and the thread of 100 with commentsvc asked for all of it (``limit=100``);
* counts of 20 pages: commentsvc ``GET …/counts?page=A&page=B…``, Isso ``POST /count`` with a
  JSON array of the 20 URIs (``benchmarks/lua/post_json.lua``);
* submit: commentsvc ``POST …/comments`` (``benchmarks/lua/submit.lua``), Isso ``POST
  /new?uri=KEY`` with the JSON its embed sends (``benchmarks/lua/isso_submit.lua``), each
  request a new comment on one of 200 new pages; both hold it for moderation (201 pending,
  202). Afterwards every acknowledged comment must be stored once, pending, in each
  database (Isso's read through its own database layer);
* submit with every abuse rule on: commentsvc as the load benchmark's ``submit-guarded``
  (a second gunicorn on the same database with rate limits on, counted in the database, a
  limit never reached; the submissions as the widget sends them, an ``Idempotency-Key`` and
  ``fill_ms`` each, to a site with a blocklist of 1,000 entries), against Isso's submit again,
  in rounds of their own.

Each pair runs in ``--rounds`` rounds of ``--duration / --rounds`` seconds per system, each
run after ``--warmup`` seconds of the same load, the system to go first alternating from
round to round, so that the drift of a shared machine falls on both; the median round of each
system stands, and the report gives the ratio of each round too. Noise is handled as in
:mod:`benchmarks.load` (wait for quiet CPUs, rerun a noisy run, within ``--budget``).

The tables are printed and written as Markdown to
``benchmarks/results/<date>-<time>-peers.md``; the last holds the targets against Isso
(counts at least twice Isso's, submit with every abuse rule on four times Isso's submit, every
other path faster), each met or missed with the ratio measured.
"""
