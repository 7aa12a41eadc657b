"""Previewing a comment (DESIGN §10): its text rendered as it would be stored, storing nothing."""

from __future__ import annotations

from commentsvc.forms import CommentBodyForm, json_to_formdata, validated
from commentsvc.markup import render
from commentsvc.services import throttling
from commentsvc.services.sites import PublicSite


def preview(site: PublicSite, body: object, address: str | None) -> str:
    """The HTML a comment with this ``body`` (a JSON value, as sent) would be stored with on
    ``site``, in its markup; Invalid naming ``body`` when a submission's body would be refused
    (missing, blank or invisible, too long, not a string, control characters). Throttled when
    the client at ``address`` asked for too many previews (``PREVIEW_RATE_LIMIT``)."""
    throttling.count_preview(address)
    data, type_errors = json_to_formdata({"body": body}, CommentBodyForm)
    form = validated(CommentBodyForm, data, type_errors)
    return render(form.body.data or "", site.markup)
