"""Every format through ``commentsvc import``: each hand-checked sample gives its summary
line, and a second run adds nothing (the readers' own tests check the records); bodies are
rendered in the site's markup."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from commentsvc.extensions import db
from commentsvc.imports import loader
from commentsvc.imports.records import BodyFormat, SourceComment, SourcePage, SourceStatus
from commentsvc.markup import Markup, render
from commentsvc.models import Comment, ImportRecord, Site
from commentsvc.services.sites import markup_of, set_markup

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


def test_imports_render_in_the_sites_markup(app: Flask, runner: FlaskCliRunner) -> None:
    """Each imported body is rendered as a new comment on its site would be: on a Markdown
    site as Markdown (Remark42's typed Markdown, and the plain text of an HTML comment
    alike), on a text site as plain text."""
    with app.app_context():
        set_markup("news", Markup.MARKDOWN)
    typed = "Run `make test` first, *then* ship."
    records = [
        SourceComment(
            "html-1",
            SourcePage("/a"),
            datetime(2025, 10, 1, tzinfo=UTC),
            SourceStatus.APPROVED,
            f"<p>{typed}</p>",
            BodyFormat.HTML,
            "Ada",
        )
    ]
    remark42 = str(SAMPLES / "remark42" / "backup.jsonl")
    for slug in ("news", "blog"):
        result = runner.invoke(args=["import", "remark42", remark42, "--site", slug])
        assert result.exit_code == 0, result.output
        with app.app_context():
            loader.import_records(slug, "test", records)
    with app.app_context():
        rows = db.session.execute(
            sa.select(Site.slug, Site.settings, Comment.body, Comment.body_html).join(
                Site, Site.id == Comment.site_id
            )
        ).all()
    html = {(row.slug, row.body): row.body_html for row in rows}
    assert html["news", typed] == "<p>Run <code>make test</code> first, <em>then</em> ship.</p>"
    assert html["blog", typed] == f"<p>{typed}</p>"
    right = "Still here & still *right*."  # Remark42's Markdown, as typed
    assert html["news", right] == "<p>Still here &amp; still <em>right</em>.</p>"
    assert html["blog", right] == "<p>Still here &amp; still *right*.</p>"
    # Every one exactly as a new comment with its text would be rendered on its site.
    assert all(row.body_html == render(row.body, markup_of(row.settings)) for row in rows)
