"""The service's environment, and its database made ready through the real ``commentsvc`` CLI.

Whoever serves the application for real (:mod:`tests.support.server`) builds its environment
with :func:`service_env` and its schema, sites and moderators with :func:`create_accounts`,
as an operator would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from commentsvc import PROJECT_ROOT

SECRET_KEY = "harness-secret-key-not-for-production"
#: Settings of the service, of gunicorn and of its metrics that the caller's shell may hold.
SETTING_PREFIXES = ("COMMENTSVC_", "GUNICORN_", "PROMETHEUS_")
SETTING_NAMES = ("WEB_CONCURRENCY", "PORT", "HOST", "FORWARDED_ALLOW_IPS")


class CliError(RuntimeError):
    """A ``commentsvc`` command failed; the message holds its standard error."""


def base_env() -> dict[str, str]:
    """This process's environment without any setting of the service, gunicorn or metrics.

    Whoever starts the service sets those, so a variable left in the caller's shell cannot
    change what a test checks or a benchmark measures; nor can the env file that ``make
    run`` keeps in the instance folder.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(SETTING_PREFIXES) and name not in SETTING_NAMES
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["COMMENTSVC_ENV_FILE"] = os.devnull
    return env


def service_env(
    database_url: str, secret_key: str = SECRET_KEY, **variables: str
) -> dict[str, str]:
    """The environment of the service and of its CLI on ``database_url``, rate limits off;
    ``variables`` (full names, e.g. ``COMMENTSVC_LOG_LEVEL``) add to it or override it."""
    env = base_env()
    env.update(
        COMMENTSVC_DATABASE_URL=database_url,
        COMMENTSVC_SECRET_KEY=secret_key,
        COMMENTSVC_RATELIMIT_ENABLED="false",
    )
    env.update(variables)
    return env


def commentsvc_script() -> str:
    """The ``commentsvc`` console script installed beside this interpreter."""
    script = shutil.which("commentsvc", path=os.path.dirname(sys.executable))
    if script is None:
        raise CliError(f"no commentsvc script beside {sys.executable}: pip install -e .")
    return script


def run_cli(
    env: Mapping[str, str], *args: str, stdin: str | None = None, timeout: float = 120
) -> str:
    """Run ``commentsvc ARGS`` and return its standard output; CliError when it fails."""
    result = subprocess.run(
        [commentsvc_script(), *args],
        env=dict(env),
        cwd=PROJECT_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise CliError(f"commentsvc {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@dataclass(frozen=True)
class Moderator:
    """A moderator account to create: an administrator, limited to ``sites``, or neither."""

    email: str
    password: str
    admin: bool = False
    sites: tuple[str, ...] = ()

    def cli_args(self) -> list[str]:
        """The arguments of ``commentsvc moderators add`` for this account."""
        args = ["moderators", "add", self.email, "--password-stdin"]
        args += ["--admin"] if self.admin else []
        for site in self.sites:
            args += ["--site", site]
        return args


#: A CLI command: its arguments and its standard input.
Command = tuple[list[str], str | None]


def create_accounts(
    env: Mapping[str, str],
    sites: Mapping[str, str | Sequence[str]],
    moderators: Sequence[Moderator],
    token_for: str | None = None,
    token_name: str | None = None,
) -> str | None:
    """Migrate, then add ``sites`` (slug: origin or origins) and ``moderators``; an API token
    of the moderator ``token_for``, when named.

    Each command is a fresh interpreter (about 2 s), so independent ones run side by side: a
    moderator limited to sites waits for them, a token for its moderator.
    """
    run_cli(env, "db", "upgrade")
    first: list[Command] = [(_site_args(slug, origins), None) for slug, origins in sites.items()]
    first += [(m.cli_args(), m.password) for m in moderators if not m.sites]
    then: list[Command] = [(m.cli_args(), m.password) for m in moderators if m.sites]
    token: list[Command] = []
    if token_for is not None:
        name = ["--name", token_name] if token_name else []
        token = [(["tokens", "create", token_for, *name], None)]
    owner_is_scoped = any(m.email == token_for and m.sites for m in moderators)
    steps = [first, then, token] if owner_is_scoped else [first, then + token]
    outputs: list[str] = []
    with ThreadPoolExecutor(max_workers=max(map(len, steps)) or 1) as pool:
        for step in steps:
            calls = [pool.submit(run_cli, env, *args, stdin=stdin) for args, stdin in step]
            outputs = [call.result() for call in calls]
    return outputs[-1].split()[-1] if token else None


def _site_args(slug: str, origins: str | Sequence[str]) -> list[str]:
    args = ["sites", "add", slug]
    for origin in [origins] if isinstance(origins, str) else origins:
        args += ["--origin", origin]
    return args
