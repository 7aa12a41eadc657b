"""The pairs of workloads: one request of a reader or a commenter, as each system's own client
sends it, and what each answer must hold before the load starts.

commentsvc's requests are those of ``widget.js`` (a thread: ``sort`` and ``page``, its first
page of ``PAGE_SIZE`` comments; counts: ``page`` repeated), Isso's those of its ``embed.js``
(a thread: ``uri``, ``sort``, ``offset`` and ``nested_limit``, its defaults of every
top-level comment and five replies to each) and ``count.js`` (a JSON array of URIs).
Submissions go to commentsvc twice: as an API client posts them to a site without a
blocklist, rate limits off; and as the widget posts them (an ``Idempotency-Key`` and
``fill_ms`` each, from readers of their own) to a server with every abuse rule on, the load
benchmark's ``submit-guarded``; Isso's are the same in both pairs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from benchmarks.load.server import fetch
from benchmarks.load.workloads import Workload
from benchmarks.load_data import BLOCKLIST_ENTRIES, SetupError
from benchmarks.peers.data import (
    API,
    COUNT_PAGES,
    GUARDED_API,
    THREADS,
    approved_counts,
    quoted,
)
from benchmarks.peers.isso_serving import ISSO_PENDING

#: Isso's embed asks for at most this many replies of each top-level comment (its
#: ``max-comments-nested``), and for every top-level comment (``max-comments-top``: inf).
ISSO_NESTED_LIMIT = 5
COMMENTSVC, ISSO = 0, 1
SYSTEMS = ("commentsvc", "Isso")
#: The servers a pair's workloads name: commentsvc as it ships (rate limits off, as the load
#: benchmark's plain submit), commentsvc with every abuse rule on, and Isso.
SERVERS = ("commentsvc", "commentsvc-guarded", "isso")


@dataclass(frozen=True)
class Answer:
    """What one answer held: the comments shown (or pages counted), its total, its size."""

    shown: int
    total: int
    size: int


@dataclass(frozen=True)
class Pair:
    """The same request of a reader or commenter to each system, in :data:`SYSTEMS` order."""

    key: str
    label: str
    workloads: tuple[Workload, Workload]
    #: Reads the answer of one system to the request (at its base URL); None: not checked.
    check: tuple[Callable[[str], Answer], Callable[[str], Answer]] | None = None


def commentsvc_thread(page: str, limit: int | None = None) -> str:
    """A thread request as widget.js sends it (with ``limit`` when asked)."""
    return f"{API}/comments?sort=oldest&page={quoted(page)}" + (f"&limit={limit}" if limit else "")


def isso_thread(page: str) -> str:
    """A thread request as Isso's embed.js sends it."""
    return f"/?uri={quoted(page)}&sort=oldest&offset=0&nested_limit={ISSO_NESTED_LIMIT}"


def pairs(run_tag: str) -> list[Pair]:
    """Every pair, in the order they run (submissions last: they add comments)."""
    counts = "&".join(f"page={quoted(page)}" for page in COUNT_PAGES)
    counted = json.dumps(list(COUNT_PAGES), separators=(",", ":"))
    result = [
        _thread_pair(f"thread-{count}", f"thread of {count} comments", page, count)
        for count, page in THREADS.items()
    ]
    result.append(
        _thread_pair(
            "thread-100-all",
            "thread of 100, commentsvc asked for all (`limit=100`)",
            THREADS[100],
            100,
            limit=100,
        )
    )
    result.append(
        Pair(
            "counts",
            "counts of 20 pages",
            (
                Workload("counts", "counts of 20 pages", "commentsvc", f"{API}/counts?{counts}"),
                Workload(
                    "counts",
                    "counts of 20 pages",
                    "isso",
                    "/count",
                    script="post_json.lua",
                    script_args=(counted,),
                ),
            ),
            (_commentsvc_counts(counts), _isso_counts(counted)),
        )
    )
    result.append(
        Pair(
            "submit",
            "submit (JSON POST, each body new, held for moderation)",
            (
                Workload(
                    "submit",
                    "submit",
                    "commentsvc",
                    f"{API}/comments",
                    expected=frozenset({201}),
                    submit_tag=f"{run_tag}.commentsvc",
                ),
                _isso_submit("submit", f"{run_tag}.isso"),
            ),
        )
    )
    # Isso's side is its submit again, measured in rounds of its own beside this one.
    result.append(
        Pair(
            "submit-guarded",
            "submit, commentsvc with every abuse rule on (rate limits, a blocklist of"
            f" {BLOCKLIST_ENTRIES:,} entries, as the widget posts), Isso as above",
            (
                Workload(
                    "submit-guarded",
                    "submit, every abuse rule on",
                    "commentsvc-guarded",
                    f"{GUARDED_API}/comments",
                    expected=frozenset({201}),
                    submit_tag=f"{run_tag}.commentsvc.guarded",
                    like_widget=True,
                ),
                _isso_submit("submit-guarded", f"{run_tag}.isso.guarded"),
            ),
        )
    )
    return result


def _isso_submit(key: str, submit_tag: str) -> Workload:
    """A new comment as Isso's embed posts it, held for moderation (202)."""
    return Workload(
        key,
        "submit",
        "isso",
        "/new",
        expected=frozenset({ISSO_PENDING}),
        submit_tag=submit_tag,
        script="isso_submit.lua",
    )


def _thread_pair(key: str, label: str, page: str, count: int, limit: int | None = None) -> Pair:
    ours = Workload(key, label, "commentsvc", commentsvc_thread(page, limit))
    theirs = Workload(key, label, "isso", isso_thread(page))

    def check_ours(url: str) -> Answer:
        body, size = _get_json(url + ours.path)
        answer = Answer(len(body["comments"]), body["total"], size)
        if answer.total != count or (limit and answer.shown != limit):
            raise SetupError(f"commentsvc {ours.path}: {answer}, not {count} comments")
        return answer

    def check_theirs(url: str) -> Answer:
        body, size = _get_json(url + theirs.path)
        shown = sum(1 + len(comment["replies"]) for comment in body["replies"])
        answer = Answer(shown, body["total_replies"], size)
        if answer.total != count or answer.shown != count:
            raise SetupError(f"Isso {theirs.path}: {answer}, not all {count} comments")
        return answer

    return Pair(key, label, (ours, theirs), (check_ours, check_theirs))


def _commentsvc_counts(query: str) -> Callable[[str], Answer]:
    def check(url: str) -> Answer:
        body, size = _get_json(f"{url}{API}/counts?{query}")
        if body["counts"] != approved_counts():
            raise SetupError(f"commentsvc's counts are not the seeded ones: {body}")
        return Answer(len(body["counts"]), sum(body["counts"].values()), size)

    return check


def _isso_counts(pages: str) -> Callable[[str], Answer]:
    def check(url: str) -> Answer:
        answer = requests.post(
            f"{url}/count", data=pages, headers={"Content-Type": "application/json"}, timeout=10
        )
        counts = answer.json() if answer.status_code == 200 else None
        if counts != list(approved_counts().values()):
            raise SetupError(f"Isso's counts are not the seeded ones: {answer.text[:300]}")
        return Answer(len(counts), sum(counts), len(answer.content))

    return check


def _get_json(url: str) -> tuple[Any, int]:
    status, _, body = fetch(url)
    if status != 200:
        raise SetupError(f"GET {url}: {status} {body[:300]!r}")
    return json.loads(body), len(body)
