"""Structured logs, request ids and Prometheus metrics.

Every request gets an id (the caller's ``X-Request-ID`` when it is a sane token, else a new
one), echoed in the response and attached to every log line written while it runs. Each
request is logged once, as one JSON line with its method, path, route, status and
duration: never a body, a query string, an email address or a token.

Metrics use ``prometheus_client``. Under gunicorn with several workers each worker keeps
its own numbers; ``gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR`` so ``/metrics``
adds up every worker's files (the library's multiprocess mode).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, abort, current_app, g, has_request_context, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from pythonjsonlogger.orjson import OrjsonFormatter
from sqlalchemy.exc import SQLAlchemyError

from commentsvc.extensions import db
from commentsvc.models import Comment, CommentStatus, utcnow
from commentsvc.services.events import CommentEvent, comment_committed
from commentsvc.serving import JSON_LOG_FORMAT

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"
#: Methods counted by name; any other token a client sends is counted as "other", so that
#: clients cannot grow the metrics' label sets.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HANDLER_NAME = "commentsvc"

REQUESTS = Counter(
    "commentsvc_http_requests_total",
    "HTTP requests answered, by route and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "commentsvc_http_request_duration_seconds",
    "Time from the request reaching the application to the response, by route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

COMMENT_EVENTS = Counter(
    "commentsvc_comment_events_total",
    "Changes to comments, by event (comment.submitted, comment.approved, …), once committed.",
    ["type"],
)

SPAM_REASONS = Counter(
    "commentsvc_spam_reasons_total",
    "Submissions the abuse rules held or refused, by reason (honeypot, links, …), once stored.",
    ["reason"],
)
RATE_LIMIT_STORAGE_ERRORS = Counter(
    "commentsvc_rate_limit_storage_errors_total",
    "Submissions whose rate limit could not be counted because its storage was unreachable.",
)

request_log = logging.getLogger("commentsvc.request")
bp = Blueprint("metrics", __name__)


class RequestIdFilter(logging.Filter):
    """Stamp every record written during a request with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id") and has_request_context():
            record.request_id = g.get("request_id")
        return True


#: What a request's log line says besides its message, in this order (the JSON format has
#: them as fields).
REQUEST_FIELDS = ("request_id", "method", "path", "route", "status", "duration_ms", "remote_addr")


class TextFormatter(logging.Formatter):
    """Plain text for reading by eye: the message, then the request's fields that the record
    carries as ``name=value``, before any traceback."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = [
            f"{name}={value}"
            for name in REQUEST_FIELDS
            if (value := record.__dict__.get(name)) is not None
        ]
        return " ".join([line, *fields])


def configure_logging(level: str, fmt: str) -> None:
    """Send every log record to standard error, as JSON lines or as plain text.

    Installs one handler on the root logger (replacing the one an earlier call installed),
    so the application's, SQLAlchemy's and Alembic's records all come out the same way.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    if fmt == "json":
        handler.setFormatter(OrjsonFormatter(**JSON_LOG_FORMAT))
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)


def _request_id(environ: dict[str, object]) -> str:
    incoming = environ.get(_REQUEST_ID_ENVIRON)
    if isinstance(incoming, str) and _REQUEST_ID.fullmatch(incoming):
        return incoming
    return os.urandom(16).hex()


@functools.cache
def _request_metrics(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    """The labelled children of the request metrics: looked up once per label set.

    ``route`` is a URL rule or "unmatched", ``method`` one of :data:`_METHODS` or "other",
    and ``status`` a status the application answers with, so there are few sets.
    """
    return REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route)


def _start_request() -> None:
    g.request_id = _request_id(request.environ)
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    context = g._get_current_object()
    request_id = getattr(context, "request_id", None)
    started = getattr(context, "request_started", None)
    if request_id is None or started is None:
        return response
    duration = time.perf_counter() - started
    current = request._get_current_object()  # type: ignore[attr-defined]
    rule = current.url_rule
    route = rule.rule if rule is not None else "unmatched"
    method = current.method if current.method in _METHODS else "other"
    response.headers[REQUEST_ID_HEADER] = request_id
    requests, latency = _request_metrics(method, route, response.status_code)
    requests.inc()
    latency.observe(duration)
    if request_log.isEnabledFor(logging.INFO):
        fields = {
            "request_id": request_id,
            "method": current.method,
            "path": current.path,
            "route": route,
            "status": response.status_code,
            "duration_ms": round(duration * 1000, 2),
            "remote_addr": current.remote_addr,
        }
        # Made and handed to the handlers directly: Logger.info would first walk the whole
        # stack (gunicorn's, Flask's) for the calling line, which no request line shows.
        record = request_log.makeRecord(
            request_log.name, logging.INFO, __file__, 0, "request", (), None, extra=fields
        )
        request_log.handle(record)
    return response


