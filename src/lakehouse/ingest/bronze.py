"""Bronze tables: what they hold already, whether a batch fits, and the append commit.

**Exactly once.** Each batch is one Iceberg snapshot whose summary carries the batch
id, the source, the name and sha256 of every file and, for incremental sources, the
cursor value — committed atomically with the data by ``Transaction.append(df,
snapshot_properties=…)``. :func:`read_state` rebuilds what a table holds by walking
the ancestry of its current snapshot on the branch the catalog is bound to; there is
no side file. Snapshot summary keys:

======================================  ==================================================
``lakehouse.ingest.batch-id``           the batch id
``lakehouse.ingest.source``             the source name
``lakehouse.ingest.files``              JSON ``[[name, sha256], …]`` of the batch's files
``lakehouse.ingest.manifest``           URI of the landing manifest in ``raw``
``lakehouse.ingest.cursor``             JSON cursor (incremental SQL sources)
======================================  ==================================================

Expiring snapshots drops their summaries; a file whose loading snapshot was expired
would be loaded again. Snapshot expiry of bronze tables must keep ingestion snapshots
(or run only after their source files are gone).

**Concurrency.** Two runs ingesting the same file at once must not both load it. The
commit therefore also sets the table property ``lakehouse.ingest.last-batch-id``, so it
is never a pure fast append that the catalog would rebase onto a concurrent commit,
and ingestion tables carry ``commit.retry.num-retries=0`` so PyIceberg does not rebuild
it onto the new head either: a concurrent commit makes this one fail, and the loader
re-reads the table's history and drops files that were loaded meanwhile.

**Schema drift.** New columns are added (``union_by_name``) in the same transaction
as the append. Columns may arrive narrower than the table (``int`` into ``long``, an
integer into ``double`` or ``decimal``) and are cast; a type the table cannot be widened
to (``long`` → ``string``), a missing required column or NULLs in a required column
make the batch incompatible (see :func:`fit`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import (
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    ResolveError,
    ValidationError,
)
from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids, schema_to_pyarrow
from pyiceberg.schema import Schema, promote
from pyiceberg.table.snapshots import ancestors_of

from lakehouse.ingest.sources.base import Cursor, TableState

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lakehouse.catalog.iceberg import RefCatalog
    from lakehouse.catalog.store import VersionStore

#: Ingestion columns every bronze table carries.
BATCH_ID = "_batch_id"
SOURCE_FILE = "_source_file"
INGESTED_AT = "_ingested_at"
INGESTION_COLUMNS = (BATCH_ID, SOURCE_FILE, INGESTED_AT)

#: Snapshot summary keys (see the module docstring).
SUMMARY_BATCH_ID = "lakehouse.ingest.batch-id"
SUMMARY_SOURCE = "lakehouse.ingest.source"
SUMMARY_FILES = "lakehouse.ingest.files"
SUMMARY_MANIFEST = "lakehouse.ingest.manifest"
SUMMARY_CURSOR = "lakehouse.ingest.cursor"

#: Table property set by every ingestion commit (makes it a non-rebasable commit).
LAST_BATCH_PROPERTY = "lakehouse.ingest.last-batch-id"
#: Table properties of ingestion tables: no blind retry of a conflicting append.
TABLE_PROPERTIES: Mapping[str, str] = {"commit.retry.num-retries": "0"}


def read_state(table: Table | None, name: str, source: str) -> TableState:
    """What ``table`` holds from earlier batches, from its snapshot history."""
    if table is None:
        return TableState(name)
    loaded: dict[str, str] = {}
    batches: list[str] = []
    cursor: Cursor | None = None
    last_of_source: frozenset[str] | None = None
    for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
        summary = snapshot.summary
        if summary is None:
            continue
        props = summary.additional_properties
        batch = props.get(SUMMARY_BATCH_ID)
        if not batch:
            continue
        batches.append(batch)
        shas = [sha for _, sha in json.loads(props.get(SUMMARY_FILES) or "[]")]
        for sha in shas:
            loaded[sha] = batch  # walking back in time: the oldest batch wins
        if props.get(SUMMARY_SOURCE) == source:
            if last_of_source is None:
                last_of_source = frozenset(shas)
            if cursor is None and props.get(SUMMARY_CURSOR):
                cursor = Cursor.from_json(props[SUMMARY_CURSOR])
    columns = {
        f.name: _plain(f.type) for f in schema_to_pyarrow(table.schema(), include_field_ids=False)
    }
    return TableState(
        name,
        exists=True,
        loaded=loaded,
        batches=tuple(reversed(batches)),
        cursor=cursor,
        columns=columns,
        last_batch=last_of_source or frozenset(),
    )


def _plain(type_: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(type_):
        return pa.string()
    if pa.types.is_large_binary(type_):
        return pa.binary()
    if pa.types.is_large_list(type_):
        return pa.list_(type_.value_field.with_type(_plain(type_.value_type)))
    return type_


def with_ingestion_columns(
    data: pa.Table, *, batch_id: str, source_file: str, ingested_at: dt.datetime
) -> pa.Table:
    """``data`` plus ``_batch_id``, ``_source_file`` and ``_ingested_at`` (all non-null)."""
    n = data.num_rows
    at = ingested_at.astimezone(dt.UTC)
    micros = (at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    columns = [
        (BATCH_ID, _constant_string(batch_id, n)),
        (SOURCE_FILE, _constant_string(source_file, n)),
        (INGESTED_AT, pa.repeat(pa.scalar(micros, pa.int64()), n).cast(pa.timestamp("us", "UTC"))),
    ]
    for name, array in columns:
        data = data.append_column(pa.field(name, array.type, nullable=False), array)
    return data


def _constant_string(value: str, n: int) -> pa.Array:
    """``n`` copies of ``value`` as a string array, built from buffers (fast for millions)."""
    data = value.encode("utf-8")
    size = len(data)
    if size * (n + 1) >= 2**31 - 1:  # beyond 32-bit offsets
        return pa.repeat(pa.scalar(value, pa.large_string()), n)
    ends = pc.cumulative_sum(pa.repeat(pa.scalar(size, pa.int32()), n + 1))
    offsets = pc.subtract(ends, pa.scalar(size, pa.int32()))
    return pa.StringArray.from_buffers(n, offsets.buffers()[1], pa.py_buffer(data * n))


@dataclass(frozen=True)
class Fit:
    """A batch made to fit a table: the data to append and the schema change, if any."""

    data: pa.Table
    #: True when the table's schema must be evolved (``union_by_name``) first.
    evolve: bool
    #: Columns the batch adds.
    added: tuple[str, ...]


def fit(table: Table | None, batch: pa.Table) -> Fit | list[str]:
    """``batch`` shaped for ``table`` (``None``: a new table), or the reasons it cannot be.

    Columns the table has are cast to its types when that keeps every value (and the
    batch's nullability is set to the table's); columns of an all-NULL type become
    strings when new. Anything else that differs is left to ``union_by_name``, whose
    refusal (e.g. ``long`` → ``string``) is a reason.
    """
    if table is None:
        columns, fields = [], []
        for field, column in zip(batch.schema, batch.columns, strict=True):
            if pa.types.is_null(field.type):
                column = column.cast(pa.string())
                field = field.with_type(pa.string())
            columns.append(column)
            fields.append(field)
        data = pa.Table.from_arrays(columns, schema=pa.schema(fields))
        return Fit(data, evolve=False, added=tuple(data.column_names))

    schema = table.schema()
    existing = {f.name: f for f in schema.fields}
    reasons: list[str] = []
    for name, field_ in existing.items():
        if field_.required and name not in batch.column_names:
            reasons.append(f"required column {name!r} is missing")
    columns, fields = [], []
    added: list[str] = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        current = existing.get(field.name)
        if current is None:
            if pa.types.is_null(field.type):
                column = column.cast(pa.string())
                field = field.with_type(pa.string())
            columns.append(column)
            fields.append(field.with_nullable(True))
            added.append(field.name)
            continue
        target = _plain(schema_to_pyarrow(Schema(current), include_field_ids=False).field(0).type)
        if current.required and column.null_count:
            reasons.append(
                f"column {field.name!r} is required but {column.null_count} row(s) are NULL"
            )
        if field.type != target and _castable(field.type, target):
            try:
                column = column.cast(target)
                field = field.with_type(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                reasons.append(f"column {field.name!r}: cannot cast to {current.field_type}: {exc}")
        columns.append(column)
        fields.append(field.with_nullable(not current.required))
    if reasons:
        return reasons
    data = pa.Table.from_arrays(columns, schema=pa.schema(fields))
    try:
        evolved = table.update_schema().union_by_name(data.schema)._apply()
    except (ValueError, ResolveError, ValidationError) as exc:
        return [f"incompatible schema change: {_one_line(exc)}"]
    evolve = evolved.as_struct() != schema.as_struct()
    return Fit(data, evolve=evolve, added=tuple(added))


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    """True if every value of ``source`` has the same value as ``target``."""
    if pa.types.is_null(source):
        return True
    if pa.types.is_integer(source):
        if pa.types.is_integer(target):
            return bool(target.bit_width >= source.bit_width)
        return bool(pa.types.is_floating(target) or pa.types.is_decimal(target))
    try:
        a = _pyarrow_to_schema_without_ids(pa.schema([pa.field("x", source)])).fields[0]
        b = _pyarrow_to_schema_without_ids(pa.schema([pa.field("x", target)])).fields[0]
        promote(a.field_type, b.field_type)
    except (ResolveError, ValueError, TypeError):
        return False
    return True


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def ensure_namespace(catalog: RefCatalog, namespace: Sequence[str]) -> None:
    """Create ``namespace`` (and its parents) on the catalog's branch when missing."""
    for depth in range(1, len(namespace) + 1):
        part = tuple(namespace[:depth])
        if not catalog.namespace_exists(part):
            with contextlib.suppress(NamespaceAlreadyExistsError):  # created concurrently
                catalog.create_namespace(part)


