"""The WSGI entry point for gunicorn: ``gunicorn wsgi:app``."""

import sys

from commentsvc import create_app
from commentsvc.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # One line that says what to set, instead of a traceback per worker. Exit status 4 is
    # gunicorn's "application failed to load": the master stops rather than respawning.
    print(f"commentsvc: configuration error: {error}", file=sys.stderr, flush=True)
    sys.exit(4)
