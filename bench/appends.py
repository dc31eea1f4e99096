"""Benchmarks of one-row appends (issue 10, item 6): commits whose cost does not grow with
history or writers.

Run from the repository root::

    .venv/bin/python bench/appends.py [--snapshots 1000] [--samples 20] [--writers 8]
                                      [--per-writer 25] [--rounds 3]
                                      [--markdown docs/benchmarks.md]
                                      [--sections history,writers] [--strict]
                                      [--catalog postgresql+psycopg://…]

Everything goes through the public API on the embedded profile, as a user does it: a
fresh home (``lakehouse.connect(home, create=True)``: SQLite catalog, local-folder
warehouse), tables created on ``main``, and ``table.append(one_row)`` on the PyIceberg
table ``lh.table(...)`` returns.

1. **Append cost vs history.** ``bench.events`` is built up to about ``--snapshots``
   snapshots; then a new table gets its first ``--samples`` one-row appends, each followed
   by one append to ``bench.events`` (around snapshot ``--snapshots``) and by the baseline,
   ``pyarrow.parquet.write_table`` of the same row to a local file (what writing the data
   costs without a table format or catalog): interleaved, so the machine's load hits all
   three alike. Targets: p50 around snapshot ``--snapshots`` <= 25 ms and <= 1.5x the p50
   of the first ``--samples``.
2. **Writers on one table.** ``--writers`` OS processes each make ``--per-writer`` one-row
   appends to ONE shared table (each process connects and loads the table itself; they
   start together at a barrier) vs one process making all ``writers x per-writer``
   appends to a table of its own, alternately for ``--rounds`` rounds. Reported:
   throughput (appends/s) and the median ratio of the rounds, per-append latency p50/p99,
   commit attempts (appends + races lost: the catalog's "lost a race" debug records and
   PyIceberg's client-side retry warnings) and a check that every row is in the table
   exactly once. Targets: ratio >= 0.8, 0 lost, 0 duplicated. ``--catalog URI`` runs this
   section on another catalog database (e.g. PostgreSQL, whose per-table commit lock is
   an advisory lock): every run then creates a table of its own name in that database.

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
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from pyiceberg.table import Table as IcebergTable

SECTION = "## One-row appends (bench/appends.py)"
TABLE = "bench.events"
FRESH = "bench.fresh"
#: Worker processes are forked where possible: no re-import, so setup stays short.
MP: ForkContext | SpawnContext = (
    mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
)
SCHEMA = pa.schema([("id", pa.int64()), ("writer", pa.int32()), ("payload", pa.string())])


def one_row(row_id: int, writer: int = 0) -> pa.Table:
    """The row a user appends: an id, the writer and a short payload."""
    return pa.table(
        {"id": [row_id], "writer": [writer], "payload": [f"event {row_id}"]},
        schema=SCHEMA,
    )


def connect(home: Path, catalog: str | None = None, create: bool = False) -> lakehouse.Lakehouse:
    """The lakehouse at ``home``: embedded (SQLite in ``home``) or on the ``catalog`` database."""
    if catalog is None:
        return lakehouse.connect(home, create=create)
    return lakehouse.connect(home, create=create, catalog={"uri": catalog})


def new_home(home: Path, table: str = TABLE, catalog: str | None = None) -> None:
    """A fresh lakehouse (embedded unless ``catalog``) with an empty ``table`` on main."""
    with connect(home, catalog, create=True) as lh:
        main = lh.catalog("main")
        main.create_namespace_if_not_exists("bench")
        main.create_table(table, SCHEMA)


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


def bench_history(
    root: Path, snapshots: int, samples: int
) -> tuple[Table, float, float, tuple[float, float, float]]:
    """Appends to a new table interleaved with appends around ``snapshots``.

    ``bench.events`` is first built up to ``snapshots - samples / 2`` snapshots; then a new
    table ``bench.fresh`` gets its first ``samples`` appends, each followed by one append to
    ``bench.events`` and one baseline ``write_table``, so the machine's load hits all three
    alike. Returns the table, both p50s and the paired ratio late / first.
    """
    home = root / "history"
    new_home(home)
    baseline_file = root / "baseline.parquet"
    build_to = max(0, snapshots - samples // 2)
    with lakehouse.connect(home) as lh:
        late_table = lh.table(TABLE)
        say(f"building {TABLE} up to snapshot {build_to} …")
        build_started = time.perf_counter()
        for i in range(build_to):
            late_table.append(one_row(i))
            if (i + 1) % 250 == 0:
                say(f"  snapshot {i + 1} ({time.perf_counter() - build_started:.0f} s)")
        first_table = lh.catalog("main").create_table(FRESH, SCHEMA)

        def timed(table: IcebergTable, row: pa.Table) -> float:
            started = time.perf_counter()
            table.append(row)
            return time.perf_counter() - started

        first, late, base = [], [], []
        for i in range(samples):
            row = one_row(i)
            first.append(timed(first_table, row))
            late.append(timed(late_table, one_row(build_to + i)))
            started = time.perf_counter()
            pq.write_table(row, baseline_file)
            base.append(time.perf_counter() - started)
        late_snapshots = len(late_table.metadata.snapshots)
        late_rows = lh.table(TABLE).scan(selected_fields=("id",)).to_arrow().num_rows
        first_rows = lh.table(FRESH).scan(selected_fields=("id",)).to_arrow().num_rows
    assert late_rows == build_to + samples, f"{late_rows} rows after {build_to + samples} appends"
    assert first_rows == samples, f"{first_rows} rows after {samples} appends"

    result = Table(
        f"Append cost vs history: one-row appends, {samples} timed at each point, interleaved",
        ["table", "snapshots", "append p50", "append p90", "append / write_table"],
    )
    for label, span, values in (
        (FRESH, f"1-{samples}", first),
        (TABLE, f"{build_to + 1}-{build_to + samples}", late),
    ):
        result.rows.append(
            [
                label,
                span,
                ms(median(values)),
                ms(percentile(values, 0.9)),
                ratio_iqr(paired_ratio(base, values)),
            ]
        )
    result.rows.append(
        [
            "baseline: `pq.write_table`",
            "-",
            ms(median(base)),
            ms(percentile(base, 0.9)),
            "1.00x",
        ]
    )
    paired = paired_ratio(first, late)
    result.notes.append(
        "`table.append(one_row)` (SQLite catalog, local warehouse), the new table's first "
        f"appends alternating with appends to a table with {late_snapshots - samples}+ "
        f"snapshots (it ends with {late_snapshots} snapshots and {late_rows} rows, all "
        "checked) and with the baseline, `pyarrow.parquet.write_table` of the same row."
    )
    result.notes.append(
        f"p50 around snapshot {build_to + samples // 2} / p50 of the first {samples}: "
        f"{ratio(median(late) / median(first))}; paired per append: {ratio_iqr(paired)}."
    )
    return result, median(first), median(late), paired


# -- 2. writers on one table ----------------------------------------------------------------


def _writer(
    home: str,
    table_name: str,
    catalog: str | None,
    writer: int,
    count: int,
    barrier: Barrier,
    out: Queue[tuple[int, list[float], int]],
) -> None:
    """One process: connect, load the table, wait for the others, append ``count`` rows."""
    counter = RaceCounter.install()
    latencies: list[float] = []
    with connect(Path(home), catalog) as lh:
        table = lh.table(table_name)
        barrier.wait()
        for i in range(count):
            row = one_row(writer * 1_000_000 + i, writer)
            started = time.perf_counter()
            table.append(row)
            latencies.append(time.perf_counter() - started)
    out.put((writer, latencies, counter.lost))


@dataclass
class WritersRun:
    """One run of ``writers`` processes appending to one table."""

    wall: float
    latencies: list[float]
    attempts: int
    lost: int  # expected rows missing
    doubled: int  # rows there more than once, or not expected at all


def run_writers(
    home: Path, writers: int, per_writer: int, catalog: str | None = None
) -> WritersRun:
    """``writers`` processes x ``per_writer`` appends to one table; wall time and checks.

    On a shared ``catalog`` database the table gets a name of its own.
    """
    table_name = TABLE if catalog is None else f"{TABLE}_{uuid.uuid4().hex[:12]}"
    new_home(home, table_name, catalog)
    barrier = MP.Barrier(writers + 1)
    out: Queue[tuple[int, list[float], int]] = MP.Queue()
    procs = [
        MP.Process(
            target=_writer,
            args=(str(home), table_name, catalog, w, per_writer, barrier, out),
        )
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
    with connect(home, catalog) as lh:
        ids = lh.table(table_name).scan(selected_fields=("id",)).to_arrow().column("id").to_pylist()
    expected = {w * 1_000_000 + i for w in range(writers) for i in range(per_writer)}
    return WritersRun(
        wall=wall,
        latencies=latencies,
        attempts=len(latencies) + lost_races,
        lost=len(expected - set(ids)),
        doubled=len(ids) - len(set(ids)) + len(set(ids) - expected),
    )


def bench_writers(
    root: Path, writers: int, per_writer: int, rounds: int, catalog: str | None = None
) -> tuple[Table, float, int, int]:
    """One writer vs ``writers`` writers on one table, ``rounds`` times alternately.

    Returns the table, the median throughput ratio over the rounds, rows lost and doubled.
    """
    total = writers * per_writer
    singles: list[WritersRun] = []
    multis: list[WritersRun] = []
    for r in range(rounds):
        say(f"round {r + 1}/{rounds}: 1 process x {total} appends …")
        singles.append(run_writers(root / f"single-{r}", 1, total, catalog))
        say(f"round {r + 1}/{rounds}: {writers} processes x {per_writer} appends to one table …")
        multis.append(run_writers(root / f"multi-{r}", writers, per_writer, catalog))
    store = "SQLite catalog" if catalog is None else f"{catalog.split(':', 1)[0]} catalog"
    result = Table(
        f"Writers on one table ({store}): {total} one-row appends, {rounds} round(s)",
        [
            "writers",
            "wall (median)",
            "appends/s",
            "append p50",
            "append p99",
            "commit attempts / appends",
            "lost",
            "duplicated",
        ],
    )
    for label, runs in (
        (f"1 x {total}", singles),
        (f"{writers} x {per_writer}", multis),
    ):
        wall = median([run.wall for run in runs])
        lats = [lat for run in runs for lat in run.latencies]
        result.rows.append(
            [
                label,
                f"{wall:.2f} s",
                f"{total / wall:.1f}",
                ms(median(lats)),
                ms(percentile(lats, 0.99)),
                f"{sum(run.attempts for run in runs)} / {total * len(runs)}",
                str(sum(run.lost for run in runs)),
                str(sum(run.doubled for run in runs)),
            ]
        )
    ratios = [single.wall / multi.wall for single, multi in zip(singles, multis, strict=True)]
    throughput = median(ratios)
    result.notes.append(
        f"Throughput {writers} processes / 1 process: {ratio(throughput)} (median of the rounds: "
        f"{', '.join(ratio(r) for r in ratios)}). Each process connects and loads the table "
        "itself, then all start at a barrier; wall time from the barrier to the last append. "
        "Rows checked with a scan of the table afterwards; latencies pooled over the rounds."
    )
    lost = sum(run.lost for run in multis)
    doubled = sum(run.doubled for run in multis)
    return result, throughput, lost, doubled


# -- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=1000, help="history of section 1")
    parser.add_argument("--samples", type=int, default=20, help="timed appends at each point")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--per-writer", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of section 2")
    parser.add_argument("--sections", default="history,writers")
    parser.add_argument("--markdown", type=Path, help="write the section into this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--catalog",
        help="catalog database URI for the writers section (default: embedded SQLite)",
    )
    args = parser.parse_args(argv)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    # a catalog URI's password stays out of the printed command and the docs
    given = [
        re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", arg)
        for arg in (argv if argv is not None else sys.argv[1:])
    ]
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
            table, first, late, _ = bench_history(root, args.snapshots, args.samples)
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
            table, throughput, lost, doubled = bench_writers(
                root, args.writers, args.per_writer, max(1, args.rounds), args.catalog
            )
            report.add(table)
            report.check(
                f"throughput {args.writers} processes x {args.per_writer} / 1 process",
                ratio(throughput),
                ">= 0.8x",
                throughput >= 0.8,
            )
            report.check(
                "rows lost / duplicated",
                f"{lost} / {doubled}",
                "0 / 0",
                not lost and not doubled,
            )
    print("\n" + report.summary().text())
    if args.markdown:
        replace_section(args.markdown, SECTION, report.markdown(SECTION, [header]))
        print(f"Markdown written to {args.markdown}")
    return 1 if args.strict and not all(c.ok for c in report.checks) else 0


if __name__ == "__main__":
    sys.exit(main())
