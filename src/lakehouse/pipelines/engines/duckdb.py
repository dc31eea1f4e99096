"""The DuckDB engine: models run in-process over the Iceberg tables of the run's branch.

Queries go through :mod:`lakehouse.query` (Iceberg scan planning, DuckDB reading the
planned files); results are committed back as Iceberg commits through the branch's
:class:`~lakehouse.catalog.iceberg.RefCatalog` (:mod:`lakehouse.pipelines.materialize`),
one commit per model:

* ``full_refresh`` — the table's rows become the result (its schema follows the result;
  a column whose type changed incompatibly makes the table be dropped and created again,
  the only case that takes two commits);
* ``append`` — the result is appended;
* ``merge`` — on ``unique_key``: result rows matching ``delete_condition`` delete their key
  from the table; the other rows are upserted with :func:`lakehouse.tables.upsert`: the
  old versions are found by key in the candidate data files only, rows identical to the
  table's current version are left alone, and the change is one row-delta snapshot
  (position delete files, or rewritten files for a ``copy-on-write`` table). Nothing
  changed, no commit. The result must not hold a key twice nor a NULL key.

The audit (:meth:`DuckDBEngine.batch`) plans every check's query at one commit of the
branch and runs them all in **one** sandboxed connection whose allow-list is the union of
the files those plans read — the files of the branch's tables at that commit that some
check reads, and no other — instead of opening a locked DuckDB per query.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakehouse.pipelines.engines.base import Engine, WriteResult
from lakehouse.pipelines.errors import PipelineError
from lakehouse.pipelines.incremental import execute_reading
from lakehouse.pipelines.materialize import (
    BatchStream,
    SchemaChangeError,
    append_rows,
    compatible_stream,
    create_table,
    iceberg_compatible,
    replace_rows,
)

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from lakehouse.pipelines.config import ModelConfig
    from lakehouse.query.errors import QueryError
    from lakehouse.query.execution import QueryPlan, QuerySession

logger = logging.getLogger(__name__)

_SOURCE = "__lakehouse_model_result"
#: The rows of ``__flagged`` (the result of a merge model) that are upserted.
_UPSERTS = "SELECT * EXCLUDE (__lh_delete) FROM __flagged WHERE NOT __lh_delete"


class MergeError(PipelineError, ValueError):
    """The model's result cannot be merged (missing, NULL or duplicate keys; bad condition)."""


def _q(name: str) -> str:
    from lakehouse.query.execution import quote_identifier

    return quote_identifier(name)


def _table_sql(name: str) -> str:
    namespace, _, table = name.rpartition(".")
    return f"{_q(namespace)}.{_q(table)}"


def _total_records(table: Table) -> int:
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.get("total-records", "0") or 0)


@dataclass
class _Batch:
    """One :meth:`DuckDBEngine.batch`: its pinned session, plans and shared connection."""

    session: QuerySession
    connection: duckdb.DuckDBPyConnection
    #: By query text: its plan, or the error planning it raised (raised again by execute).
    plans: dict[str, QueryPlan | Exception] = field(default_factory=dict)

    def plan(self, sql: str) -> QueryPlan | Exception:
        """``sql``'s plan at the batch's commit (made once), or the error planning raised."""
        planned = self.plans.get(sql)
        if planned is None:
            planned = self.plans[sql] = _plan_or_error(self.session, sql)
        return planned


def _plan_or_error(session: QuerySession, sql: str) -> QueryPlan | Exception:
    """``session.plan(sql)``, or the error it raised (a check reports it as its outcome)."""
    from lakehouse.errors import LakehouseError

    try:
        return session.plan(sql)
    except (LakehouseError, ValueError, TypeError) as exc:
        return exc


