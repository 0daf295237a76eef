"""Structured JSON logs with a request id on every line, and Prometheus metrics.

Under gunicorn each worker is a process, so the metrics live in prometheus-client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `ledger serve` before any metric
exists) and `/metrics` adds up every worker's files. Projection positions, lag and stalls
are read at scrape time from the database, so they need no shared state at all.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import falcon
import orjson
import structlog

from api.errors import route_of
from api.staleness import StalenessHeaders, statuses_of
from ledger.group_commit import GroupCommitter
from projections.stalls import Status, statuses

REQUEST_ID_HEADER = "X-Request-Id"
# A caller's id is echoed into logs and headers: keep it short and printable.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/@#=+-]{1,128}$")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

log = structlog.get_logger("ledger.api")


# -- logging -----------------------------------------------------------------------
_second: tuple[int, str] = (-1, "")  # the whole second last stamped, its "YYYY-MM-DDTHH:MM:SS"


def utc_stamp(nanoseconds: int) -> str:
    """The instant as structlog's TimeStamper(fmt="iso", utc=True) writes it, e.g.
    2026-03-03T12:00:00.250000Z (no fraction when it is zero, as isoformat() does).

    The text up to the second is kept for the second it names: a request's log line costs
    one division and one format instead of a timezone-aware datetime."""
    global _second
    second, micros = divmod(nanoseconds // 1000, 1_000_000)
    cached = _second  # one tuple, read and replaced whole: threads never mix two seconds
    if cached[0] != second:
        cached = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{micros:06d}Z" if micros else f"{cached[1]}Z"


def add_timestamp(_logger: Any, _method: str, event_dict: Any) -> Any:
    event_dict["timestamp"] = utc_stamp(time.time_ns())
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        add_timestamp,
    ]


def json_renderer() -> structlog.processors.JSONRenderer:
    """One JSON object per line, encoded by orjson (a third of a request's log line in json)."""
    return structlog.processors.JSONRenderer(serializer=_dumps)


def _dumps(value: Any, default: Any = None, **kwargs: Any) -> str:
    try:
        return orjson.dumps(value, default=default).decode()
    except TypeError:  # what orjson refuses (an integer past 64 bits, a non-text key)
        return json.dumps(value, default=default, **kwargs)


def json_formatter() -> logging.Formatter:
    """A stdlib formatter that renders any library's log record as our JSON line."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *_shared_processors()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            json_renderer(),
        ],
    )


_writer: list[Any] = [None, None]  # [the sys.stderr last written to, its WriteLogger]


def _stderr_logger(*_args: Any) -> structlog.WriteLogger:
    # Looked up per logger, so a replaced sys.stderr (tests, daemons) is honoured.
    stream = sys.stderr
    if _writer[0] is not stream:
        _writer[:] = [stream, structlog.WriteLogger(stream)]
    return _writer[1]  # type: ignore[no-any-return]


class _Installed:
    """What configure_logging installed: its processors and whether its level logs info."""

    processors: tuple[Any, ...] = ()
    info: bool = False


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for structlog and the standard library alike (Settings.log_level)."""
    level = level.upper()
    processors = [*_shared_processors(), structlog.processors.format_exc_info, json_renderer()]
    _Installed.processors = tuple(processors)  # capture_logs changes the list in place
    number = logging.getLevelName(level)
    _Installed.info = isinstance(number, int) and number <= logging.INFO
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning is a log line too, not loose text
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(
        args.exc_type, args.exc_value, args.exc_traceback
    )


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: Any) -> None:
    """A crash's traceback as one JSON line (a bare Ctrl-C stays silent)."""
    if issubclass(kind, (KeyboardInterrupt, SystemExit)):
        return
    log.critical("uncaught exception", exc_info=(kind, error, trace))


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-Id when it is safe to echo, else a fresh one."""
    if header and _SAFE_REQUEST_ID.match(header):
        return header
    return fresh_request_id()


_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def fresh_request_id() -> str:
    """uuid.uuid4().hex, the version and variant bits set as uuid.UUID sets them, without
    building a UUID object (half of what a fresh id cost)."""
    return f"{int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET:032x}"


def log_request(method: str, route: str, status: int, duration_ms: float) -> None:
    """The request's log line: `log.info("request", method=..., route=..., status=...,
    duration_ms=...)`. While the processors configure_logging installed are structlog's,
    they are run here on the event structlog would build and the line is written as its
    WriteLogger writes it: the same line, without a bound logger made for every call (the
    lazy proxy binds one each time, so that a replaced sys.stderr is honoured)."""
    installed = _Installed.processors
    if not installed or tuple(structlog.get_config()["processors"]) != installed:
        # configured elsewhere (a test capturing logs, say)
        log.info("request", method=method, route=route, status=status, duration_ms=duration_ms)
        return
    if not _Installed.info:
        return
    event: Any = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": duration_ms,
        "event": "request",
    }
    for processor in installed:
        event = processor(None, "info", event)
    _stderr_logger().msg(event)


# -- metrics ---------------------------------------------------------------------------
@dataclass
class Metrics:
    """The process's metric objects, created once the multiprocess mode is decided."""

    requests: Any
    latency: Any
    predictions: Any
    batch_sizes: Any
    reads: Any
    # (metric, *label values) -> its child; prometheus keeps every child anyway, and its
    # labels() validates and locks on each call
    children: dict[tuple[str, ...], Any] = field(default_factory=dict)

    def child(self, metric: str, *values: str) -> Any:
        """The metric's child for these label values (in the metric's label order)."""
        key = (metric, *values)
        found = self.children.get(key)
        if found is None:
            found = self.children[key] = getattr(self, metric).labels(*values)
        return found


_metrics: Metrics | None = None


def metrics() -> Metrics:
    """The metrics, created on first use (after PROMETHEUS_MULTIPROC_DIR is set)."""
    global _metrics
    if _metrics is None:
        from prometheus_client import Counter, Histogram

        _metrics = Metrics(
            requests=Counter(
                "ledger_http_requests_total",
                "HTTP requests answered",
                ["method", "route", "status"],
            ),
            latency=Histogram(
                "ledger_http_request_duration_seconds",
                "Time to answer a request",
                ["method", "route", "status"],
                buckets=_LATENCY_BUCKETS,
            ),
            predictions=Counter(
                "ledger_predictions_total", "Rows scored and served", ["deployment", "model"]
            ),
            batch_sizes=Histogram(
                "ledger_group_commit_batch_callers",
                "Callers whose events shared one group commit",
                buckets=_BATCH_BUCKETS,
            ),
            reads=Counter(
                "ledger_projection_reads_total",
                "Projection reads by where they ran: primary, standby, or fallback "
                "(a standby that had not caught up)",
                ["served_by"],
            ),
        )
    return _metrics


def count_served(deployment: str, answer: Any) -> None:
    """Count served rows by model from a prediction answer (one row or a batch)."""
    if type(answer) is dict and "predictions" not in answer:  # one row: no Counter to build
        model = answer.get("model_id")
        if model:
            metrics().child("predictions", deployment, str(model)).inc()
        return
    rows = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(rows, list):
        rows = [answer]
    served = collections.Counter(
        str(row["model_id"]) for row in rows if isinstance(row, dict) and row.get("model_id")
    )
    for model, count in served.items():  # a batch's rows counted once per model
        metrics().child("predictions", deployment, model).inc(count)


def attach_group_commit_metrics(ledger: Any) -> None:
    """Observe the size of every group commit the ledger's writer thread makes."""
    recorder = getattr(ledger, "recorder", None)
    if not isinstance(getattr(recorder, "committer", None), GroupCommitter):
        return  # none, or the writer process's: its batches are not this worker's
    recorder.enable_group_commit(  # a fresh committer, before any request has used it
        max_events=ledger.settings.group_commit_max_events,
        on_batch=metrics().batch_sizes.observe,
    )


class RequestObserver:
    """Binds a request id to every log line, logs the answer and counts it."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        request_id = request_id_from(req.get_header(REQUEST_ID_HEADER))
        req.context.request_id = request_id
        req.context.started = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        request_id = getattr(req.context, "request_id", None) or request_id_from(None)
        resp.set_header(REQUEST_ID_HEADER, request_id)
        elapsed = time.perf_counter() - getattr(req.context, "started", time.perf_counter())
        route, code, method = route_of(req), resp.status_code, req.method
        status = str(code)
        found = metrics()
        found.child("requests", method, route, status).inc()
        found.child("latency", method, route, status).observe(elapsed)
        if method == "POST" and route.endswith("/predictions") and code < 300:
            count_served(str(req.path.split("/")[3]), resp.media)
        # The route template, never the path: a path can name a person (/v1/subjects/{id}/forget).
        log_request(method, route, code, round(elapsed * 1000, 2))
        structlog.contextvars.clear_contextvars()


def middleware(services: Any) -> list[Any]:
    """The observability middleware for create_app, outermost first."""
    ledger = getattr(services, "ledger", None)
    if ledger is not None:
        attach_group_commit_metrics(ledger)
    reads = getattr(services, "reads", None)
    if reads is not None:
        reads.observe = lambda served_by: metrics().child("reads", served_by).inc()
    if ledger is None:
        return [RequestObserver()]
    return [RequestObserver(), StalenessHeaders(statuses_of(services))]


# -- /metrics ----------------------------------------------------------------------------
def registry() -> Any:
    """Every worker's metrics under gunicorn; this process's otherwise."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return REGISTRY
    collected = CollectorRegistry()
    MultiProcessCollector(collected, path=path)
    return collected


class ProjectorLag:
    """A scrape-time collector: each projection's position, lag, and whether it is stalled."""

    def __init__(self, status_of: Callable[[], list[Status]]):
        self._status_of = status_of

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["projection"]
        lag = GaugeMetricFamily(
            "ledger_projector_lag_events",
            "Events recorded but not yet applied, by projection",
            labels=labels,
        )
        position = GaugeMetricFamily(
            "ledger_projection_position", "The last position applied, by projection", labels=labels
        )
        stalled = GaugeMetricFamily(
            "ledger_projection_stalled",
            "1 while the projection cannot apply an event (see /healthz for why), else 0",
            labels=labels,
        )
        try:
            found = self._status_of()
        except Exception as error:  # noqa: BLE001 - a scrape must not fail because a read did
            log.warning("projector lag unavailable", error=str(error))
            found = []
        for status in found:
            lag.add_metric([status.name], status.lag)
            position.add_metric([status.name], status.position)
            stalled.add_metric([status.name], 1 if status.stall is not None else 0)
        yield from (lag, position, stalled)


class MetricsResource:
    """GET /metrics: Prometheus text format (admin)."""

    def __init__(self, status_of: Callable[[], list[Status]] | None):
        self._lag = ProjectorLag(status_of) if status_of else None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        metrics()  # so that a fresh process still lists every family
        body = generate_latest(registry())
        if self._lag is not None:
            lag_registry = CollectorRegistry()
            lag_registry.register(self._lag)
            body += generate_latest(lag_registry)
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = body


def projection_statuses(engine: Any) -> list[Status]:
    """Each projection's position, lag and stall, read now (no projection yet: none)."""
    with engine.connect() as conn:
        return statuses(conn)[1]


def lag_reader(services: Any) -> Callable[[], list[Status]] | None:
    """How far each projection trails the log and whether it is stuck, read at scrape time."""
    ledger = getattr(services, "ledger", None)
    if ledger is None:
        return None
    return lambda: projection_statuses(ledger.engine)


def add_routes(app: falcon.App, services: Any) -> None:
    """Mount /metrics."""
    app.add_route("/metrics", MetricsResource(lag_reader(services)))
