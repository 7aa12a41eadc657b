"""The data model of DESIGN §3: typed SQLAlchemy 2.0 models, no HTTP, no commits."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commentsvc import widths
from commentsvc.extensions import Base

#: Largest id a row can have (ids are 32-bit on PostgreSQL); larger ids in input are unknown.
MAX_ID = 2**31 - 1


def is_row_id(value: int) -> bool:
    """Whether some row could have this id (PostgreSQL refuses larger numbers in a query)."""
    return 0 < value <= MAX_ID


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, on every backend alike."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class CommentStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SPAM = "spam"


#: Every status as it is written in requests and answers.
STATUSES = tuple(status.value for status in CommentStatus)


class ModerationAction(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    SPAM = "spam"
    REQUEUE = "requeue"
    EDIT = "edit"
    DELETE = "delete"


#: The status each status-changing action leads to, and back.
ACTION_STATUS = {
    ModerationAction.APPROVE: CommentStatus.APPROVED,
    ModerationAction.REJECT: CommentStatus.REJECTED,
    ModerationAction.SPAM: CommentStatus.SPAM,
    ModerationAction.REQUEUE: CommentStatus.PENDING,
}
STATUS_ACTION = {status: action for action, status in ACTION_STATUS.items()}


def _enum(cls: type[enum.Enum], name: str) -> sa.Enum:
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class NotifyMode(enum.StrEnum):
    """How a moderator hears of new comments awaiting them."""

    #: A mail per comment, folded into a digest past the hourly cap.
    EACH = "each"
    #: One mail an hour at most, listing the comments that came in.
    DIGEST = "digest"
    OFF = "off"


moderator_sites = sa.Table(
    "moderator_sites",
    Base.metadata,
    sa.Column("moderator_id", sa.ForeignKey("moderators.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("site_id", sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
)


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    #: Allowed origins, ``scheme://host[:port]``, normalized lower-case.
    origins: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    #: Moderation settings; ``comments_open: false`` closes every thread of the site.
    settings: Mapped[dict[str, object]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def comments_open(self) -> bool:
        return self.open_for_comments(self.settings)

    @staticmethod
    def open_for_comments(settings: Mapping[str, object] | None) -> bool:
        """Whether a site with these settings takes comments (the default)."""
        return bool((settings or {}).get("comments_open", True))


class Page(Base):
    __tablename__ = "pages"
    __table_args__ = (sa.UniqueConstraint("site_id", "key", name="uq_pages_site_id_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(widths.PAGE_KEY))
    url: Mapped[str | None] = mapped_column(sa.String(widths.URL))
    title: Mapped[str | None] = mapped_column(sa.String(widths.PAGE_TITLE))
    #: Approved comments on the page, kept in the same transaction as every change.
    approved_count: Mapped[int] = mapped_column(default=0, server_default="0")
    #: Bumped whenever what the public sees of the page changes; the thread's ETag.
    version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site: Mapped[Site] = relationship()


class Moderator(Base):
    """A person who moderates; also the session user of the panel (Flask-Login protocol)."""

    __tablename__ = "moderators"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    #: True: moderates every site; False: only those in :attr:`sites`.
    all_sites: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Panel sessions carry this number; bumping it (logout) ends every session at once,
    #: although the session itself is a signed cookie the server cannot delete.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")

    #: Which mails of new comments this moderator gets (DESIGN §8).
    notify: Mapped[NotifyMode] = mapped_column(
        _enum(NotifyMode, "notify_mode"), default=NotifyMode.EACH, server_default="each"
    )

    sites: Mapped[list[Site]] = relationship(secondary=moderator_sites)

    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    @staticmethod
    def sees_every_site(*, is_admin: bool, all_sites: bool) -> bool:
        """Whether a moderator with these flags may see every site."""
        return is_admin or all_sites

    def site_scope(self) -> set[int] | None:
        """Ids of the sites this moderator may see, or None for all of them."""
        if self.sees_every_site(is_admin=self.is_admin, all_sites=self.all_sites):
            return None
        return {site.id for site in self.sites}


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    moderator_id: Mapped[int] = mapped_column(
        sa.ForeignKey("moderators.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(100))
    #: SHA-256 of the token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    moderator: Mapped[Moderator] = relationship()

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (
        # The public thread: approved comments of one page in order. A page belongs to
        # exactly one site, so page_id stands for site+page.
        sa.Index("ix_comments_thread", "page_id", "status", "id"),
        # The moderation queue, newest first, for all sites and for one site.
        sa.Index("ix_comments_queue", "status", "id"),
        sa.Index("ix_comments_site_queue", "site_id", "status", "id"),
        sa.Index("ix_comments_parent_id", "parent_id"),
        sa.Index("ix_comments_author_email", "author_email"),
        # The panel's "most suspicious first" order, per status.
        sa.Index("ix_comments_score", "status", "spam_score", "id"),
        # Rate limits: a client's comments on a site, newest first.
        sa.Index("ix_comments_client", "site_id", "client_hash", "created_at"),
        # Idempotency-Key: one comment per key and site (NULLs, no key, are not compared).
        sa.UniqueConstraint("site_id", "idempotency_key", name="uq_comments_idempotency_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    page_id: Mapped[int] = mapped_column(sa.ForeignKey("pages.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("comments.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(sa.Text)
    #: ``body`` rendered once, at write time, by :func:`commentsvc.markup.render` in the
    #: site's markup.
    body_html: Mapped[str] = mapped_column(sa.Text)
    author_name: Mapped[str] = mapped_column(sa.String(widths.AUTHOR_NAME))
    author_email: Mapped[str] = mapped_column(sa.String(widths.AUTHOR_EMAIL))
    author_url: Mapped[str | None] = mapped_column(sa.String(widths.URL))
    #: The page's URL and title as this comment's submission gave them (a URL only when it
    #: is on one of the site's origins). The page takes them from its approved comments
    #: only, so a comment that ends up spam, rejected or deleted never defines the page.
    page_url: Mapped[str | None] = mapped_column(sa.String(widths.URL))
    page_title: Mapped[str | None] = mapped_column(sa.String(widths.PAGE_TITLE))
    status: Mapped[CommentStatus] = mapped_column(
        _enum(CommentStatus, "comment_status"), default=CommentStatus.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    moderated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    moderated_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("moderators.id", ondelete="SET NULL")
    )
    #: The client's IP with the host part zeroed (/24 for IPv4, /48 for IPv6).
    ip_prefix: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(widths.USER_AGENT))
    #: How likely the abuse rules found the comment to be spam, 0 to 1 (DESIGN §7).
    spam_score: Mapped[float] = mapped_column(sa.Float, default=0.0, server_default="0")
    #: The codes of the rules that held or refused it, space-separated (``links too_fast``).
    spam_reasons: Mapped[str] = mapped_column(sa.String(200), default="", server_default="")
    #: Who sent it, as the rate limits count: a keyed hash of the client's address (of its
    #: /64 for IPv6), never the address itself.
    client_hash: Mapped[str | None] = mapped_column(sa.String(32))
    #: The ``Idempotency-Key`` it was sent with, if any: a retry gets this comment again.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(255))
    #: Its author asked to hear of replies by email (DESIGN §8): acted on once it is approved.
    notify_replies: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: SHA-256 (hex) of the edit token its author was given at submission (DESIGN §10):
    #: the token itself is shown once and never stored.
    edit_token_hash: Mapped[str | None] = mapped_column(sa.String(64))

    site: Mapped[Site] = relationship()
    page: Mapped[Page] = relationship()
    parent: Mapped[Comment | None] = relationship(remote_side=[id])
    moderated_by: Mapped[Moderator | None] = relationship()


class ModerationEvent(Base):
    """One entry of the audit log. It outlives the comment: no foreign key to it."""

    __tablename__ = "moderation_events"
    __table_args__ = (
        sa.Index("ix_moderation_events_comment_id", "comment_id", "id"),
        sa.Index("ix_moderation_events_site_id", "site_id", "id"),
        sa.Index("ix_moderation_events_moderator_id", "moderator_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int]
    site_id: Mapped[int]
    #: None when the system acted (e.g. an automatic rule).
    moderator_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("moderators.id", ondelete="SET NULL")
    )
    #: Who acted, kept as text so the log still reads after the moderator is deleted.
    actor: Mapped[str] = mapped_column(sa.String(254))
    action: Mapped[ModerationAction] = mapped_column(_enum(ModerationAction, "moderation_action"))
    from_status: Mapped[CommentStatus | None] = mapped_column(
        _enum(CommentStatus, "event_from_status")
    )
    to_status: Mapped[CommentStatus | None] = mapped_column(_enum(CommentStatus, "event_to_status"))
    note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginAttemptOutcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: Refused by the throttle before the password was checked; counts like a failure.
    THROTTLED = "throttled"


class LoginAttempt(Base):
    """A panel login attempt, kept for throttling during the login window and purged after.

    Holds no clear-text input: the account (the email as typed, normalized), the client
    address and the device are keyed hashes.
    """

    __tablename__ = "login_attempts"
    __table_args__ = (
        sa.Index("ix_login_attempts_account", "account", "created_at"),
        sa.Index("ix_login_attempts_client", "client", "created_at"),
        sa.Index("ix_login_attempts_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Keyed hash of the email as typed (trimmed, lower case).
    account: Mapped[str] = mapped_column(sa.String(64))
    #: Keyed hash of the client's address: the whole IPv4 address, or the IPv6 /64.
    client: Mapped[str] = mapped_column(sa.String(64))
    #: Keyed hash of the device cookie's id when the attempt came with one valid for the
    #: account (a browser that logged in to it before), else None.
    device: Mapped[str | None] = mapped_column(sa.String(64))
    outcome: Mapped[LoginAttemptOutcome] = mapped_column(
        _enum(LoginAttemptOutcome, "login_attempt_outcome")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BlocklistKind(enum.StrEnum):
    EMAIL = "email"
    DOMAIN = "domain"
    IP = "ip"
    WORD = "word"


#: Every kind of blocklist entry as written in requests and answers.
BLOCKLIST_KINDS = tuple(kind.value for kind in BlocklistKind)


class BlocklistEntry(Base):
    """A value whose submissions are stored as spam: on one site, or on every site."""

    __tablename__ = "blocklist_entries"
    __table_args__ = (sa.Index("ix_blocklist_entries_kind_value", "kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None: the entry holds on every site.
    site_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[BlocklistKind] = mapped_column(_enum(BlocklistKind, "blocklist_kind"))
    #: Normalized: see :func:`commentsvc.services.blocklist.normalize_value`.
    value: Mapped[str] = mapped_column(sa.String(320))
    #: Who added it (a moderator's email, or ``cli``).
    created_by: Mapped[str] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site: Mapped[Site | None] = relationship()


class Generation(Base):
    """A counter bumped by every change of some shared data, so that each worker knows
    when the copy it keeps is stale by reading one row (the blocklist's, for now)."""

    __tablename__ = "generations"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class OutboxEvent(Base):
    """A change worth telling someone about, written in the transaction of the change
    (DESIGN §8); the worker turns it into deliveries once (``dispatched_at``)."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        sa.Index(
            "ix_outbox_events_undispatched",
            "id",
            postgresql_where=sa.text("dispatched_at IS NULL"),
            sqlite_where=sa.text("dispatched_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``comment.submitted``, ``comment.approved``, … (:class:`.events.EventType`).
    type: Mapped[str] = mapped_column(sa.String(32))
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    #: No foreign key: the event outlives the comment (``comment.deleted``).
    comment_id: Mapped[int | None]
    #: A moderator's email, ``system``, or None for the commenter.
    actor: Mapped[str | None] = mapped_column(sa.String(254))
    #: The comment as the moderation API showed it right after the change.
    data: Mapped[dict[str, object]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryState(enum.StrEnum):
    #: Waiting for its next attempt (``next_attempt_at``).
    PENDING = "pending"
    #: Kept back for a moderator's digest (notify ``digest``, or past the hourly cap).
    HELD = "held"
    DELIVERED = "delivered"
    #: Given up: a permanent refusal, or retried for as long as the channel retries.
    FAILED = "failed"
    #: Not sent, on purpose (the comment was moderated meanwhile, a cap, folded in a digest).
    SKIPPED = "skipped"


class Delivery(Base):
    """One message to one recipient (a mail, a webhook call), retried until it is delivered
    or given up; the worker leases it (``lease_until``) while it sends."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        ),
        sa.Index("ix_deliveries_webhook_id", "webhook_id", "id"),
        sa.Index("ix_deliveries_recipient", "recipient", "kind", "created_at"),
        sa.Index("ix_deliveries_moderator", "moderator_id", "state", "created_at"),
        sa.Index("ix_deliveries_event_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("outbox_events.id", ondelete="SET NULL")
    )
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    #: ``mail`` or ``webhook``.
    channel: Mapped[str] = mapped_column(sa.String(16))
    #: What it is: ``moderator_comment``, ``moderator_digest``, ``reply``, ``confirm``,
    #: ``webhook``, …; the worker sends each kind with its own function.
    kind: Mapped[str] = mapped_column(sa.String(32))
    webhook_id: Mapped[int | None] = mapped_column(sa.ForeignKey("webhooks.id", ondelete="CASCADE"))
    moderator_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("moderators.id", ondelete="CASCADE")
    )
    #: The address a mail goes to (normalized), for the per-address caps.
    recipient: Mapped[str | None] = mapped_column(sa.String(320))
    comment_id: Mapped[int | None]
    #: What the sender needs besides the event (the comments of a digest, a subscription).
    payload: Mapped[dict[str, object]] = mapped_column(sa.JSON, default=dict)
    state: Mapped[DeliveryState] = mapped_column(
        _enum(DeliveryState, "delivery_state"), default=DeliveryState.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: While a worker sends it, no other worker takes it (until then, or until that
    #: worker's heartbeat goes stale).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The worker holding the lease (its heartbeat's ``name``).
    lease_owner: Mapped[str | None] = mapped_column(sa.String(200))
    #: The last attempt: the HTTP status (webhooks) or SMTP reply code, and what went wrong
    #: (a short excerpt, never a whole response body).
    last_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Webhook(Base):
    """An endpoint of a site that hears of its comments' events (DESIGN §8)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    #: The event types it hears of; empty: every one.
    events: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    #: ``whsec_`` and base64 of the signing key (Standard Webhooks); shown once.
    secret: Mapped[str] = mapped_column(sa.String(100))
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site: Mapped[Site] = relationship()


class Subscriber(Base):
    """An address that asked for reply mails on a site (DESIGN §8): confirmed once per site
    (a confirmation mail after its first approved comment that asked), or unsubscribed from
    every reply mail of the site."""

    __tablename__ = "subscribers"
    __table_args__ = (sa.UniqueConstraint("site_id", "email", name="uq_subscribers_site_email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    #: As the comments store it (normalized by email-validator).
    email: Mapped[str] = mapped_column(sa.String(320))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Subscription(Base):
    """The replies to one comment, mailed to its author (a :class:`Subscriber`) once the
    address is confirmed, until unsubscribed."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        sa.UniqueConstraint("comment_id", "subscriber_id", name="uq_subscriptions_comment"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    comment_id: Mapped[int] = mapped_column(sa.ForeignKey("comments.id", ondelete="CASCADE"))
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    subscriber: Mapped[Subscriber] = relationship()


class MailLink(Base):
    """A one-click moderation link of a mail: one moderator, one comment, one action; it
    expires and works once (DESIGN §8). The link itself carries a signature of its id."""

    __tablename__ = "mail_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    moderator_id: Mapped[int] = mapped_column(
        sa.ForeignKey("moderators.id", ondelete="CASCADE"), index=True
    )
    #: No foreign key: the link must still say what became of a deleted comment.
    comment_id: Mapped[int] = mapped_column(index=True)
    action: Mapped[ModerationAction] = mapped_column(_enum(ModerationAction, "mail_link_action"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WorkerHeartbeat(Base):
    """A running ``commentsvc worker``: when it last beat, and what it has done since it
    started (for ``/metrics`` and ``commentsvc worker --check``)."""

    __tablename__ = "worker_heartbeats"

    #: ``host:pid``.
    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Deliveries since it started, by ``channel:outcome``.
    counts: Mapped[dict[str, int]] = mapped_column(sa.JSON, default=dict)


class ImportRecord(Base):
    """A comment brought in from another system (DESIGN §9): its source and id there, so
    that importing the same file again adds nothing. It outlives the comment (a comment
    deleted after the import is not imported again)."""

    __tablename__ = "import_records"
    __table_args__ = (
        sa.UniqueConstraint("site_id", "source", "source_id", name="uq_import_records_source"),
        sa.Index("ix_import_records_run", "run"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    #: ``wordpress``, ``disqus``, ``isso``, ``remark42``, ``commento``, ``commentsvc``.
    source: Mapped[str] = mapped_column(sa.String(32))
    source_id: Mapped[str] = mapped_column(sa.String(200))
    #: What the source said it replies to: resolved to ``parent_id`` once the whole file
    #: is in (sources do not promise parents first).
    parent_source_id: Mapped[str | None] = mapped_column(sa.String(200))
    comment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("comments.id", ondelete="SET NULL"), index=True
    )
    #: The import that brought it (a random id per run).
    run: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PersonalDataKind(enum.StrEnum):
    EXPORT = "export"
    ERASE = "erase"


class PersonalDataRequest(Base):
    """A commenter's own request for their data, or for its erasure (DESIGN §9): mailed as
    a link to the address it names; the link works until ``expires_at`` (an erasure once).

    The address is kept only while the link can be used: an erasure clears it, and the
    worker deletes requests a day after they expire.
    """

    __tablename__ = "personal_data_requests"
    __table_args__ = (
        sa.Index("ix_personal_data_requests_email", "site_id", "email", "created_at"),
        sa.Index("ix_personal_data_requests_client", "site_id", "client_hash", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    #: Normalized as the comments store it; None once the request is used for an erasure.
    email: Mapped[str | None] = mapped_column(sa.String(320))
    kind: Mapped[PersonalDataKind] = mapped_column(_enum(PersonalDataKind, "personal_data_kind"))
    #: Who asked, as the rate limits count (:func:`commentsvc.services.throttling.client_hash`).
    client_hash: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
