"""What a moderator of some sites sees and may do, and what an administrator sees."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from commentsvc.models import CommentStatus
from tests.support.html import html, shown_ids, tab_counts
from tests.support.panel import (
    JSON_HEADERS,
    PANEL,
    assert_bulk_refused,
    assert_refused_unchanged,
    submit,
)
from tests.support.state import APPROVED, PENDING, status_of


def test_limited_moderator_sees_only_their_sites(
    blog_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    blog = make_comment(status=PENDING, site="blog", page="/post")
    make_comment(status=PENDING, site="news")
    make_comment(status=APPROVED, site="news")
    make_comment(status=CommentStatus.SPAM, site="news")
    response = blog_client.get(f"{PANEL}/")
    assert shown_ids(response) == [blog]
    assert tab_counts(response) == {"pending": 1, "approved": 0, "rejected": 0, "spam": 0}
    options = (
        html(response).find("form", id="filters").find("select", name="site").find_all("option")
    )
    assert [option.attrs["value"] for option in options] == ["", "blog"]
    asked = blog_client.get(f"{PANEL}/?site=news&status=spam")
    assert shown_ids(asked) == []
    assert tab_counts(asked) == {"pending": 0, "approved": 0, "rejected": 0, "spam": 0}
    # No admin links for a moderator.
    nav = html(response).find("nav", aria_label="Main")
    links = {a.attrs["href"] for a in nav.find_all("a")}
    assert links == {f"{PANEL}/", f"{PANEL}/audit", f"{PANEL}/blocklist", f"{PANEL}/settings"}


def test_limited_moderator_gets_404_for_other_sites_comments(
    app: Flask, blog_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    news = make_comment(status=PENDING, site="news")
    blog = make_comment(status=PENDING, site="blog", page="/post")
    assert blog_client.get(f"{PANEL}/comments/{news}").status_code == 404
    assert blog_client.get(f"{PANEL}/comments/{blog}").status_code == 200
    for action in ("approve", "reject", "spam", "delete"):
        path = f"{PANEL}/comments/{news}/{action}"
        assert_refused_unchanged(app, blog_client, path, status=404)
        assert_refused_unchanged(app, blog_client, path, status=404, headers=JSON_HEADERS)
    data = {"ids": [str(blog), str(news)], "action": "spam"}
    assert_bulk_refused(app, blog_client, data, "nothing was changed")
    # Their own site's comments they can moderate.
    assert submit(blog_client, f"{PANEL}/comments/{blog}/approve").status_code == 303
    assert status_of(app, blog) == APPROVED


def test_admin_sees_every_site(admin_client: FlaskClient, make_comment: Callable[..., int]) -> None:
    news = make_comment(status=PENDING, site="news")
    blog = make_comment(status=PENDING, site="blog", page="/post")
    response = admin_client.get(f"{PANEL}/")
    assert shown_ids(response) == [blog, news]
    assert tab_counts(response)["pending"] == 2
    nav = html(response).find("nav", aria_label="Main")
    assert f"{PANEL}/sites" in {a.attrs["href"] for a in nav.find_all("a")}
    for comment in (news, blog):
        assert admin_client.get(f"{PANEL}/comments/{comment}").status_code == 200
