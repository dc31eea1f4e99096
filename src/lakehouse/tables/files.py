"""Reading some columns, or some rows, of one Iceberg data file by field id.

Row-level writes need what a scan hides: the *position* of each row in its data file.
:func:`read_columns` reads chosen top-level columns of one Parquet data file, mapped by
Iceberg field id (so renamed, added and promoted columns read right; files without
field ids are mapped by name), with a ``__pos`` column; given positions, it reads only
the row groups that hold them. Columns the file does not have read as NULL.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakehouse.tables.errors import RowLevelWriteError

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.manifest import DataFile
    from pyiceberg.schema import Schema

#: The position column :func:`read_columns` adds.
POS = "__pos"

#: A column and the values looked for in it: a sequence, or a sorted NumPy array.
_Values = tuple[str, "Sequence[Any] | np.ndarray[Any, Any]"]

_T = TypeVar("_T")
_R = TypeVar("_R")
_K = TypeVar("_K")
_V = TypeVar("_V")


def map_files(fn: Callable[[_T], _R], items: Iterable[_T], *, parallel: bool) -> list[_R]:
    """``fn`` over ``items``, in order: on PyIceberg's shared pool when ``parallel``.

    Reading a few row groups or cached entries takes less than handing the work to a
    pool thread and back on a busy machine (the GIL hand-offs dominate), so callers ask
    for the pool only when each item means real I/O or decoding.
    """
    if not parallel:
        return [fn(item) for item in items]
    return list(_pool().map(fn, items))


def in_background(fn: Callable[..., _R], *args: Any) -> Future[_R]:
    """``fn(*args)`` started on the pool :func:`map_files` uses; its future."""
    return _pool().submit(fn, *args)


def _pool() -> Executor:
    """PyIceberg's shared thread pool (sized by its ``max-workers`` setting)."""
    from pyiceberg.utils.concurrent import ExecutorFactory

    return ExecutorFactory.get_or_create()


_ARROW_SCHEMAS: OrderedDict[int, tuple[Schema, pa.Schema]] = OrderedDict()
_ARROW_SCHEMAS_LOCK = threading.Lock()
_ARROW_SCHEMAS_MAX = 64


def arrow_schema(schema: Schema, names: Sequence[str] | None = None) -> pa.Schema:
    """The Arrow schema of ``schema``'s top-level fields (all, or ``names``), without ids.

    Converted once per schema object (a row-level write asks for it per file read, and
    PyIceberg's conversion walks the whole schema each time).
    """
    key = id(schema)
    with _ARROW_SCHEMAS_LOCK:
        cached = _ARROW_SCHEMAS.get(key)
        if cached is not None and cached[0] is schema:
            _ARROW_SCHEMAS.move_to_end(key)
            full = cached[1]
        else:
            full = None
    if full is None:
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        full = schema_to_pyarrow(schema, include_field_ids=False)
        with _ARROW_SCHEMAS_LOCK:  # the schema is kept with its id, so the id is not reused
            _ARROW_SCHEMAS[key] = (schema, full)
            while len(_ARROW_SCHEMAS) > _ARROW_SCHEMAS_MAX:
                _ARROW_SCHEMAS.popitem(last=False)
    if names is None:
        return full
    return pa.schema([full.field(n) for n in names])


def _physical_columns(
    parquet: pq.ParquetFile | pq.FileMetaData, schema: Schema, names: Sequence[str]
) -> list[str | None]:
    """The file's top-level column name for each of ``names`` (``None``: not in the file)."""
    by_id, present = _file_fields(_metadata(parquet))
    out: list[str | None] = []
    for name in names:
        field = schema.find_field(name)
        if by_id:
            out.append(by_id.get(field.field_id))
        else:
            out.append(name if name in present else None)
    return out


_FOOTER_FACTS: OrderedDict[tuple[int, str], tuple[pq.FileMetaData, Any]] = OrderedDict()
_FOOTER_FACTS_LOCK = threading.Lock()


