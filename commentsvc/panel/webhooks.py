"""A site's webhooks page (DESIGN §8; administrators only): the site's webhooks, adding one
(its signing secret shown that once), removing one, a test event, and the recent deliveries.

The rules are the service's (:mod:`commentsvc.services.webhooks`), the same the command line
follows; calls are made by the worker, never by these views.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from commentsvc.extensions import db
from commentsvc.models import Site, Webhook
from commentsvc.panel.admin import admin_required
from commentsvc.panel.blueprint import bp
from commentsvc.panel.forms import WebhookForm
from commentsvc.panel.helpers import Page, current_moderator
from commentsvc.services import webhooks as webhook_service
from commentsvc.services.errors import ServiceError


def _add(form: WebhookForm, site: Site) -> tuple[Webhook, str] | None:
    """Add the form's webhook to ``site``: it and its secret; None when refused (the form's
    fields then carry the errors)."""
    if not form.validate_on_submit():
        return None
    try:
        return webhook_service.add_webhook(
            site.slug, form.url.data or "", form.events.data or [], current_moderator().email
        )
    except ServiceError as error:
        fields = {name: messages for name, messages in error.errors.items() if name in form}
        for name, messages in (fields or {"url": [error.message]}).items():
            form[name].errors = list(messages)
        return None


@bp.route("/sites/<id:site_id>/webhooks", methods=["GET", "POST"])
@admin_required
def webhooks(site_id: int) -> Page:
    site = db.get_or_404(Site, site_id)
    form = WebhookForm()
    created = _add(form, site)
    # The secret is shown on this answer, never carried by a redirect (it would sit in the
    # session cookie); the form starts blank again for the next webhook.
    status = 201 if created else (422 if form.errors else 200)
    if created:
        form = WebhookForm(formdata=None)
    hooks = webhook_service.list_webhooks(site.slug)
    return render_template(
        "panel/webhooks.html",
        site=site,
        form=form,
        created=created,
        webhooks=hooks,
        deliveries=webhook_service.recent_deliveries(site.id),
        timeout=webhook_service.TIMEOUT,
    ), status


@bp.post("/sites/<id:site_id>/webhooks/<id:webhook_id>/remove")
@admin_required
def remove_webhook(site_id: int, webhook_id: int) -> Response:
    removed = webhook_service.remove_webhook(webhook_id, site_id)
    flash(f"Removed the webhook {removed.url}.", "success")
    return redirect(url_for("panel.webhooks", site_id=site_id), code=303)


@bp.post("/sites/<id:site_id>/webhooks/<id:webhook_id>/test")
@admin_required
def test_webhook(site_id: int, webhook_id: int) -> Response:
    webhook = webhook_service.send_test(webhook_id, site_id)
    flash(
        f"Queued a test event for {webhook.url}: the worker sends it shortly "
        "(see the recent deliveries).",
        "success",
    )
    return redirect(url_for("panel.webhooks", site_id=site_id), code=303)
