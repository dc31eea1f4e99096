"""Upserts and deletes by key whose cost follows the change, not the table.

:func:`upsert` writes ``rows`` into a table on their key columns: rows whose key is new
are inserted, rows whose key exists and whose values differ replace the old version,
identical rows are left alone; keys in ``delete_keys`` are deleted. Everything lands as
ONE snapshot (:class:`~lakehouse.tables.rowdelta.RowDelta`).

How the old versions are found (in proportion to the change):

1. *Candidate files* — the branch head is planned with a filter on the key columns
   (``IN`` of the keys when there are few, else their min/max range), so manifests and
   data files whose partition values or column bounds cannot hold a key are skipped.
2. *Positions* — only the key columns of each candidate file are read (by field id),
   rows already deleted are dropped, and a lookup of the new keys (hashed, or for many
   integer keys sorted once and binary-searched) gives each old version's position.
3. *Change detection* — the old versions are compared with the new rows one value
   column at a time, each read only in the row groups holding rows still equal so far;
   unchanged rows are not rewritten. In a write that changes the table anyway (new keys,
   deletes, changed rows), a file's few matched rows are rewritten unproved: proving
   them would cost the file's row groups (:data:`PROOF_MIN_SHARE`).

Small files: a merge-on-read upsert rewrites, with its new rows, the candidate data files
of at most ``lakehouse.upsert.small-file-rows`` rows in all (default 4096; ``0``: never),
deletes applied. Without it every small upsert adds a file whose key bounds span the
table, that every later upsert must open: the cost of the k-th upsert would grow with k
until the next compaction (Hudi routes inserts into small files for the same reason).

Write modes (Iceberg's table properties): ``write.merge.mode`` for upserts and
``write.delete.mode`` for delete-only writes. ``merge-on-read`` (the default here, and
what tables the lakehouse creates say) writes position delete files; ``copy-on-write``
rewrites each affected data file without the old rows. Format v1 tables are written
copy-on-write.

Key: every upsert records its key columns in the table property ``lakehouse.upsert.key``
(:data:`KEY_PROPERTY`), which content merges use to detect one key written on both sides.

Concurrency: the snapshot requires the branch head it was computed on. When another
writer committed in between, the whole write is recomputed on the new head (bounded,
jittered back-off), so a concurrent compaction or delete can never make a delete miss
its row or apply twice.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.tables import keyindex
from lakehouse.tables.errors import RowDeltaConflictError, RowLevelWriteError, UpsertKeyError
from lakehouse.tables.files import (
    POS,
    arrow_schema,
    drop_positions,
    in_background,
    keys_to_decode,
    live_mask,
    map_files,
    may_equal,
    read_columns,
    read_keys,
    reads_every_row_group,
)
from lakehouse.tables.keyindex import (
    KeyIndex,
    Layout,
    build_index,
    enabled,
    index_written,
    read_index,
    row_hashes,
)
from lakehouse.tables.metadata import branch_head
from lakehouse.tables.planning import plan_tasks
from lakehouse.tables.rowdelta import RowDelta, position_delete_runs, read_position_deletes

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.io import FileIO
    from pyiceberg.schema import Schema
    from pyiceberg.table import FileScanTask, Table, Transaction
    from pyiceberg.table.metadata import TableMetadata

logger = logging.getLogger(__name__)

#: Iceberg's write-mode table properties and values.
MERGE_MODE = "write.merge.mode"
UPDATE_MODE = "write.update.mode"
DELETE_MODE = "write.delete.mode"
MERGE_ON_READ = "merge-on-read"
COPY_ON_WRITE = "copy-on-write"

#: Table property: candidate data files up to this many rows in all are rewritten with an
#: upsert's new rows (merge-on-read), so that small upserts do not pile up small files.
SMALL_FILE_ROWS = "lakehouse.upsert.small-file-rows"
SMALL_FILE_ROWS_DEFAULT = 4096

#: Table property: the key columns upserts write the table on (JSON list), recorded by
#: every upsert, so that a content merge can refuse one key written on both sides
#: (:mod:`lakehouse.tables.merge`) when the table has no identifier fields.
KEY_PROPERTY = "lakehouse.upsert.key"

#: A file's rows whose hash equals their new row's are read to prove them unchanged when
#: they are at least this share of its rows, or when the write changes nothing else
#: (:func:`_unchanged`); otherwise they are rewritten as they are.
PROOF_MIN_SHARE = 1 / 64

#: Up to this many distinct values a key column prunes with ``IN``; above, with its range.
IN_PRUNING_LIMIT = 64

#: A few-key upsert looks its candidate files up on the pool when two of them or more have
#: at least this many rows of key column to decode (not kept from earlier writes).
PARALLEL_DECODE_ROWS = 8192

_IDX = "__src"
#: The old row's hash (:mod:`~lakehouse.tables.keyindex`), when its file has an index.
_HASH = "__hash"


@dataclass(frozen=True)
class UpsertResult:
    """What :func:`upsert` changed."""

    #: Rows with a new key.
    inserted: int
    #: Rows whose key existed, rewritten: their values changed, or they were not worth
    #: proving unchanged in a write that changes the table anyway (:data:`PROOF_MIN_SHARE`).
    updated: int
    #: Existing rows deleted through ``delete_keys``.
    deleted: int
    #: Rows proved identical to the table's current version (not rewritten).
    unchanged: int
    #: The new snapshot (``None``: nothing changed, nothing committed).
    snapshot_id: int | None
    #: ``merge-on-read`` or ``copy-on-write``.
    mode: str
    #: Data files whose key columns were read.
    candidate_files: int
    #: Commit attempts (more than one: concurrent commits were recomputed on).
    attempts: int


def declared_keys(properties: Mapping[str, str]) -> list[str] | None:
    """The key columns upserts recorded in :data:`KEY_PROPERTY`, or ``None`` when none were.

    Raises ``ValueError`` when the property is not a JSON list.
    """
    declared = properties.get(KEY_PROPERTY)
    if declared is None:
        return None
    try:
        columns = json.loads(declared)
    except ValueError:
        columns = None
    if not isinstance(columns, list):
        raise ValueError(f"the table property {KEY_PROPERTY}={declared!r} is not a JSON list")
    return [str(c) for c in columns]


def write_mode(
    table: Table, *, deleting_only: bool = False, metadata: TableMetadata | None = None
) -> str:
    """The write mode an upsert (or a delete-only write) uses on ``table``."""
    metadata = metadata if metadata is not None else table.metadata
    prop = DELETE_MODE if deleting_only else MERGE_MODE
    value = metadata.properties.get(prop, MERGE_ON_READ).strip().lower()
    if value not in (MERGE_ON_READ, COPY_ON_WRITE):
        raise RowLevelWriteError(
            f"table {table.name()}: {prop}={value!r} is not a write mode "
            f"({MERGE_ON_READ} or {COPY_ON_WRITE})"
        )
    if metadata.format_version < 2:
        return COPY_ON_WRITE
    return value


def validate_keys(rows: pa.Table, keys: Sequence[str], what: str = "the new rows") -> None:
    """:class:`UpsertKeyError` unless ``keys`` are columns of ``rows``, never NULL, unique."""
    _checked_keys(rows, keys, what)


def _checked_keys(
    rows: pa.Table, keys: Sequence[str], what: str = "the new rows"
) -> _SortedKeys | None:
    """:func:`validate_keys`; one integer key column comes back sorted (for the lookup).

    The uniqueness of one integer key column is checked on its values sorted, which the
    lookup of old versions then uses (sorted once per upsert, not once per check).
    """
    if not keys:
        raise UpsertKeyError("an upsert needs at least one key column")
    missing = [k for k in keys if k not in rows.column_names]
    if missing:
        raise UpsertKeyError(
            f"key column(s) {', '.join(missing)} not in {what} "
            f"(columns: {', '.join(rows.column_names)})"
        )
    for k in keys:
        nulls = rows.column(k).null_count
        if nulls:
            raise UpsertKeyError(f"{nulls} row(s) of {what} have a NULL key column '{k}'")
    ordered = _SortedKeys.of(rows.column(keys[0])) if len(keys) == 1 else None
    if rows.num_rows < 2:
        return ordered
    if ordered is not None:
        repeated = ordered.repeated()
        if repeated is None:
            return ordered
        value, times = repeated
        raise UpsertKeyError(
            f"key ({keys[0]}) is not unique in {what}: {keys[0]}={value!r} appears {times} times"
        )
    if len(keys) == 1 and len(pc.unique(rows.column(keys[0]))) == rows.num_rows:
        return None  # one key column of distinct values (a hash set, not a grouping plan)
    counts = rows.group_by(list(keys)).aggregate([([], "count_all")])
    dup = counts.filter(pc.greater(counts.column("count_all"), 1))
    if dup.num_rows:
        first = dup.slice(0, 1).to_pylist()[0]
        shown = ", ".join(f"{k}={first[k]!r}" for k in keys)
        raise UpsertKeyError(
            f"key ({', '.join(keys)}) is not unique in {what}: {shown} appears "
            f"{first['count_all']} times"
        )
    return None


def upsert(
    table: Table,
    rows: pa.Table,
    keys: Sequence[str],
    *,
    delete_keys: pa.Table | None = None,
    branch: str = "main",
    properties: Mapping[str, str] | None = None,
    detect_changes: bool = True,
    reload: Callable[[], Table] | None = None,
    max_attempts: int = 8,
) -> UpsertResult:
    """Upsert ``rows`` and delete ``delete_keys`` on ``keys``, as one snapshot.

    ``reload`` returns the table's latest version (default: ``table.refresh()``) for a
    retry after a concurrent commit. New columns of ``rows`` are added to the table.
    """
    keys = list(keys)
    ordered = _checked_keys(rows, keys)
    deletes = _delete_keys(delete_keys, keys)
    missing = [k for k in keys if k not in {f.name for f in table.schema().fields}]
    if missing and table.current_snapshot() is not None:
        raise UpsertKeyError(f"table {table.name()} has no key column(s) {', '.join(missing)}")
    reload = reload or table.refresh
    from pyiceberg.exceptions import CommitFailedException, CommitStateUnknownException

    attempt = 0
    while True:
        attempt += 1
        try:
            return _upsert_once(
                table, rows, keys, deletes, branch, dict(properties or {}), detect_changes,
                attempt, ordered,
            )  # fmt: skip
        except CommitStateUnknownException:
            raise
        except CommitFailedException as exc:
            if attempt >= max_attempts:
                raise RowDeltaConflictError(
                    f"upsert into {table.name()}: gave up after {attempt} attempts because of "
                    f"concurrent commits ({exc})"
                ) from exc
            logger.info("upsert into %s lost a race (attempt %d): %s", table.name(), attempt, exc)
            time.sleep(random.uniform(0.5, 1.0) * min(1.0, 0.01 * 2**attempt))
            table = reload()


def _delete_keys(delete_keys: pa.Table | None, keys: Sequence[str]) -> pa.Table | None:
    if delete_keys is None or delete_keys.num_rows == 0:
        return None
    missing = [k for k in keys if k not in delete_keys.column_names]
    if missing:
        raise UpsertKeyError(f"key column(s) {', '.join(missing)} not in the keys to delete")
    selected = delete_keys.select(list(keys))
    valid = None
    for k in keys:
        ok = pc.is_valid(selected.column(k))
        valid = ok if valid is None else pc.and_(valid, ok)
    return selected.filter(valid).group_by(list(keys)).aggregate([])


def _upsert_once(
    table: Table,
    rows: pa.Table,
    keys: list[str],
    deletes: pa.Table | None,
    branch: str,
    properties: dict[str, str],
    detect_changes: bool,
    attempt: int,
    ordered: _SortedKeys | None = None,
) -> UpsertResult:
    tx = table.transaction()
    staged = _stage(tx, rows, keys, deletes, branch, properties, detect_changes, attempt, ordered)
    if staged.snapshot_id is not None:
        tx.commit_transaction()
    return staged


def stage_upsert(
    tx: Transaction,
    rows: pa.Table,
    keys: Sequence[str],
    *,
    delete_keys: pa.Table | None = None,
    branch: str = "main",
    properties: Mapping[str, str] | None = None,
    detect_changes: bool = True,
) -> UpsertResult:
    """Stage an upsert on ``tx`` without committing it (for multi-table commits).

    Like :func:`upsert`, but the caller commits the transaction, and on a
    :class:`~pyiceberg.exceptions.CommitFailedException` starts over from a fresh table.
    Schema changes already staged on ``tx`` are taken into account.
    """
    keys = list(keys)
    ordered = _checked_keys(rows, keys)
    return _stage(
        tx, rows, keys, _delete_keys(delete_keys, keys), branch, dict(properties or {}),
        detect_changes, 1, ordered,
    )  # fmt: skip


def _stage(
    tx: Transaction,
    rows: pa.Table,
    keys: list[str],
    deletes: pa.Table | None,
    branch: str,
    properties: dict[str, str],
    detect_changes: bool,
    attempt: int,
    ordered: _SortedKeys | None = None,
) -> UpsertResult:
    """Stage the upsert on ``tx``; ``ordered`` is the one integer key column of ``rows``
    sorted (:func:`_checked_keys`), when it is."""
    table = tx._table
    pending = bool(tx._updates)
    base = tx.table_metadata if pending else table.metadata
    evolved = bool(rows.num_rows) and evolve_schema(tx, rows.schema, base.schema())
    metadata = tx.table_metadata if evolved else base
    schema = metadata.schema()
    new_rows = conform(rows, schema)
    mode = write_mode(table, deleting_only=rows.num_rows == 0, metadata=metadata)
    head = branch_head(metadata, branch)
    key_sets = [t for t in (new_rows.select(keys), _typed(deletes, schema, keys)) if t is not None]
    wanted = pa.concat_tables(key_sets) if key_sets else None
    # the new rows' keys are distinct (validated), and so are the keys to delete
    distinct_keys = max(new_rows.num_rows, deletes.num_rows if deletes is not None else 0)
    tasks = (
        _candidate_tasks(tx, metadata, head.snapshot_id, schema, keys, wanted, distinct_keys)
        if head is not None and wanted is not None and wanted.num_rows
        else []
    )
    io = table.io
    typed_deletes = _typed(deletes, schema, keys)
    layout = Layout.of(schema, keys[0]) if len(keys) == 1 and enabled(metadata) else None
    # a write of many rows needs their hashes (change detection, the new file's index)
    new_hashes = _Hashes(
        new_rows,
        layout.values if layout is not None else (),
        early=layout is not None and new_rows.num_rows >= keyindex.MIN_ROWS,
    )
    matches = _locate(
        io, schema, keys, tasks, new_rows, typed_deletes,
        ordered=ordered if typed_deletes is None else None,
        layout=layout,
    )  # fmt: skip
    updated_pos: dict[str, pa.Array] = {}
    deleted_pos: dict[str, pa.Array] = {}
    matched_src: list[pa.Array] = []
    deleted = 0
    updates: dict[str, pa.Table] = {}
    for task, found in matches:
        upd = found.filter(pc.is_valid(found.column(_IDX)))
        dele = found.filter(pc.invert(pc.is_valid(found.column(_IDX))))
        if _HASH in found.column_names and not detect_changes:
            upd = upd.drop_columns([_HASH])
        path = task.file.file_path
        if upd.num_rows:
            updates[path] = upd
            updated_pos[path] = upd.column(POS).combine_chunks()
            matched_src.append(upd.column(_IDX).combine_chunks())
        if dele.num_rows:
            deleted_pos[path] = dele.column(POS).combine_chunks()
            deleted += dele.num_rows
    unchanged_src = pa.array([], pa.int64())
    if detect_changes and updated_pos:
        # rows with a new key, or keys to delete: the write changes the table anyway
        inserts = sum(len(a) for a in matched_src) < new_rows.num_rows
        same_pos, unchanged_src = _unchanged(
            io, schema, tasks, new_rows, keys, updates, new_hashes,
            changes_anyway=inserts or bool(deleted),
        )  # fmt: skip
        for path, same in same_pos.items():
            kept = pc.invert(pc.is_in(updated_pos[path], value_set=same))
            updated_pos[path] = updated_pos[path].filter(kept)
    # a key the table holds twice (appended twice) matches one new row twice: count rows once
    matched = _marked(new_rows.num_rows, matched_src)
    same = _marked(new_rows.num_rows, [unchanged_src])
    unchanged = int(same.sum())
    updated = int(matched.sum()) - unchanged
    to_write = new_rows.filter(pa.array(~same)) if unchanged else new_rows
    inserted = to_write.num_rows - updated
    result = dict(inserted=inserted, updated=updated, deleted=deleted)
    if not to_write.num_rows and not deleted:
        return UpsertResult(
            **result, unchanged=unchanged, snapshot_id=None, mode=mode,
            candidate_files=len(tasks), attempts=attempt,
        )  # fmt: skip
    delta = RowDelta(tx, branch=branch, snapshot_properties=properties, metadata=metadata)
    by_path = {task.file.file_path: task for task in tasks}
    affected = {p for p, a in (*updated_pos.items(), *deleted_pos.items()) if len(a)}
    folded = (
        _small_files(tasks, _small_file_rows(metadata))
        if mode == MERGE_ON_READ and to_write.num_rows
        else set()
    )
    rewritten: list[pa.Table] = []
    for path in sorted(affected | folded):
        task = by_path[path]
        parts = [a for a in (updated_pos.get(path), deleted_pos.get(path)) if a is not None]
        gone = pa.concat_arrays(parts) if parts else pa.array([], pa.int64())
        if mode == COPY_ON_WRITE or path in folded:
            rewritten.append(_kept_rows(io, schema, task, gone))
            delta.remove_data_file(task.file, task.delete_files)
        else:
            delta.delete_positions(task.file, gone, task.delete_files)
    written = pa.concat_tables([to_write, *rewritten]) if rewritten else to_write
    # which new row each written row is (None: rewritten rows are among them)
    source = None if rewritten else np.flatnonzero(~same)
    if metadata.sort_order().is_unsorted and written.num_rows > 1:
        # clustered by key, the new files' row groups have narrow key bounds: later
        # upserts read only the row groups that may hold their keys
        if ordered is not None and not rewritten:
            source = ordered.rows[~same[ordered.rows]] if unchanged else ordered.rows
            written = new_rows.take(pa.array(source))  # the key column was sorted once
        else:
            order = pc.sort_indices(written, sort_keys=[(k, "ascending") for k in keys])
            written = written.take(order)
            source = source[order.to_numpy()] if source is not None else None
    added = delta.add_rows(written)
    if layout is not None and written.num_rows >= keyindex.MIN_ROWS:
        # the rows are at hand: the next upsert need not decode them (their hashes are
        # the new rows', reordered, unless rewritten rows are among them)
        reused = None if source is None else lambda: _taken(new_hashes.get(), source)
        index_written(io, metadata, layout, written, added, reused)
    staged = delta.stage()
    declared = json.dumps(keys)
    if metadata.properties.get(KEY_PROPERTY) != declared:
        tx.set_properties({KEY_PROPERTY: declared})
    return UpsertResult(
        **result, unchanged=unchanged, snapshot_id=staged.snapshot_id, mode=mode,
        candidate_files=len(tasks), attempts=attempt,
    )  # fmt: skip


def _taken(
    hashes: np.ndarray[Any, Any] | None, order: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any] | None:
    return hashes[order] if hashes is not None else None


def _small_file_rows(metadata: TableMetadata) -> int:
    raw = metadata.properties.get(SMALL_FILE_ROWS, str(SMALL_FILE_ROWS_DEFAULT))
    try:
        return max(0, int(raw))
    except ValueError:
        msg = f"table property {SMALL_FILE_ROWS}={raw!r} is not a number"
        raise RowLevelWriteError(msg) from None


def _small_files(tasks: Sequence[FileScanTask], budget: int) -> set[str]:
    """The smallest candidate data files, up to ``budget`` rows in all, to rewrite."""
    out: set[str] = set()
    total = 0
    for task in sorted(tasks, key=lambda t: (t.file.record_count, t.file.file_path)):
        total += task.file.record_count
        if total > budget:
            break
        out.add(task.file.file_path)
    return out


def _marked(rows: int, indexes: Sequence[pa.Array]) -> np.ndarray[Any, Any]:
    """A mask of ``rows`` rows, true at the row ``indexes`` (each may repeat)."""
    mask = np.zeros(rows, dtype=bool)
    for part in indexes:
        if len(part):
            mask[part.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)] = True
    return mask


# -- schema ------------------------------------------------------------------------------


def evolve_schema(tx: Transaction, schema: pa.Schema, current: Schema) -> bool:
    """Make the table's schema (``current``) accept ``schema``: add new columns, widen types.

    Returns whether the schema changed (staged on ``tx``).
    """
    from pyiceberg.exceptions import ValidationError

    names = {f.name for f in current.fields}
    if set(schema.names) <= names and _same_types(current, schema):
        return False
    try:
        with tx.update_schema() as update:
            update.union_by_name(schema)
    except (ValidationError, ValueError, TypeError) as exc:
        raise RowLevelWriteError(f"the new rows do not fit the table's schema: {exc}") from exc
    return True


def _same_types(current: Schema, schema: pa.Schema) -> bool:
    """True when every column of ``schema`` already has its type in ``current``.

    Arrow's large and small string/binary types are the same Iceberg type.
    """
    target = arrow_schema(current, list(schema.names))
    return all(_plain(target.field(n).type) == _plain(schema.field(n).type) for n in schema.names)


def _plain(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return pa.binary()
    return kind


def conform(rows: pa.Table, schema: Schema) -> pa.Table:
    """``rows`` with the table's columns, in order and types (missing ones NULL)."""
    target = arrow_schema(schema)
    columns = []
    for f in target:
        if f.name in rows.column_names:
            column = rows.column(f.name)
            columns.append(column if column.type == f.type else column.cast(f.type))
        else:
            columns.append(pa.nulls(rows.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=target)


def _typed(table: pa.Table | None, schema: Schema, keys: Sequence[str]) -> pa.Table | None:
    if table is None:
        return None
    target = arrow_schema(schema, keys)
    return table.select(list(keys)).cast(target)


# -- finding old versions ------------------------------------------------------------------


def _expression(kind: str, *args: Any) -> BooleanExpression:
    """PyIceberg's expression ``kind`` from positional arguments (its pydantic-generated
    signatures are keyword-only, its real constructors are not)."""
    from pyiceberg import expressions

    factory: Callable[..., BooleanExpression] = getattr(expressions, kind)
    return factory(*args)


def _pruning_filter(
    schema: Schema, keys: Sequence[str], wanted: pa.Table, distinct_keys: int = 0
) -> BooleanExpression:
    """``IN`` of each key column's values when few, else their range.

    ``distinct_keys`` is a number of distinct values the one key column is known to
    hold at least (more than the ``IN`` limit spares finding them).
    """
    from pyiceberg.expressions import AlwaysTrue, And

    parts: list[BooleanExpression] = []
    for k in keys:
        column = wanted.column(k)
        try:
            many = len(keys) == 1 and distinct_keys > IN_PRUNING_LIMIT
            distinct = None if many else pc.unique(column)
            if distinct is not None and len(distinct) <= IN_PRUNING_LIMIT:
                parts.append(_expression("In", k, distinct.to_pylist()))
            else:
                bounds = pc.min_max(column).as_py()
                parts.append(_expression("GreaterThanOrEqual", k, bounds["min"]))
                parts.append(_expression("LessThanOrEqual", k, bounds["max"]))
        except (TypeError, ValueError, NotImplementedError, pa.ArrowException):
            continue  # a type the expression literals cannot carry: no pruning on it
    if not parts:
        return AlwaysTrue()
    result = parts[0]
    for p in parts[1:]:
        result = And(result, p)
    return result


def _candidate_tasks(
    tx: Transaction,
    metadata: TableMetadata,
    snapshot_id: int,
    schema: Schema,
    keys: Sequence[str],
    wanted: pa.Table,
    distinct_keys: int = 0,
) -> list[FileScanTask]:
    row_filter = _pruning_filter(schema, keys, wanted, distinct_keys)
    try:
        return plan_tasks(metadata, tx._table.io, snapshot_id, row_filter)
    except ValueError as exc:  # equality deletes: PyIceberg's planner refuses them
        raise RowLevelWriteError(
            f"table {tx._table.name()} cannot take row-level writes yet: {exc}; "
            "compact it first (lakehouse maintenance compact)"
        ) from exc


def _locate(
    io: FileIO,
    schema: Schema,
    keys: list[str],
    tasks: Sequence[FileScanTask],
    new_rows: pa.Table,
    deletes: pa.Table | None,
    *,
    ordered: _SortedKeys | None = None,
    layout: Layout | None = None,
) -> list[tuple[FileScanTask, pa.Table]]:
    """Per candidate file: live positions matching a key, with the new row's index (or NULL).

    One key column is matched with a hash lookup (``index_in``), or, when many integer
    keys are looked for, by binary search in those keys sorted once (per file, on the
    row groups whose statistics may hold one); several columns with a hash join.
    When few keys of one column are looked for, each file's key column is read only in the
    row groups whose statistics may hold one (:func:`~lakehouse.tables.files.read_keys`).
    ``ordered`` is the key column of ``new_rows`` already sorted (without keys to delete
    only).

    With ``layout`` (key indexes on), many integer keys are looked up in each file's key
    index instead (:mod:`~lakehouse.tables.keyindex`); a file without one that the lookup
    reads whole gets one on the way. Its matches then carry the old rows' hashes.
    """
    upsert_keys = new_rows.select(keys).append_column(
        _IDX, pa.array(np.arange(new_rows.num_rows, dtype=np.int64))
    )
    probe = upsert_keys
    if deletes is not None:
        # a key both upserted and deleted is upserted (the max index is not NULL)
        delete_only = deletes.append_column(_IDX, pa.nulls(deletes.num_rows, pa.int64()))
        both = pa.concat_tables([upsert_keys, delete_only])
        probe = both.group_by(keys).aggregate([(_IDX, "max")])
        probe = probe.rename_columns(
            [_IDX if c == f"{_IDX}_max" else c for c in probe.column_names]
        )
    single = len(keys) == 1
    probe_keys = probe.column(keys[0]).combine_chunks() if single else None
    probe_idx = probe.column(_IDX).combine_chunks()
    # few keys: only the row groups whose statistics may hold one are read
    values = (
        (keys[0], probe_keys.to_pylist())
        if probe_keys is not None and len(probe_keys) <= IN_PRUNING_LIMIT
        else None
    )

    if probe_keys is not None and values is not None:
        # few keys: per file, the key column of the row groups that may hold one
        # NumPy's membership test of a few integers costs a third of Arrow's hash set
        probe_ints = probe_keys.to_numpy() if _plain_integers(probe_keys) else None

        def matches(task: FileScanTask) -> pa.Table:
            gone = (
                read_position_deletes(io, task.delete_files, task.file.file_path)
                if task.delete_files
                else None
            )

            def keep(found: pa.Table) -> pa.Array | pa.ChunkedArray:
                column = found.column(keys[0])
                if probe_ints is not None and _plain_integers(column):
                    hit = np.isin(column.to_numpy(), probe_ints)
                else:
                    hit = pc.is_in(column, value_set=probe_keys).to_numpy(zero_copy_only=False)
                if gone is not None and len(gone):
                    hit &= live_mask(found.column(POS), gone)  # costs the deletes, not the rows
                return pa.array(hit)

            # the key column of each row group is decoded once per process (kept, bounded)
            found = read_keys(io, task.file, schema, keys[0], values)
            return found.filter(keep(found)) if found.num_rows else found

        out: list[tuple[FileScanTask, pa.Table]] = []
        # files in parallel when two or more have a row group of keys to decode (0.6 ms for
        # 32,768), worth the pool's hand-off; kept ones are looked up faster in this thread
        # (10-row upserts into 5 of 10 files: locating takes 7 ms in parallel and 10 in
        # turn while decoding, 3.7 ms in turn once kept and 5.2 in parallel)
        decoding = (
            t for t in tasks
            if keys_to_decode(io, t.file, schema, keys[0], values) >= PARALLEL_DECODE_ROWS
        )  # fmt: skip
        decodes = next(decoding, None) is not None and next(decoding, None) is not None
        found_in = map_files(matches, tasks, parallel=decodes)
        for task, found in zip(tasks, found_in, strict=True):
            if found.num_rows:
                where = pc.index_in(found.column(keys[0]), value_set=probe_keys)
                matched = found.select([POS])
                out.append((task, matched.append_column(_IDX, probe_idx.take(where))))
        return out

    sorted_probe = ordered
    if sorted_probe is None and probe_keys is not None:
        sorted_probe = _SortedKeys.of(probe_keys)
    if sorted_probe is not None:
        # many integer keys: per file (in parallel), the key column of the row groups
        # whose statistics may hold one, each value looked up by binary search in the
        # keys sorted once (a hash lookup costs ~3x more per value on 100,000 keys)
        column = keys[0]
        wanted = (column, sorted_probe.values)
        # without keys to delete, the probe's rows are the new rows, in order
        identity = deletes is None

        def indexed(task: FileScanTask) -> KeyIndex | None:
            if layout is None or task.file.record_count < keyindex.MIN_ROWS:
                return None
            index = read_index(io, task.file, layout)
            if index is None and reads_every_row_group(io, task.file, schema, wanted):
                index = build_index(io, task.file, schema, layout)
            return index

        def matched_in(task: FileScanTask) -> pa.Table:
            index = indexed(task)
            hashes = None
            if index is not None:
                where, rows = sorted_probe.find(index.keys, index.ascending)
                positions = where  # an index's row i is the file's position i
                hashes = index.hashes[where]
            else:
                found = read_keys(io, task.file, schema, column, wanted)
                where, rows = sorted_probe.find(found.column(column))
                # only the matches go on: positions, deletes and indexes of a few rows
                positions = found.column(POS).to_numpy()[where]
            if task.delete_files and len(positions):
                # each delete file's run apart: no merge of a file's deletes to look a few
                # positions up in them
                found_at = pa.array(positions)
                alive = np.ones(len(positions), dtype=np.bool_)
                for run in position_delete_runs(io, task.delete_files, task.file.file_path):
                    alive &= live_mask(found_at, run)
                positions, rows = positions[alive], rows[alive]
                hashes = hashes[alive] if hashes is not None else None
            idx = pa.array(rows) if identity else probe_idx.take(pa.array(rows))
            columns = [pa.array(positions.astype(np.int64, copy=False)), idx]
            if hashes is None:
                return pa.table(columns, names=[POS, _IDX])
            return pa.table([*columns, pa.array(hashes)], names=[POS, _IDX, _HASH])

        found_in = map_files(matched_in, tasks, parallel=len(tasks) > 1)
        return [(t, m) for t, m in zip(tasks, found_in, strict=True) if m.num_rows]

    def live_keys(task: FileScanTask) -> pa.Table:
        found = read_columns(io, task.file, schema, keys)
        if task.delete_files:
            gone = read_position_deletes(io, task.delete_files, task.file.file_path)
            found = drop_positions(found, gone)
        return found

    read = map_files(live_keys, tasks, parallel=len(tasks) > 1)
    out = []
    if probe_keys is not None:
        # one hash lookup over every candidate file's keys (the set is built once)
        sizes = [t.num_rows for t in read]
        if not sum(sizes):
            return out
        all_keys = pa.concat_arrays(
            [t.column(keys[0]).combine_chunks() for t in read if t.num_rows]
        )
        where = pc.index_in(all_keys, value_set=probe_keys)
        start = 0
        for task, found, size in zip(tasks, read, sizes, strict=True):
            part = where.slice(start, size)
            start += size
            hit = pc.is_valid(part)
            if not size or not pc.any(hit).as_py():
                continue
            matched = found.select([POS]).filter(hit)
            matched = matched.append_column(_IDX, probe_idx.take(part.filter(hit)))
            out.append((task, matched))  # positions stay in file order
        return out
    for task, found in zip(tasks, read, strict=True):
        joined = found.join(probe, keys=keys, join_type="inner")
        if joined.num_rows:
            out.append((task, joined.select([POS, _IDX]).sort_by(POS)))
    return out


def _plain_integers(values: pa.Array | pa.ChunkedArray) -> bool:
    """Whether ``values`` are signed or narrow integers without NULL (NumPy compares them
    as they are)."""
    kind = values.type
    return pa.types.is_integer(kind) and not pa.types.is_uint64(kind) and not values.null_count


#: A presence table of many integer keys (:attr:`_SortedKeys.presence`) spans at most this
#: many values per key (its bytes), and at most :data:`PRESENCE_MAX_BYTES` in all.
PRESENCE_SPAN_PER_KEY = 256
PRESENCE_MAX_BYTES = 64 * 1024**2


@dataclass(frozen=True)
class _SortedKeys:
    """Distinct integer keys, sorted, with the row each came from."""

    values: np.ndarray[Any, Any]
    rows: np.ndarray[Any, Any]

    @functools.cached_property
    def presence(self) -> np.ndarray[Any, Any] | None:
        """True at ``key - values[0]`` for each key, or ``None`` when their range is not
        dense enough; built the first time a file asks for it.

        Looking up a file's sorted keys in it is one subtraction and one gather per key of
        the file, where a binary search of each key costs ~17 steps: 50,000 keys among a
        file's 100,000 take 0.2 ms instead of 1.5 ms. The table costs a byte per value of
        the keys' range (:data:`PRESENCE_SPAN_PER_KEY`), built once per write.
        """
        if len(self.values) < 2:
            return None
        low = int(self.values[0])
        span = int(self.values[-1]) - low + 1
        if span > PRESENCE_SPAN_PER_KEY * len(self.values) or span > PRESENCE_MAX_BYTES:
            return None
        present = np.zeros(span, dtype=np.bool_)
        present[self.values - low] = True
        return present

    @classmethod
    def of(cls, keys: pa.Array | pa.ChunkedArray) -> _SortedKeys | None:
        """``keys`` (no NULL) sorted as 64-bit integers, or ``None`` when they are not
        integers that all fit (unsigned 64-bit ones need not)."""
        kind = keys.type
        if not pa.types.is_integer(kind) or pa.types.is_uint64(kind) or keys.null_count:
            return None
        values = keys.to_numpy().astype(np.int64, copy=False)
        # not a stable sort: keys that repeat are refused, whichever row comes first
        # (numpy's vectorised sort takes 1.4 ms for 100,000 keys, its stable one 3.7)
        order = np.argsort(values)
        return cls(values[order], order.astype(np.int64, copy=False))

    def repeated(self) -> tuple[int, int] | None:
        """The smallest key that appears more than once and how often, or ``None``."""
        same = self.values[1:] == self.values[:-1]
        if not same.any():
            return None
        value = self.values[int(np.argmax(same))]
        times = np.searchsorted(self.values, value, "right") - np.searchsorted(self.values, value)
        return int(value), int(times)

    def find(
        self, column: pa.Array | pa.ChunkedArray, ascending: bool = False
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Where in ``column`` the keys are (ascending indexes), and the row of each one.

        ``ascending``: ``column`` is known to strictly ascend (else it is checked).
        """
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if not len(column) or not len(self.values):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        valid = None
        if column.null_count:
            valid = column.is_valid().to_numpy(zero_copy_only=False)
            column = column.fill_null(0)
        looked = column.to_numpy().astype(np.int64, copy=False)
        if valid is None and (
            ascending or (len(looked) > 1 and bool((looked[1:] > looked[:-1]).all()))
        ):
            # strictly ascending (a file written sorted by key): look up the keys within
            # its range in it, which costs the keys, not the rows
            lo = int(np.searchsorted(self.values, looked[0], side="left"))
            hi = int(np.searchsorted(self.values, looked[-1], side="right"))
            if int(looked[-1]) - int(looked[0]) + 1 == len(looked):
                # consecutive keys (a file of sequential ids): a key's position is arithmetic
                return self.values[lo:hi] - looked[0], self.rows[lo:hi]
            present = self.presence if (hi - lo) * 8 > len(looked) else None
            if present is not None:
                # many keys within the file's range: each of the file's keys within the
                # keys' range is looked up in the table (a gather costs about an eighth
                # of a binary search)
                low, high = self.values[0], self.values[-1]
                first = int(np.searchsorted(looked, low, side="left"))
                end = int(np.searchsorted(looked, high, side="right"))
                where = np.flatnonzero(present[looked[first:end] - low]) + first
                return where, self.rows[np.searchsorted(self.values, looked[where])]
            inside = self.values[lo:hi]
            at = np.minimum(np.searchsorted(looked, inside), len(looked) - 1)
            there = looked[at] == inside
            return at[there], self.rows[lo:hi][there]  # ascending, as in the file
        at = np.searchsorted(self.values, looked)
        np.minimum(at, len(self.values) - 1, out=at)
        hit = self.values[at] == looked
        if valid is not None:
            hit &= valid
        where = np.flatnonzero(hit)
        return where, self.rows[at[where]]


def _unchanged(
    io: FileIO,
    schema: Schema,
    tasks: Sequence[FileScanTask],
    new_rows: pa.Table,
    keys: list[str],
    updates: Mapping[str, pa.Table],
    new_hashes: _Hashes,
    *,
    changes_anyway: bool = False,
) -> tuple[dict[str, pa.Array], pa.Array]:
    """Positions (per file) and new-row indexes of matched rows whose values are the same.

    ``updates`` holds, per file, the matched positions (sorted) and their new rows' indexes.
    The columns are compared one at a time with the new rows taken in the same order (no
    join); each is read at the positions of the rows still equal so far, so once every
    row of a file differs, its other columns are not read at all. Before a column is read, rows
    whose new value lies outside the old row group's min/max statistics are known to
    differ (:func:`~lakehouse.tables.files.may_equal`); the column is read only for the
    others. Before any of that, rows whose old hash (from a key index) differs from the
    new row's are known to differ.

    Proving a row unchanged means decoding its row groups' value columns. When the write
    changes the table anyway (``changes_anyway``: rows with new keys or keys to delete; or
    rows whose hash differs), a file's matched rows (those with an equal hash, when it has
    a key index) fewer than :data:`PROOF_MIN_SHARE` of its rows are not proved: they are
    rewritten as they are, which costs a few rows, where proving them costs the file's row
    groups (2,500 such rows over 18 files of 100,000 rows cost 140 ms to prove; 5 rows of
    a 10-row upsert, one in each of 5 files, cost 11 ms of a 29 ms upsert). A write
    that would change nothing else proves every one, so it commits nothing.
    """
    names = [f.name for f in arrow_schema(schema) if f.name not in keys]
    by_path = {t.file.file_path: t for t in tasks}
    new_values = new_rows.select(names)
    differed, updates = _hash_differs(updates, new_hashes)
    if changes_anyway or differed:
        updates = {
            path: found
            for path, found in updates.items()
            if found.num_rows >= PROOF_MIN_SHARE * by_path[path].file.record_count
        }

    def one(item: tuple[str, pa.Table]) -> tuple[str, pa.Array, pa.Array] | None:
        path, remaining = item
        try:
            for c in names:
                if not remaining.num_rows:
                    break
                b = new_values.column(c).take(remaining.column(_IDX))
                data_file = by_path[path].file
                at = remaining.column(POS).combine_chunks()
                # a new value outside the old row group's min/max differs: not read
                maybe = may_equal(io, data_file, schema, c, at, b)
                if not maybe.all():
                    kept = pa.array(maybe)
                    remaining, b = remaining.filter(kept), b.filter(kept)
                    if not remaining.num_rows:
                        break
                    at = remaining.column(POS).combine_chunks()
                a = read_columns(io, data_file, schema, [c], at).column(c)
                both_null = pc.and_(pc.is_null(a), pc.is_null(b))
                remaining = remaining.filter(pc.or_(both_null, pc.fill_null(pc.equal(a, b), False)))
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            logger.debug("change detection skipped (a type Arrow cannot compare): %s", exc)
            return None
        # no value column: an existing key is an unchanged row
        return path, remaining.column(POS).combine_chunks(), remaining.column(_IDX).combine_chunks()

    out: dict[str, pa.Array] = {}
    indexes: list[pa.Array] = []
    for found in map_files(one, updates.items(), parallel=bool(names) and len(updates) > 1):
        if found is not None:
            path, positions, idx = found
            out[path] = positions
            indexes.append(idx.cast(pa.int64()))
    return out, pa.concat_arrays(indexes) if indexes else pa.array([], pa.int64())


class _Hashes:
    """The new rows' hashes over the key index's value columns, computed once if asked.

    ``early``: start computing them now on the thread pool (DuckDB hashes outside the
    GIL), for a write that will need them, while the key lookup runs.
    """

    def __init__(self, rows: pa.Table, columns: Sequence[str], *, early: bool = False) -> None:
        self._rows = rows
        self._columns = columns
        self._hashes: np.ndarray[Any, Any] | None = None
        self._done = False
        self._pending: Future[np.ndarray[Any, Any] | None] | None = None
        if early and columns:
            self._pending = in_background(row_hashes, rows, columns)

    def get(self) -> np.ndarray[Any, Any] | None:
        """The hashes (``None``: a column DuckDB cannot hash)."""
        if not self._done:
            if self._pending is not None:
                self._hashes = self._pending.result()
            else:
                self._hashes = row_hashes(self._rows, self._columns)
            self._done = True
        return self._hashes


def _hash_differs(
    updates: Mapping[str, pa.Table], hashed: _Hashes
) -> tuple[bool, Mapping[str, pa.Table]]:
    """Whether a row's old hash differed from its new row's (the write changes a row), and
    ``updates`` without those rows.

    Matches from files with a key index carry the old row's hash (:data:`_HASH`); the
    new rows are hashed once, over the same columns. Equal hashes prove nothing: those
    rows stay, to be compared value by value.
    """
    if not any(_HASH in m.column_names for m in updates.values()):
        return False, updates
    hashes = hashed.get()
    new_hashes = pa.array(hashes) if hashes is not None else None
    kept: dict[str, pa.Table] = {}
    differed = False
    for path, matched in updates.items():
        if _HASH in matched.column_names:
            if new_hashes is not None:
                same = pc.equal(matched.column(_HASH), new_hashes.take(matched.column(_IDX)))
                before = matched.num_rows
                matched = matched.filter(same)
                differed = differed or matched.num_rows < before
            matched = matched.drop_columns([_HASH])
        if matched.num_rows:
            kept[path] = matched
    return differed, kept


def _kept_rows(io: FileIO, schema: Schema, task: FileScanTask, gone: pa.Array) -> pa.Table:
    """Copy-on-write: the rows of ``task``'s file that stay (not deleted, not replaced)."""
    names = [f.name for f in arrow_schema(schema)]
    rows = read_columns(io, task.file, schema, names)
    already = (
        read_position_deletes(io, task.delete_files, task.file.file_path)
        if task.delete_files
        else pa.array([], pa.int64())
    )
    rows = drop_positions(rows, pa.concat_arrays([already, gone.cast(pa.int64())]))
    return rows.drop_columns([POS])


def lookup(
    table: Table,
    keys_to_find: pa.Table,
    keys: Sequence[str],
    columns: Sequence[str] | None = None,
    *,
    branch: str = "main",
) -> pa.Table:
    """The current rows of ``table`` whose ``keys`` are in ``keys_to_find`` (``columns``).

    Found as an upsert finds old versions: candidate files by pruning, key columns read
    and matched, then only the matched rows read. Columns the table does not have are
    refused.
    """
    keys = list(keys)
    metadata = table.metadata
    schema = metadata.schema()
    names = list(columns) if columns is not None else [f.name for f in schema.fields]
    known = {f.name for f in schema.fields}
    missing = [c for c in [*keys, *names] if c not in known]
    if missing:
        raise RowLevelWriteError(f"table {table.name()} has no column(s) {', '.join(missing)}")
    empty = arrow_schema(schema, names).empty_table()
    head = branch_head(metadata, branch)
    wanted = _typed(keys_to_find, schema, keys)
    if head is None or wanted is None or not wanted.num_rows:
        return empty
    wanted = wanted.group_by(keys).aggregate([])
    tasks = _candidate_tasks(
        table.transaction(), metadata, head.snapshot_id, schema, keys, wanted, wanted.num_rows
    )
    matches = _locate(table.io, schema, keys, tasks, wanted, None)
    if not matches:
        return empty

    def one(item: tuple[FileScanTask, pa.Table]) -> pa.Table:
        task, found = item
        rows = read_columns(table.io, task.file, schema, names, found.column(POS).combine_chunks())
        return rows.drop_columns([POS])

    parts = map_files(one, matches, parallel=len(matches) > 1)
    return pa.concat_tables(parts)


def delete_rows(
    table: Table,
    keys_to_delete: pa.Table,
    keys: Sequence[str],
    *,
    branch: str = "main",
    properties: Mapping[str, str] | None = None,
    reload: Callable[[], Table] | None = None,
) -> UpsertResult:
    """Delete the rows whose ``keys`` are in ``keys_to_delete`` (one snapshot, or none)."""
    empty = arrow_schema(table.schema(), list(keys)).empty_table()
    return upsert(
        table, empty, keys, delete_keys=keys_to_delete, branch=branch,
        properties=properties, reload=reload,
    )  # fmt: skip


__all__ = [
    "COPY_ON_WRITE",
    "DELETE_MODE",
    "MERGE_MODE",
    "MERGE_ON_READ",
    "SMALL_FILE_ROWS",
    "UPDATE_MODE",
    "UpsertResult",
    "conform",
    "delete_rows",
    "evolve_schema",
    "lookup",
    "stage_upsert",
    "upsert",
    "validate_keys",
    "write_mode",
]
