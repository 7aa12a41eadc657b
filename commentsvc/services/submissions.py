"""Submitting a comment: screened by the abuse rules, stored, its page made on the first
comment (DESIGN §4, §7). The page's URL and title come from its approved comments only
(:mod:`commentsvc.services.pages`)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from commentsvc.extensions import db, read_connection, write_transaction
from commentsvc.markup import link_targets, render
from commentsvc.models import (
    Comment,
    CommentStatus,
    ModerationAction,
    ModerationEvent,
    Page,
    is_row_id,
    utcnow,
)
from commentsvc.services import idempotency, pages, throttling
from commentsvc.services.blocklist import (
    GENERATION_COLUMN,
    Traits,
    cached_blocklist,
    current_blocklist,
)
from commentsvc.services.errors import Closed, Conflict, Forbidden, Invalid, NotFound
from commentsvc.services.events import SYSTEM_ACTOR, CommentEvent, EventType, announce
from commentsvc.services.screening import Candidate, Judgement, screen
from commentsvc.services.sites import PublicSite
from commentsvc.services.visibility import PUBLISHED


@dataclass(frozen=True)
class Submission:
    """A validated comment submission, and what the widget sent to prove it is a person's."""

    page: str
    body: str
    author_name: str
    author_email: str
    author_url: str | None = None
    page_url: str | None = None
    page_title: str | None = None
    parent_id: int | None = None
    #: The honeypot field ``subject``: people leave it empty, they never see it.
    honeypot: str = ""
    #: How long the widget's form was open, in milliseconds; None: not sent.
    fill_ms: int | None = None
    #: The author asks to hear of replies by email (DESIGN §8); acted on after approval.
    notify_replies: bool = False


@dataclass(frozen=True)
class ClientInfo:
    """What we know of the submitting client: its anonymized IP prefix and user agent are
    stored; its full ``address`` is only compared with the blocklist, never stored."""

    ip_prefix: str | None
    user_agent: str | None
    address: str | None = None


@dataclass(frozen=True)
class StoredComment:
    """A comment just stored, as its submitter is told: the values written, its id and page
    key, and ``status`` ``pending`` unless it was approved at once (a spam verdict is never
    told)."""

    id: int
    page: str
    parent_id: int | None
    author_name: str
    author_url: str | None
    body: str
    body_html: str
    status: CommentStatus
    created_at: datetime
    #: The token its author may edit or delete it with (DESIGN §10), shown once; None when
    #: editing is off (``EDIT_WINDOW_MINUTES`` 0) or the window has passed.
    edit_token: str | None = None
    editable_until: datetime | None = None

    @classmethod
    def told(cls, row: sa.Row[Any], edit: EditGrant | None = None) -> StoredComment:
        """A stored comment (a row of its fields and ``page``) as its submitter was told of
        it: ``approved`` if it is, else ``pending``; with a new edit token, if given."""
        status = row.status if row.status == CommentStatus.APPROVED else CommentStatus.PENDING
        fields = {name: getattr(row, name) for name in _TOLD}
        if edit is not None:
            fields.update(edit_token=edit.token, editable_until=edit.until)
        return cls(**fields, status=status)


_TOLD = [
    field.name
    for field in dataclasses.fields(StoredComment)
    if field.name not in ("status", "edit_token", "editable_until")
]


@dataclass(frozen=True)
class EditGrant:
    """An edit token just made: the token (to tell its author once), its hash (to store)
    and until when it works."""

    token: str
    hash: str
    until: datetime


def edit_window() -> timedelta:
    """How long after posting a comment its author may edit or delete it."""
    return timedelta(minutes=int(current_app.config["EDIT_WINDOW_MINUTES"]))


