"""What a page is called and where it is: the URL and title of its newest approved comment
that gave them (DESIGN §4).

A submission keeps the URL and title it was sent on its comment; the page takes them from
its approved comments only, so a comment that ends up spam, rejected or deleted never
names a page. Whoever moves comments of a page into or out of ``approved`` recomputes it
in the same transaction (migration ``0004_hardening`` applied the same rule once).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute

from commentsvc.models import Comment, Page
from commentsvc.services.visibility import PUBLISHED


def _newest_approved(column: InstrumentedAttribute[str | None]) -> sa.ScalarSelect[Any]:
    """The ``column`` of the page's newest approved comment that has one (correlated to
    the page being updated; on the thread index)."""
    return (
        sa.select(column)
        .where(
            Comment.page_id == Page.id,
            PUBLISHED,
            column.is_not(None),
        )
        .order_by(Comment.id.desc())
        .limit(1)
        .scalar_subquery()
    )


#: The values of an UPDATE of pages that describe each from its approved comments.
DESCRIPTION: dict[str, sa.ScalarSelect[Any]] = {
    "url": _newest_approved(Comment.page_url),
    "title": _newest_approved(Comment.page_title),
}

#: Describe the pages with the ids ``page_ids``, all of them in one statement.
DESCRIBE_PAGES = (
    sa.update(Page)
    .where(Page.id.in_(sa.bindparam("page_ids", expanding=True)))
    .values(DESCRIPTION)
    .execution_options(synchronize_session=False)
)
