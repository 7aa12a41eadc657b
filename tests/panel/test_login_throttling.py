"""Throttling of panel logins: growing delays per email and browser or address, a limit per
client address, a limit per email for unknown browsers only, and what is kept of attempts.

The apps here trust one proxy, so each client's address is the one it sends in
``X-Forwarded-For``, as behind a real proxy; the clock of the attempts is the test's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from commentsvc.extensions import db
from commentsvc.models import LoginAttempt, LoginAttemptOutcome, utcnow
from commentsvc.services import accounts
from tests.support.html import html
from tests.support.panel import ADMIN, DEVICE_COOKIE, PANEL, is_login_redirect, log_in, submit
from tests.support.state import database_bytes

MODERATOR = "mod@example.com"
WRONG = "not the password"


class Clock:
    """The time login attempts are made at, moved on by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(accounts, "utcnow", clock)
    return clock


@pytest.fixture
def throttled_app(make_panel_app: Callable[..., Flask]) -> Callable[..., Flask]:
    """An app with rate limits on, behind one trusted proxy."""
    return lambda **overrides: make_panel_app(
        **{"RATELIMIT_ENABLED": True, "TRUSTED_PROXIES": 1, **overrides}
    )


def browser(app: Flask, address: str) -> FlaskClient:
    """A new browser (no cookies yet) whose requests come from ``address``."""
    client = app.test_client()
    client.environ_base["HTTP_X_FORWARDED_FOR"] = address
    return client


def move(client: FlaskClient, address: str) -> FlaskClient:
    client.environ_base["HTTP_X_FORWARDED_FOR"] = address
    return client


def refusal(response: TestResponse) -> str:
    assert response.status_code == 429, response.status_code
    return html(response).find("p", cls="error").text


def attempts(app: Flask) -> list[LoginAttempt]:
    with app.app_context():
        return list(db.session.scalars(sa.select(LoginAttempt).order_by(LoginAttempt.id)))


@pytest.fixture
def password_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The hashes each password check of a login was made against, in order."""
    checked: list[str] = []
    real = accounts.verify_password

    def counting(password_hash: str | None, password: str) -> bool:
        checked.append(password_hash or "")
        return real(password_hash, password)

    monkeypatch.setattr(accounts, "verify_password", counting)
    yield checked


# --- nobody is locked out by others -----------------------------------------------------------


def test_failures_from_elsewhere_never_refuse_the_right_password(
    throttled_app: Callable[..., Flask], make_moderator: Callable[..., int], clock: Clock
) -> None:
    """The report's reproduction: 5 failures from one address used to lock the admin out."""
    make_moderator(ADMIN, admin=True)
    app = throttled_app()
    attacker = browser(app, "203.0.113.7")
    for _ in range(5):
        assert log_in(attacker, ADMIN, WRONG).status_code == 401
        clock.advance(60)
    admin = browser(app, "198.51.100.20")  # another address, no device cookie
    assert log_in(admin, ADMIN).status_code == 303
    assert admin.get(f"{PANEL}/").status_code == 200


def test_failures_of_one_email_from_one_address_make_it_wait_longer_and_longer(
    throttled_app: Callable[..., Flask], make_moderator: Callable[..., int], clock: Clock
) -> None:
    make_moderator(MODERATOR)
    app = throttled_app()
    client = browser(app, "198.51.100.7")
    for _ in range(accounts.FREE_FAILURES):
        assert log_in(client, MODERATOR, WRONG).status_code == 401
    # Then even the right password waits; a refused attempt counts, and its Retry-After is
    # the wait it has made (it doubles with each attempt, refused or failed).
    refused = log_in(client, MODERATOR)
    assert refusal(refused) == "Too many failed logins. Try again in 2 seconds."
    assert refused.headers["Retry-After"] == "2"
    assert is_login_redirect(client.get(f"{PANEL}/"))
    clock.advance(1)
    assert log_in(client, MODERATOR).headers["Retry-After"] == "4"
    clock.advance(4)
    assert log_in(client, MODERATOR, WRONG).status_code == 401
    assert log_in(client, MODERATOR).headers["Retry-After"] == "16"
    # Other addresses, and other emails from this address, do not wait for it.
    assert log_in(browser(app, "198.51.100.8"), MODERATOR).status_code == 303
    assert log_in(browser(app, "198.51.100.7"), "nobody@example.com", WRONG).status_code == 401
    # Waiting as told lets it in, and a success starts its count afresh.
    clock.advance(16)
    assert log_in(client, MODERATOR).status_code == 303
    again = browser(app, "198.51.100.7")
    for _ in range(accounts.FREE_FAILURES):
        assert log_in(again, MODERATOR, WRONG).status_code == 401


