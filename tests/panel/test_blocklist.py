"""The blocklist page and "spam and block this author" (DESIGN §7): what each moderator
sees and may change, field errors, CSRF, and the entries, statuses and audit notes stored."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from commentsvc.extensions import db
from commentsvc.models import BlocklistEntry, CommentStatus
from commentsvc.services import blocklist
from tests.conftest import ORIGIN, valid_submission
from tests.support.html import Element, flashes, html
from tests.support.panel import (
    ADMIN,
    BLOG_MODERATOR,
    LOGIN,
    PANEL,
    blocklist_rows,
    csrf_token,
    field_error,
    is_login_redirect,
    set_verdict,
    submit,
)
from tests.support.state import PENDING, events_of, status_of

SPAM = CommentStatus.SPAM
PAGE = f"{PANEL}/blocklist"


def add(app: Flask, kind: str, value: str, site: str | None, by: str = "cli") -> int:
    """An entry added through the service, as the CLI does; returns its id."""
    with app.app_context():
        site_id = None
        if site is not None:
            site_id = db.session.scalar(
                sa.text("SELECT id FROM sites WHERE slug = :s"), {"s": site}
            )
        entry, created = blocklist.add_entry(kind, value, site_id, by)
        assert created
        return entry.id


def rows(response: TestResponse) -> list[list[str]]:
    table = html(response).find("table", cls="blocklist")
    return [[td.text for td in tr.find_all("td")] for tr in table.find("tbody").find_all("tr")]


def remove_buttons(response: TestResponse) -> set[str]:
    """The actions of the remove forms a page offers."""
    table = html(response).find("table", cls="blocklist")
    return {form.attrs["action"] for form in table.find_all("form")}


# --- the page -----------------------------------------------------------------------------------


def test_blocklist_page_lists_what_the_moderator_may_see(
    app: Flask, admin_client: FlaskClient, blog_client: FlaskClient
) -> None:
    everywhere = add(app, "domain", "WWW.Spam.Example", None)
    news = add(app, "email", "Bot@News.example", "news", by=ADMIN)
    blog = add(app, "ip", "198.51.100.7/24", "blog")

    page = admin_client.get(PAGE)
    assert page.status_code == 200
    nav = html(page).find("nav", aria_label="Main")
    assert nav.find("a", href=PAGE).attrs["aria-current"] == "page"
    assert [row[:4] for row in rows(page)] == [
        ["ip", "198.51.100.0/24", "blog", "cli"],
        ["email", "bot@news.example", "news", ADMIN],
        ["domain", "spam.example", "every site", "cli"],
    ]
    assert all(row[4] == "just now" for row in rows(page))
    assert remove_buttons(page) == {f"{PAGE}/{entry}/remove" for entry in (everywhere, news, blog)}

    # A moderator of the blog: the every-site entries and the blog's, never the news site's.
    limited = blog_client.get(PAGE)
    assert [row[:3] for row in rows(limited)] == [
        ["ip", "198.51.100.0/24", "blog"],
        ["domain", "spam.example", "every site"],
    ]
    assert "bot@news.example" not in limited.get_data(as_text=True)
    assert remove_buttons(limited) == {f"{PAGE}/{blog}/remove"}
    assert rows(limited)[1][5] == "Managed by moderators of every site"
    sites = html(limited).find("form", id="blocklist-form").find("select", name="site")
    assert [option.attrs["value"] for option in sites.find_all("option")] == ["blog"]


def test_an_empty_blocklist_says_so(admin_client: FlaskClient) -> None:
    page = html(admin_client.get(PAGE))
    assert page.find("p", cls="empty").text == "Nothing is blocked."
    form = page.find("form", id="blocklist-form")
    kinds = [
        option.attrs["value"] for option in form.find("select", name="kind").find_all("option")
    ]
    assert kinds == ["email", "domain", "ip", "word"]
    sites = [option.text for option in form.find("select", name="site").find_all("option")]
    assert sites == ["Every site", "Blog (blog)", "News (news)"]
    for name in ("kind", "value", "site"):
        assert form.find("label", for_=name)


@pytest.mark.parametrize(
    ("kind", "value", "site", "stored", "where"),
    [
        ("email", " Spammer@Bücher.example ", "", "spammer@xn--bcher-kva.example", None),
        ("email", "@Spam.example", "news", "@spam.example", "news"),
        ("domain", "https://www.Spam.example/page", "blog", "spam.example", "blog"),
        ("ip", "203.0.113.9/24", "", "203.0.113.0/24", None),
        ("word", "Cheap  CASINO", "news", "cheap casino", "news"),
    ],
)
def test_add_an_entry(
    app: Flask,
    admin_client: FlaskClient,
    kind: str,
    value: str,
    site: str,
    stored: str,
    where: str | None,
) -> None:
    response = submit(admin_client, PAGE, {"kind": kind, "value": value, "site": site})
    assert response.status_code == 303
    assert response.headers["Location"] == PAGE
    assert blocklist_rows(app) == [(kind, stored, where, ADMIN)]
    page = admin_client.get(PAGE)
    assert ("success", f"Blocked {kind} {stored} on {where or 'every site'}.") in flashes(page)
    # The same entry again adds nothing.
    submit(admin_client, PAGE, {"kind": kind, "value": value, "site": site})
    assert len(blocklist_rows(app)) == 1
    assert ("success", f"Already blocked: {kind} {stored} on {where or 'every site'}.") in (
        flashes(admin_client.get(PAGE))
    )


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"kind": "email", "value": "not an address"}, "value", "Not an email address"),
        ({"kind": "domain", "value": "spam..example"}, "value", "Not a domain name"),
        ({"kind": "ip", "value": "300.1.1.1"}, "value", "Not an IP address or CIDR range"),
        ({"kind": "word", "value": "!!!"}, "value", "at least one letter or digit"),
        ({"kind": "email", "value": "  "}, "value", "This field is required."),
        ({"kind": "email", "value": "x" * 400 + "@spam.example"}, "value", "Field cannot be"),
        ({"kind": "url", "value": "spam.example"}, "kind", "Not a valid choice"),
        ({"kind": "email", "value": "a@spam.example", "site": "nowhere"}, "site", "Not a valid"),
    ],
)
def test_a_bad_entry_shows_the_error_next_to_its_field(
    app: Flask, admin_client: FlaskClient, data: dict[str, str], field: str, says: str
) -> None:
    response = submit(admin_client, PAGE, {"site": "", **data})
    assert response.status_code == 422
    assert says in field_error(response, field)
    assert html(response).find("input", name="value").attrs["value"] == data["value"]
    assert blocklist_rows(app) == []


def test_a_site_limited_moderator_cannot_block_on_every_site_or_another_site(
    app: Flask, blog_client: FlaskClient
) -> None:
    for site in ("", "news"):
        data = {"kind": "email", "value": "bot@spam.example", "site": site}
        response = submit(blog_client, PAGE, data)
        assert response.status_code == 422
        assert "Not a valid choice" in field_error(response, "site")
    assert blocklist_rows(app) == []
    data = {"kind": "email", "value": "bot@spam.example", "site": "blog"}
    assert submit(blog_client, PAGE, data).status_code == 303
    assert blocklist_rows(app) == [("email", "bot@spam.example", "blog", BLOG_MODERATOR)]


def test_remove_an_entry(app: Flask, admin_client: FlaskClient) -> None:
    kept = add(app, "word", "casino", "news")
    gone = add(app, "domain", "spam.example", None)
    response = submit(admin_client, f"{PAGE}/{gone}/remove")
    assert response.status_code == 303
    assert response.headers["Location"] == PAGE
    page = admin_client.get(PAGE)
    assert ("success", "Removed domain spam.example on every site from the blocklist.") in (
        flashes(page)
    )
    assert [row[:3] for row in rows(page)] == [["word", "casino", "news"]]
    assert submit(admin_client, f"{PAGE}/{gone}/remove").status_code == 404
    assert submit(admin_client, f"{PAGE}/{kept}/remove").status_code == 303
    assert blocklist_rows(app) == []


def test_removing_out_of_reach_is_404_or_403(app: Flask, blog_client: FlaskClient) -> None:
    news = add(app, "email", "a@spam.example", "news")
    everywhere = add(app, "email", "b@spam.example", None)
    own = add(app, "email", "c@spam.example", "blog")
    before = blocklist_rows(app)
    assert submit(blog_client, f"{PAGE}/{news}/remove").status_code == 404
    forbidden = submit(blog_client, f"{PAGE}/{everywhere}/remove")
    assert forbidden.status_code == 403
    assert "You are not allowed to do this." in html(forbidden).find("main").text
    assert submit(blog_client, f"{PAGE}/999999/remove").status_code == 404
    assert blocklist_rows(app) == before
    assert submit(blog_client, f"{PAGE}/{own}/remove").status_code == 303
    assert [row[1] for row in blocklist_rows(app)] == ["a@spam.example", "b@spam.example"]


@pytest.mark.parametrize("token", [None, "forged-token", "other-session"])
def test_blocklist_forms_need_the_sessions_csrf_token(
    app: Flask, admin_client: FlaskClient, token: str | None
) -> None:
    entry = add(app, "word", "casino", None)
    if token == "other-session":
        token = csrf_token(app.test_client(), LOGIN)
    form = {"csrf_token": token} if token else {}
    before = blocklist_rows(app)
    for path, data in [
        (PAGE, {"kind": "email", "value": "bot@spam.example", "site": ""}),
        (f"{PAGE}/{entry}/remove", {}),
    ]:
        response = admin_client.post(path, data={**form, **data})
        assert response.status_code == 400
        assert "This form has expired" in html(response).find("main").text
    assert blocklist_rows(app) == before


def test_anonymous_visitors_go_to_login(app: Flask, client: FlaskClient) -> None:
    entry = add(app, "word", "casino", None)
    response = client.get(PAGE)
    assert is_login_redirect(response, next_path=PAGE)
    token = csrf_token(client, LOGIN)
    for path in (PAGE, f"{PAGE}/{entry}/remove"):
        data = {"csrf_token": token, "kind": "word", "value": "poker", "site": ""}
        assert is_login_redirect(client.post(path, data=data))
    assert blocklist_rows(app) == [("word", "casino", None, "cli")]


# --- spam and block this author -----------------------------------------------------------------


def block_details(client: FlaskClient, path: str, comment_id: int) -> Element:
    article = html(client.get(path)).find("article", cls="comment", data_id=str(comment_id))
    return article.find("details", cls="block-author")


@pytest.fixture
def flagged(app: Flask, make_comment: Callable[..., int]) -> int:
    """A pending comment on the news site from a known client address."""
    comment = make_comment(status=PENDING, author_email="Bot@Spam.example")
    set_verdict(app, comment, 0.6, "too_fast", ip_prefix="203.0.113.0")
    return comment


def test_the_block_form_offers_email_domain_and_address_range(
    admin_client: FlaskClient,
    blog_client: FlaskClient,
    make_comment: Callable[..., int],
    flagged: int,
) -> None:
    for path in (f"{PANEL}/", f"{PANEL}/comments/{flagged}"):
        details = block_details(admin_client, path, flagged)
        assert details.find("summary").text == "Spam and block this author…"
        form_id = f"block-{flagged}"
        boxes = details.find("fieldset", cls="block-what").find_all("input", type="checkbox")
        assert [(box.attrs["value"], box.attrs["form"]) for box in boxes] == [
            ("email", form_id),
            ("domain", form_id),
            ("ip", form_id),
        ]
        assert ["checked" in box.attrs for box in boxes] == [True, False, False]
        labels = [
            label.text for label in details.find("fieldset", cls="block-what").find_all("label")
        ]
        assert labels == [
            "Email address bot@spam.example",
            "Domain (every address there, and links to it) spam.example",
            "Address range 203.0.113.0/24",
        ]
        where = details.find("fieldset", cls="block-where")
        assert [radio.attrs["value"] for radio in where.find_all("input", type="radio")] == [
            "site",
            "every",
        ]
        assert details.find("button", type="submit").attrs["form"] == form_id
        page = html(admin_client.get(path))
        form = page.find("form", id=form_id)
        assert form.attrs["action"] == f"{PANEL}/comments/{flagged}/block"
        assert form.find("input", name="csrf_token")
        assert form.find("input", name="next").attrs["value"] == path
    # Without an address prefix nothing is offered for it; a site moderator may block on
    # their site only.
    blog = make_comment(status=PENDING, site="blog", author_email="someone@blog.example")
    details = block_details(blog_client, f"{PANEL}/", blog)
    boxes = details.find("fieldset", cls="block-what").find_all("input", type="checkbox")
    assert [box.attrs["value"] for box in boxes] == ["email", "domain"]
    assert details.find_all("input", type="radio") == []
    assert details.find("p", cls="block-where").text == "On this site (blog)."


def test_spam_and_block_adds_exactly_the_chosen_entries(
    app: Flask, admin_client: FlaskClient, flagged: int
) -> None:
    back = f"{PANEL}/?reason=too_fast"
    data = {"block": ["email", "ip"], "scope": "site", "next": back}
    response = submit(admin_client, f"{PANEL}/comments/{flagged}/block", data)
    assert response.status_code == 303
    assert response.headers["Location"] == back
    assert blocklist_rows(app) == [
        ("email", "bot@spam.example", "news", ADMIN),
        ("ip", "203.0.113.0/24", "news", ADMIN),
    ]
    assert status_of(app, flagged) == SPAM
    note = "blocked on site news: email bot@spam.example, ip 203.0.113.0/24"
    assert events_of(app, flagged) == [("spam", "pending", "spam", note)]
    page = admin_client.get(back)
    message = "Marked as spam and blocked on site news: email bot@spam.example, ip 203.0.113.0/24."
    assert ("success", message) in flashes(page)
    history = html(admin_client.get(f"{PANEL}/comments/{flagged}")).find("ol", cls="history")
    assert note in history.text

    # Undo puts the comment back; the entries stay until removed on the blocklist page.
    undo = html(page).find("form", cls="undo")
    assert undo.attrs["action"] == f"{PANEL}/undo"
    submit(admin_client, f"{PANEL}/undo", {"next": back})
    assert status_of(app, flagged) == PENDING
    assert len(blocklist_rows(app)) == 2

    # From the next submission on, the author is caught.
    caught = app.test_client().post(
        "/api/v1/sites/news/comments",
        json=valid_submission(author_email="bot@spam.example", body="Again."),
        headers={"Origin": ORIGIN},
    )
    assert caught.status_code == 201
    assert caught.get_json()["status"] == "pending"
    assert status_of(app, caught.get_json()["id"]) == SPAM


def test_spam_and_block_on_every_site(app: Flask, admin_client: FlaskClient, flagged: int) -> None:
    data = {"block": ["domain"], "scope": "every"}
    response = submit(admin_client, f"{PANEL}/comments/{flagged}/block", data)
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PANEL}/"
    assert blocklist_rows(app) == [("domain", "spam.example", None, ADMIN)]
    assert events_of(app, flagged) == [
        ("spam", "pending", "spam", "blocked on every site: domain spam.example")
    ]


def test_blocking_the_author_of_spam_keeps_it_spam(
    app: Flask, admin_client: FlaskClient, flagged: int
) -> None:
    submit(admin_client, f"{PANEL}/comments/{flagged}/spam")
    details = block_details(admin_client, f"{PANEL}/?status=spam", flagged)
    assert details.find("summary").text == "Block this author…"
    assert details.find("button", type="submit").text == "Block"
    response = submit(admin_client, f"{PANEL}/comments/{flagged}/block", {"block": "email"})
    assert response.status_code == 303
    page = admin_client.get(response.headers["Location"])
    assert ("success", "Blocked on site news: email bot@spam.example.") in flashes(page)
    assert html(page).find_all("form", cls="undo") == []
    assert status_of(app, flagged) == SPAM
    assert blocklist_rows(app) == [("email", "bot@spam.example", "news", ADMIN)]


def test_spam_and_block_refusals_change_nothing(
    app: Flask,
    admin_client: FlaskClient,
    blog_client: FlaskClient,
    make_comment: Callable[..., int],
    flagged: int,
) -> None:
    path = f"{PANEL}/comments/{flagged}/block"
    # Nothing chosen (or only what is not offered): an error, and back.
    for chosen in ([], ["word"], ["everything"]):
        response = submit(admin_client, path, {"block": chosen})
        assert response.status_code == 303
        assert [category for category, _ in flashes(admin_client.get(PANEL + "/"))] == ["error"]
    # Another site's comment is out of sight; every site is out of a site moderator's reach.
    assert submit(blog_client, path, {"block": "email"}).status_code == 404
    blog = make_comment(status=PENDING, site="blog", author_email="bot@blog.example")
    every = submit(
        blog_client, f"{PANEL}/comments/{blog}/block", {"block": "email", "scope": "every"}
    )
    assert every.status_code == 403
    assert (
        submit(admin_client, f"{PANEL}/comments/999999/block", {"block": "email"}).status_code
        == 404
    )
    # No valid CSRF token.
    refused = admin_client.post(path, data={"block": "email"})
    assert refused.status_code == 400
    assert blocklist_rows(app) == []
    assert status_of(app, flagged) == PENDING
    assert status_of(app, blog) == PENDING
    assert events_of(app, flagged) == events_of(app, blog) == []
    # A site moderator blocks on their own site.
    assert (
        submit(blog_client, f"{PANEL}/comments/{blog}/block", {"block": "domain"}).status_code
        == 303
    )
    assert blocklist_rows(app) == [("domain", "blog.example", "blog", BLOG_MODERATOR)]
    assert status_of(app, blog) == SPAM


def test_an_erased_author_has_nothing_to_block(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    erased = make_comment(status=PENDING, author_email="")
    article = html(admin_client.get(f"{PANEL}/")).find("article", data_id=str(erased))
    assert article.find_all("details", cls="block-author") == []
    response = submit(admin_client, f"{PANEL}/comments/{erased}/block", {"block": "email"})
    assert response.status_code == 303
    assert blocklist_rows(app) == []
    assert status_of(app, erased) == PENDING
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(BlocklistEntry)) == 0
