"""The reply-notification checkbox (DESIGN §8) in the widget and in the demo's no-JS form."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from commentsvc import PROJECT_ROOT
from commentsvc.forms import CommentForm
from commentsvc.widget import readable_languages

#: The widget's words for the checkbox: WordPress's, where the widget has the language.
TRANSLATIONS = {
    "en": "Notify me of follow-up comments by email.",
    "de": "Über weitere Kommentare per E-Mail benachrichtigen.",
    "fr": "Prévenez-moi de tous les nouveaux commentaires par e-mail.",
}


def test_every_language_names_the_checkbox() -> None:
    languages = readable_languages()
    for lang, text in TRANSLATIONS.items():
        assert languages[lang]["notify"] == text
    assert all(words["notify"] for words in languages.values())
    # The no-JavaScript form's error page names the field as the widget does.
    assert CommentForm().notify_replies.label.text == TRANSLATIONS["en"]


def test_the_widget_sends_the_checkbox_as_a_boolean(client: FlaskClient) -> None:
    served = client.get("/widget.js").get_data(as_text=True)
    assert 'name:"notify_replies"' in served
    assert re.search(r"\w+\.notify_replies=this\.notify\.checked;", served)


def test_the_demos_no_javascript_form_has_the_checkbox() -> None:
    demo = (PROJECT_ROOT / "demo" / "article.html").read_text("utf-8")
    assert '<input name="notify_replies" type="checkbox">' in demo
