"""The blocklist: values normalized one way for entries and submissions, matched without
scanning, and a change seen by every worker from the next submission on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from commentsvc.extensions import db
from commentsvc.markup import Markup, render
from commentsvc.models import BlocklistKind, CommentStatus, Moderator
from commentsvc.services import audit, blocklist, moderation
from commentsvc.services.blocklist import Blocklist, Traits, _Lists
from commentsvc.services.errors import Forbidden, Invalid, NotFound
from tests.conftest import make_app


@pytest.mark.parametrize(
    ("kind", "value", "stored"),
    [
        (BlocklistKind.DOMAIN, "WWW.Example.COM", "example.com"),
        (BlocklistKind.DOMAIN, "https://example.com/x?y=1", "example.com"),
        (BlocklistKind.DOMAIN, "http://www.Example.com:8080/", "example.com"),
        (BlocklistKind.DOMAIN, "example.com.", "example.com"),
        (BlocklistKind.DOMAIN, "*.example.com", "example.com"),
        (BlocklistKind.DOMAIN, "bücher.example", "xn--bcher-kva.example"),
        (BlocklistKind.DOMAIN, "xn--bcher-kva.example", "xn--bcher-kva.example"),
        (BlocklistKind.DOMAIN, "BÜCHER.example", "xn--bcher-kva.example"),
        (BlocklistKind.EMAIL, "@Example.COM", "@example.com"),
        (BlocklistKind.EMAIL, "@bücher.example", "@xn--bcher-kva.example"),
        (BlocklistKind.EMAIL, "Spammer@Example.COM", "spammer@example.com"),
        (BlocklistKind.IP, "203.0.113.7", "203.0.113.7/32"),
        (BlocklistKind.IP, "203.0.113.7/24", "203.0.113.0/24"),
        (BlocklistKind.IP, "2001:DB8::1/64", "2001:db8::/64"),
        (BlocklistKind.IP, "::ffff:203.0.113.0/120", "203.0.113.0/24"),
        (BlocklistKind.WORD, "  Buy   NOW! ", "buy now"),
        (BlocklistKind.WORD, "\uff23\uff21\uff33\uff29\uff2e\uff2f", "casino"),  # full-width
        (BlocklistKind.WORD, "abcd.com", "abcd com"),
    ],
)
def test_values_are_normalized(kind: BlocklistKind, value: str, stored: str) -> None:
    assert blocklist.normalize_value(kind, value) == stored


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (BlocklistKind.DOMAIN, "not a domain"),
        (BlocklistKind.DOMAIN, "a..b"),
        (BlocklistKind.EMAIL, "nobody"),
        (BlocklistKind.EMAIL, "@"),
        (BlocklistKind.IP, "203.0.113.999"),
        (BlocklistKind.IP, "10.0.0.0/33"),
        (BlocklistKind.WORD, "!!!"),
        (BlocklistKind.WORD, "   "),
    ],
)
def test_values_not_of_their_kind_are_refused(kind: BlocklistKind, value: str) -> None:
    with pytest.raises(Invalid) as refused:
        blocklist.normalize_value(kind, value)
    assert refused.value.field == "value"


def _blocklist(*entries: tuple[BlocklistKind, str], site_id: int | None = None) -> Blocklist:
    lists = _Lists()
    for kind, value in entries:
        lists.add(kind, blocklist.normalize_value(kind, value))
    return Blocklist(1, {site_id: lists})


def _traits(
    *,
    email: str = "reader@example.org",
    name: str = "Reader",
    website: str | None = None,
    body: str = "A fine article.",
    address: str | None = "198.51.100.1",
) -> Traits:
    return Traits(email, name, website, body, address)


@pytest.mark.parametrize(
    "traits",
    [
        _traits(website="https://spam.example/offer"),
        _traits(website="http://WWW.SPAM.EXAMPLE"),
        _traits(body="see https://spam.example/ now"),
        _traits(body="visit spam.example, cheap"),
        _traits(body="shop at https://shop.spam.example/x"),
        _traits(email="someone@mail.spam.example"),
        _traits(body="write to me at offers@spam.example"),
    ],
)
def test_a_blocked_domain_is_found_wherever_it_is_named(traits: Traits) -> None:
    assert _blocklist((BlocklistKind.DOMAIN, "spam.example")).domain(1, traits)


@pytest.mark.parametrize(
    "traits",
    [
        _traits(website="https://notspam.example/"),
        _traits(body="spam example, and spam.examples"),
        _traits(email="spam.example@example.org"),
    ],
)
def test_a_blocked_domain_does_not_match_lookalikes(traits: Traits) -> None:
    assert not _blocklist((BlocklistKind.DOMAIN, "spam.example")).domain(1, traits)


def test_internationalized_domains_match_in_either_spelling() -> None:
    unicode_entry = _blocklist((BlocklistKind.DOMAIN, "bücher.example"))
    punycode_entry = _blocklist((BlocklistKind.DOMAIN, "xn--bcher-kva.example"))
    for entries in (unicode_entry, punycode_entry):
        assert entries.domain(1, _traits(body="https://BÜCHER.example/neu"))
        assert entries.domain(1, _traits(website="https://xn--bcher-kva.example"))


def test_emails_match_by_address_or_by_domain() -> None:
    by_address = _blocklist((BlocklistKind.EMAIL, "Spammer@Example.com"))
    assert by_address.email(1, _traits(email="spammer@example.com"))
    assert not by_address.email(1, _traits(email="other@example.com"))
    by_domain = _blocklist((BlocklistKind.EMAIL, "@example.com"))
    assert by_domain.email(1, _traits(email="anyone@EXAMPLE.com"))
    assert not by_domain.email(1, _traits(email="anyone@sub.example.com"))


@pytest.mark.parametrize(
    ("entry", "address", "blocked"),
    [
        ("203.0.113.7", "203.0.113.7", True),
        ("203.0.113.7", "203.0.113.8", False),
        ("203.0.113.0/24", "203.0.113.200", True),
        ("203.0.113.0/24", "203.0.114.1", False),
        ("203.0.113.0/24", "::ffff:203.0.113.9", True),
        ("2001:db8:1::/48", "2001:db8:1:2::3", True),
        ("2001:db8:1::/48", "2001:db8:2::3", False),
        ("2001:db8::/32", "203.0.113.9", False),
        ("203.0.113.0/24", None, False),
    ],
)
def test_addresses_match_by_cidr(entry: str, address: str | None, blocked: bool) -> None:
    entries = _blocklist((BlocklistKind.IP, entry))
    assert entries.ip(1, _traits(address=address)) is blocked


def test_words_match_whole_words_in_body_name_or_website() -> None:
    entries = _blocklist((BlocklistKind.WORD, "casino"), (BlocklistKind.WORD, "cheap pills"))
    assert entries.word(1, _traits(body="Best CASINO in town"))
    assert entries.word(1, _traits(name="Casino Bonus"))  # the body is clean
    assert entries.word(1, _traits(website="https://best-casino.example/"))
    assert entries.word(1, _traits(body="Buy cheap\npills here"))
    assert not entries.word(1, _traits(body="Occasionally I visit"))
    assert not entries.word(1, _traits(body="cheap and pills"))


@pytest.mark.parametrize(
    "body", ["bad\u200bword", "b\u00adadword", "bad\u2060word", "bad\ufeffword", "bad\u200dword"]
)
def test_invisible_characters_do_not_split_a_word(body: str) -> None:
    """What the screen shows as one word is one word to the rules, on any site."""
    entries = _blocklist((BlocklistKind.WORD, "badword"))
    assert entries.word(1, _traits(body=body))
    assert entries.word(1, _traits(name=body))


def test_a_word_entry_for_a_domain_catches_it_in_a_url() -> None:
    """twikoo#970: an exact-match rule for ``abcd.com`` missed ``https://abcd.com/``."""
    entries = _blocklist((BlocklistKind.WORD, "abcd.com"))
    assert entries.word(1, _traits(body="go to https://abcd.com/ now"))
    assert entries.word(1, _traits(website="https://abcd.com/"))


