"""A moderator's own settings (any logged-in moderator): which mails of new comments they
get (DESIGN §8)."""

from __future__ import annotations

from flask import current_app
from flask_login import login_required

from commentsvc.mail import mail_enabled
from commentsvc.models import NotifyMode
from commentsvc.panel.blueprint import bp
from commentsvc.panel.forms import MySettingsForm
from commentsvc.panel.helpers import Page, current_moderator, form_page
from commentsvc.services import accounts


def notify_explained() -> dict[str, str]:
    """What each choice of ``notify`` does, with this service's cap and interval."""
    config = current_app.config
    cap = int(config["NOTIFY_MAX_PER_HOUR"])
    minutes = int(config["NOTIFY_DIGEST_MINUTES"])
    every = "an hour" if minutes == 60 else f"every {minutes} minutes"
    return {
        NotifyMode.EACH: f"A mail for every new comment that awaits you. Past {cap} in an "
        "hour, the rest come together in one digest.",
        NotifyMode.DIGEST: f"One mail listing the new comments, at most one {every} (sent "
        "that long after the first comment it lists).",
        NotifyMode.OFF: "No mail: you see new comments in the queue.",
    }


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def my_settings() -> Page:
    moderator = current_moderator()
    form = MySettingsForm(data={"notify": moderator.notify.value})

    def save() -> str:
        saved = accounts.set_notify(moderator.id, NotifyMode(form.notify.data))
        return f"Saved: notifications {saved.notify.value}."

    return form_page(
        form,
        save,
        "panel.my_settings",
        "panel/my_settings.html",
        "notify",
        explained=notify_explained(),
        mail_on=mail_enabled(),
        link_hours=int(current_app.config["MAIL_LINK_HOURS"]),
    )
