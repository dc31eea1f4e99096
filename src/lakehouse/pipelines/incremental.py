"""Incremental models: a model reads only the rows its sources gained since its last write.

A model with ``materialized: incremental`` (and a ``unique_key``) is a ``merge`` model
whose sources — the tables it reads, or those listed in ``incremental_sources`` — are
presented to its SELECT as **only the rows appended since the model's last successful
write**: an Iceberg incremental append scan (PyIceberg's
:meth:`~pyiceberg.table.Table.incremental_append_scan`: the data files that ``append``
snapshots added after the recorded snapshot, up to the source's current one on the run's
branch). The result is merged into the model's table on ``unique_key``.

What each write consumed is recorded in its snapshot summary, atomically with the data
(``lakehouse.incremental.<source>=<snapshot id>``; :mod:`lakehouse.catalog.incremental`),
and snapshot expiry folds it into a table property so expiring never loses it. A run
that fails its checks is not merged, so ``main`` keeps the state of its last published
write and the next run reads those rows again.

A source is read **in full** instead — and the run says why — when:

* the model's table has no recorded state (first build, or after ``--full-refresh``);
* the recorded snapshot is no longer a parent of the source's current snapshot (the
  source was rolled back, dropped and created again, or expired past it) — except when
  it is the source side of a content merge into this branch (a run's branch, merged
  while ingestion went on here): then the files live now that it did not have are read
  (:func:`_read_after_merge`);
* any snapshot in between is not a pure ``append`` (an overwrite, a delete, a compaction's
  replace, row-level deletes): correctness over speed;
* the engine cannot present a table as some of its files (:attr:`Engine.incremental_reads`).

When no source has a new row the model is not run at all (no query, no commit). A full
refresh (``lakehouse run --full-refresh [MODEL]``) first empties the table (one commit
recording a ``reset``) and then builds it from everything.

The model's SQL must give one row per key from a batch that may hold several versions of
a key (the dedup pattern, docs/sql-and-pipelines.md): keep the newest per key with
``QUALIFY row_number() OVER (PARTITION BY key ORDER BY _ingested_at DESC) = 1``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lakehouse.catalog.incremental import (
    IncrementalState,
    ReadMode,
    incremental_state,
    summary_properties,
)

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from lakehouse.pipelines.definition import Model
    from lakehouse.query.execution import QueryPlan, Registration
    from lakehouse.query.planning import ScanFile
    from lakehouse.session import Lakehouse

logger = logging.getLogger(__name__)

_counter = itertools.count()


@dataclass(frozen=True)
class SourceRead:
    """How one source of an incremental model is read in this run."""

    #: The source table, as the model names it.
    table: str
    #: ``incremental``: only the files appended since :attr:`since`; ``full``: everything.
    mode: Literal["incremental", "full"]
    #: The source's snapshot read (recorded by the write); ``None``: it has none yet.
    snapshot_id: int | None
    #: The snapshot the last write recorded (``None``: none).
    since: int | None = None
    #: Why the source is read in full.
    reason: str | None = None
    #: ``incremental``: the data files the append snapshots after :attr:`since` added.
    files: tuple[ScanFile, ...] = ()
    #: Rows read: those of :attr:`files`, or the source's total for a full read.
    rows: int = 0
    source: Table | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "table": self.table,
            "mode": self.mode,
            "snapshot_id": self.snapshot_id,
            "since": self.since,
            "reason": self.reason,
            "files": len(self.files),
            "rows": self.rows,
        }


@dataclass(frozen=True)
class IncrementalRead:
    """How an incremental model reads its sources in one run."""

    model: str
    sources: tuple[SourceRead, ...] = ()
    #: True when the run rebuilds the model from everything (``--full-refresh``).
    full_refresh: bool = False

    @property
    def mode(self) -> ReadMode:
        """``full`` when any source is read in full, else ``incremental``."""
        return "full" if any(s.mode == "full" for s in self.sources) else "incremental"

    @property
    def rows(self) -> int:
        """Rows read over all sources."""
        return sum(s.rows for s in self.sources)

    @property
    def nothing_new(self) -> bool:
        """True when every source is read incrementally and none has a new row.

        The model is then not run at all: its result over no new rows merges nothing
        (a model whose SELECT makes rows out of nothing — constants, an outer join from a
        dimension — must list its sources in ``incremental_sources`` or not be incremental).
        """
        return bool(self.sources) and all(
            s.mode == "incremental" and not s.files for s in self.sources
        )

    @property
    def full_reads(self) -> list[SourceRead]:
        """The sources read in full."""
        return [s for s in self.sources if s.mode == "full"]

    def properties(self) -> dict[str, str]:
        """The snapshot summary keys the model's write records (its new state)."""
        consumed = {s.table: s.snapshot_id for s in self.sources if s.snapshot_id is not None}
        return summary_properties(self.mode, consumed)

    def describe(self) -> str:
        """One line for people: what was read, and why in full."""
        if self.nothing_new:
            return f"nothing new in {', '.join(s.table for s in self.sources)}: not run"
        parts: list[str] = []
        for s in self.sources:
            if s.mode == "incremental":
                parts.append(f"{s.rows} new row(s) of {s.table}")
            else:
                parts.append(f"{s.table} in full ({s.reason})")
        return "read " + ", ".join(parts) if parts else "no source"

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "mode": self.mode,
            "full_refresh": self.full_refresh,
            "rows": self.rows,
            "sources": [s.to_json() for s in self.sources],
        }


