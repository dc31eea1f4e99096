"""Benchmark: the same ingestion and query on S3 (MinIO over loopback) and on a local folder.

Run from the repository root, with the S3 server of ``scripts/services/minio.sh`` up::

    bash scripts/services/minio.sh start
    .venv/bin/python bench/storage.py [--scale-factor 0.1] [--rounds 5] [--quick]
                                      [--markdown docs/benchmarks.md]

Both sides use the same code, the same TPC-H ``lineitem`` CSV files and an embedded
(SQLite) catalog; only the warehouse differs: a local folder, or
``s3://lakehouse-bench/<run>/`` on the S3 server (each bucket a folder under it). Rounds
alternate which side goes first, so the machine's noise hits both:

1. **ingest** — ``lineitem`` CSV files into ``bronze.lineitem`` (checksums, landing in
   ``raw``, CSV read, Iceberg append, catalog commit), each round into a fresh warehouse;
2. **query** — TPC-H Q1 over ``bronze.lineitem`` through ``lakehouse sql`` (scan planning
   reads the metadata and manifests, DuckDB reads the Parquet files).

The ratio is S3 time / local time (the per-round pairs' median, IQR shown). There is no
target: this says what object storage costs on one machine, where the "network" is
loopback and the S3 server shares the two cores with the client.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.fs as pafs
from _common import (  # bench/ is the script's folder
    REPO,
    Report,
    Table,
    git_revision,
    median,
    paired_ratio,
    rate,
    ratio_iqr,
    replace_section,
    same_rows,
    say,
    seconds,
    timed,
)

import lakehouse
from lakehouse import query, tpch
from lakehouse.client import Lakehouse
from lakehouse.ingest.engine import ingest
from lakehouse.ingest.sources import FolderSource

SECTION = "## Storage: S3 vs local folder (bench/storage.py)"
BUCKET = "lakehouse-bench"

Q1 = """
SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty,
       sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       avg(l_discount) AS avg_disc, count(*) AS count_order
