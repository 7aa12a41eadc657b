"""The ``commentsvc`` command: a Flask CLI group (``db``, ``sites``, ``moderators``,
``tokens``, ``blocklist``, ``webhooks``, ``personal-data``, …)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate.cli import db as db_group

from commentsvc import backup as backups
from commentsvc.extensions import db, init_migrate
from commentsvc.markup import Markup
from commentsvc.models import BLOCKLIST_KINDS, NotifyMode
from commentsvc.services import accounts
from commentsvc.services import blocklist as block_service
from commentsvc.services import personal_data as personal_data_service
from commentsvc.services import rerender as rerender_service
from commentsvc.services import sites as site_service
from commentsvc.services import webhooks as webhook_service
from commentsvc.services.errors import ServiceError


def _create_app() -> Flask:
    from commentsvc import create_app_or_exit

    app = create_app_or_exit()
    init_migrate(app)
    return app


class _Commands(FlaskGroup):
    """Flask's command group, listing its commands without building the app: ``commentsvc
    --help`` works before the service is configured (every command is registered here)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(click.Group.list_commands(self, ctx))


# Not Flask's .env/.flaskenv loading: the service's settings come from the environment and
# its own env file (config.environment), never from a .env that happens to be nearby.
@click.group(cls=_Commands, create_app=_create_app, add_version_option=False, load_dotenv=False)
def main() -> None:
    """Manage commentsvc: database, sites, moderators and API tokens.

    Settings come from COMMENTSVC_* variables and the env file (COMMENTSVC_ENV_FILE, or
    commentsvc.env in the instance folder, where `make run` keeps the demo's).
    """


sites = click.Group("sites", help="Sites that embed the comments.")
moderators = click.Group("moderators", help="People who moderate comments.")
#: What ``--notify`` chooses (DESIGN §8), for ``moderators add`` and ``moderators set``.
_NOTIFY_HELP = (
    "Mails of new comments awaiting them: each (one per comment, past "
    "COMMENTSVC_NOTIFY_MAX_PER_HOUR an hour folded into a digest), digest (one mail per "
    "COMMENTSVC_NOTIFY_DIGEST_MINUTES at most) or off."
)
tokens = click.Group("tokens", help="API tokens for the moderation API.")
blocklist = click.Group("blocklist", help="Authors, domains, addresses and words stored as spam.")
webhooks = click.Group("webhooks", help="Signed calls to your own URLs when comments change.")
personal_data = click.Group(
    "personal-data", help="What is stored about one commenter's address: export, erase."
)


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
    try:
        site = site_service.create_site(slug, origins, name)
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"added site {site.slug} ({', '.join(site.origins)})")


@sites.command("list")
@with_appcontext
def sites_list() -> None:
    """List the sites: slug, name, origins, markup, moderation rules, feeds."""
    for site in site_service.all_sites():
        markup = _markup(site_service.markup_of(site.settings))
        settings = f"{_rules(site.settings)} {_feeds(site_service.feeds_on(site.settings))}"
        click.echo(f"{site.slug}\t{site.name}\t{' '.join(site.origins)}\t{markup}\t{settings}")


def _rules(settings: dict[str, object]) -> str:
    rules = site_service.SiteRules.of(settings)
    return (
        f"moderation={rules.moderation} max_links={rules.max_links} "
        f"min_fill_seconds={rules.min_fill_seconds}"
    )


def _feeds(on: bool) -> str:
    return f"feeds={'on' if on else 'off'}"


def _markup(markup: str) -> str:
    return f"markup={markup}"


def _rerendered(slug: str) -> str:
    """Render the site's stored comments again in its markup; what was done, in words."""
    count = rerender_service.rerender_comments(slug)
    return f"re-rendered {count} comment{'' if count == 1 else 's'}"


