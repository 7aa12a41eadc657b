"""The abuse rules (DESIGN §7): each a small function that looks at one submission and
returns a verdict with its reason, or None. :func:`screen` runs them all, in one place,
for every submission.

A verdict either stores the comment as ``spam`` or holds it (``pending``) for a moderator;
its score says how sure the rule is. The scores of all verdicts combine as independent
evidence (``1 - (1 - a)(1 - b)…``), so the comments most likely to be spam sort first.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

from commentsvc.models import CommentStatus
from commentsvc.services.blocklist import Blocklist, Traits
from commentsvc.services.sites import SiteRules
from commentsvc.text import count_links


class Outcome(enum.IntEnum):
    """What a verdict does to the comment, mildest first."""

    HOLD = 1  # pending, for a moderator, whatever the site's moderation mode
    SPAM = 2  # stored as spam


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    score: float


@dataclass(frozen=True)
class Candidate:
    """A submission as the rules see it."""

    site_id: int
    rules: SiteRules
    body: str
    #: The honeypot field ``subject``: people never see it, so anything in it is a bot's.
    honeypot: str
    #: How long the widget's form was open before it was sent; None: no proof sent.
    fill_ms: int | None
    traits: Traits
    blocklist: Blocklist
    #: How many links the body has as rendered (its markup's links, however spelled);
    #: None: counted in the text as plain text links it.
    links: int | None = None


@dataclass(frozen=True)
class Judgement:
    """All the rules said of a submission: the status it is stored with (``pending`` unless
    a rule found spam: approval at once is decided by the author, after the rules), its
    score and the reasons, in rule order."""

    status: CommentStatus
    score: float
    reasons: tuple[str, ...]
    #: Whether a rule held it: then it waits for a moderator even from a trusted author.
    held: bool


#: Scores of the rules. Honeypot and blocklist are certain; a fast fill or links are only
#: suspicious, more so the more links there are.
CERTAIN = 1.0
TOO_FAST_SCORE = 0.6
LINKS_SCORE = 0.3
LINKS_SCORE_PER_EXTRA = 0.1
LINKS_SCORE_MAX = 0.9


def honeypot(candidate: Candidate) -> Verdict | None:
    if candidate.honeypot:
        return Verdict(Outcome.SPAM, "honeypot", CERTAIN)
    return None


def blocked_email(candidate: Candidate) -> Verdict | None:
    if candidate.blocklist.email(candidate.site_id, candidate.traits):
        return Verdict(Outcome.SPAM, "blocklist:email", CERTAIN)
    return None


def blocked_domain(candidate: Candidate) -> Verdict | None:
    if candidate.blocklist.domain(candidate.site_id, candidate.traits):
        return Verdict(Outcome.SPAM, "blocklist:domain", CERTAIN)
    return None


def blocked_ip(candidate: Candidate) -> Verdict | None:
    if candidate.blocklist.ip(candidate.site_id, candidate.traits):
        return Verdict(Outcome.SPAM, "blocklist:ip", CERTAIN)
    return None


def blocked_word(candidate: Candidate) -> Verdict | None:
    if candidate.blocklist.word(candidate.site_id, candidate.traits):
        return Verdict(Outcome.SPAM, "blocklist:word", CERTAIN)
    return None


def too_fast(candidate: Candidate) -> Verdict | None:
    """Held when the widget proves the form was sent sooner than a person could."""
    minimum = candidate.rules.min_fill_seconds
    if candidate.fill_ms is not None and candidate.fill_ms < minimum * 1000:
        return Verdict(Outcome.HOLD, "too_fast", TOO_FAST_SCORE)
    return None


def too_many_links(candidate: Candidate) -> Verdict | None:
    """Held when the body has more http(s) links than the site allows."""
    links = candidate.links if candidate.links is not None else count_links(candidate.body)
    extra = links - candidate.rules.max_links
    if extra > 0:
        score = min(LINKS_SCORE + LINKS_SCORE_PER_EXTRA * (extra - 1), LINKS_SCORE_MAX)
        return Verdict(Outcome.HOLD, "links", round(score, 2))
    return None


#: Every reason a rule gives, in rule order.
REASONS = (
    "honeypot",
    "blocklist:email",
    "blocklist:domain",
    "blocklist:ip",
    "blocklist:word",
    "too_fast",
    "links",
)

Rule = Callable[[Candidate], Verdict | None]
#: Every rule, in the order their reasons are listed.
RULES: tuple[Rule, ...] = (
    honeypot,
    blocked_email,
    blocked_domain,
    blocked_ip,
    blocked_word,
    too_fast,
    too_many_links,
)


def screen(candidate: Candidate) -> Judgement:
    """Run every rule on a submission."""
    verdicts = [verdict for rule in RULES if (verdict := rule(candidate)) is not None]
    spam = any(verdict.outcome == Outcome.SPAM for verdict in verdicts)
    score = 1 - math.prod(1 - verdict.score for verdict in verdicts)
    return Judgement(
        status=CommentStatus.SPAM if spam else CommentStatus.PENDING,
        score=round(score, 2),
        reasons=tuple(verdict.reason for verdict in verdicts),
        held=bool(verdicts),
    )
