"""Benchmark: the TPC-H demo pipeline on Spark against DuckDB, same inputs, same catalog.

Run from the repository root (services from ``scripts/services/``: PostgreSQL, MinIO;
Spark from ``scripts/services/spark.sh install`` and ``jars``)::

    .venv/bin/python bench/spark.py [--scale-factor 1] [--rounds 1] [--master local[2]]

One lakehouse in the cluster profile: a fresh PostgreSQL database served by our catalog
server (uvicorn in a thread; Spark talks to it over the Nessie API v2), tables on MinIO.
Each run works on its own branch made from the empty catalog (``ref=``, so runs never
see each other's tables) and does the whole pipeline: ingest of the cached TPC-H CSV files
(the same code for both engines), eight silver merges, three gold tables, every check.
Runs are interleaved (DuckDB, Spark, DuckDB, …); the Spark session is started once
before timing (its start-up is reported apart). Prints the wall time of each run, the
medians, the models-and-checks time (ingestion excluded) and the Spark/DuckDB ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _service(name: str, what: str) -> str:
    import subprocess

    script = REPO / "scripts" / "services" / f"{name}.sh"
    out = subprocess.run(["bash", str(script), what], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-factor", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=1, help="runs per engine")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument(
        "--catalog", choices=("postgres", "sqlite"), default="postgres", help="catalog store"
    )
    args = parser.parse_args(argv)

    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    from lakehouse import tpch
    from lakehouse.catalog import open_store
    from lakehouse.client import connect
    from lakehouse.pipelines import run_pipeline
    from lakehouse.pipelines.engines.spark import spark_session, stop_spark_session
    from lakehouse.server.app import make_server

    data = tpch.generate(args.scale_factor).path
    base = make_url(_service("postgres", "url"))
    database = f"lh_bench_spark_{uuid.uuid4().hex[:8]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    if args.catalog == "postgres":
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        url = base.set(database=database).render_as_string(hide_password=False)
    else:
        import tempfile

        url = f"sqlite:///{tempfile.mkdtemp(prefix='bench-spark-')}/catalog.db"
    store = open_store(url)
    server = make_server(store, "127.0.0.1", 0, log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    s3 = {
        "endpoint": _service("minio", "url"),
        "access_key_id": _service("minio", "access-key"),
        "secret_access_key": _service("minio", "secret-key"),
    }
    os.environ["TPCH_DATA"] = str(data)
    pipeline = REPO / "pipelines" / "tpch"
    walls: dict[str, list[float]] = {"duckdb": [], "spark": []}
    compute: dict[str, list[float]] = {"duckdb": [], "spark": []}
    try:
        lh = connect(
            url,
            profile="cluster" if args.catalog == "postgres" else "embedded",
            warehouse=f"s3://{{bucket}}/bench-spark-{uuid.uuid4().hex[:8]}",
            s3=s3,
            spark={
                "master": args.master,
                "catalog_uri": f"http://127.0.0.1:{port}/api/v2",
                "conf": {"spark.driver.memory": args.driver_memory},
            },
        )
        empty = lh.resolve("main").hash
        started = time.perf_counter()
        spark_session(lh.settings)
        print(f"spark session start-up: {time.perf_counter() - started:.1f} s", flush=True)
        for i in range(args.rounds):
            for engine in ("duckdb", "spark"):
                branch = f"bench/{engine}-{i}-{uuid.uuid4().hex[:6]}"
                lh.create_branch(branch, f"main@{empty}")
                started = time.perf_counter()
                result = run_pipeline(lh, pipeline, ref=branch, engine=engine)
                wall = time.perf_counter() - started
                if not result.ok:
                    print(f"{engine} run failed: {result.error or result.failed_checks}")
                    return 1
                work = sum(m.seconds for m in result.models) + sum(c.seconds for c in result.checks)
                walls[engine].append(wall)
                compute[engine].append(work)
                print(
                    f"SF {args.scale_factor:g} {engine:6} run {i + 1}: {wall:7.1f} s wall, "
                    f"{work:7.1f} s models+checks",
                    flush=True,
                )
        duck, spark = (statistics.median(walls[e]) for e in ("duckdb", "spark"))
        duck_work, spark_work = (statistics.median(compute[e]) for e in ("duckdb", "spark"))
        print(
            f"SF {args.scale_factor:g} median wall: duckdb {duck:.1f} s, spark {spark:.1f} s, "
            f"ratio spark/duckdb {spark / duck:.2f}x"
        )
        print(
            f"SF {args.scale_factor:g} median models+checks: duckdb {duck_work:.1f} s, "
            f"spark {spark_work:.1f} s, ratio {spark_work / duck_work:.2f}x"
        )
        lh.close()
    finally:
        stop_spark_session()
        server.should_exit = True
        thread.join(timeout=30)
        store.close()
        if args.catalog == "postgres":
            with psycopg.connect(admin, autocommit=True) as conn:
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                conn.execute(drop.format(sql.Identifier(database)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