@sites.command("set")
@click.argument("slug")
@click.option(
    "--moderation",
    type=click.Choice(site_service.MODERATION_MODES),
    help="all: every new comment waits for a moderator; first: comments of authors with an "
    "approved comment on the site are approved at once.",
)
@click.option(
    "--max-links",
    type=click.IntRange(0, site_service.MAX_LINKS_LIMIT),
    help="A comment with more links than this waits for a moderator.",
)
@click.option(
    "--min-fill-seconds",
    type=click.IntRange(0, site_service.MAX_FILL_SECONDS),
    help="A comment sent from the widget sooner than this after the form opened waits for a "
    "moderator.",
)
@click.option(
    "--feeds/--no-feeds",
    default=None,
    help="Publish the site's Atom feeds of approved comments (the default), or not.",
)
@click.option(
    "--markup",
    type=click.Choice(site_service.MARKUPS),
    help="How comments are written: text (the default: links made clickable) or markdown "
    "(emphasis, code, quotes, lists, links). Stored comments are rendered again.",
)
@click.option(
    "--add-origin",
    "added",
    multiple=True,
    help="Allow another origin, scheme://host[:port]. Repeatable.",
)
@click.option(
    "--remove-origin", "removed", multiple=True, help="No longer allow an origin. Repeatable."
)
@with_appcontext
def sites_set(
    slug: str,
    moderation: str | None,
    max_links: int | None,
    min_fill_seconds: int | None,
    feeds: bool | None,
    markup: str | None,
    added: tuple[str, ...],
    removed: tuple[str, ...],
) -> None:
    """Change a site's origins, moderation rules, feeds and markup; what is not given stays
    as it is. A markup given renders the site's stored comments again; giving it again
    finishes a re-render that was cut short."""
    changes = {
        name: value
        for name, value in (
            ("moderation", moderation),
            ("max_links", max_links),
            ("min_fill_seconds", min_fill_seconds),
        )
        if value is not None
    }
    try:
        if added or removed:
            origins = site_service.change_origins(slug, added, removed)
            click.echo(f"site {slug}: origins {' '.join(origins)}")
        if feeds is not None:
            click.echo(f"site {slug}: {_feeds(site_service.set_feeds(slug, feeds))}")
        if markup is not None:
            site_service.set_markup(slug, Markup(markup))
            click.echo(f"site {slug}: {_markup(markup)}; {_rerendered(slug)}")
        if changes or not (added or removed or feeds is not None or markup is not None):
            rules = site_service.set_rules(slug, **changes)
            click.echo(f"site {slug}: {_rules(rules.as_settings())}")
    except ServiceError as error:
        raise click.ClickException(str(error)) from None


