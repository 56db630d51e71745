"""Prometheus metrics of the serving app, on a registry of its own (one per app instance).

Exposed at ``GET /metrics``:

* ``http_requests_total{method,route,status}`` and ``http_request_duration_seconds``
  (route *templates*, so cardinality stays bounded; millisecond-scale buckets);
* ``prediction_churn_probability`` (histogram of every served probability, observed
  in bulk with numpy; by task, :data:`.outputs.SCORE_HISTOGRAM`: the predicted class's
  probability, ``prediction_confidence``, or the value, ``prediction_value``),
  ``prediction_rows_total{source}``,
  ``prediction_row_errors_total{reason}``;
* ``model_info{name,version,alias}``, ``model_ready`` and
  ``model_created_timestamp_seconds`` (when the registry created the version served);
* ``data_drift_share``, ``data_drift_detected``, ``data_drift_drifted_columns``,
  ``data_drift_columns``: read from the monitor stage's ``reports/monitor.json`` at
  scrape time, when the file exists;
* ``pipeline_last_success_timestamp_seconds{stage}``: the last successful run of each
  pipeline stage, from ``reports/pipeline_status.json`` (written by :mod:`..telemetry`);
* the process collectors (CPU, memory, open fds) and the Python platform info.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .model import LoadedModel
from .outputs import SCORE_HISTOGRAM, observed

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED_ROUTE = "<unmatched>"


class BulkHistogram(Collector):
    """A label-less histogram fed with whole numpy arrays (one ``searchsorted`` per batch)."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = np.array([*buckets, math.inf], dtype=np.float64)
        self._counts = np.zeros(len(self._bounds), dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, values: np.ndarray) -> None:
        """Add every value of ``values`` to the histogram."""
        if values.size == 0:
            return
        # Prometheus buckets are "less than or equal": index of the first bound >= value.
        index = np.searchsorted(self._bounds, values, side="left")
        counts = np.bincount(index, minlength=len(self._bounds))
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def collect(self) -> Iterator[Metric]:
        """Yield the cumulative buckets in the exposition format's order."""
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._sum
        labels = [("+Inf" if math.isinf(b) else repr(float(b))) for b in self._bounds]
        yield HistogramMetricFamily(
            self._name,
            self._documentation,
            buckets=list(zip(labels, cumulative, strict=True)),
            sum_value=total,
        )

    def describe(self) -> Iterator[Metric]:
        """Describe the metric without values (used at registration)."""
        yield HistogramMetricFamily(self._name, self._documentation)


class JsonFileCollector(Collector):
    """Gauges from a JSON file written by the pipeline, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._summary: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any] | None:
        """Return the parsed summary, or None when the file is absent or unreadable."""
        try:
            stat = self.path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    loaded = json.loads(self.path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    loaded = None
                self._summary = loaded if isinstance(loaded, dict) else None
                self._stamp = stamp
            return self._summary

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges of the file (subclasses)."""
        return iter(())

    def describe(self) -> Iterator[Metric]:
        """Nothing to describe up front (the families depend on the file)."""
        return iter(())


class DriftCollector(JsonFileCollector):
    """Gauges from the monitor stage's JSON summary (``reports/monitor.json``)."""

    def collect(self) -> Iterator[Metric]:
        """Yield the drift gauges present in the summary (nothing without a report)."""
        summary = self.read()
        if summary is None:
            return
        gauges = {
            "data_drift_share": ("drift_share", "Share of drifted feature columns"),
            "data_drift_detected": ("dataset_drift", "1 when the dataset drift test fired"),
            "data_drift_drifted_columns": ("drifted_columns", "Number of drifted columns"),
            "data_drift_columns": ("n_columns", "Number of columns tested for drift"),
        }
        for name, (key, documentation) in gauges.items():
            value = summary.get(key)
            if isinstance(value, bool | int | float):
                yield GaugeMetricFamily(name, f"{documentation} ({self.path.name})", float(value))


class PipelineCollector(JsonFileCollector):
    """``pipeline_last_success_timestamp_seconds{stage}`` from ``pipeline_status.json``."""

    def collect(self) -> Iterator[Metric]:
        """Yield one sample per stage that has succeeded (nothing without the file)."""
        status = self.read()
        if not status:
            return
        family = GaugeMetricFamily(
            "pipeline_last_success_timestamp_seconds",
            f"Unix time of the last successful run of each pipeline stage ({self.path.name})",
            labels=["stage"],
        )
        for stage, when in sorted(status.items()):
            if isinstance(when, int | float) and not isinstance(when, bool):
                family.add_metric([stage], float(when))
        yield family


class ServingMetrics:
    """Every metric of one app instance, and the helpers the app calls to update them."""

    def __init__(self, monitor_report: Path, pipeline_status: Path | None = None) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.probability = BulkHistogram(*SCORE_HISTOGRAM)
        self.registry.register(self.probability)
        self.rows = Counter(
            "prediction_rows_total",
            "Rows scored, by input kind (rows or customer_ids)",
            ["source"],
            registry=self.registry,
        )
        self.row_errors = Counter(
            "prediction_row_errors_total",
            "Requested rows that got no prediction, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.model = Info(
            "model", "Registry identity of the model being served", registry=self.registry
        )
        self.rollout_rows = Counter(
            "rollout_predictions_total",
            "Rows answered with SERVING_ROLLOUT=canary|shadow, by alias and version that "
            "scored them and by role (answered or shadow)",
            ["alias", "version", "role"],
            registry=self.registry,
        )
        self.model_ready = Gauge(
            "model_ready", "1 once the model is loaded and warmed up", registry=self.registry
        )
        self.model_created = Gauge(
            "model_created_timestamp_seconds",
            "Unix time the registry created the model version being served",
            registry=self.registry,
        )
        self.drift = DriftCollector(monitor_report)
        self.registry.register(self.drift)
        self.pipeline = PipelineCollector(
            pipeline_status or monitor_report.with_name("pipeline_status.json")
        )
        self.registry.register(self.pipeline)

    def set_model(self, model: LoadedModel) -> None:
        """Publish the loaded model's name/version/alias and mark the app ready."""
        self.model.info({"name": model.name, "version": model.version, "alias": model.alias})
        if model.created_at is not None:
            self.model_created.set(model.created_at)
        self.model_ready.set(1)

    def observe_predictions(self, probabilities: np.ndarray, source: str) -> None:
        """Count scored rows and add their scores (:func:`.outputs.observed`) to the histogram."""
        self.rows.labels(source=source).inc(len(probabilities))
        self.probability.observe(observed(probabilities))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished HTTP request and record its latency."""
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.latency.labels(method=method, route=route).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """Return the text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware timing every HTTP request (no BaseHTTPMiddleware overhead)."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, then record its route template, status and latency."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            self.metrics.observe_request(
                scope["method"], route, status, time.perf_counter() - started
            )
