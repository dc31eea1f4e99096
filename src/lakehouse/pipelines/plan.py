"""Checking a pipeline without running it: every model and check bound against a ref's schemas.

:func:`plan_pipeline` is what ``lakehouse plan`` (and ``lakehouse run --dry-run``) does:
the pipeline is loaded (YAML, model SQL, dependency order — :func:`load_pipeline`), then
each model, in build order, and each check is **bound** by DuckDB against empty tables
that have the schemas the run would see, and nothing is read or written:

* a table a model or check reads is, in order of precedence, the output of a model
  planned before it (its result schema, as DuckDB infers it from the SELECT), or the
  table as it is on the ref (its Iceberg schema, no rows);
* a model's SELECT is bound (``con.sql``: names resolved, types inferred, nothing
  executed); a misspelled table or column fails here with DuckDB's message, its
  candidate bindings and the line in the model file;
* ``merge``/``incremental`` models also bind their ``unique_key`` and
  ``delete_condition`` against the result;
* checks bind the query the run would evaluate (the failing-rows query of
  :func:`~lakehouse.pipelines.checks.failing_rows_sql`, the row count or the freshness query).

A ``bronze`` table that ingestion creates but that is not on the ref yet (before a
pipeline's first run) gets the schema ingesting its ``folder`` source's first file would
give it (read here, landed nowhere; ``http`` and ``sql`` sources are not contacted). A
table that is on neither and that no model makes is an ``error``. What reads a table that
cannot be had (no source file yet, or a model that does not bind and is not on the ref)
is ``skip``, as is what depends on a skipped model. The plan is the same for both
engines: Spark runs the same SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING, Any, Literal

from lakehouse.pipelines.checks import failing_rows_sql
from lakehouse.pipelines.config import Check, FreshnessCheck, RowCountCheck

if TYPE_CHECKING:
    import pyarrow as pa

    from lakehouse.catalog.iceberg import RefCatalog
    from lakehouse.pipelines.definition import Model, Pipeline
    from lakehouse.session import Lakehouse

PlanStatus = Literal["ok", "error", "skip"]

_LINE = re.compile(r"^LINE (\d+):", re.MULTILINE)
_counter = count()


@dataclass(frozen=True)
class PlannedStep:
    """One source, model or check of a plan, and whether it binds."""

    #: ``source``, ``model`` or ``check``.
    kind: str
    name: str
    status: PlanStatus
    #: What the step reads or does (``ok``), or why it fails or is skipped.
    detail: str = ""
    #: Where it is defined (model file and line of an error, ``pipeline.yaml``, check file).
    where: str | None = None
    #: ``(column, DuckDB type)`` of a model's result.
    columns: tuple[tuple[str, str], ...] = ()
    depends_on: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "where": self.where,
            "columns": [{"name": n, "type": t} for n, t in self.columns],
            "depends_on": list(self.depends_on),
        }


@dataclass(frozen=True)
class PipelinePlan:
    """The outcome of :func:`plan_pipeline`."""

    pipeline: str
    ref: str
    hash: str
    steps: tuple[PlannedStep, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when no step failed to bind (skipped steps are not failures)."""
        return not self.errors

    @property
    def errors(self) -> list[PlannedStep]:
        """The steps that failed to bind."""
        return [s for s in self.steps if s.status == "error"]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "pipeline": self.pipeline,
            "ref": self.ref,
            "hash": self.hash,
            "ok": self.ok,
            "steps": [s.to_json() for s in self.steps],
        }


class _UnavailableError(Exception):
    """A table a step reads has no schema yet (``skip``) or cannot exist (``error``)."""

    def __init__(self, message: str, *, skip: bool) -> None:
        super().__init__(message)
        self.skip = skip


