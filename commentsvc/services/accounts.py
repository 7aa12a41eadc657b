"""Accounts: sites, moderators, API tokens and panel logins (shared by the CLI and the panel)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import QueryableAttribute

from commentsvc.extensions import db, write_transaction
from commentsvc.models import ApiToken, LoginAttempt, Moderator, Site, utcnow
from commentsvc.security import (
    hash_password,
    hash_token,
    new_token,
    normalize_origin,
    verify_password,
)
from commentsvc.services import comments

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
# Checked when the email is unknown, so a login costs the same whether or not it exists.
_DUMMY_HASH: list[str] = []


class AccountError(ValueError):
    """A request about accounts that cannot be carried out; the message says why and
    ``field`` names the input at fault, when one is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class LoginThrottled(AccountError):
    """Too many failed logins for this account or from this client, for now."""


# --- sites ---------------------------------------------------------------------------


def normalize_origins(origins: Iterable[str]) -> list[str]:
    """Each origin as ``scheme://host[:port]``; AccountError naming the first bad one."""
    normalized: list[str] = []
    for origin in origins:
        value = normalize_origin(origin)
        if value is None:
            raise AccountError(f"{origin!r} is not an origin (scheme://host[:port])", "origins")
        if value not in normalized:
            normalized.append(value)
    return normalized


def create_site(slug: str, origins: Iterable[str], name: str | None = None) -> Site:
    """Add a site that may embed comments from the given origins."""
    if not SLUG.match(slug):
        raise AccountError("the slug must be 1-64 of a-z, 0-9, '-' and '_'", "slug")
    normalized = normalize_origins(origins)
    if not normalized:
        raise AccountError("a site needs at least one origin", "origins")
    exists = sa.select(Site.id).where(Site.slug == slug)
    taken = AccountError(f"site {slug!r} already exists", "slug")
    try:
        with write_transaction():
            if db.session.scalar(exists) is not None:
                raise taken
            site = Site(slug=slug, name=name or slug, origins=normalized, settings={})
            db.session.add(site)
    except IntegrityError:
        # Added by somebody else since we looked (PostgreSQL runs such writes side by side).
        if db.session.scalar(exists) is not None:
            raise taken from None
        raise
    return site


def update_site(site_id: int, name: str, origins: Iterable[str], comments_open: bool) -> Site:
    """Change a site's name, origins and whether it accepts comments."""
    normalized = normalize_origins(origins)
    if not normalized:
        raise AccountError("a site needs at least one origin", "origins")
    with write_transaction():
        site = db.session.get(Site, site_id)
        if site is None:
            raise AccountError("there is no such site")
        site.name = name.strip() or site.slug
        site.origins = normalized
        site.settings = {**site.settings, "comments_open": comments_open}
    comments.forget_sites()
    return site


def all_sites() -> Sequence[Site]:
    return db.session.scalars(sa.select(Site).order_by(Site.slug)).all()


def sites_by_slug(slugs: Iterable[str]) -> list[Site]:
    """The sites with these slugs; AccountError naming the first unknown one."""
    sites = []
    for slug in slugs:
        site = db.session.scalar(sa.select(Site).where(Site.slug == slug))
        if site is None:
            raise AccountError(f"there is no site {slug!r}", "sites")
        sites.append(site)
    return sites


# --- moderators ----------------------------------------------------------------------


def create_moderator(
    email: str, password: str, *, admin: bool = False, sites: Sequence[Site] = ()
) -> Moderator:
    """Add a moderator of the given sites (every site when none are given)."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise AccountError("not an email address", "email")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"the password must be at least {MIN_PASSWORD_LENGTH} characters", "password"
        )
    exists = sa.select(Moderator.id).where(Moderator.email == email)
    taken = AccountError(f"moderator {email} already exists", "email")
    # scrypt takes about 100 ms on purpose: not while holding the write lock (SQLite has one
    # writer at a time, and every submission would wait behind it).
    password_hash = hash_password(password)
    try:
        with write_transaction():
            if db.session.scalar(exists) is not None:
                raise taken
            moderator = Moderator(
                email=email,
                password_hash=password_hash,
                is_admin=admin,
                all_sites=not sites,
                sites=list(sites),
            )
            db.session.add(moderator)
    except IntegrityError:
        # Added by somebody else since we looked (PostgreSQL runs such writes side by side).
        if db.session.scalar(exists) is not None:
            raise taken from None
        raise
    return moderator


def update_moderator(
    moderator_id: int, *, active: bool, admin: bool, sites: Sequence[Site]
) -> Moderator:
    """Change a moderator's active flag, admin flag and sites (none: every site)."""
    with write_transaction():
        moderator = db.session.get(Moderator, moderator_id)
        if moderator is None:
            raise AccountError("there is no such moderator")
        if moderator.is_active and not active:
            moderator.session_version += 1
        moderator.is_active = active
        moderator.is_admin = admin
        moderator.all_sites = not sites
        moderator.sites = list(sites)
    return moderator


def all_moderators() -> Sequence[Moderator]:
    return db.session.scalars(sa.select(Moderator).order_by(Moderator.email)).all()


def find_moderator(email: str) -> Moderator | None:
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
        token = ApiToken(moderator_id=moderator.id, name=name[:100], token_hash=hash_token(secret))
        db.session.add(token)
    return NewToken(token, secret)


def revoke_token(token_id: int, moderator: Moderator | None = None) -> ApiToken:
    """Revoke a token (only one of ``moderator``'s own when given)."""
    with write_transaction():
        token = db.session.get(ApiToken, token_id)
        if token is None or (moderator is not None and token.moderator_id != moderator.id):
            raise AccountError("there is no such token")
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


def _failures_since(column: QueryableAttribute[str], value: str, since: datetime) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(LoginAttempt)
            .where(column == value, LoginAttempt.created_at >= since, ~LoginAttempt.succeeded)
        )
        or 0
    )


def log_in(email: str, password: str, client: str) -> Moderator | None:
    """The active moderator with this email and password, or None; throttled per account
    and per client when rate limits are on. Every attempt is recorded."""
    email = email.strip().lower()[:254]
    config = current_app.config
    if config["RATELIMIT_ENABLED"]:
        since = utcnow() - timedelta(minutes=config["LOGIN_WINDOW_MINUTES"])
        if (
            _failures_since(LoginAttempt.email, email, since)
            >= config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
            or _failures_since(LoginAttempt.client, client, since)
            >= config["LOGIN_MAX_FAILURES_PER_CLIENT"]
        ):
            raise LoginThrottled("too many failed logins; try again later")
    moderator = find_moderator(email)
    if moderator is None:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hash_password("not a real password"))
        verify_password(_DUMMY_HASH[0], password)
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