def _footer_fact(meta: pq.FileMetaData, what: str, compute: Callable[[], _R]) -> _R:
    """``compute()`` once per footer object and ``what`` (a footer parsed once per process
    is asked the same questions by every write that reads its file)."""
    key = (id(meta), what)
    with _FOOTER_FACTS_LOCK:
        hit = _FOOTER_FACTS.get(key)
        if hit is not None and hit[0] is meta:  # kept with the footer: its id is not reused
            _FOOTER_FACTS.move_to_end(key)
            return cast("_R", hit[1])
    value = compute()
    with _FOOTER_FACTS_LOCK:
        _FOOTER_FACTS[key] = (meta, value)
        while len(_FOOTER_FACTS) > 4 * _FOOTERS_MAX:
            _FOOTER_FACTS.popitem(last=False)
    return value


def _file_fields(meta: pq.FileMetaData) -> tuple[dict[int, str], frozenset[str]]:
    """The file's top-level column names by Iceberg field id, and all its column names."""

    def compute() -> tuple[dict[int, str], frozenset[str]]:
        arrow = meta.schema.to_arrow_schema()
        by_id: dict[int, str] = {}
        for f in arrow:
            raw = (f.metadata or {}).get(b"PARQUET:field_id")
            if raw is not None:
                by_id[int(raw)] = f.name
        return by_id, frozenset(arrow.names)

    return _footer_fact(meta, "fields", compute)


#: Up to this many positions are read through DuckDB, which skips to them (row-number
#: filter pushdown); more are read by whole row groups.
POSITIONED_READ_LIMIT = 2048
#: ... but only when the row groups holding them are larger than this: decoding a small
#: row group with pyarrow costs less than a DuckDB query (measured: a 32,768-row group of
#: two columns, 2.9 ms by row group vs 6.2 ms through DuckDB, on a busy machine).
SKIPPING_READ_ROWS = 131_072

#: Reads that decode fewer rows than this (or one column) run in the calling thread: handing
#: a few row groups to Arrow's thread pool and back costs more than decoding them, and far
#: more on a loaded machine, where each hand-off waits for a time slice (measured with a
#: load average of 15: a key column and two value columns of one 32,768-row group in each
#: of 5 files, 27 ms with Arrow's threads vs 12 ms without). Callers that read many files
#: spread them over threads themselves (:func:`map_files`).
THREADED_READ_ROWS = 262_144

_DUCKDB: Any = None
_DUCKDB_LOCK = threading.Lock()


def _duckdb_cursor() -> Any:
    """A cursor of this module's own in-memory DuckDB (one database per process)."""
    global _DUCKDB
    with _DUCKDB_LOCK:
        if _DUCKDB is None:
            import duckdb

            _DUCKDB = duckdb.connect(config={"autoinstall_known_extensions": False})
        return _DUCKDB.cursor()


def read_columns(
    io: FileIO,
    data_file: DataFile,
    schema: Schema,
    names: Sequence[str],
    positions: pa.Array | None = None,
    *,
    values: _Values | None = None,
) -> pa.Table:
    """Columns ``names`` of ``data_file`` (typed as ``schema`` says) and their ``__pos``.

    With ``positions`` (sorted, distinct), only those rows are returned: read by the row
    groups that hold them, or — for a local file whose row groups are large — by DuckDB
    with a row-number filter (it skips to the pages). With ``values`` (a column and a few
    of its values), only the row groups whose statistics may hold one of them are read
    (rows of other groups are left out: the caller looks for those values).
    """
    path = data_file.file_path
    with io.new_input(path).open() as stream:
        parquet = _parquet_file(stream, path)
        physical = _physical_columns(parquet, schema, names)
        present = [p for p in physical if p is not None]
        if positions is None:
            groups = _groups_for(parquet, schema, values) if values is not None else None
            if groups is None:
                threads = _threaded(parquet.metadata.num_rows, len(present))
                table = parquet.read(columns=present, use_threads=threads)
                pos = pa.array(np.arange(table.num_rows, dtype=np.int64))
            else:
                table, pos = _read_groups_with_positions(parquet, present, groups)
        elif (
            _is_local(path)
            and len(positions) <= POSITIONED_READ_LIMIT
            and _group_rows(parquet, positions) > SKIPPING_READ_ROWS
        ):
            table, pos = _read_by_duckdb(_local_path(path), present, positions)
        else:
            table = _read_row_groups(parquet, present, positions)
            pos = positions.cast(pa.int64())
    return _typed(table, pos, schema, names, physical, path)


