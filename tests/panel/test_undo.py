"""Undoing the last action of a session."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.extensions import db
from commentsvc.models import CommentStatus, Page
from tests.support.html import flashes, html
from tests.support.panel import (
    JSON_HEADERS,
    PANEL,
    assert_refused_unchanged,
    submit,
)
from tests.support.state import APPROVED, PENDING, events_of, status_of


def test_undo_restores_previous_statuses(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    pending = make_comment(status=PENDING)
    spam = make_comment(status=CommentStatus.SPAM)
    response = submit(
        admin_client,
        f"{PANEL}/comments/bulk",
        {"ids": [str(pending), str(spam)], "action": "approve", "next": f"{PANEL}/?status=spam"},
    )
    page = admin_client.get(response.headers["Location"])
    flash = html(page).find("div", cls="flash-success")
    assert flash.find("span", cls="flash-message").text == "Approved 2 comments."
    undo_form = flash.find("form", cls="undo")
    assert undo_form.attrs["action"] == f"{PANEL}/undo"
    assert undo_form.find("input", name="next").attrs["value"] == f"{PANEL}/?status=spam"

    undone = admin_client.post(
        f"{PANEL}/undo",
        data={
            "csrf_token": undo_form.find("input", name="csrf_token").attrs["value"],
            "next": undo_form.find("input", name="next").attrs["value"],
        },
    )
    assert undone.status_code == 303
    assert undone.headers["Location"] == f"{PANEL}/?status=spam"
    assert ("success", "Undone: 2 comments restored.") in flashes(
        admin_client.get(undone.headers["Location"])
    )
    assert status_of(app, pending) == PENDING
    assert status_of(app, spam) == CommentStatus.SPAM
    assert events_of(app, pending)[-1] == ("requeue", "approved", "pending", "undo")
    assert events_of(app, spam)[-1] == ("spam", "approved", "spam", "undo")
    with app.app_context():
        page_row = db.session.scalar(sa.select(Page))
        assert page_row is not None
        assert page_row.approved_count == 0
    # An undo is used once.
    again = submit(admin_client, f"{PANEL}/undo")
    assert ("success", "There is nothing to undo.") in flashes(
        admin_client.get(again.headers["Location"])
    )


def test_undo_leaves_comments_changed_since_alone(
    app: Flask,
    admin_client: FlaskClient,
    make_comment: Callable[..., int],
    make_token: Callable[..., str],
) -> None:
    first = make_comment(status=PENDING)
    second = make_comment(status=PENDING)
    submit(
        admin_client,
        f"{PANEL}/comments/bulk",
        {"ids": [str(first), str(second)], "action": "approve"},
    )
    # Somebody else rejects one of them in the meantime.
    token = make_token("colleague@example.com")
    changed = app.test_client().patch(
        f"/api/v1/moderation/comments/{second}",
        json={"status": "rejected"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert changed.status_code == 200
    response = submit(admin_client, f"{PANEL}/undo", headers=JSON_HEADERS)
    data = response.get_json()
    assert data["message"] == "Undone: 1 comment restored."
    assert data["restored"] == [first]
    assert data["counts"] == {"pending": 1, "approved": 0, "rejected": 1, "spam": 0}
    assert status_of(app, first) == PENDING
    assert status_of(app, second) == CommentStatus.REJECTED


def test_nothing_to_undo(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    make_comment(status=PENDING)
    back = {"next": f"{PANEL}/audit"}
    response = assert_refused_unchanged(app, admin_client, f"{PANEL}/undo", back, status=303)
    assert response.headers["Location"] == f"{PANEL}/audit"
    assert ("success", "There is nothing to undo.") in flashes(admin_client.get(f"{PANEL}/audit"))


def test_delete_offers_no_undo(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    approved = make_comment(status=PENDING)
    deleted = make_comment(status=PENDING)
    submit(admin_client, f"{PANEL}/comments/{approved}/approve")
    response = submit(admin_client, f"{PANEL}/comments/{deleted}/delete")
    page = admin_client.get(response.headers["Location"])
    assert ("success", "Deleted 1 comment.") in flashes(page)
    assert html(page).find_all("form", cls="undo") == []
    # The earlier approve cannot be undone once something else was done since.
    assert (
        submit(admin_client, f"{PANEL}/undo", headers=JSON_HEADERS).get_json()["message"]
        == "There is nothing to undo."
    )
    assert status_of(app, approved) == APPROVED
    assert status_of(app, deleted) is None


def test_undo_belongs_to_the_session(
    app: Flask,
    admin_client: FlaskClient,
    blog_client: FlaskClient,
    make_comment: Callable[..., int],
) -> None:
    comment = make_comment(status=PENDING, site="blog")
    submit(admin_client, f"{PANEL}/comments/{comment}/approve")
    data = submit(blog_client, f"{PANEL}/undo", headers=JSON_HEADERS).get_json()
    assert data["message"] == "There is nothing to undo."
    assert status_of(app, comment) == APPROVED