@sites.command("rerender")
@click.argument("slug")
@with_appcontext
def sites_rerender(slug: str) -> None:
    """Render the stored comments of the site SLUG again in its markup, storing those whose
    HTML changed; running it again changes nothing."""
    site = site_service.get_site(slug)
    if site is None:
        raise click.ClickException(f"there is no site {slug!r}")
    try:
        click.echo(f"site {slug}: {_markup(site.markup)}; {_rerendered(slug)}")
    except ServiceError as error:
        raise click.ClickException(str(error)) from None


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
@click.option(
    "--notify",
    type=click.Choice([mode.value for mode in NotifyMode]),
    default=NotifyMode.EACH.value,
    show_default=True,
    help=_NOTIFY_HELP,
)
@with_appcontext
def moderators_add(
    email: str, password_stdin: bool, admin: bool, site_slugs: tuple[str, ...], notify: str
) -> None:
    """Add a moderator."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        moderator = accounts.create_moderator(
            email,
            password,
            admin=admin,
            sites=site_service.sites_by_slug(site_slugs),
            notify=NotifyMode(notify),
        )
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    scope = ", ".join(site.slug for site in moderator.sites) or "all sites"
    click.echo(
        f"added moderator {moderator.email} ({scope}{', admin' if admin else ''}) "
        f"notify={moderator.notify.value}"
    )


@moderators.command("set")
@click.argument("email")
@click.option("--notify", type=click.Choice([mode.value for mode in NotifyMode]), help=_NOTIFY_HELP)
@with_appcontext
def moderators_set(email: str, notify: str | None) -> None:
    """Change a moderator's settings; what is not given stays as it is (nothing given:
    print them)."""
    moderator = accounts.find_moderator(email)
    if moderator is None:
        raise click.ClickException(f"there is no moderator {email}")
    if notify is not None:
        moderator = accounts.set_notify(moderator.id, NotifyMode(notify))
    click.echo(f"moderator {moderator.email}: notify={moderator.notify.value}")


@moderators.command("list")
@with_appcontext
def moderators_list() -> None:
    """List the moderators: email, sites, notify mode, flags (admin, inactive)."""
    for moderator in accounts.all_moderators():
        slugs = ",".join(site.slug for site in moderator.sites) or "no site"
        scope = "all sites" if moderator.all_sites else slugs
        flags = " ".join(
            flag
            for flag, on in (("admin", moderator.is_admin), ("inactive", not moderator.is_active))
            if on
        )
        notify = f"notify={moderator.notify.value}"
        click.echo(f"{moderator.email}\t{scope}\t{notify}\t{flags}".rstrip())


@moderators.command("logout")
@click.argument("email")
@with_appcontext
def moderators_logout(email: str) -> None:
    """End every panel session of a moderator (their API tokens keep working)."""
    moderator = accounts.find_moderator(email)
    if moderator is None:
        raise click.ClickException(f"there is no moderator {email}")
    accounts.end_sessions(moderator.id)
    click.echo(f"ended every panel session of {moderator.email}")


@tokens.command("create")
@click.argument("email")
@click.option("--name", default="api", show_default=True, help="What the token is for.")
@with_appcontext
def tokens_create(email: str, name: str) -> None:
    """Create an API token; it is printed once, as the last word of the output."""
    moderator = accounts.find_moderator(email)
    if moderator is None:
        raise click.ClickException(f"there is no moderator {email}")
    try:
        created = accounts.create_token(moderator, name)
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"token {created.token.name!r} for {moderator.email} "
        f"(shown once, store it now): {created.secret}"
    )


@click.command("worker")
@click.option(
    "--check",
    is_flag=True,
    help="Do not deliver: print the queue and the workers' heartbeats; exit 1 unless a "
    "worker beat within COMMENTSVC_WORKER_STALE_SECONDS (a container health check).",
)
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@with_appcontext
def worker(check: bool, once: bool) -> None:
    """Deliver mails and webhooks from the outbox until stopped (SIGTERM: finish, exit)."""
    from commentsvc.delivery import Worker, describe_workers, drain

    if check:
        alive, lines = describe_workers()
        click.echo("\n".join(lines))
        sys.exit(0 if alive else 1)
    if once:
        drain(current_app._get_current_object())  # type: ignore[attr-defined]
        return
    Worker(current_app._get_current_object()).run()  # type: ignore[attr-defined]


@click.command("import")
@click.argument("source_format", metavar="FORMAT")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--site", "slug", required=True, help="The site the comments go to.")
@click.option(
    "--dry-run", is_flag=True, help="Read everything, say what would be done, write nothing."
)
@click.option(
    "--map-url",
    "maps",
    multiple=True,
    metavar="FROM=TO",
    help="Read page URLs starting with FROM as starting with TO (a moved site). Repeatable.",
)
@with_appcontext
def import_comments(
    source_format: str, path: str, slug: str, dry_run: bool, maps: tuple[str, ...]
) -> None:
    """Import the comments of another comment system's export FORMAT at PATH (DESIGN §9).

    FORMAT: wordpress, disqus, isso, remark42, commento or commentsvc (our export). Re-running adds
    nothing; nothing there is changed; a file that cannot be read changes nothing.
    """
    from tqdm import tqdm

    from commentsvc.imports.loader import UrlMap, import_records
    from commentsvc.imports.readers import FORMATS, reader
    from commentsvc.imports.records import UnreadableFile

    if source_format not in FORMATS:
        raise click.BadParameter(f"one of {', '.join(FORMATS)}", param_hint="FORMAT")
    try:
        url_maps = [UrlMap.parse(value) for value in maps]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--map-url") from None
    with tqdm(
        unit=" records", disable=not sys.stderr.isatty(), file=sys.stderr, leave=False
    ) as bar:
        try:
            summary = import_records(
                slug,
                source_format,
                reader(source_format)(path),
                dry_run=dry_run,
                maps=url_maps,
                progress=lambda _record: bar.update(),
            )
        except (UnreadableFile, ServiceError) as error:
            raise click.ClickException(str(error)) from None
    click.echo(("dry run: " if dry_run else "") + summary.line())


@click.command("export")
@click.option("--site", "slug", required=True, help="The site whose comments to export.")
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["jsonl", "wxr"]),
    default="jsonl",
    show_default=True,
    help="jsonl: lossless, read back by `commentsvc import commentsvc`. wxr: WordPress's "
    "WXR 1.2, which WordPress and Disqus import.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to this file (default: standard output).",
)
@with_appcontext
def export_comments(slug: str, export_format: str, output: str | None) -> None:
    """Export a site's pages and comments (every status, with emails: keep it safe)."""
    from contextlib import closing

    from commentsvc.imports.export import export_jsonl
    from commentsvc.imports.wxr import export_wxr

    if export_format == "wxr":
        chunks = export_wxr(slug)
    else:
        chunks = (line.encode("utf-8") for line in export_jsonl(slug))
    # Closed here, in the app context, even when writing fails (a closed pipe, a full disk):
    # closing ends the export's read transaction.
    with closing(chunks):
        try:
            first = next(chunks)
        except ServiceError as error:
            raise click.ClickException(str(error)) from None
        with click.open_file(output or "-", "wb", atomic=bool(output)) as target:
            target.write(first)
            for chunk in chunks:
                target.write(chunk)