def iter_row_groups(
    io: FileIO, data_file: DataFile, schema: Schema, names: Sequence[str], rows: int
) -> Iterator[pa.Table]:
    """Columns ``names`` of ``data_file`` (as :func:`read_columns` types them, with
    ``__pos``), a run of whole row groups of about ``rows`` rows at a time, in order: a
    large, wide file is never in memory at once."""
    path = data_file.file_path
    with io.new_input(path).open() as stream:
        parquet = _parquet_file(stream, path)
        physical = _physical_columns(parquet, schema, names)
        present = [p for p in physical if p is not None]
        sizes, _ = _row_groups(parquet)
        run: list[int] = []
        for group in range(parquet.metadata.num_row_groups):
            run.append(group)
            if group == parquet.metadata.num_row_groups - 1 or sizes[run].sum() >= rows:
                table, pos = _read_groups_with_positions(parquet, present, run)
                yield _typed(table, pos, schema, names, physical, path)
                run = []


class SizedCache(Generic[_K, _V]):
    """A thread-safe least-recently-used map of immutable values, bounded in bytes.

    A value larger than the whole budget is not kept. ``nbytes`` tells a value's size.
    """

    def __init__(self, budget: int, nbytes: Callable[[_V], int]) -> None:
        self.budget = budget
        self._nbytes = nbytes
        self._items: OrderedDict[_K, _V] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: _K) -> _V | None:
        """The value kept for ``key`` (now the most recently used), or ``None``."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: _K, value: _V) -> None:
        """Keep ``value`` (a key already kept keeps its first value: values are immutable)."""
        size = self._nbytes(value)
        if size > self.budget:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._size += size
            while self._size > self.budget:
                _, dropped = self._items.popitem(last=False)
                self._size -= self._nbytes(dropped)

    def clear(self) -> None:
        """Forget everything (as in a new process)."""
        with self._lock:
            self._items.clear()
            self._size = 0


#: Bytes of key columns :func:`read_keys` keeps per process (least recently used first out).
KEY_CACHE_BYTES = 64 * 1024**2

_KEYS: SizedCache[tuple[str, int, str, str], pa.Array] = SizedCache(
    KEY_CACHE_BYTES, lambda keys: int(keys.nbytes)
)


def read_keys(
    io: FileIO, data_file: DataFile, schema: Schema, name: str, values: _Values
) -> pa.Table:
    """Key column ``name`` of ``data_file`` and its ``__pos``, in the row groups whose
    statistics may hold one of ``values`` (as :func:`read_columns` with ``values``).

    Each row group's key column is decoded once per process and kept (data files are
    immutable and uniquely named), up to :data:`KEY_CACHE_BYTES` in all: the next
    row-level write that looks for keys in the same row group reads only its footer,
    which is kept too. A write that touches every row group of a table (many keys spread
    over its whole key range) decodes every key column once, not once per write.
    """
    path = data_file.file_path
    meta, physical, groups, kind = _key_groups(io, data_file, schema, name, values)
    if physical is None:
        return read_columns(io, data_file, schema, [name], values=values)
    sizes, starts = _row_groups(meta)
    found: dict[int, pa.Array] = {}
    for g in groups:
        cached = _KEYS.get((path, g, physical, str(kind)))
        if cached is not None:
            found[g] = cached
    missing = [g for g in groups if g not in found]
    if missing:
        with io.new_input(path).open() as stream:
            parquet = _parquet_file(stream, path)
            table, _ = _read_groups_with_positions(parquet, [physical], missing)
        keys = _as_type(table.column(physical), kind, name, path).combine_chunks()
        offset = 0
        for g in missing:
            part = keys.slice(offset, int(sizes[g]))
            if len(missing) > 1:  # its own buffer: what the budget counts is what is kept
                part = pa.concat_arrays([part])
            offset += int(sizes[g])
            found[g] = part
            _KEYS.put((path, g, physical, str(kind)), part)
    arrays = [found[g] for g in groups]
    positions = (
        np.concatenate([np.arange(starts[g], starts[g] + sizes[g]) for g in groups])
        if groups
        else np.zeros(0, np.int64)
    )
    return pa.table(
        [pa.chunked_array(arrays, kind), pa.array(positions.astype(np.int64, copy=False))],
        names=[name, POS],
    )


def keys_to_decode(
    io: FileIO, data_file: DataFile, schema: Schema, name: str, values: _Values
) -> int:
    """Rows of key column :func:`read_keys` would decode (in row groups not kept)."""
    meta, physical, groups, kind = _key_groups(io, data_file, schema, name, values)
    path = data_file.file_path
    return sum(
        meta.row_group(g).num_rows
        for g in groups
        if physical is None or _KEYS.get((path, g, physical, str(kind))) is None
    )


def _key_groups(
    io: FileIO, data_file: DataFile, schema: Schema, name: str, values: _Values
) -> tuple[pq.FileMetaData, str | None, list[int], pa.DataType]:
    """The footer of ``data_file``, its column of key ``name`` (``None``: not in the file),
    the row groups ``values`` may be in (all, when statistics cannot tell) and the key's
    type: what :func:`read_keys` reads."""
    meta = _footer(io, data_file.file_path)
    (physical,) = _physical_columns(meta, schema, [name])
    groups = _groups_for(meta, schema, values) if physical is not None else None
    kind = arrow_schema(schema, [name]).field(name).type
    return meta, physical, list(range(meta.num_row_groups)) if groups is None else groups, kind


def reads_every_row_group(io: FileIO, data_file: DataFile, schema: Schema, values: _Values) -> bool:
    """Whether looking for ``values`` in ``data_file`` reads all its row groups (their
    statistics cannot rule any out); the footer is read once per process."""
    meta = _footer(io, data_file.file_path)
    groups = _groups_for(meta, schema, values)
    return groups is None or len(groups) == meta.num_row_groups


def forget_keys() -> None:
    """Empty the key columns :func:`read_keys` keeps (as in a new process)."""
    _KEYS.clear()


def may_equal(
    io: FileIO,
    data_file: DataFile,
    schema: Schema,
    name: str,
    positions: pa.Array,
    values: pa.Array | pa.ChunkedArray,
) -> np.ndarray[Any, Any]:
    """For each of ``positions``, whether ``values[i]`` may equal the file's value there.

    Judged from the footer alone, without decoding a page: a value below the minimum or
    above the maximum of column ``name`` in the row group holding its position cannot be
    the file's value (the Parquet statistics are bounds, also when a writer truncated
    them). ``True`` wherever that cannot be told: a NULL value, a row group without
    statistics, a column the file does not have, or a type whose statistics do not order
    values as Arrow compares them (only integers, floating point, strings, binary and
    dates are judged). A change detection reads the column only where this is ``True``.
    """
    maybe = np.ones(len(positions), dtype=bool)
    kind = arrow_schema(schema, [name]).field(name).type
    if not len(positions) or not _judged_by_statistics(kind):
        return maybe
    meta = _footer(io, data_file.file_path)
    (physical,) = _physical_columns(meta, schema, [name])
    column = _column_index(meta, physical)
    if column is None or not _statistics_order(meta.schema.column(column), kind):
        return maybe
    _, starts = _row_groups(meta)
    wanted = positions.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    group_of = np.searchsorted(starts, wanted, side="right") - 1
    groups = np.unique(group_of)
    lows: list[Any] = []
    highs: list[Any] = []
    for g in groups.tolist():
        stats = meta.row_group(g).column(column).statistics
        known = stats is not None and stats.has_min_max
        lows.append(stats.min if known else None)
        highs.append(stats.max if known else None)
    try:
        low = pa.array(lows, kind)
        high = pa.array(highs, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return maybe
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.type != kind:
        values = values.cast(kind)
    at = pa.array(np.searchsorted(groups, group_of))
    below = pc.less(values, low.take(at))
    above = pc.greater(values, high.take(at))
    outside = pc.fill_null(pc.or_kleene(below, above), False)
    inside: np.ndarray[Any, Any] = ~np.asarray(outside.to_numpy(zero_copy_only=False), dtype=bool)
    return inside


_FOOTERS: OrderedDict[str, pq.FileMetaData] = OrderedDict()
_FOOTERS_LOCK = threading.Lock()
#: Footers kept per process. Data files are immutable and uniquely named, so a parsed
#: footer stays true; a row-level write opens each candidate file two or three times.
_FOOTERS_MAX = 512


def _cached_footer(path: str) -> pq.FileMetaData | None:
    with _FOOTERS_LOCK:
        meta = _FOOTERS.get(path)
        if meta is not None:
            _FOOTERS.move_to_end(path)
        return meta


def _parquet_file(stream: Any, path: str) -> pq.ParquetFile:
    """``stream`` of the data file ``path`` as a ParquetFile, its footer parsed once."""
    meta = _cached_footer(path)
    if meta is not None:
        parquet = pq.ParquetFile(stream, metadata=meta)
    else:
        parquet = pq.ParquetFile(stream)
        meta = parquet.metadata
        with _FOOTERS_LOCK:
            _FOOTERS[path] = meta
            while len(_FOOTERS) > _FOOTERS_MAX:
                _FOOTERS.popitem(last=False)
    # the footer object kept (ParquetFile wraps a given footer anew): what is derived from
    # it is kept by its identity (:func:`_footer_fact`)
    parquet._lakehouse_footer = meta
    return parquet


def _footer(io: FileIO, path: str) -> pq.FileMetaData:
    """The footer of the data file ``path`` (the file is opened only when not parsed before)."""
    meta = _cached_footer(path)
    if meta is not None:
        return meta
    with io.new_input(path).open() as stream:
        return _parquet_file(stream, path).metadata


def _metadata(parquet: pq.ParquetFile | pq.FileMetaData) -> pq.FileMetaData:
    if isinstance(parquet, pq.FileMetaData):
        return parquet
    kept: pq.FileMetaData | None = getattr(parquet, "_lakehouse_footer", None)
    return kept if kept is not None else parquet.metadata


def _column_index(meta: pq.FileMetaData, physical: str | None) -> int | None:
    """The index of the file's leaf column ``physical`` (a top-level primitive column)."""
    if physical is None:
        return None
    schema = meta.schema
    return next((i for i in range(meta.num_columns) if schema.column(i).path == physical), None)


