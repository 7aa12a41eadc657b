"""The operational surface: request ids, JSON request logs, metrics, 503 when the database is
unavailable, backups and restores."""

from __future__ import annotations

import json
import logging
import os
import re
import runpy
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from flask_migrate.cli import db as db_group

from commentsvc import create_app
from commentsvc.cli import register_commands
from commentsvc.models import CommentStatus
from tests.conftest import ORIGIN, valid_submission

SUBMIT = "/api/v1/sites/news/comments"
SUBMIT_ROUTE = "/api/v1/sites/<site_slug>/comments"


def request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "commentsvc.request"]


def as_json_line(record: logging.LogRecord) -> str:
    """The record as the service writes it: through the root handler the app installed."""
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == "commentsvc"]
    line = handler.format(record)
    assert "\n" not in line
    return line


# --- request ids and logs ---------------------------------------------------------------------


def test_every_response_carries_a_request_id(client) -> None:  # type: ignore[no-untyped-def]
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_a_sane_incoming_request_id_is_kept_and_a_hostile_one_replaced(client) -> None:  # type: ignore[no-untyped-def]
    kept = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
    assert kept.headers["X-Request-ID"] == "lb-7f3a.42"
    for hostile in ('x", "level": "ERROR', "<script>", "a" * 129):
        replaced = client.get("/healthz", headers={"X-Request-ID": hostile})
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-ID"])


