"""Writing Arrow results into Iceberg tables of a branch, one catalog commit per write.

Engines that compute in Arrow (DuckDB) use these helpers; each opens one PyIceberg
transaction, so everything it does — schema evolution, deletes, appends — lands as one
commit on the branch (:meth:`~lakehouse.catalog.iceberg.RefCatalog.commit_table`):

* :func:`create_table` — a new table with its first rows;
* :func:`replace_rows` — ``full_refresh``: the table's schema becomes the result's (new
  columns added, missing ones dropped, types widened) and its rows are replaced;
* :func:`append_rows` — ``append``: new columns added, rows appended;
* :func:`delete_and_append` — ``merge``: rows matching a filter deleted and new ones
  appended.

Each takes the rows as an Arrow table or as a :class:`BatchStream` (record batches of
one schema, e.g. a DuckDB result read with ``to_arrow_reader``): a stream is written
into data files as it comes (:func:`lakehouse.tables.streaming.append_batches`), so a
result larger than memory never needs to be held whole; the commit is the same one.

Before writing, :func:`iceberg_compatible` (:func:`compatible_stream` for a stream)
turns Arrow types Iceberg cannot store into ones it can (unsigned integers, nanosecond
and non-UTC timestamps, dictionaries, views, ``null`` columns).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, TypeAlias

import pyarrow as pa

from lakehouse.pipelines.errors import PipelineError

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table, Transaction

logger = logging.getLogger(__name__)


class SchemaChangeError(PipelineError, ValueError):
    """The result's columns cannot be written into the table's current schema."""


def _compatible_type(kind: pa.DataType) -> pa.DataType:
    """An Arrow type Iceberg can store that holds every value of ``kind``."""
    if pa.types.is_dictionary(kind):
        return _compatible_type(kind.value_type)
    if pa.types.is_null(kind):
        return pa.string()
    if pa.types.is_uint8(kind) or pa.types.is_uint16(kind) or pa.types.is_int8(kind):
        return pa.int32()
    if pa.types.is_int16(kind):
        return pa.int32()
    if pa.types.is_uint32(kind):
        return pa.int64()
    if pa.types.is_uint64(kind):
        return pa.decimal128(20, 0)
    if pa.types.is_float16(kind):
        return pa.float32()
    if pa.types.is_timestamp(kind):
        tz = "UTC" if kind.tz is not None else None
        return pa.timestamp("us", tz=tz)
    if pa.types.is_time(kind):
        return pa.time64("us")
    if pa.types.is_string_view(kind) or pa.types.is_large_string(kind):
        return pa.string()
    if pa.types.is_binary_view(kind) or pa.types.is_large_binary(kind):
        return pa.binary()
    if pa.types.is_large_list(kind) or pa.types.is_list_view(kind):
        return pa.list_(_compatible_field(kind.value_field))
    if pa.types.is_list(kind):
        return pa.list_(_compatible_field(kind.value_field))
    if pa.types.is_struct(kind):
        return pa.struct([_compatible_field(kind.field(i)) for i in range(kind.num_fields)])
    if pa.types.is_map(kind):
        return pa.map_(_compatible_field(kind.key_field), _compatible_field(kind.item_field))
    if pa.types.is_interval(kind) or pa.types.is_duration(kind):
        raise SchemaChangeError(f"type {kind} cannot be stored in an Iceberg table")
    return kind


def _compatible_field(f: pa.Field) -> pa.Field:
    return pa.field(f.name, _compatible_type(f.type), nullable=f.nullable)


def iceberg_compatible(data: pa.Table) -> pa.Table:
    """``data`` with every column cast to a type Iceberg can store (see the module)."""
    target = _compatible_schema(data.schema)
    if target.equals(data.schema):
        return data
    return data.cast(target, safe=False)


class BatchStream:
    """Record batches of one Arrow :attr:`schema`, read once; :attr:`rows` counts those read."""

    def __init__(self, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> None:
        self.schema = schema
        self._batches = iter(batches)
        #: Rows of the batches consumed so far.
        self.rows = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._batches:
            self.rows += batch.num_rows
            yield batch

    def first(self) -> pa.RecordBatch | None:
        """Read up to the first non-empty batch and keep it at the head of the stream
        (``None``: the stream is empty)."""
        for batch in self._batches:
            if batch.num_rows:
                self._batches = itertools.chain([batch], self._batches)
                return batch
        return None


#: Rows, whole or streamed.
Rows: TypeAlias = "pa.Table | BatchStream"


def _compatible_schema(schema: pa.Schema) -> pa.Schema:
    duplicates = sorted({n for n in schema.names if schema.names.count(n) > 1})
    if duplicates:
        raise SchemaChangeError(
            f"the result has several columns named {', '.join(duplicates)}; alias them"
        )
    fields = []
    for f in schema:
        try:
            fields.append(_compatible_field(f))
        except SchemaChangeError as exc:
            raise SchemaChangeError(f"column '{f.name}': {exc}") from None
    return pa.schema(fields)


def compatible_stream(reader: pa.RecordBatchReader) -> BatchStream:
    """``reader``'s batches, each cast to types Iceberg can store (:func:`iceberg_compatible`)."""
    target = _compatible_schema(reader.schema)
    if target.equals(reader.schema):
        return BatchStream(target, reader)
    return BatchStream(target, (batch.cast(target, safe=False) for batch in reader))