def _comment(body: str, markup: Markup) -> Traits:
    """The traits of a comment with ``body`` on a site whose markup is ``markup``."""
    return Traits.of_comment(
        "reader@example.org", "Reader", None, body, "198.51.100.1", render(body, markup), markup
    )


#: Markdown that readers of a Markdown site see as "badword" (or "cheap pills").
MARKDOWN_DODGES = [
    "bad*wo*rd",
    "*bad*word",
    "**bad**word",
    "***bad***word",
    "b*a*d*w*o*r*d",
    "`bad`word",
    "bad[wo](https://a.example/)rd",
    "[bad](https://a.example/)[word](https://b.example/)",
    "> Try bad*wo*rd",
    "- first\n- **bad**word",
    "cheap pi*ll*s",
]
#: Markdown that readers see otherwise: escaped, kept literally, or apart.
MARKDOWN_SHOWN_APART = [
    "bad<!-- -->word",  # raw HTML is shown as typed
    "bad\\*word",  # an escaped asterisk: "bad*word"
    "bad&#119;ord",  # entities are shown as typed
    "bad\nword",  # a line break
    "- bad\n- word",  # two list items
    "```\nbad\n```\nword",  # a code block, then a paragraph
]
#: Words only the text holds (a link's target) or that readers see anyway (code).
IN_THE_TEXT = ["[a link](https://a.example/badword)", "`badword`", "<https://a.example/badword>"]


