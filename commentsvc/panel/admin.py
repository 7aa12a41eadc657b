"""Administration pages: sites, moderators and API tokens (administrators only)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from commentsvc.extensions import db
from commentsvc.markup import Markup
from commentsvc.models import Moderator, Site
from commentsvc.panel.blueprint import bp
from commentsvc.panel.forms import (
    MODERATION_EXPLAINED,
    ModeratorForm,
    ModeratorUpdateForm,
    SiteForm,
    SiteSettingsForm,
    TokenForm,
)
from commentsvc.panel.helpers import Page, current_moderator, form_page
from commentsvc.services import accounts
from commentsvc.services import rerender as rerender_service
from commentsvc.services import sites as site_service
from commentsvc.services.errors import NotFound, ServiceError

View = TypeVar("View", bound=Callable[..., Any])


def admin_required(view: View) -> View:
    """Only administrators; everybody else gets 403."""

    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_moderator().is_admin:
            abort(403)
        return view(*args, **kwargs)

    return cast(View, wrapper)


def _origins(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


@bp.route("/sites", methods=["GET", "POST"])
@admin_required
def sites() -> Page:
    form = SiteForm()

    def save() -> str:
        slug = (form.slug.data or "").strip()
        site = site_service.create_site(slug, _origins(form.origins.data or ""), form.name.data)
        return f"Added site {site.slug}."

    every = site_service.all_sites()
    rules = {site.id: site_service.SiteRules.of(site.settings) for site in every}
    return form_page(
        form, save, "panel.sites", "panel/sites.html", "slug", sites=every, rules=rules
    )


@bp.route("/sites/<id:site_id>", methods=["GET", "POST"])
@admin_required
def site(site_id: int) -> Page:
    found = db.get_or_404(Site, site_id)
    rules = site_service.SiteRules.of(found.settings)
    markup = site_service.markup_of(found.settings)
    # Flask-WTF reads a POST from the request; the stored values only fill a GET's form
    # (and a setting the POST does not send).
    form = SiteSettingsForm(
        data={
            "slug": found.slug,
            "name": found.name,
            "origins": "\n".join(found.origins),
            "comments_open": found.comments_open,
            "moderation": rules.moderation,
            "max_links": rules.max_links,
            "min_fill_seconds": rules.min_fill_seconds,
            "feeds": site_service.feeds_on(found.settings),
            "markup": markup.value,
        }
    )

    def save() -> str:
        origins = _origins(form.origins.data or "")
        open_ = bool(form.comments_open.data)
        chosen = site_service.SiteRules(
            moderation=form.moderation.data or rules.moderation,
            max_links=rules.max_links if form.max_links.data is None else form.max_links.data,
            min_fill_seconds=rules.min_fill_seconds
            if form.min_fill_seconds.data is None
            else form.min_fill_seconds.data,
        )
        site_service.update_site(
            found.id,
            form.name.data or "",
            origins,
            open_,
            rules=chosen,
            feeds=bool(form.feeds.data),
        )
        if not site_service.set_markup(found.slug, Markup(form.markup.data or markup)):
            return f"Saved site {found.slug}."
        count = rerender_service.rerender_comments(found.slug)
        return f"Saved site {found.slug}; re-rendered {count} comment{'' if count == 1 else 's'}."

    return form_page(
        form,
        save,
        "panel.sites",
        "panel/site.html",
        "origins",
        site=found,
        explained=MODERATION_EXPLAINED,
    )


def _site_choices() -> list[tuple[str, str]]:
    return [(site.slug, f"{site.name} ({site.slug})") for site in site_service.all_sites()]


@bp.route("/moderators", methods=["GET", "POST"])
@admin_required
def moderators() -> Page:
    form = ModeratorForm()
    form.sites.choices = _site_choices()

    def save() -> str:
        created = accounts.create_moderator(
            form.email.data or "",
            form.password.data or "",
            admin=bool(form.admin.data),
            all_sites=bool(form.all_sites.data),
            sites=site_service.sites_by_slug(form.sites.data or []),
        )
        return f"Added moderator {created.email}."

    everyone = accounts.all_moderators()
    return form_page(
        form, save, "panel.moderators", "panel/moderators.html", "email", moderators=everyone
    )


@bp.route("/moderators/<id:moderator_id>", methods=["GET", "POST"])
@admin_required
def moderator_edit(moderator_id: int) -> Page:
    found = db.get_or_404(Moderator, moderator_id)
    form = ModeratorUpdateForm(
        data={
            "active": found.is_active,
            "admin": found.is_admin,
            "all_sites": found.all_sites,
            "sites": [site.slug for site in found.sites],
        }
    )
    form.sites.choices = _site_choices()

    def save() -> str:
        if found.id == current_moderator().id and not (form.active.data and form.admin.data):
            message = "You cannot deactivate yourself or drop your own admin role."
            raise ServiceError.on("active", message)
        update = accounts.update_moderator(
            found.id,
            active=bool(form.active.data),
            admin=bool(form.admin.data),
            all_sites=bool(form.all_sites.data),
            sites=site_service.sites_by_slug(form.sites.data or []),
        )
        revoked = update.revoked_tokens
        if revoked:
            return f"Saved moderator {found.email}; revoked their {_tokens(revoked)}."
        return f"Saved moderator {found.email}."

    return form_page(
        form,
        save,
        "panel.moderators",
        "panel/moderator.html",
        "active",
        moderator=found,
        active_tokens=accounts.active_token_count(found.id),
    )


def _tokens(count: int) -> str:
    return f"{count} API token{'' if count == 1 else 's'}"


@bp.post("/moderators/<id:moderator_id>/end-sessions")
@admin_required
def end_sessions(moderator_id: int) -> Response:
    found = db.get_or_404(Moderator, moderator_id)
    accounts.end_sessions(found.id)
    yours = " (yours too: log in again)" if found.id == current_moderator().id else ""
    flash(f"Ended every panel session of {found.email}{yours}.", "success")
    return redirect(url_for("panel.moderator_edit", moderator_id=found.id), code=303)


@bp.route("/tokens", methods=["GET", "POST"])
@admin_required
def tokens() -> str | tuple[str, int]:
    form = TokenForm()
    created = None
    if request.method == "GET":
        form.moderator.data = current_moderator().email
    if form.validate_on_submit():
        owner = accounts.find_moderator(form.moderator.data or "")
        if owner is None:
            form.moderator.errors = ["There is no moderator with this email."]
        else:
            try:
                created = accounts.create_token(owner, form.name.data or "")
            except ServiceError as error:
                form.moderator.errors = [error.message]
    status = 422 if form.errors else (201 if created else 200)
    return render_template(
        "panel/tokens.html",
        tokens=accounts.tokens_of(None),
        form=form,
        created=created,
        moderators=accounts.all_moderators(),
    ), status


@bp.post("/tokens/<id:token_id>/revoke")
@admin_required
def revoke_token(token_id: int) -> Response:
    try:
        token = accounts.revoke_token(token_id)
    except NotFound:
        abort(404)
    flash(f"Revoked token {token.name!r}.", "success")
    return redirect(url_for("panel.tokens"), code=303)
