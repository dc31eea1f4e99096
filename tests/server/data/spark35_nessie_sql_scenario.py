"""Nessie's Spark SQL extensions (Spark 3.5) on one or more catalogs, one transcript each.

    python spark35_nessie_sql_scenario.py JARS_DIR SUFFIX NAME=KIND=ROOT=WAREHOUSE[=JSON] [...]

Runs in the test-only venv of ``scripts/tools/spark35.sh``. Each catalog ``NAME`` is one of

* ``v1``: Iceberg's ``NessieCatalog`` with ``uri=ROOT/api/v1`` and no
  ``client-api-version`` (the extensions' default, API v1);
* ``v2``: ``NessieCatalog`` with ``uri=ROOT/api/v2`` and ``client-api-version=2``;
* ``rest``: Iceberg's REST catalog with ``uri=ROOT/iceberg/`` (the extensions find the
  Nessie API through the config's ``nessie.core-base-uri``);

``WAREHOUSE`` is the ``NessieCatalog`` warehouse (unused by ``rest``); ``JSON``, an object,
holds further catalog properties (e.g. S3 credentials). On each: CREATE
BRANCH from main, USE REFERENCE of it, CREATE NAMESPACE/TABLE and INSERT there (main does
not see them), SHOW REFERENCE, SHOW LOG, LIST REFERENCES, MERGE BRANCH into main, main
reads the rows, DROP BRANCH; then the table and namespace are dropped on main. Hashes are
not printed but compared (the branch starts at main's head, the merge's hash is main's new
head, SHOW LOG's first hash is the branch head), so that two servers that behave alike
print equal transcripts. The last stdout line is ``{NAME: [[step, value], ...], ...}``;
a statement that fails records ``["error", <Java exception class>, <message>]`` and ends
that catalog's transcript.
"""

from __future__ import annotations

import glob
import json
import sys
from typing import Any

from pyspark.sql import SparkSession

jars_dir, suffix, targets = sys.argv[1], sys.argv[2], sys.argv[3:]
builder = (
    SparkSession.builder.master("local[2]")
    .appName("lakehouse-nessie-sql")
    .config("spark.jars", ",".join(sorted(glob.glob(f"{jars_dir}/*.jar"))))
    .config(
        "spark.sql.extensions",
        "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions,"
        "org.projectnessie.spark.extensions.NessieSparkSessionExtensions",
    )
    .config("spark.ui.enabled", "false")
    .config("spark.ui.showConsoleProgress", "false")
    .config("spark.sql.shuffle.partitions", "2")
)
for target in targets:
    name, kind, root, warehouse, *extra = target.split("=", 4)
    prefix = f"spark.sql.catalog.{name}"
    builder = builder.config(prefix, "org.apache.iceberg.spark.SparkCatalog").config(
        f"{prefix}.cache-enabled", "false"
    )
    if kind == "rest":
        builder = builder.config(f"{prefix}.type", "rest").config(
            f"{prefix}.uri", f"{root}/iceberg/"
        )
    else:
        builder = (
            builder.config(f"{prefix}.catalog-impl", "org.apache.iceberg.nessie.NessieCatalog")
            .config(f"{prefix}.uri", f"{root}/api/{kind}")
            .config(f"{prefix}.ref", "main")
            .config(f"{prefix}.warehouse", warehouse)
        )
        if kind == "v2":
            builder = builder.config(f"{prefix}.client-api-version", "2")
    for key, value in json.loads(extra[0] if extra else "{}").items():
        builder = builder.config(f"{prefix}.{key}", value)
spark = builder.getOrCreate()
spark.sparkContext.setLogLevel("ERROR")


def rows(sql: str) -> list[list[Any]]:
    return [list(r) for r in spark.sql(sql).collect()]


