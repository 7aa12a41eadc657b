"""The workloads of a database run: one kind of request each, sent by wrk to one server."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from benchmarks import load_data

API = f"/api/v1/sites/{load_data.SITE}"
#: The server-rendered thread (an HTML fragment for a site to include), of the same site.
FRAGMENT = f"/sites/{load_data.SITE}/thread.html"
#: The site with a blocklist, which the submissions with every abuse rule on go to.
GUARDED_API = f"/api/v1/sites/{load_data.GUARDED_SITE}"
#: The same site of the ``queue`` database (1,000,000 comments): its busiest, with a blocklist.
QUEUE_API = f"/api/v1/sites/{load_data.QUEUE_GUARDED_SITE}"
#: How the label of a submit workload with every abuse rule on starts.
GUARDED_LABEL = "submit, every abuse rule on, limits in"
QUEUE = "/api/v1/moderation/comments"

#: Interleaved runs (of a third of ``--duration`` each) of workloads that are compared: the
#: 304 workload with logs at INFO (the default) and at WARNING, the first page of threads of
#: each size, a request on ``reads`` and the same on ``queue``.
ROUNDS = 3
#: The rows of the report's main table, in order. Every commentsvc row logs at INFO, the
#: service's default (one JSON line per request), but ``thread-304-quiet`` (WARNING).
MAIN = (
    "ceiling",
    "ceiling-end",
    "healthz",
    "widget",
    "thread",
    "thread-304",
    "fragment",
    "fragment-304",
    "counts",
    "queue",
    "submit",
    "submit-guarded",
    "submit-guarded-redis",
    "thread-304-quiet",
)
#: The submit workloads with every abuse rule on, each compared with plain ``submit``.
GUARDED = ("submit-guarded", "submit-guarded-redis")
#: The 304 workload on a second server that logs at WARNING, measured in rounds against
#: ``thread-304`` (INFO) to show what request logging costs; not beside a ceiling of its own.
QUIET = "thread-304-quiet"
#: Workloads measured right after a run of the ceiling of their own (``Report.beside``).
BESIDE = frozenset(MAIN) - {"ceiling", "ceiling-end", QUIET}
#: Workloads on the ``queue`` database (1,000,000 comments) measured in rounds against the
#: same request on ``reads`` (about 109,000), both servers up, by key: the key of that
#: request's workload on ``reads``. Whether a request stays as fast as the data grows.
AT_SCALE = {"counts-1m": "counts", "submit-guarded-1m": "submit-guarded"}


@dataclass(frozen=True)
class Workload:
    """One kind of request, sent by wrk to one of the servers."""

    key: str
    label: str
    server: str  # a key of benchmarks.load.run.TARGETS
    path: str
    headers: tuple[str, ...] = ()
    expected: frozenset[int] = frozenset({200})
    #: Submissions: wrk runs submit.lua, the comments' pages start with /load/<tag>-.
    submit_tag: str | None = None
    #: Submissions: each with an Idempotency-Key of its own and fill_ms, as the widget sends.
    like_widget: bool = False
    #: Thread reads: the ``total`` the page must answer (checked before the load).
    page_total: int | None = None
    #: The media type a 200 must have (checked before the load); empty: not checked.
    content_type: str = ""
    #: Measured in interleaved rounds with the others of its group, to compare them.
    in_rounds: bool = False
    #: The Lua script of ``benchmarks/lua/`` wrk runs, and its arguments (a submit workload
    #: gets its own from the harness); empty: ``submit.lua`` for submissions, else
    #: ``count_statuses.lua``.
    script: str = ""
    script_args: tuple[str, ...] = ()


def counts_path(api: str, pages: Iterable[str]) -> str:
    """The counts request of ``pages`` of the site of ``api``, as an article list sends it."""
    query = "&".join(f"page={urllib.parse.quote(key)}" for key in pages)
    return f"{api}/counts?{query}"


def thread_path(page: str, limit: int | None = None) -> str:
    """The thread request of ``page`` as the widget sends it, or with ``limit``."""
    query = {"page": page} | ({"limit": str(limit)} if limit else {})
    return f"{API}/comments?{urllib.parse.urlencode(query)}"


def fragment_path(page: str) -> str:
    """The server-rendered thread of ``page``, as a site includes it."""
    return f"{FRAGMENT}?{urllib.parse.urlencode({'page': page})}"


def workloads(
    tokens: dict[str, str], etag: str, run_tag: str, fragment_etag: str = ""
) -> list[Workload]:
    """Every workload of a database run, in the order they run; ``etag`` and
    ``fragment_etag`` are the current ones of the 100-comment page's JSON thread and HTML
    fragment, which the 304 workloads send back."""
    return [
        Workload("ceiling", "ceiling (minimal Flask app)", "ceiling", "/"),
        *_reads(f"Authorization: Bearer {tokens.get('reads', '')}", etag, fragment_etag),
        *_scale(),
        *_submit(run_tag),
        Workload(
            QUIET,
            "thread read, 304, logs at WARNING",
            "reads-quiet",
            thread_path(load_data.THREAD_PAGE),
            (f"If-None-Match: {etag}",),
            frozenset({304}),
        ),
        *_queue_1m(f"Authorization: Bearer {tokens.get('queue', '')}", run_tag),
    ]


def _reads(bearer: str, etag: str, fragment_etag: str) -> list[Workload]:
    """The requests of readers and moderators to the ``reads`` database."""
    thread = thread_path(load_data.THREAD_PAGE)
    fragment = fragment_path(load_data.THREAD_PAGE)
    return [
        Workload("healthz", "GET /healthz (no I/O: the app's fixed cost)", "reads", "/healthz"),
        Workload("widget", "GET /widget.js", "reads", "/widget.js"),
        Workload("thread", "thread read, 100-comment page", "reads", thread, page_total=100),
        Workload(
            "thread-304",
            "thread read, If-None-Match (304)",
            "reads",
            thread,
            (f"If-None-Match: {etag}",),
            frozenset({304}),
        ),
        # thread.html holds up to MAX_PAGE_SIZE (200) comments: all 100 of this page.
        Workload(
            "fragment",
            "thread.html, the server-rendered 100-comment page",
            "reads",
            fragment,
            content_type="text/html",
        ),
        Workload(
            "fragment-304",
            "thread.html, If-None-Match (304)",
            "reads",
            fragment,
            (f"If-None-Match: {fragment_etag}",),
            frozenset({304}),
        ),
        Workload("counts", "counts of 20 pages", "reads", counts_path(API, load_data.COUNT_PAGES)),
        Workload(
            "queue",
            "moderation queue, status=pending",
            "reads",
            f"{QUEUE}?status=pending",
            (bearer,),
        ),
        Workload("queue-all", "moderation queue, all statuses", "reads", QUEUE, (bearer,)),
    ]


def _scale() -> list[Workload]:
    """The first page of threads of each size, as the widget asks for it and with limit=10."""
    return [
        Workload(
            f"thread-{count}" + (f"-limit{limit}" if limit else ""),
            f"thread, {count:,} comments" + (f", limit={limit}" if limit else ""),
            "reads",
            thread_path(page, limit),
            page_total=count,
            in_rounds=True,
        )
        for limit in (None, 10)
        for count, page in load_data.SCALE_PAGES.items()
    ]


def _submit(run_tag: str) -> list[Workload]:
    """JSON submissions, each with a body of its own: as an API client sends them, rate
    limits off; and as the widget sends them, to the site with a blocklist of 1,000 entries,
    rate limits on (a limit never reached, so every request is counted), their counters in
    the database or in Redis."""
    submits = (
        ("submit", "submit (JSON POST)", "reads", API, False),
        ("submit-guarded", f"{GUARDED_LABEL} the database", "reads-guarded", GUARDED_API, True),
        (
            "submit-guarded-redis",
            f"{GUARDED_LABEL} Redis",
            "reads-guarded-redis",
            GUARDED_API,
            True,
        ),
    )
    return [
        _submit_workload(key, label, server, api, run_tag, like_widget)
        for key, label, server, api, like_widget in submits
    ]


def _submit_workload(
    key: str, label: str, server: str, api: str, run_tag: str, like_widget: bool
) -> Workload:
    """Submissions to the site of ``api``, each with a body of its own, answered 201."""
    return Workload(
        key,
        label,
        server,
        f"{api}/comments",
        expected=frozenset({201}),
        # The submissions check finds a workload's pages by the prefix /load/<tag>-, so no
        # tag may be another's followed by "-": the key's dashes become dots.
        submit_tag=f"{run_tag}.{key.replace('-', '.')}",
        like_widget=like_widget,
    )


def _queue_1m(bearer: str, run_tag: str) -> list[Workload]:
    """The ``queue`` database (1,000,000 comments by default): the moderation queue; the
    counts of 20 pages and submissions with every abuse rule on (as the widget sends them,
    rate limits on, counted in the database), on its busiest site, which has a blocklist of
    1,000 entries (:data:`AT_SCALE`)."""
    counts = counts_path(QUEUE_API, load_data.QUEUE_COUNT_PAGES)
    return [
        Workload(
            "queue-1m",
            "moderation queue, status=pending",
            "queue",
            f"{QUEUE}?status=pending",
            (bearer,),
        ),
        Workload("queue-all-1m", "moderation queue, all statuses", "queue", QUEUE, (bearer,)),
        Workload("counts-1m", "counts of 20 pages", "queue", counts),
        _submit_workload(
            "submit-guarded-1m",
            f"{GUARDED_LABEL} the database",
            "queue-guarded",
            QUEUE_API,
            run_tag,
            like_widget=True,
        ),
    ]


def workloads_by_key() -> dict[str, Workload]:
    """Every workload (without tokens or ETag), by key."""
    return {workload.key: workload for workload in workloads({}, "", "")}


def selected(workload: Workload, only: Iterable[str]) -> bool:
    """Whether ``--only`` selects ``workload``; the ceiling always runs."""
    only = set(only)
    return not only or workload.key in only or workload.key == "ceiling"
