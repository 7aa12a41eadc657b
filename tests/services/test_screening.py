"""The abuse rules (DESIGN §7): each alone with its reason and score, together per site, and
the site's moderation mode deciding what is approved at once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from commentsvc.extensions import db
from commentsvc.markup import Markup
from commentsvc.models import Comment, CommentStatus, ModerationEvent, Moderator, Page
from commentsvc.services import blocklist, moderation, sites, submissions
from commentsvc.services.blocklist import Blocklist, Traits
from commentsvc.services.errors import Invalid
from commentsvc.services.screening import (
    REASONS,
    RULES,
    Candidate,
    Judgement,
    Outcome,
    screen,
)
from commentsvc.services.sites import SiteRules
from tests.services.conftest import Heard

CLEAN = "A thoughtful comment about the article."
NOBODY = Blocklist(0, {})
DEFAULTS = SiteRules()


def candidate(
    *,
    body: str = CLEAN,
    honeypot: str = "",
    fill_ms: int | None = None,
    rules: SiteRules = DEFAULTS,
    blocked: Blocklist = NOBODY,
    address: str | None = "198.51.100.7",
) -> Candidate:
    traits = Traits("ada@example.org", "Ada", None, body, address)
    return Candidate(1, rules, body, honeypot, fill_ms, traits, blocked)


def test_a_clean_comment_has_no_reasons_and_no_score() -> None:
    judgement = screen(candidate(fill_ms=60_000))
    assert judgement == Judgement(CommentStatus.PENDING, 0.0, (), held=False)


def test_every_rule_gives_a_known_reason() -> None:
    assert len(RULES) == len(REASONS)


def test_honeypot_alone_is_spam() -> None:
    judgement = screen(candidate(honeypot="Re: great article"))
    assert judgement == Judgement(CommentStatus.SPAM, 1.0, ("honeypot",), held=True)


def test_each_blocklist_kind_alone_is_spam_with_its_reason() -> None:
    cases = {
        "blocklist:email": (blocklist.BlocklistKind.EMAIL, "@example.org", CLEAN),
        "blocklist:domain": (blocklist.BlocklistKind.DOMAIN, "pills.example", "see pills.example"),
        "blocklist:ip": (blocklist.BlocklistKind.IP, "198.51.100.0/24", CLEAN),
        "blocklist:word": (blocklist.BlocklistKind.WORD, "casino", "Casino night!"),
    }
    for reason, (kind, value, body) in cases.items():
        lists = blocklist._Lists()
        lists.add(kind, blocklist.normalize_value(kind, value))
        judgement = screen(candidate(body=body, blocked=Blocklist(1, {None: lists})))
        assert judgement == Judgement(CommentStatus.SPAM, 1.0, (reason,), held=True), reason


def test_too_fast_alone_holds_and_only_with_proof() -> None:
    held = screen(candidate(fill_ms=1_200))
    assert held == Judgement(CommentStatus.PENDING, 0.6, ("too_fast",), held=True)
    assert screen(candidate(fill_ms=3_000)).reasons == ()
    assert screen(candidate(fill_ms=None)).reasons == ()  # an API client: not judged
    no_minimum = SiteRules(min_fill_seconds=0)
    assert screen(candidate(fill_ms=0, rules=no_minimum)).reasons == ()


def test_links_over_the_site_maximum_hold_and_score_by_how_many() -> None:
    def links(count: int) -> str:
        return " ".join(f"https://site{i}.example/page" for i in range(count))

    assert screen(candidate(body=links(2))).reasons == ()
    three = screen(candidate(body=links(3)))
    assert three == Judgement(CommentStatus.PENDING, 0.3, ("links",), held=True)
    assert screen(candidate(body=links(5))).score == 0.5
    assert screen(candidate(body=links(40))).score == 0.9
    strict = SiteRules(max_links=0)
    assert screen(candidate(body=links(1), rules=strict)).reasons == ("links",)


def test_rules_combine_their_reasons_in_order_and_their_scores() -> None:
    lists = blocklist._Lists()
    lists.add(blocklist.BlocklistKind.WORD, "casino")
    body = "casino " + " ".join(f"http://x{i}.example" for i in range(4))
    judgement = screen(
        candidate(body=body, honeypot="x", fill_ms=10, blocked=Blocklist(1, {None: lists}))
    )
    assert judgement.reasons == ("honeypot", "blocklist:word", "too_fast", "links")
    assert judgement.status == CommentStatus.SPAM
    assert judgement.score == 1.0
    held = screen(candidate(body=body.removeprefix("casino "), fill_ms=10))
    assert held.status == CommentStatus.PENDING
    assert held.score == round(1 - (1 - 0.6) * (1 - 0.4), 2)


def test_outcomes_order_from_mild_to_severe() -> None:
    assert Outcome.HOLD < Outcome.SPAM


# --- through the submission use case ---------------------------------------------------


def submit(
    body: str = CLEAN,
    *,
    name: str = "Ada",
    email: str = "ada@example.org",
    honeypot: str = "",
    fill_ms: int | None = None,
    address: str | None = "198.51.100.7",
    page: str = "/a",
) -> tuple[submissions.StoredComment, Comment]:
    site = sites.get_site("news")
    assert site is not None
    stored = submissions.submit_comment(
        site,
        submissions.Submission(
            page=page,
            body=body,
            author_name=name,
            author_email=email,
            page_url="https://news.example/a",
            honeypot=honeypot,
            fill_ms=fill_ms,
        ),
        submissions.ClientInfo("198.51.100.0", "test", address),
    )
    comment = db.session.get(Comment, stored.id)
    assert comment is not None
    db.session.refresh(comment)
    return stored, comment


def system_events(comment_id: int) -> list[ModerationEvent]:
    return list(
        db.session.scalars(
            sa.select(ModerationEvent).where(
                ModerationEvent.comment_id == comment_id, ModerationEvent.actor == "system"
            )
        )
    )


def test_spam_is_stored_with_reasons_but_answered_as_pending(
    app: Flask, context: None, heard: Heard
) -> None:
    answer, comment = submit(honeypot="filled by a bot")
    assert answer.status == CommentStatus.PENDING
    assert (comment.status, comment.spam_score, comment.spam_reasons) == (
        CommentStatus.SPAM,
        1.0,
        "honeypot",
    )
    [event] = system_events(comment.id)
    assert (event.action.value, event.to_status, event.note) == (
        "spam",
        CommentStatus.SPAM,
        "rules: honeypot",
    )
    [announced] = heard.committed
    assert (announced.status, announced.reasons) == (CommentStatus.SPAM, ("honeypot",))
    page = db.session.get(Page, comment.page_id)
    assert page is not None and page.url is None  # spam never describes a page


def test_a_blocklist_entry_applies_from_the_next_submission(app: Flask, context: None) -> None:
    _, before = submit("I like casino nights")
    blocklist.add_entry("word", "casino", None, "cli")
    _, after = submit("I like casino nights, again")
    assert (before.status, before.spam_reasons) == (CommentStatus.PENDING, "")
    assert (after.status, after.spam_reasons) == (CommentStatus.SPAM, "blocklist:word")


def test_on_a_markdown_site_a_blocked_word_is_found_as_readers_see_it(
    app: Flask, context: None
) -> None:
    """``bad*wo*rd`` reads "badword" on a Markdown site: submitted or edited in, it is spam;
    on a text site it shows with its asterisks, and is not."""
    blocklist.add_entry("word", "badword", None, "cli")
    _, literal = submit("Some bad*wo*rd here.")
    assert (literal.status, literal.spam_reasons) == (CommentStatus.PENDING, "")
    sites.set_markup("news", Markup.MARKDOWN)
    _, dodged = submit("Some bad*wo*rd here, again.")
    assert (dodged.status, dodged.spam_reasons) == (CommentStatus.SPAM, "blocklist:word")
    first, clean = submit("A clean draft.")
    assert (clean.status, clean.spam_reasons) == (CommentStatus.PENDING, "")
    site = sites.get_site("news")
    assert site is not None and first.edit_token is not None
    client = submissions.ClientInfo("198.51.100.0", "test", "198.51.100.7")
    submissions.edit_own_comment(site, first.id, first.edit_token, "Now `bad`word.", client)
    db.session.refresh(clean)
    assert (clean.status, clean.spam_reasons) == (CommentStatus.SPAM, "blocklist:word")


def test_a_blocked_address_is_compared_in_full_and_never_stored(app: Flask, context: None) -> None:
    blocklist.add_entry("ip", "198.51.100.7", None, "cli")
    _, blocked = submit(address="198.51.100.7")
    _, neighbour = submit("From next door.", address="198.51.100.8")
    assert blocked.spam_reasons == "blocklist:ip"
    assert neighbour.spam_reasons == ""
    assert blocked.ip_prefix == "198.51.100.0"


def first_mode(moderator: Moderator, name: str = "Ada", email: str = "ada@example.org") -> None:
    """Site news in mode ``first``, with an approved comment by ``name`` <``email``>."""
    sites.set_rules("news", moderation="first")
    _, earlier = submit("My first comment here.", name=name, email=email)
    moderation.update_comment(moderator, earlier.id, CommentStatus.APPROVED, None)


def test_all_mode_approves_nothing_at_once(app: Flask, context: None, moderator: Moderator) -> None:
    _, earlier = submit("My first comment here.")
    moderation.update_comment(moderator, earlier.id, CommentStatus.APPROVED, None)
    answer, comment = submit("And another one.")
    assert answer.status == comment.status == CommentStatus.PENDING


def test_first_mode_approves_a_known_author_at_once(
    app: Flask, context: None, moderator: Moderator, heard: Heard
) -> None:
    first_mode(moderator)
    answer, comment = submit("Thanks for the follow-up!", name="ADA")
    assert answer.status == comment.status == CommentStatus.APPROVED
    [event] = system_events(comment.id)
    assert (event.action.value, event.from_status, event.to_status) == (
        "approve",
        None,
        CommentStatus.APPROVED,
    )
    assert event.note is not None and "approved comment" in event.note
    page = db.session.get(Page, comment.page_id)
    assert page is not None and page.approved_count == 2


def test_first_mode_holds_a_known_author_with_too_many_links(
    app: Flask, context: None, moderator: Moderator
) -> None:
    first_mode(moderator)
    body = "Sources: https://a.example/1 https://b.example/2 https://c.example/3"
    answer, comment = submit(body)
    assert answer.status == comment.status == CommentStatus.PENDING
    assert comment.spam_reasons == "links"
    assert system_events(comment.id) == []


def test_first_mode_holds_an_impostor_with_the_right_email(
    app: Flask, context: None, moderator: Moderator
) -> None:
    first_mode(moderator)
    answer, comment = submit("Trust me, I am Ada.", name="Not Ada")
    assert answer.status == comment.status == CommentStatus.PENDING
    _, stranger = submit("I am Ada too.", email="someone@example.org")
    assert stranger.status == CommentStatus.PENDING


def test_first_mode_trusts_only_on_the_same_site(
    app: Flask, context: None, moderator: Moderator
) -> None:
    first_mode(moderator)
    blog = sites.get_site("blog")
    assert blog is not None
    stored = submissions.submit_comment(
        blog,
        submissions.Submission(
            page="/b", body="Hello blog.", author_name="Ada", author_email="ada@example.org"
        ),
        submissions.ClientInfo(None, None),
    )
    assert stored.status == CommentStatus.PENDING


def test_site_rules_are_checked(app: Flask, context: None) -> None:
    rules = sites.set_rules("news", max_links=0, min_fill_seconds=10)
    assert rules == SiteRules(moderation="all", max_links=0, min_fill_seconds=10)
    site = sites.get_site("news")
    assert site is not None and site.rules == rules
    with pytest.raises(Invalid) as refused:
        sites.set_rules("news", moderation="none", max_links=-1)
    assert set(refused.value.errors) == {"moderation", "max_links"}
