"""The comment listing: one statement per filter combination, one row type for everyone."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from commentsvc.models import CommentStatus, Moderator
from commentsvc.services import listing, moderation
from commentsvc.services.errors import NotFound

PENDING, APPROVED, SPAM = CommentStatus.PENDING, CommentStatus.APPROVED, CommentStatus.SPAM


def ids(rows: object) -> list[int]:
    return [row.id for row in rows]  # type: ignore[attr-defined]


def test_every_parameter_has_one_condition() -> None:
    names = {field.name for field in listing._Query.__dataclass_fields__.values()}
    assert names == set(listing._CONDITIONS)


def test_filters_narrow_newest_first(context: None, make_comment: Callable[..., int]) -> None:
    a = make_comment(site="news", page="/a", status=PENDING, body="Alpha 100%")
    b = make_comment(site="news", page="/b", status=SPAM, body="Beta", author_email="b@x.example")
    c = make_comment(site="blog", page="/a", status=PENDING, body="Gamma")
    every = listing.CommentFilter()
    assert ids(listing.list_comments(None, every, None, 10)) == [c, b, a]
    cases = {
        listing.CommentFilter(status=PENDING): [c, a],
        listing.CommentFilter(site="news"): [b, a],
        listing.CommentFilter(site="news", page="/a"): [a],
        listing.CommentFilter(page="/a"): [c, a],
        listing.CommentFilter(q="100%"): [a],  # LIKE's wildcards are taken literally
        listing.CommentFilter(q="_"): [],
        listing.CommentFilter(q="B@X"): [b],  # case-insensitive, over the email too
        listing.CommentFilter(author_email="b@x.example"): [b],
    }
    for filters, expected in cases.items():
        assert ids(listing.list_comments(None, filters, None, 10)) == expected, filters
    assert ids(listing.list_comments(None, every, c, 10)) == [b, a]  # keyset: before c
    assert ids(listing.list_comments(None, every, None, 1)) == [c, b]  # limit + 1


def test_scope_limits_the_listing_the_counts_and_finding_one(
    context: None, make_moderator: Callable[..., Moderator], make_comment: Callable[..., int]
) -> None:
    news = make_comment(site="news", status=PENDING)
    blog = make_comment(site="blog", status=APPROVED)
    scope = make_moderator("blog@example.com", sites=("blog",)).site_scope()
    assert ids(listing.list_comments(scope, listing.CommentFilter(), None, 10)) == [blog]
    counts = listing.status_counts(scope, listing.CommentFilter())
    assert counts == {PENDING: 0, APPROVED: 1, CommentStatus.REJECTED: 0, SPAM: 0}
    assert listing.find_comment(scope, blog).id == blog
    with pytest.raises(NotFound, match=f"There is no comment {news}."):
        listing.find_comment(scope, news)


def test_a_listed_comment_carries_its_site_page_and_moderator(
    app: Flask, context: None, moderator: Moderator, make_comment: Callable[..., int]
) -> None:
    parent = make_comment(status=APPROVED, body="The parent")
    reply = make_comment(status=PENDING, parent_id=parent)
    moderation.update_comment(moderator, reply, SPAM, None)
    row = listing.find_comment(None, reply)
    assert (row.site_slug, row.page_key, row.moderated_by_email) == (
        "news",
        "/2025/10/us-china-talks",
        "mod@example.com",
    )
    assert (row.parent_id, row.status) == (parent, SPAM)
    parents = listing.parents_of([row, listing.find_comment(None, parent)])
    assert list(parents) == [parent]
    assert (parents[parent].author_name, parents[parent].body) == ("Reader", "The parent")
    assert listing.parents_of([]) == {}
