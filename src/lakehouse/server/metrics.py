"""Prometheus metrics of the server, each app on its own registry.

* ``lakehouse_http_requests_total{route,method,status}`` — requests served; ``route``
  is the route template (``/api/v2/trees/{ref}/entries``), ``unmatched`` otherwise;
* ``lakehouse_http_request_duration_seconds{route,method}`` — latency histogram;
* ``lakehouse_catalog_commits_total{operation}`` — commits created
  (``commit``, ``merge``, ``transplant``);
* ``lakehouse_catalog_conflicts_total{operation}`` — requests refused or answered with
  conflicts (``commit``, ``merge``, ``transplant``, ``reference``).
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lakehouse.observability import metrics

#: prometheus-client's multiprocess folder; set for the workers of ``serve --workers N``.
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ServerMetrics:
    """The metrics of one app."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "lakehouse_http_requests",
            "HTTP requests served, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lakehouse_http_request_duration_seconds",
            "Time to serve an HTTP request, by route template and method.",
            ["route", "method"],
            registry=self.registry,
        )
        self.commits = Counter(
            "lakehouse_catalog_commits",
            "Commits created through the API, by operation.",
            ["operation"],
            registry=self.registry,
        )
        self.audit_writes = Counter(
            "lakehouse_audit_writes",
            "Catalog writes recorded in the audit log, by operation and outcome.",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.conflicts = Counter(
            "lakehouse_catalog_conflicts",
            "Requests refused or answered with conflicts, by operation.",
            ["operation"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The text exposition format: the server's families, then the platform's.

        The platform families (:mod:`lakehouse.observability`) are those this process
        recorded: runs, ingestion, maintenance and backups done through the server or
        by code in the same process. With several worker processes (``lakehouse serve
        --workers N`` sets :data:`MULTIPROCESS_DIR_ENV`) every family of every worker,
        summed across them, whichever worker answers the scrape.
        """
        folder = os.environ.get(MULTIPROCESS_DIR_ENV)
        if folder:  # several worker processes (lakehouse serve --workers): sum them all
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged, path=folder)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry) + generate_latest(metrics().registry)


def route_template(scope: Scope) -> str:
    """The template of the route that served ``scope`` (``unmatched`` if none)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    return template if isinstance(template, str) else "unmatched"


def operation_of(scope: Scope) -> str:
    """Which write a request is, for the commit/conflict counters."""
    template = route_template(scope)
    for suffix in ("commit", "merge", "transplant"):
        if template.endswith("/history/" + suffix):
            return suffix
    return "reference"


class MetricsMiddleware:
    """Counts every request and its latency, including those rejected by middleware."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = route_template(scope)
            method: Any = scope.get("method", "")
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - start)


__all__ = ["MetricsMiddleware", "ServerMetrics", "operation_of", "route_template"]
