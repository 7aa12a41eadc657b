"""What gunicorn's master and a serving worker load: each import left out here is memory
that every process of a server would otherwise hold for nothing (issue 18's memory target:
master and two workers under 200 MiB)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from commentsvc import PROJECT_ROOT

#: Packages only the command line uses (Flask-Migrate brings Alembic and Mako), only a feed
#: uses (feedgen brings lxml and dateutil), or only minifying the widget uses (calmjs, run
#: in a helper process).
NOT_SERVING = ("alembic", "flask_migrate", "mako", "feedgen", "lxml", "calmjs", "commentsvc.cli")
#: What the master needs none of: it reads the settings and forks. Flask (with Werkzeug,
#: Jinja and Click) held there would be about 7 MiB of its RSS: each worker imports its own
#: after the fork, and counts those pages in its RSS either way.
NOT_IN_MASTER = (
    "flask",
    "werkzeug",
    "jinja2",
    "click",
    "sqlalchemy",
    "flask_sqlalchemy",
    "wtforms",
    "commentsvc.models",
    *NOT_SERVING,
)


def probe_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    return {
        **{name: value for name, value in os.environ.items() if not name.startswith("COMMENTSVC_")},
        "COMMENTSVC_ENV_FILE": os.devnull,
        "COMMENTSVC_DATABASE_URL": f"sqlite:///{tmp_path / 'footprint.db'}",
        "COMMENTSVC_SECRET_KEY": "footprint-test-secret-key-of-enough-length",
        "COMMENTSVC_LOG_LEVEL": "WARNING",
        **settings,
    }


def loaded_after(code: str, tmp_path: Path, **settings: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code`` in the project root."""
    probe = textwrap.dedent(code) + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        env=probe_env(tmp_path, **settings),
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def held(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(p for p in packages if any(m == p or m.startswith(f"{p}.") for m in modules))


def test_gunicorns_master_loads_neither_the_models_nor_the_database_toolkit(
    tmp_path: Path,
) -> None:
    """Also when the settings it checks name a Redis and an SMTP server: checking those
    loads what uses them, in a child process (serving.check_settings_apart)."""
    modules = loaded_after(
        """
        import runpy
        import gunicorn.arbiter
        config = runpy.run_path("gunicorn.conf.py")
        import commentsvc.worker
        config["on_starting"](None)
        """,
        tmp_path,
        COMMENTSVC_RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",
        COMMENTSVC_SMTP_URL="smtp://127.0.0.1:1",
        COMMENTSVC_MAIL_FROM="comments@example.com",
        COMMENTSVC_PUBLIC_URL="https://comments.example.com",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    assert "commentsvc.serving" in modules and "commentsvc.settings" in modules
    assert held(modules, (*NOT_IN_MASTER, "limits", "redis", "commentsvc.mail")) == []


def test_a_bad_setting_stops_gunicorns_master_with_its_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy; runpy.run_path('gunicorn.conf.py')['on_starting'](None)",
        ],
        cwd=PROJECT_ROOT,
        env=probe_env(tmp_path, COMMENTSVC_RATELIMIT_STORAGE_URI="http://x"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 4
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("commentsvc: configuration error: COMMENTSVC_RATELIMIT_STORAGE_URI: ")


def test_a_serving_worker_loads_no_command_line_feed_or_minifier_code(tmp_path: Path) -> None:
    modules = loaded_after(
        """
        import wsgi
        from commentsvc.extensions import db
        with wsgi.app.app_context():
            db.create_all()
        client = wsgi.app.test_client()
        assert client.get("/widget.js").status_code == 200
        assert client.get("/healthz").status_code == 200
        """,
        tmp_path,
    )
    assert "commentsvc.widget" in modules and "commentsvc.api.public" in modules
    assert held(modules, NOT_SERVING) == []
