"""The ``commentsvc`` command line: sites, moderators, tokens."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from commentsvc.extensions import db
from commentsvc.models import ApiToken, Comment, Moderator, Site
from commentsvc.security import hash_token, verify_password
from tests.conftest import ORIGIN
from tests.support.panel import PANEL, add_moderator, is_login_redirect, logged_in


def test_sites_add_normalizes_origins_and_lists(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=[
            "sites",
            "add",
            "docs",
            "--origin",
            "HTTPS://Docs.Example:443/",
            "--origin",
            "http://localhost:8080",
            "--name",
            "Docs",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == "docs"))
        assert site is not None
        assert site.origins == ["https://docs.example", "http://localhost:8080"]
        assert site.name == "Docs"
    listed = runner.invoke(args=["sites", "list"])
    assert "docs\tDocs\thttps://docs.example http://localhost:8080" in listed.output


def test_sites_add_refuses_bad_input(runner: FlaskCliRunner) -> None:
    assert runner.invoke(args=["sites", "add", "news", "--origin", "https://n.example"]).exit_code
    assert runner.invoke(
        args=["sites", "add", "Bad Slug", "--origin", "https://x.example"]
    ).exit_code
    assert runner.invoke(args=["sites", "add", "x", "--origin", "javascript:alert(1)"]).exit_code
    assert runner.invoke(args=["sites", "add", "x", "--origin", "https://x.example/path"]).exit_code
    assert runner.invoke(args=["sites", "add", "x"]).exit_code


def test_moderators_add_with_password_stdin(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["moderators", "add", "Alice@Example.com", "--password-stdin", "--site", "blog"],
        input="s3cret-password\n",
    )
    assert result.exit_code == 0, result.output
    assert "s3cret-password" not in result.output
    with app.app_context():
        moderator = db.session.scalar(sa.select(Moderator))
        assert moderator is not None
        assert moderator.email == "alice@example.com"
        assert moderator.password_hash and moderator.password_hash.startswith("scrypt:")
        assert verify_password(moderator.password_hash, "s3cret-password")
        assert [site.slug for site in moderator.sites] == ["blog"]
        assert not moderator.all_sites
    again = runner.invoke(
        args=["moderators", "add", "alice@example.com", "--password-stdin"], input="another-pass\n"
    )
    assert again.exit_code != 0
    listed = runner.invoke(args=["moderators", "list"])
    assert "alice@example.com\tblog" in listed.output


def test_moderators_add_refuses_short_passwords(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["moderators", "add", "a@example.com", "--password-stdin"], input="short\n"
    )
    assert result.exit_code != 0


def test_tokens_create_prints_the_token_once_as_the_last_word(
    app: Flask, runner: FlaskCliRunner
) -> None:
    runner.invoke(
        args=["moderators", "add", "m@example.com", "--password-stdin"], input="password1\n"
    )
    result = runner.invoke(args=["tokens", "create", "m@example.com", "--name", "ci"])
    assert result.exit_code == 0, result.output
    token = result.output.split()[-1]
    assert token.startswith("csv_") and len(token) > 40
    with app.app_context():
        stored = db.session.scalar(sa.select(ApiToken))
        assert stored is not None
        assert stored.token_hash == hash_token(token)
        assert stored.name == "ci"
    client = app.test_client()
    response = client.get(
        "/api/v1/moderation/comments", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert runner.invoke(args=["tokens", "create", "nobody@example.com"]).exit_code != 0


def test_tokens_check_says_whose_a_token_is(app: Flask, runner: FlaskCliRunner) -> None:
    add_moderator(app, "carol@example.com")
    created = runner.invoke(args=["tokens", "create", "carol@example.com", "--name", "demo"])
    token = created.output.split()[-1]
    valid = runner.invoke(args=["tokens", "check"], input=token + "\n")
    assert valid.exit_code == 0 and valid.output == "a valid token of carol@example.com\n"
    for wrong in ("", "x" + token):
        refused = runner.invoke(args=["tokens", "check"], input=wrong)
        assert refused.exit_code == 1 and "not a valid token" in refused.output
    with app.app_context():
        db.session.execute(sa.update(ApiToken).values(revoked_at=sa.func.now()))
        db.session.commit()
    assert runner.invoke(args=["tokens", "check"], input=token).exit_code == 1


def test_sites_set_changes_only_the_rules_given(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["sites", "set", "news", "--moderation", "first"])
    assert result.exit_code == 0, result.output
    assert "moderation=first max_links=2 min_fill_seconds=3" in result.output
    result = runner.invoke(args=["sites", "set", "news", "--max-links", "0"])
    assert "moderation=first max_links=0 min_fill_seconds=3" in result.output
    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
        assert site is not None
        assert site.settings["moderation"] == "first" and site.settings["max_links"] == 0
    listed = runner.invoke(args=["sites", "list"]).output
    assert "moderation=first max_links=0 min_fill_seconds=3" in listed


def test_sites_set_refuses_bad_rules(runner: FlaskCliRunner) -> None:
    assert runner.invoke(args=["sites", "set", "news", "--moderation", "none"]).exit_code == 2
    assert runner.invoke(args=["sites", "set", "news", "--max-links", "-1"]).exit_code == 2
    assert runner.invoke(args=["sites", "set", "news", "--min-fill-seconds", "x"]).exit_code == 2
    missing = runner.invoke(args=["sites", "set", "nowhere", "--max-links", "1"])
    assert missing.exit_code == 1 and "nowhere" in missing.output


def test_sites_set_adds_and_removes_origins(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    page = "/api/v1/sites/news/comments?page=/a"
    other = "http://127.0.0.1:8303"
    refused = client.get(page, headers={"Origin": other})
    assert refused.headers.get("Access-Control-Allow-Origin") != other
    result = runner.invoke(
        args=["sites", "set", "news", "--add-origin", other + "/", "--add-origin", ORIGIN]
    )
    assert result.exit_code == 0, result.output
    assert result.output == f"site news: origins {ORIGIN} {other}\n"  # no rules changed
    answer = client.get(page, headers={"Origin": other})
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == other
    result = runner.invoke(args=["sites", "set", "news", "--remove-origin", other])
    assert result.output == f"site news: origins {ORIGIN}\n"
    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
        assert site is not None and site.origins == [ORIGIN]


def test_sites_set_refuses_bad_origins_and_keeps_one(runner: FlaskCliRunner) -> None:
    bad = runner.invoke(args=["sites", "set", "news", "--add-origin", "news.example"])
    assert bad.exit_code == 1 and "'news.example' is not an origin" in bad.output
    last = runner.invoke(args=["sites", "set", "news", "--remove-origin", ORIGIN])
    assert last.exit_code == 1 and "at least one origin" in last.output
    assert ORIGIN in runner.invoke(args=["sites", "list"]).output


def test_help_works_before_the_service_is_configured(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTSVC_")}
    env["COMMENTSVC_ENV_FILE"] = os.devnull  # production, no secret key
    script = Path(sys.executable).with_name("commentsvc")
    for args in (["--help"], ["sites", "--help"], ["db", "--help"]):
        result = subprocess.run(
            [str(script), *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert "Usage: commentsvc" in result.stdout
    listed = subprocess.run(
        [str(script), "--help"], env=env, capture_output=True, text=True, timeout=60
    ).stdout
    for group in ("db", "sites", "moderators", "tokens", "blocklist"):
        assert re.search(rf"^  {group} ", listed, re.M), group


def test_blocklist_add_list_remove(runner: FlaskCliRunner) -> None:
    added = runner.invoke(args=["blocklist", "add", "domain", "https://WWW.Spam.Example/x"])
    assert added.exit_code == 0, added.output
    assert "added 1\tdomain\tspam.example\ton every site" in added.output
    again = runner.invoke(args=["blocklist", "add", "domain", "spam.example"])
    assert "already there: 1" in again.output
    on_news = runner.invoke(args=["blocklist", "add", "ip", "203.0.113.9/24", "--site", "news"])
    assert "added 2\tip\t203.0.113.0/24\ton news" in on_news.output
    listed = runner.invoke(args=["blocklist", "list"]).output.splitlines()
    assert listed == ["2\tip\t203.0.113.0/24\tnews\tcli", "1\tdomain\tspam.example\t*\tcli"]
    on_blog = runner.invoke(args=["blocklist", "list", "--site", "blog"]).output.splitlines()
    assert on_blog == ["1\tdomain\tspam.example\t*\tcli"]
    assert runner.invoke(args=["blocklist", "remove", "2"]).exit_code == 0
    gone = runner.invoke(args=["blocklist", "remove", "2"])
    assert gone.exit_code == 1 and "no blocklist entry 2" in gone.output


def test_blocklist_refuses_bad_input(runner: FlaskCliRunner) -> None:
    assert runner.invoke(args=["blocklist", "add", "url", "x"]).exit_code == 2
    bad = runner.invoke(args=["blocklist", "add", "ip", "999.1.1.1"])
    assert bad.exit_code == 1 and "Not an IP address" in bad.output
    unknown = runner.invoke(args=["blocklist", "add", "word", "casino", "--site", "nowhere"])
    assert unknown.exit_code == 1 and "nowhere" in unknown.output


def test_moderators_logout_ends_every_panel_session(app: Flask, runner: FlaskCliRunner) -> None:
    add_moderator(app, "mod@example.com")
    browser = logged_in(app, "mod@example.com")
    result = runner.invoke(args=["moderators", "logout", "Mod@Example.com"])
    assert result.exit_code == 0, result.output
    assert result.output == "ended every panel session of mod@example.com\n"
    assert is_login_redirect(browser.get(f"{PANEL}/"))
    unknown = runner.invoke(args=["moderators", "logout", "nobody@example.com"])
    assert unknown.exit_code != 0
    assert "there is no moderator nobody@example.com" in unknown.output


def test_tokens_create_refuses_an_inactive_moderator(app: Flask, runner: FlaskCliRunner) -> None:
    add_moderator(app, "gone@example.com", active=False)
    result = runner.invoke(args=["tokens", "create", "gone@example.com"])
    assert result.exit_code != 0
    assert "gone@example.com is inactive: reactivate them before creating a token" in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_moderators_without_a_site_moderate_every_site_and_list_so(
    app: Flask, runner: FlaskCliRunner
) -> None:
    """The CLI keeps its documented default: no --site, every site."""
    result = runner.invoke(
        args=["moderators", "add", "all@example.com", "--password-stdin"], input="password1\n"
    )
    assert result.exit_code == 0, result.output
    assert "(all sites)" in result.output
    with app.app_context():
        moderator = db.session.scalar(sa.select(Moderator))
        assert moderator is not None
        assert moderator.all_sites
    assert "all@example.com\tall sites" in runner.invoke(args=["moderators", "list"]).output


def test_sites_set_markup_renders_the_stored_comments_again(
    app: Flask, runner: FlaskCliRunner, make_comment: Callable[..., int]
) -> None:
    comment_id = make_comment(body="*hello*")
    make_comment(body="plain", page="/other")
    assert "\tmarkup=text\tmoderation=all " in runner.invoke(args=["sites", "list"]).output

    result = runner.invoke(args=["sites", "set", "news", "--markup", "markdown"])
    assert result.exit_code == 0, result.output
    assert result.output == "site news: markup=markdown; re-rendered 1 comment\n"
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        assert comment is not None and comment.body_html == "<p><em>hello</em></p>"
        site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
        assert site is not None and site.settings["markup"] == "markdown"
    listed = runner.invoke(args=["sites", "list"]).output
    assert re.search(r"^news\t.*\tmarkup=markdown\tmoderation=all .* feeds=on$", listed, re.M)
    assert re.search(r"^blog\t.*\tmarkup=text\t", listed, re.M)

    # Again, or explicitly: nothing left to do.
    again = runner.invoke(args=["sites", "set", "news", "--markup", "markdown"])
    assert again.output == "site news: markup=markdown; re-rendered 0 comments\n"
    explicit = runner.invoke(args=["sites", "rerender", "news"])
    assert explicit.exit_code == 0, explicit.output
    assert explicit.output == "site news: markup=markdown; re-rendered 0 comments\n"

    back = runner.invoke(args=["sites", "set", "news", "--markup", "text", "--max-links", "4"])
    assert back.output == (
        "site news: markup=text; re-rendered 1 comment\n"
        "site news: moderation=all max_links=4 min_fill_seconds=3\n"
    )


def test_sites_markup_refuses_bad_input(runner: FlaskCliRunner) -> None:
    assert runner.invoke(args=["sites", "set", "news", "--markup", "html"]).exit_code == 2
    missing = runner.invoke(args=["sites", "set", "nowhere", "--markup", "markdown"])
    assert missing.exit_code == 1 and "nowhere" in missing.output
    unknown = runner.invoke(args=["sites", "rerender", "nowhere"])
    assert unknown.exit_code == 1 and "there is no site 'nowhere'" in unknown.output
