"""``lakehouse diff A B --rows``: rows added/deleted from snapshot summaries vs reading rows.

Run: ``.venv/bin/python bench/diff.py [--rows 1000000] [--rounds 5]
[--markdown docs/benchmarks.md]``

Side by side in one run, on the embedded profile (SQLite catalog, local warehouse): a
``--rows`` table on ``main`` built by 10 appends; branch ``dev`` appends three files of
1,000 rows and deletes two of them whole (net: 1,000 rows added).

* ours: :meth:`Lakehouse.diff_rows` (``diff --rows``): snapshot summaries only;
* baseline: what one does without it: read both versions of the table and count
  ``EXCEPT ALL`` both ways in DuckDB (:meth:`Lakehouse.diff_sample` with no limit).

Both are timed in alternating rounds; the printed ratio is baseline / ours per pair.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from _common import (
    Report,
    Table,
    median,
    paired_ratio,
    ratio_iqr,
    replace_section,
    say,
    seconds,
    timed,
)

import lakehouse

SECTION = "diff --rows (bench/diff.py)"


def rows(start: int, count: int) -> pa.Table:
    ids = pa.array(range(start, start + count), pa.int64())
    return pa.table({"id": ids, "amount": pa.array([1.5] * count, pa.float64())})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    given = list(argv if argv is not None else sys.argv[1:])
    header = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, pyarrow {pa.__version__}; load average at start "
        f"{os.getloadavg()[0]:.1f}. Command: `python bench/diff.py {' '.join(given)}`."
    )
    print(header)
    report = Report()
    n = args.rows
    with (
        tempfile.TemporaryDirectory(prefix="lakehouse-bench-diff-") as tmp,
        lakehouse.connect(Path(tmp) / "home", create=True) as lh,
    ):
        say(f"building a {n:,}-row table in 10 appends, and branch dev changing 2,000 rows")
        catalog = lh.catalog("main")
        catalog.create_namespace("s")
        table = catalog.create_table("s.t", schema=rows(0, 0).schema)
        step = max(1, n // 10)
        for start in range(0, n, step):
            table.append(rows(start, min(step, n - start)))
        lh.create_branch("dev")
        dev = lh.table("s.t", "dev")
        dev.append(rows(n, 1_000))
        dev.delete(f"id >= {n} AND id < {n + 1_000}")  # whole file: no rewrite
        dev.append(rows(n + 1_000, 1_000))
        lh.table("s.t", "dev").delete(f"id >= {n + 1_000} AND id < {n + 2_000}")
        lh.table("s.t", "dev").append(rows(n + 2_000, 1_000))

        [want] = lh.diff_rows("main", "dev")
        added, deleted = lh.diff_sample("s.t", "main", "dev", limit=10 * n)
        assert (want.added, want.deleted) == (3_000, 2_000), want
        assert (len(added), len(deleted)) == (1_000, 0), (len(added), len(deleted))
        say(f"{args.rounds} paired rounds")
        ours: list[float] = []
        base: list[float] = []
        for _ in range(args.rounds):
            ours.append(timed(lambda: lh.diff_rows("main", "dev")))
            base.append(timed(lambda: lh.diff_sample("s.t", "main", "dev", limit=10 * n)))
        r = paired_ratio(ours, base)
        results = Table(
            f"Rows changed in a {n:,}-row table between two branches ({args.rounds} rounds)",
            ["method", "p50", "baseline / ours (median, IQR)"],
        )
        results.rows.append(["diff_rows (snapshot summaries)", seconds(median(ours)), "1"])
        results.rows.append(["read both, EXCEPT ALL", seconds(median(base)), ratio_iqr(r)])
        results.notes.append(
            "Summaries count per snapshot: dev's appended-then-deleted files show as 3,000 "
            "added and 2,000 deleted; the row comparison sees the net 1,000 added."
        )
        report.add(results)
        report.check("diff --rows vs reading rows", f"{r[0]:.1f}x faster", ">= 10x", r[0] >= 10)
    print("\n" + report.summary().text())
    if args.markdown:
        replace_section(args.markdown, SECTION, report.markdown(SECTION, [header]))
        print(f"Markdown written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
