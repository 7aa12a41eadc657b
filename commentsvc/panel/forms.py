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


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class SiteForm(FlaskForm):
    slug = StringField("Slug", validators=[Optional(), Length(max=64)])
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    origins = TextAreaField(
        "Allowed origins (one per line, scheme://host[:port])", validators=[DataRequired()]
    )
    comments_open = BooleanField("Accept new comments", default=True)


class ModeratorForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=1024)])
    admin = BooleanField("Administrator (manages sites, moderators and tokens)")
    sites = SelectMultipleField("Sites (none selected: every site)", coerce=str)


class ModeratorUpdateForm(FlaskForm):
    active = BooleanField("Active")
    admin = BooleanField("Administrator")
    sites = SelectMultipleField("Sites (none selected: every site)", coerce=str)


class TokenForm(FlaskForm):
    name = StringField("What is it for?", validators=[DataRequired(), Length(max=100)])
    moderator = StringField("Moderator email", validators=[DataRequired(), Length(max=254)])