class _Binder:
    """A DuckDB connection holding empty tables with the schemas a run would see."""

    def __init__(self, catalog: RefCatalog, ref: str, pipeline: Pipeline) -> None:
        from lakehouse.query.execution import connect_duckdb

        self.con = connect_duckdb()
        self.catalog = catalog
        self.ref = ref
        self.pipeline = pipeline
        #: lower-cased table name -> None (registered) or the reason it is unavailable
        self.known: dict[str, _UnavailableError | None] = {}
        #: the tables ingestion creates (``bronze.<table>``)
        self.ingested = {t.lower() for s in pipeline.sources for t in s.targets()}
        #: bronze tables not on the ref, whose schema was read from their source's files
        self.inferred: set[str] = set()

    def close(self) -> None:
        self.con.close()

    def from_source(self, name: str) -> tuple[pa.Table | None, str]:
        """Bronze table ``name`` as ingesting its folder source's first file would make it.

        Only ``folder`` sources are read (a plan makes no HTTP request and opens no
        database); ``(None, why)`` when there is nothing to read.
        """
        import datetime as dt
        import tempfile
        from pathlib import Path

        from lakehouse.errors import LakehouseError
        from lakehouse.ingest.bronze import with_ingestion_columns
        from lakehouse.ingest.formats import read_file

        for source in self.pipeline.sources:
            if name.lower() not in {t.lower() for t in source.targets()}:
                continue
            if source.type != "folder":
                return None, f"a {source.type} source is not read by a plan"
            try:
                with tempfile.TemporaryDirectory(prefix="lakehouse-plan-") as scratch:
                    found = source.discover({}, Path(scratch))
                    files = [f for f in found.files if f.table.lower() == name.lower()]
                    if not files:
                        return None, f"source {source.name} offers no file for it now"
                    first = files[0]
                    data = read_file(first.ref, first.format, first.options, name=first.name)
            except (LakehouseError, OSError, ValueError) as exc:
                return None, f"its source cannot be read: {' '.join(str(exc).split())}"
            return (
                with_ingestion_columns(
                    data.slice(0, 0),
                    batch_id="",
                    source_file="",
                    ingested_at=dt.datetime.now(dt.UTC),
                ),
                "",
            )
        return None, "no source of the pipeline feeds it"

    def register(self, name: str, data: pa.Table) -> None:
        """Make ``name`` (``namespace.table``) an empty table with ``data``'s schema."""
        from lakehouse.query.execution import quote_identifier

        namespace, _, table = name.rpartition(".")
        source = f"__lakehouse_plan_{next(_counter)}"
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(namespace)}")
        self.con.register(source, data.slice(0, 0))
        view = f"{quote_identifier(namespace)}.{quote_identifier(table)}"
        self.con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {source}")
        self.known[name.lower()] = None

    def ensure(self, names: Iterable[str]) -> None:
        """Register each table of ``names`` from the ref unless known; raise when unavailable."""
        for name in names:
            key = name.lower()
            if key not in self.known:
                self.known[key] = self.from_ref(name)
            problem = self.known[key]
            if problem is not None:
                raise problem

    def from_ref(self, name: str) -> _UnavailableError | None:
        """Register ``name`` as it is on the ref; the reason when it cannot be."""
        from pyiceberg.exceptions import NoSuchTableError
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        if "." not in name:
            return _UnavailableError(
                f"table {name} has no namespace (write namespace.table)", skip=False
            )
        try:
            table = self.catalog.load_table(name)
        except NoSuchTableError:
            if name.lower() in self.ingested:
                inferred, why = self.from_source(name)
                if inferred is not None:
                    self.register(name, inferred)
                    self.inferred.add(name.lower())
                    return None
                return _UnavailableError(
                    f"{name} is not on {self.ref} yet: ingestion creates it ({why})", skip=True
                )
            return _UnavailableError(
                f"reads {name}, which is not on {self.ref} and no model or source of "
                f"pipeline {self.pipeline.name} makes it",
                skip=False,
            )
        schema = schema_to_pyarrow(table.schema(), include_field_ids=False)
        self.register(name, schema.empty_table())
        return None

    def bind(self, sql: str) -> tuple[pa.Table, tuple[tuple[str, str], ...]]:
        """Bind ``sql`` over the empty tables: its empty result and ``(column, DuckDB type)``.

        It is run, not only prepared, so that an error carries DuckDB's ``LINE n:``
        excerpt; over empty tables that costs next to nothing.
        """
        self.con.execute(sql).fetchall()
        relation = self.con.sql(sql)
        columns = tuple(zip(relation.columns, (str(t) for t in relation.types), strict=True))
        return relation.to_arrow_table(), columns


def plan_pipeline(
    lakehouse: Lakehouse, pipeline: Pipeline, *, ref: str | None = None
) -> PipelinePlan:
    """Bind every model and check of ``pipeline`` against the schemas of ``ref``; write nothing.

    ``ref`` defaults to the lakehouse's default ref. See the module docstring.
    """
    ref = ref or lakehouse.default_ref
    resolved = lakehouse.resolve(ref)
    # pinned to the hash: every table is read as of one commit
    binder = _Binder(lakehouse.catalog(f"@{resolved.hash}"), ref, pipeline)
    steps: list[PlannedStep] = []
    try:
        for source in pipeline.sources:
            into = ", ".join(source.targets())
            steps.append(PlannedStep("source", source.name, "ok", f"{source.type}: into {into}"))
        skipped: set[str] = set()
        for model in pipeline.models:
            step = _plan_model(binder, model, skipped)
            key = model.name.lower()
            if step.status == "skip":
                skipped.add(key)
                binder.known[key] = _UnavailableError(f"{model.name} is skipped", skip=True)
            elif step.status == "error" and binder.known.get(key, False) is not None:
                # its result is unknown: what reads it is bound to the table as on the ref
                binder.known.pop(key, None)
                if binder.from_ref(model.name) is not None:
                    binder.known[key] = _UnavailableError(
                        f"{model.name} does not bind (see its error above)", skip=True
                    )
            steps.append(step)
        for index, check in enumerate(pipeline.checks):
            steps.append(_plan_check(binder, check, index, pipeline))
    finally:
        binder.close()
    return PipelinePlan(pipeline.name, ref, resolved.hash, tuple(steps))


