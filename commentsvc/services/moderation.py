"""Moderation actions shared by the moderation API and the panel: change, delete, bulk, undo.

Every change goes through :meth:`Changes.apply`, which records the audit event (with the
status the comment had), then changes the comment, then announces it, all in the same
transaction, and keeps the page's public counters (approved count, thread version) true,
and its URL and title those of its approved comments (:mod:`commentsvc.services.pages`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app

from commentsvc.extensions import db, write_transaction
from commentsvc.markup import render
from commentsvc.models import (
    ACTION_STATUS,
    STATUS_ACTION,
    BlocklistKind,
    Comment,
    CommentStatus,
    ModerationAction,
    ModerationEvent,
    Moderator,
    Page,
    is_row_id,
    utcnow,
)
from commentsvc.services import outbox, pages
from commentsvc.services.blocklist import add_in_transaction, can_manage, described
from commentsvc.services.errors import Invalid, NotFound
from commentsvc.services.events import (
    STATUS_EVENT,
    SYSTEM_ACTOR,
    CommentEvent,
    EventType,
    announce,
)
from commentsvc.services.sites import markup_of

#: What a bulk request may do (DESIGN §4); back to pending is a PATCH of one comment.
BULK_ACTIONS = (
    ModerationAction.APPROVE,
    ModerationAction.REJECT,
    ModerationAction.SPAM,
    ModerationAction.DELETE,
)


def bulk_action(value: object) -> ModerationAction:
    """The bulk action ``value`` names; Invalid on ``action`` otherwise."""
    if isinstance(value, str) and value in BULK_ACTIONS:
        return ModerationAction(value)
    raise Invalid.on("action", f"Must be one of: {', '.join(BULK_ACTIONS)}.")


class Changes:
    """One moderation transaction: each change recorded, applied and announced in order;
    the pages' counters, URLs and titles updated once at the end."""

    def __init__(self, moderator: Moderator | None = None, *, actor: str | None = None) -> None:
        """Changes by ``moderator``; without one, by ``actor`` (an administrator at the
        command line), or by the system."""
        self.moderator = moderator
        self.actor = moderator.email if moderator else actor or SYSTEM_ACTOR
        self.now = utcnow()
        self.approved_delta: Counter[int] = Counter()
        #: Pages a comment entered or left ``approved`` on: their description may change
        #: even where the count does not (one approved, another one un-approved).
        self.approved_changed: set[int] = set()

    def apply(
        self,
        comment: Comment,
        action: ModerationAction,
        to_status: CommentStatus | None,
        note: str | None = None,
    ) -> None:
        """Record ``action`` from the comment's status to ``to_status`` (None: deleted),
        then make the change and announce it."""
        self._record(comment, action, to_status, note)
        approved = CommentStatus.APPROVED
        delta = (to_status == approved) - (comment.status == approved)
        self.approved_delta[comment.page_id] += delta
        if to_status != comment.status and approved in (to_status, comment.status):
            self.approved_changed.add(comment.page_id)
        data = None
        if to_status is None:
            data = outbox.snapshot(comment.id)  # what the event tells of it once it is gone
            # Replies keep existing; the foreign key turns their parent_id into NULL.
            db.session.execute(sa.delete(Comment).where(Comment.id == comment.id))
            kind = EventType.DELETED
        elif action == ModerationAction.EDIT:
            comment.updated_at = self.now
            kind = EventType.EDITED
        else:
            comment.status = to_status
            comment.moderated_at = comment.updated_at = self.now
            comment.moderated_by = self.moderator
            kind = STATUS_EVENT[to_status]
        change = CommentEvent(
            kind,
            comment.id,
            comment.site_id,
            comment.page_id,
            to_status,
            self.actor,
            self.now,
            data=data,
        )
        announce(change)

    def _record(
        self,
        comment: Comment,
        action: ModerationAction,
        to_status: CommentStatus | None,
        note: str | None,
    ) -> None:
        """The audit event of a change about to be made (it reads the status it leaves)."""
        event = ModerationEvent(
            comment_id=comment.id,
            site_id=comment.site_id,
            moderator_id=self.moderator.id if self.moderator else None,
            actor=self.actor,
            action=action,
            from_status=comment.status,
            to_status=to_status,
            note=note,
            created_at=self.now,
        )
        db.session.add(event)

    def note(self, comment: Comment, action: ModerationAction, note: str) -> None:
        """Record ``action`` with ``note`` for a comment it does not change (the audit log
        still tells of it; nothing is announced)."""
        self._record(comment, action, comment.status, note)

    def set_status(self, comment: Comment, status: CommentStatus, note: str | None = None) -> bool:
        """Move a comment to ``status``; False (and nothing recorded) if it is there already."""
        if comment.status == status:
            return False
        self.apply(comment, STATUS_ACTION[status], status, note)
        return True

    def finish(self) -> None:
        """Update each changed page's approved count and thread version, then describe the
        pages whose approved comments changed again, in one statement (by then their rows
        are locked in id order, the order every moderation locks them in: no deadlock)."""
        for page_id in sorted(self.approved_delta):
            db.session.execute(
                sa.update(Page)
                .where(Page.id == page_id)
                .values(
                    approved_count=Page.approved_count + self.approved_delta[page_id],
                    version=Page.version + 1,
                )
            )
        if self.approved_changed:
            db.session.flush()  # the statuses the description is read from
            db.session.execute(pages.DESCRIBE_PAGES, {"page_ids": sorted(self.approved_changed)})


