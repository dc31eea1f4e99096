"""Key indexes: a data file's key column and row hashes, kept beside it.

An upsert of many keys must find where each key lives and whether the row it replaces
changed. Without help that means decoding the key column and the value columns of every
row group a key may fall in: 50,000 random updates of a 1,000,000-row table touch all of
them. A *key index* is a small Arrow IPC file next to a data file,
``<data file>`` + :data:`INDEX_SUFFIX`. Row ``i`` describes the file's position ``i``:

* ``key`` — the value of the (one) key column;
* ``hash`` — 32 bits of DuckDB's ``hash()`` of the row's other top-level columns, in schema
  order (:func:`row_hashes`).

A new row whose hash differs from the old row's differs from it: it is rewritten without
reading the old values. Equal hashes are only a hint; the old values of those rows are
read and compared as before, so a collision never makes a changed row look unchanged.

An index is a cache. Data files are immutable and uniquely named, so an index never goes
stale; one that is missing, unreadable, of another row count or file size, key, columns,
column types or hash function is ignored (and rebuilt by the next large upsert that reads
the file). Only files of at least :data:`MIN_ROWS` rows get one: smaller files are cheap
to read. The table property :data:`INDEX_PROPERTY` (``lakehouse.upsert.key-index``, default
``true``) turns them off. The garbage collector keeps an index exactly as long as it
keeps its data file; backups and other engines ignore them.

Sizes: 4 bytes a row for the hash, and for integer keys 1-4 bytes a row for the distance
from the file's smallest key; other keys as they are. Stored uncompressed: reading an
index is a copy.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from lakehouse.tables.files import (
    SizedCache,
    _duckdb_cursor,
    _is_local,
    _local_path,
    _quote,
    arrow_schema,
    iter_row_groups,
)

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.manifest import DataFile
    from pyiceberg.schema import Schema
    from pyiceberg.table.metadata import TableMetadata

logger = logging.getLogger(__name__)

#: What a key index's name adds to its data file's.
INDEX_SUFFIX = ".keys.arrow"
#: The table property that turns key indexes on (``true``, the default) or off.
INDEX_PROPERTY = "lakehouse.upsert.key-index"
#: Data files with fewer rows get no index: reading them is already cheap (read at call
#: time, so a test may lower it).
MIN_ROWS = 10_000
#: Rows of a data file read (and hashed) at once while its index is built.
BUILD_ROWS = 262_144
#: Bytes of indexes kept per process (least recently used first out).
CACHE_BYTES = 64 * 1024**2

_FORMAT = "lakehouse-key-index/3"


def _hash_function() -> str:
    import duckdb

    return f"duckdb-{duckdb.__version__}-hash-low32"


@dataclass(frozen=True)
class KeyIndex:
    """One data file's key per position and a 32-bit hash of the rest of each row."""

    keys: pa.Array
    hashes: np.ndarray[Any, Any]
    #: the keys strictly ascend (``False``: unknown)
    ascending: bool = False

    @property
    def nbytes(self) -> int:
        """Memory held."""
        return int(self.keys.nbytes + self.hashes.nbytes)


@dataclass(frozen=True)
class Layout:
    """What an index of a table must describe: the key field and the hashed fields."""

    key: str
    key_id: int
    values: tuple[str, ...]
    value_ids: tuple[int, ...]
    #: the hashed columns' Iceberg types: a promoted column (int to long) hashes anew
    value_types: tuple[str, ...]

    @classmethod
    def of(cls, schema: Schema, key: str) -> Layout:
        """The layout of ``schema`` with key column ``key``: every other top-level column
        is hashed, in schema order."""
        names = [f.name for f in arrow_schema(schema) if f.name != key]
        fields = [schema.find_field(n) for n in names]
        return cls(
            key=key,
            key_id=schema.find_field(key).field_id,
            values=tuple(names),
            value_ids=tuple(f.field_id for f in fields),
            value_types=tuple(str(f.field_type) for f in fields),
        )

    @functools.cached_property
    def stamp(self) -> dict[bytes, bytes]:
        """The IPC schema metadata that says what an index holds."""
        return {
            b"format": _FORMAT.encode(),
            b"key-field-id": str(self.key_id).encode(),
            b"value-field-ids": json.dumps(list(self.value_ids)).encode(),
            b"value-types": json.dumps(list(self.value_types)).encode(),
            b"hash": _hash_function().encode(),
        }


def enabled(metadata: TableMetadata) -> bool:
    """Whether the table's property lets upserts use and write key indexes."""
    return metadata.properties.get(INDEX_PROPERTY, "true").strip().lower() != "false"


def index_path(data_path: str) -> str:
    """Where the index of the data file at ``data_path`` lives."""
    return data_path + INDEX_SUFFIX


