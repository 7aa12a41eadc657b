"""Configuration: defaults, then ``COMMENTSVC_*`` environment variables, then a test mapping.

Every setting the service reads is declared once in :mod:`commentsvc.settings` with its type,
default and meaning. The README's configuration table is generated from (and tested
against) this list. Bad values fail fast at start-up with a one-line message.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, NoReturn
from urllib.parse import urlsplit

from dotenv import dotenv_values

from commentsvc.settings import ENV_PREFIX, SETTINGS, SETTINGS_BY_NAME, ConfigError, Setting

__all__ = ["SETTINGS", "SETTINGS_BY_NAME", "ConfigError", "Setting", "load_config"]


#: The env file read from the instance folder when ``COMMENTSVC_ENV_FILE`` names none.
ENV_FILE_NAME = "commentsvc.env"
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


def instance_folder(package_dir: str | None = None, prefix: str | None = None) -> str:
    """The application's instance folder, by Flask's rule for an app named after its
    package: ``instance/`` beside the package in a checkout; ``<prefix>/var/commentsvc-instance``
    when the package is installed (``prefix`` being the interpreter's, or that of the
    ``site-packages`` it is in). The app is given this path, and gunicorn's master reads the
    settings from it without loading Flask (``tests/test_footprint.py``).

    ``package_dir`` (this package's directory) and ``prefix`` (``sys.prefix``) are for tests.
    """
    package_dir = package_dir or os.path.dirname(os.path.abspath(__file__))
    prefix = os.path.abspath(prefix or sys.prefix)
    parent = os.path.dirname(package_dir)
    if os.path.commonpath([parent, prefix]) == prefix:
        installed_under: str | None = prefix
    elif os.path.basename(parent).lower() == "site-packages":
        # A site-packages outside the interpreter's prefix (the user's, for one):
        # <prefix>/lib/site-packages, <prefix>/lib/pythonX.Y/site-packages or
        # <prefix>/site-packages.
        above = os.path.dirname(parent)
        if os.path.basename(above).lower() == "lib":
            installed_under = os.path.dirname(above)
        elif os.path.basename(os.path.dirname(above)).lower() == "lib":
            installed_under = os.path.dirname(os.path.dirname(above))
        else:
            installed_under = above
    else:
        installed_under = None
    if installed_under is None:
        return os.path.join(parent, "instance")
    return os.path.join(installed_under, "var", "commentsvc-instance")


def environment(instance_path: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables the settings are read from: those of the env file (``COMMENTSVC_ENV_FILE``,
    or ``commentsvc.env`` in the instance folder when it exists), then the environment's,
    which win."""
    environ = os.environ if environ is None else environ
    named = environ.get(f"{ENV_PREFIX}ENV_FILE")
    path = named or os.path.join(instance_path, ENV_FILE_NAME)
    if not named and not os.path.isfile(path):
        return dict(environ)
    try:
        # Values as written: no ${VAR} expansion, a secret key may hold a '$'.
        with open(path, encoding="utf-8") as stream:
            found = dotenv_values(stream=stream, interpolate=False)
    except OSError as error:
        raise ConfigError(f"{ENV_PREFIX}ENV_FILE: cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    for name in found:
        setting = SETTINGS_BY_NAME.get(name.removeprefix(ENV_PREFIX))
        if not name.startswith(ENV_PREFIX) or setting is None or setting.name == "ENV_FILE":
            raise ConfigError(f"{path}: {name} is not a setting of the service")
    from_file = {name: value for name, value in found.items() if value is not None}
    return {**from_file, **environ}


def load_config(
    instance_path: str,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the settings: defaults, then the env file's and the environment's
    ``COMMENTSVC_*`` variables (:func:`environment`), then ``overrides``."""
    values = _read(environment(instance_path, environ))
    values.update(overrides or {})
    for setting in SETTINGS:
        values[setting.name] = setting.check(values[setting.name])
    values["SECRET_KEY"] = _secret_key(values["SECRET_KEY"], values["ENV"], instance_path)
    _check_mail(values)
    if values["PUBLIC_URL"]:
        values["PUBLIC_URL"] = values["PUBLIC_URL"].rstrip("/")
        if not values["MAIL_FROM"]:
            values["MAIL_FROM"] = "commentsvc@" + str(urlsplit(values["PUBLIC_URL"]).hostname)
    if not values["DATABASE_URL"]:
        values["DATABASE_URL"] = "sqlite:///" + os.path.join(instance_path, "commentsvc.db")
    values.update(_flask_settings(values))
    return values


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """ConfigError for the first setting of the environment that :func:`load_config` would
    refuse; needs no app (gunicorn's master checks before it starts any worker)."""
    values = _read(environment(instance_folder(), environ))
    for setting in SETTINGS:
        setting.check(values[setting.name])
    _check_secret_key(values["SECRET_KEY"], values["ENV"])
    _check_mail(values)


def _check_mail(values: Mapping[str, Any]) -> None:
    """Mail needs the service's public address: every mail links to it."""
    if values["SMTP_URL"] and not values["PUBLIC_URL"]:
        raise ConfigError(
            f"{ENV_PREFIX}SMTP_URL is set but {ENV_PREFIX}PUBLIC_URL is not: set it to the "
            "service's external address (such as https://comments.example.com), which the "
            "links in mails use"
        )


def exit_for(error: ConfigError, status: int) -> NoReturn:
    """Say in one line which setting is wrong, and exit with ``status`` (no traceback)."""
    print(f"commentsvc: configuration error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(status) from None


def _read(environ: Mapping[str, str]) -> dict[str, Any]:
    """Each setting's default, or its parsed environment variable where one is set."""
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env_name)
        values[setting.name] = setting.default
        if raw is not None and raw != "":
            try:
                values[setting.name] = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{setting.env_name} {exc}, not {raw!r}") from None
    return values


_MAKE_A_KEY = (
    "set it to a long random string "
    "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
)


def _secret_key(key: str | None, env: str, instance_path: str) -> str:
    """The key that signs sessions: required and not a placeholder in production."""
    _check_secret_key(key, env)
    return key or _development_secret_key(instance_path)


def _check_secret_key(key: str | None, env: str) -> None:
    if env != "production":
        return
    if not key:
        raise ConfigError(f"{ENV_PREFIX}SECRET_KEY is not set: {_MAKE_A_KEY}")
    if len(key) < MIN_SECRET_KEY_LENGTH or key.strip().lower() in PLACEHOLDER_SECRETS:
        raise ConfigError(
            f"{ENV_PREFIX}SECRET_KEY is a placeholder or shorter than {MIN_SECRET_KEY_LENGTH} "
            f"characters: {_MAKE_A_KEY}"
        )


def _flask_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Flask's and its extensions' own keys, derived from ours."""
    return {
        "SQLALCHEMY_DATABASE_URI": values["DATABASE_URL"],
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(
            values["DATABASE_URL"], values["DATABASE_TIMEOUT_SECONDS"]
        ),
        "PERMANENT_SESSION_LIFETIME": timedelta(minutes=values["SESSION_IDLE_MINUTES"]),
        "SESSION_COOKIE_NAME": cookie_name("commentsvc_session", values["SESSION_COOKIE_SECURE"]),
        "SESSION_COOKIE_PATH": "/",
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
    }


def cookie_name(name: str, secure: bool) -> str:
    """A cookie's name: with the ``__Host-`` prefix when it is ``Secure``, so browsers take
    it only over HTTPS, from this host, for ``Path=/`` and without ``Domain`` (a sibling
    subdomain cannot plant or overwrite it)."""
    return f"__Host-{name}" if secure else name


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
