"""What the sandboxed SQL read path costs a user's query (issue 16, item 1).

Run from the repository root::

    .venv/bin/python bench/query.py [--quick] [--rows N] [--repeat N] [--markdown OUT.md]

A user's setup: an embedded lakehouse in a temporary folder, ``silver.orders`` (``--rows``
rows written by 8 appends, so 8 data files) and ``silver.customers``; queries as a user
types them into ``lakehouse sql`` / ``Lakehouse.sql``: a point lookup, an aggregate, a
join, and ``EXPLAIN``.

Sections, each two series measured interleaved (A, B, A, B, …) in one run:

1. **query latency** — ``Lakehouse.sql`` (the sandbox: parse-tree check, a fresh locked
   DuckDB connection allowed exactly the planned files) against the path before the
   sandbox (the same planning and reading, on one reused DuckDB connection without
   locks, as the thread-shared connection was);
2. **statement check** — :func:`lakehouse.query.sandbox.check_read_only` (DuckDB's parse
   tree, ``EXPLAIN`` unwrapped) against the statement-kind check it replaced
   (``extract_statements`` only).

Numbers are medians and paired ratios; targets are reported, not fatal (``--strict``
makes them exit 1). ``--markdown FILE`` writes the section "SQL read path sandbox
(bench/query.py)" of FILE.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from _common import (
    REPO,
    Report,
    Table,
    git_revision,
    median,
    paired_ratio,
    ratio_iqr,
    replace_section,
    say,
    seconds,
    timed,
)

from lakehouse.client import Lakehouse, connect
from lakehouse.query import session
from lakehouse.query.sandbox import check_read_only, close_cached, parser

SECTION = "## SQL read path sandbox (bench/query.py)"

QUERIES = {
    "point lookup": "SELECT * FROM silver.orders WHERE id = 4242",
    "aggregate": "SELECT region, count(*), sum(amount) FROM silver.orders GROUP BY region",
    "join": (
        "SELECT c.name, sum(o.amount) AS total FROM silver.orders o "
        "JOIN silver.customers c ON c.id = o.customer GROUP BY c.name ORDER BY total DESC"
    ),
    "explain": "EXPLAIN SELECT region, count(*) FROM silver.orders GROUP BY region",
}


def build(home: Path, rows: int) -> Lakehouse:
    """The user's lakehouse: orders in 8 appends, 100 customers."""
    lh = connect(home, create=True)
    catalog = lh.catalog("main")
    catalog.create_namespace("silver")
    per = rows // 8
    orders = None
    for part in range(8):
        ids = pa.array(range(part * per, (part + 1) * per), pa.int64())
        batch = pa.table(
            {
                "id": ids,
                "customer": pc.remainder(ids, 100),
                "region": pa.array(["EU", "US", "APAC", "LATAM"] * (per // 4 + 1))[:per],
                "amount": pc.multiply(pc.cast(ids, pa.float64()), 0.5),
            }
        )
        if orders is None:
            orders = catalog.create_table("silver.orders", schema=batch.schema)
        orders.append(batch)
    customers = pa.table(
        {"id": pa.array(range(100), pa.int64()), "name": [f"c{i}" for i in range(100)]}
    )
    catalog.create_table("silver.customers", schema=customers.schema).append(customers)
    return lh


def micros(value: float) -> str:
    """``850 µs``."""
    return f"{value * 1e6:,.0f} µs"


def unlocked_connection() -> duckdb.DuckDBPyConnection:
    """The connection every query shared before the sandbox: reused, no locks."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET python_enable_replacements = false")
    return con


def interleaved(
    a: Callable[[], object], b: Callable[[], object], repeat: int
) -> tuple[list[float], list[float]]:
    """``repeat`` samples of each, alternating which goes first."""
    xs: list[float] = []
    ys: list[float] = []
    a()
    b()  # warm both
    for i in range(repeat):
        if i % 2:
            ys.append(timed(b))
            xs.append(timed(a))
        else:
            xs.append(timed(a))
            ys.append(timed(b))
    return xs, ys


def main() -> int:
    parser_ = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser_.add_argument("--quick", action="store_true", help="smoke run (small, fast)")
    parser_.add_argument("--rows", type=int, default=400_000)
    parser_.add_argument("--repeat", type=int, default=40)
    parser_.add_argument("--markdown", type=Path)
    parser_.add_argument("--strict", action="store_true")
    args = parser_.parse_args()
    rows = 40_000 if args.quick else args.rows
    repeat = 10 if args.quick else args.repeat
    report = Report()

    with tempfile.TemporaryDirectory(prefix="lh-bench-query-") as tmp:
        say(f"building the lakehouse ({rows:,} orders)")
        lh = build(Path(tmp) / "home", rows)
        shared = unlocked_connection()
        before = session(lh, connection=shared)

        table = Table(
            f"Query latency, {rows:,} orders in 8 files ({repeat} interleaved samples each)",
            [
                "query",
                "before (unlocked, reused)",
                "sandboxed, repeated",
                "ratio",
                "sandboxed, new connection",
                "ratio",
            ],
        )
        worst = 0.0
        for label, sql in QUERIES.items():
            say(f"query: {label}")
            expected = before.execute(sql)
            got = lh.sql(sql)
            assert label == "explain" or got.sort_by(
                [(n, "ascending") for n in got.column_names]
            ).equals(expected.sort_by([(n, "ascending") for n in expected.column_names]))
            xs, ys = interleaved(
                lambda sql=sql: before.execute(sql), lambda sql=sql: lh.sql(sql), repeat
            )

            def cold(sql: str = sql) -> object:
                close_cached()
                return lh.sql(sql)

            xs2, zs = interleaved(lambda sql=sql: before.execute(sql), cold, repeat)
            worst = max(worst, median(ys) - median(xs))
            table.rows.append(
                [
                    label,
                    seconds(median(xs)),
                    seconds(median(ys)),
                    ratio_iqr(paired_ratio(xs, ys)),
                    seconds(median(zs)),
                    ratio_iqr(paired_ratio(xs2, zs)),
                ]
            )
        table.notes.append(
            "before: the planning and reading of today, on one reused DuckDB connection "
            "without locks (the thread-shared connection queries used before the sandbox); "
            "all run the parse-tree check, whose own cost is the next table; repeated: the "
            "thread's locked connection for the same files is reused; new connection: the "
            "cache is emptied before each sample (a query over files not read just before, "
            "e.g. each model of a pipeline run)"
        )
        report.add(table)
        report.check(
            "sandbox overhead per repeated query (median, worst query)",
            seconds(worst),
            "<= 10 ms",
            worst <= 0.010,
        )

        checks = Table(
            f"Statement check ({repeat * 10} interleaved samples each)",
            ["query", "statement kind only", "parse-tree check", "ratio"],
        )
        for label, sql in QUERIES.items():
            xs, ys = interleaved(
                lambda sql=sql: parser().extract_statements(sql),
                lambda sql=sql: check_read_only(sql),
                repeat * 10,
            )
            checks.rows.append(
                [label, micros(median(xs)), micros(median(ys)), ratio_iqr(paired_ratio(xs, ys))]
            )
        report.add(checks)
        shared.close()
        lh.close()

    summary = report.summary()
    print("\n" + summary.text())
    if args.markdown:
        body = report.markdown(
            SECTION,
            [f"Revision {git_revision()}; `.venv/bin/python bench/query.py`."],
        )
        replace_section(args.markdown if args.markdown.is_absolute() else REPO / args.markdown,
                        SECTION, body)  # fmt: skip
    missed = [c for c in report.checks if not c.ok]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
