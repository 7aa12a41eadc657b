"""The widget's scripts minified in a process of their own: ``python -m commentsvc.minify``
reads a JSON list of ES5 scripts on standard input and writes the list minified.

calmjs's parser, its tables and the tree it builds of the widget take about 10 MiB, and a
worker that minified in process would keep them for as long as it lives, for a job done once.
A worker asks here at its first ``/widget.js`` (:func:`minify_scripts`); this module imports
nothing of the service, so the helper process stays small and starts fast.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence

#: A script's first line, ``/*! … */``, kept as the minified script's first line.
BANNER = re.compile(r"/\*!.*?\*/\n")
#: Seconds the helper process may take.
TIMEOUT = 60


class MinifyError(RuntimeError):
    """The helper process failed; its standard error says why."""


def minify_script(script: str) -> str:
    """``script`` (ES5) minified in this process: whitespace and comments gone, local names
    shortened (no global name, no property and no string changes); its ``/*!`` banner
    kept."""
    from calmjs.parse import es5
    from calmjs.parse.unparsers.es5 import minify_print

    banner = BANNER.match(script)
    code: str = minify_print(es5(script), obfuscate=True, obfuscate_globals=False)
    return (banner.group(0) if banner else "") + code


def minify_scripts(scripts: Sequence[str]) -> list[str]:
    """``scripts`` minified by :func:`minify_script` in a helper process."""
    done = subprocess.run(
        [sys.executable, "-m", __name__],
        input=json.dumps(list(scripts)).encode("utf-8"),
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise MinifyError(
            f"minifying the widget failed ({done.returncode}): "
            + done.stderr.decode("utf-8", "replace").strip()
        )
    minified: list[str] = json.loads(done.stdout)
    return minified


def main() -> None:
    scripts = json.loads(sys.stdin.buffer.read())
    sys.stdout.write(json.dumps([minify_script(script) for script in scripts]))


if __name__ == "__main__":
    main()