def test_the_wait_is_never_longer_than_the_window(
    throttled_app: Callable[..., Flask], make_moderator: Callable[..., int], clock: Clock
) -> None:
    make_moderator(MODERATOR)
    app = throttled_app(LOGIN_WINDOW_MINUTES=1)
    client = browser(app, "198.51.100.7")
    for _ in range(accounts.FREE_FAILURES):
        log_in(client, MODERATOR, WRONG)
    for _ in range(12):
        refused = log_in(client, MODERATOR)
    assert refused.headers["Retry-After"] == "60"
    assert "Try again in 60 seconds." in refusal(refused)
    clock.advance(60)
    assert log_in(client, MODERATOR).status_code == 303


@pytest.mark.parametrize(
    ("attacker", "same_client", "neighbour"),
    [
        ("192.0.2.1", "192.0.2.1", "192.0.2.200"),
        ("2001:db8:1:ffff::1", "2001:db8:1:ffff::2", "2001:db8:1::2"),
    ],
    ids=["ipv4-address", "ipv6-64"],
)
def test_the_client_limit_counts_one_ipv4_address_or_one_ipv6_64(
    throttled_app: Callable[..., Flask],
    make_moderator: Callable[..., int],
    clock: Clock,
    attacker: str,
    same_client: str,
    neighbour: str,
) -> None:
    make_moderator(MODERATOR)
    app = throttled_app(LOGIN_MAX_FAILURES_PER_CLIENT=5)
    guesser = browser(app, attacker)
    for number in range(5):
        assert log_in(guesser, f"guess{number}@example.com", WRONG).status_code == 401
    refused = log_in(browser(app, same_client), MODERATOR)
    assert refusal(refused).startswith("Too many failed logins from your network address.")
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    # A neighbour (same /24, or same /48 but another /64) is another client.
    assert log_in(browser(app, neighbour), MODERATOR).status_code == 303


def test_a_known_browser_logs_in_while_the_account_is_attacked_from_everywhere(
    throttled_app: Callable[..., Flask], make_moderator: Callable[..., int], clock: Clock
) -> None:
    make_moderator(MODERATOR)
    app = throttled_app(LOGIN_MAX_FAILURES_PER_ACCOUNT=3)
    own = browser(app, "198.51.100.20")
    assert log_in(own, MODERATOR).status_code == 303
    assert own.get_cookie(DEVICE_COOKIE) is not None
    assert submit(own, f"{PANEL}/logout").status_code == 303
    for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        assert log_in(browser(app, address), MODERATOR, WRONG).status_code == 401
    # Distributed guessing: browsers that never logged in to the account are refused...
    message = refusal(log_in(browser(app, "198.51.100.99"), MODERATOR))
    assert "a browser you have logged in with before can still log in" in message
    # ...but the moderator's own browser is not, even from an attacker's address.
    assert log_in(move(own, "203.0.113.1"), MODERATOR).status_code == 303
    assert own.get(f"{PANEL}/").status_code == 200


def test_a_device_cookie_vouches_only_for_its_own_moderator(
    throttled_app: Callable[..., Flask], make_moderator: Callable[..., int], clock: Clock
) -> None:
    make_moderator(MODERATOR)
    make_moderator("other@example.com")
    app = throttled_app(LOGIN_MAX_FAILURES_PER_ACCOUNT=3)
    own = browser(app, "198.51.100.20")
    assert log_in(own, MODERATOR).status_code == 303
    submit(own, f"{PANEL}/logout")
    for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        log_in(browser(app, address), "other@example.com", WRONG)
    assert log_in(own, "other@example.com").status_code == 429
    # A cookie that is not ours (forged, or signed with another key) vouches for nobody.
    forged = browser(app, "198.51.100.21")
    cookie = own.get_cookie(DEVICE_COOKIE)
    assert cookie is not None
    forged.set_cookie(DEVICE_COOKIE, cookie.value.replace(".", "!", 1))
    for address in ("203.0.113.4", "203.0.113.5", "203.0.113.6"):
        log_in(browser(app, address), MODERATOR, WRONG)
    assert log_in(forged, MODERATOR).status_code == 429
    assert log_in(own, MODERATOR).status_code == 303


# --- what is kept of the attempts ---------------------------------------------------------------


