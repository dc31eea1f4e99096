"""Content-aware merges: one table with N snapshots on each side; M tables appended on both.

Run: ``.venv/bin/python bench/merge.py [--snapshots 1000] [--tables 100] [--repeat 5]``.
Each sample is a dry-run ``Lakehouse.merge`` (the whole content merge: store dry run,
metadata reads, manifest diff, merged snapshot written) next to the same merge with
``content_merge=False`` (Nessie's key-level dry run, the baseline); medians and the ratio
are printed. Targets (issue 15): <= 200 ms for 1,000 snapshots a side, <= 2 s for 100
tables. The setup is the user's: an embedded lakehouse (SQLite catalog, local files).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="lakehouse-bench-merge-"))
    os.environ["LAKEHOUSE_HOME"] = str(home)
    from lakehouse.client import connect

    schema = pa.schema([pa.field("id", pa.int64())])
    batch = pa.table({"id": [1]}, schema)
    with connect(home, create=True) as lh:
        catalog = lh.catalog("main")
        catalog.create_namespace("bronze")
        catalog.create_table("bronze.big", schema=schema).append(batch)
        for i in range(args.tables):
            catalog.create_table(f"bronze.t{i}", schema=schema).append(batch)
        lh.create_branch("big")
        lh.create_branch("many")
        for ref in ("main", "big"):
            big = lh.table("bronze.big", ref)
            for _ in range(args.snapshots):
                big.append(batch)
        for ref in ("main", "many"):
            for i in range(args.tables):
                lh.table(f"bronze.t{i}", ref).append(batch)
        cases = (
            (f"1 table, {args.snapshots} snapshots on each side", "big", 0.2),
            (f"{args.tables} tables, appended on both sides", "many", 2.0),
        )
        for what, source, target in cases:
            content = timed(lambda s=source: lh.merge(s, dry_run=True), args.repeat)
            keys = timed(
                lambda s=source: lh.merge(
                    s, dry_run=True, content_merge=False, raise_on_conflict=False
                ),
                args.repeat,
            )
            c, k = statistics.median(content), statistics.median(keys)
            verdict = "meets" if c <= target else "MISSES"
            print(
                f"{what}: content merge {c * 1000:.0f} ms (median of {args.repeat}; "
                f"{verdict} the {target * 1000:.0f} ms target), key-level dry run "
                f"{k * 1000:.1f} ms, ratio {c / k:.0f}x"
            )


if __name__ == "__main__":
    main()