def _plan_model(binder: _Binder, model: Model, skipped: set[str]) -> PlannedStep:
    import duckdb

    from lakehouse.query.analysis import engine_message

    def step(
        status: PlanStatus,
        detail: str,
        where: str | None = None,
        columns: tuple[tuple[str, str], ...] = (),
    ) -> PlannedStep:
        return PlannedStep(
            "model", model.name, status, detail, where or model.file, columns, model.depends_on
        )

    reads = list(dict.fromkeys(model.reads))
    upstream_skipped = [d for d in model.depends_on if d.lower() in skipped]
    if upstream_skipped:
        return step("skip", f"depends on {', '.join(upstream_skipped)}, which is skipped")
    try:
        binder.ensure(r for r in reads if r.lower() != model.name.lower())
    except _UnavailableError as exc:
        status: PlanStatus = "skip" if exc.skip else "error"
        return step(status, str(exc))
    if any(r.lower() == model.name.lower() for r in reads):
        try:  # an incremental model reading its own table: as it is on the ref
            binder.ensure([model.name])
        except _UnavailableError:
            return step("skip", f"reads its own table, which is not on {binder.ref} yet")
    try:
        result, columns = binder.bind(model.sql)
    except duckdb.Error as exc:
        position = _model_position(model, str(exc))
        where = f"{model.file}:{position}" if position else model.file
        return step("error", engine_message(str(exc)), where)
    problem = _merge_problem(binder, model, result)
    binder.register(model.name, result)
    if problem:
        return step("error", problem, columns=columns)
    others = [
        r + (" (from its source's files)" if r.lower() in binder.inferred else "")
        for r in reads
        if r.lower() != model.name.lower()
    ]
    detail = f"{model.config.materialized}; reads {', '.join(others) or 'no table'}"
    return step("ok", detail, columns=columns)


def _merge_problem(binder: _Binder, model: Model, result: pa.Table) -> str | None:
    import duckdb

    from lakehouse.query.analysis import engine_message
    from lakehouse.query.execution import quote_identifier

    config = model.config
    if config.materialized not in ("merge", "incremental"):
        return None
    keys = list(config.unique_key or ())
    missing = [k for k in keys if k not in result.column_names]
    if missing:
        return (
            f"unique_key column(s) {', '.join(missing)} not in the result "
            f"(columns: {', '.join(result.column_names)})"
        )
    if config.delete_condition:
        source = f"__lakehouse_plan_result_{next(_counter)}"
        binder.con.register(source, result)
        try:
            binder.bind(
                f"SELECT coalesce(({config.delete_condition}), false) "
                f"FROM {quote_identifier(source)}"
            )
        except duckdb.Error as exc:
            return f"delete_condition {config.delete_condition!r}: {engine_message(str(exc))}"
        finally:
            binder.con.unregister(source)
    return None


def _check_sql(check: Check) -> str:
    from lakehouse.query.execution import quote_identifier

    def table(name: str) -> str:
        namespace, _, rest = name.rpartition(".")
        return f"{quote_identifier(namespace)}.{quote_identifier(rest)}"

    if isinstance(check, RowCountCheck):
        return f"SELECT count(*) FROM {table(check.model)}"
    if isinstance(check, FreshnessCheck):
        return f"SELECT max({quote_identifier(check.column)}) FROM {table(check.model)}"
    sql = failing_rows_sql(check)
    assert sql is not None
    return sql


def _plan_check(binder: _Binder, check: Check, index: int, pipeline: Pipeline) -> PlannedStep:
    import duckdb

    from lakehouse.query.analysis import engine_message, parse, tables_read

    configured = index < len(pipeline.config.checks)
    where = (
        f"{pipeline.file.name} checks[{index}]"
        if configured
        else f"checks/{check.display_name}.sql"
    )

    def step(status: PlanStatus, detail: str) -> PlannedStep:
        return PlannedStep("check", check.display_name, status, detail, where)

    sql = _check_sql(check)
    try:
        reads = [str(t) for t in tables_read(sql, parse(sql))]
        binder.ensure(reads)
    except _UnavailableError as exc:
        return step("skip" if exc.skip else "error", str(exc))
    try:
        binder.bind(sql)
    except duckdb.Error as exc:
        return step("error", engine_message(str(exc)))
    target = check.target or ", ".join(reads)
    return step("ok", f"{check.type} on {target}")


def _model_position(model: Model, message: str) -> str | None:
    """``line:column`` (or ``line``) in the model file that DuckDB's ``LINE n:`` points at."""
    match = _LINE.search(message)
    if match is None:
        return None
    try:
        text = model.path.read_text(encoding="utf-8")
    except OSError:
        return None
    start = text.find(model.sql)
    offset = text.count("\n", 0, start) if start >= 0 else 0
    line = offset + int(match.group(1))
    # the excerpt line, then a caret line under the offending token (unless cut with "...")
    rest = message[match.end() :].split("\n")
    excerpt = rest[0]
    caret = rest[1] if len(rest) > 1 else ""
    column = caret.find("^") - len(match.group(0))
    if column < 0 or excerpt.lstrip().startswith("..."):
        return str(line)
    return f"{line}:{column}"


__all__ = ["PipelinePlan", "PlannedStep", "plan_pipeline"]