def _total_records(table: Table) -> int:
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.get("total-records", "0") or 0)


def _full(name: str, table: Table, since: int | None, reason: str) -> SourceRead:
    current = table.current_snapshot()
    return SourceRead(
        name,
        "full",
        current.snapshot_id if current is not None else None,
        since,
        reason,
        rows=_total_records(table),
        source=table,
    )


def _not_an_append(table: Table, since: int, current: int) -> str | None:
    """Why the snapshots after ``since`` up to ``current`` are not all pure appends."""
    from pyiceberg.table.snapshots import Operation, ancestors_between_ids, is_parent_ancestor_of

    metadata = table.metadata
    if not is_parent_ancestor_of(current, since, metadata):
        return (
            f"snapshot {since} it was last built from is no longer an ancestor of "
            f"{current} (rolled back, replaced or expired)"
        )
    for snapshot in ancestors_between_ids(since, current, metadata):
        summary = snapshot.summary
        operation = summary.operation if summary is not None else None
        if operation != Operation.APPEND:
            shown = operation.value if operation is not None else "unknown operation"
            return f"snapshot {snapshot.snapshot_id} is a {shown}, not an append"
    return None


def read_source(name: str, table: Table, since: int | None) -> SourceRead:
    """How to read source ``name`` (loaded as ``table``) after snapshot ``since``."""
    from lakehouse.query.planning import ScanFile

    current = table.current_snapshot()
    if current is None:
        return _full(name, table, since, "it has no snapshot yet")
    if since is None:
        return _full(name, table, since, "no state recorded for it")
    if since == current.snapshot_id:
        return SourceRead(name, "incremental", since, since, source=table)
    why = _not_an_append(table, since, current.snapshot_id)
    if why is not None and table.metadata.snapshot_by_id(since) is None:
        merged = _read_after_merge(name, table, since)
        if merged is not None:
            return merged
    if why is not None:
        return _full(name, table, since, why)
    scan = table.incremental_append_scan(
        from_snapshot_id_exclusive=since, to_snapshot_id_inclusive=current.snapshot_id
    )
    tasks = list(scan.plan_files())
    if any(task.delete_files for task in tasks):  # pragma: no cover - appends add no deletes
        return _full(name, table, since, "delete files apply to its new rows")
    files = tuple(
        ScanFile(task.file.file_path, task.file.record_count)
        for task in sorted(tasks, key=lambda t: t.file.file_path)
    )
    return SourceRead(
        name,
        "incremental",
        current.snapshot_id,
        since,
        files=files,
        rows=sum(f.record_count for f in files),
        source=table,
    )


