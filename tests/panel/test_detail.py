"""The page of one comment: its body, its history and the same author's other comments."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from commentsvc.models import CommentStatus
from tests.support.html import html
from tests.support.panel import (
    ADMIN,
    PANEL,
    submit,
)
from tests.support.state import APPROVED, PENDING


def test_detail_shows_body_history_and_same_author(
    app: Flask,
    admin_client: FlaskClient,
    blog_client: FlaskClient,
    make_comment: Callable[..., int],
) -> None:
    email = "repeat@example.com"
    comment = make_comment(
        status=PENDING, site="blog", body="First paragraph.\n\nSecond one.", author_email=email
    )
    older = make_comment(status=CommentStatus.SPAM, site="blog", page="/x", author_email=email)
    news = make_comment(status=APPROVED, site="news", author_email=email)
    make_comment(status=PENDING, site="blog", author_email="someone-else@example.com")
    submit(admin_client, f"{PANEL}/comments/{comment}/approve")
    submit(admin_client, f"{PANEL}/comments/{comment}/reject")

    response = admin_client.get(f"{PANEL}/comments/{comment}")
    assert response.status_code == 200
    doc = html(response)
    body = doc.find("article", cls="comment").find("div", cls="body")
    assert [p.text for p in body.find_all("p")] == ["First paragraph.", "Second one."]
    history = doc.find("ol", cls="history").find_all("li")
    assert len(history) == 2
    assert ADMIN in history[0].text
    assert "approve" in history[0].text
    assert "pending → approved" in history[0].text
    assert "approved → rejected" in history[1].text
    same = doc.find("section", cls="same-author")
    assert email in same.find("h2").text
    linked = {a.attrs["href"] for a in same.find_all("a")}
    assert linked == {f"{PANEL}/comments/{older}", f"{PANEL}/comments/{news}"}

    # A moderator of the blog does not learn about the news comment.
    limited = html(blog_client.get(f"{PANEL}/comments/{comment}"))
    linked = {a.attrs["href"] for a in limited.find("section", cls="same-author").find_all("a")}
    assert linked == {f"{PANEL}/comments/{older}"}


def test_detail_of_a_fresh_comment(
    admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    doc = html(admin_client.get(f"{PANEL}/comments/{comment}"))
    assert doc.find_all("ol", cls="history") == []
    assert doc.find("section", cls="same-author").find("p", cls="empty").text == "None."
    assert admin_client.get(f"{PANEL}/comments/{comment + 1}").status_code == 404
