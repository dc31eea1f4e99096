"""Position deletes for the ``parquet`` reader: read each delete file once, join on integers.

A position delete file lists ``(file_path, pos)`` pairs. Reading them in every query and
matching rows on the data file's path made a query over a table with 5 % of its rows
deleted cost twice the read of the same table compacted (see ``docs/benchmarks.md``,
"Row-level writes"). Here

* a delete file is read once per process and kept, grouped by the data file it deletes
  from, as sorted ``int64`` positions (:class:`~lakehouse.tables.deletes.DeleteFileCache`,
  shared with row-level writes; bounded by the number of positions held);
* :func:`position_delete_table` builds, per query, the small Arrow table DuckDB anti-joins
  with: one ``UBIGINT`` file id (the index DuckDB's ``read_parquet`` gives the data file,
  its ``file_index``) and the ``BIGINT`` position — no path string is compared per row.

Positions of data files the scan does not read (pruned, or deleted by a later snapshot)
are ignored; an empty delete file adds nothing; a data file that none of its delete files
deletes from is read like a file without deletes (:func:`without_unused_deletes`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from lakehouse.query.planning import ScanFile
from lakehouse.tables.deletes import DEFAULT_MAX_POSITIONS, DELETE_FILES, DeleteFileCache
from lakehouse.tables.files import SizedCache

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.io import FileIO

#: Column of :func:`position_delete_table` with the data file's id (DuckDB's ``file_index``).
FILE_ID = "file_id"
#: Column of :func:`position_delete_table` with the deleted row's position in its file.
POSITION = "pos"
#: Prefix of the columns of :func:`keep_mask_table` (see :func:`keep_column`).
KEEP = "keep"
#: Rows (one bit each) a :class:`KeepMaskCache` keeps by default.
DEFAULT_MAX_MASK_ROWS = 500_000_000
#: Bytes of whole mask tables (as DuckDB reads them) a :class:`KeepMaskCache` keeps.
DEFAULT_MAX_TABLE_BYTES = 64 * 1024**2


def without_unused_deletes(
    io: FileIO, files: Sequence[ScanFile], cache: DeleteFileCache | None = None
) -> tuple[ScanFile, ...]:
    """``files`` with the position delete files that delete none of their rows dropped.

    The planner gives a data file every delete file of its partition that may apply (all
    of them when a delete file does not say which data file it is for, as Spark's often
    do not); a data file none of them deletes from is then read plainly, without the join.
    """
    cache = DELETE_FILES if cache is None else cache
    out: list[ScanFile] = []
    for f in files:
        used = tuple(
            d for d in f.position_deletes if len(cache.positions(io, d).get(f.path, ())) > 0
        )
        out.append(f if used == f.position_deletes else replace(f, position_deletes=used))
    return tuple(out)


def position_delete_table(
    io: FileIO,
    files: Sequence[tuple[str, Sequence[str]]],
    cache: DeleteFileCache | None = None,
) -> pa.Table:
    """``(file_id, pos)`` rows deleting from ``files``: (data file path, its delete files).

    ``file_id`` is the data file's index in ``files`` (``UBIGINT``, as DuckDB's
    ``file_index``); ``pos`` the deleted row's position (``BIGINT``).
    """
    import pyarrow as pa

    cache = DELETE_FILES if cache is None else cache
    ids: list[pa.Array] = []
    chunks: list[pa.Array] = []
    for index, (path, delete_files) in enumerate(files):
        for delete_file in delete_files:
            positions = cache.positions(io, delete_file).get(path)
            if positions is None or len(positions) == 0:
                continue
            chunks.append(positions)
            ids.append(pa.repeat(pa.scalar(index, pa.uint64()), len(positions)))
    schema = pa.schema([(FILE_ID, pa.uint64()), (POSITION, pa.int64())])
    if not chunks:
        return schema.empty_table()
    return pa.table([pa.concat_arrays(ids), pa.concat_arrays(chunks)], schema=schema)


class KeepMaskCache:
    """Kept-rows masks of data files: (data file, its delete files) → one bit per row.

    A mask is as long as the data file's own Parquet footer says (read once, with the
    mask), not its manifest's ``record_count``: a read paired with it by position lines
    up whatever a manifest claims. Bit-packed (a 100,000-row file costs 12.5 kB),
    thread-safe, least recently used masks dropped beyond ``max_rows`` rows. The whole
    tables :func:`keep_mask_table` makes of them are kept too (up to ``max_table_bytes``):
    a query of the same table version again registers the same table, without unpacking
    a byte per row anew (1.2 ms a query for 1,000,000 rows).
    """

    def __init__(
        self, max_rows: int = DEFAULT_MAX_MASK_ROWS, max_table_bytes: int = DEFAULT_MAX_TABLE_BYTES
    ) -> None:
        self.max_rows = max_rows
        self._masks: OrderedDict[tuple[str, tuple[str, ...]], pa.BooleanArray] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()
        #: whole tables :func:`keep_mask_table` made, by the runs of files they mask
        self.tables: SizedCache[tuple[tuple[tuple[str, tuple[str, ...]], ...], ...], pa.Table] = (
            SizedCache(max_table_bytes, lambda table: int(table.nbytes))
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._masks)

    def clear(self) -> None:
        """Forget every mask."""
        with self._lock:
            self._masks.clear()
            self._held = 0
        self.tables.clear()

    def mask(
        self, io: FileIO, file: ScanFile, deletes: DeleteFileCache | None = None
    ) -> pa.BooleanArray:
        """``file``'s mask: false at each row one of its position delete files deletes."""
        key = (file.path, file.position_deletes)
        with self._lock:
            hit = self._masks.get(key)
            if hit is not None:
                self._masks.move_to_end(key)
                return hit
        made = _make_mask(io, file, DELETE_FILES if deletes is None else deletes)
        with self._lock:
            if key not in self._masks and len(made) <= self.max_rows:
                self._masks[key] = made
                self._held += len(made)
                while self._held > self.max_rows:
                    _, dropped = self._masks.popitem(last=False)
                    self._held -= len(dropped)
        return made


