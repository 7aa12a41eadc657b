"""What a use case says when it cannot be carried out, in the service's own words.

Services never raise HTTP errors: the HTTP edge maps these to problem+json once
(:mod:`commentsvc.errors`), the panel to its pages, and the CLI to a one-line message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Self


class ServiceError(Exception):
    """A use case refused: ``str(error)`` says why; ``errors`` names the fields at fault."""

    #: A short summary of the kind of refusal, where a caller shows one.
    title: str | None = None

    def __init__(self, message: str, errors: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = {field: list(messages) for field, messages in (errors or {}).items()}

    @classmethod
    def on(cls, field: str, message: str) -> Self:
        """This error, blaming one field."""
        return cls(message, {field: [message]})

    @property
    def field(self) -> str | None:
        """The first field at fault, if any."""
        return next(iter(self.errors), None)


class NotFound(ServiceError):
    """What the request names does not exist (or is out of the caller's reach)."""


class Invalid(ServiceError):
    """Input that breaks a rule; ``errors`` maps each failing field to its messages."""

    def __init__(self, errors: Mapping[str, Sequence[str]], message: str | None = None) -> None:
        super().__init__(
            message or f"Some fields are invalid: {', '.join(sorted(errors))}.", errors
        )

    @classmethod
    def on(cls, field: str, message: str) -> Self:
        return cls({field: [message]}, message)


class Conflict(ServiceError):
    """The change collides with what is stored (a name already taken)."""


class Forbidden(ServiceError):
    """The caller may see this but not change it."""

    title = "Forbidden"


class Closed(ServiceError):
    """The thing exists but does not take this now (a site closed for comments)."""

    title = "Comments closed"


class Throttled(ServiceError):
    """Too many attempts for now; trying again later (after ``retry_after`` seconds, when
    known) may succeed."""

    title = "Too Many Requests"

    def __init__(
        self,
        message: str,
        errors: Mapping[str, Sequence[str]] | None = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message, errors)
        self.retry_after = retry_after


class Unavailable(ServiceError):
    """Something the use case needs cannot be reached now; trying again later may succeed."""

    title = "Service Unavailable"
