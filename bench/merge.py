"""Content-aware merges: one table with N snapshots on each side; M tables appended on both.

Run: ``.venv/bin/python bench/merge.py [--snapshots 1000] [--tables 100] [--repeat 5]``.
Each sample is a dry-run merge, which computes the whole content merge (store dry run,
metadata reads, manifest diff, merged snapshot written) and commits nothing. Four ways,
interleaved round by round on one catalog, medians printed with ratios:

* ``embedded``: ``Lakehouse.merge`` on the embedded lakehouse (SQLite, in process);
* ``key-level``: the same merge with ``content_merge=False`` (Nessie's dry run, the baseline);
* ``server, client-side``: the catalog served by ``lakehouse serve`` (uvicorn thread, the
  same SQLite catalog and warehouse), a ``NessieStore`` computing the content merge itself
  (``on_server=False``: what a client does against the real Nessie);
* ``server, server-side``: the same client sending one merge with ``contentMerge: true``.

Targets (issue 15): <= 200 ms for 1,000 snapshots a side, <= 2 s for 100 tables. The
setup is the user's: an embedded lakehouse (SQLite catalog, local files) and its server.
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


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-merge-") as home:
        run(args, Path(home))
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def run(args: argparse.Namespace, home: Path) -> None:
    """Build the catalog in ``home`` and print the four ways' medians per case."""
    os.environ["LAKEHOUSE_HOME"] = str(home)
    from lakehouse.catalog.content_merge import content_merge
    from lakehouse.catalog.nessie_store import NessieStore
    from lakehouse.client import connect
    from lakehouse.server.app import make_server, serving
    from lakehouse.server.iceberg_rest import IcebergRestSettings

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
        io = lh.settings.fileio_properties()
        server = make_server(
            lh.store,
            "127.0.0.1",
            0,
            log_level="warning",
            iceberg=IcebergRestSettings.from_settings(lh.settings),
        )
        with serving(server) as port, NessieStore(f"http://127.0.0.1:{port}/api/v2") as remote:
            assert isinstance(remote, NessieStore) and remote.offers_content_merge
            cases = (
                (f"1 table, {args.snapshots} snapshots on each side", "big", 0.2),
                (f"{args.tables} tables, appended on both sides", "many", 2.0),
            )
            for what, source, target in cases:
                ways: dict[str, Callable[[], object]] = {
                    "embedded": lambda s=source: lh.merge(s, dry_run=True),
                    "key-level": lambda s=source: lh.merge(
                        s, dry_run=True, content_merge=False, raise_on_conflict=False
                    ),
                    "server, client-side": lambda s=source: content_merge(
                        remote, s, "main", io_properties=io, dry_run=True, on_server=False
                    ),
                    "server, server-side": lambda s=source: content_merge(
                        remote, s, "main", io_properties=io, dry_run=True
                    ),
                }
                samples: dict[str, list[float]] = {name: [] for name in ways}
                for _ in range(args.repeat):  # interleaved: load drifts hit every way alike
                    for name, fn in ways.items():
                        samples[name].append(timed(fn))
                med = {name: statistics.median(s) for name, s in samples.items()}
                print(f"{what} (median of {args.repeat}; target {target * 1000:.0f} ms):")
                for name, value in med.items():
                    verdict = ""
                    if name != "key-level":
                        verdict = " meets" if value <= target else " MISSES"
                    print(
                        f"  {name:<20} {value * 1000:8.1f} ms{verdict}"
                        f"  ({value / med['key-level']:.0f}x key-level)"
                    )
                ratio = med["server, server-side"] / med["server, client-side"]
                print(f"  server-side / client-side: {ratio:.2f}")


if __name__ == "__main__":
    main()
