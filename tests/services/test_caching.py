"""What workers keep between requests: rendered thread pages and sites. Readers must never
see a thread older than what is approved, and a site change made here applies at once."""

from __future__ import annotations

import gc
import hashlib
import tracemalloc
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.extensions import db
from commentsvc.models import CommentStatus, Site
from commentsvc.services import sites, threads
from commentsvc.services.threads import CacheKey
from tests.conftest import ORIGIN

PAGE = "/2025/10/us-china-talks"
THREAD = f"/api/v1/sites/news/comments?page={PAGE}"


def bodies(client: FlaskClient, url: str = THREAD) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200
    return [comment["body"] for comment in response.get_json()["comments"]]


def test_a_cached_thread_follows_every_moderation_change(
    client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    first = make_comment(body="First")
    assert bodies(client) == ["First"]
    assert bodies(client) == ["First"]  # served again from the worker's cache

    pending = make_comment(body="Second", status=CommentStatus.PENDING)
    url = f"/api/v1/moderation/comments/{pending}"
    assert client.patch(url, json={"status": "approved"}, headers=auth).status_code == 200
    assert bodies(client) == ["First", "Second"]

    edited = client.patch(
        f"/api/v1/moderation/comments/{first}", json={"body": "First, edited"}, headers=auth
    )
    assert edited.status_code == 200
    assert bodies(client) == ["First, edited", "Second"]

    assert client.delete(url, headers=auth).status_code == 204
    assert bodies(client) == ["First, edited"]


def test_a_slice_read_at_a_newer_version_takes_the_older_ones_place(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    """Once a page's version moves on, its slices as of the older version can never be
    served again: they must not keep the budget from the slices being read."""
    make_comment(body="First")
    fragment = f"/sites/news/thread.html?page={PAGE}"
    for n in range(5):
        assert client.get(THREAD).status_code == 200
        assert client.get(fragment).status_code == 200
        pending = make_comment(body=f"Reply {n}", status=CommentStatus.PENDING)
        url = f"/api/v1/moderation/comments/{pending}"
        assert client.patch(url, json={"status": "approved"}, headers=auth).status_code == 200
    assert bodies(client)[-1] == "Reply 4"
    assert len(app.extensions["commentsvc.cache.threads"]) == 2  # the JSON slice, the markup


def test_each_cursor_and_limit_is_its_own_page(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    for n in range(3):
        make_comment(body=f"c{n}")
    assert bodies(client, f"{THREAD}&limit=2") == ["c0", "c1"]
    cursor = client.get(f"{THREAD}&limit=2").get_json()["next_cursor"]
    assert bodies(client, f"{THREAD}&limit=2&cursor={cursor}") == ["c2"]
    assert bodies(client, f"{THREAD}&limit=1") == ["c0"]


def test_the_thread_cache_can_be_turned_off(app: Flask, make_comment: Callable[..., int]) -> None:
    app.config["THREAD_CACHE_MB"] = 0
    client = app.test_client()
    make_comment(body="Only")
    assert bodies(client) == ["Only"] == bodies(client)
    assert len(app.extensions["commentsvc.cache.threads"]) == 0


def test_a_site_change_made_through_this_process_applies_at_once(
    app: Flask, client: FlaskClient
) -> None:
    headers = {"Origin": ORIGIN}
    assert client.get(THREAD, headers=headers).headers["Access-Control-Allow-Origin"] == ORIGIN
    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
        assert site is not None
        sites.update_site(site.id, "News", ["https://elsewhere.example"], True)
    moved = client.get(THREAD, headers=headers)
    assert moved.status_code == 403  # the origin is refused at once, readably
    assert moved.headers["Access-Control-Allow-Origin"] == "*"


def test_without_the_site_cache_every_request_reads_the_site(
    app: Flask, client: FlaskClient
) -> None:
    app.config["SITE_CACHE_SECONDS"] = 0
    headers = {"Origin": ORIGIN}
    assert client.get(THREAD, headers=headers).headers["Access-Control-Allow-Origin"] == ORIGIN
    with app.app_context():
        # As another worker (or the CLI) would change it: behind this process's back.
        db.session.execute(
            sa.update(Site).where(Site.slug == "news").values(origins=["https://x.example"])
        )
        db.session.commit()
    refused = client.get(THREAD, headers=headers)
    assert refused.status_code == 403 and refused.headers["Access-Control-Allow-Origin"] == "*"


def test_a_page_that_does_not_exist_is_answered_but_not_kept(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    """Security review L4: any key can be asked for; kept, made-up keys would fill the
    cache and push the real pages out."""
    cache_key = "commentsvc.cache.threads"
    for n in range(3):
        response = client.get(f"/api/v1/sites/news/comments?page=/made-up/{n}")
        assert response.status_code == 200
        assert response.get_json() == {
            "page": f"/made-up/{n}",
            "markup": "text",
            "total": 0,
            "comments": [],
            "next_cursor": None,
        }
        etag = response.headers["ETag"]
        again = client.get(f"/api/v1/sites/news/comments?page=/made-up/{n}")
        assert again.headers["ETag"] == etag
        assert client.get(again.request.url, headers={"If-None-Match": etag}).status_code == 304
    assert len(app.extensions.get(cache_key, ())) == 0

    make_comment(body="Real")
    assert bodies(client) == ["Real"]
    assert len(app.extensions[cache_key]) == 1


def _cached_thread(n: int, key_length: int, body_length: int) -> tuple[CacheKey, str, bytes]:
    """A cache entry shaped like a real one: a page key, the slice, a 20-character ETag, a
    body."""
    key = f"/{n}".ljust(key_length, "k")
    tag = hashlib.sha1(str(n).encode()).hexdigest()[:20]
    body = b'{"page": "%d", "total": 0, "comments": [], "next_cursor": null}' % n
    return (
        (1, key, threads.slice_key(None, 50, "oldest", "text")),
        tag,
        body.ljust(body_length, b" "),
    )


@pytest.mark.parametrize(
    ("key_length", "body_length"),
    [(2, 40), (60, 300), (500, 4000), (3900, 70)],
    ids=["short-key-tiny-body", "typical", "long-key-long-body", "made-up-key-empty-page"],
)
def test_the_thread_caches_accounting_is_its_real_memory(key_length: int, body_length: int) -> None:
    """THREAD_CACHE_MB is the budget of the whole cache: what it counts of each entry
    (body, key, ENTRY_OVERHEAD) is within a quarter of what the entries take, measured."""
    cache = threads._make_cache({"THREAD_CACHE_MB": 256})
    entries = 10_000
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(entries):
            key, tag, body = _cached_thread(n, key_length, body_length)
            cache[key] = (tag, body, threads.entry_size(key, body))
        del key, tag, body
        gc.collect()
        real = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert len(cache) == entries
    assert 0.75 <= cache.currsize / real <= 1.25, (cache.currsize / entries, real / entries)


def test_the_thread_cache_stays_within_its_budget() -> None:
    cache = threads._make_cache({"THREAD_CACHE_MB": 1})
    for n in range(10_000):
        key, tag, body = _cached_thread(n, 60, 300)
        cache[key] = (tag, body, threads.entry_size(key, body))
    per_entry = threads.entry_size(key, body)
    assert per_entry > 300 + 60 + len(key[2]) + threads.ENTRY_OVERHEAD
    assert len(cache) == 1024 * 1024 // per_entry