def load_table(catalog: RefCatalog, name: str) -> Table | None:
    """The table on the catalog's branch, or ``None`` when it does not exist."""
    try:
        return catalog.load_table(name)
    except NoSuchTableError:
        return None


def append(
    catalog: RefCatalog,
    name: str,
    table: Table | None,
    fitted: Fit,
    *,
    batch_id: str,
    summary: Mapping[str, str],
) -> Table:
    """Commit ``fitted`` to ``name`` as one snapshot (one catalog commit); return the table.

    A new table is created in the same commit. Raises PyIceberg's
    ``CommitFailedException`` / ``TableAlreadyExistsError`` when another writer got there
    first: re-read and try again.
    """
    properties = {**summary}
    if table is None:
        ensure_namespace(catalog, name.split(".")[:-1])
        create = catalog.create_table_transaction(
            name,
            schema=fitted.data.schema,
            properties={**TABLE_PROPERTIES, LAST_BATCH_PROPERTY: batch_id},
        )
        create.append(fitted.data, snapshot_properties=properties)
        return create.commit_transaction()

    missing = {k: v for k, v in TABLE_PROPERTIES.items() if table.properties.get(k) != v}
    if missing:  # a table created elsewhere: switch off blind retries first
        table = table.transaction().set_properties(missing).commit_transaction()
    tx = table.transaction()
    if fitted.evolve:
        with tx.update_schema() as update:
            update.union_by_name(fitted.data.schema)
            if BATCH_ID in table.schema().column_names:
                for column in fitted.added:  # keep the ingestion columns last
                    if column not in INGESTION_COLUMNS:
                        update.move_before(column, BATCH_ID)
    tx.append(fitted.data, snapshot_properties=properties)
    tx.set_properties({LAST_BATCH_PROPERTY: batch_id})
    return tx.commit_transaction()


