"""Platform metrics (Prometheus) and structured logs, for every process that runs Lakehouse.

**Metrics.** The library records what it does in :func:`metrics` (its own registry, not
prometheus-client's global one, created on first use so that importing this module stays
cheap) from the functions that do the work — the pipeline
runner, ingestion, maintenance and backup — so the CLI, Airflow DAGs, the Python API and
the server all get them:

Families (and their labels):

* ``lakehouse_ingest_rows_total`` — ``source``, ``table``
* ``lakehouse_ingest_bytes_total`` (landed file bytes) — ``source``, ``table``
* ``lakehouse_ingest_files_total`` (files landed) — ``source``, ``table``
* ``lakehouse_ingest_quarantined_batches_total`` — ``source``, ``table``
* ``lakehouse_ingest_rejected_records_total`` (CDC poison events) — ``source``, ``table``
* ``lakehouse_ingest_last_success_timestamp_seconds`` — ``source``, ``table``
* ``lakehouse_cdc_lag_records`` (high watermark - next offset) — ``table``, ``topic``,
  ``partition``
* ``lakehouse_cdc_lag_seconds`` (now - newest event's ``ts_ms``) — ``table``
* ``lakehouse_pipeline_runs_total`` — ``pipeline``, ``status``
* ``lakehouse_pipeline_run_duration_seconds`` (histogram) — ``pipeline``
* ``lakehouse_pipeline_last_run_timestamp_seconds`` — ``pipeline``, ``status``
* ``lakehouse_pipeline_model_duration_seconds`` (histogram) — ``pipeline``, ``model``
* ``lakehouse_pipeline_checks_total`` — ``pipeline``, ``severity``, ``result``
* ``lakehouse_pipeline_failed_blocking_checks`` (last run) — ``pipeline``
* ``lakehouse_maintenance_snapshots_expired_total`` — ``ref``
* ``lakehouse_maintenance_files_compacted_total`` — ``ref``
* ``lakehouse_maintenance_table_failures_total`` — ``operation``
* ``lakehouse_maintenance_gc_files_deleted_total`` — (none but ``job``)
* ``lakehouse_maintenance_gc_bytes_reclaimed_total`` — (none but ``job``)
* ``lakehouse_maintenance_gc_failures_total`` — ``stage`` (``run`` | ``delete``)
* ``lakehouse_maintenance_last_gc_timestamp_seconds`` — ``outcome``
* ``lakehouse_backup_last_success_timestamp_seconds`` — ``destination``
* ``lakehouse_backup_last_verified_timestamp_seconds`` — ``destination``
* ``lakehouse_backup_bytes`` (size of the last backup) — ``destination``
* ``lakehouse_backup_copied_bytes_total`` — ``destination``
* ``lakehouse_backup_duration_seconds`` (last run) — ``destination``, ``operation``
* ``lakehouse_backup_verify_failures_total`` — ``destination``

(Families without a label of their own carry ``job="lakehouse"`` so that no family ever
shows a value that nothing recorded.) ``lakehouse_backup_last_verified_timestamp_seconds``
is the *creation* time of the newest backup that verified, so ``time() - it`` is the age
of the newest restorable backup.

A long-running process (``lakehouse serve``) exposes them at ``/metrics``. A batch process
(``lakehouse run``, ``ingest``, ``maintenance``, ``backup``; an Airflow task) publishes
them when its lakehouse is closed (:func:`publish_metrics`), where the ``metrics``
settings say:

* ``LAKEHOUSE_METRICS__TEXTFILE_DIR`` — the file ``lakehouse.prom`` in that folder, for
  node-exporter's textfile collector. Counters and histograms **accumulate** across
  processes (the file is read, added to and replaced atomically under a lock), gauges
  keep their newest value: ``increase(lakehouse_ingest_rows_total[1d])`` works;
* ``LAKEHOUSE_METRICS__PUSHGATEWAY_URL`` — pushed (POST, replacing only the families
  this process recorded) under ``job`` and ``instance`` (the host name). Counters there
  are those of the last process that pushed them.

**Logs.** Library code only creates loggers; :func:`configure_logging` (called by the CLI
and the server) installs one handler on the root logger writing ``text`` or ``json``
lines. :func:`log_context` binds fields (``run_id``, ``ref``, ``principal`` …) for the
code it wraps; every line logged inside carries them (a :class:`ContextFilter` on the
handler; contextvars, so they follow ``asyncio`` tasks but not new threads). A JSON line::

    {"time": "2026-12-06T23:01:02.345Z", "level": "INFO", "logger": "lakehouse.pipelines.runner",
     "message": "model silver.orders: ok", "run_id": "20261206T230101Z-3f9a1c",
     "ref": "run/tpch/20261206T230101Z-3f9a1c", "pipeline": "tpch", "principal": "wendy"}
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, ParamSpec, TypeVar

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.metrics_core import Metric

    from lakehouse.config import Settings

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

#: File name of the textfile-collector file inside ``LAKEHOUSE_METRICS__TEXTFILE_DIR``.
TEXTFILE_NAME = "lakehouse.prom"
#: The ``job`` label of families without a label of their own.
JOB = "lakehouse"

# Batch work takes seconds to hours.
_RUN_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
_MODEL_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class PlatformMetrics:
    """Every platform metric family, on one registry (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry or CollectorRegistry(auto_describe=True)
        # -- ingestion ----------------------------------------------------------------------------
        self.ingest_rows = Counter(
            "lakehouse_ingest_rows",
            "Rows loaded into bronze (CDC: change events applied), by source and table.",
            ["source", "table"],
            registry=self.registry,
        )
        self.ingest_bytes = Counter(
            "lakehouse_ingest_bytes",
            "Bytes of the files landed in raw and loaded, by source and table.",
            ["source", "table"],
            registry=self.registry,
        )
        self.ingest_files = Counter(
            "lakehouse_ingest_files",
            "Files landed in raw and loaded, by source and table.",
            ["source", "table"],
            registry=self.registry,
        )
        self.ingest_quarantined = Counter(
            "lakehouse_ingest_quarantined_batches",
            "Batches set aside under raw/_rejected (bronze untouched), by source and table.",
            ["source", "table"],
            registry=self.registry,
        )
        self.ingest_rejected_records = Counter(
            "lakehouse_ingest_rejected_records",
            "Change events set aside as poison (not applied), by source and table.",
            ["source", "table"],
            registry=self.registry,
        )
        self.ingest_last_success = Gauge(
            "lakehouse_ingest_last_success_timestamp_seconds",
            "When a batch of the source was last loaded into the table (Unix time).",
            ["source", "table"],
            registry=self.registry,
        )
        self.cdc_lag_records = Gauge(
            "lakehouse_cdc_lag_records",
            "Kafka records not yet applied: the partition's high watermark minus the next offset.",
            ["table", "topic", "partition"],
            registry=self.registry,
        )
        self.cdc_lag_seconds = Gauge(
            "lakehouse_cdc_lag_seconds",
            "Seconds between the newest change event applied (its Debezium ts_ms) and its commit.",
            ["table"],
            registry=self.registry,
        )

        # -- pipeline runs ------------------------------------------------------------------------
        self.pipeline_runs = Counter(
            "lakehouse_pipeline_runs",
            "Pipeline runs, by pipeline and status (success, failed, error).",
            ["pipeline", "status"],
            registry=self.registry,
        )
        self.pipeline_duration = Histogram(
            "lakehouse_pipeline_run_duration_seconds",
            "Wall time of a pipeline run, by pipeline.",
            ["pipeline"],
            buckets=_RUN_BUCKETS,
            registry=self.registry,
        )
        self.pipeline_last_run = Gauge(
            "lakehouse_pipeline_last_run_timestamp_seconds",
            "When the pipeline last ended with this status (Unix time).",
            ["pipeline", "status"],
            registry=self.registry,
        )
        self.model_duration = Histogram(
            "lakehouse_pipeline_model_duration_seconds",
            "Time to build one model during a run, by pipeline and model.",
            ["pipeline", "model"],
            buckets=_MODEL_BUCKETS,
            registry=self.registry,
        )
        self.checks = Counter(
            "lakehouse_pipeline_checks",
            "Quality checks run, by pipeline, severity (error, warn), result (pass, fail, error).",
            ["pipeline", "severity", "result"],
            registry=self.registry,
        )
        self.failed_blocking_checks = Gauge(
            "lakehouse_pipeline_failed_blocking_checks",
            "Blocking checks (severity error) that failed or could not run in the pipeline's last "
            "audited run.",
            ["pipeline"],
            registry=self.registry,
        )

        # -- maintenance --------------------------------------------------------------------------
        self.snapshots_expired = Counter(
            "lakehouse_maintenance_snapshots_expired",
            "Snapshots expired (committed), by branch.",
            ["ref"],
            registry=self.registry,
        )
        self.files_compacted = Counter(
            "lakehouse_maintenance_files_compacted",
            "Data files rewritten by compaction (committed), by branch.",
            ["ref"],
            registry=self.registry,
        )
        self.table_failures = Counter(
            "lakehouse_maintenance_table_failures",
            "Tables a maintenance operation (compact, expire) skipped because of an error.",
            ["operation"],
            registry=self.registry,
        )
        self.gc_files_deleted = Counter(
            "lakehouse_maintenance_gc_files_deleted",
            "Unreachable files the garbage collector deleted.",
            ["job"],
            registry=self.registry,
        )
        self.gc_bytes_reclaimed = Counter(
            "lakehouse_maintenance_gc_bytes_reclaimed",
            "Bytes of the files the garbage collector deleted.",
            ["job"],
            registry=self.registry,
        )
        self.gc_failures = Counter(
            "lakehouse_maintenance_gc_failures",
            "Garbage collection failures: stage 'run' (a collection refused or failed, nothing "
            "deleted) or 'delete' (one file could not be deleted).",
            ["stage"],
            registry=self.registry,
        )
        self.gc_last_run = Gauge(
            "lakehouse_maintenance_last_gc_timestamp_seconds",
            "When a garbage collection last ended with this outcome (success, failed) (Unix time).",
            ["outcome"],
            registry=self.registry,
        )

        # -- backup -------------------------------------------------------------------------------
        self.backup_last_success = Gauge(
            "lakehouse_backup_last_success_timestamp_seconds",
            "When the last backup into the destination completed (Unix time).",
            ["destination"],
            registry=self.registry,
        )
        self.backup_last_verified = Gauge(
            "lakehouse_backup_last_verified_timestamp_seconds",
            "Creation time of the newest backup in the destination that verified (Unix time).",
            ["destination"],
            registry=self.registry,
        )
        self.backup_bytes = Gauge(
            "lakehouse_backup_bytes",
            "Bytes the last backup into the destination holds (shared objects included).",
            ["destination"],
            registry=self.registry,
        )
        self.backup_copied_bytes = Counter(
            "lakehouse_backup_copied_bytes",
            "Bytes copied into the destination's object store (new objects only).",
            ["destination"],
            registry=self.registry,
        )
        self.backup_duration = Gauge(
            "lakehouse_backup_duration_seconds",
            "Wall time of the last backup operation (create, verify) on the destination.",
            ["destination", "operation"],
            registry=self.registry,
        )
        self.backup_verify_failures = Counter(
            "lakehouse_backup_verify_failures",
            "Backup verifications that found problems, by destination.",
            ["destination"],
            registry=self.registry,
        )

    def all(self) -> tuple[Counter | Gauge | Histogram, ...]:
        """Every family."""
        return (
            self.ingest_rows,
            self.ingest_bytes,
            self.ingest_files,
            self.ingest_quarantined,
            self.ingest_rejected_records,
            self.ingest_last_success,
            self.cdc_lag_records,
            self.cdc_lag_seconds,
            self.pipeline_runs,
            self.pipeline_duration,
            self.pipeline_last_run,
            self.model_duration,
            self.checks,
            self.failed_blocking_checks,
            self.snapshots_expired,
            self.files_compacted,
            self.table_failures,
            self.gc_files_deleted,
            self.gc_bytes_reclaimed,
            self.gc_failures,
            self.gc_last_run,
            self.backup_last_success,
            self.backup_last_verified,
            self.backup_bytes,
            self.backup_copied_bytes,
            self.backup_duration,
            self.backup_verify_failures,
        )


_metrics: PlatformMetrics | None = None


def metrics() -> PlatformMetrics:
    """The platform metrics of this process (created on first use: imports prometheus-client)."""
    global _metrics
    if _metrics is None:
        _metrics = PlatformMetrics()
    return _metrics


#: Whether this process recorded anything since it last published.
_recorded = False
#: Textfile folder -> what this process last added to it (counters are added once).
_published: dict[Path, str] = {}
#: Destination -> creation time of the newest backup verified by this process.
_verified: dict[str, float] = {}


def _touch() -> None:
    global _recorded
    _recorded = True


def pending() -> bool:
    """True when this process recorded metrics it has not published yet."""
    return _recorded


def metric_names() -> set[str]:
    """Every sample name the platform registry can expose (``…_total``, ``…_bucket`` …)."""
    names: set[str] = set()
    for family in metrics().registry.collect():
        if family.type == "counter":
            names.update({family.name + "_total", family.name + "_created"})
        elif family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_sum", "_count", "_created"))
        else:
            names.add(family.name)
    return names


# -- recorders (called by the library functions that do the work) ------------------------------


def record_ingest(
    source: str,
    table: str,
    *,
    rows: int,
    files: int = 0,
    size: int = 0,
    quarantined: bool = False,
    rejected_records: int = 0,
) -> None:
    """Count one loaded (or quarantined) batch of ``source`` into ``table``."""
    m = metrics()
    labels = (source, table)
    if quarantined:
        m.ingest_quarantined.labels(*labels).inc()
    else:
        m.ingest_rows.labels(*labels).inc(rows)
        m.ingest_files.labels(*labels).inc(files)
        m.ingest_bytes.labels(*labels).inc(size)
        m.ingest_last_success.labels(*labels).set(time.time())
    if rejected_records:
        m.ingest_rejected_records.labels(*labels).inc(rejected_records)
    _touch()


def record_cdc_lag(
    table: str,
    *,
    newest_event_ms: int | None,
    lag_records: Mapping[tuple[str, int], int] | None = None,
) -> None:
    """Set the CDC lag of ``table``: seconds behind the newest event, records per partition."""
    m = metrics()
    if newest_event_ms is not None:
        m.cdc_lag_seconds.labels(table).set(max(0.0, time.time() - newest_event_ms / 1000.0))
    for (topic, partition), lag in (lag_records or {}).items():
        m.cdc_lag_records.labels(table, topic, str(partition)).set(max(0, lag))
    _touch()


def record_model(pipeline: str, model: str, seconds: float) -> None:
    """Observe the build time of one model."""
    metrics().model_duration.labels(pipeline, model).observe(seconds)
    _touch()


def record_pipeline_run(
    pipeline: str,
    status: str,
    seconds: float,
    checks: Iterable[tuple[str, str]] = (),
    *,
    audited: bool = True,
) -> None:
    """Count one ended run; ``checks`` are its checks as ``(severity, result)``.

    ``audited`` is False when the run ended before its audit: the failed-blocking-checks
    gauge keeps the value of the last audited run then.
    """
    m = metrics()
    m.pipeline_runs.labels(pipeline, status).inc()
    m.pipeline_duration.labels(pipeline).observe(seconds)
    m.pipeline_last_run.labels(pipeline, status).set(time.time())
    blocking = 0
    for severity, result in checks:
        m.checks.labels(pipeline, severity, result).inc()
        blocking += severity == "error" and result != "pass"
    if audited:
        m.failed_blocking_checks.labels(pipeline).set(blocking)
    _touch()


def record_expiry(ref: str, expired: int, table_failures: int = 0) -> None:
    """Count snapshots expired on ``ref`` (committed) and tables that failed."""
    m = metrics()
    m.snapshots_expired.labels(ref).inc(expired)
    if table_failures:
        m.table_failures.labels("expire").inc(table_failures)
    _touch()


def record_compaction(ref: str, files_rewritten: int, table_failures: int = 0) -> None:
    """Count data files compaction rewrote on ``ref`` (committed) and tables that failed."""
    m = metrics()
    m.files_compacted.labels(ref).inc(files_rewritten)
    if table_failures:
        m.table_failures.labels("compact").inc(table_failures)
    _touch()


def record_gc(*, deleted_files: int, deleted_bytes: int, delete_failures: int) -> None:
    """Count one garbage collection that ran (not a dry run)."""
    m = metrics()
    m.gc_files_deleted.labels(JOB).inc(deleted_files)
    m.gc_bytes_reclaimed.labels(JOB).inc(deleted_bytes)
    if delete_failures:
        m.gc_failures.labels("delete").inc(delete_failures)
    m.gc_last_run.labels("failed" if delete_failures else "success").set(time.time())
    _touch()


def record_gc_failure() -> None:
    """Count a garbage collection that failed or refused as a whole."""
    m = metrics()
    m.gc_failures.labels("run").inc()
    m.gc_last_run.labels("failed").set(time.time())
    _touch()


def record_backup(destination: str, *, size: int, copied: int, seconds: float) -> None:
    """Record a completed backup into ``destination``."""
    m = metrics()
    m.backup_last_success.labels(destination).set(time.time())
    m.backup_bytes.labels(destination).set(size)
    m.backup_copied_bytes.labels(destination).inc(copied)
    m.backup_duration.labels(destination, "create").set(seconds)
    _touch()


def record_backup_verify(
    destination: str, *, ok: bool, created_at: dt.datetime | None, seconds: float
) -> None:
    """Record a verification of a backup of ``destination`` created at ``created_at``."""
    m = metrics()
    m.backup_duration.labels(destination, "verify").set(seconds)
    if not ok:
        m.backup_verify_failures.labels(destination).inc()
    elif created_at is not None:
        newest = max(_verified.get(destination, 0.0), created_at.timestamp())
        _verified[destination] = newest  # an older backup verified later does not lower it
        m.backup_last_verified.labels(destination).set(newest)
    _touch()


# -- publishing (batch processes) -------------------------------------------------------------


def _key(sample_name: str, labels: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return sample_name, tuple(sorted(labels.items()))


def _families(text: str) -> list[Metric]:
    """The families of exposition ``text`` (``_created`` samples dropped)."""
    from prometheus_client.parser import text_string_to_metric_families

    out = []
    for family in text_string_to_metric_families(text):
        family.samples = [s for s in family.samples if not s.name.endswith("_created")]
        if family.samples and not family.name.endswith("_created"):
            out.append(family)
    return out


_ADDITIVE = ("counter", "histogram", "summary")


def _subtract(families: list[Metric], earlier: list[Metric]) -> list[Metric]:
    """``families`` with the counter and histogram values of ``earlier`` taken off."""
    before = {
        _key(s.name, s.labels): s.value for f in earlier if f.type in _ADDITIVE for s in f.samples
    }
    for family in families:
        if family.type in _ADDITIVE:
            family.samples = [
                s._replace(value=s.value - before.get(_key(s.name, s.labels), 0.0))
                for s in family.samples
            ]
    return families


def merge_exposition(old: str, new: str, *, published: str = "") -> list[Metric]:
    """``new`` on top of ``old``: counter and histogram samples add up, gauges are replaced.

    Families of ``old`` that ``new`` lacks are kept as they are. ``published`` is what
    the same process merged before (its counters are already in ``old``): only the
    increase since then is added.
    """
    merged: dict[str, Metric] = {f.name: f for f in _families(old)}
    for family in _subtract(_families(new), _families(published)):
        before = merged.get(family.name)
        if before is None or before.type != family.type:
            merged[family.name] = family
            continue
        values = {_key(s.name, s.labels): s for s in before.samples}
        additive = family.type in _ADDITIVE
        for sample in family.samples:
            key = _key(sample.name, sample.labels)
            if additive and key in values:
                sample = sample._replace(value=values[key].value + sample.value)
            values[key] = sample
        before.samples = list(values.values())
    return list(merged.values())


def render(families: list[Metric]) -> bytes:
    """Exposition text of ``families``."""
    from prometheus_client import CollectorRegistry, generate_latest

    class Families:
        def collect(self) -> Iterable[Metric]:
            return families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families())
    return generate_latest(registry)


def recorded_text() -> str:
    """What this process recorded, in the text format (families with samples only)."""
    from prometheus_client import generate_latest

    return generate_latest(metrics().registry).decode("utf-8")


def write_textfile(directory: str | Path) -> Path:
    """Add this process's metrics to ``directory/lakehouse.prom`` (atomic, under a lock).

    Returns the file's path. Raises :class:`OSError` if the folder cannot be written.
    """
    folder = Path(directory).resolve()
    target = folder / TEXTFILE_NAME
    current = recorded_text()
    with open(folder / f".{TEXTFILE_NAME}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            old = target.read_text(encoding="utf-8") if target.exists() else ""
            published = _published.get(folder, "")
            try:
                body = render(merge_exposition(old, current, published=published))
            except ValueError as exc:  # not the text format: start the file again
                logger.warning("replacing %s, which cannot be read: %s", target, exc)
                body = render(merge_exposition("", current))
            scratch = folder / f".{TEXTFILE_NAME}.{os.getpid()}.tmp"
            scratch.write_bytes(body)
            os.replace(scratch, target)  # node-exporter never sees half a file
            _published[folder] = current
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


def push(url: str, job: str = JOB) -> None:
    """Push this process's families to a Pushgateway (replacing only those families)."""
    from prometheus_client import CollectorRegistry, pushadd_to_gateway

    families = _families(recorded_text())

    class Families:
        def collect(self) -> Iterable[Metric]:
            return families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families())
    pushadd_to_gateway(
        url, job=job, registry=registry, grouping_key={"instance": socket.gethostname()}
    )


def publish_metrics(settings: Settings) -> None:
    """Publish what this process recorded where ``settings.metrics`` says (if anywhere).

    Called when a lakehouse is closed. A destination that fails is logged as a warning:
    metrics never fail the work they describe. Publishes once per recording (a second
    call without new records does nothing, so counters are not added twice).
    """
    global _recorded
    target = settings.metrics
    if not _recorded or (target.textfile_dir is None and target.pushgateway_url is None):
        return
    _recorded = False
    if target.textfile_dir is not None:
        try:
            write_textfile(target.textfile_dir)
        except OSError as exc:
            logger.warning("could not write metrics to %s: %s", target.textfile_dir, exc)
    if target.pushgateway_url is not None:
        try:
            push(target.pushgateway_url, target.job)
        except OSError as exc:
            logger.warning("could not push metrics to %s: %s", target.pushgateway_url, exc)


def reset_metrics() -> None:
    """Forget every recorded value (tests; a long-running process never needs it)."""
    global _recorded
    for metric in metrics().all():
        metric.clear()
    _verified.clear()
    _published.clear()
    _recorded = False


# -- logs -------------------------------------------------------------------------------------

LogFormat = Literal["text", "json"]
#: Level names :func:`configure_logging` accepts.
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")

_context: ContextVar[Mapping[str, str] | None] = ContextVar("lakehouse_log_context", default=None)
_providers: dict[str, Callable[[], Mapping[str, str]]] = {}


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Bind ``fields`` (``None`` ones skipped) to every log line of the code inside."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def scoped_log_context(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` in its own :func:`log_context`: what it binds ends with the call."""

    @functools.wraps(function)
    def scoped(*args: P.args, **kwargs: P.kwargs) -> R:
        with log_context():
            return function(*args, **kwargs)

    return scoped


def bind_log_context(**fields: str | None) -> None:
    """Add ``fields`` to the innermost :func:`log_context` (undone when it ends)."""
    _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v}})


