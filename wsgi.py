"""The WSGI entry point for gunicorn: ``gunicorn wsgi:app``."""

from commentsvc import create_app

app = create_app()