def indexed_file(path: str) -> str | None:
    """The data file ``path`` is the index of, or ``None`` when it is not an index."""
    return path[: -len(INDEX_SUFFIX)] if path.endswith(INDEX_SUFFIX) else None


def row_hashes(rows: pa.Table, columns: Sequence[str]) -> np.ndarray[Any, Any] | None:
    """32 bits of DuckDB's ``hash()`` of ``columns`` of each row of ``rows``, in order.

    Equal values give equal hashes whatever the Arrow chunking or string width. ``None``
    when a column has a type DuckDB cannot take.
    """
    import duckdb

    if not columns or not rows.num_rows:
        return np.zeros(rows.num_rows, dtype=np.uint32)
    cursor = _duckdb_cursor()
    name = f"rows_{uuid.uuid4().hex}"
    try:
        cursor.register(name, rows.select(list(columns)))
        listed = ", ".join(_quote(c) for c in columns)
        # a projection of one scan keeps the rows' order (insertion order is preserved)
        result = cursor.sql(f"SELECT hash({listed}) AS h FROM {name}").to_arrow_table()
    except duckdb.Error as exc:
        logger.debug("rows not hashed: %s", exc)
        return None
    finally:
        cursor.unregister(name)
        cursor.close()
    hashed: np.ndarray[Any, Any] = result.column(0).to_numpy().astype(np.uint32)
    return hashed  # the low 32 bits


_CACHE: SizedCache[str, KeyIndex] = SizedCache(CACHE_BYTES, lambda index: index.nbytes)


def _cache_key(path: str, layout: Layout) -> str:
    return f"{path}\0{layout.key_id}\0{layout.value_ids}\0{layout.value_types}"


def forget_indexes() -> None:
    """Empty the indexes this process keeps (as in a new process)."""
    _CACHE.clear()


def read_index(io: FileIO, data_file: DataFile, layout: Layout) -> KeyIndex | None:
    """The index of ``data_file`` for ``layout``, or ``None`` when there is none that fits."""
    path = index_path(data_file.file_path)
    cached = _CACHE.get(_cache_key(path, layout))
    if cached is not None:
        return cached
    if data_file.record_count < MIN_ROWS:
        return None
    try:
        if _is_local(path):  # mapped, not copied: the hashes are used where they lie
            table = ipc.open_file(pa.memory_map(_local_path(path))).read_all()
        else:
            with io.new_input(path).open() as stream:
                table = ipc.open_file(stream).read_all()
    except (FileNotFoundError, OSError, pa.ArrowInvalid) as exc:
        if not isinstance(exc, FileNotFoundError):
            logger.debug("key index %s unreadable, ignored: %s", path, exc)
        return None
    found = table.schema.metadata or {}
    keys = None
    if (
        all(found.get(k) == v for k, v in layout.stamp.items())
        and found.get(b"data-file-bytes") == str(data_file.file_size_in_bytes).encode()
        and table.num_rows == data_file.record_count
    ):
        keys = _decoded_keys(table, found)
    if keys is None:
        logger.debug("key index %s does not fit the table or file, ignored", path)
        return None
    ascending = found.get(b"key-ascending") == b"true"
    index = KeyIndex(keys=keys, hashes=table.column("hash").to_numpy(), ascending=ascending)
    _CACHE.put(_cache_key(path, layout), index)
    return index


def _encoded_keys(keys: pa.Array) -> tuple[pa.Array, dict[bytes, bytes]]:
    """The column an index stores for ``keys``, and what to add to its metadata.

    Integer keys without NULLs are stored as their distance from the smallest, in the
    narrowest unsigned type that holds the largest distance ("frame of reference"): 1-4
    bytes a row, read without decompressing and decoded by one addition (a running sum
    of steps, as version 2 stored them, took three times longer to decode than to read).
    Other keys are stored as they are. Whether the keys ascend (files written sorted by
    key) is recorded, so a lookup need not check it.
    """
    kind = keys.type
    plain_ints = pa.types.is_integer(kind) and not pa.types.is_uint64(kind)
    if plain_ints and not keys.null_count and len(keys):
        values = keys.to_numpy().astype(np.int64, copy=False)
        low = int(values.min())
        widest = int(values.max()) - low
        ascending = len(values) < 2 or bool((values[1:] > values[:-1]).all())
        for narrow in (np.uint8, np.uint16, np.uint32):
            if widest <= np.iinfo(narrow).max:
                stamp = {
                    b"key-encoding": b"offset",
                    b"key-base": str(low).encode(),
                    b"key-type": str(kind).encode(),
                    b"key-ascending": b"true" if ascending else b"false",
                }
                return pa.array((values - low).astype(narrow)), stamp
    return keys, {b"key-encoding": b"plain"}


