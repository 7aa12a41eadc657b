"""Widths of the text columns whose length limit is a setting (``MAX_NAME_LENGTH`` and the
like). The models declare those columns with them and the settings bound their limits by
them, without importing the models: gunicorn's master reads the settings, and has no use for
SQLAlchemy."""

from __future__ import annotations

AUTHOR_NAME = 200
AUTHOR_EMAIL = 320
#: A comment's author URL and page URL, and a page's URL.
URL = 2000
PAGE_KEY = 500
#: A comment's page title and a page's title.
PAGE_TITLE = 300
USER_AGENT = 512