def token_hash(token: str) -> str:
    """What is stored of an edit token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def grant_edit(
    created_at: datetime, now: datetime, site_id: int = 0, idempotency_key: str | None = None
) -> EditGrant | None:
    """The edit token of a comment written at ``created_at``; None once its window has
    passed (or editing is off). Random, unless the submission came with an
    ``Idempotency-Key``: then a keyed hash of it (HMAC with ``SECRET_KEY``), so that a retry
    gets the very same answer, token included, and nothing is written again."""
    until = created_at + edit_window()
    if until <= now:
        return None
    if idempotency_key is None:
        token = secrets.token_urlsafe(32)
    else:
        key = str(current_app.config["SECRET_KEY"]).encode()
        message = f"edit-token:{site_id}:{idempotency_key}".encode("utf-8", "surrogatepass")
        digest = hmac.new(key, message, hashlib.sha256).digest()
        token = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    return EditGrant(token, token_hash(token), until)


_PAGE_FOR_SUBMIT = sa.select(
    Page.id,
    GENERATION_COLUMN.label("blocklist_generation"),
    sa.exists()
    .where(
        Comment.page_id == Page.id,
        Comment.author_email == sa.bindparam("email"),
        Comment.created_at >= sa.bindparam("since", type_=Comment.created_at.type),
        Comment.body == sa.bindparam("body"),
    )
    .label("duplicate"),
).where(Page.site_id == sa.bindparam("site_id"), Page.key == sa.bindparam("key"))
_PAGE_ONLY = sa.select(Page.id).where(
    Page.site_id == sa.bindparam("site_id"), Page.key == sa.bindparam("key")
)
_APPROVED_PARENT = sa.select(Comment.id).where(
    Comment.id == sa.bindparam("parent_id"),
    Comment.page_id == sa.bindparam("page_id"),
    PUBLISHED,
)
_INSERT_COMMENT = sa.insert(Comment).returning(Comment.id)
_INSERT_EVENT = sa.insert(ModerationEvent)


def _insert_page(connection: sa.Connection, site: PublicSite, submission: Submission) -> int | None:
    """Make the submission's page (not described yet: no approved comment has named it);
    None if another first comment made it meanwhile.

    The first comments on a page may arrive together (PostgreSQL; SQLite serializes
    writers): the loser's insert does nothing, and reads the winner's row instead.
    """
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    values = {"site_id": site.id, "key": submission.page}
    return connection.execute(
        dialect_insert(Page)
        .values(values)
        .on_conflict_do_nothing(index_elements=[Page.site_id, Page.key])
        .returning(Page.id)
    ).scalar()


def _page_id(
    connection: sa.Connection, site: PublicSite, submission: Submission, page: sa.Row[Any] | None
) -> int:
    """The id of the submission's ``page`` (None: not made yet, made now)."""
    if page is not None:
        return int(page.id)
    created = _insert_page(connection, site, submission)
    if created is not None:
        return int(created)
    parameters = {"site_id": site.id, "key": submission.page}
    return int(connection.execute(_PAGE_ONLY, parameters).scalar_one())


def _check_parent(connection: sa.Connection, parent_id: int | None, page_id: int) -> None:
    if parent_id is None:
        return
    parameters = {"parent_id": parent_id, "page_id": page_id}
    if connection.execute(_APPROVED_PARENT, parameters).first() is None:
        raise Invalid.on("parent_id", "Must be an approved comment on the same page.")


#: The names the author's approved comments on the site were posted under.
_APPROVED_NAMES = (
    sa.select(Comment.author_name)
    .where(
        Comment.author_email == sa.bindparam("email"),
        Comment.site_id == sa.bindparam("site_id"),
        Comment.status == CommentStatus.APPROVED,
        Comment.id != sa.bindparam("exclude_id"),
    )
    .distinct()
    .limit(50)
)
#: A comment approved at once counts, and its page is described again (it may name it).
_APPROVED_AT_ONCE = (
    sa.update(Page)
    .where(Page.id == sa.bindparam("page_id"))
    .values(approved_count=Page.approved_count + 1, version=Page.version + 1, **pages.DESCRIPTION)
)
#: How long the same comment from the same author on the same page is refused.
DUPLICATE_WINDOW = timedelta(hours=24)
_TRUSTED_NOTE = "moderation 'first': the author has an approved comment on this site"
#: How the note of a spam verdict begins; the reasons follow, separated by ", ".
RULES_NOTE = "rules: "
_DUPLICATE = "You have already posted this comment on this page."


class _KeyTaken(Exception):
    """Another send of the same ``Idempotency-Key`` stored its comment first (they ran at
    the same time): roll back, and answer with that one."""


