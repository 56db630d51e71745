"""Logs, traces and the pipeline's last-success record, shared by serving and the stages.

Logs (:func:`configure_logging`): one JSON object per line in the Elastic Common Schema
(``ecs-logging``), ready for Filebeat/Elasticsearch, with ``service.name``, the request id
(``http.request.id``, from ``X-Request-ID``) and, while a span is recording, ``trace.id``
and ``span.id``. ``LOG_FORMAT=text`` switches back to plain lines.

Traces (:func:`configure_tracing`): OpenTelemetry spans exported over OTLP/HTTP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, and
nowhere otherwise: off by default, so nothing leaves the machine and the serving hot path
pays one ``None`` check per span site. The provider is this module's own (not the
global one), so tests install the SDK's in-memory exporter without touching other code.
Spans are made lean (``benchmarks/tracing.py`` measures them): the SDK's ``start_span``
under one slotted context manager instead of ``start_as_current_span``'s two generator
ones, attributes given at the start in one mapping, only the propagator's own headers
read from a request, and no child span started under a sampled-out one
(``OTEL_TRACES_SAMPLER=parentbased_traceidratio``).

Sampling is decided before the SDK is called, for the parent-based samplers (the default
``parentbased_always_on``, ``parentbased_traceidratio``, ``parentbased_always_off``): a
request whose caller sent an unsampled ``traceparent``, or a new trace the ratio leaves
out, runs with no span at all (a flag in the request's context tells the child sites),
so a sampled-out request costs a random draw instead of an unrecorded SDK span. The SDK
then only sees what is recorded (its sampler: parent-based, always on at the root). Any
other ``OTEL_TRACES_SAMPLER`` is left to the SDK as it stands.

Pipeline runs (:func:`stage`): every stage run under it is a span ``stage <name>``, and a
success is recorded in ``reports/pipeline_status.json`` (``{stage: unix time}``), which the
serving app exposes as ``pipeline_last_success_timestamp_seconds{stage}`` for the
"no successful pipeline run" alert.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import TracebackType

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

#: The request id of the request being handled (``X-Request-ID``), for the log records.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID = 128
PIPELINE_STATUS = "pipeline_status.json"
TRACES_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

_NULL_SPAN: AbstractContextManager[None] = nullcontext()
_tracer: Tracer | None = None
_provider: TracerProvider | None = None
#: The share of new traces recorded when sampling is decided here (parent-based samplers);
#: None when the SDK's own sampler decides (any other ``OTEL_TRACES_SAMPLER``).
_root_ratio: float | None = None
#: True while a request (or root span) that was sampled out runs: no span is started.
_SAMPLED_OUT: ContextVar[bool] = ContextVar("sampled_out", default=False)
_ID_SPACE = 1 << 64
PARENT_BASED_SAMPLERS = {
    "parentbased_always_on": 1.0,
    "parentbased_traceidratio": None,  # OTEL_TRACES_SAMPLER_ARG
    "parentbased_always_off": 0.0,
}
#: The request headers the global propagator reads (W3C: traceparent, tracestate, baggage).
_propagation_fields: frozenset[bytes] = frozenset()


# ---- request ids --------------------------------------------------------------------------
# A new id is 32 hex digits: 16 random per process (re-drawn in a forked child) and a
# counter. Unique like a uuid4 within a fleet, at ~0.4 us instead of ~7 us (no syscall).
_id_prefix = os.urandom(8).hex()
_id_counter = itertools.count()


def _new_id_prefix() -> None:
    global _id_prefix, _id_counter
    _id_prefix, _id_counter = os.urandom(8).hex(), itertools.count()


os.register_at_fork(after_in_child=_new_id_prefix)


def new_request_id() -> str:
    """A fresh request id (32 lowercase hex digits)."""
    return f"{_id_prefix}{next(_id_counter) & 0xFFFFFFFFFFFFFFFF:016x}"


def request_id_from(raw: bytes | None) -> str:
    """The caller's ``X-Request-ID`` when it is printable ASCII of sane length, else a new one."""
    if raw and len(raw) <= MAX_REQUEST_ID and raw.isascii():
        text = raw.decode("ascii")
        if text.isprintable() and not text.isspace():
            return text
    return new_request_id()


# ---- logs ---------------------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Adds the request id and the current trace/span ids to every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate ``record`` (never drops it)."""
        request_id = REQUEST_ID.get()
        if request_id is not None:
            setattr(record, "http.request.id", request_id)
        if _tracer is not None:
            from opentelemetry import trace

            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                setattr(record, "trace.id", format(context.trace_id, "032x"))
                setattr(record, "span.id", format(context.span_id, "016x"))
        return True


