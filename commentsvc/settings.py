"""Every setting the service reads, declared once: its type, default, bounds and meaning.

The README's configuration table is generated from (and tested against) :data:`SETTINGS`.
Length limits of stored text take their upper bound from the column they are stored in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from commentsvc import widths

ENV_PREFIX = "COMMENTSVC_"
#: The largest ``MAX_BODY_LENGTH``: the longest body whose worst encoding (12 bytes a
#: character) leaves room for the rest of a submission in the default 64 KiB request
#: (12 * 5400 = 64,800 bytes, 736 left). It also bounds the CPU one submission costs.
MAX_BODY_LIMIT = 5400


#: Each submitted text field and the setting that limits its length: the form checks them,
#: and the widget's inputs and the served API description say them.
FIELD_LENGTH_SETTINGS = {
    "page": "MAX_PAGE_KEY_LENGTH",
    "page_url": "MAX_URL_LENGTH",
    "page_title": "MAX_PAGE_TITLE_LENGTH",
    "body": "MAX_BODY_LENGTH",
    "author_name": "MAX_NAME_LENGTH",
    "author_email": "MAX_EMAIL_LENGTH",
    "author_url": "MAX_URL_LENGTH",
}


class ConfigError(RuntimeError):
    """A setting is missing or has a value the service cannot use."""


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _parse_int(raw: str) -> int:
    value = raw.strip()
    if not re.fullmatch(r"[+-]?[0-9]+", value):
        raise ValueError("must be a whole number")
    return int(value)


def _parse_str(raw: str) -> str:
    return raw


def _parse_hosts(raw: str) -> list[str]:
    """A comma-separated list of host names, trimmed and in lower case."""
    return [host.strip().lower() for host in raw.split(",") if host.strip()]


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One configuration value: its name (without prefix), type, default and meaning."""

    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = _parse_str
    minimum: int | None = None
    #: For lengths of stored text: the width of its database column.
    maximum: int | None = None
    #: Why ``maximum`` is the bound, as the error names it.
    maximum_reason: str = "the width of its database column"
    #: The values it may take (compared case-insensitively where ``upper`` is set).
    choices: tuple[str, ...] = ()
    upper: bool = False
    #: A further check of a value: raises ValueError saying what is wrong with it.
    checker: Callable[[Any], None] | None = None

    @property
    def env_name(self) -> str:
        return ENV_PREFIX + self.name

    def check(self, value: Any) -> Any:
        """``value`` as the service uses it; ConfigError when it is out of bounds."""
        if self.upper and isinstance(value, str):
            value = value.upper()
        if self.choices and value not in self.choices:
            raise ConfigError(f"{self.env_name} must be {_one_of(self.choices)}")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{self.env_name} must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            # For a length: longer text would not fit its column. PostgreSQL refuses it (a
            # 500 after validation passed), SQLite stores it anyway.
            reason = f" ({self.maximum_reason})" if self.maximum_reason else ""
            raise ConfigError(f"{self.env_name} must be at most {self.maximum}{reason}")
        if self.checker is not None and value is not None:
            try:
                self.checker(value)
            except ValueError as error:
                raise ConfigError(f"{self.env_name}: {error}") from None
        return value


def _check_rate_limits(value: str) -> None:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a rate limit such as '5/minute;30/hour' (count/period, "
            "several separated by ';')"
        ) from None


def _check_storage_uri(value: str) -> None:
    from commentsvc.services.throttling import check_storage_uri

    check_storage_uri(value)


def _check_smtp_url(value: str) -> None:
    from commentsvc.mail import parse_smtp_url

    parse_smtp_url(value)


def _check_mail_from(value: str) -> None:
    from commentsvc.mail import parse_mail_from

    parse_mail_from(value)


