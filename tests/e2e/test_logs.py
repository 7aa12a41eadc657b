"""What gunicorn and the service write to their log, over real HTTP: in the JSON format every
line is one JSON object, gunicorn's own lines included; in either format no query string
is written (README: "Bodies, query strings, emails and tokens are never logged")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import Template, serve

SECRET_QUERY = "token=hush-7c1f"
TIMEOUT = 10


def _visit(base_url: str) -> None:
    thread = f"{base_url}/api/v1/sites/e2e/comments?page=/logs&{SECRET_QUERY}"
    assert requests.get(thread, timeout=TIMEOUT).status_code == 200
    missing = f"{base_url}/nowhere?{SECRET_QUERY}"
    assert requests.get(missing, timeout=TIMEOUT).status_code == 404


def test_every_line_is_json_gunicorns_own_too(template: Template, tmp_path: Path) -> None:
    with serve(template, tmp_path) as server:
        _visit(server.base_url)
        gunicorn = server.gunicorn
    lines = [line for line in gunicorn.log_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # raises on a line that is not JSON
    assert all(isinstance(record, dict) for record in records)
    loggers = {record["logger"] for record in records}
    assert "gunicorn.error" in loggers and "commentsvc.request" in loggers
    started = [r for r in records if r["message"].startswith("Listening at: ")]
    assert started and started[0]["level"] == "INFO" and "time" in started[0]
    requests_logged = [r for r in records if r["logger"] == "commentsvc.request"]
    assert {(r["path"], r["status"]) for r in requests_logged} >= {
        ("/api/v1/sites/e2e/comments", 200),
        ("/nowhere", 404),
    }
    assert SECRET_QUERY not in gunicorn.log_text()
    assert not any(r["logger"] == "gunicorn.access" for r in records)  # off by default


def test_the_access_log_when_asked_for_is_json_too(template: Template, tmp_path: Path) -> None:
    with serve(template, tmp_path, GUNICORN_ACCESS_LOG="-") as server:
        _visit(server.base_url)
        gunicorn = server.gunicorn
    records = [json.loads(line) for line in gunicorn.log_text().splitlines() if line.strip()]
    access = [r["message"] for r in records if r["logger"] == "gunicorn.access"]
    assert any('"GET /nowhere HTTP/1.1" 404' in message for message in access), access
    assert SECRET_QUERY not in gunicorn.log_text()


@pytest.mark.parametrize("access_log", ["off", "-"])
def test_text_lines_carry_the_request_fields_and_no_query_string_even_in_the_access_log(
    template: Template, tmp_path: Path, access_log: str
) -> None:
    with serve(
        template, tmp_path, COMMENTSVC_LOG_FORMAT="text", GUNICORN_ACCESS_LOG=access_log
    ) as server:
        _visit(server.base_url)
        gunicorn = server.gunicorn
    text = gunicorn.log_text()
    [line] = [line for line in text.splitlines() if "path=/nowhere" in line]
    assert "commentsvc.request" in line and "method=GET" in line and "status=404" in line
    assert "request_id=" in line and "duration_ms=" in line
    assert SECRET_QUERY not in text
    assert ('"GET /nowhere HTTP/1.1" 404' in text) == (access_log == "-")
