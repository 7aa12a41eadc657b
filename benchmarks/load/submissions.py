"""After a submit workload: every request answered 201, every comment acknowledged stored,
each id once, pending, and flagged by no abuse rule."""

from __future__ import annotations

import time
from collections import Counter
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
    #: Stored with a reason from an abuse rule (all of the benchmark's comments are clean).
    flagged: int
    counted_pages: int
    #: Answers other than 201 (409 duplicate, 429 limited, 5xx…), by status.
    refused: dict[int, int]
    #: The status that acknowledges a stored submission (Isso answers 202 for a pending one).
    status: int = 201

    @classmethod
    def compare(
        cls,
        runs: Sequence[WrkRun],
        stored_ids: Sequence[int],
        connections: int,
        *,
        not_pending: int,
        flagged: int,
        counted_pages: int,
        status: int = 201,
    ) -> SubmitCheck:
        """What wrk saw acknowledged with ``status`` over ``runs`` against the ids of the
        comments stored on their pages (and what else the store says of them)."""
        acknowledged_ids = [comment_id for run in runs for comment_id in run.ids]
        acknowledged, stored = set(acknowledged_ids), set(stored_ids)
        refused: Counter[int] = Counter()
        for run in runs:
            refused.update({code: n for code, n in run.statuses.items() if code != status})
        return cls(
            acknowledged=sum(run.statuses.get(status, 0) for run in runs),
            acknowledged_ids=len(acknowledged_ids),
            stored=len(stored_ids),
            lost=len(acknowledged - stored),
            duplicated=len(acknowledged_ids) - len(acknowledged),
            abandoned=len(stored - acknowledged),
            abandoned_bound=connections * len(runs),
            not_pending=not_pending,
            flagged=flagged,
            counted_pages=counted_pages,
            refused=dict(refused),
            status=status,
        )

    @property
    def ok(self) -> bool:
        """Nothing lost or doubled, and only what wrk abandoned in flight stored beyond."""
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.acknowledged == self.acknowledged_ids
            and 0 <= self.abandoned <= self.abandoned_bound
            and self.not_pending == 0
            and self.flagged == 0
            and self.counted_pages == 0
            and not self.refused
        )

    def describe(self) -> str:
        """The verdict and its figures, as one sentence of the report."""
        verdict = "OK" if self.ok else "FAILED"
        refused = ", ".join(f"{n:,} x {status}" for status, n in sorted(self.refused.items()))
        refused = refused or "none"
        return (
            f"{verdict}: {self.acknowledged:,} comments acknowledged with {self.status} over all"
            f" submit runs (warm-ups included), {self.stored:,} stored on the run's pages;"
            f" {self.lost} acknowledged but not stored, {self.duplicated} ids acknowledged twice,"
            f" {self.abandoned} stored for requests wrk abandoned in flight when its time was up"
            f" (at most {self.abandoned_bound}: one per connection and run),"
            f" {self.not_pending} not pending, {self.flagged} flagged by an abuse rule,"
            f" {self.counted_pages} pages with a nonzero approved count;"
            f" answers other than {self.status}: {refused}."
        )


def check_submissions(
    database_url: str, tag: str, runs: Sequence[WrkRun], connections: int
) -> SubmitCheck:
    """Compare what the database holds on the run's pages with what was acknowledged."""
    time.sleep(1.0)  # requests wrk abandoned may still be finishing
    engine = sa.create_engine(database_url, poolclass=NullPool)
    pattern = f"/load/{tag}-%"
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT comments.id, comments.status, comments.spam_reasons FROM comments"
                " JOIN pages ON pages.id = comments.page_id WHERE pages.key LIKE :pattern"
            ),
            {"pattern": pattern},
        ).all()
        counted = connection.execute(
            sa.text("SELECT count(*) FROM pages WHERE key LIKE :pattern AND approved_count <> 0"),
            {"pattern": pattern},
        ).scalar_one()
    engine.dispose()
    return SubmitCheck.compare(
        runs,
        [comment_id for comment_id, _, _ in rows],
        connections,
        not_pending=sum(status != "pending" for _, status, _ in rows),
        flagged=sum(bool(reasons) for _, _, reasons in rows),
        counted_pages=counted,
    )
