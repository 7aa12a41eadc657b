"""Panel login and logout: session cookie, throttled attempts, generic failure message."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from commentsvc.extensions import db, login_manager
from commentsvc.models import Moderator
from commentsvc.panel.blueprint import bp
from commentsvc.panel.forms import LoginForm
from commentsvc.panel.helpers import safe_next
from commentsvc.security import anonymize_ip
from commentsvc.services import accounts
from commentsvc.services.errors import Throttled

BAD_LOGIN = "Invalid email or password."
SESSION_VERSION = "session_version"


@login_manager.user_loader
def load_moderator(moderator_id: str) -> Moderator | None:
    if not moderator_id.isdigit():
        return None
    moderator = db.session.get(Moderator, int(moderator_id))
    if moderator is None or not moderator.is_active:
        return None
    if session.get(SESSION_VERSION) != moderator.session_version:
        return None  # logged out since (here or elsewhere): this cookie is void
    return moderator


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect(url_for("panel.queue"))
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        client = anonymize_ip(request.remote_addr) or "unknown"
        try:
            moderator = accounts.log_in(form.email.data or "", form.password.data or "", client)
        except Throttled:
            moderator = None
            error = "Too many failed attempts. Wait a few minutes and try again."
            status = 429
        else:
            if moderator is not None:
                next_url = safe_next(request.args.get("next"))
                session.clear()
                login_user(moderator)
                session[SESSION_VERSION] = moderator.session_version
                session.permanent = True
                current_app.logger.info("panel login: moderator %s", moderator.id)
                return redirect(next_url or url_for("panel.queue"), code=303)
            error = BAD_LOGIN
            status = 401
    elif request.method == "POST":
        error = BAD_LOGIN
        status = 401
    return render_template("panel/login.html", form=form, error=error), status


@bp.post("/logout")
def logout() -> Response:
    if current_user.is_authenticated:
        accounts.end_sessions(current_user.id)
    logout_user()
    session.clear()
    flash("You have been logged out.", "success")
    return redirect(url_for("panel.login"), code=303)
