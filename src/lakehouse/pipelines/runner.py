"""Write-audit-publish: run a pipeline on its own branch, check it, merge it only if clean.

:func:`run_pipeline` does, in order:

0. **expire** — delete the branches of failed runs idle for longer than the
   ``failed_run_retention_days`` setting (:mod:`lakehouse.pipelines.retention`);
1. **branch** — create ``run/<pipeline>/<run-id>`` from ``main`` (with ``ref=`` or
   ``NESSIE_REF``: from that branch, which is then the target of the publish — every
   branch gets the same audit);
2. **ingest** — each ``sources:`` entry through :func:`lakehouse.ingest.ingest` into its
   bronze tables on the branch (a quarantined batch fails the run);
3. **models** — every silver and gold model in dependency order through the engine, one
   commit per model; a model that fails raises :class:`~lakehouse.pipelines.errors.ModelError`
   naming the model and its file, with the original exception as its cause. An
   ``incremental`` model reads only its sources' new rows and merges on its key
   (:mod:`lakehouse.pipelines.incremental`); ``full_refresh`` rebuilds such models from
   everything (their table is emptied first: one more commit);
4. **audit** — every check on the branch; a check of severity ``error`` that fails (or
   cannot run) blocks the publish, a ``warn`` one is only reported;
5. **publish** — merge the branch into ``main`` (or the given branch) in one merge
   commit, then delete the run branch (``keep_branch=True`` keeps it). ``main`` may have
   moved on meanwhile (ingestion, maintenance): a table both sides changed merges by
   content when the changes commute (:meth:`Lakehouse.merge`), and
   :attr:`RunResult.content_merges` says how; otherwise the run ends in ``error``. A run
   that fails leaves its target exactly as it was and keeps the branch for inspection.
   When the merge's reply is lost, the runner looks for its merge commit on the target
   (by run id): found, the run is published; otherwise the run's report is saved with
   status ``error``, its branch kept, and :class:`~lakehouse.errors.CommitStateUnknownError`
   raised — running the pipeline again publishes only what the target lacks.

A ``listener`` receives a :class:`RunEvent` at the start and end of every step, in the
caller's thread: the ``publish`` step's ``start`` event comes after the audit passed and
before the merge, so a listener sees the run in flight at the last moment (the demo
ingests into ``main`` there to show a run publishing after ``main`` moved on).

Every run records its outcome as commit properties ``lakehouse.run.id``,
``lakehouse.run.pipeline`` and ``lakehouse.run.status`` (``success`` | ``failed`` |
``error``, plus ``lakehouse.run.branch`` and, when it applies, ``lakehouse.run.failed-checks``
or ``lakehouse.run.error``): on a final commit of the run branch and, when published, on
the merge commit into ``main`` — so ``lakehouse log`` shows each run.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lakehouse import observability
from lakehouse.control import ensure_not_paused
from lakehouse.pipelines.checks import CheckResult, check_queries, run_check
from lakehouse.pipelines.definition import Model, Pipeline, load_pipeline
from lakehouse.pipelines.engines import Engine, WriteResult, get_engine
from lakehouse.pipelines.errors import (
    IngestStepError,
    ModelError,
    PipelineConfigError,
    PipelineError,
)
from lakehouse.pipelines.incremental import IncrementalRead, plan_reads, reset_table
from lakehouse.pipelines.retention import RUN_STATUS, expire_failed_run_branches
from lakehouse.storage.records import RecordKind, save_record

if TYPE_CHECKING:
    from lakehouse.catalog.model import MergeResult
    from lakehouse.session import Lakehouse

logger = logging.getLogger(__name__)

#: Commit properties recording a run.
RUN_ID = "lakehouse.run.id"
RUN_PIPELINE = "lakehouse.run.pipeline"
RUN_BRANCH = "lakehouse.run.branch"
RUN_FAILED_CHECKS = "lakehouse.run.failed-checks"
RUN_ERROR = "lakehouse.run.error"
#: Kind of the record each run leaves (:mod:`lakehouse.storage.records`).
RUN_RECORD: RecordKind = "pipeline-run"
#: Iceberg snapshot property naming the model that wrote a snapshot.
SNAPSHOT_MODEL = "lakehouse.model"
#: How many of the target's newest commits are searched for a merge whose reply was lost.
_PUBLISHED_LOOKBACK = 50

RunStatus = Literal["success", "failed", "error"]
Step = Literal["branch", "ingest", "model", "check", "publish"]


@dataclass(frozen=True)
class RunEvent:
    """Progress of a run, for listeners (the CLI prints these)."""

    step: Step
    name: str
    phase: Literal["start", "end"]
    #: At the end of a step: ``ok``, ``fail``, ``warn``, ``error`` or ``skip``.
    status: str | None = None
    detail: str = ""
    seconds: float = 0.0


RunListener = Callable[[RunEvent], None]


@dataclass(frozen=True)
class IngestRun:
    """One bronze table fed by one source during a run."""

    source: str
    table: str
    batch_id: str | None
    rows: int
    quarantined: bool = False
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "source": self.source,
            "table": self.table,
            "batch_id": self.batch_id,
            "rows": self.rows,
            "quarantined": self.quarantined,
            "message": self.message,
        }


@dataclass(frozen=True)
class ModelRun:
    """One model built during a run."""

    model: str
    file: str
    write: WriteResult
    seconds: float
    #: How an ``incremental`` model read its sources (``None`` for other models).
    incremental: IncrementalRead | None = None

    @property
    def materialized(self) -> str:
        """The model's materialization (``incremental`` models write with ``merge``)."""
        return "incremental" if self.incremental is not None else self.write.materialized

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "model": self.model,
            "file": self.file,
            **self.write.to_json(),
            "materialized": self.materialized,
            "incremental": self.incremental.to_json() if self.incremental else None,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class RunResult:
    """The outcome of :func:`run_pipeline`."""

    pipeline: str
    run_id: str
    #: The branch the run wrote to.
    branch: str
    #: The branch a successful run merges into (``main``, or the ``ref`` given).
    target: str | None
    #: Head of the run branch when the run started (the target's head for a new branch).
    base_hash: str
    status: RunStatus = "success"
    #: True when the run was merged into :attr:`target`.
    merged: bool = False
    #: The commit on :attr:`target` recording the published run.
    merge_hash: str | None = None
    #: Tables both the run and :attr:`target` changed, merged by content at publish:
    #: name -> how (``merged by content (…)``).
    content_merges: dict[str, str] = field(default_factory=dict)
    #: The run branch's head at the end (``None`` if it was deleted after publishing).
    head_hash: str | None = None
    branch_deleted: bool = False
    ingested: list[IngestRun] = field(default_factory=list)
    models: list[ModelRun] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    error: str | None = None
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the run succeeded (and was merged into its target)."""
        return self.status == "success"

    @property
    def failed_checks(self) -> list[CheckResult]:
        """Blocking checks that failed or could not run."""
        return [c for c in self.checks if c.blocking]

    @property
    def warnings(self) -> list[CheckResult]:
        """Checks of severity ``warn`` that did not pass."""
        return [c for c in self.checks if not c.passed and not c.blocking]

    @property
    def quarantined(self) -> list[IngestRun]:
        """Batches ingestion set aside."""
        return [i for i in self.ingested if i.quarantined]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "status": self.status,
            "branch": self.branch,
            "target": self.target,
            "merged": self.merged,
            "merge_hash": self.merge_hash,
            "content_merges": dict(self.content_merges),
            "base_hash": self.base_hash,
            "head_hash": self.head_hash,
            "branch_deleted": self.branch_deleted,
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "ingested": [i.to_json() for i in self.ingested],
            "models": [m.to_json() for m in self.models],
            "checks": [c.to_json() for c in self.checks],
        }


def new_run_id(now: dt.datetime | None = None) -> str:
    """A run id: UTC time plus a random suffix (``20260101T120000Z-3f9a1c``)."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def run_branch(pipeline: str, run_id: str) -> str:
    """The branch of a run: ``run/<pipeline>/<run-id>``."""
    return f"run/{pipeline}/{run_id}"


