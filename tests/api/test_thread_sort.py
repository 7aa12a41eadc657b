"""``GET …/comments?sort=oldest|newest`` (DESIGN §10): top-level comments in the reader's
order, replies always oldest first under their parent; pages by top-level comment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from commentsvc.models import CommentStatus

THREAD = "/api/v1/sites/news/comments"
PAGE = "/2025/10/us-china-talks"


def ids(client: FlaskClient, **query: Any) -> tuple[list[int], str | None]:
    response = client.get(THREAD, query_string={"page": PAGE, **query})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return [comment["id"] for comment in body["comments"]], body["next_cursor"]


def test_newest_first_keeps_replies_oldest_first_under_their_parent(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    first = make_comment(body="first")
    second = make_comment(body="second")
    reply_1 = make_comment(parent_id=first)
    third = make_comment(body="third")
    reply_2 = make_comment(parent_id=first)
    nested = make_comment(parent_id=reply_1)
    make_comment(parent_id=second, status=CommentStatus.PENDING)
    assert ids(client)[0] == [first, second, reply_1, third, reply_2, nested]
    assert ids(client, sort="oldest")[0] == ids(client)[0]
    assert ids(client, sort="newest")[0] == [third, second, first, reply_1, reply_2, nested]


def test_newest_first_pages_by_top_level_comment(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    roots = [make_comment(body=f"root {n}") for n in range(5)]
    replies = {root: make_comment(parent_id=root) for root in roots}
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query: dict[str, Any] = {"sort": "newest", "limit": 2}
        if cursor:
            query["cursor"] = cursor
        found, cursor = ids(client, **query)
        seen += found
        pages += 1
        if cursor is None:
            break
    assert pages == 3
    expected = [n for root in reversed(roots) for n in (root, replies[root])]
    assert seen == expected


def test_a_reply_whose_parent_is_not_published_starts_a_thread(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    hidden = make_comment(status=CommentStatus.REJECTED)
    orphan = make_comment(parent_id=hidden)
    root = make_comment()
    assert ids(client, sort="newest")[0] == [root, orphan]


def test_a_bad_sort_is_refused(client: FlaskClient) -> None:
    response = client.get(THREAD, query_string={"page": PAGE, "sort": "best"})
    assert response.status_code == 400
    assert "sort" in response.get_json()["errors"]


def test_each_order_has_its_own_etag(client: FlaskClient, make_comment: Callable[..., int]) -> None:
    make_comment()
    oldest = client.get(THREAD, query_string={"page": PAGE})
    newest = client.get(THREAD, query_string={"page": PAGE, "sort": "newest"})
    assert oldest.headers["ETag"] != newest.headers["ETag"]
