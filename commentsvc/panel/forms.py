"""The panel's forms (Flask-WTF: every state-changing form carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.validators import DataRequired, Email, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from commentsvc.markup import Markup
from commentsvc.models import BLOCKLIST_KINDS, ApiToken, Moderator, NotifyMode, Site, Webhook
from commentsvc.services.accounts import MIN_PASSWORD_LENGTH
from commentsvc.services.blocklist import MAX_VALUE_LENGTH
from commentsvc.services.sites import MAX_FILL_SECONDS, MAX_LINKS_LIMIT, MODERATION_MODES
from commentsvc.services.webhooks import EVENT_TYPES

EMAIL_LENGTH = Length(max=Moderator.email.type.length)
#: Long enough for any passphrase; a bound so nobody makes the server hash megabytes.
MAX_PASSWORD_LENGTH = 1024


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), EMAIL_LENGTH])
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )


class SiteForm(FlaskForm):
    slug = StringField("Slug", validators=[Optional(), Length(max=Site.slug.type.length)])
    name = StringField("Name", validators=[DataRequired(), Length(max=Site.name.type.length)])
    origins = TextAreaField(
        "Allowed origins (one per line, scheme://host[:port])", validators=[DataRequired()]
    )
    comments_open = BooleanField("Accept new comments", default=True)


#: What each moderation mode does, in one line (DESIGN §7).
MODERATION_EXPLAINED = {
    "all": "Every new comment waits for a moderator.",
    "first": "A comment is published at once when its author (same email and name) already "
    "has an approved comment on this site, unless a rule holds it; others wait.",
}
assert set(MODERATION_EXPLAINED) == set(MODERATION_MODES)


#: What each markup lets commenters write (DESIGN §10), as the site's page offers them.
MARKUP_CHOICES = {
    Markup.TEXT: "Plain text: line breaks kept, web addresses made links",
    Markup.MARKDOWN: "Markdown: emphasis, strong, code, quotes, lists and links; "
    "no images, headings or HTML",
}
assert set(MARKUP_CHOICES) == set(Markup)


class SiteSettingsForm(SiteForm):
    """A site's edit form: its name and origins, its graded pre-moderation (DESIGN §7) and
    its Atom feeds (§8), the markup of its comments (§10).

    The ranges are the service's (:meth:`SiteRules.checked` names each setting out of
    bounds); a setting a request does not send keeps the value the form was given.
    """

    # Choices given by a function: WTForms 3.3 deprecates a list of tuples passed here (it
    # wants its SelectChoice, which 3.2 lacks); one set later, or returned, is fine in both.
    moderation = RadioField(
        "Moderation", choices=lambda: [(mode, mode.capitalize()) for mode in MODERATION_MODES]
    )
    max_links = IntegerField(
        "Most links a comment may have before it is held",
        render_kw={"min": 0, "max": MAX_LINKS_LIMIT, "inputmode": "numeric"},
    )
    min_fill_seconds = IntegerField(
        "Fewest seconds a person takes to write a comment (faster posts are held)",
        render_kw={"min": 0, "max": MAX_FILL_SECONDS, "inputmode": "numeric"},
    )
    #: The site's Atom feeds of approved comments (DESIGN §8), on unless turned off.
    feeds = BooleanField("Publish Atom feeds", default=True)
    #: The markup its comments are written in (DESIGN §10).
    markup = SelectField(
        "Comments are written in", choices=lambda: [(m.value, t) for m, t in MARKUP_CHOICES.items()]
    )


ALL_SITES_LABEL = "All sites, including sites added later"
SITES_LABEL = "Sites (when not all; none selected: no site)"


class ModeratorForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), EMAIL_LENGTH])
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)],
    )
    admin = BooleanField("Administrator (manages sites, moderators and tokens)")
    all_sites = BooleanField(ALL_SITES_LABEL, default=True)
    sites = SelectMultipleField(SITES_LABEL, coerce=str)


class ModeratorUpdateForm(FlaskForm):
    active = BooleanField("Active")
    admin = BooleanField("Administrator")
    all_sites = BooleanField(ALL_SITES_LABEL)
    sites = SelectMultipleField(SITES_LABEL, coerce=str)


class MySettingsForm(FlaskForm):
    """A moderator's own settings: which mails of new comments they get (DESIGN §8)."""

    notify = RadioField(
        "Mail me about new comments",
        choices=lambda: [(mode.value, mode.value.capitalize()) for mode in NotifyMode],
    )


class TokenForm(FlaskForm):
    name = StringField(
        "What is it for?", validators=[DataRequired(), Length(max=ApiToken.name.type.length)]
    )
    moderator = StringField("Moderator email", validators=[DataRequired(), EMAIL_LENGTH])


#: The blocklist's kinds as the add form offers them.
BLOCKLIST_KIND_LABELS = {
    "email": "Email (an address, or @domain for every address there)",
    "domain": "Domain (of the email, the website and any link)",
    "ip": "IP address or range",
    "word": "Word or phrase",
}
assert set(BLOCKLIST_KIND_LABELS) == set(BLOCKLIST_KINDS)


class BlocklistForm(FlaskForm):
    """A blocklist entry to add; the site's choices (and whether "every site" is one of them)
    depend on the moderator."""

    kind = SelectField("Kind", choices=lambda: list(BLOCKLIST_KIND_LABELS.items()))
    value = StringField("Value", validators=[DataRequired(), Length(max=MAX_VALUE_LENGTH)])
    site = SelectField("Site", coerce=str)


class WebhookForm(FlaskForm):
    """A webhook to add (DESIGN §8): where it is called, and which events it hears of (none
    chosen: every one). The rules are the service's (:func:`webhooks.check_url`)."""

    url = URLField(
        "Receiver URL (http or https)",
        validators=[DataRequired(), Length(max=Webhook.url.type.length)],
    )
    events = SelectMultipleField(
        "Events",
        choices=lambda: [(event, event) for event in EVENT_TYPES],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