def _describe(exc: BaseException) -> str:
    from lakehouse.errors import LakehouseError
    from lakehouse.query.analysis import first_line

    if isinstance(exc, LakehouseError):
        return first_line(str(exc)) or type(exc).__name__
    text = first_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def model_error_boundary(model: Model) -> Iterator[None]:
    """Turn any error of ``model``'s code into a :class:`ModelError` naming the model.

    The original exception stays as ``__cause__`` (its traceback shows with ``--debug``).
    """
    try:
        yield
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(model.name, model.file, _describe(exc)) from exc


class _Run:
    """The state of one run (see :func:`run_pipeline`)."""

    def __init__(
        self,
        lakehouse: Lakehouse,
        pipeline: Pipeline,
        result: RunResult,
        listener: RunListener | None,
        full_refresh: Collection[str] = (),
    ) -> None:
        self.lakehouse = lakehouse
        self.pipeline = pipeline
        self.result = result
        self.listener = listener
        #: Names (lower case) of the incremental models to rebuild from everything.
        self.full_refresh = frozenset(n.lower() for n in full_refresh)

    def emit(self, event: RunEvent) -> None:
        if self.listener is not None:
            self.listener(event)

    @contextmanager
    def step(self, step: Step, name: str) -> Iterator[dict[str, Any]]:
        """Emit start/end events around a step; the body sets ``status``/``detail``."""
        outcome: dict[str, Any] = {"status": "ok", "detail": ""}
        self.emit(RunEvent(step, name, "start"))
        started = time.perf_counter()
        try:
            yield outcome
        except BaseException as exc:
            detail = exc.reason if isinstance(exc, ModelError) else _describe(exc)
            outcome["status"], outcome["detail"] = "error", detail
            raise
        finally:
            seconds = time.perf_counter() - started
            self.emit(RunEvent(step, name, "end", outcome["status"], outcome["detail"], seconds))
            detail = f" ({outcome['detail']})" if outcome["detail"] else ""
            logger.info("%s %s: %s in %.3fs%s", step, name, outcome["status"], seconds, detail)

    # -- steps ------------------------------------------------------------------------------

    def ingest(self) -> None:
        if not self.pipeline.sources:
            return
        from lakehouse.ingest import IngestError, ingest

        for source in self.pipeline.sources:
            with self.step("ingest", source.name) as outcome:
                try:
                    results = ingest(self.lakehouse, source, branch=self.result.branch)
                except IngestError as exc:
                    raise IngestStepError(f"ingest of source '{source.name}': {exc}") from exc
                rows = 0
                for r in results:
                    reasons = "; ".join(r.quarantined.reasons) if r.quarantined else ""
                    self.result.ingested.append(
                        IngestRun(r.source, r.table, r.batch_id, r.rows_loaded, not r.ok, reasons)
                    )
                    rows += r.rows_loaded
                bad = [r.table for r in results if not r.ok]
                outcome["detail"] = f"{rows} row(s) into {len(results)} table(s)"
                if bad:
                    outcome["status"] = "fail"
                    outcome["detail"] += f"; quarantined: {', '.join(bad)}"

    def build(self, engine: Engine) -> None:
        for model in self.pipeline.models:
            with self.step("model", model.name) as outcome:
                started = time.perf_counter()
                props = {
                    RUN_ID: self.result.run_id,
                    RUN_PIPELINE: self.pipeline.name,
                    SNAPSHOT_MODEL: model.name,
                }
                reads: IncrementalRead | None = None
                with model_error_boundary(model):
                    if model.config.incremental:
                        reads, written = self.build_incremental(engine, model, props)
                    else:
                        written = engine.write(
                            model.name, model.sql, model.config, properties=props
                        )
                self.result.models.append(
                    ModelRun(model.name, model.file, written, time.perf_counter() - started, reads)
                )
                outcome["detail"] = _write_detail(written)
                if reads is not None:
                    outcome["detail"] += f"; {reads.describe()}"

    def build_incremental(
        self, engine: Engine, model: Model, props: dict[str, str]
    ) -> tuple[IncrementalRead, WriteResult]:
        """Plan the model's reads, write its new rows with ``merge``, record its state."""
        catalog = self.lakehouse.catalog(self.result.branch)
        full_refresh = model.name.lower() in self.full_refresh
        if full_refresh:
            reset_table(catalog, model.name, props)
        reason = None if engine.incremental_reads else f"the {engine.name} engine reads it all"
        reads = plan_reads(catalog, model, full_refresh=full_refresh, full_reason=reason)
        if reads.nothing_new:  # nothing to merge: no query, no commit
            return reads, WriteResult(model.name, "merge", 0)
        with engine.reading(reads.sources):
            written = engine.write(
                model.name,
                model.sql,
                model.config.as_merge(),
                properties={**props, **reads.properties()},
            )
        return reads, written

    def audit(self, engine: Engine) -> None:
        """Run every check; the engine prepares their queries together (:meth:`Engine.batch`)."""
        checks = self.pipeline.checks
        if not checks:
            return
        with engine.batch([q for check in checks for q in check_queries(check)]):
            for check in checks:
                with self.step("check", check.display_name) as outcome:
                    checked = run_check(engine, check)
                    self.result.checks.append(checked)
                    if checked.passed:
                        outcome["status"] = "ok"
                    else:
                        outcome["status"] = "fail" if checked.blocking else "warn"
                        outcome["detail"] = checked.message

    # -- records ----------------------------------------------------------------------------

    def properties(self) -> dict[str, str]:
        result = self.result
        props = {
            RUN_ID: result.run_id,
            RUN_PIPELINE: result.pipeline,
            RUN_STATUS: result.status,
            RUN_BRANCH: result.branch,
        }
        failed = [c.name for c in result.failed_checks]
        if failed:
            shown = ", ".join(failed[:10]) + (f" (+{len(failed) - 10})" if len(failed) > 10 else "")
            props[RUN_FAILED_CHECKS] = shown
        if result.error:
            props[RUN_ERROR] = result.error[:500]
        return props

    def message(self) -> str:
        result = self.result
        text = f"Run {result.run_id} of pipeline {result.pipeline}: {result.status}"
        if result.failed_checks:
            text += f" ({len(result.failed_checks)} blocking check(s) failed)"
        elif result.error:
            text += f" ({result.error})"
        return text

    def record(self, branch: str) -> str | None:
        """Commit the run's outcome on ``branch`` (a commit that changes no content)."""
        from lakehouse.catalog.model import CommitMeta, ContentKey, Unchanged

        key: ContentKey | None = None
        if self.result.models:
            key = ContentKey.parse(self.result.models[-1].model)
        else:
            entries = self.lakehouse.store.entries(branch)
            key = entries[0].key if entries else None
        if key is None:
            logger.info("run %s: nothing on %s to record the run on", self.result.run_id, branch)
            return None
        meta = CommitMeta(
            message=self.message(),
            author=self.lakehouse.settings.author,
            properties={"application": "lakehouse", **self.properties()},
        )
        return self.lakehouse.store.commit(branch, [Unchanged(key)], meta).hash

    def published(self, target: str, message: str) -> str | None:
        """The commit of ``target`` that merged this run (``message``), if one landed."""
        for entry in self.lakehouse.log(target, limit=_PUBLISHED_LOOKBACK):
            props = entry.meta.properties
            if props.get(RUN_ID) == self.result.run_id and entry.meta.message == message:
                return entry.hash
        return None

    def publish(self, keep_branch: bool) -> None:
        from lakehouse.catalog.model import CommitMeta
        from lakehouse.errors import CommitConflictError, CommitStateUnknownError

        result = self.result
        assert result.target is not None
        with self.step("publish", f"{result.branch} -> {result.target}") as outcome:
            result.head_hash = self.record(result.branch)
            meta = CommitMeta(
                message=f"{self.message()} (merged {result.branch})",
                author=self.lakehouse.settings.author,
                properties={"application": "lakehouse", **self.properties()},
            )
            merged: MergeResult | None
            try:
                # a table ingestion also appended to meanwhile merges by content
                merged = self.lakehouse.merge(result.branch, result.target, meta=meta)
            except CommitConflictError as exc:
                result.status = "error"
                result.error = f"merge into {result.target} failed: {exc}"
                outcome["status"], outcome["detail"] = "error", result.error
                result.head_hash = self.record(result.branch)
                return
            except CommitStateUnknownError as exc:
                # the reply was lost: the merge commit carries the run id, so look for it
                try:
                    landed = self.published(result.target, meta.message)
                except Exception:  # still unreachable: the outcome stays unknown
                    landed = None
                if landed is None:
                    result.status = "error"
                    result.error = (
                        f"the merge into {result.target} may or may not have been applied "
                        f"({exc}); run branch '{result.branch}' kept: run the pipeline again, "
                        "it publishes only what is not on the target yet"
                    )
                    raise
                logger.info("run %s: the merge whose reply was lost landed", result.run_id)
                merged, result.merge_hash = None, landed
                outcome["detail"] = f"merged at {landed[:12]} (found after a lost reply)"
            if merged is None:  # found on the target after a lost reply
                pass
            elif merged.was_applied and merged.resultant_target_hash:
                result.content_merges = {
                    str(d.key): d.resolution for d in merged.details if d.resolution is not None
                }
                result.merge_hash = merged.resultant_target_hash
                outcome["detail"] = f"merged at {result.merge_hash[:12]}"
                if result.content_merges:
                    outcome["detail"] += (
                        f", {len(result.content_merges)} table(s) merged by content"
                    )
            else:  # nothing changed: still record the run on the target
                result.merge_hash = self.record(result.target)
                outcome["detail"] = "no changes to merge"
            result.merged = True
            if not keep_branch:
                self.lakehouse.delete_branch(result.branch)
                result.branch_deleted = True
                result.head_hash = None