def _read_after_merge(name: str, table: Table, since: int) -> SourceRead | None:
    """The files ``table`` gained since ``since``, a snapshot of a branch merged into it.

    A run records the source snapshot it read on its own branch; once the run is merged by
    content, that snapshot is not in the target's history, but the merged snapshot names
    it and its manifest list (:func:`lakehouse.tables.merge.source_data_files`). The new
    rows are then the data files live now that were not live in it — when every file it
    had is still live and no delete file applies (else ``None``: read in full).
    """
    from pyiceberg.manifest import DataFileContent

    from lakehouse.query.planning import ScanFile
    from lakehouse.tables.merge import source_data_files
    from lakehouse.tables.rowdelta import manifest_entries

    current = table.current_snapshot()
    if current is None:
        return None
    consumed = source_data_files(table.metadata, table.io, since)
    if consumed is None:
        return None
    live = [e for m in current.manifests(table.io) for e in manifest_entries(table.io, m)]
    if any(e.data_file.content != DataFileContent.DATA for e in live):
        return None
    paths = {e.data_file.file_path for e in live}
    if not consumed <= paths:
        return None
    files = tuple(
        ScanFile(e.data_file.file_path, e.data_file.record_count)
        for e in sorted(live, key=lambda e: e.data_file.file_path)
        if e.data_file.file_path not in consumed
    )
    logger.info(
        "%s: snapshot %s was merged into the branch by content: reading the %d file(s) "
        "added besides it",
        name,
        since,
        len(files),
    )
    return SourceRead(
        name,
        "incremental",
        current.snapshot_id,
        since,
        files=files,
        rows=sum(f.record_count for f in files),
        source=table,
    )


def plan_reads(
    catalog: Catalog,
    model: Model,
    *,
    full_refresh: bool = False,
    full_reason: str | None = None,
) -> IncrementalRead:
    """How incremental ``model`` reads its sources on the branch ``catalog`` is bound to.

    ``full_refresh`` (or a ``full_reason``, e.g. an engine that cannot read part of a
    table) reads every source in full. A source that does not exist is left out: the
    model's query reports it.
    """
    state = IncrementalState()
    reason = full_reason
    if full_refresh:
        reason = "full refresh"
    elif catalog.table_exists(model.name):
        state = incremental_state(catalog.load_table(model.name))
    elif reason is None:
        reason = "first build"
    reads: list[SourceRead] = []
    for name in model.incremental_sources:
        if not catalog.table_exists(name):
            continue
        table = catalog.load_table(name)
        since = state.since(name)
        read = _full(name, table, since, reason) if reason else read_source(name, table, since)
        if read.mode == "full":
            logger.info("%s: reading %s in full: %s", model.name, name, read.reason)
        reads.append(read)
    return IncrementalRead(model.name, tuple(reads), full_refresh=full_refresh)


def reset_table(catalog: Catalog, name: str, properties: Mapping[str, str]) -> bool:
    """Empty table ``name`` for a full refresh, recording a ``reset`` state (one commit).

    Returns False when there is no such table (nothing to do).
    """
    import warnings

    from pyiceberg.expressions import AlwaysTrue

    if not catalog.table_exists(name):
        return False
    table = catalog.load_table(name)
    props = {**properties, **summary_properties("reset", {})}
    tx = table.transaction()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        # dropping every file is what a reset should do, whatever the table's write mode
        warnings.filterwarnings("ignore", "Merge on read is not yet supported")
        tx.delete(AlwaysTrue(), snapshot_properties=props)
    tx.commit_transaction()
    return True


# -- reading, for engines that compute in DuckDB ----------------------------------------------


def _register_arrow(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> Registration:
    from lakehouse.query.execution import Registration, quote_identifier

    namespace, _, table = name.rpartition(".")
    view = f"{quote_identifier(namespace)}.{quote_identifier(table)}"
    source = f"__lakehouse_increment_{next(_counter)}"
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(namespace)}")
    con.register(source, data)
    con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {quote_identifier(source)}")
    return Registration(namespace, view, source)


