"""Accounts: moderators, API tokens and panel logins (shared by the CLI and the panel)."""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from flask import current_app

from commentsvc.extensions import db, write_transaction
from commentsvc.models import (
    ApiToken,
    LoginAttempt,
    LoginAttemptOutcome,
    Moderator,
    NotifyMode,
    Site,
    utcnow,
)
from commentsvc.security import hash_password, hash_token, new_token, verify_password
from commentsvc.services.errors import Invalid, NotFound, Throttled
from commentsvc.services.throttling import client_hash, keyed_hash
from commentsvc.services.unique import insert_unique

MIN_PASSWORD_LENGTH = 8
MAX_EMAIL_LENGTH = Moderator.email.type.length
MAX_TOKEN_NAME_LENGTH = ApiToken.name.type.length


# --- moderators ----------------------------------------------------------------------


def create_moderator(
    email: str,
    password: str,
    *,
    admin: bool = False,
    sites: Sequence[Site] = (),
    all_sites: bool | None = None,
    notify: NotifyMode = NotifyMode.EACH,
) -> Moderator:
    """Add a moderator of every site (``all_sites``), or of the given sites; when
    ``all_sites`` is not given, of every site if no sites are given. ``notify``: which mails
    of new comments they get (DESIGN §8)."""
    email = email.strip().lower()
    if "@" not in email or len(email) > MAX_EMAIL_LENGTH:
        raise Invalid.on("email", "not an email address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid.on(
            "password", f"the password must be at least {MIN_PASSWORD_LENGTH} characters"
        )
    if all_sites is None:
        all_sites = not sites
    # scrypt takes about 100 ms on purpose: not while holding the write lock (SQLite has one
    # writer at a time, and every submission would wait behind it).
    moderator = Moderator(
        email=email,
        password_hash=hash_password(password),
        is_admin=admin,
        all_sites=all_sites,
        sites=[] if all_sites else list(sites),
        notify=notify,
    )
    insert_unique(moderator, Moderator.email == email, "email", f"moderator {email} already exists")
    return moderator


@dataclass(frozen=True)
class ModeratorUpdate:
    """A moderator as saved, and how many of their API tokens the change revoked."""

    moderator: Moderator
    revoked_tokens: int


def update_moderator(
    moderator_id: int, *, active: bool, admin: bool, all_sites: bool, sites: Sequence[Site]
) -> ModeratorUpdate:
    """Change a moderator's active flag, admin flag and sites: every site (``all_sites``),
    or only ``sites`` (none: no site).

    Deactivating ends their panel sessions and revokes their API tokens: reactivating them
    later brings back neither.
    """
    with write_transaction():
        moderator = db.session.get(Moderator, moderator_id)
        if moderator is None:
            raise NotFound("there is no such moderator")
        revoked = 0
        if moderator.is_active and not active:
            moderator.session_version += 1
            revoked = len(
                db.session.scalars(
                    sa.update(ApiToken)
                    .where(ApiToken.moderator_id == moderator.id, ApiToken.revoked_at.is_(None))
                    .values(revoked_at=utcnow())
                    .returning(ApiToken.id)
                ).all()
            )
        moderator.is_active = active
        moderator.is_admin = admin
        moderator.all_sites = all_sites
        moderator.sites = [] if all_sites else list(sites)
    return ModeratorUpdate(moderator, revoked)


def set_notify(moderator_id: int, notify: NotifyMode) -> Moderator:
    """Change which mails of new comments a moderator gets (each, digest, off).

    Turned off, none of the mails planned for them before is sent either (the senders and
    the digest job read the choice again).
    """
    with write_transaction():
        moderator = db.session.get(Moderator, moderator_id)
        if moderator is None:
            raise NotFound("there is no such moderator")
        moderator.notify = notify
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
    """A new API token for an active moderator; only its hash is stored."""
    name = name.strip() or "api"
    secret = new_token()
    with write_transaction():
        # Read under a row lock (PostgreSQL), so a deactivation running at the same time,
        # which revokes every token, cannot miss this one.
        active = db.session.scalar(
            sa.select(Moderator.is_active).where(Moderator.id == moderator.id).with_for_update()
        )
        if not active:
            raise Invalid.on(
                "moderator",
                f"{moderator.email} is inactive: reactivate them before creating a token",
            )
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


def active_token_count(moderator_id: int) -> int:
    """How many unrevoked API tokens a moderator has."""
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(ApiToken)
            .where(ApiToken.moderator_id == moderator_id, ApiToken.revoked_at.is_(None))
        )
        or 0
    )


