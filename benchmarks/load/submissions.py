"""After the submit workload: every comment acknowledged with 201 is stored, each id once."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from benchmarks.load.wrk import WrkRun


@dataclass(frozen=True)
class SubmitCheck:
    """What the database holds on the run's pages against what wrk saw acknowledged."""

    acknowledged: int
    acknowledged_ids: int
    stored: int
    lost: int
    duplicated: int
    abandoned: int
    abandoned_bound: int
    not_pending: int
    counted_pages: int

    @property
    def ok(self) -> bool:
        """Nothing lost or doubled, and only what wrk abandoned in flight stored beyond."""
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.acknowledged == self.acknowledged_ids
            and 0 <= self.abandoned <= self.abandoned_bound
            and self.not_pending == 0
            and self.counted_pages == 0
        )

    def describe(self) -> str:
        """The verdict and its figures, as one sentence of the report."""
        verdict = "OK" if self.ok else "FAILED"
        return (
            f"{verdict}: {self.acknowledged:,} comments acknowledged with 201 over all submit runs"
            f" (warm-ups included), {self.stored:,} stored on the run's pages;"
            f" {self.lost} acknowledged but not stored, {self.duplicated} ids acknowledged twice,"
            f" {self.abandoned} stored for requests wrk abandoned in flight when its time was up"
            f" (at most {self.abandoned_bound}: one per connection and run),"
            f" {self.not_pending} not pending,"
            f" {self.counted_pages} pages with a nonzero approved count."
        )


def check_submissions(
    database_url: str, tag: str, runs: Sequence[WrkRun], connections: int
) -> SubmitCheck:
    """Compare what the database holds on the run's pages with what was acknowledged."""
    time.sleep(1.0)  # requests wrk abandoned may still be finishing
    acknowledged_ids = [comment_id for run in runs for comment_id in run.ids]
    engine = sa.create_engine(database_url, poolclass=NullPool)
    pattern = f"/load/{tag}-%"
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT comments.id, comments.status FROM comments"
                " JOIN pages ON pages.id = comments.page_id WHERE pages.key LIKE :pattern"
            ),
            {"pattern": pattern},
        ).all()
        counted = connection.execute(
            sa.text("SELECT count(*) FROM pages WHERE key LIKE :pattern AND approved_count <> 0"),
            {"pattern": pattern},
        ).scalar_one()
    engine.dispose()
    stored = {comment_id for comment_id, _ in rows}
    acknowledged = set(acknowledged_ids)
    return SubmitCheck(
        acknowledged=sum(run.statuses.get(201, 0) for run in runs),
        acknowledged_ids=len(acknowledged_ids),
        stored=len(rows),
        lost=len(acknowledged - stored),
        duplicated=len(acknowledged_ids) - len(acknowledged),
        abandoned=len(stored - acknowledged),
        abandoned_bound=connections * len(runs),
        not_pending=sum(status != "pending" for _, status in rows),
        counted_pages=counted,
    )