def _make_mask(io: FileIO, file: ScanFile, deletes: DeleteFileCache) -> pa.BooleanArray:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    with io.new_input(file.path).open() as stream:
        rows = pq.ParquetFile(stream).metadata.num_rows
    keep = np.ones(rows, dtype=np.bool_)
    for delete_file in file.position_deletes:
        positions = deletes.positions(io, delete_file).get(file.path)
        if positions is None or len(positions) == 0:
            continue
        deleted = positions.to_numpy()
        if deleted[0] < 0 or deleted[-1] >= rows:  # sorted: the ends decide
            deleted = deleted[(deleted >= 0) & (deleted < rows)]
        keep[deleted] = False
    mask = pa.array(keep, pa.bool_())
    assert isinstance(mask, pa.BooleanArray)
    return mask


#: The process-wide cache :func:`keep_mask_table` uses by default.
KEEP_MASKS = KeepMaskCache()

#: Rows (all columns together) up to which :func:`keep_mask_table` gives a byte per row.
MAX_BYTE_MASK_ROWS = 64_000_000


def keep_column(run: int) -> str:
    """The column of :func:`keep_mask_table` masking run ``run`` of files (``keep_0`` …)."""
    return f"{KEEP}_{run}"


def keep_mask_table(
    io: FileIO,
    runs: Sequence[Sequence[ScanFile]],
    cache: DeleteFileCache | None = None,
    masks: KeepMaskCache | None = None,
) -> pa.Table:
    """One column per run of files (:func:`keep_column`): false at each deleted row.

    Column ``i`` holds one row per row of ``runs[i]``'s files, in file and row order: each
    file the rows its Parquet footer counts (from :class:`KeepMaskCache`); positions
    outside a file delete nothing. Shorter columns are padded with false to the longest
    (rows no file of theirs holds). DuckDB reading a run's files in order pairs their rows
    with its column by position; one table serves every run of a read.

    Up to :data:`MAX_BYTE_MASK_ROWS` rows in all, the columns are Arrow ``bool8`` (one byte
    per row, unpacked from the cached bits per query), which DuckDB reads as ``BOOLEAN``
    without converting each row: scanning a million rows costs it 0.8 ms instead of 2.1 ms
    for bit-packed booleans. Beyond that, bit-packed booleans (an eighth of the memory).
    """
    import numpy as np
    import pyarrow as pa

    masks = KEEP_MASKS if masks is None else masks
    key = tuple(tuple((f.path, f.position_deletes) for f in run) for run in runs)
    made = masks.tables.get(key)
    if made is not None:  # the same files and deletes read again: the same table
        return made
    chunks = [[masks.mask(io, f, cache) for f in run] for run in runs]
    lengths = [sum(len(m) for m in run) for run in chunks]
    width = max(lengths, default=0)
    as_bytes = width * len(chunks) <= MAX_BYTE_MASK_ROWS
    columns: dict[str, pa.ChunkedArray] = {}
    for index, (run, length) in enumerate(zip(chunks, lengths, strict=True)):
        padding = pa.array(np.zeros(width - length, np.bool_), pa.bool_())
        parts = [*run, padding] if length < width else list(run)
        if as_bytes:
            columns[keep_column(index)] = pa.chunked_array([_bool8(m) for m in parts], pa.bool8())
        else:
            columns[keep_column(index)] = pa.chunked_array(parts, pa.bool_())
    table = pa.table(columns)
    masks.tables.put(key, table)
    return table


def _bool8(mask: pa.BooleanArray) -> pa.ExtensionArray:
    """``mask`` (no nulls) as Arrow ``bool8``: a byte per row, 1 where ``mask`` is true."""
    import numpy as np
    import pyarrow as pa

    if mask.offset % 8 == 0:
        bits = np.frombuffer(mask.buffers()[1], np.uint8)[mask.offset // 8 :]
        unpacked = np.unpackbits(bits, count=len(mask), bitorder="little")
    else:  # a slice starting inside a byte: let Arrow unpack it
        unpacked = mask.to_numpy(zero_copy_only=False).view(np.uint8)
    return pa.ExtensionArray.from_storage(pa.bool8(), pa.array(unpacked.view(np.int8)))


__all__ = [
    "DEFAULT_MAX_MASK_ROWS",
    "DEFAULT_MAX_POSITIONS",
    "DEFAULT_MAX_TABLE_BYTES",
    "DELETE_FILES",
    "FILE_ID",
    "KEEP",
    "KEEP_MASKS",
    "MAX_BYTE_MASK_ROWS",
    "POSITION",
    "DeleteFileCache",
    "KeepMaskCache",
    "keep_column",
    "keep_mask_table",
    "position_delete_table",
    "without_unused_deletes",
]
