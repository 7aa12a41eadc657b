"""Accounts: moderators, API tokens and panel logins (shared by the CLI and the panel)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import QueryableAttribute

from commentsvc.extensions import db, write_transaction
from commentsvc.models import ApiToken, LoginAttempt, Moderator, Site, utcnow
from commentsvc.security import hash_password, hash_token, new_token, verify_password
from commentsvc.services.errors import Invalid, NotFound, Throttled
from commentsvc.services.unique import insert_unique

MIN_PASSWORD_LENGTH = 8
MAX_EMAIL_LENGTH = Moderator.email.type.length
MAX_TOKEN_NAME_LENGTH = ApiToken.name.type.length


# --- moderators ----------------------------------------------------------------------


def create_moderator(
    email: str, password: str, *, admin: bool = False, sites: Sequence[Site] = ()
) -> Moderator:
    """Add a moderator of the given sites (every site when none are given)."""
    email = email.strip().lower()
    if "@" not in email or len(email) > MAX_EMAIL_LENGTH:
        raise Invalid.on("email", "not an email address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid.on(
            "password", f"the password must be at least {MIN_PASSWORD_LENGTH} characters"
        )
    # scrypt takes about 100 ms on purpose: not while holding the write lock (SQLite has one
    # writer at a time, and every submission would wait behind it).
    moderator = Moderator(
        email=email,
        password_hash=hash_password(password),
        is_admin=admin,
        all_sites=not sites,
        sites=list(sites),
    )
    insert_unique(moderator, Moderator.email == email, "email", f"moderator {email} already exists")
    return moderator


def update_moderator(
    moderator_id: int, *, active: bool, admin: bool, sites: Sequence[Site]
) -> Moderator:
    """Change a moderator's active flag, admin flag and sites (none: every site)."""
    with write_transaction():
        moderator = db.session.get(Moderator, moderator_id)
        if moderator is None:
            raise NotFound("there is no such moderator")
        if moderator.is_active and not active:
            moderator.session_version += 1
        moderator.is_active = active
        moderator.is_admin = admin
        moderator.all_sites = not sites
        moderator.sites = list(sites)
    return moderator


def all_moderators() -> Sequence[Moderator]:
    """Every moderator, by email."""
    return db.session.scalars(sa.select(Moderator).order_by(Moderator.email)).all()


def find_moderator(email: str) -> Moderator | None:
    """The moderator with this email (any case), or None."""
    return db.session.scalar(sa.select(Moderator).where(Moderator.email == email.strip().lower()))


# --- API tokens ----------------------------------------------------------------------


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``secret`` is shown once and never stored."""

    token: ApiToken
    secret: str


def create_token(moderator: Moderator, name: str) -> NewToken:
    """A new API token for a moderator; only its hash is stored."""
    name = name.strip() or "api"
    secret = new_token()
    with write_transaction():
        token = ApiToken(
            moderator_id=moderator.id,
            name=name[:MAX_TOKEN_NAME_LENGTH],
            token_hash=hash_token(secret),
        )
        db.session.add(token)
    return NewToken(token, secret)


def revoke_token(token_id: int, moderator: Moderator | None = None) -> ApiToken:
    """Revoke a token (only one of ``moderator``'s own when given)."""
    with write_transaction():
        token = db.session.get(ApiToken, token_id)
        if token is None or (moderator is not None and token.moderator_id != moderator.id):
            raise NotFound("there is no such token")
        if token.revoked_at is None:
            token.revoked_at = utcnow()
    return token


def tokens_of(moderator: Moderator | None) -> Sequence[ApiToken]:
    """Tokens of one moderator, or of everybody; newest first."""
    statement = sa.select(ApiToken).order_by(ApiToken.id.desc())
    if moderator is not None:
        statement = statement.where(ApiToken.moderator_id == moderator.id)
    return db.session.scalars(statement).all()


# --- panel logins --------------------------------------------------------------------


@cache
def _dummy_hash() -> str:
    """Checked when the email is unknown, so a login costs the same whether or not it exists."""
    return hash_password("not a real password")


def _failures_since(column: QueryableAttribute[str], value: str, since: datetime) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(LoginAttempt)
            .where(column == value, LoginAttempt.created_at >= since, ~LoginAttempt.succeeded)
        )
        or 0
    )


def _check_throttle(email: str, client: str) -> None:
    """Throttled when the account or the client failed too often in the window."""
    config = current_app.config
    since = utcnow() - timedelta(minutes=config["LOGIN_WINDOW_MINUTES"])
    if (
        _failures_since(LoginAttempt.email, email, since)
        >= config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
        or _failures_since(LoginAttempt.client, client, since)
        >= config["LOGIN_MAX_FAILURES_PER_CLIENT"]
    ):
        raise Throttled("too many failed logins; try again later")


def log_in(email: str, password: str, client: str) -> Moderator | None:
    """The active moderator with this email and password, or None; throttled per account
    and per client when rate limits are on. Every attempt is recorded."""
    email = email.strip().lower()[:MAX_EMAIL_LENGTH]
    if current_app.config["RATELIMIT_ENABLED"]:
        _check_throttle(email, client)
    moderator = find_moderator(email)
    if moderator is None:
        verify_password(_dummy_hash(), password)
        ok = False
    else:
        ok = moderator.is_active and verify_password(moderator.password_hash, password)
    with write_transaction():
        db.session.add(LoginAttempt(email=email, client=client, succeeded=ok))
        if ok and moderator is not None:
            moderator.last_login_at = utcnow()
    return moderator if ok else None


def end_sessions(moderator_id: int) -> None:
    """End every panel session of a moderator (they all carry the old session version)."""
    with write_transaction():
        db.session.execute(
            sa.update(Moderator)
            .where(Moderator.id == moderator_id)
            .values(session_version=Moderator.session_version + 1)
        )
