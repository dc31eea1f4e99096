"""Iceberg's ``NessieCatalog`` in Spark on Nessie API v1, against one or more servers.

    python spark_nessie_v1_scenario.py JARS_DIR SUFFIX NAME=ROOT=WAREHOUSE [...]

For each server (``ROOT`` is its base URL; the catalogs use ``ROOT/api/v1`` with
``client-api-version=1``): Spark creates a namespace and a table on ``main`` and inserts;
a branch ``dev<SUFFIX>`` is created at main's head (v1 REST); Spark inserts on the branch
through a second catalog bound to it, and reads both; the branch is merged into main (v1
REST) and Spark reads main again; then everything is dropped. Prints one JSON transcript
per server, keyed by NAME, so that the servers' transcripts compare equal when they
behave alike.
"""

from __future__ import annotations

import glob
import json
import sys
import urllib.request
from typing import Any

from pyspark.sql import SparkSession

jars_dir, suffix, servers = sys.argv[1], sys.argv[2], sys.argv[3:]
branch = f"dev{suffix}"
builder = (
    SparkSession.builder.master("local[2]")
    .appName("lakehouse-nessie-v1")
    .config("spark.jars", ",".join(sorted(glob.glob(f"{jars_dir}/*.jar"))))
    .config(
        "spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
    )
    .config("spark.ui.enabled", "false")
    .config("spark.ui.showConsoleProgress", "false")
    .config("spark.sql.shuffle.partitions", "2")
)
for server in servers:
    name, root, warehouse = server.split("=", 2)
    for catalog, ref in ((name, "main"), (f"{name}_dev", branch)):
        prefix = f"spark.sql.catalog.{catalog}"
        builder = (
            builder.config(prefix, "org.apache.iceberg.spark.SparkCatalog")
            .config(f"{prefix}.catalog-impl", "org.apache.iceberg.nessie.NessieCatalog")
            .config(f"{prefix}.uri", f"{root}/api/v1")
            .config(f"{prefix}.ref", ref)
            .config(f"{prefix}.client-api-version", "1")
            .config(f"{prefix}.cache-enabled", "false")
            .config(f"{prefix}.warehouse", warehouse)
        )
spark = builder.getOrCreate()
spark.sparkContext.setLogLevel("ERROR")


def rest(root: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{root}/api/v1/{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
    return json.loads(text) if text else None


def rows(sql: str) -> list[list[Any]]:
    return sorted([list(r) for r in spark.sql(sql).collect()])


out: dict[str, list[list[Any]]] = {}
ns = f"v1ns{suffix}"
try:
    for server in servers:
        name, root, _ = server.split("=", 2)
        table, on_dev = f"{name}.{ns}.t", f"{name}_dev.{ns}.t"
        steps: list[list[Any]] = []
        spark.sql(f"CREATE NAMESPACE {name}.{ns}")
        spark.sql(f"CREATE TABLE {table} (id bigint, s string) USING iceberg")
        spark.sql(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b')")
        head = rest(root, "GET", "trees/tree/main")["hash"]
        created = rest(
            root,
            "POST",
            "trees/tree?sourceRefName=main",
            {"type": "BRANCH", "name": branch, "hash": head},
        )
        steps.append(["branch", created["hash"] == head])
        spark.sql(f"INSERT INTO {on_dev} VALUES (3, 'c')")
        steps.append(["main", rows(f"SELECT * FROM {table}")])
        steps.append(["dev", rows(f"SELECT * FROM {on_dev}")])
        dev_head = rest(root, "GET", f"trees/tree/{branch}")["hash"]
        log = rest(root, "GET", f"trees/tree/{branch}/log?maxRecords=1")["logEntries"]
        steps.append(["dev log", [log[0]["commitMeta"]["hash"] == dev_head]])
        merged = rest(
            root,
            "POST",
            f"trees/branch/main/merge?expectedHash={rest(root, 'GET', 'trees/tree/main')['hash']}",
            {"fromRefName": branch, "fromHash": dev_head},
        )
        steps.append(["merge", [merged["wasApplied"], merged["wasSuccessful"]]])
        steps.append(["main after merge", rows(f"SELECT * FROM {table}")])
        spark.sql(f"DROP TABLE {table}")
        spark.sql(f"DROP NAMESPACE {name}.{ns}")
        steps.append(["tables after drop", rows(f"SHOW TABLES IN {name}_dev.{ns}")])
        rest(root, "DELETE", f"trees/branch/{branch}?expectedHash={dev_head}")
        out[name] = steps
finally:
    print(json.dumps(out))
    spark.stop()
