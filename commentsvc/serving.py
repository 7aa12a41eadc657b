"""How the service is served: settings that ``gunicorn.conf.py`` and the load benchmark share.

Standard library only: ``gunicorn.conf.py`` imports it in the gunicorn master, before any
worker exists.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Mapping
from typing import Any

#: The service's JSON log lines (python-json-logger's formatter arguments): what
#: commentsvc.observability writes, and gunicorn's own lines in the same shape.
JSON_FORMATTER = "pythonjsonlogger.orjson.OrjsonFormatter"
JSON_LOG_FORMAT: dict[str, Any] = {
    "fmt": "%(levelname)s %(name)s %(message)s",
    "rename_fields": {"levelname": "level", "name": "logger"},
    "timestamp": "time",
}


def gunicorn_log_config(log_format: str, level: str, access_log: str | None) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: with the JSON log format its own lines (start-up,
    workers booted and replaced, and the access log when it is on) are JSON lines too, so a
    log shipper reads one format from the whole stream; empty for gunicorn's plain text.

    Only gunicorn's loggers get handlers; the application's come from its own logging
    set-up (``configure_logging``), so nothing is written twice."""
    if log_format.strip().lower() != "json":
        return {}
    access = (
        {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
        if access_log in (None, "-")
        else {"class": "logging.FileHandler", "filename": access_log}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {
                "level": level.upper(),
                "handlers": ["error_console"],
                "propagate": False,
                "qualname": "gunicorn.error",
            },
            "gunicorn.access": {
                "level": "INFO",
                "handlers": ["console"],
                "propagate": False,
                "qualname": "gunicorn.access",
            },
        },
        "handlers": {
            "console": {**access, "formatter": "json"},
            "error_console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
            },
        },
        "formatters": {"json": {"()": JSON_FORMATTER, **JSON_LOG_FORMAT}},
    }


def check_settings_apart(status: int) -> None:
    """Check the service's settings in a child process, and exit with ``status`` after its
    one line saying which setting is wrong, if one is.

    gunicorn's master checks them so that a bad one is said once, not once per worker; but
    checking some of them loads what uses them (a Redis URL is checked by the ``limits``
    library building its storage, an SMTP URL by the mail module), and a master that held
    them would carry their memory for as long as it runs, for nothing. The child takes them
    with it when it exits."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: check, say, and leave without running the master's exit hooks
        code = 0
        try:
            from commentsvc.config import ConfigError, check_environment, exit_for

            try:
                check_environment()
            except ConfigError as error:
                exit_for(error, status)
        except SystemExit as exiting:
            code = exiting.code if isinstance(exiting.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code != 0:
        raise SystemExit(code if code > 0 else 1)


def worker_count(environ: Mapping[str, str]) -> int:
    """``WEB_CONCURRENCY`` of ``environ``, else one per CPU this process may use, at least 2."""
    configured = environ.get("WEB_CONCURRENCY", "").strip()
    if configured:
        return max(1, int(configured))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # A request spends most of its time on the CPU (SQLite, or PostgreSQL close by): more
    # workers than CPUs only queue for them, and on SQLite for its write lock, with worse
    # tail latencies (benchmarks/README.md). With a distant database, set more.
    return max(cpus or 1, 2)


#: The metric types whose files a dead worker leaves behind (live gauges are removed by
#: ``prometheus_client.multiprocess.mark_process_dead``).
_ARCHIVED_KINDS = ("counter", "histogram")


def archive_worker_metrics(directory: str, pid: int) -> None:
    """Fold a dead worker's counters and histograms into one archive file per type.

    Each worker writes its own files; a replaced worker's would stay (in memory, for
    ``/dev/shm``) and be read by every scrape for as long as the server runs. Their sums
    still belong to the totals, so they are added to ``counter_archive.db`` /
    ``histogram_archive.db`` (written aside, then renamed over) and the worker's files go.
    Runs in the gunicorn master; needs ``prometheus_client`` imported already.
    """
    from prometheus_client.mmap_dict import MmapedDict

    for kind in _ARCHIVED_KINDS:
        dead = os.path.join(directory, f"{kind}_{pid}.db")
        if not os.path.exists(dead):
            continue
        archive = os.path.join(directory, f"{kind}_archive.db")
        totals: dict[str, float] = {}
        for path in (archive, dead):
            if os.path.exists(path):
                for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(path):
                    totals[key] = totals.get(key, 0.0) + value
        written = archive + ".partial"  # not *.db: no scrape reads it while it is written
        if os.path.exists(written):
            os.remove(written)
        merged = MmapedDict(written)
        try:
            for key, value in totals.items():
                merged.write_value(key, value, 0.0)
        finally:
            merged.close()
        os.replace(written, archive)
        os.remove(dead)


class EmbeddedWorker:
    """One ``commentsvc worker`` run by gunicorn's master (``COMMENTSVC_RUN_WORKER=true``):
    started when the server is ready, started again (after a pause) whenever it stops, and
    sent SIGTERM when the server exits, so that one container serves and delivers.

    gunicorn's master reaps every child that exits, this one too: a thread watches the
    process with ``poll`` (which then reads the exit as 0) rather than waiting on it.
    """

    #: Pause before starting a worker that stopped, so a failing one does not spin.
    RESTART_PAUSE = 5.0

    def __init__(self, log: Any, command: list[str] | None = None) -> None:
        import sys
        import threading

        self.log = log
        self.command = command or [sys.executable, "-m", "commentsvc", "worker"]
        self.stopping = threading.Event()
        self.process: Any = None
        self._thread = threading.Thread(target=self._watch, name="embedded-worker", daemon=True)

    def start(self) -> EmbeddedWorker:
        self._spawn()
        self._thread.start()
        return self

    def _spawn(self) -> None:
        import subprocess

        self.process = subprocess.Popen(self.command)
        self.log.info("commentsvc worker started (pid %s)", self.process.pid)

    def _watch(self) -> None:
        while not self.stopping.wait(1.0):
            if self.process.poll() is None:
                continue
            self.log.warning(
                "commentsvc worker (pid %s) stopped; starting another in %.0f s",
                self.process.pid,
                self.RESTART_PAUSE,
            )
            if self.stopping.wait(self.RESTART_PAUSE):
                return
            self._spawn()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the worker and wait for it to finish what it is sending."""
        import subprocess

        self.stopping.set()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
        except ChildProcessError:
            pass


def run_worker_setting(environ: Mapping[str, str]) -> bool:
    """Whether ``COMMENTSVC_RUN_WORKER`` (from the environment or env file) is on."""
    value = environ.get("COMMENTSVC_RUN_WORKER", "").strip().lower()
    return value in {"1", "true", "yes", "on"}