def configure_logging(service: str, level: str | None = None) -> logging.Handler:
    """Send the root logger's records to stderr as ECS JSON (``LOG_FORMAT=text``: plain).

    Replaces the root logger's handlers (uvicorn's loggers propagate to it when uvicorn
    runs with ``log_config=None``) and returns the handler installed.
    """
    chosen = (level or os.environ.get("LOG_LEVEL") or "info").upper()
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("LOG_FORMAT", "ecs").lower() == "text":
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    else:
        import ecs_logging

        handler.setFormatter(ecs_logging.StdlibFormatter(extra={"service.name": service}))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen)
    return handler


# ---- traces -------------------------------------------------------------------------------


def traces_endpoint() -> str | None:
    """The OTLP/HTTP traces URL from the environment, or None (tracing off)."""
    specific = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if specific:
        return specific
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return f"{base.rstrip('/')}/v1/traces" if base else None


def root_sampling_ratio() -> float | None:
    """The share of new traces to record, from ``OTEL_TRACES_SAMPLER(_ARG)``.

    None for a sampler that is not parent-based (the SDK decides). The ratio argument
    falls back to 1.0 when it is missing, not a number or outside [0, 1], as the SDK's.
    """
    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if name not in PARENT_BASED_SAMPLERS:
        return None
    fixed = PARENT_BASED_SAMPLERS[name]
    if fixed is not None:
        return fixed
    try:
        ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
    except ValueError:
        return 1.0
    return ratio if 0.0 <= ratio <= 1.0 else 1.0


def configure_tracing(
    service: str, exporter: SpanExporter | None = None, *, batch: bool = True
) -> TracerProvider | None:
    """Start tracing to ``exporter``, or to OTLP/HTTP when an endpoint is configured.

    Returns the provider (call :func:`shutdown_tracing` to flush), or None when neither an
    exporter is given nor an endpoint set: tracing stays off. ``batch=False`` exports each
    span as it ends (tests).
    """
    global _tracer, _provider, _propagation_fields, _root_ratio
    if exporter is None:
        endpoint = traces_endpoint()
        if endpoint is None:
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint)
    from opentelemetry import propagate
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

    shutdown_tracing()
    name = os.environ.get("OTEL_SERVICE_NAME") or service
    ratio = root_sampling_ratio()
    # Decided here (see the module's docstring): the SDK records what reaches it.
    sampler = ParentBased(ALWAYS_ON) if ratio is not None else None
    provider = TracerProvider(
        resource=Resource.create({"service.name": name}), sampler=sampler
    )
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    fields = propagate.get_global_textmap().fields
    _propagation_fields = frozenset(field.lower().encode("latin-1") for field in fields)
    _provider, _tracer, _root_ratio = provider, provider.get_tracer(__name__), ratio
    return provider


def shutdown_tracing() -> None:
    """Flush and stop the current provider, if any; tracing is off afterwards."""
    global _tracer, _provider, _root_ratio
    provider, _provider, _tracer, _root_ratio = _provider, None, None, None
    if provider is not None:
        provider.shutdown()


def tracing_enabled() -> bool:
    """True while a provider is configured."""
    return _tracer is not None


class _SampledOut:
    """``with``: no span; the child span sites skip theirs until it exits.

    Enters as ``span``: a non-recording span with the caller's context (an unsampled
    ``traceparent``) or the invalid span (a new trace left out by the ratio).
    """

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token: object = None

    def __enter__(self) -> Span:
        self._token = _SAMPLED_OUT.set(True)
        return self._span

    def __exit__(self, *exc_info: object) -> None:
        _SAMPLED_OUT.reset(self._token)  # type: ignore[arg-type]


def _leave_out_root() -> bool:
    """Whether a new trace is left out: 64 random bits drawn against the root ratio.

    The draw is ``os.urandom`` (the SDK's ratio sampler compares the trace id, itself
    random, the same way).
    """
    ratio = _root_ratio
    if ratio is None or ratio >= 1.0:
        return False
    return int.from_bytes(os.urandom(8), "big") >= round(ratio * _ID_SPACE)