def init_observability(app: Flask) -> None:
    """Request ids and request logging for every request; ``/metrics``."""
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.register_blueprint(bp)
    comment_committed.connect(count_comment_event)


def count_comment_event(change: CommentEvent) -> None:
    """Count a committed change to a comment by its event type (and a submission's
    abuse verdicts by reason)."""
    _event_counter(change.type.value).inc()
    for reason in change.reasons:
        _reason_counter(reason).inc()


def count_rate_limit_failure() -> None:
    """Count a submission whose rate limit storage could not be reached."""
    RATE_LIMIT_STORAGE_ERRORS.inc()


@functools.cache
def _reason_counter(reason: str) -> Any:
    return SPAM_REASONS.labels(reason)


@functools.cache
def _event_counter(kind: str) -> Any:
    return COMMENT_EVENTS.labels(kind)


class CommentsCollector(Collector):
    """Comments by status, read from the database when metrics are scraped."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "commentsvc_comments", "Comments stored, by moderation status.", labels=["status"]
        )
        statement = sa.select(Comment.status, sa.func.count()).group_by(Comment.status)
        try:
            counts = dict.fromkeys(CommentStatus, 0)
            counts.update(dict(db.session.execute(statement).tuples().all()))
        except SQLAlchemyError:
            db.session.rollback()
            current_app.logger.warning("metrics: comment counts unavailable", exc_info=True)
            return
        for status, count in counts.items():
            family.add_metric([status.value], count)
        yield family


class OutboxCollector(Collector):
    """The outbox and its workers (DESIGN §8), read from the database when scraped: the
    queue's depth, its oldest waiting item's age, and each live worker's deliveries by
    outcome since it started (a counter per worker; it restarts from 0 with the worker)."""

    def collect(self) -> Iterator[Metric]:
        from commentsvc.services import outbox

        try:
            state = outbox.queue_state()
        except SQLAlchemyError:
            db.session.rollback()
            current_app.logger.warning("metrics: outbox state unavailable", exc_info=True)
            return
        depth = GaugeMetricFamily(
            "commentsvc_outbox_queue",
            "Outbox work waiting: events not yet planned, deliveries not yet finished.",
            labels=["kind"],
        )
        depth.add_metric(["events"], state.undispatched)
        depth.add_metric(["deliveries"], state.pending)
        yield depth
        yield GaugeMetricFamily(
            "commentsvc_outbox_oldest_seconds",
            "Age of the oldest event or delivery still waiting (0 when none waits).",
            value=state.oldest_seconds,
        )
        now = utcnow()
        beats = GaugeMetricFamily(
            "commentsvc_worker_last_beat_seconds",
            "Seconds since each worker's last heartbeat.",
            labels=["worker"],
        )
        delivered = CounterMetricFamily(
            "commentsvc_worker_deliveries",
            "Delivery attempts by outcome (delivered, retry, failed, skipped) since each "
            "worker started.",
            labels=["worker", "outcome"],
        )
        for beat in state.workers:
            beats.add_metric([beat.name], (now - beat.beat_at).total_seconds())
            for outcome, count in sorted(beat.counts.items()):
                delivered.add_metric([beat.name, outcome], count)
        yield beats
        yield delivered


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics of every worker, plus comments by status."""
    token = current_app.config["METRICS_TOKEN"]
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(given.encode(), token.encode()):
            abort(401)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessMetrics())
    registry.register(CommentsCollector())
    registry.register(OutboxCollector())
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encode(registry), content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


class _ProcessMetrics(Collector):
    """This process's metrics from the default registry (single-process servers)."""

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        yield from REGISTRY.collect()