def test_one_json_line_per_request_without_bodies_emails_or_tokens(
    client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    make_token: Callable[..., str],
) -> None:
    token = make_token()
    caplog.set_level(logging.INFO, logger="commentsvc.request")
    submission = valid_submission(body="A very private thought", author_email="secret@mail.example")
    created = client.post(SUBMIT, json=submission, headers={"Origin": ORIGIN})
    assert created.status_code == 201
    listed = client.get(
        "/api/v1/moderation/comments?q=secret@mail.example",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert listed.status_code == 200

    records = request_records(caplog)
    assert len(records) == 2
    lines = [json.loads(as_json_line(record)) for record in records]
    assert lines[0] == {
        "level": "INFO",
        "logger": "commentsvc.request",
        "message": "request",
        "request_id": created.headers["X-Request-ID"],
        "method": "POST",
        "path": SUBMIT,
        "route": SUBMIT_ROUTE,
        "status": 201,
        "duration_ms": lines[0]["duration_ms"],
        "remote_addr": "127.0.0.1",
        "time": lines[0]["time"],
    }
    assert 0 < lines[0]["duration_ms"] < 10_000
    assert lines[1]["path"] == "/api/v1/moderation/comments"
    everything = "\n".join(as_json_line(record) for record in records)
    for secret in ("private thought", "secret@mail.example", token, "Ada Lovelace"):
        assert secret not in everything


def test_log_lines_written_during_a_request_carry_its_id(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with app.test_request_context("/"):
        app.preprocess_request()
        app.logger.warning("something to look into")
        (record,) = [r for r in caplog.records if r.getMessage() == "something to look into"]
        line = json.loads(as_json_line(record))
        from flask import g

        assert line["request_id"] == g.request_id


def text_logging_app(tmp_path: Path) -> tuple[Flask, logging.Handler]:
    """An app logging as text, and the handler it installed."""
    app = create_app(
        {
            "ENV": "testing",
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": f"sqlite:///{tmp_path}/text.db",
            "LOG_FORMAT": "text",
        }
    )
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == "commentsvc"]
    return app, handler


def test_text_log_format_for_reading_by_eye(tmp_path: Path) -> None:
    app, handler = text_logging_app(tmp_path)
    record = logging.LogRecord("commentsvc", logging.INFO, __file__, 1, "hello", None, None)
    assert handler.format(record).endswith("INFO commentsvc: hello")
    assert app.config["LOG_FORMAT"] == "text"


def test_text_log_lines_keep_every_request_field_and_no_query_string(tmp_path: Path) -> None:
    """The text format once wrote a request as just ``request``."""
    app, handler = text_logging_app(tmp_path)
    lines: list[str] = []
    capture = logging.Handler()
    capture.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    logger = logging.getLogger("commentsvc.request")
    logger.addHandler(capture)
    try:
        app.test_client().get("/healthz?token=secret-in-the-query", headers={"X-Request-ID": "r-1"})
    finally:
        logger.removeHandler(capture)
    (line,) = lines
    assert "INFO commentsvc.request: request request_id=r-1 method=GET path=/healthz" in line
    assert re.search(
        r" route=/healthz status=200 duration_ms=[0-9.]+ remote_addr=127\.0\.0\.1$", line
    )
    assert "secret-in-the-query" not in line


# --- metrics ----------------------------------------------------------------------------------


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text; 0 when it is absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        sample_name, _, label_text = sample.partition("{")
        found = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if sample_name == name and found == wanted:
            return float(value)
    return 0.0


def test_metrics_count_requests_by_route_and_status(client: FlaskClient) -> None:
    before = client.get("/metrics").get_data(as_text=True)
    labels = {"method": "POST", "route": SUBMIT_ROUTE}
    for i in range(3):
        assert client.post(SUBMIT, json=valid_submission(body=f"Comment {i}")).status_code == 201
    assert client.post(SUBMIT, json=valid_submission(author_email="no")).status_code == 422
    after = client.get("/metrics")
    assert after.status_code == 200
    assert after.headers["Content-Type"].startswith("text/plain")
    assert after.headers["Cache-Control"] == "no-store"
    text = after.get_data(as_text=True)
    total = "commentsvc_http_requests_total"
    assert metric(text, total, status="201", **labels) - metric(
        before, total, status="201", **labels
    ) == pytest.approx(3)
    assert metric(text, total, status="422", **labels) - metric(
        before, total, status="422", **labels
    ) == pytest.approx(1)
    count = "commentsvc_http_request_duration_seconds_count"
    assert metric(text, count, **labels) - metric(before, count, **labels) == pytest.approx(4)
    assert "commentsvc_http_request_duration_seconds_bucket" in text


def test_metrics_label_sets_stay_bounded(client) -> None:  # type: ignore[no-untyped-def]
    """Methods a client invents are counted as "other", and unknown paths as one route."""
    before = client.get("/metrics").get_data(as_text=True)
    for method in ("BREW", "WHEN", "GET"):
        response = client.open(f"/no/such/{method}", method=method)
        assert response.status_code in {404, 405}
    text = client.get("/metrics").get_data(as_text=True)
    total = "commentsvc_http_requests_total"
    other = {"method": "other", "route": "unmatched", "status": "404"}
    get = {"method": "GET", "route": "unmatched", "status": "404"}
    assert metric(text, total, **other) - metric(before, total, **other) == pytest.approx(2)
    assert metric(text, total, **get) - metric(before, total, **get) == pytest.approx(1)
    assert 'method="BREW"' not in text
    assert "/no/such" not in text


def test_metrics_report_comments_by_status(
    client: FlaskClient,
    make_comment: Callable[..., int],
) -> None:
    for status, n in ((CommentStatus.PENDING, 3), (CommentStatus.APPROVED, 2)):
        for _ in range(n):
            make_comment(status=status)
    text = client.get("/metrics").get_data(as_text=True)
    assert metric(text, "commentsvc_comments", status="pending") == 3
    assert metric(text, "commentsvc_comments", status="approved") == 2
    assert metric(text, "commentsvc_comments", status="spam") == 0
    assert "# TYPE commentsvc_comments gauge" in text


def test_metrics_token_when_configured(app: Flask) -> None:
    app.config["METRICS_TOKEN"] = "scrape-me-please"
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    allowed = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"})
    assert allowed.status_code == 200
    assert "commentsvc_comments" in allowed.get_data(as_text=True)


# --- the database unavailable -----------------------------------------------------------------


@pytest.mark.sqlite_only
def test_an_unreachable_database_gives_503_problem_json_not_500(tmp_path: Path) -> None:
    app = create_app(
        {
            "ENV": "testing",
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": f"sqlite:///{tmp_path}/no/such/dir/x.db",
        }
    )
    client = app.test_client()
    for response in (
        client.post(SUBMIT, json=valid_submission()),
        client.get(f"{SUBMIT}?page=/a"),
        client.get("/readyz"),
    ):
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert response.json is not None and response.json["status"] == 503
    submitted = client.post(SUBMIT, json=valid_submission())
    assert submitted.headers["Retry-After"] == "5"
    assert "database" in submitted.get_json()["detail"]
    panel = client.get("/moderation/login")
    assert panel.status_code in (200, 503)  # the login page itself needs no database
    assert client.get("/healthz").status_code == 200  # liveness does no I/O


@pytest.mark.sqlite_only
def test_a_locked_sqlite_database_gives_503_then_recovers_with_nothing_half_stored(
    tmp_path: Path,
) -> None:
    database = tmp_path / "locked.db"
    app = create_app(
        {
            "ENV": "testing",
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": f"sqlite:///{database}",
            "SQLITE_BUSY_TIMEOUT_MS": 200,
        }
    )
    register_commands(app)
    with app.app_context():
        upgrade()
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    runner = app.test_cli_runner()
    assert runner.invoke(args=["sites", "add", "news", "--origin", ORIGIN]).exit_code == 0

    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock (a stuck job)
    try:
        refused = client.post(SUBMIT, json=valid_submission())
        assert refused.status_code == 503, refused.get_data(as_text=True)
        assert refused.mimetype == "application/problem+json"
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    accepted = client.post(SUBMIT, json=valid_submission(body="After the lock"))
    assert accepted.status_code == 201
    with sqlite3.connect(database) as check:
        bodies = [row[0] for row in check.execute("SELECT body FROM comments")]
        pages = check.execute("SELECT count(*) FROM pages").fetchone()[0]
    check.close()
    assert bodies == ["After the lock"]
    assert pages == 1


# --- backups ----------------------------------------------------------------------------------


def test_backup_then_restore_brings_back_exactly_the_backed_up_rows(
    app: Flask,
    runner: FlaskCliRunner,
    make_comment: Callable[..., int],
    comment_count: Callable[[], int],
    tmp_path: Path,
) -> None:
    for _ in range(5):
        make_comment()
    backup = tmp_path / "backups" / "daily" / "commentsvc-backup.db"  # folders made as needed
    made = runner.invoke(db_group, ["backup", str(backup)])
    assert made.exit_code == 0, made.output
    assert "backup written to" in made.output
    assert backup.stat().st_size > 0
    assert [p.name for p in backup.parent.iterdir()] == [backup.name]

    for _ in range(3):
        make_comment()
    assert comment_count() == 8
    again = runner.invoke(db_group, ["backup", str(backup)])
    assert again.exit_code != 0 and "exists" in again.output

    restored = runner.invoke(db_group, ["restore", "--yes", str(backup)])
    assert restored.exit_code == 0, restored.output
    assert comment_count() == 5


def test_restore_refuses_a_file_that_is_not_a_backup(
    runner: FlaskCliRunner, comment_count: Callable[[], int], tmp_path: Path
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    result = runner.invoke(db_group, ["restore", "--yes", str(junk)])
    assert result.exit_code != 0
    assert "Error:" in result.output  # SQLite: "not a SQLite database"; pg_restore's own words
    assert comment_count() == 0


def test_restore_asks_before_replacing(
    runner: FlaskCliRunner, make_comment: Callable[..., int], tmp_path: Path
) -> None:
    make_comment()
    backup = tmp_path / "b.db"
    assert runner.invoke(db_group, ["backup", str(backup)]).exit_code == 0
    answered_no = runner.invoke(db_group, ["restore", str(backup)], input="n\n")
    assert answered_no.exit_code != 0
    assert "Aborted" in answered_no.output


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"WEB_CONCURRENCY": "3"}, lambda cpus: 3),
        ({}, lambda cpus: max(cpus, 2)),
        ({"WEB_CONCURRENCY": ""}, lambda cpus: max(cpus, 2)),  # compose.yaml's default
    ],
)
def test_gunicorn_workers_default_to_one_per_cpu(
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    expected: Callable[[int], int],
) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = runpy.run_path(str(Path(__file__).parent.parent / "gunicorn.conf.py"))
    assert settings["workers"] == expected(len(os.sched_getaffinity(0)))