def register_increment(con: duckdb.DuckDBPyConnection, read: SourceRead, name: str) -> Registration:
    """Register view ``name`` over only the new rows of ``read`` (an ``incremental`` read)."""
    from pyiceberg.expressions import AlwaysTrue

    from lakehouse.query.execution import register
    from lakehouse.query.planning import TableScanPlan, choose_reader

    table = read.source
    assert table is not None and read.mode == "incremental"
    reader, reason = choose_reader(table, read.files)
    if reader == "arrow":  # files DuckDB cannot open: PyIceberg reads the same range
        data = table.incremental_append_scan(
            from_snapshot_id_exclusive=read.since, to_snapshot_id_inclusive=read.snapshot_id
        ).to_arrow()
        return _register_arrow(con, name, data)
    plan = TableScanPlan(
        name, read.snapshot_id, AlwaysTrue(), None, read.files, reader, reason, (), table
    )
    return register(con, plan)


def _reading_plan(
    lakehouse: Lakehouse, ref: str, sql: str, reads: Sequence[SourceRead]
) -> tuple[QueryPlan, dict[str, SourceRead], list[str]]:
    """``sql`` planned on ``ref``, its incremental sources by name, and every file it reads."""
    from lakehouse import query
    from lakehouse.query.execution import allowed_paths

    increments = {r.table.lower(): r for r in reads if r.mode == "incremental"}
    plan = query.session(lakehouse, ref).plan(sql)
    # the locked connection reads exactly the planned files and the increments' files
    paths = dict.fromkeys(allowed_paths(plan))
    for increment in increments.values():
        for f in increment.files:
            paths.update(dict.fromkeys([f.path, *f.position_deletes]))
            paths.update(dict.fromkeys(e.path for e in f.equality_deletes))
    return plan, increments, list(paths)


def _register_plan(
    con: duckdb.DuckDBPyConnection, plan: QueryPlan, increments: Mapping[str, SourceRead]
) -> list[Registration]:
    from lakehouse.query.execution import register, unregister

    registered: list[Registration] = []
    try:
        for key, scan in plan.tables.items():
            read = increments.get(key.lower())
            if read is None:
                registered.append(register(con, scan))
            else:
                registered.append(register_increment(con, read, key))
    except BaseException:
        unregister(con, registered)
        raise
    return registered


def execute_reading(
    lakehouse: Lakehouse, ref: str, sql: str, reads: Sequence[SourceRead]
) -> pa.Table:
    """Run ``sql`` on ``ref`` with each ``incremental`` source of ``reads`` cut to its new rows.

    Every other table (and a source read in full) is planned and read as
    :func:`lakehouse.query.sql` reads it.
    """

    from lakehouse.query.execution import arrow_result, unordered, unregister
    from lakehouse.query.sandbox import borrowed

    plan, increments, paths = _reading_plan(lakehouse, ref, sql, reads)
    with borrowed(paths, ordered=not unordered(plan)) as con:
        registered = _register_plan(con, plan, increments)
        try:
            return arrow_result(con, plan.sql)
        finally:
            unregister(con, registered)


@contextmanager
def reading_connection(
    lakehouse: Lakehouse,
    ref: str,
    sql: str,
    reads: Sequence[SourceRead] = (),
    *,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
    """A new locked DuckDB connection where ``sql`` can run, and the checked query.

    Like :func:`execute_reading` (each ``incremental`` source of ``reads`` cut to its new
    rows, every other table planned as :func:`lakehouse.query.sql` plans it), but the
    caller runs the query — e.g. into a temporary table, or streamed out with
    ``to_arrow_reader`` — so a large result never needs to be in memory as a whole. The
    connection has DuckDB's ``memory_limit`` and spills into ``temp_directory``
    (:func:`lakehouse.query.sandbox.connect`); it is closed when the block ends.
    """
    from lakehouse.query.execution import unordered
    from lakehouse.query.sandbox import connect

    plan, increments, paths = _reading_plan(lakehouse, ref, sql, reads)
    con = connect(
        paths,
        memory_limit=memory_limit,
        temp_directory=temp_directory,
        ordered=not unordered(plan),
    )
    try:
        _register_plan(con, plan, increments)
        yield con, plan.sql
    finally:
        con.close()


__all__ = [
    "IncrementalRead",
    "SourceRead",
    "execute_reading",
    "plan_reads",
    "read_source",
    "reading_connection",
    "register_increment",
    "reset_table",
]