def tokens_of(moderator: Moderator | None) -> Sequence[ApiToken]:
    """Tokens of one moderator, or of everybody; newest first."""
    statement = sa.select(ApiToken).order_by(ApiToken.id.desc())
    if moderator is not None:
        statement = statement.where(ApiToken.moderator_id == moderator.id)
    return db.session.scalars(statement).all()


# --- panel logins --------------------------------------------------------------------

#: Failures of one account and subject (a device, or a client) that cost no wait; each one
#: more doubles the wait before the next attempt (1 s, 2 s, 4 s, …, at most the window).
FREE_FAILURES = 3
#: PostgreSQL advisory lock classes (the two-key form, apart from the submissions' locks):
#: attempts of one account, then of one client, are counted and recorded one at a time.
_ACCOUNT_LOCK, _CLIENT_LOCK = 0x6C6F6701, 0x6C6F6702
_LOCK = sa.text("SELECT pg_advisory_xact_lock(:kind, :key)")
_NOT_SUCCEEDED = LoginAttempt.outcome != LoginAttemptOutcome.SUCCEEDED


@dataclass(frozen=True)
class Device:
    """A browser that logged in to a moderator's account before: what its device cookie
    holds (the panel signs it, so only the service can have written it)."""

    moderator_id: int
    device_id: str

    @classmethod
    def new(cls, moderator_id: int) -> Device:
        """A browser seen for the first time: a new random device id."""
        return cls(moderator_id, secrets.token_urlsafe(16))


@dataclass(frozen=True)
class LoggedIn:
    """A successful login: the moderator, and the device to remember the browser as."""

    moderator: Moderator
    device: Device


@dataclass(frozen=True)
class _Attempt:
    """What a login attempt is counted by: keyed hashes only, never the email or address."""

    account: str
    client: str
    #: The device's hash when the attempt is trusted (its device cookie names the account).
    device: str | None

    @property
    def trusted(self) -> bool:
        return self.device is not None

    def same_subject(self) -> sa.ColumnElement[bool]:
        """Attempts of this account from the same device, or (untrusted) the same client."""
        if self.device is not None:
            subject = LoginAttempt.device == self.device
        else:
            subject = sa.and_(LoginAttempt.client == self.client, LoginAttempt.device.is_(None))
        return sa.and_(LoginAttempt.account == self.account, subject)


@dataclass(frozen=True)
class _Wait:
    """A throttle's verdict: wait this many seconds (0: go ahead), and why."""

    seconds: int
    reason: str


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def _growing_delay(attempt: _Attempt, now: datetime, window: timedelta) -> _Wait:
    """Per account and subject: after :data:`FREE_FAILURES` failures (since its last
    success), the next attempt waits 2**(failures - FREE_FAILURES) seconds after the last."""
    recent = sa.and_(attempt.same_subject(), LoginAttempt.created_at >= now - window)
    last_success = db.session.scalar(
        sa.select(sa.func.max(LoginAttempt.id)).where(
            recent, LoginAttempt.outcome == LoginAttemptOutcome.SUCCEEDED
        )
    )
    failures, last = db.session.execute(
        sa.select(sa.func.count(), sa.func.max(LoginAttempt.created_at)).where(
            recent, _NOT_SUCCEEDED, LoginAttempt.id > (last_success or 0)
        )
    ).one()
    if failures < FREE_FAILURES or last is None:
        return _Wait(0, "")
    longest = int(window.total_seconds())
    exponent = failures - FREE_FAILURES
    delay = longest if exponent >= longest.bit_length() else min(2**exponent, longest)
    ready = last + timedelta(seconds=delay)
    if ready <= now:
        return _Wait(0, "")
    return _Wait(_seconds_until(ready, now), "Too many failed logins.")


def _over_limit(
    condition: sa.ColumnElement[bool], limit: int, now: datetime, window: timedelta, reason: str
) -> _Wait:
    """Over ``limit`` attempts matching ``condition`` in the window: wait until the oldest
    of the newest ``limit`` of them leaves it."""
    oldest_counted = db.session.scalar(
        sa.select(LoginAttempt.created_at)
        .where(condition, LoginAttempt.created_at >= now - window)
        .order_by(LoginAttempt.created_at.desc())
        .offset(limit - 1)
        .limit(1)
    )
    if oldest_counted is None:
        return _Wait(0, "")
    return _Wait(_seconds_until(oldest_counted + window, now), reason)