def test_refused_attempts_are_recorded_without_a_password_check(
    throttled_app: Callable[..., Flask],
    make_moderator: Callable[..., int],
    clock: Clock,
    password_checks: list[str],
) -> None:
    make_moderator(MODERATOR)
    app = throttled_app()
    client = browser(app, "198.51.100.7")
    for _ in range(accounts.FREE_FAILURES):
        log_in(client, MODERATOR, WRONG)
    assert len(password_checks) == accounts.FREE_FAILURES
    assert log_in(client, MODERATOR).status_code == 429
    assert log_in(client, MODERATOR).status_code == 429
    assert len(password_checks) == accounts.FREE_FAILURES  # no scrypt for a refused attempt
    outcomes = [attempt.outcome for attempt in attempts(app)]
    assert outcomes == [LoginAttemptOutcome.FAILED] * 3 + [LoginAttemptOutcome.THROTTLED] * 2
    clock.advance(3600)
    assert log_in(client, MODERATOR).status_code == 303
    assert attempts(app)[-1].outcome == LoginAttemptOutcome.SUCCEEDED


def test_attempts_older_than_the_window_are_purged(
    throttled_app: Callable[..., Flask], make_moderator: Callable[..., int], clock: Clock
) -> None:
    make_moderator(MODERATOR)
    app = throttled_app(LOGIN_WINDOW_MINUTES=10)
    for address in ("198.51.100.1", "198.51.100.2"):
        log_in(browser(app, address), MODERATOR, WRONG)
    clock.advance(5 * 60)
    log_in(browser(app, "198.51.100.3"), "someone@example.com", WRONG)
    assert len(attempts(app)) == 3
    clock.advance(5 * 60 + 1)
    log_in(browser(app, "198.51.100.4"), MODERATOR, WRONG)
    assert [attempt.created_at for attempt in attempts(app)] == [
        clock.now - timedelta(seconds=5 * 60 + 1),
        clock.now,
    ]


def test_attempts_keep_no_clear_text(
    throttled_app: Callable[..., Flask], make_moderator: Callable[..., int], clock: Clock
) -> None:
    make_moderator(MODERATOR)
    app = throttled_app()
    typed = " Typed.Secret@Example.com"
    log_in(browser(app, "198.51.100.77"), typed, "hunter2-password")
    log_in(browser(app, "2001:db8:77::1"), typed.strip().lower(), "hunter2-password")
    assert log_in(browser(app, "198.51.100.78"), MODERATOR).status_code == 303
    rows = attempts(app)
    assert len(rows) == 3
    stored = repr([(row.account, row.client, row.device) for row in rows]).lower()
    for clear in ("typed", "secret", "example", "mod@", "198.51.100", "2001:db8", "hunter2"):
        assert clear not in stored, clear
    assert b"typed.secret" not in database_bytes(app).lower()
    assert b"hunter2" not in database_bytes(app)
    # One email however it is typed; each address its own client.
    assert rows[0].account == rows[1].account != rows[2].account
    assert len({row.client for row in rows}) == 3
    assert [row.device for row in rows] == [None, None, None]


def test_nothing_is_recorded_when_rate_limits_are_off(
    app: Flask, client: FlaskClient, make_moderator: Callable[..., int]
) -> None:
    assert app.config["RATELIMIT_ENABLED"] is False
    make_moderator(MODERATOR)
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_CLIENT"] + 2):
        assert log_in(client, MODERATOR, WRONG).status_code == 401
    assert log_in(client, MODERATOR).status_code == 303
    assert attempts(app) == []


# --- every attempt does the same work ---------------------------------------------------------


@pytest.mark.parametrize("limits", [False, True], ids=["limits-off", "limits-on"])
def test_every_login_checks_one_password_whoever_it_names(
    throttled_app: Callable[..., Flask],
    make_moderator: Callable[..., int],
    password_checks: list[str],
    limits: bool,
) -> None:
    """A deactivated account used to answer 20 times faster: its password was not checked."""
    make_moderator(MODERATOR)
    make_moderator("gone@example.com", active=False)
    app = throttled_app(RATELIMIT_ENABLED=limits)
    tries = {
        "unknown": ("nobody@example.com", WRONG, 401),
        "inactive, right password": ("gone@example.com", None, 401),
        "inactive, wrong password": ("gone@example.com", WRONG, 401),
        "active, wrong password": (MODERATOR, WRONG, 401),
        "active, right password": (MODERATOR, None, 303),
    }
    for number, (reason, (email, password, status)) in enumerate(tries.items()):
        client = browser(app, f"198.51.100.{number + 1}")
        before = len(password_checks)
        args = (client, email) if password is None else (client, email, password)
        assert log_in(*args).status_code == status, reason
        assert len(password_checks) == before + 1, reason
        assert password_checks[-1].startswith("scrypt:"), reason
