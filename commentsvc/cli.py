"""The ``commentsvc`` command: a Flask CLI group (``db``, ``sites``, ``moderators``, ``tokens``)."""

from __future__ import annotations

import sys

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from commentsvc.extensions import db, write_transaction
from commentsvc.models import ApiToken, Moderator, Site
from commentsvc.security import hash_password, hash_token, new_token, normalize_origin

SLUG_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


def _create_app() -> Flask:
    from commentsvc import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """Manage commentsvc: database, sites, moderators and API tokens."""


sites = click.Group("sites", help="Sites that embed the comments.")
moderators = click.Group("moderators", help="People who moderate comments.")
tokens = click.Group("tokens", help="API tokens for the moderation API.")


@sites.command("add")
@click.argument("slug")
@click.option(
    "--origin",
    "origins",
    multiple=True,
    required=True,
    help="An origin allowed to embed and post, scheme://host[:port]. Repeatable.",
)
@click.option("--name", help="Display name (defaults to the slug).")
@with_appcontext
def sites_add(slug: str, origins: tuple[str, ...], name: str | None) -> None:
    """Add a site."""
    if not slug or not set(slug) <= SLUG_CHARS or len(slug) > 64:
        raise click.BadParameter("use 1-64 of a-z, 0-9, '-' and '_'", param_hint="SLUG")
    normalized = []
    for origin in origins:
        value = normalize_origin(origin)
        if value is None:
            raise click.BadParameter(
                f"{origin!r} is not scheme://host[:port]", param_hint="--origin"
            )
        normalized.append(value)
    if db.session.scalar(sa.select(Site.id).where(Site.slug == slug)) is not None:
        raise click.ClickException(f"site {slug!r} already exists")
    with write_transaction():
        db.session.add(Site(slug=slug, name=name or slug, origins=list(dict.fromkeys(normalized))))
    click.echo(f"added site {slug} ({', '.join(normalized)})")


@sites.command("list")
@with_appcontext
def sites_list() -> None:
    """List the sites."""
    for site in db.session.scalars(sa.select(Site).order_by(Site.slug)):
        click.echo(f"{site.slug}\t{site.name}\t{' '.join(site.origins)}")


@moderators.command("add")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--admin", is_flag=True, help="May manage sites, moderators and tokens.")
@click.option(
    "--site",
    "site_slugs",
    multiple=True,
    help="Limit to this site (repeatable). Default: every site.",
)
@with_appcontext
def moderators_add(
    email: str, password_stdin: bool, admin: bool, site_slugs: tuple[str, ...]
) -> None:
    """Add a moderator."""
    email = email.strip().lower()
    if "@" not in email:
        raise click.BadParameter("not an email address", param_hint="EMAIL")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("the password must be at least 8 characters")
    if db.session.scalar(sa.select(Moderator.id).where(Moderator.email == email)) is not None:
        raise click.ClickException(f"moderator {email} already exists")
    chosen = []
    for slug in site_slugs:
        site = db.session.scalar(sa.select(Site).where(Site.slug == slug))
        if site is None:
            raise click.ClickException(f"there is no site {slug!r}")
        chosen.append(site)
    with write_transaction():
        db.session.add(
            Moderator(
                email=email,
                password_hash=hash_password(password),
                is_admin=admin,
                all_sites=not chosen,
                sites=chosen,
            )
        )
    scope = ", ".join(site.slug for site in chosen) or "all sites"
    click.echo(f"added moderator {email} ({scope}{', admin' if admin else ''})")


@moderators.command("list")
@with_appcontext
def moderators_list() -> None:
    """List the moderators."""
    for moderator in db.session.scalars(sa.select(Moderator).order_by(Moderator.email)):
        scope = "all sites" if moderator.all_sites else ",".join(s.slug for s in moderator.sites)
        flags = " ".join(
            flag
            for flag, on in (("admin", moderator.is_admin), ("inactive", not moderator.is_active))
            if on
        )
        click.echo(f"{moderator.email}\t{scope}\t{flags}".rstrip())


@tokens.command("create")
@click.argument("email")
@click.option("--name", default="api", show_default=True, help="What the token is for.")
@with_appcontext
def tokens_create(email: str, name: str) -> None:
    """Create an API token; it is printed once, as the last word of the output."""
    moderator = db.session.scalar(
        sa.select(Moderator).where(Moderator.email == email.strip().lower())
    )
    if moderator is None:
        raise click.ClickException(f"there is no moderator {email}")
    token = new_token()
    with write_transaction():
        db.session.add(ApiToken(moderator_id=moderator.id, name=name, token_hash=hash_token(token)))
    click.echo(f"token {name!r} for {moderator.email} (shown once, store it now): {token}")


def register_commands(app: Flask) -> None:
    """Add the management command groups to the app's CLI."""
    app.cli.add_command(sites)
    app.cli.add_command(moderators)
    app.cli.add_command(tokens)
