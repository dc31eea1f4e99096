"""Benchmarks of one-row appends (issue 10, item 6): commits whose cost does not grow with
history or writers.

Run from the repository root::

    .venv/bin/python bench/appends.py [--snapshots 1000] [--samples 20] [--writers 8]
                                      [--per-writer 25] [--markdown docs/benchmarks.md]
                                      [--sections history,writers] [--strict]

Everything goes through the public API on the embedded profile, as a user does it: a
fresh home (``lakehouse.connect(home, create=True)``: SQLite catalog, local-folder
warehouse), a table ``bench.events`` created on ``main``, and ``table.append(one_row)``
on the PyIceberg table ``lh.table("bench.events")`` returns.

1. **Append cost vs history.** ``--samples`` one-row appends timed on a new table
   (snapshots 1..``samples``), appends until the table has ``--snapshots`` snapshots, then
   ``--samples`` more timed appends around that snapshot. Each timed append is paired with
   the baseline, ``pyarrow.parquet.write_table`` of the same row to a local file (what
   writing the data costs, without any table format or catalog), measured interleaved.
   Targets: p50 at snapshot ``--snapshots`` <= 25 ms, and <= 1.5x the p50 of the first
   ``samples``.
2. **Writers on one table.** ``--writers`` OS processes each make ``--per-writer`` one-row
   appends to ONE shared table (each process connects and loads the table itself; they
   start together at a barrier) vs one process making all ``writers x per-writer`` appends
   to a table of its own, in the same run. Reported: throughput (appends/s) and its ratio,
   per-append latency p50/p99, commit attempts (appends + races lost, counted from the
   catalog's "lost a race" debug records and PyIceberg's client-side retry warnings) and a check that every row is in the table
   exactly once. Targets: ratio >= 0.8, 0 lost, 0 duplicated.

``--markdown FILE`` writes the results as the "One-row appends (bench/appends.py)" section
of FILE, replacing that section if present and keeping the others. Targets missed are
reported, not fatal (``--strict`` makes them exit 1).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pyiceberg
from _common import (  # bench/ is the script's folder
    Report,
    Table,
    git_revision,
    median,
    paired_ratio,
    percentile,
    ratio,
    ratio_iqr,
    replace_section,
    say,
)

import lakehouse

SECTION = "## One-row appends (bench/appends.py)"
TABLE = "bench.events"
#: Worker processes are forked where possible: no re-import, so setup stays short.
MP: ForkContext | SpawnContext = (
    mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
)
SCHEMA = pa.schema([("id", pa.int64()), ("writer", pa.int32()), ("payload", pa.string())])


def one_row(row_id: int, writer: int = 0) -> pa.Table:
    """The row a user appends: an id, the writer and a short payload."""
    return pa.table(
        {"id": [row_id], "writer": [writer], "payload": [f"event {row_id}"]}, schema=SCHEMA
    )


def new_home(home: Path) -> None:
    """A fresh embedded lakehouse with an empty ``bench.events`` on main."""
    with lakehouse.connect(home, create=True) as lh:
        catalog = lh.catalog("main")
        catalog.create_namespace_if_not_exists("bench")
        catalog.create_table(TABLE, SCHEMA)


def ms(value: float) -> str:
    """``12.3 ms``."""
    return f"{value * 1000:.1f} ms"


class RaceCounter(logging.Handler):
    """Counts commit attempts beyond the first: the catalog's "lost a race" debug records and
    PyIceberg's own "Commit failed due to a concurrent update, retrying" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lost = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "lost a race" in message or "Commit failed due to a concurrent update" in message:
            self.lost += 1

    @classmethod
    def install(cls) -> RaceCounter:
        counter = cls()
        for name in ("lakehouse.catalog.iceberg", "pyiceberg.table"):
            log = logging.getLogger(name)
            log.setLevel(logging.DEBUG)
            log.addHandler(counter)
            log.propagate = False
        return counter


# -- 1. append cost vs history --------------------------------------------------------------


