"""The moderation API: auth, scope, list/filter/search, change, delete, bulk, audit log."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.extensions import db
from commentsvc.models import ApiToken, Comment, CommentStatus, ModerationEvent, Page, utcnow

API = "/api/v1/moderation"
PAGE = "/2025/10/us-china-talks"


def page_counters(app: Flask, key: str = PAGE) -> tuple[int, int]:
    with app.app_context():
        page = db.session.scalar(sa.select(Page).where(Page.key == key))
        assert page is not None
        return page.approved_count, page.version


def events_of(app: Flask, comment_id: int) -> list[tuple[str, str | None, str | None]]:
    with app.app_context():
        return [
            (
                e.action.value,
                e.from_status and e.from_status.value,
                e.to_status and e.to_status.value,
            )
            for e in db.session.scalars(
                sa.select(ModerationEvent)
                .where(ModerationEvent.comment_id == comment_id)
                .order_by(ModerationEvent.id)
            )
        ]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer wrong-token", "Basic dXNlcjpwYXNz", "csv_test_mod@example.com"],
)
def test_requests_without_a_valid_token_get_401(
    client: FlaskClient, make_token: Callable[..., str], header: str | None
) -> None:
    make_token()
    headers = {"Authorization": header} if header else {}
    response = client.get(f"{API}/comments", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_and_inactive_moderator_are_refused(
    app: Flask, client: FlaskClient, make_token: Callable[..., str]
) -> None:
    token = make_token()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{API}/comments", headers=headers).status_code == 200
    with app.app_context():
        db.session.execute(sa.update(ApiToken).values(revoked_at=utcnow()))
        db.session.commit()
    assert client.get(f"{API}/comments", headers=headers).status_code == 401


def test_token_use_is_recorded(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    client.get(f"{API}/comments", headers=auth)
    with app.app_context():
        assert db.session.scalar(sa.select(ApiToken.last_used_at)) is not None


def test_list_newest_first_with_email_and_client_facts(
    client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    first = make_comment(status=CommentStatus.PENDING)
    second = make_comment(status=CommentStatus.APPROVED, author_email="b@example.com")
    data = client.get(f"{API}/comments", headers=auth).get_json()
    assert [c["id"] for c in data["comments"]] == [second, first]
    item = data["comments"][0]
    assert item["author_email"] == "b@example.com"
    assert item["site"] == "news"
    assert item["page"]["key"] == PAGE
    assert {"ip_prefix", "user_agent", "moderated_at", "moderated_by"} <= set(item)
    assert data["next_cursor"] is None


def test_list_filters_and_search(
    client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    pending = make_comment(status=CommentStatus.PENDING, body="About tariffs")
    spam = make_comment(status=CommentStatus.SPAM, body="Buy pills", author_email="x@spam.example")
    other_page = make_comment(page="/other", body="100% sure")
    blog = make_comment(site="blog", status=CommentStatus.PENDING)

    def ids(query: str) -> list[int]:
        response = client.get(f"{API}/comments?{query}", headers=auth)
        assert response.status_code == 200, response.get_json()
        return [c["id"] for c in response.get_json()["comments"]]

    assert ids("status=pending") == [blog, pending]
    assert ids("status=spam") == [spam]
    assert ids("site=blog") == [blog]
    assert ids(f"site=news&page={PAGE}") == [spam, pending]
    assert ids("page=/other") == [other_page]
    assert ids("q=TARIFF") == [pending]
    assert ids("q=spam.example") == [spam]
    assert ids("q=100%25") == [other_page]
    assert ids("q=%25") == [other_page]
    assert ids("q=_") == []
    assert client.get(f"{API}/comments?status=bogus", headers=auth).status_code == 400


def test_list_pagination(
    client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    ids = [make_comment(status=CommentStatus.PENDING) for _ in range(5)]
    seen: list[int] = []
    cursor = ""
    while True:
        data = client.get(f"{API}/comments?limit=2&cursor={cursor}", headers=auth).get_json()
        seen += [c["id"] for c in data["comments"]]
        if not data["next_cursor"]:
            break
        cursor = data["next_cursor"]
    assert seen == list(reversed(ids))


def test_moderator_of_one_site_sees_only_that_site(
    client: FlaskClient, make_comment: Callable[..., int], make_token: Callable[..., str]
) -> None:
    news = make_comment(status=CommentStatus.PENDING)
    blog = make_comment(site="blog", status=CommentStatus.PENDING)
    headers = {"Authorization": f"Bearer {make_token('blogger@example.com', sites=('blog',))}"}
    listed = client.get(f"{API}/comments", headers=headers).get_json()["comments"]
    assert [c["id"] for c in listed] == [blog]
    for method, kwargs in [
        ("get", {}),
        ("patch", {"json": {"status": "approved"}}),
        ("delete", {}),
    ]:
        response = getattr(client, method)(f"{API}/comments/{news}", headers=headers, **kwargs)
        assert response.status_code == 404, method
    response = client.post(
        f"{API}/comments/bulk", json={"ids": [blog, news], "action": "spam"}, headers=headers
    )
    assert response.status_code == 404
    assert client.get(f"{API}/comments/{blog}", headers=headers).get_json()["status"] == "pending"
    events = client.get(f"{API}/events", headers=headers).get_json()["events"]
    assert events == []


def test_get_one_with_its_events(
    client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    comment_id = make_comment(status=CommentStatus.PENDING)
    client.patch(f"{API}/comments/{comment_id}", json={"status": "approved"}, headers=auth)
    client.patch(
        f"{API}/comments/{comment_id}", json={"status": "spam", "note": "link farm"}, headers=auth
    )
    data = client.get(f"{API}/comments/{comment_id}", headers=auth).get_json()
    assert data["status"] == "spam"
    assert [(e["action"], e["from_status"], e["to_status"]) for e in data["events"]] == [
        ("approve", "pending", "approved"),
        ("spam", "approved", "spam"),
    ]
    assert data["events"][1]["note"] == "link farm"
    assert data["events"][0]["moderator"] == "mod@example.com"
    assert client.get(f"{API}/comments/999999", headers=auth).status_code == 404


def test_patch_status_updates_counters_and_records_an_event(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    comment_id = make_comment(status=CommentStatus.PENDING)
    count_before, version_before = page_counters(app)
    response = client.patch(
        f"{API}/comments/{comment_id}", json={"status": "approved"}, headers=auth
    )
    assert response.status_code == 200
    data = response.get_json()
    assert data["status"] == "approved"
    assert data["moderated_by"] == "mod@example.com"
    assert data["moderated_at"] is not None
    count, version = page_counters(app)
    assert (count, version) == (count_before + 1, version_before + 1)
    client.patch(f"{API}/comments/{comment_id}", json={"status": "rejected"}, headers=auth)
    assert page_counters(app)[0] == count_before
    assert events_of(app, comment_id) == [
        ("approve", "pending", "approved"),
        ("reject", "approved", "rejected"),
    ]


def test_patch_to_the_same_status_records_nothing(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    comment_id = make_comment(status=CommentStatus.APPROVED)
    response = client.patch(
        f"{API}/comments/{comment_id}", json={"status": "approved"}, headers=auth
    )
    assert response.status_code == 200
    assert events_of(app, comment_id) == []


def test_patch_body_edit_rerenders_html(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    comment_id = make_comment()
    response = client.patch(
        f"{API}/comments/{comment_id}", json={"body": "Edited <i>text</i>"}, headers=auth
    )
    assert response.status_code == 200
    assert response.get_json()["body_html"] == "<p>Edited &lt;i&gt;text&lt;/i&gt;</p>"
    assert events_of(app, comment_id) == [("edit", "approved", "approved")]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"status": "published"}, "status"),
        ({"status": 3}, "status"),
        ({"body": "   "}, "body"),
        ({"body": 5}, "body"),
        ({}, "status"),
        ({"status": "approved", "note": "a\x00b"}, "note"),
    ],
)
def test_patch_refuses_bad_input_and_changes_nothing(
    app: Flask,
    client: FlaskClient,
    make_comment: Callable[..., int],
    auth: dict[str, str],
    payload: dict[str, object],
    field: str,
) -> None:
    comment_id = make_comment(status=CommentStatus.PENDING)
    response = client.patch(f"{API}/comments/{comment_id}", json=payload, headers=auth)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert events_of(app, comment_id) == []


@pytest.mark.parametrize(
    "query",
    [
        "comments?q=a%00b",
        "comments?page=/a%00b",
        "comments?site=ne%00ws",
        "events?moderator=a%00b@example.com",
        "events?site=ne%00ws",
    ],
)
def test_a_nul_in_a_filter_is_refused_with_400(
    client: FlaskClient, auth: dict[str, str], query: str
) -> None:
    """Nothing stored holds a NUL, and PostgreSQL refuses one in a query outright."""
    response = client.get(f"{API}/{query}", headers=auth)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert list(response.get_json()["errors"]) == [query.split("?")[1].split("=")[0]]


def test_patch_needs_json(
    client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    comment_id = make_comment()
    response = client.patch(f"{API}/comments/{comment_id}", data="status=approved", headers=auth)
    assert response.status_code == 415
    malformed = client.patch(
        f"{API}/comments/{comment_id}",
        data="{",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 400


def test_delete_keeps_the_audit_trail_and_orphans_replies(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    parent = make_comment()
    reply = make_comment(parent_id=parent)
    count_before = page_counters(app)[0]
    response = client.delete(f"{API}/comments/{parent}", headers=auth)
    assert response.status_code == 204
    assert client.get(f"{API}/comments/{parent}", headers=auth).status_code == 404
    assert events_of(app, parent) == [("delete", "approved", None)]
    assert page_counters(app)[0] == count_before - 1
    with app.app_context():
        remaining = db.session.get(Comment, reply)
        assert remaining is not None and remaining.parent_id is None
    events = client.get(f"{API}/events?comment_id={parent}", headers=auth).get_json()["events"]
    assert [e["action"] for e in events] == ["delete"]
    assert client.delete(f"{API}/comments/{parent}", headers=auth).status_code == 404


def test_bulk_applies_to_all(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    ids = [make_comment(status=CommentStatus.PENDING) for _ in range(3)]
    already = make_comment(status=CommentStatus.APPROVED)
    response = client.post(
        f"{API}/comments/bulk", json={"ids": [*ids, already], "action": "approve"}, headers=auth
    )
    assert response.status_code == 200
    assert response.get_json()["changed"] == ids
    assert page_counters(app)[0] == 4
    deleted = client.post(
        f"{API}/comments/bulk", json={"ids": ids, "action": "delete"}, headers=auth
    )
    assert deleted.status_code == 200
    assert page_counters(app)[0] == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 1


def test_bulk_is_all_or_nothing(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    ids = [make_comment(status=CommentStatus.PENDING) for _ in range(3)]
    response = client.post(
        f"{API}/comments/bulk", json={"ids": [*ids, 424242], "action": "approve"}, headers=auth
    )
    assert response.status_code == 404
    assert "424242" in response.get_json()["errors"]["ids"][0]
    for comment_id in ids:
        assert events_of(app, comment_id) == []
    listed = client.get(f"{API}/comments?status=pending", headers=auth).get_json()["comments"]
    assert len(listed) == 3


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"ids": [1], "action": "publish"}, "action"),
        ({"ids": [1]}, "action"),
        ({"ids": [], "action": "approve"}, "ids"),
        ({"ids": "1,2", "action": "approve"}, "ids"),
        ({"ids": [1, "2"], "action": "approve"}, "ids"),
        ({"ids": [True], "action": "approve"}, "ids"),
        ({"ids": [-1], "action": "approve"}, "ids"),
    ],
)
def test_bulk_refuses_bad_input(
    client: FlaskClient,
    make_comment: Callable[..., int],
    auth: dict[str, str],
    payload: dict[str, object],
    field: str,
) -> None:
    make_comment(status=CommentStatus.PENDING)
    response = client.post(f"{API}/comments/bulk", json=payload, headers=auth)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_bulk_size_is_limited(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    ids = list(range(1, app.config["MAX_BULK_IDS"] + 2))
    response = client.post(
        f"{API}/comments/bulk", json={"ids": ids, "action": "spam"}, headers=auth
    )
    assert response.status_code == 422


def test_events_log_filters(
    client: FlaskClient,
    make_comment: Callable[..., int],
    make_token: Callable[..., str],
    auth: dict[str, str],
) -> None:
    news = make_comment(status=CommentStatus.PENDING)
    blog = make_comment(site="blog", status=CommentStatus.PENDING)
    other = {"Authorization": f"Bearer {make_token('other@example.com')}"}
    client.patch(f"{API}/comments/{news}", json={"status": "approved"}, headers=auth)
    client.patch(f"{API}/comments/{blog}", json={"status": "spam"}, headers=other)

    def actions(query: str) -> list[tuple[int, str, str]]:
        data = client.get(f"{API}/events?{query}", headers=auth).get_json()
        return [(e["comment_id"], e["action"], e["moderator"]) for e in data["events"]]

    assert actions("") == [
        (blog, "spam", "other@example.com"),
        (news, "approve", "mod@example.com"),
    ]
    assert actions(f"comment_id={news}") == [(news, "approve", "mod@example.com")]
    assert actions("moderator=other@example.com") == [(blog, "spam", "other@example.com")]
    assert actions("site=news") == [(news, "approve", "mod@example.com")]
    assert client.get(f"{API}/events?comment_id=abc", headers=auth).status_code == 400
