"""Configuration: defaults, then ``COMMENTSVC_*`` environment variables, then a test mapping.

Every setting the service reads is declared once in :data:`SETTINGS` with its type,
default and meaning. The README's configuration table is generated from (and tested
against) this list. Bad values fail fast at start-up with a one-line message.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

ENV_PREFIX = "COMMENTSVC_"


class ConfigError(RuntimeError):
    """A setting is missing or has a value the service cannot use."""


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _parse_int(raw: str) -> int:
    return int(raw.strip())


def _parse_str(raw: str) -> str:
    return raw


@dataclass(frozen=True)
class Setting:
    """One configuration value: its name (without prefix), type, default and meaning."""

    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = _parse_str
    minimum: int | None = None
    #: For lengths of stored text: the width of its database column.
    maximum: int | None = None

    @property
    def env_name(self) -> str:
        return ENV_PREFIX + self.name


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "ENV",
        "production",
        "`production` or `development`; development allows a "
        "generated secret key and plain-HTTP cookies.",
    ),
    Setting(
        "DATABASE_URL",
        None,
        "SQLAlchemy database URL. Default: SQLite file "
        "`commentsvc.db` in the instance folder. PostgreSQL: `postgresql+psycopg://…`.",
    ),
    Setting("SECRET_KEY", None, "Signs sessions. Required outside development."),
    Setting(
        "RATELIMIT_ENABLED",
        True,
        "`false` turns every rate limit off (load tests, benchmarks).",
        _parse_bool,
    ),
    Setting(
        "SESSION_COOKIE_SECURE",
        True,
        "Send the session cookie over HTTPS only; `false` only for plain-HTTP local use.",
        _parse_bool,
    ),
    Setting(
        "MAX_CONTENT_LENGTH", 65536, "Largest request body in bytes (413 above).", _parse_int, 1024
    ),
    Setting(
        "MAX_BODY_LENGTH", 5000, "Longest comment, in characters after trimming.", _parse_int, 1
    ),
    Setting("MAX_NAME_LENGTH", 100, "Longest author name (at most 200).", _parse_int, 1, 200),
    Setting("MAX_EMAIL_LENGTH", 254, "Longest author email (at most 320).", _parse_int, 6, 320),
    Setting(
        "MAX_URL_LENGTH",
        2000,
        "Longest author website or page URL (at most 2000).",
        _parse_int,
        10,
        2000,
    ),
    Setting("MAX_PAGE_KEY_LENGTH", 500, "Longest page key (at most 500).", _parse_int, 1, 500),
    Setting("MAX_PAGE_TITLE_LENGTH", 300, "Longest page title (at most 300).", _parse_int, 1, 300),
    Setting(
        "MAX_USER_AGENT_LENGTH",
        512,
        "User agent is truncated to this length (at most 512).",
        _parse_int,
        0,
        512,
    ),
    Setting(
        "EMAIL_CHECK_DELIVERABILITY",
        False,
        "Check the email domain in DNS (needs outbound DNS).",
        _parse_bool,
    ),
    Setting("PAGE_SIZE", 50, "Default page size of lists.", _parse_int, 1),
    Setting("MAX_PAGE_SIZE", 200, "Largest `limit` a list accepts.", _parse_int, 1),
    Setting("MAX_COUNT_PAGES", 100, "Most pages one counts request may ask for.", _parse_int, 1),
    Setting("MAX_BULK_IDS", 500, "Most ids one bulk moderation request may name.", _parse_int, 1),
    Setting("PANEL_PAGE_SIZE", 20, "Comments per page in the moderation panel.", _parse_int, 1),
    Setting(
        "SESSION_IDLE_MINUTES",
        60,
        "A panel session ends after this long without a request.",
        _parse_int,
        1,
    ),
    Setting(
        "LOGIN_WINDOW_MINUTES",
        15,
        "Window in which failed panel logins are counted.",
        _parse_int,
        1,
    ),
    Setting(
        "LOGIN_MAX_FAILURES_PER_ACCOUNT",
        5,
        "Failed logins to one account in the window before it is locked for the rest of it.",
        _parse_int,
        1,
    ),
    Setting(
        "LOGIN_MAX_FAILURES_PER_CLIENT",
        20,
        "Failed logins from one client address in the window before it is refused.",
        _parse_int,
        1,
    ),
    Setting(
        "TRUSTED_PROXIES",
        0,
        "Number of reverse proxies in front of the service "
        "whose `X-Forwarded-*` headers are trusted.",
        _parse_int,
        0,
    ),
    Setting(
        "SQLITE_BUSY_TIMEOUT_MS",
        5000,
        "How long a SQLite writer waits for the lock.",
        _parse_int,
        0,
    ),
    Setting(
        "SQLITE_SYNCHRONOUS",
        "NORMAL",
        "SQLite `synchronous` pragma: `NORMAL` "
        "(durable across process crashes) or `FULL` (also across power loss).",
    ),
    Setting(
        "DATABASE_TIMEOUT_SECONDS",
        5,
        "PostgreSQL: how long to wait for a connection (and for a free one in the pool) "
        "before answering 503.",
        _parse_int,
        1,
    ),
    Setting(
        "SITE_CACHE_SECONDS",
        10,
        "How long a worker keeps a site's origins and settings before reading them again "
        "(a change shows in other workers within this time); `0` reads them every request.",
        _parse_int,
        0,
    ),
    Setting(
        "THREAD_CACHE_MB",
        32,
        "Memory per worker for rendered thread pages, reused until the thread changes; "
        "`0` turns it off.",
        _parse_int,
        0,
    ),
    Setting("LOG_LEVEL", "INFO", "`DEBUG`, `INFO`, `WARNING` or `ERROR`."),
    Setting(
        "LOG_FORMAT",
        "json",
        "`json`: one JSON object per line (a line per request with its id, method, path, "
        "status and duration); `text` for reading by eye.",
    ),
    Setting(
        "METRICS_TOKEN",
        None,
        "When set, `/metrics` asks for `Authorization: Bearer <token>`; unset, it is open "
        "(keep it off the public internet at the proxy).",
    ),
    Setting(
        "MIGRATIONS_DIR",
        None,
        "Alembic migrations folder. Default: `migrations/` beside the package.",
    ),
)

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}

MIN_SECRET_KEY_LENGTH = 16
#: Values from examples and tutorials that must never sign a production session.
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "change_me", "secret", "secret-key", "your-secret-key", "dev"}
)


def _development_secret_key(instance_path: str) -> str:
    """A random key kept in the instance folder, so every worker and restart shares it."""
    path = os.path.join(instance_path, "development-secret-key")
    if not os.path.exists(path):
        # Write aside, then link into place: of several workers starting at once, exactly
        # one key wins and nobody reads a half-written file.
        temporary = f"{path}.{os.getpid()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(32))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    with open(path, encoding="ascii") as file:
        return file.read().strip()


def load_config(
    instance_path: str,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the settings: defaults, then ``COMMENTSVC_*`` variables, then ``overrides``."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = setting.default
        raw = environ.get(setting.env_name)
        if raw is not None and raw != "":
            try:
                value = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{setting.env_name}: {exc}") from None
        values[setting.name] = value
    if overrides:
        values.update(overrides)

    for setting in SETTINGS:
        if setting.minimum is not None and values[setting.name] < setting.minimum:
            raise ConfigError(f"{setting.env_name} must be at least {setting.minimum}")
        if setting.maximum is not None and values[setting.name] > setting.maximum:
            # Longer text would not fit its column: PostgreSQL refuses it (a 500 after
            # validation passed), SQLite stores it anyway.
            raise ConfigError(
                f"{setting.env_name} must be at most {setting.maximum}"
                " (the width of its database column)"
            )
    if values["ENV"] not in {"production", "development", "testing"}:
        raise ConfigError(f"{ENV_PREFIX}ENV must be production or development")
    values["LOG_LEVEL"] = values["LOG_LEVEL"].upper()
    if values["LOG_LEVEL"] not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"{ENV_PREFIX}LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    if values["LOG_FORMAT"] not in {"json", "text"}:
        raise ConfigError(f"{ENV_PREFIX}LOG_FORMAT must be json or text")
    if values["SQLITE_SYNCHRONOUS"].upper() not in {"NORMAL", "FULL", "EXTRA"}:
        raise ConfigError(f"{ENV_PREFIX}SQLITE_SYNCHRONOUS must be NORMAL, FULL or EXTRA")

    if not values["SECRET_KEY"]:
        if values["ENV"] == "production":
            raise ConfigError(
                f"{ENV_PREFIX}SECRET_KEY is not set: set it to a long random string "
                f"(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        values["SECRET_KEY"] = _development_secret_key(instance_path)
    elif values["ENV"] == "production" and (
        len(values["SECRET_KEY"]) < MIN_SECRET_KEY_LENGTH
        or values["SECRET_KEY"].strip().lower() in PLACEHOLDER_SECRETS
    ):
        raise ConfigError(
            f"{ENV_PREFIX}SECRET_KEY is a placeholder or shorter than {MIN_SECRET_KEY_LENGTH} "
            f"characters: set it to a long random string "
            f"(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    if not values["DATABASE_URL"]:
        values["DATABASE_URL"] = "sqlite:///" + os.path.join(instance_path, "commentsvc.db")

    values["SQLALCHEMY_DATABASE_URI"] = values["DATABASE_URL"]
    values["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
        values["DATABASE_URL"], values["DATABASE_TIMEOUT_SECONDS"]
    )
    values["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=values["SESSION_IDLE_MINUTES"])
    values["SESSION_COOKIE_NAME"] = "commentsvc_session"
    values["WTF_CSRF_TIME_LIMIT"] = None  # the token lives as long as the session
    values["SESSION_COOKIE_HTTPONLY"] = True
    values["SESSION_COOKIE_SAMESITE"] = "Lax"
    return values


def engine_options(url: str, timeout: int) -> dict[str, Any]:
    """SQLAlchemy engine options: check pooled server connections before use; bounded waits.

    ``pool_pre_ping`` replaces a connection the database dropped (a restart, a failover)
    instead of failing the request that draws it. On PostgreSQL a connection attempt and a
    wait for a free pooled connection give up after ``timeout`` seconds, so a database that
    is gone gives a 503 instead of a hung worker.
    """
    if url.startswith("sqlite"):
        return {}  # a file: there is no server to lose a connection to
    options: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        options["pool_timeout"] = timeout
        options["connect_args"] = {"connect_timeout": timeout}
    return options


def settings_table() -> str:
    """The README's configuration table, in Markdown, made from :data:`SETTINGS`."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        if setting.default is None:
            default = "—"
        elif isinstance(setting.default, bool):
            default = f"`{str(setting.default).lower()}`"
        else:
            default = f"`{setting.default}`"
        lines.append(f"| `{setting.env_name}` | {default} | {setting.help} |")
    return "\n".join(lines)