def bench_history(root: Path, snapshots: int, samples: int) -> tuple[Table, float, float]:
    """Timed appends at the start and around ``snapshots``; the two p50s."""
    home = root / "history"
    new_home(home)
    baseline_file = root / "baseline.parquet"
    with lakehouse.connect(home) as lh:
        table = lh.table(TABLE)
        next_id = 0

        def timed_pair() -> tuple[float, float]:
            nonlocal next_id
            row = one_row(next_id)
            next_id += 1
            started = time.perf_counter()
            table.append(row)
            ours = time.perf_counter() - started
            started = time.perf_counter()
            pq.write_table(row, baseline_file)
            return ours, time.perf_counter() - started

        first = [timed_pair() for _ in range(samples)]
        build_to = max(samples, snapshots - samples // 2)
        say(f"building the table up to snapshot {build_to} …")
        build_started = time.perf_counter()
        while next_id < build_to:
            table.append(one_row(next_id))
            next_id += 1
            if next_id % 250 == 0:
                say(f"  snapshot {next_id} ({time.perf_counter() - build_started:.0f} s)")
        late = [timed_pair() for _ in range(samples)]
        snapshot_count = len(table.metadata.snapshots)
        rows = lh.table(TABLE).scan(selected_fields=("id",)).to_arrow().num_rows
    assert rows == next_id, f"{rows} rows after {next_id} appends"

    result = Table(
        f"Append cost vs history: one-row appends, {samples} timed at each point",
        ["point", "append p50", "append p90", "write_table p50", "append / write_table"],
    )
    p50s = []
    for label, pairs in (
        (f"snapshots 1-{samples}", first),
        (f"snapshots {build_to + 1}-{build_to + samples}", late),
    ):
        ours = [a for a, _ in pairs]
        base = [b for _, b in pairs]
        p50s.append(median(ours))
        result.rows.append(
            [
                label,
                ms(median(ours)),
                ms(percentile(ours, 0.9)),
                ms(median(base)),
                ratio_iqr(paired_ratio(base, ours)),
            ]
        )
    result.notes.append(
        f"`table.append(one_row)` on `{TABLE}` (SQLite catalog, local warehouse); the table "
        f"ends with {snapshot_count} snapshots and {rows} rows (all checked). Baseline: "
        "`pyarrow.parquet.write_table` of the same row, interleaved with each append."
    )
    result.notes.append(
        f"p50 around snapshot {build_to + samples // 2} vs the first {samples}: "
        f"{ratio(p50s[1] / p50s[0])}."
    )
    return result, p50s[0], p50s[1]


# -- 2. writers on one table ----------------------------------------------------------------


def _writer(
    home: str, writer: int, count: int, barrier: Barrier, out: Queue[tuple[int, list[float], int]]
) -> None:
    """One process: connect, load the table, wait for the others, append ``count`` rows."""
    counter = RaceCounter.install()
    latencies: list[float] = []
    with lakehouse.connect(Path(home)) as lh:
        table = lh.table(TABLE)
        barrier.wait()
        for i in range(count):
            row = one_row(writer * 1_000_000 + i, writer)
            started = time.perf_counter()
            table.append(row)
            latencies.append(time.perf_counter() - started)
    out.put((writer, latencies, counter.lost))


def run_writers(home: Path, writers: int, per_writer: int) -> dict[str, object]:
    """``writers`` processes x ``per_writer`` appends to one table; wall time and checks."""
    new_home(home)
    barrier = MP.Barrier(writers + 1)
    out: Queue[tuple[int, list[float], int]] = MP.Queue()
    procs = [
        MP.Process(target=_writer, args=(str(home), w, per_writer, barrier, out))
        for w in range(writers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.perf_counter()
    results = [out.get(timeout=1800) for _ in procs]
    wall = time.perf_counter() - started
    for p in procs:
        p.join()
    latencies = [lat for _, lats, _ in results for lat in lats]
    lost_races = sum(lost for _, _, lost in results)
    with lakehouse.connect(home) as lh:
        ids = lh.table(TABLE).scan(selected_fields=("id",)).to_arrow().column("id").to_pylist()
        snapshots = len(lh.table(TABLE).metadata.snapshots)
    expected = {w * 1_000_000 + i for w in range(writers) for i in range(per_writer)}
    return {
        "wall": wall,
        "latencies": latencies,
        "attempts": len(latencies) + lost_races,
        "lost_rows": len(expected - set(ids)),
        "duplicated_rows": len(ids) - len(set(ids)),
        "extra_rows": len(set(ids) - expected),
        "snapshots": snapshots,
    }


def bench_writers(root: Path, writers: int, per_writer: int) -> tuple[Table, float, int, int]:
    """One writer vs ``writers`` writers on one table; the throughput ratio, lost and doubled."""
    total = writers * per_writer
    say(f"1 process x {total} appends …")
    single = run_writers(root / "single", 1, total)
    say(f"{writers} processes x {per_writer} appends to one table …")
    multi = run_writers(root / "multi", writers, per_writer)
    result = Table(
        f"Writers on one table: {total} one-row appends",
        [
            "writers",
            "wall",
            "appends/s",
            "append p50",
            "append p99",
            "commit attempts",
            "lost",
            "duplicated",
        ],
    )
    for label, r in ((f"1 x {total}", single), (f"{writers} x {per_writer}", multi)):
        lats = r["latencies"]
        wall = r["wall"]
        assert isinstance(lats, list) and isinstance(wall, float)
        result.rows.append(
            [
                label,
                f"{wall:.2f} s",
                f"{total / wall:.1f}",
                ms(median(lats)),
                ms(percentile(lats, 0.99)),
                str(r["attempts"]),
                str(r["lost_rows"]),
                str(int(r["duplicated_rows"]) + int(r["extra_rows"])),  # type: ignore[call-overload]
            ]
        )
    single_wall, multi_wall = single["wall"], multi["wall"]
    assert isinstance(single_wall, float) and isinstance(multi_wall, float)
    throughput = single_wall / multi_wall
    result.notes.append(
        f"Throughput {writers} processes / 1 process: {ratio(throughput)}. Each process "
        "connects and loads the table itself, then all start at a barrier; wall time from the "
        "barrier to the last append. Rows checked with a scan of the table afterwards."
    )
    lost = int(multi["lost_rows"])  # type: ignore[call-overload]
    doubled = int(multi["duplicated_rows"]) + int(multi["extra_rows"])  # type: ignore[call-overload]
    return result, throughput, lost, doubled


# -- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=1000, help="history of section 1")
    parser.add_argument("--samples", type=int, default=20, help="timed appends at each point")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--per-writer", type=int, default=25)
    parser.add_argument("--sections", default="history,writers")
    parser.add_argument("--markdown", type=Path, help="write the section into this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    given = list(argv if argv is not None else sys.argv[1:])
    started = datetime.now(UTC)
    header = (
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'} at "
        f"{git_revision()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"PyIceberg {pyiceberg.__version__}, pyarrow {pa.__version__}; load average at start "
        f"{os.getloadavg()[0]:.1f}. Command: `python bench/appends.py {' '.join(given)}`."
    )
    print(header)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-appends-") as tmp:
        root = Path(tmp)
        if "history" in sections:
            say("append cost vs history …")
            table, first, late = bench_history(root, args.snapshots, args.samples)
            report.add(table)
            report.check(
                f"one-row append p50 around snapshot {args.snapshots}",
                ms(late),
                "<= 25 ms",
                late <= 0.025,
            )
            report.check(
                f"p50 around snapshot {args.snapshots} / p50 of the first {args.samples}",
                ratio(late / first),
                "<= 1.5x",
                late / first <= 1.5,
            )
        if "writers" in sections:
            table, throughput, lost, doubled = bench_writers(root, args.writers, args.per_writer)
            report.add(table)
            report.check(
                f"throughput {args.writers} processes x {args.per_writer} / 1 process",
                ratio(throughput),
                ">= 0.8x",
                throughput >= 0.8,
            )
            report.check(
                "rows lost / duplicated", f"{lost} / {doubled}", "0 / 0", not lost and not doubled
            )
    print("\n" + report.summary().text())
    if args.markdown:
        replace_section(args.markdown, SECTION, report.markdown(SECTION, [header]))
        print(f"Markdown written to {args.markdown}")
    return 1 if args.strict and not all(c.ok for c in report.checks) else 0


if __name__ == "__main__":
    sys.exit(main())