def _write_detail(written: WriteResult) -> str:
    if written.materialized == "merge":
        if not written.committed and not written.created:
            return f"merge: {written.rows} row(s), no changes"
        return (
            f"merge: {written.inserted} inserted, {written.updated} updated, "
            f"{written.deleted} deleted"
        )
    verb = "created" if written.created else written.materialized
    return f"{verb}: {written.rows} row(s)"


def _full_refresh_models(pipeline: Pipeline, full_refresh: bool | Collection[str]) -> list[str]:
    """The incremental models ``full_refresh`` names; an unknown or other model is an error."""
    incremental = [m.name for m in pipeline.models if m.config.incremental]
    if isinstance(full_refresh, bool):
        return incremental if full_refresh else []
    if isinstance(full_refresh, str):
        full_refresh = [full_refresh]
    known = ", ".join(incremental) or "none"
    for name in full_refresh:
        if not pipeline.has_model(name):
            raise PipelineConfigError(
                f"full refresh of {name}: pipeline {pipeline.name} has no such model "
                f"(incremental models: {known})"
            )
        model = pipeline.model(name)
        if not model.config.incremental:
            raise PipelineConfigError(
                f"full refresh of {model.name}: it is not incremental (materialized: "
                f"{model.config.materialized}) and reads everything on every run "
                f"(incremental models: {known})"
            )
    return list(full_refresh)


