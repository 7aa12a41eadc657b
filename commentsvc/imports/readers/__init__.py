"""One reader per source format: ``read(path)`` yields its pages and comments as
:mod:`commentsvc.imports.records`, streaming (DESIGN §9)."""

from __future__ import annotations

import importlib

from commentsvc.imports.records import Reader

#: The formats ``commentsvc import`` reads, each a module of this package.
FORMATS = ("wordpress", "disqus", "isso", "remark42", "commento", "commentsvc")


def reader(name: str) -> Reader:
    """The reader of the format ``name`` (one of :data:`FORMATS`)."""
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}: one of {', '.join(FORMATS)}")
    module = importlib.import_module(f"{__name__}.{name}")
    found: Reader = module.read
    return found
