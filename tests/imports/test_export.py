"""``commentsvc export`` and ``commentsvc import commentsvc``: a site out and into an empty
one gives the same threads, texts, statuses and times; the export is versioned JSON Lines."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from commentsvc.extensions import db
from commentsvc.imports import loader
from commentsvc.imports.export import export_jsonl
from commentsvc.models import Comment, CommentStatus, Page, Site
from tests.imports.test_wordpress_import import SAMPLE


def thread_of(app: Flask, slug: str) -> list[tuple[object, ...]]:
    """The site's comments as (page key, parent's body, status, body, author, email, time),
    oldest first: what must survive a round trip (ids change)."""
    with app.app_context():
        site_id = db.session.scalar(sa.select(Site.id).where(Site.slug == slug))
        parent = sa.orm.aliased(Comment)
        rows = db.session.execute(
            sa.select(
                Page.key,
                parent.body,
                Comment.status,
                Comment.body,
                Comment.author_name,
                Comment.author_email,
                Comment.author_url,
                Comment.created_at,
            )
            .join(Page, Page.id == Comment.page_id)
            .outerjoin(parent, parent.id == Comment.parent_id)
            .where(Comment.site_id == site_id)
            .order_by(Comment.created_at, Comment.id)
        ).all()
        return [tuple(row) for row in rows]


def test_export_then_import_into_an_empty_site_gives_the_same_threads(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, make_comment: object
) -> None:
    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
        assert site is not None
        site.origins = ["https://news.example"]
        db.session.commit()
    assert runner.invoke(args=["import", "wordpress", str(SAMPLE), "--site", "news"]).exit_code == 0
    exported = tmp_path / "news.jsonl"
    result = runner.invoke(args=["export", "--site", "news", "--output", str(exported)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in exported.read_text("utf-8").splitlines()]
    header, *rest = lines
    assert header["format"] == "commentsvc" and header["version"] == 1
    assert header["site"]["slug"] == "news"
    assert [line["type"] for line in rest] == ["page", "page"] + ["comment"] * 5
    assert {line["status"] for line in rest if line["type"] == "comment"} == {
        "approved",
        "pending",
        "spam",
    }
    result = runner.invoke(args=["import", "commentsvc", str(exported), "--site", "blog"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "imported 5 comments (3 approved, 1 pending, 1 spam) on 2 pages; skipped 0; 0 already there"
    )
    assert thread_of(app, "blog") == thread_of(app, "news")
    again = runner.invoke(args=["import", "commentsvc", str(exported), "--site", "blog"])
    assert "5 already there" in again.output


def test_the_export_of_an_unknown_site_is_refused(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["export", "--site", "nope"])
    assert result.exit_code == 1
    assert "There is no site 'nope'." in result.output


def test_small_batches_read_and_write_the_same(
    app: Flask, runner: FlaskCliRunner, monkeypatch: object
) -> None:
    """Batches of two: staging, keyset paging by time and the duplicate checks across
    batches work as with one batch."""
    monkeypatch.setattr(loader, "BATCH", 2)  # type: ignore[attr-defined]
    result = runner.invoke(args=["import", "wordpress", str(SAMPLE), "--site", "news"])
    assert result.exit_code == 0, result.output
    assert "imported 5 comments (3 approved, 1 pending, 1 spam) on 2 pages" in result.output
    with app.app_context():
        times = list(db.session.scalars(sa.select(Comment.created_at).order_by(Comment.id)))
        assert times == sorted(times)  # oldest first, whatever the file's order
        statuses = set(db.session.scalars(sa.select(Comment.status)))
        assert CommentStatus.SPAM in statuses


def test_standard_output_gets_the_same_utf_8_lines_as_a_file(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    assert runner.invoke(args=["import", "wordpress", str(SAMPLE), "--site", "news"]).exit_code == 0
    exported = tmp_path / "news.jsonl"
    written = runner.invoke(args=["export", "--site", "news", "--output", str(exported)])
    assert written.exit_code == 0, written.output

    printed = runner.invoke(args=["export", "--site", "news"])

    assert printed.exit_code == 0, printed.output
    # The header's exported_at differs; every line after it is the same.
    assert printed.stdout_bytes.splitlines()[1:] == exported.read_bytes().splitlines()[1:]
    assert "Zoë Ångström".encode() in printed.stdout_bytes


def test_an_export_abandoned_halfway_ends_its_read_transaction(
    app: Flask, runner: FlaskCliRunner
) -> None:
    """A closed pipe or a full disk stops the command: closing the lines closes the cursor
    (on PostgreSQL a server-side one) and ends the transaction they were read in."""
    assert runner.invoke(args=["import", "wordpress", str(SAMPLE), "--site", "news"]).exit_code == 0
    with app.app_context():
        lines = export_jsonl("news")
        kinds = [json.loads(next(lines)).get("type") for _ in range(4)]
        assert kinds == [None, "page", "page", "comment"]  # the header, then the rows
        assert db.session().in_transaction()

        lines.close()

        assert not db.session().in_transaction()
