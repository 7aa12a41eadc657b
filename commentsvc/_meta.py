"""Facts about the package itself, importable without building an app."""

from __future__ import annotations

from pathlib import Path

#: The release (CHANGELOG.md, git tag ``v<version>``).
__version__ = "0.3.0"

#: The source checkout (``migrations/`` lives beside the package).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