@pytest.mark.parametrize("body", MARKDOWN_DODGES + IN_THE_TEXT)
def test_on_a_markdown_site_words_are_found_as_readers_see_them(body: str) -> None:
    entries = _blocklist((BlocklistKind.WORD, "badword"), (BlocklistKind.WORD, "cheap pills"))
    assert entries.word(1, _comment(body, Markup.MARKDOWN))


@pytest.mark.parametrize("body", MARKDOWN_SHOWN_APART)
def test_on_a_markdown_site_words_shown_apart_stay_apart(body: str) -> None:
    entries = _blocklist((BlocklistKind.WORD, "badword"))
    assert not entries.word(1, _comment(body, Markup.MARKDOWN))


@pytest.mark.parametrize("body", MARKDOWN_DODGES + MARKDOWN_SHOWN_APART + IN_THE_TEXT)
def test_on_a_text_site_words_are_found_in_the_text_alone(body: str) -> None:
    """A text site shows the asterisks and backticks as typed: its words are the text's."""
    entries = _blocklist((BlocklistKind.WORD, "badword"), (BlocklistKind.WORD, "cheap pills"))
    on_text = _comment(body, Markup.TEXT)
    assert on_text.texts == _traits(email="reader@example.org", body=body).texts
    assert entries.word(1, on_text) is entries.word(1, _traits(body=body))


def test_on_a_text_site_asterisks_keep_the_words_apart() -> None:
    entries = _blocklist((BlocklistKind.WORD, "badword"))
    assert not entries.word(1, _comment("bad*wo*rd", Markup.TEXT))  # shown with asterisks
    assert entries.word(1, _comment("bad*wo*rd", Markup.MARKDOWN))  # shown as "badword"


def test_a_site_entry_holds_on_its_site_only() -> None:
    entries = _blocklist((BlocklistKind.WORD, "casino"), site_id=1)
    assert entries.word(1, _traits(body="casino"))
    assert not entries.word(2, _traits(body="casino"))


