"""Panel login and logout: session cookie, device cookie, throttled attempts, generic
failure message, and how long a session lasts."""

from __future__ import annotations

import math
import time
from datetime import timedelta

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from commentsvc.config import cookie_name
from commentsvc.extensions import db, login_manager
from commentsvc.models import Moderator
from commentsvc.panel.blueprint import bp
from commentsvc.panel.forms import LoginForm
from commentsvc.panel.helpers import safe_next
from commentsvc.services import accounts
from commentsvc.services.errors import Throttled

BAD_LOGIN = "Invalid email or password."
SESSION_VERSION = "session_version"
#: When the session logged in (seconds since the epoch): it ends SESSION_MAX_HOURS later.
LOGGED_IN_AT = "logged_in_at"

#: The device cookie (OWASP's "device cookies"): a browser that logged in to an account
#: before is told apart from everybody else, so others' failed logins never lock it out.
DEVICE_COOKIE = "commentsvc_device"
DEVICE_COOKIE_SALT = "commentsvc.panel.device"
DEVICE_COOKIE_MAX_AGE = timedelta(days=365)


@login_manager.user_loader
def load_moderator(moderator_id: str) -> Moderator | None:
    if not moderator_id.isdigit():
        return None
    moderator = db.session.get(Moderator, int(moderator_id))
    if moderator is None or not moderator.is_active:
        return None
    if session.get(SESSION_VERSION) != moderator.session_version:
        return None  # logged out since (here or elsewhere): this cookie is void
    logged_in_at = session.get(LOGGED_IN_AT)
    longest = current_app.config["SESSION_MAX_HOURS"] * 3600
    if not isinstance(logged_in_at, int) or time.time() - logged_in_at > longest:
        return None  # however active it was, the session has lived its lifetime
    return moderator


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=DEVICE_COOKIE_SALT)


def _device_cookie_name() -> str:
    return cookie_name(DEVICE_COOKIE, current_app.config["SESSION_COOKIE_SECURE"])


def _device_from_cookie() -> accounts.Device | None:
    """The device the browser's cookie names, if the cookie is ours and not too old."""
    raw = request.cookies.get(_device_cookie_name())
    if not raw:
        return None
    try:
        value = _device_serializer().loads(raw, max_age=int(DEVICE_COOKIE_MAX_AGE.total_seconds()))
    except BadSignature:
        return None
    match value:
        case [int(moderator_id), str(device_id)]:
            return accounts.Device(moderator_id, device_id)
    return None


def _remember_device(response: Response, device: accounts.Device) -> None:
    response.set_cookie(
        _device_cookie_name(),
        _device_serializer().dumps([device.moderator_id, device.device_id]),
        max_age=DEVICE_COOKIE_MAX_AGE,
        path="/",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Strict",
    )


def _in_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'' if seconds == 1 else 's'}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    if current_user.is_authenticated:
        return redirect(url_for("panel.queue"))
    form = LoginForm()
    if not form.validate_on_submit():
        if request.method == "POST":
            return render_template("panel/login.html", form=form, error=BAD_LOGIN), 401
        return render_template("panel/login.html", form=form, error=None), 200
    try:
        logged_in = accounts.log_in(
            form.email.data or "",
            form.password.data or "",
            request.remote_addr,  # the client's, after COMMENTSVC_TRUSTED_PROXIES
            _device_from_cookie(),
        )
    except Throttled as error:
        wait = error.retry_after or 60
        message = f"{error.message} Try again in {_in_words(wait)}."
        page = render_template("panel/login.html", form=form, error=message)
        return page, 429, {"Retry-After": str(wait)}
    if logged_in is None:
        return render_template("panel/login.html", form=form, error=BAD_LOGIN), 401
    moderator = logged_in.moderator
    next_url = safe_next(request.args.get("next"))
    session.clear()
    login_user(moderator)
    session[SESSION_VERSION] = moderator.session_version
    session[LOGGED_IN_AT] = int(time.time())
    session.permanent = True
    current_app.logger.info("panel login: moderator %s", moderator.id)
    response = redirect(next_url or url_for("panel.queue"), code=303)
    _remember_device(response, logged_in.device)
    return response


@bp.post("/logout")
def logout() -> Response:
    if current_user.is_authenticated:
        accounts.end_sessions(current_user.id)
    logout_user()
    session.clear()
    flash("You have been logged out.", "success")
    return redirect(url_for("panel.login"), code=303)