def _judged_by_statistics(kind: pa.DataType) -> bool:
    """Whether values of ``kind`` compare with Parquet min/max statistics as Arrow's do."""
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_date32(kind)
    )


def _statistics_order(column: pq.ColumnSchema, kind: pa.DataType) -> bool:
    """Whether the file's ``column`` keeps statistics in the order Arrow compares ``kind``.

    Signed integers and dates in INT32/INT64, floating point in FLOAT/DOUBLE, strings as
    UTF-8 BYTE_ARRAY and binary as plain BYTE_ARRAY (both ordered byte by byte, unsigned).
    """
    physical = str(column.physical_type)
    logical = str(column.logical_type.type)
    if pa.types.is_date32(kind):
        return physical == "INT32" and logical == "DATE"
    if pa.types.is_integer(kind):
        if physical not in ("INT32", "INT64"):
            return False
        if logical == "INT":
            return '"isSigned":true' in str(column.logical_type.to_json()).replace(" ", "")
        return logical == "NONE"
    if pa.types.is_floating(kind):
        return physical in ("FLOAT", "DOUBLE") and logical == "NONE"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return physical == "BYTE_ARRAY" and logical == "STRING"
    return physical == "BYTE_ARRAY" and logical == "NONE"


def _typed(
    table: pa.Table,
    pos: pa.Array,
    schema: Schema,
    names: Sequence[str],
    physical: Sequence[str | None],
    path: str,
) -> pa.Table:
    """``table`` (physical columns) as columns ``names`` typed as ``schema`` says, + ``__pos``."""
    target = arrow_schema(schema, names)
    columns: list[pa.Array | pa.ChunkedArray] = []
    for name, phys in zip(names, physical, strict=True):
        kind = target.field(name).type
        if phys is None:
            columns.append(pa.nulls(table.num_rows, kind))
            continue
        columns.append(_as_type(table.column(phys), kind, name, path))
    columns.append(pos)
    return pa.table(columns, names=[*names, POS])


