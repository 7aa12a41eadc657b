"""``python -m commentsvc …``: the ``commentsvc`` command."""

from commentsvc.cli import main

main(prog_name="commentsvc")