def _append(tx: Transaction, data: Rows, properties: Mapping[str, str] | None) -> None:
    """Append ``data`` in ``tx`` (nothing, not even a snapshot, when it has no rows)."""
    from lakehouse.tables.streaming import append_batches

    props = dict(properties or {})
    if isinstance(data, pa.Table):
        if data.num_rows:
            tx.append(data, snapshot_properties=props)
        return
    if data.first() is not None:
        append_batches(tx, data, data.schema, snapshot_properties=props)


def _namespace(catalog: Catalog, name: str) -> None:
    from pyiceberg.exceptions import NamespaceAlreadyExistsError

    namespace = name.rpartition(".")[0]
    if not catalog.namespace_exists(namespace):
        with contextlib.suppress(NamespaceAlreadyExistsError):  # created concurrently
            catalog.create_namespace(namespace)


def create_table(
    catalog: Catalog, name: str, data: Rows, properties: Mapping[str, str] | None = None
) -> Table:
    """Create table ``name`` with ``data``'s schema and rows (the namespace if needed)."""
    from lakehouse.tables import DEFAULT_TABLE_PROPERTIES

    _namespace(catalog, name)
    tx = catalog.create_table_transaction(
        name, schema=data.schema, properties=DEFAULT_TABLE_PROPERTIES
    )
    _append(tx, data, properties)
    return tx.commit_transaction()


@contextlib.contextmanager
def _nothing_to_delete_is_fine() -> Iterator[None]:
    """Silence PyIceberg's warnings that are normal for these writes.

    A delete that matched no rows; and its copy-on-write fallback on merge-on-read tables,
    which is what a full replacement or a filter delete should do anyway (whole files are
    dropped; row-level changes go through :mod:`lakehouse.tables`).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        warnings.filterwarnings("ignore", "Merge on read is not yet supported")
        yield


def _evolve(tx: Transaction, table: Table, schema: pa.Schema, *, drop_missing: bool) -> None:
    """Make the table's schema accept ``schema``: add columns, widen types (drop others)."""
    from pyiceberg.exceptions import ValidationError

    current = {f.name for f in table.schema().fields}
    wanted = set(schema.names)
    try:
        with tx.update_schema() as update:
            update.union_by_name(schema)
            if drop_missing:
                for column in sorted(current - wanted):
                    update.delete_column(column)
    except (ValidationError, ValueError, TypeError) as exc:
        raise SchemaChangeError(f"the result does not fit the table's schema: {exc}") from exc


def replace_rows(table: Table, data: Rows, properties: Mapping[str, str] | None = None) -> Table:
    """Replace every row of ``table`` with ``data``; its schema becomes ``data``'s."""
    from pyiceberg.expressions import AlwaysTrue

    tx = table.transaction()
    _evolve(tx, table, data.schema, drop_missing=True)
    if isinstance(data, pa.Table):
        with _nothing_to_delete_is_fine():
            tx.overwrite(data, snapshot_properties=dict(properties or {}))
        return tx.commit_transaction()
    with _nothing_to_delete_is_fine():  # what overwrite does: delete all, then append
        tx.delete(AlwaysTrue(), snapshot_properties=dict(properties or {}))
    _append(tx, data, properties)
    return tx.commit_transaction()


def append_rows(table: Table, data: Rows, properties: Mapping[str, str] | None = None) -> Table:
    """Append ``data`` to ``table`` (new columns are added)."""
    tx = table.transaction()
    _evolve(tx, table, data.schema, drop_missing=False)
    _append(tx, data, properties)
    return tx.commit_transaction()


def delete_and_append(
    table: Table,
    delete_filter: BooleanExpression,
    data: pa.Table,
    properties: Mapping[str, str] | None = None,
) -> Table:
    """Delete rows matching ``delete_filter`` and append ``data``, in one commit.

    ``AlwaysFalse`` deletes nothing (a merge that only inserts is a plain append).
    """
    from pyiceberg.expressions import AlwaysFalse

    tx = table.transaction()
    _evolve(tx, table, data.schema, drop_missing=False)
    props = dict(properties or {})
    if not isinstance(delete_filter, AlwaysFalse):
        with _nothing_to_delete_is_fine():
            tx.delete(delete_filter, snapshot_properties=props)
    if data.num_rows:
        tx.append(data, snapshot_properties=props)
    return tx.commit_transaction()


__all__ = [
    "BatchStream",
    "Rows",
    "SchemaChangeError",
    "append_rows",
    "compatible_stream",
    "create_table",
    "delete_and_append",
    "iceberg_compatible",
    "replace_rows",
]
