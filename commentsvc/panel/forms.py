"""The panel's forms (Flask-WTF: every state-changing form carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, Optional

from commentsvc.models import ApiToken, Moderator, Site
from commentsvc.services.accounts import MIN_PASSWORD_LENGTH

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


class ModeratorForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), EMAIL_LENGTH])
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)],
    )
    admin = BooleanField("Administrator (manages sites, moderators and tokens)")
    sites = SelectMultipleField("Sites (none selected: every site)", coerce=str)


class ModeratorUpdateForm(FlaskForm):
    active = BooleanField("Active")
    admin = BooleanField("Administrator")
    sites = SelectMultipleField("Sites (none selected: every site)", coerce=str)


class TokenForm(FlaskForm):
    name = StringField(
        "What is it for?", validators=[DataRequired(), Length(max=ApiToken.name.type.length)]
    )
    moderator = StringField("Moderator email", validators=[DataRequired(), EMAIL_LENGTH])
