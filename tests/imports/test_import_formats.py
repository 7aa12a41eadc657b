"""Every format through ``commentsvc import``: each hand-checked sample gives its summary
line, and a second run adds nothing (the readers' own tests check the records)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from commentsvc.extensions import db
from commentsvc.models import Comment, ImportRecord

SAMPLES = Path(__file__).parent / "samples"


@pytest.mark.parametrize(
    ("source", "sample", "summary"),
    [
        (
            "disqus",
            "disqus/export.xml",
            "imported 6 comments (4 approved, 1 pending, 1 spam) on 2 pages; skipped 3 "
            "(2 deleted, 1 empty); 0 already there; 1 replies without their parent made "
            "top-level",
        ),
        (
            "remark42",
            "remark42/backup.jsonl",
            "imported 5 comments (5 approved, 0 pending, 0 spam) on 2 pages; skipped 2 "
            "(2 deleted); 0 already there; 1 replies without their parent made top-level",
        ),
        (
            "commento",
            "commento/export.json",
            "imported 5 comments (3 approved, 1 pending, 1 spam) on 2 pages; skipped 2 "
            "(2 deleted); 0 already there; 1 replies without their parent made top-level",
        ),
    ],
)
def test_each_format_imports_once(
    app: Flask, runner: FlaskCliRunner, source: str, sample: str, summary: str
) -> None:
    path = str(SAMPLES / sample)
    first = runner.invoke(args=["import", source, path, "--site", "news"])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == summary
    with app.app_context():
        recorded = db.session.scalar(sa.select(sa.func.count()).select_from(ImportRecord))
        stored = db.session.scalar(sa.select(sa.func.count()).select_from(Comment))
        assert recorded == stored == int(summary.split()[1])
        # Whatever HTML the sample holds, none of it reaches a reader.
        assert not any(
            "<script" in html for html in db.session.scalars(sa.select(Comment.body_html))
        )
    again = runner.invoke(args=["import", source, path, "--site", "news"])
    assert f"; {stored} already there" in again.output
