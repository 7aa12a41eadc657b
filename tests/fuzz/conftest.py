"""Fixtures of the fuzz tests: a database with something in it for the fuzzers to find."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient

from commentsvc.models import CommentStatus

PAGE = "/2025/10/us-china-talks"
OTHER_PAGE = "/2025/10/other-article"


@dataclass(frozen=True)
class Seeded:
    """What :func:`seeded` stored: comment ids by what they are, and a moderator's headers."""

    approved: int
    pending: int
    reply: int
    rejected: int
    spam: int
    other_page: int
    other_site: int
    auth: dict[str, str]

    @property
    def comment_ids(self) -> tuple[int, ...]:
        return (
            self.approved,
            self.pending,
            self.reply,
            self.rejected,
            self.spam,
            self.other_page,
            self.other_site,
        )


#: The ids :func:`seeded` gets on a fresh database (ids are handed out from 1).
SEEDED_IDS = tuple(range(1, 8))


@pytest.fixture
def seeded(client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]) -> Seeded:
    """Comments of every status, a reply, other pages and sites, and audit events."""
    approved = make_comment(
        page=PAGE, status=CommentStatus.APPROVED, body="First! https://a.example/"
    )
    data = Seeded(
        approved=approved,
        pending=make_comment(page=PAGE, status=CommentStatus.PENDING),
        reply=make_comment(page=PAGE, status=CommentStatus.APPROVED, parent_id=approved),
        rejected=make_comment(page=PAGE, status=CommentStatus.REJECTED),
        spam=make_comment(page=PAGE, status=CommentStatus.SPAM),
        other_page=make_comment(page=OTHER_PAGE, status=CommentStatus.APPROVED),
        other_site=make_comment(site="blog", page=PAGE, status=CommentStatus.APPROVED),
        auth=auth,
    )
    assert data.comment_ids == SEEDED_IDS
    # Audit events, so that the event list and a comment's history have something to show.
    for comment_id, status in ((data.pending, "approved"), (data.pending, "pending")):
        response = client.patch(
            f"/api/v1/moderation/comments/{comment_id}",
            json={"status": status, "note": "seeded"},
            headers=auth,
        )
        assert response.status_code == 200, response.get_data(as_text=True)
    return data
