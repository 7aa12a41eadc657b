"""One visibility rule on every public read path (DESIGN §3, §8): approved only, never an
email.

Each path is one line of :data:`PATHS`; :func:`test_every_public_read_path_is_walked` fails
when a public GET route is added without one. Every comment is submitted through the public
API and moderated through the moderation API, as in life: a pending, a rejected, a spam and
a deleted comment beside one approved comment, either never published or published first
(every path read while it was, caches warm) and then taken back.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import valid_submission
from tests.support.html import html

SITE = "/api/v1/sites/news"
PAGE = "/2025/10/us-china-talks"
ATOM = "{http://www.w3.org/2005/Atom}"
#: The comments of each test, by what happens to them; only ``approved`` stays public.
HIDDEN = ("pending", "rejected", "spam", "deleted")


@dataclass(frozen=True)
class Seen:
    """What one public path shows: how many comments, which ones (when it names them), and
    every byte it answered."""

    count: int
    ids: frozenset[int] | None
    raw: bytes


def _thread(client: FlaskClient, ids: list[int]) -> Seen:
    response = client.get(f"{SITE}/comments?page={PAGE}")
    assert response.status_code == 200
    data = response.get_json()
    shown = frozenset(comment["id"] for comment in data["comments"])
    assert data["total"] == len(shown)
    return Seen(len(shown), shown, response.get_data())


def _one_comment(client: FlaskClient, ids: list[int]) -> Seen:
    shown: set[int] = set()
    raw = b""
    for comment_id in ids:
        response = client.get(f"{SITE}/comments/{comment_id}")
        assert response.status_code in {200, 404}
        if response.status_code == 200:
            assert response.get_json()["id"] == comment_id
            shown.add(comment_id)
        raw += response.get_data()
    return Seen(len(shown), frozenset(shown), raw)


def _counts(client: FlaskClient, ids: list[int]) -> Seen:
    response = client.get(f"{SITE}/counts?page={PAGE}")
    assert response.status_code == 200
    return Seen(response.get_json()["counts"][PAGE], None, response.get_data())


def _rendered(path: str) -> Callable[[FlaskClient, list[int]], Seen]:
    """A page of the thread as HTML (DESIGN §10): the comments it shows are its articles;
    what it answered is its body (the discuss page's head holds its stylesheet)."""

    def read(client: FlaskClient, ids: list[int]) -> Seen:
        response = client.get(f"/sites/news/{path}?page={PAGE}")
        assert response.status_code == 200
        thread = html(response).find("section", cls="commentsvc-thread")
        shown = frozenset(
            int(article.attrs["id"].removeprefix("comment-"))
            for article in thread.find_all("article")
        )
        assert int(thread.attrs["data-total"]) == len(shown)
        raw = response.get_data()
        return Seen(len(shown), shown, raw[raw.index(b"<body>") :] if b"<body>" in raw else raw)

    return read


def _feed(query: str) -> Callable[[FlaskClient, list[int]], Seen]:
    def read(client: FlaskClient, ids: list[int]) -> Seen:
        response = client.get(f"{SITE}/feed.atom{query}")
        assert response.status_code == 200
        entries = ET.fromstring(response.get_data()).findall(f"{ATOM}entry")
        shown = frozenset(
            int(re.sub(r".*/comments/", "", entry.findtext(f"{ATOM}id", ""))) for entry in entries
        )
        return Seen(len(entries), shown, response.get_data())

    return read


@dataclass(frozen=True)
class PublicPath:
    """A public read path: its Flask endpoint and how to read what it shows."""

    endpoint: str
    read: Callable[[FlaskClient, list[int]], Seen]


#: Every public read path; a new one is one more line.
PATHS = {
    "thread": PublicPath("public.thread", _thread),
    "one comment": PublicPath("public.comment", _one_comment),
    "counts": PublicPath("public.counts", _counts),
    "site feed": PublicPath("public.feed", _feed("")),
    "page feed": PublicPath("public.feed", _feed(f"?page={PAGE}")),
    "thread fragment": PublicPath("pages.thread_html", _rendered("thread.html")),
    "discuss page": PublicPath("pages.discuss", _rendered("discuss")),
}
#: The blueprints whose GET routes readers reach.
PUBLIC_BLUEPRINTS = ("public", "pages")


def test_every_public_read_path_is_walked(app: Flask) -> None:
    public_reads = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in PUBLIC_BLUEPRINTS and "GET" in (rule.methods or set())
    }
    assert public_reads == {path.endpoint for path in PATHS.values()}


@dataclass(frozen=True)
class Comments:
    """The comments of a test by name, and every author's email."""

    ids: dict[str, int]
    emails: list[str]
    bodies: dict[str, str]


def _moderate(client: FlaskClient, auth: dict[str, str], comment_id: int, change: str) -> None:
    """Give a comment the status ``change`` as a moderator, or delete it (``deleted``)."""
    url = f"/api/v1/moderation/comments/{comment_id}"
    if change == "deleted":
        assert client.delete(url, headers=auth).status_code == 204
    else:
        response = client.patch(url, json={"status": change}, headers=auth)
        assert response.status_code == 200, response.get_json()


@pytest.fixture(params=["never published", "published, then taken back"])
def comments(request: pytest.FixtureRequest, client: FlaskClient, auth: dict[str, str]) -> Comments:
    """One comment of each fate on one page, the public paths read before the end."""
    ids: dict[str, int] = {}
    bodies: dict[str, str] = {}
    for name in ("approved", *HIDDEN):
        bodies[name] = f"The {name} comment, marker-{name}."
        submission = valid_submission(
            body=bodies[name],
            author_name=f"Author {name}",
            author_email=f"{name}-author@example.com",
        )
        response = client.post(f"{SITE}/comments", json=submission)
        assert response.status_code == 201, response.get_json()
        ids[name] = response.get_json()["id"]
    taken_back = request.param != "never published"
    for name, comment_id in ids.items():
        if name == "approved" or taken_back:
            _moderate(client, auth, comment_id, "approved")
    if taken_back:
        every = sorted(ids.values())
        for path in PATHS.values():
            assert path.read(client, every).count == len(every)  # all public: caches warm
    for name in HIDDEN:
        if name != "pending" or taken_back:
            _moderate(client, auth, ids[name], name)
    emails = [f"{name}-author@example.com" for name in ids]
    return Comments(ids, emails, bodies)


@pytest.mark.parametrize("path", PATHS.values(), ids=PATHS.keys())
def test_only_the_approved_comment_is_public(
    client: FlaskClient, comments: Comments, path: PublicPath
) -> None:
    seen = path.read(client, sorted(comments.ids.values()))
    assert seen.count == 1
    assert seen.ids in (None, frozenset({comments.ids["approved"]}))
    for name in HIDDEN:
        assert f"marker-{name}".encode() not in seen.raw, name
    for email in comments.emails:
        assert email.encode() not in seen.raw, email
    assert b"@" not in seen.raw  # no address of any kind
