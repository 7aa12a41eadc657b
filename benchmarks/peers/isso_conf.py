"""gunicorn's configuration file for Isso in the peer benchmark (``benchmarks/peers``).

Read by the gunicorn of Isso's own virtualenv, which has no commentsvc: the worker and logger
classes of commentsvc's ``gunicorn.conf.py`` are loaded from ``commentsvc/worker.py`` by path
(that module needs only gunicorn and the standard library). Isso's own log is left as Isso sets
it up (INFO: the comment and its moderation links for every new one, its ``notify = stdout``),
as commentsvc logs at its default level too: each system as it ships. Every other setting comes
on the command line, copied from what gunicorn resolves for commentsvc
(``benchmarks/peers/isso_serving.py``).
"""

import importlib.util
import sys
from pathlib import Path
from typing import Any

_WORKER_MODULE = Path(__file__).resolve().parents[2] / "commentsvc" / "worker.py"


def _commentsvc_worker() -> Any:
    """``commentsvc/worker.py`` as a module of its own, ``commentsvc_worker``."""
    spec = importlib.util.spec_from_file_location("commentsvc_worker", _WORKER_MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the forked workers find it there, as any import
    spec.loader.exec_module(module)
    return module


_worker = _commentsvc_worker()
worker_class = _worker.BufferingWorker
logger_class = _worker.Logger
