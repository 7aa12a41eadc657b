"""What workers keep between requests: rendered thread pages and sites. Readers must never
see a thread older than what is approved, and a site change made here applies at once."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.extensions import db
from commentsvc.models import CommentStatus, Site
from commentsvc.services import sites
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
    assert "Access-Control-Allow-Origin" not in moved.headers


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
    assert "Access-Control-Allow-Origin" not in client.get(THREAD, headers=headers).headers