def test_entries_are_added_once_and_removed_within_scope(app: Flask, context: None) -> None:
    entry, created = blocklist.add_entry("domain", "WWW.Spam.example", None, "cli")
    assert created and entry.value == "spam.example"
    again, created = blocklist.add_entry("DOMAIN", "https://spam.example/x", None, "cli")
    assert (again.id, created) == (entry.id, False)
    site_entry, _ = blocklist.add_entry("word", "casino", 1, "cli")
    assert [e.id for e in blocklist.entries({2})] == [entry.id]
    assert {e.id for e in blocklist.entries({1})} == {entry.id, site_entry.id}
    with pytest.raises(Forbidden):
        blocklist.remove_entry(entry.id, {1})
    with pytest.raises(NotFound):
        blocklist.remove_entry(site_entry.id, {2})
    blocklist.remove_entry(site_entry.id, {1})
    blocklist.remove_entry(entry.id, None)
    assert blocklist.entries(None) == []


def test_unknown_kinds_and_sites_are_refused(app: Flask, context: None) -> None:
    with pytest.raises(Invalid) as refused:
        blocklist.add_entry("url", "spam.example", None, "cli")
    assert refused.value.field == "kind"
    with pytest.raises(NotFound):
        blocklist.add_entry("word", "casino", 999, "cli")


def test_a_change_reaches_another_worker_at_its_next_submission(app: Flask, tmp_path: Path) -> None:
    """Two apps on one database stand for two workers (or replicas): each keeps its own
    copy, and reads one row per submission to know whether it is stale."""
    other = make_app(tmp_path / "test.db")  # the app fixture's database
    assert other.config["DATABASE_URL"] == app.config["DATABASE_URL"]
    with other.app_context():
        copy = blocklist.current_blocklist(db.session.connection())
        assert not copy.word(1, _traits(body="casino"))
        db.session.remove()
    with app.app_context():
        blocklist.add_entry("word", "casino", None, "cli")
    with other.app_context():
        fresh = blocklist.current_blocklist(db.session.connection())
        assert fresh.generation > copy.generation
        assert fresh.word(1, _traits(body="casino"))
        unchanged = blocklist.current_blocklist(db.session.connection())
        assert unchanged is fresh  # not loaded again while nothing changed
        db.session.remove()
        db.engine.dispose()


def test_spam_and_block_is_all_or_nothing(
    app: Flask,
    context: None,
    make_moderator: Callable[..., Moderator],
    make_comment: Callable[..., int],
) -> None:
    comment_id = make_comment(
        site="news", status=CommentStatus.PENDING, author_email="bot@spam.example"
    )
    blog_moderator = make_moderator("blogmod@example.com", sites=("blog",))
    offers = blocklist.offered_entries("bot@spam.example", "203.0.113.0")
    assert offers == [
        (BlocklistKind.EMAIL, "bot@spam.example"),
        (BlocklistKind.DOMAIN, "spam.example"),
        (BlocklistKind.IP, "203.0.113.0/24"),
    ]
    with pytest.raises(NotFound):  # not their site: nothing blocked either
        moderation.spam_and_block(blog_moderator, comment_id, offers, None)
    news_moderator = make_moderator("newsmod@example.com", sites=("news",))
    with pytest.raises(Invalid):  # every site is beyond a moderator of one
        moderation.spam_and_block(news_moderator, comment_id, offers, None)
    assert blocklist.entries(None) == []

    admin = make_moderator()
    before = moderation.spam_and_block(admin, comment_id, offers[:1], 1)
    again = moderation.spam_and_block(admin, comment_id, offers[1:2], None)
    assert (before, again) == (CommentStatus.PENDING, CommentStatus.SPAM)
    notes = [event.note for event in audit.comment_events(comment_id)]
    assert notes == [
        "blocked on site news: email bot@spam.example",
        "blocked on every site: domain spam.example",
    ]
    assert [(e.kind, e.site_id) for e in blocklist.entries(None)] == [
        (BlocklistKind.DOMAIN, None),
        (BlocklistKind.EMAIL, 1),
    ]


def test_an_erased_author_offers_only_what_makes_an_entry() -> None:
    assert blocklist.offered_entries("", None) == []
    assert blocklist.offered_entries("", "2001:db8:1::") == [(BlocklistKind.IP, "2001:db8:1::/48")]