@observability.scoped_log_context
def run_pipeline(
    lakehouse: Lakehouse,
    path_or_name: str | Path | Pipeline,
    *,
    ref: str | None = None,
    run_id: str | None = None,
    pipelines_dir: str | Path | None = None,
    engine: str | None = None,
    listener: RunListener | None = None,
    keep_branch: bool = False,
    full_refresh: bool | Collection[str] = False,
    in_place: bool = False,
) -> RunResult:
    """Run a pipeline with write-audit-publish (see the module docstring).

    ``path_or_name`` is a pipeline folder, its ``pipeline.yaml``, a name looked up in
    ``pipelines_dir`` (default ``./pipelines``) or a loaded :class:`Pipeline`. ``ref``
    (default: ``NESSIE_REF``, else ``main``) is the branch the run starts from and merges
    into when clean. Returns the
    :class:`RunResult` (``status`` ``failed`` when a blocking check failed, ``error``
    when the merge failed); raises :class:`~lakehouse.pipelines.errors.PipelineError`
    when the pipeline cannot be loaded or a source or model fails (the run branch is kept
    and the outcome recorded on it). ``engine`` (``duckdb`` | ``spark``) runs the models;
    default: the ``LAKEHOUSE_COMPUTE__ENGINE`` setting (``spark`` in the cluster profile).
    ``full_refresh`` rebuilds incremental models from everything: ``True`` all of them, or
    the models named (each must be an incremental model of the pipeline).
    ``in_place=True`` writes straight to ``ref`` and never merges: for a step of a run
    driven from outside (the Airflow DAG runs each step on its run branch, then publishes).
    """

    ensure_not_paused(lakehouse, "pipeline run")
    from lakehouse.catalog.model import validate_ref_name

    pipeline = (
        path_or_name
        if isinstance(path_or_name, Pipeline)
        else load_pipeline(path_or_name, pipelines_dir)
    )
    engine_class = get_engine(engine or lakehouse.settings.engine)
    rebuild = _full_refresh_models(pipeline, full_refresh)
    run_id = run_id or new_run_id()
    principal = lakehouse.settings.author
    observability.bind_log_context(run_id=run_id, pipeline=pipeline.name, principal=principal)
    started = time.perf_counter()
    ref = ref if ref is not None else lakehouse.settings.ref
    target: str | None = (
        lakehouse.store.writable_branch(ref).name if ref else lakehouse.default_branch
    )
    if in_place:
        if not ref:
            raise PipelineConfigError("an in-place run needs the branch to write to (ref=)")
        branch, target = str(target), None
        base = lakehouse.resolve(branch).hash
    else:
        expired = expire_failed_run_branches(lakehouse)
        if expired:
            logger.info("expired %d failed run branch(es): %s", len(expired), expired)
        branch = validate_ref_name(run_branch(pipeline.name, run_id))
        base = lakehouse.create_branch(branch, str(target)).hash
    result = RunResult(pipeline.name, run_id, branch, target, base)
    observability.bind_log_context(ref=branch)
    logger.info("run of %s on %s started (target: %s)", pipeline.name, branch, target)
    run = _Run(lakehouse, pipeline, result, listener, rebuild)
    run.emit(RunEvent("branch", branch, "end", "ok", f"from {target}" if target else "in place"))
    try:
        run.ingest()
        with engine_class(lakehouse, branch) as compute:
            run.build(compute)
            run.audit(compute)
    except Exception as exc:
        result.status = "error"
        result.error = _describe(exc)
        result.seconds = time.perf_counter() - started
        try:
            result.head_hash = run.record(branch)
        except Exception:  # do not hide the run's own error behind this one
            logger.warning("run %s: could not record the failure on %s", run_id, branch)
        _save(lakehouse, result)
        if isinstance(exc, PipelineError):
            exc.run_id, exc.branch = run_id, branch
            if target is not None:
                exc.args = (f"{exc}; {target} unchanged, run branch '{branch}' kept",)
        raise
    if result.failed_checks or result.quarantined:
        result.status = "failed"
    if target is not None and result.status == "success":
        try:
            run.publish(keep_branch)
        except Exception as exc:  # e.g. the merge's outcome is unknown: keep the run's report
            if result.status == "success" and not result.merged:
                result.status, result.error = "error", _describe(exc)
            result.seconds = time.perf_counter() - started
            _save(lakehouse, result)
            raise
    else:
        result.head_hash = run.record(branch)
    result.seconds = time.perf_counter() - started
    _save(lakehouse, result)
    return result


def _save(lakehouse: Lakehouse, result: RunResult) -> None:
    """Keep the run's report (``lakehouse runs show``, the console's run page) and metrics."""
    for model in result.models:
        observability.record_model(result.pipeline, model.model, model.seconds)
    observability.record_pipeline_run(
        result.pipeline,
        result.status,
        result.seconds,
        [(c.severity, c.status) for c in result.checks],
        audited=result.status != "error" or bool(result.checks),
    )
    logger.info("run %s ended: %s in %.3fs", result.run_id, result.status, result.seconds)
    save_record(
        lakehouse.warehouse,
        lakehouse.settings.fileio_properties(),
        RUN_RECORD,
        result.run_id,
        result.to_json(),
    )


__all__ = [
    "RUN_BRANCH",
    "RUN_ERROR",
    "RUN_FAILED_CHECKS",
    "RUN_ID",
    "RUN_PIPELINE",
    "RUN_STATUS",
    "IngestRun",
    "ModelRun",
    "RunEvent",
    "RunListener",
    "RunResult",
    "RunStatus",
    "model_error_boundary",
    "new_run_id",
    "run_branch",
    "run_pipeline",
]