class _Current:
    """``with``: ``span`` made the current span; on exit, the error recorded and it ends.

    What ``start_as_current_span`` does (exception event, ERROR status), in one slotted
    object rather than two generator-based context managers.
    """

    __slots__ = ("_context", "_span", "_token")

    def __init__(self, span: Span, context: Context | None = None) -> None:
        self._span = span
        self._context = context
        self._token: object = None

    def __enter__(self) -> Span:
        from opentelemetry import context, trace

        self._token = context.attach(trace.set_span_in_context(self._span, self._context))
        return self._span

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        from opentelemetry import context, trace

        span = self._span
        try:
            if error is not None and kind is not None and span.is_recording():
                span.record_exception(error)
                span.set_status(trace.Status(trace.StatusCode.ERROR, f"{kind.__name__}: {error}"))
        finally:
            context.detach(self._token)  # type: ignore[arg-type]
            span.end()


def span(name: str, **attributes: str | int | float | bool) -> AbstractContextManager[Any]:
    """A child span of the current one named ``name``; a shared no-op when tracing is off.

    Also the no-op under a span that was sampled out (a valid, unrecorded one): a
    parent-based sampler would not record the child either, so it is not even started.
    """
    tracer = _tracer
    if tracer is None or _SAMPLED_OUT.get():
        return _NULL_SPAN
    from opentelemetry import trace

    parent = trace.get_current_span()
    if parent.get_span_context().is_valid:
        if not parent.is_recording():
            return _NULL_SPAN
    elif _leave_out_root():
        return _SampledOut(trace.INVALID_SPAN)
    return _Current(tracer.start_span(name, attributes=attributes or None))


def server_span(
    name: str,
    headers: list[tuple[bytes, bytes]],
    attributes: dict[str, str | int | float | bool] | None = None,
) -> AbstractContextManager[Span]:
    """A SERVER span continuing the caller's W3C ``traceparent`` (when it sent one).

    Only the headers the propagator reads are decoded; a request without them starts a
    new trace without calling the propagator at all, from an empty context: not a child
    of a span a host server made current (BentoML's own, unsampled, instrumentation).
    Sampled out (module docstring), no span is started: the context manager enters as a
    non-recording span.
    """
    from opentelemetry import context, propagate, trace

    tracer = _tracer
    if tracer is None:
        raise RuntimeError("server_span needs configure_tracing first")
    carrier: dict[str, str] = {}
    for key, value in headers:
        if key in _propagation_fields:
            carrier[key.decode("latin-1")] = value.decode("latin-1")
    parent = propagate.extract(carrier) if carrier else context.Context()  # empty: falsy
    if _root_ratio is not None:
        remote = trace.get_current_span(parent).get_span_context() if parent else None
        if remote is not None and remote.is_valid:
            if not remote.trace_flags.sampled:
                return _SampledOut(trace.NonRecordingSpan(remote))
        elif _leave_out_root():
            return _SampledOut(trace.INVALID_SPAN)
    started = tracer.start_span(
        name, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes
    )
    return _Current(started, parent)


# ---- pipeline stages ----------------------------------------------------------------------


def status_path(reports_dir: Path) -> Path:
    """Where the stages record their last success."""
    return reports_dir / PIPELINE_STATUS


def record_success(reports_dir: Path, name: str, when: float | None = None) -> None:
    """Set ``name``'s last success to ``when`` (now) in the status file (atomic replace)."""
    path = status_path(reports_dir)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        loaded = {}
    status: dict[str, float] = loaded if isinstance(loaded, dict) else {}
    status[name] = time.time() if when is None else when
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(json.dumps(status, sort_keys=True), encoding="utf-8")
    scratch.replace(path)


@contextmanager
def stage(name: str, reports_dir: Path) -> Iterator[None]:
    """Run a pipeline stage: ECS logs, a ``stage <name>`` span, its success recorded."""
    configure_logging(f"pipeline.{name}")
    configure_tracing("pipeline", batch=False)
    try:
        with span(f"stage {name}", **{"pipeline.stage": name}):
            yield
        record_success(reports_dir, name)
        logging.getLogger(__name__).info("stage %s succeeded", name)
    finally:
        shutdown_tracing()


def stage_entry(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Decorate a stage's ``main``: run as ``python -m <package>.pipeline.<name>``, it runs
    under :func:`stage` (ECS logs, a span, its success recorded); imported, it is unchanged.
    """

    def decorate(main: Callable[[], None]) -> Callable[[], None]:
        if main.__module__ != "__main__":
            return main

        @functools.wraps(main)
        def run() -> None:
            from .config import load_settings

            with stage(name, load_settings().paths.reports_dir):
                main()

        return run

    return decorate