def run(name: str, kind: str, steps: list[list[Any]]) -> None:
    # names per kind, not per catalog: the same kind on two servers uses the same names
    branch, ns = f"dev_{kind}{suffix}", f"ns_{kind}{suffix}"
    table, other = f"{name}.{ns}.t", f"{name}.{ns}.u"

    spark.sql(f"CREATE NAMESPACE {name}.{ns}")
    spark.sql(f"CREATE TABLE {table} (id bigint, s string) USING iceberg")
    spark.sql(f"INSERT INTO {table} VALUES (1, 'a')")
    [[ref_type, _, main_head]] = [r for r in rows(f"LIST REFERENCES IN {name}") if r[1] == "main"]
    steps.append(["list references: main", ref_type])
    [[ref_type, ref, head]] = rows(f"CREATE BRANCH {branch} IN {name} FROM main")
    steps.append(["create branch", [ref_type, ref == branch, head == main_head]])
    [[ref_type, ref, used]] = rows(f"USE REFERENCE {branch} IN {name}")
    steps.append(["use reference", [ref_type, ref == branch, used == head]])
    spark.sql(f"INSERT INTO {table} VALUES (2, 'b'), (3, 'c')")
    spark.sql(f"CREATE TABLE {other} USING iceberg AS SELECT id * 10 AS id FROM {table}")
    steps.append(["branch: t", sorted(rows(f"SELECT id, s FROM {table}"))])
    steps.append(["branch: u", sorted(rows(f"SELECT id FROM {other}"))])
    [[ref_type, ref, dev_head]] = rows(f"SHOW REFERENCE IN {name}")
    steps.append(["show reference", [ref_type, ref == branch, dev_head != head]])
    log = rows(f"SHOW LOG {branch} IN {name}")
    steps.append(["show log: first is the head", log[0][2] == dev_head])
    since = [r[3] for r in log[: [r[2] for r in log].index(head)]]
    steps.append(["show log: messages since the fork", since])
    listed = {r[1]: r for r in rows(f"LIST REFERENCES IN {name}")}
    steps.append(["list references: branch at its head", listed[branch][2] == dev_head])

    [[ref_type, ref, on_main]] = rows(f"USE REFERENCE main IN {name}")
    steps.append(["use main", [ref_type, ref, on_main == main_head]])
    steps.append(["main: t", sorted(rows(f"SELECT id, s FROM {table}"))])
    steps.append(["main: tables", sorted(r[1] for r in rows(f"SHOW TABLES IN {name}.{ns}"))])
    [[ref, merged]] = rows(f"MERGE BRANCH {branch} INTO main IN {name}")
    steps.append(["merge branch", ref])
    [[ref_type, ref, after]] = rows(f"SHOW REFERENCE IN {name}")
    steps.append(["main after merge", [ref_type, ref, after == merged, after != main_head]])
    steps.append(["main: t after merge", sorted(rows(f"SELECT id, s FROM {table}"))])
    steps.append(["main: u after merge", sorted(rows(f"SELECT id FROM {other}"))])
    steps.append(["drop branch", rows(f"DROP BRANCH {branch} IN {name}")])
    steps.append(
        [
            "list references: branch gone",
            branch not in {r[1] for r in rows(f"LIST REFERENCES IN {name}")},
        ]
    )
    spark.sql(f"DROP TABLE {other}")
    spark.sql(f"DROP TABLE {table}")
    spark.sql(f"DROP NAMESPACE {name}.{ns}")


out: dict[str, list[list[Any]]] = {}
try:
    for target in targets:
        name, kind = target.split("=", 2)[:2]
        steps: list[list[Any]] = []
        out[name] = steps
        try:
            run(name, kind, steps)
        except Exception as e:  # the transcript records the failure
            java = getattr(e, "java_exception", None) or getattr(e, "_origin", None)
            kind = java.getClass().getName() if java is not None else type(e).__name__
            message = str(java.getMessage()) if java is not None else str(e)
            steps.append(["error", kind, message.splitlines()[0] if message else ""])
finally:
    print(json.dumps(out))
    spark.stop()
