"""The audit log: every moderation event, filtered and limited to the moderator's sites."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from commentsvc.pagination import encode_cursor
from tests.support.html import html
from tests.support.panel import (
    ADMIN,
    BLOG_MODERATOR,
    PANEL,
    submit,
)
from tests.support.state import PENDING


def _audit_rows(response: TestResponse) -> list[list[str]]:
    rows = html(response).find("table", cls="audit").find("tbody").find_all("tr")
    return [[cell.text for cell in row.find_all("td")] for row in rows]


def test_audit_lists_events_newest_first(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    first = make_comment(status=PENDING)
    second = make_comment(status=PENDING, site="blog", page="/post")
    submit(admin_client, f"{PANEL}/comments/{first}/approve")
    submit(admin_client, f"{PANEL}/comments/{second}/spam")
    submit(admin_client, f"{PANEL}/comments/{first}/delete")
    rows = _audit_rows(admin_client.get(f"{PANEL}/audit"))
    assert [(row[1], row[2], row[3], row[4]) for row in rows] == [
        (ADMIN, "delete", f"#{first}", "news"),
        (ADMIN, "spam pending → spam", f"#{second}", "blog"),
        (ADMIN, "approve pending → approved", f"#{first}", "news"),
    ]
    assert all(row[0] == "just now" for row in rows)


def test_audit_filters(
    app: Flask,
    admin_client: FlaskClient,
    blog_client: FlaskClient,
    make_comment: Callable[..., int],
) -> None:
    news = make_comment(status=PENDING)
    blog = make_comment(status=PENDING, site="blog", page="/post")
    submit(admin_client, f"{PANEL}/comments/{news}/approve")
    submit(blog_client, f"{PANEL}/comments/{blog}/reject")
    submit(admin_client, f"{PANEL}/comments/{blog}/approve")

    def comments_in(path: str) -> list[str]:
        return [row[3] for row in _audit_rows(admin_client.get(path))]

    assert comments_in(f"{PANEL}/audit?comment_id={blog}") == [f"#{blog}", f"#{blog}"]
    assert comments_in(f"{PANEL}/audit?moderator={BLOG_MODERATOR.upper()}") == [f"#{blog}"]
    assert comments_in(f"{PANEL}/audit?site=news") == [f"#{news}"]
    assert comments_in(f"{PANEL}/audit?site=blog&moderator={ADMIN}") == [f"#{blog}"]
    empty = admin_client.get(f"{PANEL}/audit?comment_id=999999")
    assert html(empty).find("p", cls="empty").text == "No events."
    # Bad values get the moderation API's answer: 400 naming the argument.
    for unknown in (2**31, 2**63, "abc"):  # ids are 32-bit on PostgreSQL
        assert admin_client.get(f"{PANEL}/audit?comment_id={unknown}").status_code == 400
    beyond = encode_cursor(2**31)
    assert admin_client.get(f"{PANEL}/audit?cursor={beyond}").status_code == 400
    assert admin_client.get(f"{PANEL}/?cursor={beyond}").status_code == 400


def test_audit_is_limited_to_the_moderators_sites(
    admin_client: FlaskClient, blog_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    news = make_comment(status=PENDING)
    blog = make_comment(status=PENDING, site="blog", page="/post")
    submit(admin_client, f"{PANEL}/comments/{news}/approve")
    submit(admin_client, f"{PANEL}/comments/{blog}/approve")
    rows = _audit_rows(blog_client.get(f"{PANEL}/audit"))
    assert [row[3] for row in rows] == [f"#{blog}"]
    assert html(blog_client.get(f"{PANEL}/audit?site=news")).find("p", cls="empty")
    assert html(blog_client.get(f"{PANEL}/audit?comment_id={news}")).find("p", cls="empty")


def test_audit_pages_with_a_cursor(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    app.config["PANEL_PAGE_SIZE"] = 1  # two events a page
    made = [make_comment(status=PENDING) for _ in range(3)]
    for comment in made:
        submit(admin_client, f"{PANEL}/comments/{comment}/approve")
    first = admin_client.get(f"{PANEL}/audit")
    assert [row[3] for row in _audit_rows(first)] == [f"#{made[2]}", f"#{made[1]}"]
    older = html(first).find("a", rel="next").attrs["href"]
    second = admin_client.get(older)
    assert [row[3] for row in _audit_rows(second)] == [f"#{made[0]}"]
    assert html(second).find_all("a", rel="next") == []
