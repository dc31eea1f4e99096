"""Benchmarks of table maintenance (issue 6), each against a baseline measured in the same run.

Run from the repository root::

    .venv/bin/python bench/maintenance.py [--quick] [--rounds N] [--markdown docs/benchmarks.md]

Sections:

1. **Compaction throughput.** A table of many small files is compacted with
   :func:`lakehouse.maintenance.compact_table` (plan, read with deletes applied, write
   target-sized files, commit a replace snapshot, catalog commit); the baseline reads the
   same Parquet files with ``pyarrow.parquet.read_table`` and writes the rows with
   ``pyarrow.parquet.write_table`` (same codec, zstd). Rows per second, median of the
   rounds, measured interleaved. Target: ratio >= 0.7.
2. **Query time before and after compaction.** A table of 1,000 small files (one commit
   adding them, so the table itself is not a 1,000-snapshot table), a ``count``/``sum``
   query through ``Lakehouse.sql`` (DuckDB over the Iceberg scan), median of the rounds,
   before and after compacting it.
3. **GC mark time vs references x commits x files.** Catalogs with R branches, each with
   C commits adding F files; time of the mark phase of
   :func:`lakehouse.maintenance.collect_garbage` (dry run). Target: time per file walked
   stays flat (linear growth): the largest configuration's per-unit time is within 2x of
   the smallest's.

``--markdown FILE`` writes the results as the "Maintenance (bench/maintenance.py)" section
of FILE, replacing that section if present and keeping the others.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _common import (  # bench/ is the script's folder
    Check,
    Report,
    Table,
    median,
    replace_section,
    say,
)

import lakehouse
from lakehouse.client import Lakehouse
from lakehouse.maintenance import collect_garbage, compact_table
from lakehouse.maintenance.policies import CompactionPolicy, Policies

SECTION = "## Maintenance (bench/maintenance.py)"


def rows_batch(start: int, n: int) -> pa.Table:
    """``n`` rows: an id, a short string, a double and a timestamp."""
    ids = pa.array(range(start, start + n), pa.int64())
    return pa.table(
        {
            "id": ids,
            "name": pc.binary_join_element_wise(
                pa.array(["name"] * n), pc.cast(ids, pa.string()), ""
            ),
            "value": pc.multiply(pc.cast(ids, pa.float64()), 0.5),
            "ts": pa.array(
                [1_700_000_000_000_000 + i for i in range(start, start + n)], pa.int64()
            ).cast(pa.timestamp("us")),
        }
    )


def new_home(root: Path, name: str) -> Lakehouse:
    """A fresh embedded lakehouse with namespace ``bench``."""
    lh = lakehouse.connect(root / name, create=True)
    lh.catalog("main").create_namespace_if_not_exists("bench")
    return lh


def small_file_table(lh: Lakehouse, name: str, files: int, rows_per_file: int) -> list[str]:
    """Create ``bench.<name>`` from ``files`` Parquet files added in ONE commit; their paths."""
    table = lh.catalog("main").create_table(f"bench.{name}", rows_batch(0, 1).schema)
    folder = table.metadata.properties["write.data.path"]
    paths = []
    for i in range(files):
        path = f"{folder}/small-{i:05}.parquet"
        with table.io.new_output(path).create(overwrite=True) as out:
            pq.write_table(rows_batch(i * rows_per_file, rows_per_file), out, compression="zstd")
        paths.append(path)
    table.add_files(paths)
    return paths


# -- reporting ------------------------------------------------------------------------------


# -- 1. compaction throughput ---------------------------------------------------------------


def bench_compaction(
    root: Path, rounds: int, files: int, rows_per_file: int
) -> tuple[Table, Check]:
    ours: list[float] = []
    plain: list[float] = []
    total_rows = files * rows_per_file
    policy = CompactionPolicy(min_small_files=2, rewrite_manifests=False)
    for r in range(rounds):
        lh = new_home(root, f"compact-{r}")
        paths = small_file_table(lh, "events", files, rows_per_file)
        table = lh.table("bench.events")
        # plain pyarrow: read the same files, write them as one
        out_dir = root / f"plain-{r}"
        out_dir.mkdir()
        local = [p.removeprefix("file://") for p in paths]
        start = time.perf_counter()
        data = pa.concat_tables([pq.read_table(p) for p in local])
        pq.write_table(data, out_dir / "out.parquet", compression="zstd")
        plain.append(total_rows / (time.perf_counter() - start))
        # ours
        start = time.perf_counter()
        result = compact_table(table, policy)
        elapsed = time.perf_counter() - start
        assert result.rows == total_rows, result
        ours.append(total_rows / elapsed)
        lh.close()
        say(f"  compaction round {r + 1}: {ours[-1]:,.0f} rows/s vs pyarrow {plain[-1]:,.0f}")
    ratio = median(ours) / median(plain)
    section = Table(
        f"Compaction throughput: {files} files x {rows_per_file:,} rows",
        ["what", "median rows/s", "rounds"],
        [
            ["compact_table (plan, read, write, commit)", f"{median(ours):,.0f}", str(rounds)],
            ["plain pyarrow read_table + write_table", f"{median(plain):,.0f}", str(rounds)],
            ["ratio", f"{ratio:.2f}", ""],
        ],
        [
            "Same input files, same codec (zstd). Each round compacts a fresh table; "
            "the baseline writes one file without any Iceberg metadata or catalog commit."
        ],
    )
    return section, Check("compaction rows/s vs pyarrow", f"{ratio:.2f}", ">= 0.7", ratio >= 0.7)


# -- 2. query before and after ---------------------------------------------------------------


def bench_query(root: Path, rounds: int, files: int, rows_per_file: int) -> Table:
    lh = new_home(root, "query")
    small_file_table(lh, "events", files, rows_per_file)
    query = "SELECT count(*) AS n, sum(value) AS total FROM bench.events WHERE id % 7 = 0"

    def timed() -> float:
        start = time.perf_counter()
        lh.sql(query)
        return time.perf_counter() - start

    expected = lh.sql(query).to_pylist()
    before = [timed() for _ in range(rounds)]
    start = time.perf_counter()
    result = compact_table(lh.table("bench.events"), CompactionPolicy(min_small_files=2))
    compaction = time.perf_counter() - start
    assert lh.sql(query).to_pylist() == expected
    after = [timed() for _ in range(rounds)]
    lh.close()
    say(f"  query: {median(before):.3f}s before, {median(after):.3f}s after")
    return Table(
        f"Query on a table of {files:,} small files, before and after compaction",
        ["", "data files", "median query s", "rounds"],
        [
            ["before", str(files), f"{median(before):.3f}", str(rounds)],
            ["after", str(result.files_written), f"{median(after):.3f}", str(rounds)],
            ["speed-up", "", f"{median(before) / median(after):.1f}x", ""],
        ],
        [
            f"`{query}` through `Lakehouse.sql`; the results are identical. Compacting "
            f"{files:,} files ({files * rows_per_file:,} rows) took {compaction:.1f} s."
        ],
    )


# -- 3. GC mark scaling ----------------------------------------------------------------------


def gc_catalog(root: Path, name: str, refs: int, commits: int, files: int) -> Lakehouse:
    """R branches (main and R-1 more), each with C commits adding F tiny files."""
    lh = new_home(root, name)
    table = lh.catalog("main").create_table("bench.t", rows_batch(0, 1).schema)
    folder = table.metadata.properties["write.data.path"]
    for r in range(refs):
        branch = "main" if r == 0 else f"b{r}"
        if r:
            lh.create_branch(branch, "main")
        t = lh.table("bench.t", branch)
        for c in range(commits):
            paths = []
            for f in range(files):
                path = f"{folder}/{branch}-{c}-{f}.parquet"
                with t.io.new_output(path).create(overwrite=True) as out:
                    pq.write_table(rows_batch(f, 1), out)
                paths.append(path)
            t.add_files(paths)
            t = lh.table("bench.t", branch)
    return lh


def bench_gc(
    root: Path, rounds: int, configs: Sequence[tuple[int, int, int]]
) -> tuple[Table, Check]:
    section = Table(
        "GC mark time vs references x commits x files",
        [
            "refs",
            "commits/ref",
            "files/commit",
            "R*C*F",
            "marked files",
            "median mark s",
            "us per R*C*F",
        ],
    )
    per_unit: list[float] = []
    policies = Policies().with_changes(gc={"grace_period": 0})
    for refs, commits, files in configs:
        lh = gc_catalog(root, f"gc-{refs}-{commits}-{files}", refs, commits, files)
        times = []
        marked = 0
        for _ in range(rounds):
            result = collect_garbage(lh, policies=policies, dry_run=True)
            times.append(result.mark_seconds)
            marked = result.marked
        lh.close()
        units = refs * commits * files
        unit = median(times) / units * 1e6
        per_unit.append(unit)
        section.rows.append(
            [
                str(refs),
                str(commits),
                str(files),
                f"{units:,}",
                f"{marked:,}",
                f"{median(times):.3f}",
                f"{unit:.0f}",
            ]
        )
        say(f"  gc mark {refs}x{commits}x{files}: {median(times):.3f}s")
    section.notes.append(
        "Each branch forks main at its head and adds its own commits, so history is shared "
        "and each commit references all earlier files of its branch (marked once: files "
        "are de-duplicated across commits, metadata files, branches)."
    )
    spread = max(per_unit) / min(per_unit)
    grows = per_unit[-1] / per_unit[0]
    return section, Check(
        "GC mark time per R*C*F, largest vs smallest",
        f"{grows:.2f}x",
        "<= 2x (linear)",
        grows <= 2.0 and spread < 4,
    )


# -- main --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, 2 rounds")
    parser.add_argument("--markdown", type=Path, help="write the section into this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    compact_files, compact_rows = (50, 2_000) if args.quick else (200, 10_000)
    query_files = 100 if args.quick else 1_000
    gc_configs: list[tuple[int, int, int]] = (
        [(1, 5, 2), (2, 10, 2)]
        if args.quick
        else [(1, 10, 4), (2, 10, 4), (4, 10, 4), (4, 20, 4), (4, 20, 8)]
    )
    given = list(argv if argv is not None else sys.argv[1:])
    started = datetime.now(UTC)
    header = (
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'}: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, pyarrow {pa.__version__}; "
        f"load average at start {os.getloadavg()[0]:.1f}. "
        f"Command: `python bench/maintenance.py {' '.join(given)}`."
    )
    print(header)
    report = Report()

    def compaction(root: Path) -> None:
        table, check = bench_compaction(root, rounds, compact_files, compact_rows)
        report.add(table)
        report.checks.append(check)

    def query(root: Path) -> None:
        report.add(bench_query(root, max(rounds, 3), query_files, 100))

    def gc(root: Path) -> None:
        table, check = bench_gc(root, rounds, gc_configs)
        report.add(table)
        report.checks.append(check)

    steps: list[Callable[[Path], None]] = [compaction, query, gc]
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-maint-") as tmp:
        for step in steps:
            say(f"{step.__name__} …")
            step(Path(tmp) / step.__name__)
    print("\n" + report.summary().text())
    if args.markdown:
        replace_section(args.markdown, SECTION, report.markdown(SECTION, [header]))
        print(f"Markdown written to {args.markdown}")
    return 1 if args.strict and not all(c.ok for c in report.checks) else 0


if __name__ == "__main__":
    sys.exit(main())
