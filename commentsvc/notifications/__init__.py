"""Mail to people (DESIGN §8): moderators hear of new comments (:mod:`.moderators`, with
the one-click links of :mod:`.links`), commenters of replies (:mod:`.replies`).

Importing the package registers their planners, senders and periodic jobs with the outbox.
"""

from commentsvc.notifications import links, moderators, replies

__all__ = ["links", "moderators", "replies"]