def submit_comment(
    site: PublicSite,
    submission: Submission,
    client: ClientInfo,
    idempotency_key: str | None = None,
) -> StoredComment:
    """Screen a submission by the abuse rules and store it: ``spam`` if a rule found it
    spam, ``approved`` if the site trusts its author and no rule held it, else ``pending``.

    Refused (nothing stored): Conflict for the same comment again from the same author on
    the same page within a day; Invalid when ``idempotency_key`` came with another
    submission before. A retry with the key of an earlier submission gets that earlier
    answer, and nothing more is stored.
    """
    if not site.comments_open:
        raise Closed("Comments are closed on this site.")
    body_html = render(submission.body, site.markup)
    traits = Traits.of_comment(
        submission.author_email,
        submission.author_name,
        submission.author_url,
        submission.body,
        client.address,
        body_html,
        site.markup,
    )
    # The rules' work on the text is done before the write lock is taken, for the copy of
    # the blocklist this worker has (checked against the current one inside).
    cached_blocklist().prepare(site.id, traits)
    now = utcnow()
    client_hash = throttling.client_hash(client.address)
    try:
        with write_transaction():
            return _store(
                site, submission, client, client_hash, idempotency_key, traits, body_html, now
            )
    except _KeyTaken as taken:
        assert idempotency_key is not None
        with read_connection() as connection:
            earlier = idempotency.stored_under(
                connection, site.id, idempotency_key, _sent(submission)
            )
        if earlier is None:  # the key was not what collided
            raise taken.__cause__ or taken from None
        return _told_again(site.id, idempotency_key, earlier, now)


def _told_again(site_id: int, key: str, earlier: sa.Row[Any], now: datetime) -> StoredComment:
    """The answer to a retry of an earlier submission: that comment as it was told, its
    edit token made again from the key (while its window lasts)."""
    return StoredComment.told(earlier, grant_edit(earlier.created_at, now, site_id, key))


def _sent(submission: Submission) -> dict[str, Any]:
    return dataclasses.asdict(submission)


def _store(
    site: PublicSite,
    submission: Submission,
    client: ClientInfo,
    client_hash: str,
    key: str | None,
    traits: Traits,
    body_html: str,
    now: datetime,
) -> StoredComment:
    """:func:`submit_comment` inside its transaction."""
    # Core statements on the transaction's connection: a submission needs no ORM objects,
    # and the unit of work cost more than the rest of the request together.
    connection = db.session.connection()
    parameters = {
        "site_id": site.id,
        "key": submission.page,
        "email": submission.author_email,
        "body": submission.body,
        "since": now - DUPLICATE_WINDOW,
    }
    page = connection.execute(_PAGE_FOR_SUBMIT, parameters).first()
    if page is not None and page.duplicate:
        if key is not None:  # a retry: the comment stored under its key is its answer
            earlier = idempotency.stored_under(connection, site.id, key, _sent(submission))
            if earlier is not None:
                return _told_again(site.id, key, earlier, now)
        raise Conflict(_DUPLICATE, {"body": [_DUPLICATE]})
    generation = page.blocklist_generation if page is not None else None
    status, judgement = _judge(
        connection, site, submission, traits, generation, body_html=body_html
    )
    page_id = _page_id(connection, site, submission, page)
    _check_parent(connection, submission.parent_id, page_id)
    values = _comment_row(site.id, page_id, submission, client, body_html, now)
    values.update(
        status=status, spam_score=judgement.score, spam_reasons=" ".join(judgement.reasons)
    )
    values["client_hash"] = client_hash
    values["idempotency_key"] = key
    grant = grant_edit(now, now, site.id, key)
    values["edit_token_hash"] = grant.hash if grant is not None else None
    # Counted last before the comment is stored: what was refused above is not counted.
    throttling.count_submission(site.id, client_hash, connection, now)
    try:
        comment_id = int(connection.execute(_INSERT_COMMENT, values).scalar_one())
    except sa.exc.IntegrityError as error:
        if key is None:
            raise
        raise _KeyTaken() from error
    _record_system_decision(connection, site.id, comment_id, status, judgement, now)
    if status == CommentStatus.APPROVED:
        connection.execute(_APPROVED_AT_ONCE, {"page_id": page_id})
    announce(
        CommentEvent(
            EventType.SUBMITTED, comment_id, site.id, page_id, status, None, now, judgement.reasons
        )
    )
    return StoredComment(
        id=comment_id,
        page=submission.page,
        parent_id=submission.parent_id,
        author_name=submission.author_name,
        author_url=submission.author_url,
        body=submission.body,
        body_html=body_html,
        # What the submitter is told: a spam verdict stays unsaid.
        status=status if status == CommentStatus.APPROVED else CommentStatus.PENDING,
        created_at=now,
        edit_token=grant.token if grant is not None else None,
        editable_until=grant.until if grant is not None else None,
    )


