"""Each worker keeps pages' states between requests (services/page_states); a reader must
still see every moderation change from the moment its answer arrived, whichever worker
answers the read. Real gunicorn, two workers, fresh connections (each read may go to
either worker), the worker that approved usually not the one that reads."""

from __future__ import annotations

import requests

from tests.e2e.conftest import Server

PAGE = "/read-after-write"
READS_PER_ROUND = 8
ROUNDS = 12
TIMEOUT = 10


def _submit(server: Server, n: int) -> int:
    answer = requests.post(
        f"{server.base_url}/api/v1/sites/e2e/comments",
        json={
            "page": PAGE,
            "body": f"Comment number {n}, read back at once",
            "author_name": "Reader",
            "author_email": f"reader{n}@example.com",
        },
        timeout=TIMEOUT,
    )
    assert answer.status_code == 201, answer.text
    comment_id: int = answer.json()["id"]
    return comment_id


def test_every_worker_shows_an_approval_from_the_moment_it_is_answered(server: Server) -> None:
    thread = f"{server.base_url}/api/v1/sites/e2e/comments"
    counts = f"{server.base_url}/api/v1/sites/e2e/counts"
    tag = ""
    for n in range(1, ROUNDS + 1):
        comment_id = _submit(server, n)
        # Both workers read (and keep) the page's state before the approval.
        for _ in range(READS_PER_ROUND):
            before = requests.get(counts, params={"page": PAGE}, timeout=TIMEOUT)
            assert before.json()["counts"][PAGE] == n - 1
        approved = requests.patch(
            f"{server.base_url}/api/v1/moderation/comments/{comment_id}",
            json={"status": "approved"},
            headers=server.auth,
            timeout=TIMEOUT,
        )
        assert approved.status_code == 200, approved.text
        fresh_tag = None  # this round's: a 304 is right only for it
        for _ in range(READS_PER_ROUND):
            after = requests.get(counts, params={"page": PAGE}, timeout=TIMEOUT)
            assert after.json()["counts"][PAGE] == n
            read = requests.get(
                thread, params={"page": PAGE}, headers={"If-None-Match": tag}, timeout=TIMEOUT
            )
            if read.status_code == 304:
                assert fresh_tag is not None and read.headers["ETag"] == fresh_tag
                continue
            assert read.status_code == 200
            assert read.json()["total"] == n
            assert read.json()["comments"][-1]["id"] == comment_id
            tag = fresh_tag = read.headers["ETag"]