def _locked(moderator: Moderator, ids: Iterable[int]) -> dict[int, Comment]:
    """The comments with these ids in the moderator's scope, locked until the commit.

    Concurrent changes of one comment wait for each other and each decides on what the one
    before it stored (PostgreSQL runs write transactions side by side; SQLite has one writer
    and ignores the lock). ``FOR NO KEY UPDATE`` leaves replies free to reference the
    comment; rows are locked in id order, so two bulk actions never deadlock; what the
    session had loaded before is refreshed from the locked rows.
    """
    statement = sa.select(Comment).where(Comment.id.in_([i for i in ids if is_row_id(i)]))
    scope = moderator.site_scope()
    if scope is not None:
        statement = statement.where(Comment.site_id.in_(scope))
    statement = (
        statement.order_by(Comment.id)
        .with_for_update(of=Comment, key_share=True)
        .execution_options(populate_existing=True)
    )
    return {comment.id: comment for comment in db.session.scalars(statement)}


def _one(moderator: Moderator, comment_id: int) -> Comment:
    comment = _locked(moderator, [comment_id]).get(comment_id)
    if comment is None:
        raise NotFound(f"There is no comment {comment_id}.")
    return comment


def update_comment(
    moderator: Moderator,
    comment_id: int,
    status: CommentStatus | None,
    body: str | None,
    note: str | None = None,
) -> None:
    """Change a comment's body and/or status, recording each change."""
    with write_transaction():
        comment = _one(moderator, comment_id)
        changes = Changes(moderator)
        if body is not None and body != comment.body:
            comment.body = body
            comment.body_html = render(body, markup_of(comment.site.settings))
            changes.apply(comment, ModerationAction.EDIT, comment.status, note)
        if status is not None:
            changes.set_status(comment, status, note)
        changes.finish()


def decide_pending(moderator: Moderator, comment_id: int, status: CommentStatus, note: str) -> bool:
    """Inside the caller's write transaction, move a comment that is still pending to
    ``status``, recording it; False (nothing done) when it is gone, out of the moderator's
    scope or no longer pending.

    For a use case that decides under a lock of its own too (a one-click mail link, which
    must be used once): it locks its rows first, then this locks the comment.
    """
    comment = _locked(moderator, [comment_id]).get(comment_id)
    if comment is None or comment.status != CommentStatus.PENDING:
        return False
    changes = Changes(moderator)
    changes.set_status(comment, status, note)
    changes.finish()
    return True


def delete_comment(moderator: Moderator, comment_id: int) -> None:
    """Delete a comment; its audit events stay."""
    with write_transaction():
        changes = Changes(moderator)
        changes.apply(_one(moderator, comment_id), ModerationAction.DELETE, None)
        changes.finish()


