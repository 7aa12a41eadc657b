"""``python -m benchmarks.load``: the load benchmark (see the package's docstring)."""

from benchmarks.load.cli import main

main()
