"""The comments Isso stored on pages whose URI starts with a prefix, read by Isso's own
database layer: run with the interpreter of Isso's virtualenv, never imported.

    .venv/isso-<version>/bin/python -I benchmarks/peers/isso_stored.py ISSO_CFG PREFIX

Prints a JSON list of ``[id, mode, uri]``; Isso's modes: 1 published, 2 pending (held for
moderation), 4 deleted.
"""

import json
import sys

from isso import config
from isso.db import SQLite3

#: Every mode a comment of Isso can have.
MODES = (1, 2, 4)


def main() -> None:
    """List the comments of the pages under the prefix, in every mode."""
    settings, prefix = sys.argv[1:3]
    conf = config.load(config.default_file(), settings)
    database = SQLite3(conf.get("general", "dbpath"), conf)
    rows = [
        [comment["id"], comment["mode"], comment["uri"]]
        for mode in MODES
        for comment in database.comments.fetchall(mode=mode, limit=None)
        if comment["uri"].startswith(prefix)
    ]
    json.dump(rows, sys.stdout)


if __name__ == "__main__":
    main()
