"""Reading columns and positions of data files: which positions are still live."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from lakehouse.tables.files import POS, drop_positions, live_mask


@pytest.mark.parametrize(
    ("positions", "deleted", "live"),
    [
        # one run of positions (a whole file, or consecutive row groups)
        ([10, 11, 12, 13, 14], [11, 14, 99, 0], [10, 12, 13]),
        # row groups with a gap between them
        ([0, 1, 2, 7, 8, 9], [2, 3, 7, 100], [0, 1, 8, 9]),
        # positions in no particular order, deletes unsorted
        ([9, 3, 5, 1], [5, 1, 4], [9, 3]),
        ([4, 5], [], [4, 5]),
    ],
)
def test_live_positions_are_those_not_deleted(
    positions: list[int], deleted: list[int], live: list[int]
) -> None:
    table = pa.table({"k": pa.array(positions), POS: pa.array(positions, pa.int64())})
    gone = pa.array(deleted, pa.int64())

    mask = live_mask(table.column(POS), gone)

    assert np.asarray(positions)[mask].tolist() == live
    assert drop_positions(table, gone).column("k").to_pylist() == live
