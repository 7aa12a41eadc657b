"""``python -m benchmarks.peers``: commentsvc beside Isso (see the package's docstring)."""

from benchmarks.peers.cli import main

main()
