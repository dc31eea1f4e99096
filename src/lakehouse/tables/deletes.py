"""Position delete files, read once per process and grouped by the data file they name.

A position delete file lists ``(file_path, pos)`` pairs: one data file's (ours and Spark's
file-scoped ones) or many (a large row delta's, Spark's partition-scoped ones). Row-level
writes and queries both need, per data file, its deleted positions; :data:`DELETE_FILES`
reads each delete file once and keeps its rows grouped by data file as sorted ``int64``
positions. Iceberg files are immutable, so the path is the key.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa
    from pyiceberg.io import FileIO

#: Positions a :class:`DeleteFileCache` keeps by default (~8 bytes each, plus the paths).
DEFAULT_MAX_POSITIONS = 20_000_000


class DeleteFileCache:
    """Position delete files read once: path → {data file path → sorted positions}.

    Thread-safe. Least recently used files are dropped once more than ``max_positions``
    positions are held (a file larger than that on its own is read but not kept).
    """

    def __init__(self, max_positions: int = DEFAULT_MAX_POSITIONS) -> None:
        self.max_positions = max_positions
        self._files: OrderedDict[str, tuple[Mapping[str, pa.Array], int]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)

    @property
    def positions_held(self) -> int:
        """How many positions the cache holds now."""
        with self._lock:
            return self._held

    def clear(self) -> None:
        """Forget every file."""
        with self._lock:
            self._files.clear()
            self._held = 0

    def positions(self, io: FileIO, path: str) -> Mapping[str, pa.Array]:
        """The positions delete file ``path`` deletes, by data file path (sorted, distinct)."""
        with self._lock:
            hit = self._files.get(path)
            if hit is not None:
                self._files.move_to_end(path)
                return hit[0]
        grouped, count = _read_grouped(io, path)
        self._keep(path, grouped, count)
        return grouped

    def remember(self, path: str, grouped: Mapping[str, pa.Array]) -> None:
        """Keep what delete file ``path``, just written, holds: {data file → its sorted,
        distinct positions} (reading it back gives the same)."""
        self._keep(path, grouped, sum(len(v) for v in grouped.values()))

    def _keep(self, path: str, grouped: Mapping[str, pa.Array], count: int) -> None:
        with self._lock:
            if path not in self._files and count <= self.max_positions:
                self._files[path] = (grouped, count)
                self._held += count
                while self._held > self.max_positions:
                    _, (_, dropped) = self._files.popitem(last=False)
                    self._held -= dropped


def _read_grouped(io: FileIO, path: str) -> tuple[dict[str, pa.Array], int]:
    """Read delete file ``path``: {data file path → its positions, sorted and distinct}.

    A delete file usually deletes from one data file (ours and Spark's are written per
    data file): then no path is compared per row. The paths are read as Parquet stored
    them, dictionary-encoded (no string per row); rows are grouped by their dictionary
    index. Positions already sorted and distinct, as the spec asks writers to keep them,
    are taken as they are; the order of the file's rows never matters otherwise.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with io.new_input(path).open() as stream:  # small: one thread reads it fastest
        table = pq.ParquetFile(stream, read_dictionary=["file_path"]).read(
            columns=["file_path", "pos"], use_threads=False
        )
    if table.num_rows == 0:
        return {}, 0
    positions = table.column("pos").to_numpy().astype(np.int64, copy=False)
    column = table.column("file_path")
    if pa.types.is_dictionary(column.type):
        encoded = column.unify_dictionaries().combine_chunks()
    else:  # pragma: no cover - read_dictionary applies to BYTE_ARRAY columns
        encoded = column.combine_chunks().dictionary_encode()
    paths = encoded.dictionary.to_pylist()
    codes = pc.cast(encoded.indices, pa.int64()).to_numpy()
    used = np.unique(codes) if len(paths) > 1 else np.zeros(1, np.int64)
    grouped: dict[str, pa.Array] = {}
    if len(used) == 1:
        grouped[str(paths[int(used[0])])] = pa.array(sorted_distinct(positions))
    else:
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(paths) + 1))
        for code, value in enumerate(paths):
            run = positions[order[bounds[code] : bounds[code + 1]]]
            if len(run):
                grouped[str(value)] = pa.array(sorted_distinct(run))
    return grouped, sum(len(v) for v in grouped.values())


def sorted_distinct(positions: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``positions`` sorted, each once (as they are when already strictly increasing).

    Positions usually come as sorted runs (a delete file's, or several files' put end to
    end): a stable sort merges the runs (numpy's timsort), where ``np.unique`` sorts anew.
    """
    import numpy as np

    if len(positions) < 2 or bool(np.all(positions[1:] > positions[:-1])):
        return positions
    ordered = np.sort(positions, kind="stable")
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


#: The process-wide cache: row-level writes and queries read each delete file once.
DELETE_FILES = DeleteFileCache()


__all__ = ["DEFAULT_MAX_POSITIONS", "DELETE_FILES", "DeleteFileCache", "sorted_distinct"]
