"""``make run``'s demo (scripts/run-demo.sh), started as ``make run`` starts it: the curl
lines it prints work as printed, the ``commentsvc`` command reads its settings, the demo site
takes Markdown and its article holds the thread the service renders, and a second run on
another port keeps its token and lets the new port's demo article in."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from commentsvc import PROJECT_ROOT
from tests.support.server import LOOPBACK, free_port
from tests.support.service import base_env

pytestmark = pytest.mark.sqlite_only  # the demo runs on SQLite
BIN = Path(sys.executable).parent
STARTUP_SECONDS = 60
TIMEOUT = 10


@dataclass
class Demo:
    port: int
    output: Path

    @property
    def printed(self) -> str:
        return self.output.read_text(errors="replace")

    @property
    def article(self) -> str:
        """The demo site's origin (the demo article's)."""
        return f"http://{LOOPBACK}:{self.port + 1}"

    def token(self) -> str:
        match = re.search(r"API token: +(\S+)", self.printed)
        assert match, self.printed
        return match.group(1)

    def curl_lines(self) -> list[str]:
        """The commands under "Try it:", continuation lines joined."""
        block = self.printed.split("Try it:", 1)[1].split("\n\n", 1)[0]
        return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def _two_free_ports() -> int:
    """A port that is free, with the next one free too (the demo article's)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind((LOOPBACK, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free ports in a row")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def make_run(env: dict[str, str], tmp_path: Path) -> Iterator[Demo]:
    """scripts/run-demo.sh as `make run` runs it, on fresh ports; stopped as Ctrl-C does."""
    port = _two_free_ports()
    output = tmp_path / f"make-run-{port}.log"
    variables = {**env, "HOST": LOOPBACK, "PORT": str(port), "BIN": str(BIN)}
    with output.open("wb") as log:
        process = subprocess.Popen(
            ["./scripts/run-demo.sh"],
            cwd=PROJECT_ROOT,
            env=variables,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    demo = Demo(port, output)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        base, article = f"http://{LOOPBACK}:{port}", f"http://{LOOPBACK}:{port + 1}"
        while not (_answers(base + "/healthz") and _answers(article + "/article.html")):
            assert process.poll() is None, demo.printed
            assert time.monotonic() < deadline, demo.printed
            time.sleep(0.2)
        yield demo
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _run(line: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-c", line], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
    return done.stdout


def test_the_demo_works_as_printed_and_again_on_another_port(tmp_path: Path) -> None:
    env = base_env()
    env["COMMENTSVC_ENV_FILE"] = str(tmp_path / "instance" / "commentsvc.env")
    env["COMMENTSVC_DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo.db'}"
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"

    with make_run(env, tmp_path) as first:
        posted, pending, approved, thread = first.curl_lines()
        created = json.loads(_run(posted, env))
        assert created["status"] == "pending"
        assert [c["id"] for c in json.loads(_run(pending, env))["comments"]] == [created["id"]]
        assert json.loads(_run(approved, env))["status"] == "approved"
        assert [c["body"] for c in json.loads(_run(thread, env))["comments"]] == ["First!"]
        listed = _run("commentsvc sites list", env)  # reads the demo's settings file
        assert re.search(rf"^demo\t.*http://{LOOPBACK}:{first.port + 1}\b", listed, re.M)
        assert re.search(r"^demo\t.*\tmarkup=markdown\t", listed, re.M)
        # The demo article holds its thread, included from the service as nginx's SSI would.
        page = requests.get(f"{first.article}/article.html", timeout=TIMEOUT).text
        assert re.search(r'<div id="comments"[^>]*>\s*<section class="commentsvc-thread"', page)
        assert 'data-markup="markdown"' in page
        token = first.token()
    settings = (tmp_path / "instance" / "commentsvc.env").read_text("utf-8")
    assert "COMMENTSVC_ENV=development" in settings
    assert re.search(r"^COMMENTSVC_SECRET_KEY=[0-9a-f]{64}$", settings, re.M)
    assert (tmp_path / "instance" / "commentsvc.env").stat().st_mode & 0o077 == 0

    with make_run(env, tmp_path) as second:
        assert second.port != first.port
        assert second.token() == token
        assert re.search(r"\tmarkup=markdown\t", _run("commentsvc sites list", env))
        article = second.article
        answer = requests.get(
            f"http://{LOOPBACK}:{second.port}/api/v1/sites/demo/comments?page=/hello",
            headers={"Origin": article},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200
        assert answer.headers["Access-Control-Allow-Origin"] == article
    assert settings == (tmp_path / "instance" / "commentsvc.env").read_text("utf-8")
    tokens = _run("commentsvc tokens create demo@example.com --name probe", env)
    assert tokens  # the command still works after the demo stopped
