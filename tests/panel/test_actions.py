"""Actions on one comment and on many at once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.extensions import db
from commentsvc.models import Comment, CommentStatus, ModerationEvent, Page
from commentsvc.panel.helpers import safe_next
from tests.support.html import flashes, html, shown_ids
from tests.support.panel import (
    ADMIN,
    JSON_HEADERS,
    PANEL,
    assert_bulk_refused,
    assert_refused_unchanged,
    submit,
)
from tests.support.state import APPROVED, PENDING, events_of, status_of

# --- per-comment actions ----------------------------------------------------------------------

ACTIONS = [
    ("approve", CommentStatus.APPROVED, "Approved 1 comment."),
    ("reject", CommentStatus.REJECTED, "Rejected 1 comment."),
    ("spam", CommentStatus.SPAM, "Marked as spam: 1 comment."),
    ("delete", None, "Deleted 1 comment."),
]


@pytest.mark.parametrize(("action", "status", "message"), ACTIONS)
def test_action_on_one_comment(
    app: Flask,
    admin_client: FlaskClient,
    make_comment: Callable[..., int],
    action: str,
    status: CommentStatus | None,
    message: str,
) -> None:
    comment = make_comment(status=PENDING)
    other = make_comment(status=PENDING)
    back = f"{PANEL}/?status=pending&site=news"
    response = submit(admin_client, f"{PANEL}/comments/{comment}/{action}", {"next": back})
    assert response.status_code == 303
    assert response.headers["Location"] == back
    assert status_of(app, comment) == status
    assert status_of(app, other) == PENDING
    to_status = status.value if status else None
    assert events_of(app, comment) == [(action, "pending", to_status, None)]
    with app.app_context():
        event = db.session.scalar(sa.select(ModerationEvent))
        assert event is not None
        assert event.actor == ADMIN
        if status is not None:
            stored = db.session.get(Comment, comment)
            assert stored is not None
            assert stored.moderated_by is not None
            assert stored.moderated_by.email == ADMIN
            assert stored.moderated_at is not None
        page = db.session.scalar(sa.select(Page))
        assert page is not None
        assert page.approved_count == (1 if status == APPROVED else 0)
    page_after = admin_client.get(back)
    assert ("success", message) in flashes(page_after)
    assert comment not in shown_ids(page_after)
    # A flash is shown once.
    assert flashes(admin_client.get(back)) == []


def test_action_goes_back_only_to_panel_pages(
    admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    for back in ("https://evil.example/", "//evil.example/", "/api/v1/sites/news/comments"):
        comment = make_comment(status=PENDING)
        response = submit(admin_client, f"{PANEL}/comments/{comment}/approve", {"next": back})
        assert response.headers["Location"] == f"{PANEL}/"


@pytest.mark.parametrize(
    "back",
    [
        f"{PANEL}/../..//evil.example",
        f"{PANEL}/..",
        f"{PANEL}/./comments",
        f"{PANEL}/%2e%2e/%2E%2E//evil.example",
        f"{PANEL}/.%2e/api/v1/moderation/comments",
        f"{PANEL}/%2e/audit",
    ],
)
def test_action_goes_back_to_no_path_with_dot_segments(
    admin_client: FlaskClient, make_comment: Callable[..., int], back: str
) -> None:
    """Security review I9: a browser resolves ``..`` (raw or percent-encoded) and leaves the
    panel: ``/moderation/../..//evil.example`` ends at ``//evil.example``."""
    comment = make_comment(status=PENDING)
    response = submit(admin_client, f"{PANEL}/comments/{comment}/approve", {"next": back})
    assert response.headers["Location"] == f"{PANEL}/"


def test_a_next_path_may_hold_dots_that_are_no_segment(app: Flask) -> None:
    with app.test_request_context():
        assert safe_next(f"{PANEL}/audit?site=a..b") == f"{PANEL}/audit?site=a..b"
        assert safe_next(f"{PANEL}/comments/1...") == f"{PANEL}/comments/1..."
        assert safe_next(f"{PANEL}/%2e%2e") is None


def test_deleting_from_the_detail_page_goes_back_to_the_queue(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    detail = f"{PANEL}/comments/{comment}"
    form = html(admin_client.get(detail)).find("form", id="detail-form")
    back = form.find("input", name="next").attrs["value"]
    assert back == detail
    response = submit(admin_client, f"{detail}/delete", {"next": back})
    assert response.headers["Location"] == f"{PANEL}/"
    assert status_of(app, comment) is None
    # Other actions from the detail page go back to it.
    kept = make_comment(status=PENDING)
    response = submit(
        admin_client, f"{PANEL}/comments/{kept}/spam", {"next": f"{PANEL}/comments/{kept}"}
    )
    assert response.headers["Location"] == f"{PANEL}/comments/{kept}"


@pytest.mark.parametrize("action", ["frobnicate", "requeue", "edit", "Approve", "approve "])
def test_unknown_action_is_404(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int], action: str
) -> None:
    """Only approve, reject, spam and delete are panel actions."""
    comment = make_comment(status=CommentStatus.REJECTED)
    assert_refused_unchanged(app, admin_client, f"{PANEL}/comments/{comment}/{action}", status=404)


