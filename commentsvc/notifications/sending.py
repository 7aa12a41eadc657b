"""Sending one mail as an outbox delivery: the SMTP server's answer as its outcome."""

from __future__ import annotations

from email.message import EmailMessage

from commentsvc.mail import PermanentMailError, TemporaryMailError, mailer
from commentsvc.services.outbox import Outcome


def deliver(message: EmailMessage) -> Outcome:
    """Send ``message``: delivered, failed for good (a 5xx answer) or tried again later
    (a 4xx answer, or the server could not be reached), with the server's code."""
    try:
        mailer().send(message)
    except PermanentMailError as error:
        return Outcome.failed(str(error), error.code)
    except TemporaryMailError as error:
        return Outcome.retry(str(error), error.code)
    return Outcome.delivered()
