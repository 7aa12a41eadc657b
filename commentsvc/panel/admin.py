"""Administration pages: sites, moderators and API tokens (administrators only)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from commentsvc.extensions import db
from commentsvc.models import Moderator, Site
from commentsvc.panel import bp
from commentsvc.panel.forms import ModeratorForm, ModeratorUpdateForm, SiteForm, TokenForm
from commentsvc.panel.views import moderator
from commentsvc.services import accounts

View = TypeVar("View", bound=Callable[..., Any])


def admin_required(view: View) -> View:
    """Only administrators; everybody else gets 403."""

    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not moderator().is_admin:
            abort(403)
        return view(*args, **kwargs)

    return cast(View, wrapper)


def _origins(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


@bp.route("/sites", methods=["GET", "POST"])
@admin_required
def sites() -> Response | str | tuple[str, int]:
    form = SiteForm()
    if form.validate_on_submit():
        try:
            site = accounts.create_site(
                (form.slug.data or "").strip(), _origins(form.origins.data or ""), form.name.data
            )
        except accounts.AccountError as error:
            form[error.field or "slug"].errors = [str(error)]
        else:
            flash(f"Added site {site.slug}.", "success")
            return redirect(url_for("panel.sites"), code=303)
    status = 422 if form.errors else 200
    return render_template("panel/sites.html", sites=accounts.all_sites(), form=form), status


@bp.route("/sites/<id:site_id>", methods=["GET", "POST"])
@admin_required
def site(site_id: int) -> Response | str | tuple[str, int]:
    found = db.session.get(Site, site_id)
    if found is None:
        abort(404)
    # Flask-WTF reads a POST from the request; the stored values only fill a GET's form.
    form = SiteForm(
        data={
            "slug": found.slug,
            "name": found.name,
            "origins": "\n".join(found.origins),
            "comments_open": found.comments_open,
        }
    )
    if form.validate_on_submit():
        try:
            accounts.update_site(
                found.id,
                form.name.data or "",
                _origins(form.origins.data or ""),
                bool(form.comments_open.data),
            )
        except accounts.AccountError as error:
            form[error.field or "origins"].errors = [str(error)]
        else:
            flash(f"Saved site {found.slug}.", "success")
            return redirect(url_for("panel.sites"), code=303)
    status = 422 if form.errors else 200
    return render_template("panel/site.html", site=found, form=form), status


def _site_choices() -> list[tuple[str, str]]:
    return [(site.slug, f"{site.name} ({site.slug})") for site in accounts.all_sites()]


@bp.route("/moderators", methods=["GET", "POST"])
@admin_required
def moderators() -> Response | str | tuple[str, int]:
    form = ModeratorForm()
    form.sites.choices = _site_choices()
    if form.validate_on_submit():
        try:
            created = accounts.create_moderator(
                form.email.data or "",
                form.password.data or "",
                admin=bool(form.admin.data),
                sites=accounts.sites_by_slug(form.sites.data or []),
            )
        except accounts.AccountError as error:
            form[error.field or "email"].errors = [str(error)]
        else:
            flash(f"Added moderator {created.email}.", "success")
            return redirect(url_for("panel.moderators"), code=303)
    status = 422 if form.errors else 200
    return render_template(
        "panel/moderators.html", moderators=accounts.all_moderators(), form=form
    ), status


@bp.route("/moderators/<id:moderator_id>", methods=["GET", "POST"])
@admin_required
def moderator_edit(moderator_id: int) -> Response | str | tuple[str, int]:
    found = db.session.get(Moderator, moderator_id)
    if found is None:
        abort(404)
    form = ModeratorUpdateForm(
        data={
            "active": found.is_active,
            "admin": found.is_admin,
            "sites": [] if found.all_sites else [site.slug for site in found.sites],
        }
    )
    form.sites.choices = _site_choices()
    if form.validate_on_submit():
        if found.id == moderator().id and not (form.active.data and form.admin.data):
            form.active.errors = ["You cannot deactivate yourself or drop your own admin role."]
        else:
            accounts.update_moderator(
                found.id,
                active=bool(form.active.data),
                admin=bool(form.admin.data),
                sites=accounts.sites_by_slug(form.sites.data or []),
            )
            flash(f"Saved moderator {found.email}.", "success")
            return redirect(url_for("panel.moderators"), code=303)
    status = 422 if form.errors else 200
    return render_template("panel/moderator.html", moderator=found, form=form), status


@bp.route("/tokens", methods=["GET", "POST"])
@admin_required
def tokens() -> str | tuple[str, int]:
    form = TokenForm()
    created = None
    if request.method == "GET":
        form.moderator.data = moderator().email
    if form.validate_on_submit():
        owner = accounts.find_moderator(form.moderator.data or "")
        if owner is None:
            form.moderator.errors = ["There is no moderator with this email."]
        else:
            created = accounts.create_token(owner, form.name.data or "")
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
    except accounts.AccountError:
        abort(404)
    flash(f"Revoked token {token.name!r}.", "success")
    return redirect(url_for("panel.tokens"), code=303)