def _judge(
    connection: sa.Connection,
    site: PublicSite,
    submission: Submission,
    traits: Traits,
    generation: int | None,
    exclude_id: int = 0,
    body_html: str | None = None,
) -> tuple[CommentStatus, Judgement]:
    """The status a submission is stored with, and the rules' judgement of it: the rules
    decide spam or pending; in moderation mode ``first``, a trusted author's comment that
    no rule held is approved at once (its author known by another approved comment than
    ``exclude_id``, the comment an edit changes)."""
    candidate = Candidate(
        site_id=site.id,
        rules=site.rules,
        body=submission.body,
        honeypot=submission.honeypot,
        fill_ms=submission.fill_ms,
        traits=traits,
        blocklist=current_blocklist(connection, generation),
        links=len(link_targets(body_html)) if body_html is not None else None,
    )
    judgement = screen(candidate)
    if (
        judgement.status == CommentStatus.PENDING
        and not judgement.held
        and site.rules.moderation == "first"
        and _trusted(connection, site.id, submission, exclude_id)
    ):
        return CommentStatus.APPROVED, judgement
    return judgement.status, judgement


def _trusted(
    connection: sa.Connection, site_id: int, submission: Submission, exclude_id: int = 0
) -> bool:
    """Whether the author (same email, same name but for case) has an approved comment on
    the site (other than ``exclude_id``, the comment being edited). Names compare
    case-folded here, the same on every database."""
    parameters = {"email": submission.author_email, "site_id": site_id, "exclude_id": exclude_id}
    name = submission.author_name.casefold()
    return any(
        known.casefold() == name for known in connection.scalars(_APPROVED_NAMES, parameters)
    )


def _record_system_decision(
    connection: sa.Connection,
    site_id: int,
    comment_id: int,
    status: CommentStatus,
    judgement: Judgement,
    now: datetime,
) -> None:
    """The audit log's entry for a decision the rules took instead of a moderator."""
    if status == CommentStatus.PENDING:
        return
    action = ModerationAction.APPROVE if status == CommentStatus.APPROVED else ModerationAction.SPAM
    note = (
        _TRUSTED_NOTE
        if status == CommentStatus.APPROVED
        else RULES_NOTE + ", ".join(judgement.reasons)
    )
    event = {
        "comment_id": comment_id,
        "site_id": site_id,
        "moderator_id": None,
        "actor": SYSTEM_ACTOR,
        "action": action,
        "from_status": None,
        "to_status": status,
        "note": note,
        "created_at": now,
    }
    connection.execute(_INSERT_EVENT, event)


def _comment_row(
    site_id: int,
    page_id: int,
    submission: Submission,
    client: ClientInfo,
    body_html: str,
    now: datetime,
) -> dict[str, Any]:
    """The values of a new comment's row: pending, created and updated ``now``."""
    return {
        "site_id": site_id,
        "page_id": page_id,
        "parent_id": submission.parent_id,
        "body": submission.body,
        "body_html": body_html,
        "author_name": submission.author_name,
        "author_email": submission.author_email,
        "author_url": submission.author_url,
        "page_url": submission.page_url,
        "page_title": submission.page_title,
        "status": CommentStatus.PENDING,
        "created_at": now,
        "updated_at": now,
        "ip_prefix": client.ip_prefix,
        "user_agent": client.user_agent,
        "notify_replies": submission.notify_replies,
    }


# -- the author's own changes (DESIGN §10) ----------------------------------------------

#: The audit notes of a commenter's own edit and delete (the actor is ``system``).
EDITED_NOTE = "edited by author"
DELETED_NOTE = "deleted by author"
_APPROVED_REPLY = sa.select(Comment.id).where(
    Comment.parent_id == sa.bindparam("comment_id"), PUBLISHED
)