def add_log_context_provider(name: str, provider: Callable[[], Mapping[str, str]]) -> None:
    """Add ``provider()``'s fields to every line (the server: the request's principal)."""
    _providers[name] = provider


def current_log_context() -> dict[str, str]:
    """The fields bound to log lines here and now."""
    fields: dict[str, str] = {}
    for provider in list(_providers.values()):
        try:
            fields.update(provider())
        except Exception:  # a provider must never break logging
            continue
    fields.update(_context.get() or {})
    return fields


#: Attributes of every LogRecord: not extra fields.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "context",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


class ContextFilter(logging.Filter):
    """Puts the bound fields on every record (as attributes and as ``record.context``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate ``record``; never drops it."""
        fields = current_log_context()
        for name, value in fields.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        record.context = "".join(f" {k}={v}" for k, v in fields.items())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, bound and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line of ``record``."""
        moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
        line: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"
_HANDLER_MARK = "_lakehouse_handler"


def configure_logging(
    fmt: LogFormat | str = "text", level: str = "WARNING", stream: IO[str] | None = None
) -> None:
    """Send every log line to ``stream`` (stderr) as ``text`` or ``json``, from ``level`` up.

    Replaces a handler installed by an earlier call (so the CLI can apply the settings
    file's values once it has read them); leaves other handlers alone.
    """
    name = level.upper()
    if name not in LOG_LEVELS:
        raise ValueError(f"invalid log level {level!r}: use one of {', '.join(LOG_LEVELS)}")
    if fmt not in ("text", "json"):
        raise ValueError(f"invalid log format {fmt!r}: use text or json")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(name)


def logging_configured() -> bool:
    """True once :func:`configure_logging` installed its handler in this process."""
    return any(getattr(h, _HANDLER_MARK, False) for h in logging.getLogger().handlers)


__all__ = [
    "LOG_LEVELS",
    "TEXTFILE_NAME",
    "ContextFilter",
    "JsonFormatter",
    "LogFormat",
    "PlatformMetrics",
    "add_log_context_provider",
    "bind_log_context",
    "configure_logging",
    "current_log_context",
    "log_context",
    "logging_configured",
    "merge_exposition",
    "metric_names",
    "metrics",
    "pending",
    "publish_metrics",
    "push",
    "record_backup",
    "record_backup_verify",
    "record_cdc_lag",
    "record_compaction",
    "record_expiry",
    "record_gc",
    "record_gc_failure",
    "record_ingest",
    "record_model",
    "record_pipeline_run",
    "recorded_text",
    "render",
    "reset_metrics",
    "scoped_log_context",
    "write_textfile",
]
