"""Gunicorn settings for serving ``wsgi:app`` (the container image uses this file).

Every value can be changed with an environment variable:

``GUNICORN_BIND``
    Address(es) to listen on, separated by spaces or commas; overrides ``HOST``/``PORT``.
``HOST`` / ``PORT``
    Listen on ``HOST:PORT``; default ``0.0.0.0:8000``.
``WEB_CONCURRENCY``
    Worker processes; default one per CPU, at least 2.
``GUNICORN_TIMEOUT``
    Seconds a request may take before its worker is killed and replaced; default 30.
``GUNICORN_READ_TIMEOUT``
    Seconds a client has to send a whole request (and to take a whole response) before its
    connection is closed (408); default 15. See ``commentsvc/worker.py``.
``GUNICORN_WORKER_CONNECTIONS``
    Client connections one worker holds at most, however slow; default 1000.
``GUNICORN_KEEPALIVE``
    Seconds an idle client connection is kept open for its next request; default 0 (closed
    after each response, so that every request goes to an idle worker).
``GUNICORN_MAX_REQUESTS``
    Replace a worker after about this many requests; default 0 (never).
``GUNICORN_ACCESS_LOG``
    Gunicorn's own access log: ``off`` (the default: the application already logs every
    request as one JSON line), ``-`` for standard output, or a file path.
``GUNICORN_LOG_LEVEL``
    Level of gunicorn's own log (standard error); default ``info``.
``FORWARDED_ALLOW_IPS``
    Addresses whose ``X-Forwarded-Proto`` gunicorn trusts; default ``127.0.0.1``. Proxies
    are trusted by the application instead (``COMMENTSVC_TRUSTED_PROXIES``).
``PROMETHEUS_MULTIPROC_DIR``
    Where the workers keep their metrics (see ``on_starting``); default: a fresh directory
    per server run, in ``/dev/shm`` when there is one.

Gunicorn loads ``./gunicorn.conf.py`` by itself when started without ``--config``; command
line options still win over this file.
"""

import contextlib
import glob
import os
import shutil
import sys
import tempfile
from typing import Any

# The master loads neither Flask nor the models (tests/test_footprint.py): each worker imports
# the application after the fork. Nothing imported here may load prometheus_client before
# on_starting sets its directory.
from commentsvc.serving import (
    EmbeddedWorker,
    archive_worker_metrics,
    check_settings_apart,
    gunicorn_log_config,
    run_worker_setting,
    worker_count,
)

_SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None


def _bind() -> list[str]:
    configured = os.environ.get("GUNICORN_BIND", "").replace(",", " ").split()
    if configured:
        return configured
    host = os.environ.get("HOST") or "0.0.0.0"
    port = os.environ.get("PORT") or "8000"
    return [f"{host}:{port}"]


def _log_format() -> str:
    """The service's COMMENTSVC_LOG_FORMAT (environment or env file), which gunicorn's own
    lines follow; a bad setting is said by on_starting, in the one usual way."""
    from commentsvc.config import ConfigError, environment, instance_folder

    try:
        return environment(instance_folder()).get("COMMENTSVC_LOG_FORMAT") or "json"
    except ConfigError:
        return "json"


def _access_log() -> str | None:
    target = os.environ.get("GUNICORN_ACCESS_LOG", "off").strip()
    return None if target.lower() in {"", "off", "none", "false", "0"} else target


bind = _bind()
workers = worker_count(os.environ)
# Reads whole requests and writes whole responses in its main loop, so slow clients hold a
# socket, never a worker: safe without a buffering proxy in front (commentsvc/worker.py).
worker_class = "commentsvc.worker.BufferingWorker"
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))

# Below the 10 s that `docker stop` waits before SIGKILL, so in-flight requests finish.
graceful_timeout = 8
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# Seconds an idle keep-alive connection stays open; 0 (the default) closes every connection
# after its response, as sync workers do: each request then goes to an idle worker (a
# connection kept alive stays with its worker, however busy). The proxy in front keeps the
# browsers' connections alive.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "0"))

# Recycling workers guards against slow leaks; it is off unless asked for (a replaced
# worker's metrics are folded into the archive files, see child_exit). The jitter keeps
# workers from restarting all at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10

# The app (and its database engine and pool) is built in each worker after the fork:
# connections must never be shared between processes.
preload_app = False

# Worker heartbeat files in memory, not on a container's (possibly slow) overlay disk.
if _SHM:
    worker_tmp_dir = _SHM

accesslog = _access_log()
# The path without its query string, and no referrer (a page's address with its own):
# query strings carry tokens, and the service never logs them.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
# Writes the access log only when GUNICORN_ACCESS_LOG asks for one.
logger_class = "commentsvc.worker.Logger"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# With COMMENTSVC_LOG_FORMAT=json (the default) gunicorn's own lines are JSON too.
logconfig_dict = gunicorn_log_config(_log_format(), loglevel, accesslog)

forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


# --- Prometheus metrics of every worker ------------------------------------------------------
# Each worker writes its numbers to files in PROMETHEUS_MULTIPROC_DIR and /metrics adds up
# all the files (prometheus_client's multiprocess mode). The variable must be set before a
# worker imports the library, and the directory must start empty for each server run.
_METRICS_DIR_PREFIX = "commentsvc-metrics-"


def on_starting(server: Any) -> None:
    """In the master, before any worker: check the settings (a bad one is said once, here,
    not once per worker; in a child process, see check_settings_apart), and give the
    workers an empty metrics directory."""
    check_settings_apart(4)  # gunicorn's "application failed to load"
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for stale in glob.glob(os.path.join(directory, "*.db")):
            os.remove(stale)
    else:
        directory = tempfile.mkdtemp(prefix=_METRICS_DIR_PREFIX, dir=_SHM)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    # Import it now, with the variable set: child_exit runs in a signal handler, no place
    # for a first import.
    with contextlib.suppress(ImportError):
        import prometheus_client.multiprocess  # noqa: F401


def child_exit(server: Any, worker: Any) -> None:
    """A worker has gone: its live gauges no longer count, and its counters and
    histograms are folded into the archive files (their sums stay in the totals)."""
    multiprocess = sys.modules.get("prometheus_client.multiprocess")
    if multiprocess is not None:
        multiprocess.mark_process_dead(worker.pid)
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            try:
                archive_worker_metrics(directory, worker.pid)
            except OSError as error:
                server.log.warning("metrics of worker %s not archived: %s", worker.pid, error)


def when_ready(server: Any) -> None:
    """With COMMENTSVC_RUN_WORKER=true, the master also runs a `commentsvc worker` (one
    container that serves and delivers; see commentsvc.serving.EmbeddedWorker)."""
    from commentsvc.config import ConfigError, environment, instance_folder

    try:
        settings = environment(instance_folder())
    except ConfigError:
        return  # on_starting has said what is wrong
    if run_worker_setting(settings):
        server.commentsvc_worker = EmbeddedWorker(server.log).start()


def post_worker_init(worker: Any) -> None:
    """Say when a worker has loaded the application and takes connections."""
    worker.log.info("Worker %s ready", worker.pid)


def on_exit(server: Any) -> None:
    """The server stops: stop the embedded worker, remove the metrics directory that
    ``on_starting`` made."""
    embedded = getattr(server, "commentsvc_worker", None)
    if embedded is not None:
        embedded.stop()
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    made_here = os.path.dirname(directory) == (_SHM or tempfile.gettempdir())
    if made_here and os.path.basename(directory).startswith(_METRICS_DIR_PREFIX):
        shutil.rmtree(directory, ignore_errors=True)