FROM bronze.lineitem
WHERE l_shipdate <= DATE '1998-09-02'
GROUP BY l_returnflag, l_linestatus
ORDER BY l_returnflag, l_linestatus
"""


def s3_settings() -> dict[str, str]:
    """The S3 settings of the running ``minio.sh`` server (its ``env`` output)."""
    script = REPO / "scripts" / "services" / "minio.sh"
    try:
        out = subprocess.run(
            ["bash", str(script), "env"], check=True, capture_output=True, text=True
        ).stdout
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"bench/storage.py: minio.sh env failed: {exc.stderr.strip()}") from exc
    settings: dict[str, str] = {}
    for line in out.splitlines():
        name, _, value = line.partition("=")
        if name.startswith("LAKEHOUSE_S3__"):
            settings[name.removeprefix("LAKEHOUSE_S3__").lower()] = value
    return settings


class Sides:
    """Fresh lakehouses on either side, all with the same data source."""

    def __init__(self, work: Path, data: Path, s3: dict[str, str]) -> None:
        self.work = work
        self.s3 = s3
        self.run = uuid.uuid4().hex[:8]
        self.source = FolderSource(
            name="tpch", type="folder", path=str(data), table="lineitem", pattern="lineitem*.csv"
        )
        client = pafs.S3FileSystem(
            endpoint_override=s3["endpoint"],
            access_key=s3["access_key_id"],
            secret_key=s3["secret_access_key"],
            region=s3.get("region") or "us-east-1",
            force_virtual_addressing=False,
            allow_bucket_creation=True,
            allow_bucket_deletion=False,
        )
        client.create_dir(BUCKET)
        self.client = client

    def open(self, side: str, n: int) -> Lakehouse:
        home = self.work / f"{side}-{n}"
        if side == "local":
            return lakehouse.connect(home, create=True)
        return lakehouse.connect(
            home, create=True, warehouse=f"s3://{BUCKET}/{self.run}/{n}", s3=self.s3
        )

    def cleanup(self) -> None:
        try:
            self.client.delete_dir(f"{BUCKET}/{self.run}")
        except OSError as exc:
            say(f"could not delete s3://{BUCKET}/{self.run}: {exc}")


def bench_ingest(report: Report, sides: Sides, rounds: int) -> None:
    times: dict[str, list[float]] = {"local": [], "s3": []}
    rows = 0
    for n in range(rounds + 1):  # round 0 warms caches and is not counted
        order = ["local", "s3"] if n % 2 else ["s3", "local"]
        for side in order:
            with sides.open(side, n) as lh:
                t = timed(lambda lh=lh: ingest(lh, sides.source, branch="main"))
                summary = lh.table("bronze.lineitem").current_snapshot().summary  # type: ignore[union-attr]
                rows = int(summary["total-records"])
            if n:
                times[side].append(t)
            if side == "local" and n not in (0, rounds):
                shutil.rmtree(sides.work / f"local-{n}")
        if n:
            say(f"ingest {n}: local {times['local'][-1]:.2f}s, s3 {times['s3'][-1]:.2f}s")
    r = paired_ratio(times["local"], times["s3"])
    table = Table(
        f"Ingest: lineitem CSV -> bronze.lineitem ({rows:,} rows)",
        ["warehouse", "median time", "throughput", "S3 / local (time)"],
    )
    table.rows.append(
        ["local folder", seconds(median(times["local"])), rate(rows, median(times["local"])), "-"]
    )
    table.rows.append(
        [
            "S3 (MinIO, loopback)",
            seconds(median(times["s3"])),
            rate(rows, median(times["s3"])),
            ratio_iqr(r),
        ]
    )
    table.notes.append(
        f"{rounds} rounds after a warm-up, sides alternating first; each into a fresh warehouse."
    )
    report.add(table)


def bench_query(report: Report, sides: Sides, rounds: int) -> None:
    n = rounds  # the last round's lakehouses are kept by bench_ingest
    times: dict[str, list[float]] = {"local": [], "s3": []}
    results = {}
    with sides.open("local", n) as local, sides.open("s3", n) as s3:
        lakes = {"local": local, "s3": s3}
        for side, lh in lakes.items():
            results[side] = query.sql(lh, Q1).to_pylist()  # warm-up, and the answers
        if not same_rows(results["local"], results["s3"]):
            raise AssertionError(
                f"the two warehouses answer Q1 differently: {results['local']} vs {results['s3']}"
            )
        for i in range(rounds * 4):
            order = ["local", "s3"] if i % 2 else ["s3", "local"]
            for side in order:
                lh = lakes[side]
                times[side].append(timed(lambda lh=lh: query.sql(lh, Q1)))
    r = paired_ratio(times["local"], times["s3"])
    table = Table(
        "Query: TPC-H Q1 over bronze.lineitem through lakehouse sql",
        ["warehouse", "median time", "S3 / local (time)"],
    )
    table.rows.append(["local folder", seconds(median(times["local"])), "-"])
    table.rows.append(["S3 (MinIO, loopback)", seconds(median(times["s3"])), ratio_iqr(r)])
    table.notes.append(
        f"{len(times['s3'])} queries per side, alternating; both answers checked equal first."
    )
    report.add(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale-factor", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smoke run: SF 0.01, 2 rounds")
    parser.add_argument("--markdown", type=Path, help="write the section into this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale_factor, args.rounds = 0.01, 2
    s3 = s3_settings()
    given = list(argv if argv is not None else sys.argv[1:])
    started = datetime.now(UTC)
    header = [
        f"Measured {started:%Y-%m-%d %H:%M} UTC, revision {git_revision()}, on "
        f"{platform.node() or 'this machine'}: {os.cpu_count()} CPUs (shared with the S3 "
        f"server); load average at start {os.getloadavg()[0]:.1f}. TPC-H SF "
        f"{tpch.format_scale_factor(args.scale_factor)}. "
        f"Command: `python bench/storage.py {' '.join(given)}`."
    ]
    print(header[0])
    data = tpch.generate(args.scale_factor)
    report = Report()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-storage-") as tmp:
        sides = Sides(Path(tmp), data.path, s3)
        try:
            bench_ingest(report, sides, args.rounds)
            bench_query(report, sides, args.rounds)
        finally:
            sides.cleanup()
    say(f"total {time.perf_counter() - t0:.0f} s")
    if args.markdown:
        replace_section(args.markdown, SECTION, report.markdown(SECTION, header))
        print(f"\nSection written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
