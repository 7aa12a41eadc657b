"""What a soak run promised and what it kept: answers judged against the faults injected,
acknowledged submissions against the comments stored, outbox events against what the
webhook receiver and the SMTP server got (DESIGN §8: at least once, so a repeated delivery
is reported, not failed), and the verdicts of a phase as rows of target, measured, met."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from benchmarks.soak.traffic import ACKNOWLEDGED, EXPECTED, Record

#: Seconds after a dependency is back in which a 503 still counts as the outage's (a pool
#: noticing the new server, a request that started during the outage).
RECOVERY_GRACE = 5.0
#: The connections a SIGKILLed worker held end within this many seconds of the signal.
KILL_GRACE = 2.0
MARKER = re.compile(r"soak (\S+) #(\d+)")


@dataclass(frozen=True)
class Fault:
    """A dependency or process taken away at ``started`` and back (serving) at ``restored``,
    on the monotonic clock."""

    name: str
    started: float
    restored: float
    #: A SIGKILLed gunicorn worker: the requests it held die with it.
    kills_connections: bool = False
    detail: str = ""

    def covers(self, record: Record, grace: float = RECOVERY_GRACE) -> bool:
        """Whether the request was open at some moment of the outage (or its grace)."""
        return record.sent <= self.restored + grace and record.answered >= self.started


@dataclass(frozen=True)
class Failure:
    """A request that got an answer it should not have, and why that is wrong."""

    record: Record
    why: str


@dataclass
class AnswerCheck:
    """Every answer of a phase, judged."""

    requests: int = 0
    correct: int = 0
    #: 503 with Retry-After while a dependency was down: what the service promises.
    unavailable: list[Record] = field(default_factory=list)
    #: Connections a SIGKILLed worker held when it died (no process can answer them).
    dropped: list[Record] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def failure_reasons(self) -> Counter[str]:
        """How many failures there were of each kind."""
        return Counter(failure.why for failure in self.failures)


def judge_answers(records: Iterable[Record], faults: Sequence[Fault] = ()) -> AnswerCheck:
    """Each record: correct, a 503 the outage excuses, a connection the killed worker took
    with it, or a failure (any other 5xx, a 503 without Retry-After or outside an outage, a
    missing answer, an unexpected 4xx, a request not sent because too many were open)."""
    check = AnswerCheck()
    for record in records:
        check.requests += 1
        if record.kind == "shed":
            check.failures.append(Failure(record, "not sent: too many requests open"))
            continue
        if record.status in EXPECTED[record.kind]:
            check.correct += 1
            continue
        outage = [fault for fault in faults if fault.covers(record)]
        if record.status == 503 and record.retry_after and outage:
            check.unavailable.append(record)
        elif record.status == 0 and any(
            fault.kills_connections
            and record.sent <= fault.started
            and fault.started <= record.answered <= fault.started + KILL_GRACE
            for fault in faults
        ):
            check.dropped.append(record)
        else:
            check.failures.append(Failure(record, _why(record, bool(outage))))
    return check


def _why(record: Record, during_outage: bool) -> str:
    if record.status == 0:
        return "no answer"
    if record.status == 503 and not record.retry_after:
        return "503 without Retry-After"
    if record.status == 503:
        return "503 outside any outage"
    when = " during an outage" if during_outage else ""
    return f"{record.status}{when}"


def blame(record: Record, faults: Sequence[Fault]) -> Fault | None:
    """The fault a wrong answer is put down to: the last one that began before it was
    answered, if the request was open during it (or its grace)."""
    began = [f for f in faults if f.started <= record.answered and f.covers(record)]
    return max(began, key=lambda f: f.started) if began else None


def recovery_seconds(
    records: Sequence[Record], fault: Fault, until: float = float("inf")
) -> float | None:
    """Seconds from a fault's end until the last request that was not answered correctly,
    among those answered before ``until`` (the next fault: what came after it began is that
    fault's, as :func:`blame` has it); 0: none after its end; None when no correct answer
    came after it at all."""
    after = [r for r in records if r.kind != "shed" and fault.restored <= r.answered < until]
    if not any(r.status in EXPECTED[r.kind] for r in after):
        return None
    bad = [r.answered for r in after if r.status not in EXPECTED[r.kind]]
    return max(0.0, max(bad) - fault.restored) if bad else 0.0


@dataclass(frozen=True)
class StoredComment:
    """A comment the database holds on the run's pages."""

    id: int
    body: str
    status: str

    @property
    def number(self) -> int | None:
        """The submission number in its body, if the soak wrote it."""
        match = MARKER.search(self.body)
        return int(match.group(2)) if match else None


@dataclass(frozen=True)
class SubmissionCheck:
    """Acknowledged submissions and approvals against the database."""

    acknowledged: int
    stored: int
    #: Acknowledged ids the database does not hold.
    lost: tuple[int, ...]
    #: Submission numbers stored more than once, and acknowledged ids given twice.
    duplicated: tuple[int, ...]
    #: Stored under an acknowledged id, but another submission's text.
    mismatched: tuple[int, ...]
    #: Stored although its request got no acknowledgement (a 503, a dropped connection):
    #: the commit happened, the answer did not reach the client.
    stored_unacknowledged: tuple[int, ...]
    #: Submissions answered with anything but an acknowledgement.
    unacknowledged_requests: int
    approvals_acknowledged: int
    #: Approved by an acknowledged request but not approved in the database.
    approvals_lost: tuple[int, ...]
    #: Approved in the database without an acknowledged request (a 503 after the commit).
    approved_unacknowledged: tuple[int, ...]

    @property
    def ok(self) -> bool:
        """Nothing acknowledged lost, nothing doubled, no text under another's id."""
        return not (self.lost or self.duplicated or self.mismatched or self.approvals_lost)


def compare_submissions(
    records: Iterable[Record], stored: Sequence[StoredComment]
) -> SubmissionCheck:
    """What the client was told against what the database holds."""
    acknowledged: dict[int, int] = {}  # id: number
    twice: list[int] = []
    unacknowledged: set[int] = set()
    approved_ids: set[int] = set()
    for record in records:
        if record.kind == "submit":
            if record.status in ACKNOWLEDGED:
                if record.comment_id in acknowledged:
                    twice.append(record.comment_id)
                acknowledged[record.comment_id] = record.number
            else:
                unacknowledged.add(record.number)
        elif record.kind == "approve" and record.status in EXPECTED["approve"]:
            approved_ids.add(record.number)
    by_id = {comment.id: comment for comment in stored}
    numbers = Counter(comment.number for comment in stored)
    lost = sorted(set(acknowledged) - set(by_id))
    mismatched = sorted(
        comment_id
        for comment_id, number in acknowledged.items()
        if comment_id in by_id and by_id[comment_id].number != number
    )
    acknowledged_numbers = set(acknowledged.values())
    stored_unacknowledged = sorted(
        n for n in numbers if n is not None and n not in acknowledged_numbers
    )
    approved_stored = {c.id for c in stored if c.status == "approved"}
    return SubmissionCheck(
        acknowledged=len(acknowledged) + len(twice),
        stored=len(stored),
        lost=tuple(lost),
        duplicated=tuple(sorted({n for n, k in numbers.items() if n is not None and k > 1}))
        + tuple(twice),
        mismatched=tuple(mismatched),
        stored_unacknowledged=tuple(stored_unacknowledged),
        unacknowledged_requests=len(unacknowledged),
        approvals_acknowledged=len(approved_ids),
        approvals_lost=tuple(sorted(approved_ids - approved_stored)),
        approved_unacknowledged=tuple(sorted(approved_stored - approved_ids)),
    )


@dataclass(frozen=True)
class Event:
    """An outbox event of the phase."""

    id: int
    type: str
    comment_id: int | None


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery planned from one of the phase's events, as the database ends it."""

    id: int
    event_id: int | None
    channel: str
    kind: str
    state: str
    comment_id: int | None
    last_error: str | None = None
    attempts: int = 1
    #: From planned to finished (None: not finished).
    seconds: float | None = None


@dataclass(frozen=True)
class DeliveryCheck:
    """Every event of a phase against what the receivers got."""

    events: Counter[str]
    deliveries: Counter[tuple[str, str]]
    #: Events the worker never planned (``dispatched_at`` unset when the drain ended).
    undispatched: tuple[int, ...]
    #: Events no webhook call of which reached the receiver.
    events_unseen: tuple[int, ...]
    #: Deliveries the database calls delivered that the receiver or SMTP server never got.
    delivered_unseen: tuple[int, ...]
    #: Deliveries still pending or held, or failed, when the drain ended.
    unfinished: tuple[int, ...]
    #: Moderator mails skipped on purpose (moderated before the mail went), by reason.
    skipped: Counter[str]
    #: Calls or mails received beyond the first of their delivery (at least once).
    duplicate_webhooks: int
    duplicate_mails: int
    #: Webhook calls whose signature did not check out.
    unsigned: int
    #: Deliveries claimed more than once (a retry, or a lease taken again).
    attempted_again: tuple[int, ...] = ()
    #: The longest time from planned to finished, seconds.
    slowest: float = 0.0

    @property
    def ok(self) -> bool:
        """Every event planned and heard of; every delivery finished and, if sent, seen."""
        return not (
            self.undispatched or self.events_unseen or self.delivered_unseen or self.unfinished
        )


def check_deliveries(
    events: Sequence[Event],
    undispatched: Sequence[int],
    deliveries: Sequence[DeliveryRow],
    webhook_calls: Mapping[int, int],
    mails: Mapping[int, int],
    unsigned: int = 0,
) -> DeliveryCheck:
    """``webhook_calls``: calls received by delivery id (``webhook-id`` ``msg_<id>``);
    ``mails``: moderator mails received by comment id."""
    seen_events: set[int] = set()
    delivered_unseen, unfinished = [], []
    skipped: Counter[str] = Counter()
    for delivery in deliveries:
        if delivery.channel == "webhook":
            seen = webhook_calls.get(delivery.id, 0) > 0
        else:
            seen = delivery.comment_id is not None and mails.get(delivery.comment_id, 0) > 0
        if delivery.channel == "webhook" and seen and delivery.event_id is not None:
            seen_events.add(delivery.event_id)
        if delivery.state == "delivered" and not seen:
            delivered_unseen.append(delivery.id)
        elif delivery.state in ("pending", "held", "failed"):
            unfinished.append(delivery.id)
        elif delivery.state == "skipped":
            skipped[delivery.last_error or "no reason given"] += 1
    mail_ids = {d.comment_id for d in deliveries if d.channel == "mail"}
    return DeliveryCheck(
        events=Counter(event.type for event in events),
        deliveries=Counter((d.channel, d.state) for d in deliveries),
        undispatched=tuple(sorted(undispatched)),
        events_unseen=tuple(sorted(e.id for e in events if e.id not in seen_events)),
        delivered_unseen=tuple(sorted(delivered_unseen)),
        unfinished=tuple(sorted(unfinished)),
        skipped=skipped,
        duplicate_webhooks=sum(max(0, n - 1) for n in webhook_calls.values()),
        duplicate_mails=sum(max(0, n - 1) for i, n in mails.items() if i in mail_ids),
        unsigned=unsigned,
        attempted_again=tuple(sorted(d.id for d in deliveries if d.attempts > 1)),
        slowest=max((d.seconds for d in deliveries if d.seconds is not None), default=0.0),
    )


@dataclass(frozen=True)
class Verdict:
    """One row of the verdict table."""

    target: str
    measured: str
    met: bool | None  # None: reported, no target

    @property
    def word(self) -> str:
        """met, missed or reported."""
        return {True: "met", False: "**missed**", None: "reported"}[self.met]


def listed(values: Sequence[int], most: int = 10) -> str:
    """The first ``most`` values, and how many more."""
    shown = ", ".join(str(v) for v in values[:most])
    return shown + (f" … ({len(values) - most} more)" if len(values) > most else "")
