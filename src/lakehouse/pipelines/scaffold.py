"""``lakehouse pipeline new NAME``: a small pipeline that runs as it is, to start from.

:func:`new_pipeline` writes ``<pipelines_dir>/<name>/`` with every part a pipeline has:

* ``pipeline.yaml`` — a ``folder`` source reading ``data/*.csv``, the silver model's
  merge settings and checks of each built-in kind;
* ``data/orders.csv`` — six rows, one of them a later version of an earlier key;
* ``silver/<name>_orders.sql`` — typed, trimmed and deduplicated (the newest version of a
  key wins), merged incrementally on the key;
* ``gold/<name>_revenue_by_status.sql`` — an aggregate of silver;
* ``checks/<name>_no_negative_amounts.sql`` — a custom check;
* ``silver/<name>_orders.test.yaml`` and ``gold/<name>_revenue_by_status.test.yaml`` —
  model unit tests (:mod:`lakehouse.pipelines.modeltests`).

Table names start with the pipeline name, so a new pipeline never writes into another
one's tables. Nothing is written when the folder exists already.
"""

from __future__ import annotations

import re
from pathlib import Path

from lakehouse.pipelines.definition import DEFAULT_PIPELINES_DIR, display_path
from lakehouse.pipelines.errors import PipelineConfigError

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

_PIPELINE = """\
# {name}: raw CSV -> bronze (as ingested) -> silver (typed, one row per key) -> gold.
# Contract: docs/pipelines-spec.md.
#   lakehouse plan {name}    bind every model and check without running (misspelled columns fail)
#   lakehouse test {name}    run the model unit tests (*.test.yaml next to each model)
#   lakehouse run {name}     ingest, build, check on a run branch; merge into main when clean
name: {name}
description: Orders by status (scaffolded by `lakehouse pipeline new`)

sources:
  - name: {name}
    type: folder
    path: data                 # relative to this folder; an absolute path or ${{VAR}} works too
    format: csv
    tables:
      - {{table: {name}_orders, pattern: "orders*.csv"}}

models:
  # Merged on the key; a run reads only the bronze rows ingested since the last one.
  silver.{name}_orders: {{materialized: incremental, unique_key: [order_id]}}
  # gold.{name}_revenue_by_status is rebuilt on every run (the default, full_refresh).

checks:
  - {{model: bronze.{name}_orders, type: row_count, min: 1}}
  - {{model: silver.{name}_orders, type: not_null, columns: [order_id, status, amount]}}
  - {{model: silver.{name}_orders, type: unique, columns: [order_id]}}
  - model: silver.{name}_orders
    type: accepted_values
    column: status
    values: [open, shipped, cancelled]
  - {{model: gold.{name}_revenue_by_status, type: row_count, min: 1}}
"""

_DATA = """\
order_id,customer,status,amount,updated_at
1,alice,open,120.50,2026-01-01 09:00:00
2,bob,open,80.00,2026-01-01 10:00:00
3,carol,shipped,42.25,2026-01-01 11:00:00
4,dave,cancelled,15.00,2026-01-01 12:00:00
1,alice,shipped,120.50,2026-01-02 09:00:00
5, erin ,open,60.75,2026-01-02 10:00:00
"""

_SILVER = """\
-- silver.{name}_orders: one row per order_id, typed, names trimmed.
-- A file may hold several versions of an order: the newest (updated_at, then the latest
-- ingestion) wins, so that the merge on unique_key sees each key once.
SELECT
    CAST(order_id AS BIGINT) AS order_id,
    TRIM(CAST(customer AS VARCHAR)) AS customer,
    LOWER(TRIM(CAST(status AS VARCHAR))) AS status,
    CAST(amount AS DECIMAL(12, 2)) AS amount,
    CAST(updated_at AS TIMESTAMP) AS updated_at
FROM (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY order_id
            ORDER BY updated_at DESC, _ingested_at DESC, _source_file DESC
        ) AS _version
    FROM bronze.{name}_orders
) AS latest
WHERE _version = 1
"""

_GOLD = """\
-- gold.{name}_revenue_by_status: orders and revenue per status.
SELECT
    status,
    count(*) AS orders,
    sum(amount) AS revenue
FROM silver.{name}_orders
GROUP BY status
ORDER BY status
"""

_CHECK = """\
-- Fails for every order with a negative amount (a check fails when it returns rows).
SELECT order_id, amount FROM silver.{name}_orders WHERE amount < 0
"""

_SILVER_TEST = """\
# Unit tests of silver/{name}_orders.sql: `lakehouse test {name}` runs them in DuckDB.
tests:
  - name: the newest version of an order wins, names are trimmed
    given:
      bronze.{name}_orders:
        - order_id: 1
          customer: alice
          status: open
          amount: 120.5
          updated_at: "2026-01-01 09:00:00"
          _ingested_at: "2026-01-01 09:05:00"
          _source_file: a.csv
        - order_id: 1
          customer: alice
          status: Shipped
          amount: 120.5
          updated_at: "2026-01-02 09:00:00"
          _ingested_at: "2026-01-02 09:05:00"
          _source_file: b.csv
        - order_id: 2
          customer: " bob "
          status: open
          amount: 80
          updated_at: "2026-01-01 10:00:00"
          _ingested_at: "2026-01-01 10:05:00"
          _source_file: a.csv
    expect:
      - {{order_id: 1, customer: alice, status: shipped, amount: 120.50}}
      - {{order_id: 2, customer: bob, status: open, amount: 80.00}}
"""

_GOLD_TEST = """\
# Unit tests of gold/{name}_revenue_by_status.sql.
tests:
  - name: revenue adds up per status
    given:
      silver.{name}_orders:
        - {{order_id: 1, status: open, amount: 10.5}}
        - {{order_id: 2, status: open, amount: 4.5}}
        - {{order_id: 3, status: shipped, amount: 7}}
    expect:
      - {{status: open, orders: 2, revenue: 15}}
      - {{status: shipped, orders: 1, revenue: 7}}
"""


def new_pipeline(name: str, pipelines_dir: str | Path | None = None) -> list[Path]:
    """Write the scaffold of pipeline ``name``; returns the files written.

    Raises :class:`PipelineConfigError` for an invalid name or an existing folder (and
    then writes nothing).
    """
    if not _NAME.match(name):
        raise PipelineConfigError(
            f"invalid pipeline name {name!r}: a lowercase letter, then lowercase letters, "
            "digits or '_' (at most 40); it prefixes the pipeline's table names"
        )
    base = Path(pipelines_dir) if pipelines_dir is not None else DEFAULT_PIPELINES_DIR
    folder = base / name
    if folder.exists():
        raise PipelineConfigError(f"{display_path(folder)} exists already; choose another name")
    files = {
        "pipeline.yaml": _PIPELINE,
        "data/orders.csv": _DATA,
        f"silver/{name}_orders.sql": _SILVER,
        f"silver/{name}_orders.test.yaml": _SILVER_TEST,
        f"gold/{name}_revenue_by_status.sql": _GOLD,
        f"gold/{name}_revenue_by_status.test.yaml": _GOLD_TEST,
        f"checks/{name}_no_negative_amounts.sql": _CHECK,
    }
    written: list[Path] = []
    for relative, template in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(name=name), encoding="utf-8")
        written.append(path)
    return written


__all__ = ["new_pipeline"]