def _own_comment(site: PublicSite, comment_id: int, token: str, now: datetime) -> Comment:
    """The comment ``comment_id`` of the site, locked, if ``token`` may still change it:
    NotFound, Forbidden (another token, or past the window) or Conflict (it has an approved
    reply, which answers what it says) otherwise."""
    comment = None
    if is_row_id(comment_id):
        comment = db.session.scalar(
            sa.select(Comment)
            .where(Comment.id == comment_id, Comment.site_id == site.id)
            .with_for_update(of=Comment, key_share=True)
            .execution_options(populate_existing=True)
        )
    if comment is None:
        raise NotFound(f"There is no comment {comment_id}.")
    stored = comment.edit_token_hash
    if stored is None or not hmac.compare_digest(stored, token_hash(token)):
        raise Forbidden("This is not the edit token of this comment.")
    if now >= comment.created_at + edit_window():
        minutes = int(current_app.config["EDIT_WINDOW_MINUTES"])
        raise Forbidden(f"A comment can be changed for {minutes} minutes after it was posted.")
    if db.session.execute(_APPROVED_REPLY, {"comment_id": comment.id}).first() is not None:
        raise Conflict("This comment has an approved reply: it can no longer be changed.")
    return comment


def _edited_status(before: CommentStatus, judged: CommentStatus) -> CommentStatus:
    """Where an edit leaves a comment: spam when the rules find the new text spam; back to
    pending when it was approved and the site does not approve this author at once;
    otherwise where it was (a moderator's decision stays)."""
    if judged == CommentStatus.SPAM:
        return CommentStatus.SPAM
    if before == CommentStatus.APPROVED and judged != CommentStatus.APPROVED:
        return CommentStatus.PENDING
    return before


def edit_own_comment(
    site: PublicSite, comment_id: int, token: str, body: str, client: ClientInfo
) -> StoredComment:
    """Change the text of one's own comment (``body`` validated as a submission's is): the
    rules of DESIGN §7 judge the new text as they judged the first, an approved comment goes
    back to pending unless the site approves its author at once, the audit log and the
    outbox (``comment.edited``) hear of it. The same text again changes nothing."""
    from commentsvc.services.moderation import Changes  # moderation builds on submissions

    if not site.comments_open:
        raise Closed("Comments are closed on this site.")
    body_html = render(body, site.markup)
    now = utcnow()
    with write_transaction():
        comment = _own_comment(site, comment_id, token, now)
        if comment.body != body:
            submission = Submission(
                page="",
                body=body,
                author_name=comment.author_name,
                author_email=comment.author_email,
                author_url=comment.author_url,
                page_url=comment.page_url,
                page_title=comment.page_title,
                parent_id=comment.parent_id,
                honeypot="",
                fill_ms=None,
                notify_replies=comment.notify_replies,
            )
            traits = Traits.of_comment(
                comment.author_email,
                comment.author_name,
                comment.author_url,
                body,
                client.address,
                body_html,
                site.markup,
            )
            connection = db.session.connection()
            judged, judgement = _judge(
                connection, site, submission, traits, None, comment.id, body_html
            )
            changes = Changes(actor=SYSTEM_ACTOR)
            comment.body = body
            comment.body_html = body_html
            comment.spam_score = judgement.score
            comment.spam_reasons = " ".join(judgement.reasons)
            changes.apply(comment, ModerationAction.EDIT, comment.status, EDITED_NOTE)
            status = _edited_status(comment.status, judged)
            if status != comment.status:
                note = (
                    EDITED_NOTE
                    if status != CommentStatus.SPAM
                    else RULES_NOTE + ", ".join(judgement.reasons)
                )
                changes.set_status(comment, status, note)
            changes.finish()
        told = comment.status if comment.status == CommentStatus.APPROVED else CommentStatus.PENDING
        page = db.session.get(Page, comment.page_id)
        return StoredComment(
            id=comment.id,
            page=page.key if page is not None else "",
            parent_id=comment.parent_id,
            author_name=comment.author_name,
            author_url=comment.author_url,
            body=comment.body,
            body_html=comment.body_html,
            status=told,
            created_at=comment.created_at,
            editable_until=comment.created_at + edit_window(),
        )


def delete_own_comment(site: PublicSite, comment_id: int, token: str) -> None:
    """Delete one's own comment (replies to it stay, top-level); the audit log keeps that
    its author did, and the outbox announces ``comment.deleted``."""
    from commentsvc.services.moderation import Changes

    with write_transaction():
        comment = _own_comment(site, comment_id, token, utcnow())
        changes = Changes(actor=SYSTEM_ACTOR)
        changes.apply(comment, ModerationAction.DELETE, None, DELETED_NOTE)
        changes.finish()
