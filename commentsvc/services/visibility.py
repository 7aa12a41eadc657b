"""What the public may see of comments (DESIGN §3, §8): one rule for every public read.

A comment is public while it is ``approved``, and then only through :data:`PUBLIC_COLUMNS`:
never its author's email, its client facts, its spam verdict or its moderation history.
The thread and one published comment (:mod:`~commentsvc.services.threads`), the Atom feeds
(:mod:`~commentsvc.services.feeds`) and a page's URL and title
(:mod:`~commentsvc.services.pages`) select with :data:`PUBLISHED`. The counts read
``Page.approved_count``, the number of a page's comments :data:`PUBLISHED` selects: whoever
moves a comment into or out of ``approved`` updates it (and bumps ``Page.version``) in the
same transaction (:mod:`~commentsvc.services.moderation`,
:mod:`~commentsvc.services.submissions`). tests/api/test_visibility.py walks every public
path with a comment of each other status.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from commentsvc.models import Comment, CommentStatus

#: The visibility rule as SQL: approved comments only. An equality on ``status``, so the
#: thread's index ``(page_id, status, id)`` and the site's ``(site_id, status, id)`` serve it.
PUBLISHED = Comment.status == CommentStatus.APPROVED


def published(comment: type[Comment] | Any) -> sa.ColumnElement[bool]:
    """:data:`PUBLISHED` of another name for the comments table (an alias: a parent)."""
    return comment.status == CommentStatus.APPROVED


#: What readers see of a comment (never an email or client facts).
PUBLIC_COLUMNS = (
    Comment.id,
    Comment.parent_id,
    Comment.author_name,
    Comment.author_url,
    Comment.body,
    Comment.body_html,
    Comment.created_at,
)
