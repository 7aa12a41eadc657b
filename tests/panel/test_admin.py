"""The panel's administration pages: sites, moderators and API tokens (administrators only)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from commentsvc.extensions import db
from commentsvc.models import ApiToken, Comment, Moderator, Site
from tests.conftest import ORIGIN, PASSWORD, valid_submission
from tests.support.html import Element, flashes, html
from tests.support.panel import (
    ADMIN,
    BLOG_MODERATOR,
    PANEL,
    add_moderator,
    assert_refused_unchanged,
    field_error,
    is_login_redirect,
    log_in,
    logged_in,
    submit,
)
from tests.support.state import PENDING, database_bytes

API_LIST = "/api/v1/moderation/comments"
#: A moderation API endpoint that only checks the token.
API_EVENTS = "/api/v1/moderation/events"


def site_row(app: Flask, slug: str) -> Site | None:
    with app.app_context():
        return db.session.scalar(sa.select(Site).where(Site.slug == slug))


def site_id(app: Flask, slug: str) -> int:
    site = site_row(app, slug)
    assert site is not None
    return site.id


def moderator_row(app: Flask, email: str) -> tuple[Moderator, list[str]]:
    """A moderator and the slugs of its sites."""
    with app.app_context():
        moderator = db.session.scalar(sa.select(Moderator).where(Moderator.email == email))
        assert moderator is not None
        return moderator, sorted(site.slug for site in moderator.sites)


def table_rows(response: TestResponse) -> list[list[str]]:
    rows = html(response).find("table").find("tbody").find_all("tr")
    return [[cell.text for cell in row.find_all("td")] for row in rows]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# --- only administrators ----------------------------------------------------------------------

ADMIN_PAGES = ["/sites", "/sites/{site}", "/moderators", "/moderators/{moderator}", "/tokens"]
ADMIN_FORMS = [
    ("/sites", {"slug": "evil", "name": "Evil", "origins": "https://evil.example"}),
    ("/sites/{site}", {"name": "Hacked", "origins": "https://evil.example"}),
    ("/moderators", {"email": "evil@example.com", "password": "evil-password", "admin": "y"}),
    ("/moderators/{moderator}", {"active": "y", "admin": "y"}),
    ("/moderators/{self}", {"active": "y", "admin": "y"}),
    ("/moderators/{moderator}/end-sessions", {}),
    ("/tokens", {"name": "evil", "moderator": "someone@example.com"}),
    ("/tokens/{token}/revoke", {}),
]


@pytest.mark.parametrize("sites", [("blog",), ()], ids=["one-site", "every-site"])
def test_moderators_who_are_not_admins_get_403(
    app: Flask, existing: dict[str, int], sites: tuple[str, ...]
) -> None:
    own = add_moderator(app, BLOG_MODERATOR, sites=sites)
    client = logged_in(app, BLOG_MODERATOR)
    ids = {**existing, "self": own}
    for page in ADMIN_PAGES:
        response = client.get(PANEL + page.format(**ids))
        assert response.status_code == 403, page
        assert "You are not allowed to do this." in html(response).find("main").text
    for path, data in ADMIN_FORMS:
        assert_refused_unchanged(app, client, PANEL + path.format(**ids), data, status=403)
    assert moderator_row(app, BLOG_MODERATOR)[0].is_admin is False


def test_admin_reaches_every_admin_page(
    admin_client: FlaskClient, existing: dict[str, int]
) -> None:
    for page in ADMIN_PAGES:
        assert admin_client.get(PANEL + page.format(**existing)).status_code == 200, page
    nav = html(admin_client.get(f"{PANEL}/")).find("nav", aria_label="Main")
    links = {a.attrs["href"] for a in nav.find_all("a")}
    assert {f"{PANEL}/sites", f"{PANEL}/moderators", f"{PANEL}/tokens"} <= links


def test_unknown_rows_are_404(admin_client: FlaskClient) -> None:
    for path in ("/sites/999", "/moderators/999"):
        assert admin_client.get(PANEL + path).status_code == 404
    assert submit(admin_client, f"{PANEL}/moderators/999/end-sessions").status_code == 404
    site = {"name": "x", "origins": "https://x.example"}
    assert submit(admin_client, f"{PANEL}/sites/999", site).status_code == 404
    assert submit(admin_client, f"{PANEL}/moderators/999", {"active": "y"}).status_code == 404
    assert submit(admin_client, f"{PANEL}/tokens/999/revoke").status_code == 404


# --- sites ---------------------------------------------------------------------------------


def test_sites_page_lists_sites_and_the_form(admin_client: FlaskClient) -> None:
    response = admin_client.get(f"{PANEL}/sites")
    assert response.status_code == 200
    assert table_rows(response) == [
        ["blog", "Blog", "https://blog.example", "open", "all"],
        ["news", "News", "https://news.example", "open", "all"],
    ]
    form = html(response).find("form", id="site-form")
    assert form.find("input", name="csrf_token").attrs["value"]
    assert {"slug", "name", "origins"} <= {
        element.attrs.get("name") for element in form.iter() if element.tag in {"input", "textarea"}
    }


def test_create_site_with_normalized_origins(app: Flask, admin_client: FlaskClient) -> None:
    response = submit(
        admin_client,
        f"{PANEL}/sites",
        {
            "slug": "docs",
            "name": "Documentation",
            "origins": "HTTPS://Docs.Example:443/\nhttp://localhost:8080, https://docs.example\n\n",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PANEL}/sites"
    listing = admin_client.get(f"{PANEL}/sites")
    assert ("success", "Added site docs.") in flashes(listing)
    docs = ["docs", "Documentation", "https://docs.example, http://localhost:8080", "open", "all"]
    assert docs in table_rows(listing)
    site = site_row(app, "docs")
    assert site is not None
    assert site.origins == ["https://docs.example", "http://localhost:8080"]
    assert site.comments_open is True
    # The new site takes comments from its origins right away.
    submitted = app.test_client().post(
        "/api/v1/sites/docs/comments",
        json=valid_submission(page_url="http://localhost:8080/guide"),
        headers={"Origin": "http://localhost:8080"},
    )
    assert submitted.status_code == 201


@pytest.mark.parametrize(
    "origin",
    [
        "ftp://docs.example",
        "https://docs.example/comments",
        "https://docs.example/?x=1",
        "https://user@docs.example",
        "docs.example",
        "javascript:alert(1)",
    ],
)
def test_create_site_with_a_bad_origin_is_refused(
    app: Flask, admin_client: FlaskClient, origin: str
) -> None:
    response = assert_refused_unchanged(
        app,
        admin_client,
        f"{PANEL}/sites",
        {"slug": "docs", "name": "Docs", "origins": f"https://docs.example\n{origin}"},
        status=422,
    )
    assert origin in field_error(response, "origins")
    doc = html(response)
    assert doc.find("input", name="slug").attrs["value"] == "docs"
    assert origin in doc.find("textarea", name="origins").text


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"slug": "Bad Slug!"}, "slug"),
        ({"slug": ""}, "slug"),
        ({"slug": "news"}, "slug"),
        ({"name": ""}, "name"),
        ({"origins": ""}, "origins"),
        ({"origins": " \n "}, "origins"),
    ],
)
def test_create_site_with_bad_fields_is_refused(
    app: Flask, admin_client: FlaskClient, data: dict[str, str], field: str
) -> None:
    form = {"slug": "docs", "name": "Docs", "origins": "https://docs.example", **data}
    response = assert_refused_unchanged(app, admin_client, f"{PANEL}/sites", form, status=422)
    assert field_error(response, field)


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/sites", {"slug": "docs", "name": "Do\x00cs", "origins": "https://docs.example"}),
        ("/moderators", {"email": "new\x00@example.com", "password": "long enough password"}),
        ("/tokens", {"name": "ci\x00", "moderator": "admin@example.com"}),
    ],
)
def test_a_nul_in_an_admin_form_is_refused_and_nothing_is_stored(
    app: Flask, admin_client: FlaskClient, path: str, data: dict[str, str]
) -> None:
    """Nothing stored holds a NUL, and PostgreSQL refuses one in a query outright."""
    assert_refused_unchanged(app, admin_client, PANEL + path, data, status=400)


def test_edit_site(app: Flask, admin_client: FlaskClient) -> None:
    path = f"{PANEL}/sites/{site_id(app, 'news')}"
    form = html(admin_client.get(path)).find("form", id="site-form")
    assert form.find("input", name="name").attrs["value"] == "News"
    assert form.find("textarea", name="origins").text == "https://news.example"
    assert "checked" in form.find("input", name="comments_open").attrs

    response = submit(
        admin_client,
        path,
        {
            "slug": "news",
            "name": "News Daily",
            "origins": "https://News.example\nhttps://www.news.example/",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PANEL}/sites"
    listing = admin_client.get(f"{PANEL}/sites")
    assert ("success", "Saved site news.") in flashes(listing)
    site = site_row(app, "news")
    assert site is not None
    assert site.name == "News Daily"
    assert site.origins == ["https://news.example", "https://www.news.example"]
    assert site.comments_open is False
    news = ["news", "News Daily", "https://news.example, https://www.news.example", "closed", "all"]
    assert news in table_rows(listing)
    form = html(admin_client.get(path)).find("form", id="site-form")
    assert "checked" not in form.find("input", name="comments_open").attrs

    submit(
        admin_client,
        path,
        {"name": "News Daily", "origins": "https://news.example", "comments_open": "y"},
    )
    site = site_row(app, "news")
    assert site is not None
    assert site.comments_open is True
    assert site.origins == ["https://news.example"]


def test_edit_site_cannot_change_the_slug(app: Flask, admin_client: FlaskClient) -> None:
    path = f"{PANEL}/sites/{site_id(app, 'news')}"
    response = submit(
        admin_client, path, {"slug": "renamed", "name": "News", "origins": "https://news.example"}
    )
    assert response.status_code == 303
    assert site_row(app, "news") is not None
    assert site_row(app, "renamed") is None


def test_edit_site_with_a_bad_origin_changes_nothing(app: Flask, admin_client: FlaskClient) -> None:
    path = f"{PANEL}/sites/{site_id(app, 'news')}"
    for origins in ("https://news.example/path", "", "mailto:x@news.example"):
        data = {"name": "Renamed", "origins": origins}
        response = assert_refused_unchanged(app, admin_client, path, data, status=422)
        assert field_error(response, "origins")


def test_edit_site_moderation_settings(app: Flask, admin_client: FlaskClient) -> None:
    path = f"{PANEL}/sites/{site_id(app, 'news')}"
    form = html(admin_client.get(path)).find("form", id="site-form")
    settings = form.find("fieldset", cls="settings")
    radios = settings.find_all("input", type="radio", name="moderation")
    assert [(r.attrs["value"], "checked" in r.attrs) for r in radios] == [
        ("all", True),
        ("first", False),
    ]
    choices = [label.text for label in settings.find_all("label", cls="choice")]
    assert choices[0] == "All: Every new comment waits for a moderator."
    assert choices[1].startswith("First: A comment is published at once when its author")
    assert settings.find("input", name="max_links").attrs["value"] == "2"
    assert settings.find("input", name="min_fill_seconds").attrs["value"] == "3"
    assert settings.find("label", for_="max_links")

    data = {
        "name": "News",
        "origins": "https://news.example",
        "comments_open": "y",
        "moderation": "first",
        "max_links": "5",
        "min_fill_seconds": "0",
        "feeds": "y",
    }
    response = submit(admin_client, path, data)
    assert response.status_code == 303
    site = site_row(app, "news")
    assert site is not None
    assert site.settings == {
        "comments_open": True,
        "moderation": "first",
        "max_links": 5,
        "min_fill_seconds": 0,
        "feeds": True,
    }
    assert ["news", "News", "https://news.example", "open", "first"] in table_rows(
        admin_client.get(f"{PANEL}/sites")
    )
    form = html(admin_client.get(path)).find("form", id="site-form")
    assert "checked" in form.find("input", type="radio", value="first").attrs
    assert form.find("input", name="max_links").attrs["value"] == "5"
    # The public API applies them at once: a known author is approved, six links are held.
    public = app.test_client()
    first = public.post(
        "/api/v1/sites/news/comments", json=valid_submission(), headers={"Origin": ORIGIN}
    ).get_json()["id"]
    assert submit(admin_client, f"{PANEL}/comments/{first}/approve").status_code == 303
    links = " ".join(f"https://l{n}.example/" for n in range(6))
    for body, status in (("Trusted now.", "approved"), (links, "pending")):
        response = public.post(
            "/api/v1/sites/news/comments",
            json=valid_submission(body=body),
            headers={"Origin": ORIGIN},
        )
        assert response.get_json()["status"] == status

    # A form that does not send the settings keeps them.
    submit(admin_client, path, {"name": "News", "origins": "https://news.example"})
    site = site_row(app, "news")
    assert site is not None
    assert (site.settings["moderation"], site.settings["max_links"]) == ("first", 5)


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"moderation": "none"}, "moderation", "Not a valid choice"),
        ({"max_links": "-1"}, "max_links", "Must be from 0 to 1000."),
        ({"max_links": "1001"}, "max_links", "Must be from 0 to 1000."),
        ({"max_links": "two"}, "max_links", "Not a valid integer value."),
        ({"max_links": ""}, "max_links", "Not a valid integer value."),
        ({"min_fill_seconds": "3601"}, "min_fill_seconds", "Must be from 0 to 3600."),
        ({"min_fill_seconds": "1.5"}, "min_fill_seconds", "Not a valid integer value."),
    ],
)
def test_edit_site_with_bad_settings_changes_nothing(
    app: Flask, admin_client: FlaskClient, data: dict[str, str], field: str, says: str
) -> None:
    path = f"{PANEL}/sites/{site_id(app, 'news')}"
    form = {"name": "Renamed", "origins": "https://news.example", **data}
    response = assert_refused_unchanged(app, admin_client, path, form, status=422)
    if field == "moderation":
        error = html(response).find("span", cls="field-error", id="moderation-error")
        assert says in error.text
        fieldset = html(response).find("fieldset", cls="choices")
        assert fieldset.attrs["aria-describedby"] == "moderation-error"
    else:
        assert says in field_error(response, field)


def test_both_setting_errors_show_at_once(app: Flask, admin_client: FlaskClient) -> None:
    path = f"{PANEL}/sites/{site_id(app, 'news')}"
    form = {
        "name": "News",
        "origins": "https://news.example",
        "max_links": "-1",
        "min_fill_seconds": "99999",
    }
    response = assert_refused_unchanged(app, admin_client, path, form, status=422)
    assert field_error(response, "max_links") == "Must be from 0 to 1000."
    assert field_error(response, "min_fill_seconds") == "Must be from 0 to 3600."


def test_edit_site_markup_renders_its_comments_again(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    comment_id = make_comment(body="*hello*")
    path = f"{PANEL}/sites/{site_id(app, 'news')}"
    form = html(admin_client.get(path)).find("form", id="site-form")
    select = form.find("select", name="markup")
    assert form.find("label", for_="markup").text == "Comments are written in"
    options = [
        (option.attrs["value"], "selected" in option.attrs, option.text)
        for option in select.find_all("option")
    ]
    assert [(value, selected) for value, selected, _ in options] == [
        ("text", True),
        ("markdown", False),
    ]
    assert options[1][2].startswith("Markdown: emphasis, strong, code, quotes, lists and links")

    data = {"name": "News", "origins": "https://news.example", "feeds": "y", "markup": "markdown"}
    response = submit(admin_client, path, data)
    assert response.status_code == 303
    page = admin_client.get(response.headers["Location"])
    assert ("success", "Saved site news; re-rendered 1 comment.") in flashes(page)
    site = site_row(app, "news")
    assert site is not None and site.settings["markup"] == "markdown"
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        assert comment is not None and comment.body_html == "<p><em>hello</em></p>"
    form = html(admin_client.get(path)).find("form", id="site-form")
    assert "selected" in form.find("option", value="markdown").attrs

    # Saving it unchanged renders nothing again.
    response = submit(admin_client, path, {**data, "name": "The News"})
    page = admin_client.get(response.headers["Location"])
    assert ("success", "Saved site news.") in flashes(page)


def test_edit_site_with_an_unknown_markup_changes_nothing(
    app: Flask, admin_client: FlaskClient
) -> None:
    path = f"{PANEL}/sites/{site_id(app, 'news')}"
    form = {"name": "Renamed", "origins": "https://news.example", "markup": "html"}
    response = assert_refused_unchanged(app, admin_client, path, form, status=422)
    assert field_error(response, "markup") == "Not a valid choice."


# --- moderators ----------------------------------------------------------------------------


def test_moderators_page_lists_moderators(app: Flask, admin_client: FlaskClient) -> None:
    add_moderator(app, "blogger@example.com", sites=("blog",))
    add_moderator(app, "gone@example.com", active=False)
    response = admin_client.get(f"{PANEL}/moderators")
    rows = {row[0]: row[1:3] for row in table_rows(response)}
    assert rows == {
        ADMIN: ["all sites", "admin"],
        "blogger@example.com": ["blog", "moderator"],
        "gone@example.com": ["all sites", "moderator (inactive)"],
    }
    form = html(response).find("form", id="moderator-form")
    options = [option.attrs["value"] for option in form.find("select", name="sites").iter()]
    assert options == ["blog", "news"]


def test_create_moderator_of_some_sites(
    app: Flask, admin_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "a brand new password"
    response = submit(
        admin_client,
        f"{PANEL}/moderators",
        {"email": "New@Example.com", "password": password, "sites": ["blog"]},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PANEL}/moderators"
    listing = admin_client.get(f"{PANEL}/moderators")
    assert ("success", "Added moderator new@example.com.") in flashes(listing)
    assert password not in listing.get_data(as_text=True)
    moderator, sites = moderator_row(app, "new@example.com")
    assert sites == ["blog"]
    assert (moderator.is_active, moderator.is_admin, moderator.all_sites) == (True, False, False)
    assert moderator.password_hash is not None
    assert moderator.password_hash.startswith("scrypt:")
    assert password not in caplog.text
    assert password.encode() not in database_bytes(app)
    # The new moderator logs in with that password and is limited to the blog.
    client = app.test_client()
    assert log_in(client, "new@example.com", password).status_code == 303
    assert client.get(f"{PANEL}/sites").status_code == 403


def test_create_administrator_of_every_site(app: Flask, admin_client: FlaskClient) -> None:
    response = submit(
        admin_client,
        f"{PANEL}/moderators",
        {
            "email": "boss@example.com",
            "password": "another password",
            "admin": "y",
            "all_sites": "y",
        },
    )
    assert response.status_code == 303
    moderator, sites = moderator_row(app, "boss@example.com")
    assert sites == []
    assert (moderator.is_admin, moderator.all_sites) == (True, True)


def test_duplicate_moderator_is_refused(app: Flask, admin_client: FlaskClient) -> None:
    response = assert_refused_unchanged(
        app,
        admin_client,
        f"{PANEL}/moderators",
        {"email": ADMIN.upper(), "password": "a long password"},
        status=422,
    )
    assert "already exists" in field_error(response, "email")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"password": "short"}, "password"),
        ({"password": ""}, "password"),
        ({"sites": ["nope"]}, "sites"),
    ],
)
def test_create_moderator_with_bad_fields_is_refused(
    app: Flask, admin_client: FlaskClient, data: dict[str, str], field: str
) -> None:
    form = {"email": "new@example.com", "password": "a long password", **data}
    response = assert_refused_unchanged(app, admin_client, f"{PANEL}/moderators", form, status=422)
    assert field_error(response, field)
    assert "a long password" not in response.get_data(as_text=True)


def _form_state(form: Element) -> tuple[bool, bool, bool, list[str]]:
    return (
        "checked" in form.find("input", name="active").attrs,
        "checked" in form.find("input", name="admin").attrs,
        "checked" in form.find("input", name="all_sites").attrs,
        [
            option.attrs["value"]
            for option in form.find("select", name="sites").find_all("option")
            if "selected" in option.attrs
        ],
    )


def test_edit_moderator(app: Flask, admin_client: FlaskClient) -> None:
    moderator_id = add_moderator(app, "mod@example.com", sites=("news",))
    their_client = logged_in(app, "mod@example.com")
    path = f"{PANEL}/moderators/{moderator_id}"
    form = html(admin_client.get(path)).find("form", id="moderator-form")
    assert _form_state(form) == (True, False, False, ["news"])

    response = submit(admin_client, path, {"admin": "y", "sites": ["blog", "news"]})
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PANEL}/moderators"
    assert ("success", "Saved moderator mod@example.com.") in flashes(
        admin_client.get(f"{PANEL}/moderators")
    )
    moderator, sites = moderator_row(app, "mod@example.com")
    assert (moderator.is_active, moderator.is_admin, moderator.all_sites) == (False, True, False)
    assert sites == ["blog", "news"]
    form = html(admin_client.get(path)).find("form", id="moderator-form")
    assert _form_state(form) == (False, True, False, ["blog", "news"])
    # Deactivation ends their session and their logins.
    assert their_client.get(f"{PANEL}/").status_code == 302
    assert log_in(app.test_client(), "mod@example.com").status_code == 401

    submit(admin_client, path, {"active": "y", "all_sites": "y", "sites": ["blog"]})
    moderator, sites = moderator_row(app, "mod@example.com")
    assert (moderator.is_active, moderator.is_admin, moderator.all_sites) == (True, False, True)
    assert sites == []
    form = html(admin_client.get(path)).find("form", id="moderator-form")
    assert _form_state(form) == (True, False, True, [])


def test_admin_cannot_deactivate_or_demote_themselves(
    app: Flask, admin_client: FlaskClient
) -> None:
    own = moderator_row(app, ADMIN)[0].id
    path = f"{PANEL}/moderators/{own}"
    for data in ({"admin": "y"}, {"active": "y"}, {}):
        response = assert_refused_unchanged(app, admin_client, path, data, status=422)
        assert "cannot deactivate yourself" in field_error(response, "active")
    assert admin_client.get(f"{PANEL}/sites").status_code == 200
    # Saving themselves as an active admin (e.g. changing sites) is fine.
    response = submit(admin_client, path, {"active": "y", "admin": "y", "sites": ["blog"]})
    assert response.status_code == 303


def test_unchecking_every_site_leaves_a_moderator_of_no_site(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    """No site chosen used to mean every site: taking a moderator's last site away gave
    them all of them."""
    moderator_id = add_moderator(app, "mod@example.com", sites=("news",))
    news = make_comment(site="news", status=PENDING)
    theirs = logged_in(app, "mod@example.com")
    assert theirs.get(f"{PANEL}/comments/{news}").status_code == 200
    path = f"{PANEL}/moderators/{moderator_id}"
    assert html(admin_client.get(path)).find_all("p", id="no-site") == []

    assert submit(admin_client, path, {"active": "y"}).status_code == 303
    moderator, sites = moderator_row(app, "mod@example.com")
    assert (moderator.all_sites, sites) == (False, [])
    assert theirs.get(f"{PANEL}/comments/{news}").status_code == 404
    assert "Moderates no site" in html(admin_client.get(path)).find("p", id="no-site").text
    listing = {row[0]: row[1] for row in table_rows(admin_client.get(f"{PANEL}/moderators"))}
    assert listing["mod@example.com"] == "no site"


def test_end_sessions_logs_a_moderator_out_of_every_browser(
    app: Flask, admin_client: FlaskClient
) -> None:
    moderator_id = add_moderator(app, "mod@example.com")
    browsers = [logged_in(app, "mod@example.com"), logged_in(app, "mod@example.com")]
    path = f"{PANEL}/moderators/{moderator_id}"
    form = html(admin_client.get(path)).find("form", id="end-sessions-form")
    assert form.attrs["method"] == "post"
    assert form.find("button").text == "End sessions"
    assert admin_client.post(form.attrs["action"]).status_code == 400  # no CSRF token
    assert browsers[0].get(f"{PANEL}/").status_code == 200

    token = form.find("input", name="csrf_token").attrs["value"]
    response = admin_client.post(form.attrs["action"], data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == path
    message = "Ended every panel session of mod@example.com."
    assert ("success", message) in flashes(admin_client.get(path))
    for browser in browsers:
        assert is_login_redirect(browser.get(f"{PANEL}/"))
    assert admin_client.get(f"{PANEL}/").status_code == 200
    # Ended sessions, not the account: they log in again.
    assert log_in(browsers[0], "mod@example.com").status_code == 303


# --- API tokens --------------------------------------------------------------------------------


def test_tokens_page_offers_active_moderators(app: Flask, admin_client: FlaskClient) -> None:
    add_moderator(app, "mod@example.com")
    add_moderator(app, "gone@example.com", active=False)
    form = html(admin_client.get(f"{PANEL}/tokens")).find("form", id="token-form")
    options = form.find("select", name="moderator").find_all("option")
    assert [option.attrs["value"] for option in options] == [ADMIN, "mod@example.com"]
    assert [o.attrs["value"] for o in options if "selected" in o.attrs] == [ADMIN]


def test_create_token_shows_the_secret_once(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    add_moderator(app, "mod@example.com", sites=("blog",))
    blog = make_comment(site="blog")
    make_comment(site="news")
    response = submit(
        admin_client, f"{PANEL}/tokens", {"name": "CI bot", "moderator": "mod@example.com"}
    )
    assert response.status_code == 201
    secret = html(response).find("code", cls="token-secret").text
    assert secret.startswith("csv_")
    assert len(secret) > 40
    # It works against the moderation API, as that moderator.
    listed = app.test_client().get(API_LIST, headers=bearer(secret))
    assert listed.status_code == 200
    assert [comment["id"] for comment in listed.get_json()["comments"]] == [blog]
    # Only its hash is stored.
    with app.app_context():
        token = db.session.scalar(sa.select(ApiToken).where(ApiToken.name == "CI bot"))
        assert token is not None
        assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert token.moderator.email == "mod@example.com"
    assert secret.encode() not in database_bytes(app)
    # It is never shown again.
    later = admin_client.get(f"{PANEL}/tokens")
    assert later.status_code == 200
    assert secret not in later.get_data(as_text=True)
    assert html(later).find_all("code", cls="token-secret") == []
    assert table_rows(later)[0][:2] == ["CI bot", "mod@example.com"]


def test_create_token_for_an_unknown_moderator_is_refused(
    app: Flask, admin_client: FlaskClient
) -> None:
    response = assert_refused_unchanged(
        app,
        admin_client,
        f"{PANEL}/tokens",
        {"name": "CI", "moderator": "nobody@example.com"},
        status=422,
    )
    assert html(response).find("span", cls="field-error").text == (
        "There is no moderator with this email."
    )
    assert html(response).find_all("code", cls="token-secret") == []
    data = {"name": "", "moderator": ADMIN}
    assert_refused_unchanged(app, admin_client, f"{PANEL}/tokens", data, status=422)


def _new_token(admin_client: FlaskClient, email: str, name: str) -> str:
    created = submit(admin_client, f"{PANEL}/tokens", {"name": name, "moderator": email})
    assert created.status_code == 201, created.status_code
    return html(created).find("code", cls="token-secret").text


def test_deactivating_a_moderator_revokes_their_tokens_for_good(
    app: Flask, admin_client: FlaskClient
) -> None:
    """Reactivating a moderator used to bring back every token they ever had."""
    moderator_id = add_moderator(app, "mod@example.com")
    theirs = [_new_token(admin_client, "mod@example.com", name) for name in ("ci", "cron")]
    mine = _new_token(admin_client, ADMIN, "admin's")
    api = app.test_client()
    for secret in (*theirs, mine):
        assert api.get(API_EVENTS, headers=bearer(secret)).status_code == 200
    path = f"{PANEL}/moderators/{moderator_id}"
    note = html(admin_client.get(path)).find("p", id="deactivate-note").text
    assert "Deactivating also ends their panel sessions and revokes their 2 API tokens," in note

    assert submit(admin_client, path, {"all_sites": "y"}).status_code == 303
    message = "Saved moderator mod@example.com; revoked their 2 API tokens."
    assert ("success", message) in flashes(admin_client.get(f"{PANEL}/moderators"))
    assert html(admin_client.get(path)).find_all("p", id="deactivate-note") == []
    submit(admin_client, path, {"active": "y", "all_sites": "y"})
    assert moderator_row(app, "mod@example.com")[0].is_active
    for secret in theirs:
        assert api.get(API_EVENTS, headers=bearer(secret)).status_code == 401
    assert api.get(API_EVENTS, headers=bearer(mine)).status_code == 200
    with app.app_context():
        revoked = db.session.scalars(
            sa.select(ApiToken.revoked_at).where(ApiToken.moderator_id == moderator_id)
        ).all()
    assert len(revoked) == 2 and None not in revoked


def test_create_token_for_an_inactive_moderator_is_refused(
    app: Flask, admin_client: FlaskClient
) -> None:
    add_moderator(app, "gone@example.com", active=False)
    response = assert_refused_unchanged(
        app,
        admin_client,
        f"{PANEL}/tokens",
        {"name": "CI", "moderator": "gone@example.com"},
        status=422,
    )
    error = html(response).find("span", cls="field-error").text
    assert error == "gone@example.com is inactive: reactivate them before creating a token"
    assert html(response).find_all("code", cls="token-secret") == []


def test_revoke_token(app: Flask, admin_client: FlaskClient) -> None:
    created = submit(admin_client, f"{PANEL}/tokens", {"name": "CI bot", "moderator": ADMIN})
    secret = html(created).find("code", cls="token-secret").text
    api = app.test_client()
    assert api.get(API_LIST, headers=bearer(secret)).status_code == 200

    page = html(admin_client.get(f"{PANEL}/tokens"))
    revoke = page.find("table").find("form")
    assert revoke.attrs["method"] == "post"
    response = admin_client.post(
        revoke.attrs["action"],
        data={"csrf_token": revoke.find("input", name="csrf_token").attrs["value"]},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PANEL}/tokens"
    listing = admin_client.get(f"{PANEL}/tokens")
    assert ("success", "Revoked token 'CI bot'.") in flashes(listing)
    assert table_rows(listing)[0][-1] == "revoked"
    assert html(listing).find("table").find_all("form") == []
    assert api.get(API_LIST, headers=bearer(secret)).status_code == 401
    with app.app_context():
        assert db.session.scalar(sa.select(ApiToken.revoked_at)) is not None


def test_admin_forms_never_echo_a_password(
    app: Flask, admin_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = submit(admin_client, f"{PANEL}/moderators", {"email": "bad", "password": PASSWORD})
    assert response.status_code == 422
    assert PASSWORD not in response.get_data(as_text=True)
    assert PASSWORD not in caplog.text