@click.command("retention")
@click.option(
    "--dry-run", is_flag=True, help="Say what would be deleted and cleared; change nothing."
)
@with_appcontext
def retention(dry_run: bool) -> None:
    """Apply the retention settings now, as the worker does daily: delete spam and rejected
    comments past COMMENTSVC_RETENTION_SPAM_DAYS and COMMENTSVC_RETENTION_REJECTED_DAYS, clear
    client facts past COMMENTSVC_RETENTION_CLIENT_FACTS_DAYS (0 keeps)."""
    from commentsvc.services.retention import apply_retention

    click.echo(apply_retention(dry_run=dry_run).summary())


@tokens.command("check")
@with_appcontext
def tokens_check() -> None:
    """Say whose a token (read from standard input) is; exit status 1 when it is not a
    valid token of an active moderator (unknown, revoked, or its moderator deactivated)."""
    from commentsvc.services.tokens import authenticate_token

    secret = sys.stdin.readline().strip()
    holder = authenticate_token(secret) if secret else None
    moderator = holder.moderator() if holder is not None else None
    if moderator is None:
        raise click.ClickException("not a valid token")
    click.echo(f"a valid token of {moderator.email}")


def _site_id(slug: str | None) -> int | None:
    if slug is None:
        return None
    site = site_service.get_site(slug)
    if site is None:
        raise click.ClickException(f"there is no site {slug!r}")
    return site.id


@blocklist.command("add")
@click.argument("kind", type=click.Choice(BLOCKLIST_KINDS))
@click.argument("value")
@click.option("--site", "slug", help="Only on this site. Default: every site.")
@with_appcontext
def blocklist_add(kind: str, value: str, slug: str | None) -> None:
    """Store submissions that match as spam: KIND is email (an address or @domain), domain
    (of the email, website or a link), ip (an address or CIDR range) or word (a word or
    phrase in the body, name or website)."""
    try:
        entry, created = block_service.add_entry(kind, value, _site_id(slug), "cli")
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    where = f"on {slug}" if slug else "on every site"
    state = "added" if created else "already there:"
    click.echo(f"{state} {entry.id}\t{entry.kind.value}\t{entry.value}\t{where}")


@blocklist.command("list")
@click.option("--site", "slug", help="The entries that hold on this site.")
@with_appcontext
def blocklist_list(slug: str | None) -> None:
    """List the entries: id, kind, value, site (* for every site), who added it."""
    for entry in block_service.entries(None, _site_id(slug)):
        site = entry.site.slug if entry.site is not None else "*"
        click.echo(f"{entry.id}\t{entry.kind.value}\t{entry.value}\t{site}\t{entry.created_by}")


@blocklist.command("remove")
@click.argument("entry_id", type=click.IntRange(1))
@with_appcontext
def blocklist_remove(entry_id: int) -> None:
    """Remove the entry ENTRY_ID (see `blocklist list`)."""
    try:
        entry = block_service.remove_entry(entry_id, None)
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"removed {entry.id}\t{entry.kind.value}\t{entry.value}")


@webhooks.command("add")
@click.argument("site")
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    help=f"Only this event (repeatable): {', '.join(webhook_service.EVENT_TYPES)}. "
    "Default: every event.",
)
@with_appcontext
def webhooks_add(site: str, url: str, events: tuple[str, ...]) -> None:
    """Add a webhook to SITE that POSTs to URL; its signing secret is printed once, as the
    last word of the output."""
    try:
        webhook, secret = webhook_service.add_webhook(site, url, events, "cli")
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"added webhook {webhook.id} of {site}: {webhook.url} ({_events(webhook.events)}); "
        f"its signing secret (shown once, store it now): {secret}"
    )


def _events(events: list[str]) -> str:
    return ",".join(events) or "all"