def _throttle(attempt: _Attempt, now: datetime) -> _Wait:
    """The longest wait any throttle asks of this attempt (0: none)."""
    config = current_app.config
    window = timedelta(minutes=config["LOGIN_WINDOW_MINUTES"])
    waits = [_growing_delay(attempt, now, window)]
    if not attempt.trusted:
        # A browser that logged in to the account before is exempt from these two: failures
        # of others (from elsewhere, or from its network) never lock its moderator out.
        untrusted = LoginAttempt.device.is_(None)
        waits.append(
            _over_limit(
                sa.and_(LoginAttempt.client == attempt.client, untrusted, _NOT_SUCCEEDED),
                config["LOGIN_MAX_FAILURES_PER_CLIENT"],
                now,
                window,
                "Too many failed logins from your network address.",
            )
        )
        waits.append(
            _over_limit(
                sa.and_(
                    LoginAttempt.account == attempt.account,
                    untrusted,
                    LoginAttempt.outcome == LoginAttemptOutcome.FAILED,
                ),
                config["LOGIN_MAX_FAILURES_PER_ACCOUNT"],
                now,
                window,
                "Too many failed logins to this account from browsers it was not used in "
                "before; a browser you have logged in with before can still log in.",
            )
        )
    return max(waits, key=lambda wait: wait.seconds)


def _lock(kind: int, value: str) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(_LOCK, {"kind": kind, "key": int(value[:7], 16)})


def _record_attempt(attempt: _Attempt, now: datetime) -> int:
    """Record the attempt as failed (a success is marked after the password check) and
    return its id, or record it as throttled and raise Throttled; attempts older than the
    window are purged meanwhile."""
    window = timedelta(minutes=current_app.config["LOGIN_WINDOW_MINUTES"])
    with write_transaction():
        # Attempts of one account, and of one client, are counted one at a time: parallel
        # guesses cannot all pass before any of them is recorded.
        _lock(_ACCOUNT_LOCK, attempt.account)
        _lock(_CLIENT_LOCK, attempt.client)
        db.session.execute(sa.delete(LoginAttempt).where(LoginAttempt.created_at < now - window))
        throttled = _throttle(attempt, now).seconds > 0
        row = LoginAttempt(
            account=attempt.account,
            client=attempt.client,
            device=attempt.device,
            outcome=LoginAttemptOutcome.THROTTLED if throttled else LoginAttemptOutcome.FAILED,
            created_at=now,
        )
        db.session.add(row)
        db.session.flush()
        # A refused attempt counts too: the wait it is told is the one it has now made.
        wait = _throttle(attempt, now) if throttled else None
    if wait is not None:
        raise Throttled(wait.reason, retry_after=wait.seconds)
    return row.id


@cache
def _dummy_hash() -> str:
    """Checked when the email is unknown, so a login costs the same whether or not it exists."""
    return hash_password("not a real password")


def log_in(
    email: str, password: str, address: str | None, device: Device | None = None
) -> LoggedIn | None:
    """The active moderator with this email and password, or None.

    ``address`` is the client's (after the trusted proxies), ``device`` what the browser's
    device cookie holds. When rate limits are on, every attempt is recorded (as keyed
    hashes) and throttled before the password is looked at: Throttled, with the seconds to
    wait, when it must wait.
    """
    email = email.strip().lower()[:MAX_EMAIL_LENGTH]
    moderator = find_moderator(email)
    if device is not None and (moderator is None or device.moderator_id != moderator.id):
        device = None  # a cookie of another account vouches for nothing here
    attempt_id = None
    if current_app.config["RATELIMIT_ENABLED"]:
        attempt = _Attempt(
            account=keyed_hash(f"account:{email}"),
            client=client_hash(address),
            device=None if device is None else keyed_hash(f"device:{device.device_id}"),
        )
        attempt_id = _record_attempt(attempt, utcnow())
    # Every attempt does the same work, whatever the email: the scrypt check (against a
    # dummy hash when there is no such moderator) comes before the active flag.
    stored = moderator.password_hash if moderator is not None else None
    matches = verify_password(stored or _dummy_hash(), password) and stored is not None
    if moderator is None or not (matches and moderator.is_active):
        return None
    with write_transaction():
        if attempt_id is not None:
            db.session.execute(
                sa.update(LoginAttempt)
                .where(LoginAttempt.id == attempt_id)
                .values(outcome=LoginAttemptOutcome.SUCCEEDED)
            )
        moderator.last_login_at = utcnow()
    return LoggedIn(moderator, device or Device.new(moderator.id))


def end_sessions(moderator_id: int) -> None:
    """End every panel session of a moderator (they all carry the old session version)."""
    with write_transaction():
        if db.session.get(Moderator, moderator_id) is None:
            raise NotFound("there is no such moderator")
        db.session.execute(
            sa.update(Moderator)
            .where(Moderator.id == moderator_id)
            .values(session_version=Moderator.session_version + 1)
        )
