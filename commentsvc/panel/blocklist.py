"""The blocklist page (DESIGN §7): the entries a moderator may see, adding and removing them.

A moderator sees the entries for every site and those of their own sites; only moderators of
every site add or remove every-site entries. The rules are the service's
(:mod:`commentsvc.services.blocklist`), the same the moderation API and the CLI follow.
"""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from commentsvc.models import BlocklistEntry, Site
from commentsvc.panel.blueprint import bp
from commentsvc.panel.forms import BlocklistForm
from commentsvc.panel.helpers import Page, current_moderator, form_page, visible_sites
from commentsvc.services import blocklist as blocklist_service
from commentsvc.services.errors import Forbidden

#: The site select's value for "every site".
EVERY_SITE = ""


def _site_choices(sites: list[Site], scope: set[int] | None) -> list[tuple[str, str]]:
    """Where a moderator may add entries: "every site" first (for those who may), then the
    sites they moderate."""
    choices = [(site.slug, f"{site.name} ({site.slug})") for site in sites]
    if blocklist_service.can_manage(scope, None):
        choices.insert(0, (EVERY_SITE, "Every site"))
    return choices


def _where(entry: BlocklistEntry) -> str:
    return "every site" if entry.site_id is None or entry.site is None else entry.site.slug


@bp.route("/blocklist", methods=["GET", "POST"])
@login_required
def blocklist() -> Page:
    moderator = current_moderator()
    scope = moderator.site_scope()
    sites = visible_sites()
    form = BlocklistForm()
    form.site.choices = _site_choices(sites, scope)

    def save() -> str:
        site_id = next((site.id for site in sites if site.slug == form.site.data), None)
        if not blocklist_service.can_manage(scope, site_id):
            raise Forbidden.on("site", "Only a moderator of every site may block on every site.")
        entry, created = blocklist_service.add_entry(
            form.kind.data or "", form.value.data or "", site_id, moderator.email
        )
        said = f"{entry.kind.value} {entry.value} on {_where(entry)}"
        return f"Blocked {said}." if created else f"Already blocked: {said}."

    return form_page(
        form,
        save,
        "panel.blocklist",
        "panel/blocklist.html",
        "value",
        entries=blocklist_service.entries(scope),
        sites={site.id: site for site in sites},
        scope=scope,
        can_manage=blocklist_service.can_manage,
    )


@bp.post("/blocklist/<id:entry_id>/remove")
@login_required
def remove_blocklist_entry(entry_id: int) -> Response:
    scope = current_moderator().site_scope()
    # Out of sight: 404; an every-site entry for a moderator of some sites: 403.
    found = blocklist_service.find_entry(entry_id, scope)
    said = f"{found.kind.value} {found.value} on {_where(found)}"
    blocklist_service.remove_entry(entry_id, scope)
    flash(f"Removed {said} from the blocklist.", "success")
    return redirect(url_for("panel.blocklist"), code=303)
