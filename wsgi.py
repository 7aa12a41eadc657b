"""The WSGI entry point for gunicorn: ``gunicorn wsgi:app``."""

from commentsvc import create_app_or_exit

# On a bad setting: one line that says what to set, instead of a traceback per worker. Exit
# status 4 is gunicorn's "application failed to load": the master stops, not respawning.
app = create_app_or_exit(4)