def spam_and_block(
    moderator: Moderator,
    comment_id: int,
    entries: Iterable[tuple[BlocklistKind, str]],
    site_id: int | None,
) -> CommentStatus:
    """Block the author of a comment (the ``entries`` chosen, on its site or every site
    with ``site_id`` None) and mark the comment spam, in one transaction, with one audit
    event that says what was blocked (even when the comment was spam already). Returns the
    status it had before."""
    chosen = list(entries)
    if not chosen:
        raise Invalid.on("block", "Choose what to block: the email, the domain or the range.")
    with write_transaction():
        comment = _one(moderator, comment_id)  # NotFound before anything else is said
        if not can_manage(moderator.site_scope(), site_id):
            raise Invalid.on("scope", "Only a moderator of every site may block on every site.")
        if site_id is not None and site_id != comment.site_id:
            raise Invalid.on("scope", "Block on the comment's own site or on every site.")
        for kind, value in chosen:
            add_in_transaction(kind.value, value, site_id, moderator.email)
        blocked = described(chosen)
        where = "every site" if site_id is None else f"site {comment.site.slug}"
        note = f"blocked on {where}: {blocked}"
        before = comment.status
        changes = Changes(moderator)
        if not changes.set_status(comment, CommentStatus.SPAM, note):
            changes.note(comment, ModerationAction.SPAM, note)
        changes.finish()
    return before


@dataclass(frozen=True)
class Undo:
    """How to undo a bulk action: the status each comment it changed had before."""

    action: ModerationAction
    previous: Mapping[int, CommentStatus]

    def to_record(self) -> dict[str, Any]:
        """As plain JSON-able data (a panel session keeps it)."""
        return {
            "action": self.action.value,
            "previous": {str(k): v.value for k, v in self.previous.items()},
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Undo:
        """Back from :meth:`to_record`."""
        previous = {int(k): CommentStatus(v) for k, v in record["previous"].items()}
        return cls(ModerationAction(record["action"]), previous)


def bulk_moderate(
    moderator: Moderator, ids: Iterable[int], action: ModerationAction
) -> dict[int, CommentStatus]:
    """Apply one action to many comments: all of them or, on any unknown id, none.

    Returns the status each changed comment had before (an approve of an approved comment
    changes nothing and is left out), which is what an undo restores.
    """
    wanted = list(dict.fromkeys(ids))
    maximum = current_app.config["MAX_BULK_IDS"]
    if len(wanted) > maximum:
        raise Invalid.on("ids", f"At most {maximum} ids at once.")
    with write_transaction():
        comments = _locked(moderator, wanted)
        missing = [comment_id for comment_id in wanted if comment_id not in comments]
        if missing:
            unknown = f"Unknown comment ids: {', '.join(map(str, missing))}."
            raise NotFound("Some comments do not exist; nothing was changed.", {"ids": [unknown]})
        changes = Changes(moderator)
        previous: dict[int, CommentStatus] = {}
        for comment_id in wanted:
            comment = comments[comment_id]
            before = comment.status
            if action == ModerationAction.DELETE:
                changes.apply(comment, action, None)
                previous[comment_id] = before
            elif changes.set_status(comment, ACTION_STATUS[action]):
                previous[comment_id] = before
        changes.finish()
    return previous


def undo(moderator: Moderator, done: Undo) -> list[int]:
    """Put each comment an action changed back to its previous status.

    Only comments still at the status the action gave them are touched, so an undo never
    overwrites what somebody did since. Returns the ids restored.
    """
    if done.action not in ACTION_STATUS:
        return []  # a deletion cannot be undone
    expected = ACTION_STATUS[done.action]
    restored: list[int] = []
    with write_transaction():
        changes = Changes(moderator)
        for comment in _locked(moderator, done.previous).values():
            if comment.status == expected and changes.set_status(
                comment, done.previous[comment.id], note="undo"
            ):
                restored.append(comment.id)
        changes.finish()
    return sorted(restored)
