"""``python -m benchmarks.soak``: the soak and fault benchmark (see the package's docstring)."""

from benchmarks.soak.cli import main

main()
