"""The README's shell lines work as printed: every ``commentsvc`` line of its ``sh`` blocks,
run in order by bash against a fresh install set up as ``make run`` sets up the demo (its
settings in an env file the command reads), and the PostgreSQL backup commands of the
Deployment section, with their flags, against a real PostgreSQL."""

from __future__ import annotations

import gzip
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from flask import Flask

from commentsvc import PROJECT_ROOT
from commentsvc.extensions import db
from commentsvc.models import Site
from tests.support.databases import run_databases
from tests.support.service import base_env

README = PROJECT_ROOT / "README.md"
#: The README's import lines read this file: the tests' WordPress sample, gzipped.
WORDPRESS_EXPORT = "news.wordpress.2025-10-05.xml.gz"
SAMPLE_EXPORT = PROJECT_ROOT / "tests" / "imports" / "samples" / "wordpress" / "export.xml"
BIN = Path(sys.executable).parent
#: What the lines that ask for something read from standard input.
ANSWERS = {
    "commentsvc moderators add alice@example.com ": "alice-password-123\nalice-password-123\n",
    "commentsvc db restore ": "y\n",
}


def shell_lines() -> list[str]:
    """The lines of the README's ``sh`` blocks, comments and continuations joined."""
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text("utf-8"), re.M | re.S)
    text = "\n".join(blocks).replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip()]


def commentsvc_lines() -> list[str]:
    return [
        line
        for line in shell_lines()
        if line.startswith("commentsvc ") or re.search(r"\| *commentsvc ", line)
    ]


def test_the_readme_shows_the_commands_it_promises() -> None:
    lines = commentsvc_lines()
    assert len(lines) >= 20, lines
    for command in ("sites add", "sites set", "blocklist add", "moderators add", "db backup"):
        assert any(f"commentsvc {command} " in line for line in lines), command


def test_every_commentsvc_line_works_as_printed_on_a_demo_like_install(tmp_path: Path) -> None:
    url = run_databases().url(tmp_path / "readme.db")
    settings = tmp_path / "commentsvc.env"
    settings.write_text(
        "COMMENTSVC_ENV=development\n"
        "COMMENTSVC_SECRET_KEY=readme-walk-secret-key-0123456789\n"
        f"COMMENTSVC_DATABASE_URL={url}\n",
        "utf-8",
    )
    env = base_env()
    env["COMMENTSVC_ENV_FILE"] = str(settings)
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    env["PASSWORD"] = "bob-password-123"

    def run(line: str, answer: str = "") -> str:
        done = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {line}"],
            cwd=tmp_path,
            env=env,
            input=answer,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
        return done.stdout

    # The WordPress export the import lines read.
    with SAMPLE_EXPORT.open("rb") as source, gzip.open(tmp_path / WORDPRESS_EXPORT, "wb") as to:
        shutil.copyfileobj(source, to)
    # What make run has done before a reader gets to the README's commands.
    run("commentsvc db upgrade")
    run("commentsvc sites add demo --origin http://127.0.0.1:8000")
    run(
        "printf '%s\\n' demo-password | commentsvc moderators add demo@example.com --admin "
        "--password-stdin"
    )
    env["TOKEN"] = run("commentsvc tokens create demo@example.com").split()[-1]
    try:
        for line in commentsvc_lines():
            answer = next((text for start, text in ANSWERS.items() if line.startswith(start)), "")
            run(line, answer)
        listed = run("commentsvc sites list")
        assert re.search(
            r"^news\tThe News\thttps://news.example https://amp.news.example\t", listed, re.M
        ), listed
        assert "bob@example.com" in run("commentsvc moderators list")
    finally:
        run_databases().drop(tmp_path / "readme.db")


def _compose_service(name: str) -> dict[str, object]:
    compose = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text("utf-8"))
    service: dict[str, object] = compose["services"][name]
    return service


def _postgres_line(program: str, redirect: str) -> list[str]:
    """The README's ``docker compose exec -T postgres <program> … <redirect> FILE`` line, as
    the words of the program's part; its user and database are those compose.yaml makes."""
    [line] = [line for line in shell_lines() if f"postgres {program} " in line]
    command, operator, _file = line.split(" postgres ", 1)[1].partition(f" {redirect} ")
    assert operator, line
    words = shlex.split(command)
    environment = _compose_service("postgres")["environment"]
    assert isinstance(environment, dict)
    assert words[words.index("-U") + 1] == environment["POSTGRES_USER"]
    assert words[words.index("-d") + 1] == environment["POSTGRES_DB"]
    return words


@pytest.mark.postgresql_only
def test_the_compose_backup_and_restore_commands_bring_a_database_back(
    app: Flask, tmp_path: Path
) -> None:
    dump_words = _postgres_line("pg_dump", ">")
    restore_words = _postgres_line("pg_restore", "<")
    server = sa.make_url(app.config["DATABASE_URL"]).set(drivername="postgresql")
    target = server.render_as_string(hide_password=False)

    def command(words: list[str]) -> list[str]:
        """The command with the test server's address for compose's user and database."""
        user, database = words.index("-U"), words.index("-d")
        kept = [w for i, w in enumerate(words) if i not in {user, user + 1, database, database + 1}]
        return [kept[0], f"--dbname={target}", *kept[1:]]

    dump = tmp_path / "commentsvc.dump"
    with dump.open("wb") as out:
        subprocess.run(command(dump_words), stdout=out, check=True, timeout=120)
    with app.app_context():
        db.session.add(Site(slug="after", name="After the backup", origins=["https://a.example"]))
        db.session.commit()
        db.engine.dispose()
    with dump.open("rb") as source:
        subprocess.run(command(restore_words), stdin=source, check=True, timeout=120)
    with app.app_context():
        slugs = set(db.session.scalars(sa.select(Site.slug)))
        db.session.remove()
    assert slugs == {"news", "blog"}


def test_the_changelog_names_this_version_first() -> None:
    from commentsvc import __version__

    changelog = (PROJECT_ROOT / "CHANGELOG.md").read_text("utf-8")
    versions = re.findall(r"^## ([0-9]+\.[0-9]+\.[0-9]+)\b", changelog, re.M)
    assert versions and versions[0] == __version__, versions
    assert f"commentsvc:{__version__}" in README.read_text("utf-8")  # the image tag shown