def _check_public_url(value: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query:
        raise ValueError(
            f"{value!r} is not a base URL such as https://comments.example.com "
            "(http or https, a host, maybe a path; no query)"
        )


#: A host name or IPv4 address as Werkzeug compares it; a leading dot: its subdomains too.
_HOST_NAME = re.compile(r"\.?[a-z0-9-]+(?:\.[a-z0-9-]+)*")
_PORT = re.compile(r"[1-9][0-9]{0,4}")


def _check_hosts(hosts: list[str]) -> None:
    if not hosts:
        raise ValueError("names no host; leave it unset to answer any host")
    for host in hosts:
        name, colon, port = host.partition(":")
        if not _HOST_NAME.fullmatch(name) or (
            colon and not (_PORT.fullmatch(port) and int(port) <= 65535)
        ):
            raise ValueError(
                f"{host!r} is not a host name such as comments.example.com or "
                "comments.example.com:8443 (no scheme or path; IDN hosts in their xn-- form)"
            )


def _one_of(choices: tuple[str, ...]) -> str:
    return ", ".join(choices[:-1]) + f" or {choices[-1]}"


def _text(name: str, default: str | None, help: str) -> Setting:
    return Setting(name=name, default=default, help=help)


def _flag(name: str, default: bool, help: str) -> Setting:
    return Setting(name=name, default=default, help=help, parse=_parse_bool)


def _int(
    name: str,
    default: int,
    help: str,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    maximum_reason: str = "",
) -> Setting:
    return Setting(
        name=name,
        default=default,
        help=help,
        parse=_parse_int,
        minimum=minimum,
        maximum=maximum,
        maximum_reason=maximum_reason,
    )


def _choice(name: str, default: str, help: str, choices: tuple[str, ...]) -> Setting:
    upper = all(choice.isupper() for choice in choices)
    return Setting(name=name, default=default, help=help, choices=choices, upper=upper)


def _length(name: str, default: int, help: str, widest: int, minimum: int = 1) -> Setting:
    """A length limit of stored text, at most ``widest``: the width of its columns."""
    return Setting(
        name=name,
        default=default,
        help=f"{help} (at most {widest}).",
        parse=_parse_int,
        minimum=minimum,
        maximum=widest,
    )


SETTINGS: tuple[Setting, ...] = (
    Setting(
        name="ENV",
        default="production",
        help="`production` or `development`; development allows a generated secret key and "
        "plain-HTTP cookies.",
        choices=("production", "development", "testing"),
    ),
    _text(
        "DATABASE_URL",
        None,
        "SQLAlchemy database URL. Default: SQLite file `commentsvc.db` in the instance folder. "
        "PostgreSQL: `postgresql+psycopg://…`.",
    ),
    _text(
        "SECRET_KEY",
        None,
        "Signs sessions and keys the hashes of client addresses. Required outside "
        "development; keep it the same across restarts and upgrades (a new one logs every "
        "moderator out and restarts the rate-limit and login counts).",
    ),
    _text(
        "ENV_FILE",
        None,
        "A file of `COMMENTSVC_…=value` lines read at start-up by the service and the "
        "`commentsvc` command; the environment wins over it. Default: `commentsvc.env` in "
        "the instance folder, when there is one (`make run` keeps the demo's settings there).",
    ),
    _flag(
        "MIGRATE_ON_START",
        False,
        "The container image only: `true` runs `commentsvc db upgrade` before gunicorn starts "
        "(one container; with several replicas migrate once per release instead).",
    ),
    _flag(
        "RATELIMIT_ENABLED", True, "`false` turns every rate limit off (load tests, benchmarks)."
    ),
    Setting(
        name="SUBMIT_RATE_LIMIT",
        default="5/minute;30/hour",
        help="Submissions one client address (IPv6: its /64) may make to one site, in the "
        "notation of the `limits` library: `count/period`, several joined by `;`. Over it: "
        "429 with `Retry-After`, nothing stored.",
        checker=_check_rate_limits,
    ),
    Setting(
        name="PREVIEW_RATE_LIMIT",
        default="30/minute",
        help="Previews (`POST …/preview`, the widget's Preview tab on Markdown sites) one "
        "client address (IPv6: its /64) may ask for, all sites together, in the same "
        "notation. Over it: 429 with `Retry-After`.",
        checker=_check_rate_limits,
    ),
    Setting(
        name="RATELIMIT_STORAGE_URI",
        default=None,
        help="Where rate limits are counted. Unset: submissions in the service's database, "
        "from the comments stored (shared by every worker and replica on it), previews in "
        "each worker's memory (a client may get the limit once per worker). "
        "`redis://host:port/db` (or `rediss://`, `redis+sentinel://`, `redis+cluster://`): "
        "both in Redis.",
        checker=_check_storage_uri,
    ),
    _flag(
        "RATELIMIT_FAIL_OPEN",
        True,
        "When the rate-limit storage cannot be reached: `true` lets submissions and previews "
        "through unlimited (logged, and counted in `/metrics`); `false` answers them with 503.",
    ),
    _flag(
        "SESSION_COOKIE_SECURE",
        True,
        "Send the panel's cookies over HTTPS only, named `__Host-commentsvc_session` and "
        "`__Host-commentsvc_device`; `false` (plain-HTTP local use only): `commentsvc_session` "
        "and `commentsvc_device`, not `Secure`.",
    ),
    _int(
        "MAX_CONTENT_LENGTH",
        65536,
        "Largest request body in bytes (413 above); at most 1048576, the most the server reads "
        "ahead of the application.",
        minimum=1024,
        maximum=1024 * 1024,
        maximum_reason="the most the server reads ahead of the application",
    ),
    _int(
        "MAX_BODY_LENGTH",
        5000,
        f"Longest comment, in characters after trimming (at most {MAX_BODY_LIMIT}, so that "
        "a comment that long fits the default `MAX_CONTENT_LENGTH` even at 12 bytes a "
        "character: an emoji as JSON escapes it, `\\ud83d\\ude00`, or as a form encodes it, "
        "`%F0%9F%98%80`).",
        maximum=MAX_BODY_LIMIT,
        maximum_reason="the longest comment the default request size holds",
    ),
    _length("MAX_NAME_LENGTH", 100, "Longest author name", widths.AUTHOR_NAME),
    _length("MAX_EMAIL_LENGTH", 254, "Longest author email", widths.AUTHOR_EMAIL, minimum=6),
    _length(
        "MAX_URL_LENGTH",
        2000,
        "Longest author website or page URL",
        widths.URL,
        minimum=10,
    ),
    _length("MAX_PAGE_KEY_LENGTH", 500, "Longest page key", widths.PAGE_KEY),
    _length("MAX_PAGE_TITLE_LENGTH", 300, "Longest page title", widths.PAGE_TITLE),
    _length(
        "MAX_USER_AGENT_LENGTH",
        512,
        "User agent is truncated to this length",
        widths.USER_AGENT,
        minimum=0,
    ),
    _flag(
        "EMAIL_CHECK_DELIVERABILITY", False, "Check the email domain in DNS (needs outbound DNS)."
    ),
    _int("PAGE_SIZE", 50, "Default page size of lists."),
    _int("MAX_PAGE_SIZE", 200, "Largest `limit` a list accepts."),
    _int("MAX_COUNT_PAGES", 100, "Most pages one counts request may ask for."),
    _int(
        "MAX_FILTER_LENGTH",
        500,
        "Longest text filter of a moderation list (`q`, `site`, `moderator`).",
    ),
    _int("MAX_BULK_IDS", 500, "Most ids one bulk moderation request may name."),
    _int("PANEL_PAGE_SIZE", 20, "Comments per page in the moderation panel."),
    _int("SESSION_IDLE_MINUTES", 60, "A panel session ends after this long without a request."),
    _int(
        "SESSION_MAX_HOURS",
        12,
        "A panel session ends this long after its login, however active it was.",
    ),
    _int(
        "LOGIN_WINDOW_MINUTES",
        15,
        "How long panel login attempts are kept (as keyed hashes) and counted; also the longest "
        "delay between two attempts of one email from one browser or address.",
    ),
    _int(
        "LOGIN_MAX_FAILURES_PER_ACCOUNT",
        50,
        "Failed logins to one email in the window, from browsers that never logged in to it, "
        "before further logins from such browsers are refused (guessing spread over many "
        "addresses); a browser that logged in to the account before is never refused by it.",
    ),
    _int(
        "LOGIN_MAX_FAILURES_PER_CLIENT",
        20,
        "Failed or refused logins from one client address (IPv6: its /64) in the window, from "
        "browsers that never logged in to the account tried, before its further ones are "
        "refused.",
    ),
    _int(
        "TRUSTED_PROXIES",
        0,
        "Number of reverse proxies in front of the service whose `X-Forwarded-*` headers are "
        "trusted. With `0` behind a proxy every client has the proxy's address, and the "
        "per-client limits count everybody together.",
        minimum=0,
    ),
    Setting(
        name="TRUSTED_HOSTS",
        default=None,
        help="The host names the service answers to, comma-separated, such as "
        "`comments.example.com` (a port may follow but is not compared; `.example.com` also "
        "takes its subdomains). A request naming any other host in `Host` (or, from trusted "
        "proxies, in `X-Forwarded-Host`) gets 400, so a forged host never reaches a redirect. "
        "Unset: any host.",
        parse=_parse_hosts,
        checker=_check_hosts,
    ),
    _int("SQLITE_BUSY_TIMEOUT_MS", 5000, "How long a SQLite writer waits for the lock.", minimum=0),
    _choice(
        "SQLITE_SYNCHRONOUS",
        "NORMAL",
        "SQLite `synchronous` pragma: `NORMAL` (durable across process crashes) or `FULL` "
        "(also across power loss).",
        ("NORMAL", "FULL", "EXTRA"),
    ),
    _int(
        "DATABASE_TIMEOUT_SECONDS",
        5,
        "PostgreSQL: how long to wait for a connection (and for a free one in the pool) before "
        "answering 503.",
    ),
    _int(
        "SITE_CACHE_SECONDS",
        10,
        "How long a worker keeps a site's origins and settings before reading them again (a "
        "change shows in other workers within this time); `0` reads them every request.",
        minimum=0,
    ),
    _int(
        "THREAD_CACHE_MB",
        8,
        "Memory per worker for rendered thread pages, reused until the thread changes: their "
        "bodies, keys and the cache's own bookkeeping. Each page is kept as of its newest "
        "version only, and pages nobody commented on are not kept; `0` turns it off. Raise "
        "it when many pages with long threads are read at once.",
        minimum=0,
    ),
    _choice(
        "LOG_LEVEL",
        "INFO",
        "`DEBUG`, `INFO`, `WARNING` or `ERROR`.",
        ("DEBUG", "INFO", "WARNING", "ERROR"),
    ),
    _choice(
        "LOG_FORMAT",
        "json",
        "`json`: one JSON object per line (a line per request with its id, method, path, status "
        "and duration); `text` for reading by eye.",
        ("json", "text"),
    ),
    _text(
        "METRICS_TOKEN",
        None,
        "When set, `/metrics` asks for `Authorization: Bearer <token>`; unset, it is open (keep "
        "it off the public internet at the proxy).",
    ),
    Setting(
        name="SMTP_URL",
        default=None,
        help="Where mail is sent: `smtp://[user:password@]host[:port]` (port 25), "
        "`smtp+starttls://…` (587, STARTTLS required) or `smtps://…` (465, TLS); user and "
        "password percent-encoded. Unset: no mail is sent (moderator mails, reply "
        "notifications). Needs `PUBLIC_URL`.",
        checker=_check_smtp_url,
    ),
    Setting(
        name="MAIL_FROM",
        default=None,
        help="The `From` of every mail, `comments@example.com` or `Example comments "
        "<comments@example.com>`. Default: `commentsvc@` the host of `PUBLIC_URL`.",
        checker=_check_mail_from,
    ),
    Setting(
        name="PUBLIC_URL",
        default=None,
        help="The service's external base URL, such as `https://comments.example.com`, for "
        "the links in mails (required with `SMTP_URL`).",
        checker=_check_public_url,
    ),
    _int(
        "NOTIFY_MAX_PER_HOUR",
        30,
        "Mails of new comments one moderator (notify `each`) gets in an hour; the comments "
        "past it come in one digest.",
    ),
    _int(
        "NOTIFY_DIGEST_MINUTES",
        60,
        "How long a digest collects: a moderator with notify `digest` (or past the hourly "
        "cap) gets one this long after the first comment it lists.",
    ),
    _int(
        "MAIL_LINK_HOURS",
        72,
        "How long the approve / reject / spam links of a moderator's mail work (each once).",
    ),
    _int(
        "REPLY_MAILS_PER_HOUR",
        10,
        "Reply notifications one address gets in an hour at most; the rest are not sent.",
    ),
    _flag(
        "WEBHOOK_ALLOW_PRIVATE",
        False,
        "`true` lets webhooks call loopback, private and link-local addresses (a receiver "
        "on the same host or network); by default such URLs are refused.",
    ),
    _flag(
        "RUN_WORKER",
        False,
        "`true`: gunicorn's master also runs one `commentsvc worker`, started again if it "
        "stops: one container serves and delivers. Otherwise run `commentsvc worker` as its "
        "own process or container (several at once are safe).",
    ),
    _int(
        "WORKER_THREADS",
        4,
        "Deliveries one `commentsvc worker` sends at the same time (a slow webhook holds one).",
        maximum=64,
        maximum_reason="more would only hold more database connections",
    ),
    _int(
        "WORKER_POLL_MS",
        500,
        "How often an idle worker looks for new events and due deliveries, in milliseconds.",
        minimum=10,
    ),
    _int(
        "WORKER_STALE_SECONDS",
        30,
        "A worker whose heartbeat is older than this is taken for dead: what it was sending "
        "goes to another worker, and `commentsvc worker --check` fails. Workers beat six "
        "times in this time.",
        minimum=2,
    ),
    _int(
        "DELIVERY_RETENTION_DAYS",
        30,
        "How long finished deliveries (sent, failed, skipped) and delivered events are kept "
        "for the panel's history before the worker deletes them.",
    ),
    _int(
        "EDIT_WINDOW_MINUTES",
        15,
        "How long after posting a commenter may edit or delete their comment with the edit "
        "token its 201 answer carried (the widget keeps it in the browser). `0`: never.",
        minimum=0,
    ),
    _int(
        "RETENTION_SPAM_DAYS",
        30,
        "Comments marked spam are deleted this many days after they were last moderated "
        "(or written, when stored as spam on submission) by the worker, daily; `commentsvc "
        "retention --dry-run` shows what would go. `0` keeps them.",
        minimum=0,
    ),
    _int(
        "RETENTION_REJECTED_DAYS",
        90,
        "Rejected comments are deleted this many days after they were last moderated. "
        "`0` keeps them.",
        minimum=0,
    ),
    _int(
        "RETENTION_CLIENT_FACTS_DAYS",
        90,
        "A comment's client facts (IP prefix, user agent, the rate limits' client hash) are "
        "cleared this many days after it was written. `0` keeps them.",
        minimum=0,
    ),
    _int(
        "PERSONAL_DATA_REQUESTS_PER_DAY",
        3,
        "Personal-data requests (export or erasure links) one address, and ten times as "
        "many one client, may make in a day on a site; more are answered 202 and not mailed "
        "(address) or refused with 429 (client).",
    ),
    _int(
        "PERSONAL_DATA_LINK_HOURS",
        24,
        "How long the link of a personal-data request mail works (once).",
    ),
    _text(
        "MIGRATIONS_DIR",
        None,
        "Alembic migrations folder. Default: `migrations/` beside the package.",
    ),
)

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}