@webhooks.command("list")
@click.option("--site", "slug", help="Only the webhooks of this site.")
@with_appcontext
def webhooks_list(slug: str | None) -> None:
    """List the webhooks: id, site, URL, events (or all), active, and the state and status
    code of the last delivery."""
    try:
        found = webhook_service.list_webhooks(slug)
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    last = webhook_service.last_deliveries(webhook.id for webhook in found)
    for webhook in found:
        delivery = last.get(webhook.id)
        if delivery is None:
            called = "never called"
        else:
            code = f" {delivery.last_code}" if delivery.last_code is not None else ""
            called = f"last {delivery.state.value}{code}"
        active = "active" if webhook.active else "inactive"
        fields = (str(webhook.id), webhook.site.slug, webhook.url, _events(webhook.events))
        click.echo("\t".join((*fields, active, called)))


@webhooks.command("remove")
@click.argument("webhook_id", type=click.IntRange(1))
@with_appcontext
def webhooks_remove(webhook_id: int) -> None:
    """Remove the webhook WEBHOOK_ID (see `webhooks list`) and its deliveries."""
    try:
        webhook = webhook_service.remove_webhook(webhook_id)
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"removed webhook {webhook.id}: {webhook.url}")


@webhooks.command("test")
@click.argument("webhook_id", type=click.IntRange(1))
@with_appcontext
def webhooks_test(webhook_id: int) -> None:
    """Queue a webhook.test event for the webhook WEBHOOK_ID; the worker sends it."""
    try:
        webhook = webhook_service.send_test(webhook_id)
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"queued a test event for webhook {webhook.id} ({webhook.url}); "
        "`commentsvc webhooks list` shows how it went"
    )


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@with_appcontext
def db_backup(path: Path, force: bool) -> None:
    """Write a consistent backup of the database to PATH while the service runs.

    SQLite: a copy made with SQLite's online backup API. PostgreSQL: a pg_dump archive
    (custom format; needs pg_dump of the server's major version).
    """
    try:
        result = backups.backup(current_app.config["DATABASE_URL"], path, overwrite=force)
    except backups.BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"backup written to {result.path} ({result.size} bytes)")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def db_restore(path: Path, yes: bool) -> None:
    """Replace everything in the database with the backup at PATH.

    Stop the service (or take it out of the load balancer) first. Run `commentsvc db
    upgrade` afterwards if the backup is from an older release.
    """
    if not yes:
        click.confirm(f"Replace every comment, site and account with {path}?", abort=True)
    db.engine.dispose()  # nothing of ours holds the database while it is replaced
    try:
        backups.restore(current_app.config["DATABASE_URL"], path)
    except backups.BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"restored from {path}")


@personal_data.command("export")
@click.argument("email")
@click.option("--site", "slug", help="Only on this site. Default: every site.")
@with_appcontext
def personal_data_export(email: str, slug: str | None) -> None:
    """Print every comment, reply subscription and mail of EMAIL as JSON."""
    try:
        document = personal_data_service.export(email, _site_id(slug))
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    click.echo(json.dumps(document, ensure_ascii=False, indent=2))


@personal_data.command("erase")
@click.argument("email")
@click.option(
    "--delete-comments",
    is_flag=True,
    help="Delete the comments of EMAIL (their replies stay). Default: keep them, shown as "
    "Anonymous, without email, website and client facts.",
)
@click.option("--site", "slug", help="Only on this site. Default: every site.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def personal_data_erase(email: str, delete_comments: bool, slug: str | None, yes: bool) -> None:
    """Erase the name, email, website and client facts of every comment of EMAIL (or the
    comments), end its reply subscriptions, and keep no trace of the address in mails and
    events still to be sent. Audit events stay, without personal fields."""
    site_id = _site_id(slug)
    if not yes:
        what = "Delete the comments" if delete_comments else "Erase the personal data"
        where = f"on {slug}" if slug else "on every site"
        click.confirm(f"{what} of {email} {where}?", abort=True)
    try:
        erased = personal_data_service.erase(
            email, delete_comments=delete_comments, site_id=site_id, actor="cli"
        )
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    click.echo(erased.summary())


# Flask-Migrate's `db` group (upgrade, downgrade, …) gains backup and restore.
db_group.add_command(db_backup)
db_group.add_command(db_restore)
COMMANDS = (
    db_group,
    sites,
    moderators,
    tokens,
    blocklist,
    webhooks,
    worker,
    import_comments,
    export_comments,
    retention,
    personal_data,
)
for _group in COMMANDS:
    main.add_command(_group)


def register_commands(app: Flask) -> None:
    """Add the management command groups to the CLI of an app built elsewhere (tests run
    them with ``app.test_cli_runner()``), with Flask-Migrate for ``db``. :func:`create_app`
    leaves both out: serving needs neither."""
    init_migrate(app)
    for group in COMMANDS:
        app.cli.add_command(group)