class DuckDBEngine(Engine):
    """In-process DuckDB over the Iceberg tables of branch ``ref``."""

    name = "duckdb"
    incremental_reads = True
    _batch: _Batch | None = None

    def execute(self, sql: str) -> pa.Table:
        """Run ``sql`` over the branch's current tables (each call sees the latest commit).

        Within :meth:`reading`, incremental sources read only their new rows; within
        :meth:`batch`, every query reads the commit the batch started at.
        """
        from lakehouse import query
        from lakehouse.query.execution import run_registered

        if any(r.mode == "incremental" for r in self._reads):
            return execute_reading(self.lakehouse, self.ref, sql, self._reads)
        if self._batch is not None:
            planned = self._batch.plan(sql)
            if isinstance(planned, Exception):
                raise planned
            return run_registered(self._batch.connection, planned)
        return query.sql(self.lakehouse, sql, self.ref)

    @contextmanager
    def batch(self, queries: Sequence[str]) -> Iterator[None]:
        """Plan ``queries`` at the branch's current commit; run them in one locked connection.

        The connection (:func:`lakehouse.query.sandbox.connect`, with the engine's memory
        limit and spill folder) may read exactly the union of the files the plans of
        ``queries`` read; each query registers its tables' views, runs, and removes them.
        Another query executed within the block is planned at the same commit and runs in
        the same connection: files it reads that are not allowed there are read through
        PyIceberg (:func:`lakehouse.query.execution.register`), never allowed afterwards.
        A query that cannot be planned (a missing table, a forbidden statement) raises its
        error when it is executed, as it would outside the batch. Nothing is shared within
        :meth:`reading`.
        """
        from lakehouse import query
        from lakehouse.query.execution import allowed_paths, unordered
        from lakehouse.query.sandbox import connect

        if self._batch is not None or any(r.mode == "incremental" for r in self._reads):
            yield
            return
        session = query.session(self.lakehouse, self.ref)  # pinned: one commit for all
        plans: dict[str, QueryPlan | Exception] = {}
        paths: dict[str, None] = {}
        for sql in dict.fromkeys(queries):
            planned = plans[sql] = _plan_or_error(session, sql)
            if not isinstance(planned, Exception):
                paths.update(dict.fromkeys(allowed_paths(planned)))
        compute = self.lakehouse.settings.compute
        temp = compute.duckdb_temp_directory
        con = connect(
            paths,
            memory_limit=compute.duckdb_memory_limit,
            temp_directory=str(temp) if temp is not None else None,
            ordered=not any(unordered(p) for p in plans.values() if not isinstance(p, Exception)),
        )
        self._batch = _Batch(session, con, plans)
        try:
            yield
        finally:
            self._batch = None
            con.close()

    def read(self, table: str, *, columns: Sequence[str] | None = None) -> pa.Table:
        """Read ``table`` of the branch (deletes applied), all or some ``columns``."""
        selected = ", ".join(_q(c) for c in columns) if columns else "*"
        return self.execute(f"SELECT {selected} FROM {_table_sql(table)}")

    @contextmanager
    def _connection(self, sql: str) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
        """A memory-limited connection where ``sql`` can run (its tables registered)."""
        from lakehouse.pipelines.incremental import reading_connection

        compute = self.lakehouse.settings.compute
        temp = compute.duckdb_temp_directory
        with reading_connection(
            self.lakehouse,
            self.ref,
            sql,
            self._reads,
            memory_limit=compute.duckdb_memory_limit,
            temp_directory=str(temp) if temp is not None else None,
        ) as opened:
            yield opened

    def _stream(self, relation: duckdb.DuckDBPyRelation) -> BatchStream:
        """``relation``'s rows as Iceberg-compatible record batches, read as written."""
        import duckdb

        try:
            reader = relation.to_arrow_reader(self.lakehouse.settings.compute.batch_rows)
        except duckdb.Error as exc:
            raise _query_error(exc) from exc
        return compatible_stream(_reporting(reader))

    def write(
        self,
        table: str,
        sql: str,
        config: ModelConfig,
        *,
        properties: Mapping[str, str] | None = None,
    ) -> WriteResult:
        """Run ``sql`` and commit the result into ``table`` (see the module docstring).

        The result streams out of DuckDB into data files (it is never whole in memory);
        DuckDB itself works within ``compute.duckdb_memory_limit`` and spills beyond it.
        """
        catalog = self.lakehouse.catalog(self.ref)
        props = dict(properties or {})
        with self._connection(sql) as (con, checked):
            if config.materialized == "merge":
                return self._merge(con, checked, catalog, table, config, props)
            relation = _relation(con, checked)
            if not catalog.table_exists(table):
                result = self._stream(relation)
                created = create_table(catalog, table, result, props)
                return WriteResult(
                    table, config.materialized, result.rows, inserted=result.rows,
                    created=True, snapshot_id=_snapshot_id(created),
                )  # fmt: skip
            current = catalog.load_table(table)
            if config.materialized == "append":
                result = self._stream(relation)
                if result.first() is None:
                    return WriteResult(table, "append", 0)
                written = append_rows(current, result, props)
                return WriteResult(
                    table, "append", result.rows, inserted=result.rows,
                    snapshot_id=_snapshot_id(written),
                )  # fmt: skip
            previous = _total_records(current)
            result = self._stream(relation)
            try:
                written = replace_rows(current, result, props)
            except SchemaChangeError as exc:  # raised before any row is read
                logger.warning("%s: %s; dropping and creating the table again", table, exc)
                catalog.drop_table(table)
                written = create_table(catalog, table, result, props)
            return WriteResult(
                table, "full_refresh", result.rows, inserted=result.rows, deleted=previous,
                snapshot_id=_snapshot_id(written),
            )  # fmt: skip

    # -- merge ----------------------------------------------------------------------------

    def _merge(
        self,
        con: duckdb.DuckDBPyConnection,
        sql: str,
        catalog: Catalog,
        name: str,
        config: ModelConfig,
        props: Mapping[str, str],
    ) -> WriteResult:
        keys = list(config.unique_key or ())
        columns = list(_relation(con, sql).columns)
        missing = [k for k in keys if k not in columns]
        if missing:
            raise MergeError(
                f"unique_key column(s) {', '.join(missing)} not in the result "
                f"(columns: {', '.join(columns)})"
            )
        rows = self._split(con, sql, keys, config.delete_condition)
        if not catalog.table_exists(name):
            result = self._stream(con.sql(_UPSERTS))
            created = create_table(catalog, name, result, props)
            return WriteResult(
                name, "merge", rows, inserted=result.rows, created=True,
                snapshot_id=_snapshot_id(created),
            )  # fmt: skip
        deletes = con.sql(
            f"SELECT DISTINCT {', '.join(_q(k) for k in keys)} FROM __flagged "
            f"WHERE __lh_delete AND NOT ({_any_null(keys)})"
        ).to_arrow_table()
        target = catalog.load_table(name)
        return self._merge_into(con, target, name, rows, keys, deletes, props)

    def _split(
        self, con: duckdb.DuckDBPyConnection, sql: str, keys: list[str], condition: str | None
    ) -> int:
        """Run ``sql`` into the temporary table ``__flagged`` (rows to delete flagged);
        validate the keys; return the result's row count.

        The table lives in DuckDB, which spills it to disk beyond its memory limit.
        """
        import duckdb

        key_list = ", ".join(_q(k) for k in keys)
        flag = f"coalesce(({condition}), false)" if condition else "false"
        try:
            con.sql(f"SELECT {flag} AS __lh_delete FROM ({sql}) AS {_SOURCE} LIMIT 0")
        except duckdb.Error as exc:
            from lakehouse.query.analysis import first_line

            raise MergeError(f"delete_condition {condition!r}: {first_line(str(exc))}") from exc
        try:
            con.execute(
                f"CREATE TEMP TABLE __flagged AS SELECT *, {flag} AS __lh_delete "
                f"FROM ({sql}) AS {_SOURCE}"
            )
        except duckdb.Error as exc:
            raise _query_error(exc) from exc
        any_null = _any_null(keys)
        nulls = con.sql(f"SELECT count(*) FROM __flagged WHERE NOT __lh_delete AND ({any_null})")
        null_count = _scalar(nulls)
        if null_count:
            raise MergeError(
                f"{null_count} row(s) of the result have a NULL unique_key ({key_list})"
            )
        duplicates = con.sql(
            f"SELECT {key_list}, count(*) AS n FROM __flagged WHERE NOT __lh_delete "
            f"GROUP BY ALL HAVING count(*) > 1 ORDER BY n DESC LIMIT 1"
        ).fetchall()
        if duplicates:
            duplicate = duplicates[0]
            shown = ", ".join(f"{k}={v!r}" for k, v in zip(keys, duplicate[:-1], strict=True))
            raise MergeError(
                f"unique_key ({key_list}) is not unique in the result: {shown} appears "
                f"{duplicate[-1]} times"
            )
        return _scalar(con.sql("SELECT count(*) FROM __flagged"))

    def _merge_into(
        self,
        con: duckdb.DuckDBPyConnection,
        target: Table,
        name: str,
        rows: int,
        keys: list[str],
        deletes: pa.Table,
        props: Mapping[str, str],
    ) -> WriteResult:
        from lakehouse.tables import UpsertKeyError, upsert

        target_columns = [f.name for f in target.schema().fields]
        missing_keys = [k for k in keys if k not in target_columns]
        if missing_keys:
            raise MergeError(
                f"table {name} has no column(s) {', '.join(missing_keys)} of unique_key"
            )
        upserts = iceberg_compatible(con.sql(_UPSERTS).to_arrow_table())
        catalog = self.lakehouse.catalog(self.ref)
        try:
            result = upsert(
                target,
                upserts,
                keys,
                delete_keys=deletes,
                properties=props,
                reload=lambda: catalog.load_table(name),
            )
        except UpsertKeyError as exc:
            raise MergeError(str(exc)) from exc
        return WriteResult(
            name, "merge", rows, inserted=result.inserted, updated=result.updated,
            deleted=result.deleted, snapshot_id=result.snapshot_id,
        )  # fmt: skip


def _any_null(keys: Sequence[str]) -> str:
    return " OR ".join(f"{_q(k)} IS NULL" for k in keys)


def _query_error(exc: Exception) -> QueryError:
    from lakehouse.query.analysis import first_line
    from lakehouse.query.errors import QueryExecutionError

    return QueryExecutionError(first_line(str(exc)))


def _relation(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation:
    """The (lazy) relation of the checked query ``sql``."""
    import duckdb

    from lakehouse.query.errors import QueryError

    try:
        relation = con.sql(sql)
    except duckdb.Error as exc:
        raise _query_error(exc) from exc
    if relation is None:
        raise QueryError("the statement returned no result")
    return relation


def _reporting(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """``reader``, with DuckDB's errors while reading as :class:`QueryExecutionError`."""
    import pyarrow as pa

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except pa.ArrowException as exc:
            raise _query_error(exc) from exc

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _scalar(relation: duckdb.DuckDBPyRelation) -> int:
    rows = relation.fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _snapshot_id(table: Table) -> int | None:
    snapshot = table.current_snapshot()
    return snapshot.snapshot_id if snapshot is not None else None


__all__ = ["DuckDBEngine", "MergeError"]