def find_commit(
    store: VersionStore, branch: str, name: str, snapshot_id: int, *, depth: int = 50
) -> str | None:
    """Hash of the catalog commit on ``branch`` that set table ``name`` to ``snapshot_id``."""
    from lakehouse.catalog.model import ContentKey, IcebergTable, Put

    key = ContentKey.parse(name)
    for n, entry in enumerate(store.iter_log(branch, fetch_operations=True, page_size=depth)):
        if n >= depth:
            break
        for op in entry.operations or ():
            if (
                isinstance(op, Put)
                and op.key == key
                and isinstance(op.content, IcebergTable)
                and op.content.snapshot_id == snapshot_id
            ):
                return entry.hash
    return None


__all__ = [
    "BATCH_ID",
    "INGESTED_AT",
    "INGESTION_COLUMNS",
    "LAST_BATCH_PROPERTY",
    "SOURCE_FILE",
    "SUMMARY_BATCH_ID",
    "SUMMARY_CURSOR",
    "SUMMARY_FILES",
    "SUMMARY_MANIFEST",
    "SUMMARY_SOURCE",
    "TABLE_PROPERTIES",
    "Fit",
    "append",
    "ensure_namespace",
    "find_commit",
    "fit",
    "load_table",
    "read_state",
    "with_ingestion_columns",
]
