"""Benchmark of incremental models: the demo's change-batch run, incremental vs merge.

Run from the repository root::

    .venv/bin/python bench/incremental.py [--scale-factor 0.1] [--rounds 3]
                                          [--markdown docs/benchmarks.md]

What a user does, twice per round, interleaved (merge, incremental, merge, ...): a fresh
lakehouse, the first load of the TPC-H pipeline (``TPCH_DATA=<data> lakehouse run
tpch``), then the demo's change batch (``tpch.write_change_batch``: ~1 % of the orders
updated, 0.5 % deleted, a few inserted) as a second run — **that run is timed**, as
``python -m lakehouse.demo`` times its "changes" step. The two sides differ only in
``pipeline.yaml``:

* **incremental** — ``pipelines/tpch`` as shipped: every silver model is
  ``materialized: incremental`` and reads only the bronze rows of the change batch;
* **merge** (the baseline, the pipeline before incremental models) — the same folder
  with every silver model ``materialized: merge``: each run reads all of bronze.

Both must publish the same gold tables (checked after every round). Printed: medians of
the run's wall time and of the silver models' time, the paired ratio, and the rows the
silver models read.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from _common import (  # bench/ is the script's folder
    REPO,
    Report,
    Table,
    median,
    paired_ratio,
    ratio_iqr,
    replace_section,
    same_rows,
    say,
    seconds,
)

from lakehouse import connect, tpch
from lakehouse.client import Lakehouse
from lakehouse.pipelines import RunResult, load_pipeline, run_pipeline

SECTION = "## Incremental models (bench/incremental.py)"
GOLD = ("gold.q1_pricing_summary", "gold.q3_shipping_priority", "gold.revenue_by_nation_month")
VARIANTS = ("merge", "incremental")


@dataclass
class Sample:
    """One change-batch run."""

    seconds: float
    silver_seconds: float
    silver_rows_read: int
    gold: dict[str, list[dict[str, object]]]


def merge_pipeline(work: Path) -> Path:
    """A copy of ``pipelines/tpch`` whose silver models are ``merge`` (the baseline)."""
    folder = work / "pipelines" / "tpch"
    shutil.copytree(REPO / "pipelines" / "tpch", folder, dirs_exist_ok=True)
    spec = folder / "pipeline.yaml"
    text = spec.read_text()
    assert "materialized: incremental" in text
    spec.write_text(text.replace("materialized: incremental", "materialized: merge"))
    return folder


def _run(lh: Lakehouse, pipeline: Path, data: Path) -> RunResult:
    os.environ["TPCH_DATA"] = str(data)
    try:
        result = run_pipeline(lh, load_pipeline(pipeline))
    finally:
        os.environ.pop("TPCH_DATA", None)
    if not result.ok:
        raise SystemExit(f"run of {pipeline} failed: {result.error or result.status}")
    return result


def one_round(pipeline: Path, data: Path, changes: Path, home: Path) -> Sample:
    """A fresh home, the first load, then the timed change-batch run."""
    with connect(home, create=True) as lh:
        _run(lh, pipeline, data)
        started = time.perf_counter()
        result = _run(lh, pipeline, changes)
        elapsed = time.perf_counter() - started
        models = [m for m in result.models if m.model.startswith("silver.")]
        rows_read = 0
        for m in models:
            if m.incremental is not None:
                rows_read += m.incremental.rows
            else:  # a merge model reads its whole bronze table
                source = "bronze." + m.model.split(".", 1)[1]
                rows_read += lh.sql(f"SELECT count(*) AS n FROM {source}").column(0)[0].as_py()
        gold = {name: lh.sql(f"SELECT * FROM {name} ORDER BY ALL").to_pylist() for name in GOLD}
    shutil.rmtree(home, ignore_errors=True)
    return Sample(elapsed, sum(m.seconds for m in models), rows_read, gold)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-factor", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--markdown", type=Path, help="write the section into this file")
    args = parser.parse_args(argv)
    given = list(argv if argv is not None else sys.argv[1:])
    started = datetime.now(UTC)
    header = [
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'}: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, DuckDB {duckdb.__version__}, "
        f"pyarrow {pa.__version__}; load average at start {os.getloadavg()[0]:.1f}. "
        f"Command: `python bench/incremental.py {' '.join(given)}`."
    ]
    print(header[0])
    sf = tpch.format_scale_factor(args.scale_factor)
    dataset = tpch.generate(args.scale_factor)
    report = Report()
    samples: dict[str, list[Sample]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-incremental-") as tmp:
        work = Path(tmp)
        batch = tpch.write_change_batch(dataset.path, work / "changes")
        pipelines = {"merge": merge_pipeline(work), "incremental": REPO / "pipelines" / "tpch"}
        for i in range(args.rounds):
            for variant in VARIANTS:
                say(f"round {i + 1}/{args.rounds}: {variant}")
                sample = one_round(pipelines[variant], dataset.path, batch.path, work / "home")
                samples[variant].append(sample)
                say(f"  change-batch run {seconds(sample.seconds)}")
            gold_same = all(
                same_rows(samples["merge"][-1].gold[g], samples["incremental"][-1].gold[g])
                for g in GOLD
            )
            if not gold_same:
                raise SystemExit(f"round {i + 1}: the gold tables differ between the variants")

    table = Table(
        f"Demo change-batch run at SF {sf}: incremental silver vs merge silver",
        ["silver models", "change-batch run (median)", "of which silver", "rows read by silver"],
    )
    for variant in VARIANTS:
        s = samples[variant]
        table.rows.append(
            [
                variant,
                seconds(median([x.seconds for x in s])),
                seconds(median([x.silver_seconds for x in s])),
                f"{s[0].silver_rows_read:,}",
            ]
        )
    run_ratio = paired_ratio(
        [x.seconds for x in samples["incremental"]], [x.seconds for x in samples["merge"]]
    )
    silver_ratio = paired_ratio(
        [x.silver_seconds for x in samples["incremental"]],
        [x.silver_seconds for x in samples["merge"]],
    )
    table.notes.append(
        f"Speed-up of the change-batch run (merge / incremental, paired): "
        f"{ratio_iqr(run_ratio)}; of its silver models: {ratio_iqr(silver_ratio)}. "
        f"{args.rounds} rounds, interleaved; the same gold tables on both sides every round."
    )
    table.notes.append(
        f"Change batch: {batch.updated_orders:,} orders updated, {batch.deleted_orders:,} "
        f"deleted ({batch.deleted_lineitems:,} line items), {batch.inserted_orders:,} inserted "
        f"({batch.inserted_lineitems:,} line items). Each round: a fresh home and the first load "
        "(not timed), then the change-batch run (ingest, silver, gold, checks, merge into main)."
    )
    report.add(table)
    report.check(
        f"demo change-batch run at SF {sf}",
        seconds(median([x.seconds for x in samples["incremental"]])),
        "<= 5 s" if args.scale_factor <= 0.1 else "<= 15 s",
        median([x.seconds for x in samples["incremental"]])
        <= (5 if args.scale_factor <= 0.1 else 15),
    )
    print("\n" + report.summary().text())
    if args.markdown:
        replace_section(args.markdown, SECTION, report.markdown(SECTION, header))
        print(f"\nSection written to {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
