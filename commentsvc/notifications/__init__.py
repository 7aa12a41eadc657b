"""Mail to people (DESIGN §8, §9): moderators hear of new comments (:mod:`.moderators`,
with the one-click links of :mod:`.links`), commenters of replies (:mod:`.replies`) and of
the links that export or erase their personal data (:mod:`.personal_data`).

Importing the package registers their planners, senders and periodic jobs with the outbox.
"""

from commentsvc.notifications import links, moderators, personal_data, replies

__all__ = ["links", "moderators", "personal_data", "replies"]