def _as_type(column: pa.ChunkedArray, kind: pa.DataType, name: str, path: str) -> pa.ChunkedArray:
    """Column ``name`` of data file ``path`` as the table's type ``kind``."""
    if column.type == kind:
        return column
    try:
        return column.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise RowLevelWriteError(
            f"column '{name}' of data file {path} cannot be read as {kind}: {exc}"
        ) from exc


def _row_groups(
    parquet: pq.ParquetFile | pq.FileMetaData,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Rows of each row group of ``parquet``, and the position of each group's first row."""
    meta = _metadata(parquet)
    sizes = np.array([meta.row_group(i).num_rows for i in range(meta.num_row_groups)], np.int64)
    return sizes, np.concatenate(([0], np.cumsum(sizes)[:-1]))


def _group_rows(parquet: pq.ParquetFile, positions: pa.Array) -> int:
    """Rows in the row groups that hold ``positions`` (what a row-group read decodes)."""
    sizes, starts = _row_groups(parquet)
    wanted = positions.to_numpy(zero_copy_only=False).astype(np.int64)
    groups = np.unique(np.searchsorted(starts, wanted, side="right") - 1)
    return int(sizes[groups].sum())


def _groups_for(
    parquet: pq.ParquetFile | pq.FileMetaData, schema: Schema, values: _Values
) -> list[int] | None:
    """Row groups whose min/max statistics of the column may hold one of the values.

    The values are a sequence, or a sorted NumPy array (many keys, sorted once by the
    caller). ``None`` when statistics cannot decide (missing, or values not comparable
    with them).
    """
    name, wanted = values
    (physical,) = _physical_columns(parquet, schema, [name])
    if physical is None or len(wanted) == 0:
        return None
    bounds = _group_bounds(_metadata(parquet), physical)
    if bounds is None:
        return None
    ordered = wanted if isinstance(wanted, np.ndarray) else sorted(wanted)
    groups: list[int] = []
    for g, (least, most) in enumerate(bounds):
        try:
            low = bisect.bisect_left(ordered, least)
            if low < len(ordered) and ordered[low] <= most:
                groups.append(g)
        except TypeError:
            return None
    return groups


def _group_bounds(meta: pq.FileMetaData, physical: str) -> list[tuple[Any, Any]] | None:
    """Each row group's min and max of the file's column ``physical`` (kept per footer), or
    ``None`` when the column is not a leaf of the file or a row group has no statistics."""

    def compute() -> list[tuple[Any, Any]] | None:
        column = _column_index(meta, physical)
        if column is None:
            return None
        bounds = []
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(column).statistics
            if stats is None or not stats.has_min_max:
                return None
            bounds.append((stats.min, stats.max))
        return bounds

    return _footer_fact(meta, f"bounds:{physical}", compute)


def _read_groups_with_positions(
    parquet: pq.ParquetFile, columns: Sequence[str], groups: Sequence[int]
) -> tuple[pa.Table, pa.Array]:
    sizes, starts = _row_groups(parquet)
    if not groups:
        empty = parquet.schema_arrow.empty_table().select(list(columns))
        return empty, pa.array([], pa.int64())
    threads = _threaded(int(sizes[list(groups)].sum()), len(columns))
    table = parquet.read_row_groups(list(groups), columns=list(columns), use_threads=threads)
    pos = np.concatenate([np.arange(starts[g], starts[g] + sizes[g]) for g in groups])
    return table, pa.array(pos.astype(np.int64))


def _read_by_duckdb(
    path: str, columns: Sequence[str], positions: pa.Array
) -> tuple[pa.Table, pa.Array]:
    selected = ", ".join(_quote(c) for c in columns)
    wanted = ", ".join(str(int(p)) for p in positions.to_pylist())
    cursor = _duckdb_cursor()
    try:
        rows = cursor.sql(
            f"SELECT {selected}{', ' if columns else ''}file_row_number AS {POS} "
            f"FROM read_parquet(?, file_row_number = true) "
            f"WHERE file_row_number IN ({wanted}) ORDER BY file_row_number",
            params=[path],
        ).to_arrow_table()
    finally:
        cursor.close()
    return rows.select(list(columns)), rows.column(POS).combine_chunks().cast(pa.int64())


def _read_row_groups(
    parquet: pq.ParquetFile, columns: Sequence[str], positions: pa.Array
) -> pa.Table:
    sizes, starts = _row_groups(parquet)
    wanted = positions.to_numpy(zero_copy_only=False).astype(np.int64)
    group_of = np.searchsorted(starts, wanted, side="right") - 1
    groups = np.unique(group_of)
    # where each group read begins in the concatenated result
    begins = np.concatenate(([0], np.cumsum(sizes[groups])[:-1]))
    read_start = np.zeros(len(sizes), np.int64)
    read_start[groups] = begins
    local = wanted - starts[group_of] + read_start[group_of]
    threads = _threaded(int(sizes[groups].sum()), len(columns))
    read = parquet.read_row_groups(groups.tolist(), columns=list(columns), use_threads=threads)
    return read.take(pa.array(local))


def _threaded(rows: int, columns: int) -> bool:
    """Whether a read of ``rows`` rows of ``columns`` columns is worth Arrow's threads."""
    return columns > 1 and rows >= THREADED_READ_ROWS


def _is_local(path: str) -> bool:
    return urlparse(path).scheme in ("", "file")


def _local_path(path: str) -> str:
    parsed = urlparse(path)
    return unquote(parsed.path) if parsed.scheme == "file" else path


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def drop_positions(table: pa.Table, deleted: pa.Array) -> pa.Table:
    """Rows of ``table`` whose ``__pos`` is not in ``deleted``."""
    if len(deleted) == 0 or table.num_rows == 0:
        return table
    return table.filter(pa.array(live_mask(table.column(POS), deleted)))


def live_mask(positions: pa.Array | pa.ChunkedArray, deleted: pa.Array) -> np.ndarray[Any, Any]:
    """For each of ``positions``, whether it is not in ``deleted`` (a NumPy mask).

    Positions read by row groups are ascending, usually in one run: then each deleted
    position is looked up in them (or, in one run, indexed), which costs the deletes,
    not the rows.
    """
    pos = positions.to_numpy().astype(np.int64, copy=False)
    keep = np.ones(len(pos), dtype=bool)
    if not len(pos) or not len(deleted):
        return keep
    gone = deleted.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    first, last = int(pos[0]), int(pos[-1])
    if len(pos) > 1 and bool((pos[1:] <= pos[:-1]).any()):
        # not ascending: look each position up in the sorted deletes instead
        if len(gone) > 1 and bool((gone[1:] < gone[:-1]).any()):
            gone = np.sort(gone)
        at = np.minimum(np.searchsorted(gone, pos), len(gone) - 1)
        return np.asarray(gone[at] != pos)
    if last - first + 1 == len(pos):  # one run: a deleted position is its own index
        gone = gone[(gone >= first) & (gone <= last)]
        keep[gone - first] = False
        return keep
    if len(gone) > 1 and bool((gone[1:] < gone[:-1]).any()):
        gone = np.sort(gone)  # a file's deletes come sorted; deletes of several may not
    lo, hi = np.searchsorted(gone, [first, last + 1])
    gone = gone[lo:hi]
    if len(gone) > len(pos):  # a few positions among many deletes: look each position up
        at = np.minimum(np.searchsorted(gone, pos), len(gone) - 1)
        return np.asarray(gone[at] != pos)
    at = np.minimum(np.searchsorted(pos, gone), len(pos) - 1)
    keep[at[pos[at] == gone]] = False
    return keep


__all__ = [
    "POS",
    "SizedCache",
    "arrow_schema",
    "drop_positions",
    "forget_keys",
    "in_background",
    "iter_row_groups",
    "keys_to_decode",
    "live_mask",
    "map_files",
    "may_equal",
    "read_columns",
    "read_keys",
    "reads_every_row_group",
]
