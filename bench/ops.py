"""Benchmarks of backup, restore and the catalog check (issue 7).

Run from the repository root::

    .venv/bin/python bench/ops.py [--quick] [--mb 400] [--reps 5] [--workers N]

Sections:

1. full backup throughput (MB/s) vs a plain recursive copy (``shutil.copytree``) of the
   same warehouse files — target: ratio >= 0.7 — and, as the ceiling of any checksummed
   copy on this machine, sha256 of the same bytes alone;
2. restore throughput (MB/s, into the original location, checksums verified while copying,
   catalog imported with every hash re-computed, integrity check included) vs
   ``shutil.copytree`` of the same bytes;
3. incremental backup of an unchanged lakehouse: seconds and bytes copied (target: 0 bytes,
   seconds) — every reused object confirmed by size, mtime and a sampled hash — side by side
   with ``--full-hash`` (every reused object re-read and hashed), interleaved;
4. ``catalog check`` time vs number of files referenced (1k, 4k, 16k data files).

The machine is noisy: every number is a median over ``--reps`` runs, and each ratio
compares series measured interleaved (A, B, A, B, …) in the same run. Targets missed are
reported, not fatal.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import lakehouse
from lakehouse.client import Lakehouse
from lakehouse.ops import check, create_backup, restore_backup

MB = 1_000_000


def build_lakehouse(home: Path, total_mb: int, file_mb: int = 8) -> Lakehouse:
    """Tables of incompressible rows: about ``total_mb`` of Parquet in ``file_mb`` files."""
    lh = lakehouse.connect(home, create=True)
    cat = lh.catalog("main")
    cat.create_namespace("bronze")
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("blob", pa.binary())])
    files = max(1, total_mb // file_mb)
    tables = max(1, min(8, files // 4))
    row_bytes = 64 * 1024
    rows_per_file = file_mb * MB // row_bytes
    n = 0
    for t in range(tables):
        cat.create_table(f"bronze.t{t}", schema)
    for f in range(files):
        table = lh.table(f"bronze.t{f % tables}", "main")
        data = pa.table(
            {
                "id": pa.array(range(n, n + rows_per_file), pa.int64()),
                "blob": pa.array([os.urandom(row_bytes) for _ in range(rows_per_file)]),
            },
            schema=schema,
        )
        n += rows_per_file
        table.append(data)
    lh.create_branch("dev")
    lh.create_tag("v1")
    return lh


def build_many_files(home: Path, count: int) -> Lakehouse:
    """One table whose current snapshot has ``count`` small data files (``add_files``)."""
    lh = lakehouse.connect(home, create=True)
    cat = lh.catalog("main")
    cat.create_namespace("bronze")
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False)])
    table = cat.create_table("bronze.many", schema)
    data_dir = home / "warehouse" / "bronze" / "many_files"
    data_dir.mkdir(parents=True)
    batch: list[str] = []
    for i in range(count):
        path = data_dir / f"{i:06d}-{uuid.uuid4().hex[:6]}.parquet"
        pq.write_table(pa.table({"id": pa.array([i], pa.int64())}, schema=schema), path)
        batch.append("file://" + str(path))
        if len(batch) == 2000 or i == count - 1:
            table = lh.table("bronze.many", "main")
            table.add_files(batch)
            batch = []
    return lh


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def sync() -> None:
    if hasattr(os, "sync"):
        os.sync()


def section_backup_restore(
    root: Path, total_mb: int, reps: int, workers: int | None
) -> dict[str, float]:
    home = root / "home"
    lh = build_lakehouse(home, total_mb)
    warehouse = home / "warehouse"
    size = tree_bytes(warehouse)
    print(f"lakehouse: {size / MB:.0f} MB in {sum(1 for _ in warehouse.rglob('*.*'))} files")

    from lakehouse.storage.objects import _hash_local

    files = [str(p) for p in warehouse.rglob("*") if p.is_file()]
    backup_s: list[float] = []
    copy_s: list[float] = []
    hash_s: list[float] = []
    for _ in range(reps):
        hash_s.append(timed(lambda: [_hash_local(f) for f in files]))
        dest = root / "dest"
        shutil.rmtree(dest, ignore_errors=True)
        sync()
        backup_s.append(timed(lambda d=dest: create_backup(lh, str(d), workers=workers)))
        sync()
        plain = root / "plain"
        shutil.rmtree(plain, ignore_errors=True)
        sync()
        copy_s.append(timed(lambda p=plain: shutil.copytree(warehouse, p)))
        sync()
    backup_rate = size / MB / median(backup_s)
    copy_rate = size / MB / median(copy_s)
    hash_rate = size / MB / median(hash_s)
    print(
        f"sha256 alone:  median {median(hash_s):6.2f}s  {hash_rate:7.1f} MB/s   "
        f"(reading and hashing the same bytes once, no copy: {hash_rate / copy_rate:.2f} "
        "of copytree)"
    )
    print(
        f"full backup:   median {median(backup_s):6.2f}s  {backup_rate:7.1f} MB/s   "
        f"copytree {median(copy_s):6.2f}s  {copy_rate:7.1f} MB/s   "
        f"ratio {backup_rate / copy_rate:.2f} (target >= 0.70)"
    )

    incr_s: list[float] = []
    full_s: list[float] = []
    copied: list[int] = []
    dest = root / "dest"
    for _ in range(reps):
        started = time.perf_counter()
        result = create_backup(lh, str(dest), workers=workers)
        incr_s.append(time.perf_counter() - started)
        copied.append(result.copied_bytes)
        started = time.perf_counter()
        again = create_backup(lh, str(dest), workers=workers, full_hash=True)
        full_s.append(time.perf_counter() - started)
        copied.append(again.copied_bytes)
    print(
        f"incremental:   median {median(incr_s):6.2f}s  copied {max(copied)} bytes "
        f"({median(incr_s) / median(backup_s):.2f} of a full backup's time; reused objects "
        "confirmed by size, mtime and a sampled hash)"
    )
    print(
        f"  --full-hash: median {median(full_s):6.2f}s  (every reused object re-read; "
        f"sampled / full-hash {median(incr_s) / median(full_s):.2f})"
    )

    settings = lh.settings
    lh.close()
    aside = root / "home-aside"
    os.replace(home, aside)
    restore_s: list[float] = []
    plain_s: list[float] = []
    objects = dest / "objects"
    for _ in range(reps):
        shutil.rmtree(home, ignore_errors=True)
        sync()
        restore_s.append(timed(lambda: restore_backup(str(dest), settings, workers=workers)))
        sync()
        plain = root / "plain"
        shutil.rmtree(plain, ignore_errors=True)
        sync()
        plain_s.append(timed(lambda p=plain: shutil.copytree(objects, p)))
        sync()
    shutil.rmtree(home, ignore_errors=True)
    os.replace(aside, home)
    restore_rate = size / MB / median(restore_s)
    plain_rate = size / MB / median(plain_s)
    print(
        f"restore:       median {median(restore_s):6.2f}s  {restore_rate:7.1f} MB/s   "
        f"copytree {median(plain_s):6.2f}s  {plain_rate:7.1f} MB/s   "
        f"ratio {restore_rate / plain_rate:.2f}"
    )
    return {
        "backup_ratio": backup_rate / copy_rate,
        "restore_ratio": restore_rate / plain_rate,
        "incremental_s": median(incr_s),
    }


def section_check(root: Path, sizes: list[int], reps: int) -> None:
    print("catalog check vs files referenced:")
    base: float | None = None
    for count in sizes:
        home = root / f"many-{count}"
        lh = build_many_files(home, count)
        times = []
        files = 0
        for _ in range(reps):
            started = time.perf_counter()
            report = check(lh)
            times.append(time.perf_counter() - started)
            assert report.ok, report.summary()
            files = report.files_checked
        t = median(times)
        per_file = t / files * 1e6
        base = base or per_file
        print(
            f"  {files:>6} files: median {t:6.3f}s  {per_file:6.1f} µs/file  "
            f"(x{per_file / base:.2f} per file vs the smallest)"
        )
        lh.close()
        shutil.rmtree(home)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (small sizes)")
    parser.add_argument("--mb", type=int, default=400, help="lakehouse size for sections 1-3")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    mb = 48 if args.quick else args.mb
    reps = 2 if args.quick else args.reps
    sizes = [500, 2000] if args.quick else [1000, 4000, 16000]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), {mb} MB, {reps} reps")
    with tempfile.TemporaryDirectory(
        prefix="lakehouse-bench-ops-", dir=os.environ.get("TMPDIR")
    ) as d:
        root = Path(d)
        results = section_backup_restore(root, mb, reps, args.workers)
        section_check(root, sizes, reps)
    missed = results["backup_ratio"] < 0.7
    print(
        "target: full backup >= 0.7 of copytree: "
        + ("MISSED" if missed else "met")
        + f" ({results['backup_ratio']:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