def _decoded_keys(table: pa.Table, metadata: dict[bytes, bytes]) -> pa.Array | None:
    """The keys :func:`_encoded_keys` stored in ``table``, or ``None`` when not readable."""
    if table.column_names != ["key", "hash"]:
        return None
    column = table.column("key").combine_chunks()
    encoding = metadata.get(b"key-encoding")
    if encoding == b"plain":
        return column
    if encoding != b"offset":
        return None
    try:
        base = int(metadata[b"key-base"])
        kind = pa.type_for_alias(metadata[b"key-type"].decode())
    except (KeyError, ValueError):
        return None
    values = column.to_numpy().astype(np.int64)
    values += base
    return pa.array(values).cast(kind)


def write_index(
    io: FileIO, data_file: DataFile, layout: Layout, keys: pa.Array, hashes: np.ndarray[Any, Any]
) -> KeyIndex:
    """Write the index of ``data_file``: ``keys`` and ``hashes`` by position."""
    stored, encoding = _encoded_keys(keys)
    ascending = encoding.get(b"key-ascending") == b"true"
    index = KeyIndex(keys=keys, hashes=hashes.astype(np.uint32, copy=False), ascending=ascending)
    # the data file's size and row count: an index never describes another file by mistake
    of_file = {b"data-file-bytes": str(data_file.file_size_in_bytes).encode()}
    schema = pa.schema(
        [("key", stored.type), ("hash", pa.uint32())],
        metadata={**layout.stamp, **encoding, **of_file},
    )
    table = pa.table([stored, pa.array(index.hashes)], schema=schema)
    # uncompressed: the hashes do not compress, and reading is a copy (zstd took 3-4x longer)
    options = ipc.IpcWriteOptions(compression=None)
    path = index_path(data_file.file_path)
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, schema, options=options) as writer:
        writer.write_table(table)
    data = sink.getvalue().to_pybytes()
    if _is_local(path):
        # readers never see half a file: written aside, then renamed into place
        local = _local_path(path)
        aside = f"{local}.{uuid.uuid4().hex}.tmp"
        with open(aside, "wb") as out:
            out.write(data)
        os.replace(aside, local)
    else:  # an object store's PUT is atomic
        with io.new_output(path).create(overwrite=True) as out:
            out.write(data)
    _CACHE.put(_cache_key(path, layout), index)
    return index


def index_written(
    io: FileIO,
    metadata: TableMetadata,
    layout: Layout,
    rows: pa.Table,
    files: Sequence[DataFile],
    hashes: Callable[[], np.ndarray[Any, Any] | None] | None = None,
) -> bool:
    """Write the index of the one data file ``files`` holds, just written from ``rows`` in
    their order (an upsert's new file, one of compaction's), from the rows at hand.

    ``False`` (nothing written) unless exactly one file of an unpartitioned table holds
    all the rows: PyIceberg's writer may interleave the rows of several files, and
    partitioned writes regroup them. Those files are indexed by the next large upsert that
    reads them whole. ``hashes`` gives the rows' hashes when the caller has them.
    """
    if (
        len(files) != 1
        or files[0].record_count != rows.num_rows
        or rows.num_rows < MIN_ROWS
        or not metadata.spec().is_unpartitioned()
    ):
        return False
    hashed = hashes() if hashes is not None else None
    if hashed is None:
        hashed = row_hashes(rows, layout.values)
    if hashed is None:
        return False
    try:
        write_index(io, files[0], layout, rows.column(layout.key).combine_chunks(), hashed)
    except OSError as exc:  # a cache: the write goes on without it
        logger.warning("key index of %s not written: %s", files[0].file_path, exc)
        return False
    return True


def build_index(io: FileIO, data_file: DataFile, schema: Schema, layout: Layout) -> KeyIndex | None:
    """Read ``data_file``'s key and value columns once, :data:`BUILD_ROWS` rows of whole
    row groups at a time, and write its index.

    ``None`` (and no index) when a value column has a type DuckDB cannot hash, or the
    index cannot be written (it is a cache: the upsert goes on without it).
    """
    keys: list[pa.Array] = []
    hashes: list[np.ndarray[Any, Any]] = []
    names = [layout.key, *layout.values]
    for rows in iter_row_groups(io, data_file, schema, names, BUILD_ROWS):
        hashed = row_hashes(rows, layout.values)
        if hashed is None:
            return None
        keys.append(rows.column(layout.key).combine_chunks())
        hashes.append(hashed)
    key_type = arrow_schema(schema, [layout.key]).field(layout.key).type
    all_keys = pa.concat_arrays(keys) if keys else pa.array([], key_type)
    all_hashes = np.concatenate(hashes) if hashes else np.zeros(0, np.uint32)
    try:
        return write_index(io, data_file, layout, all_keys, all_hashes)
    except OSError as exc:
        logger.warning("key index of %s not written: %s", data_file.file_path, exc)
        return KeyIndex(keys=all_keys, hashes=all_hashes)