def test_action_on_a_missing_comment_is_404(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    for missing in (comment + 1, 0, 2**31):
        path = f"{PANEL}/comments/{missing}/approve"
        assert_refused_unchanged(app, admin_client, path, status=404)


def test_action_as_json(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    make_comment(status=PENDING)
    response = submit(admin_client, f"{PANEL}/comments/{comment}/approve", headers=JSON_HEADERS)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    data = response.get_json()
    assert {"message", "changed", "undo", "counts"} <= set(data)
    assert data["message"] == "Approved 1 comment."
    assert data["changed"] == [comment]
    assert data["undo"] is True
    assert data["counts"] == {"pending": 1, "approved": 1, "rejected": 0, "spam": 0}
    assert status_of(app, comment) == APPROVED
    # JSON answers carry no flash for the next page.
    assert flashes(admin_client.get(f"{PANEL}/")) == []

    deleted = submit(admin_client, f"{PANEL}/comments/{comment}/delete", headers=JSON_HEADERS)
    data = deleted.get_json()
    assert data["message"] == "Deleted 1 comment."
    assert data["undo"] is False
    assert data["counts"] == {"pending": 1, "approved": 0, "rejected": 0, "spam": 0}


def test_approving_an_approved_comment_changes_nothing(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=APPROVED)
    response = submit(admin_client, f"{PANEL}/comments/{comment}/approve", headers=JSON_HEADERS)
    assert response.get_json()["changed"] == []
    assert response.get_json()["undo"] is False
    assert events_of(app, comment) == []


# --- bulk actions ---------------------------------------------------------------------------


def test_bulk_action(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    chosen = [make_comment(status=PENDING) for _ in range(3)]
    left = make_comment(status=PENDING)
    page = admin_client.get(f"{PANEL}/")
    form = html(page).find("form", id="bulk-form")
    assert form.attrs["action"] == f"{PANEL}/comments/bulk"
    assert {b.attrs["value"] for b in form.find_all("button", name="action")} == {
        "approve",
        "reject",
        "spam",
        "delete",
    }
    boxes = [box.attrs["value"] for box in form.find_all("input", name="ids")]
    assert sorted(map(int, boxes)) == sorted([*chosen, left])
    response = submit(
        admin_client,
        f"{PANEL}/comments/bulk",
        {"ids": [str(i) for i in chosen], "action": "reject", "next": f"{PANEL}/"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PANEL}/"
    after = admin_client.get(f"{PANEL}/")
    assert ("success", "Rejected 3 comments.") in flashes(after)
    assert shown_ids(after) == [left]
    for comment in chosen:
        assert status_of(app, comment) == CommentStatus.REJECTED
        assert events_of(app, comment) == [("reject", "pending", "rejected", None)]
    assert status_of(app, left) == PENDING


def test_bulk_without_ids_changes_nothing(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    make_comment(status=PENDING)
    for ids in ([], ["abc"], ["-1"], ["\uff11"]):
        data = {"ids": ids, "action": "approve"}
        assert_bulk_refused(app, admin_client, data, "Select at least one comment first.")


def test_bulk_with_unknown_action_changes_nothing(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=CommentStatus.REJECTED)
    for action in ("", "requeue", "edit", "publish"):
        data = {"ids": str(comment), "action": action}
        assert_refused_unchanged(app, admin_client, f"{PANEL}/comments/bulk", data, status=400)


def test_bulk_with_an_unknown_id_changes_nothing(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment = make_comment(status=PENDING)
    data = {"ids": [str(comment), str(comment + 100)], "action": "delete"}
    assert_bulk_refused(app, admin_client, data, "nothing was changed")


@pytest.mark.parametrize("too_large", [str(2**31), str(2**63), "9" * 30])
def test_bulk_with_an_id_beyond_any_row_changes_nothing(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int], too_large: str
) -> None:
    """Ids are 32-bit on PostgreSQL: a larger one is an unknown comment, not a database error."""
    comment = make_comment(status=PENDING)
    data = {"ids": [str(comment), too_large], "action": "approve"}
    assert_bulk_refused(app, admin_client, data, "nothing was changed")


def test_bulk_respects_the_bulk_limit(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    """MAX_BULK_IDS bounds every bulk moderation request, the panel's as well as the API's."""
    app.config["MAX_BULK_IDS"] = 2
    ids = [str(make_comment(status=PENDING)) for _ in range(3)]
    data = {"ids": ids, "action": "spam"}
    assert_refused_unchanged(app, admin_client, f"{PANEL}/comments/bulk", data, status=303)
    assert (
        submit(
            admin_client, f"{PANEL}/comments/bulk", {"ids": ids[:2], "action": "spam"}
        ).status_code
        == 303
    )
