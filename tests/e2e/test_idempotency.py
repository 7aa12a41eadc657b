"""``Idempotency-Key`` on submissions (DESIGN §7) over real HTTP to real gunicorn workers
sharing the run's database: a retry gets the first answer again and nothing new is stored,
even when every copy arrives at once; the key sent with another comment is refused."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server, Template, serve

pytestmark = pytest.mark.e2e

WORKERS = 4
SENDERS = 16
TIMEOUT = 15
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def server(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """4 workers on the run's database; rate limits off (the harness's default)."""
    with serve(template, tmp_path_factory.mktemp("idempotency"), workers=WORKERS) as running:
        yield running


def comment(page: str, body: str) -> dict[str, Any]:
    return {
        "page": page,
        "body": body,
        "author_name": "Retrying Reader",
        "author_email": "retrying.reader@example.com",
    }


def submit(server: Server, sent: dict[str, Any], key: str) -> requests.Response:
    return requests.post(
        f"{server.base_url}/api/v1/sites/e2e/comments",
        json=sent,
        headers={"Idempotency-Key": key},
        timeout=TIMEOUT,
    )


def test_the_same_submission_sent_16_times_at_once_is_stored_once(server: Server) -> None:
    page = "/idempotency/at-once"
    sent = comment(page, "Sent once, arrived sixteen times.")
    key = str(uuid.uuid4())
    barrier = threading.Barrier(SENDERS)

    def send(_: int) -> requests.Response:
        barrier.wait(TIMEOUT)
        return submit(server, sent, key)

    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        answers = list(pool.map(send, range(SENDERS)))

    assert [answer.status_code for answer in answers] == [201] * SENDERS, [
        answer.text for answer in answers
    ]
    first = answers[0].json()
    assert first["body"] == sent["body"]
    assert {answer.content for answer in answers} == {answers[0].content}
    assert {answer.headers["Location"] for answer in answers} == {answers[0].headers["Location"]}
    assert server.comments_on(page) == {first["id"]: sent["body"]}


def test_the_key_sent_again_with_another_comment_is_refused(server: Server) -> None:
    page = "/idempotency/reused"
    sent = comment(page, "The first comment with this key.")
    key = str(uuid.uuid4())
    created = submit(server, sent, key)
    assert created.status_code == 201, created.text

    other = submit(server, {**sent, "body": "Another comment with the same key."}, key)

    assert other.status_code == 422, other.text
    assert other.headers["Content-Type"] == PROBLEM_JSON
    problem = other.json()
    assert problem["status"] == 422
    assert "Idempotency-Key" in problem["errors"]
    # The key still stands for its first comment, which alone is stored.
    retry = submit(server, sent, key)
    assert (retry.status_code, retry.content) == (201, created.content)
    assert server.comments_on(page) == {created.json()["id"]: sent["body"]}
