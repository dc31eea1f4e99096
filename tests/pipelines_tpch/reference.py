"""Reference results for the TPC-H pipeline, computed without the pipeline's own SQL.

* :func:`load_reference_tables` loads the generated CSV files into DuckDB tables declared
  with the TPC-H DDL (clause 1.4 of the specification);
* :data:`Q1` and :data:`Q3` are the standard queries (clauses 2.4.1 and 2.4.3) with the
  validation substitution parameters (DELTA = 90; SEGMENT = BUILDING, DATE = 1995-03-15);
* :func:`expected_orders` replays a change batch over ``orders.csv`` in plain Python
  (pyarrow to read, a dict to apply inserts, updates and deletes in file order).
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

DDL = """
CREATE TABLE region (
    r_regionkey INTEGER NOT NULL, r_name CHAR(25) NOT NULL, r_comment VARCHAR(152));
CREATE TABLE nation (
    n_nationkey INTEGER NOT NULL, n_name CHAR(25) NOT NULL, n_regionkey INTEGER NOT NULL,
    n_comment VARCHAR(152));
CREATE TABLE part (
    p_partkey INTEGER NOT NULL, p_name VARCHAR(55) NOT NULL, p_mfgr CHAR(25) NOT NULL,
    p_brand CHAR(10) NOT NULL, p_type VARCHAR(25) NOT NULL, p_size INTEGER NOT NULL,
    p_container CHAR(10) NOT NULL, p_retailprice DECIMAL(15,2) NOT NULL,
    p_comment VARCHAR(23) NOT NULL);
CREATE TABLE supplier (
    s_suppkey INTEGER NOT NULL, s_name CHAR(25) NOT NULL, s_address VARCHAR(40) NOT NULL,
    s_nationkey INTEGER NOT NULL, s_phone CHAR(15) NOT NULL, s_acctbal DECIMAL(15,2) NOT NULL,
    s_comment VARCHAR(101) NOT NULL);
CREATE TABLE partsupp (
    ps_partkey INTEGER NOT NULL, ps_suppkey INTEGER NOT NULL, ps_availqty INTEGER NOT NULL,
    ps_supplycost DECIMAL(15,2) NOT NULL, ps_comment VARCHAR(199) NOT NULL);
CREATE TABLE customer (
    c_custkey INTEGER NOT NULL, c_name VARCHAR(25) NOT NULL, c_address VARCHAR(40) NOT NULL,
    c_nationkey INTEGER NOT NULL, c_phone CHAR(15) NOT NULL, c_acctbal DECIMAL(15,2) NOT NULL,
    c_mktsegment CHAR(10) NOT NULL, c_comment VARCHAR(117) NOT NULL);
CREATE TABLE orders (
    o_orderkey BIGINT NOT NULL, o_custkey INTEGER NOT NULL, o_orderstatus CHAR(1) NOT NULL,
    o_totalprice DECIMAL(15,2) NOT NULL, o_orderdate DATE NOT NULL,
    o_orderpriority CHAR(15) NOT NULL, o_clerk CHAR(15) NOT NULL,
    o_shippriority INTEGER NOT NULL, o_comment VARCHAR(79) NOT NULL);
CREATE TABLE lineitem (
    l_orderkey BIGINT NOT NULL, l_partkey INTEGER NOT NULL, l_suppkey INTEGER NOT NULL,
    l_linenumber INTEGER NOT NULL, l_quantity DECIMAL(15,2) NOT NULL,
    l_extendedprice DECIMAL(15,2) NOT NULL, l_discount DECIMAL(15,2) NOT NULL,
    l_tax DECIMAL(15,2) NOT NULL, l_returnflag CHAR(1) NOT NULL, l_linestatus CHAR(1) NOT NULL,
    l_shipdate DATE NOT NULL, l_commitdate DATE NOT NULL, l_receiptdate DATE NOT NULL,
    l_shipinstruct CHAR(25) NOT NULL, l_shipmode CHAR(10) NOT NULL,
    l_comment VARCHAR(44) NOT NULL);
"""

TABLES = ("region", "nation", "part", "supplier", "partsupp", "customer", "orders", "lineitem")

#: TPC-H Q1, pricing summary report (DELTA = 90).
Q1 = """
select
    l_returnflag, l_linestatus,
    sum(l_quantity) as sum_qty,
    sum(l_extendedprice) as sum_base_price,
    sum(l_extendedprice * (1 - l_discount)) as sum_disc_price,
    sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) as sum_charge,
    avg(l_quantity) as avg_qty,
    avg(l_extendedprice) as avg_price,
    avg(l_discount) as avg_disc,
    count(*) as count_order
from lineitem
where l_shipdate <= date '1998-12-01' - interval '90' day
group by l_returnflag, l_linestatus
order by l_returnflag, l_linestatus
"""

#: TPC-H Q3, shipping priority (SEGMENT = BUILDING, DATE = 1995-03-15), top 10.
Q3 = """
select
    l_orderkey,
    sum(l_extendedprice * (1 - l_discount)) as revenue,
    o_orderdate,
    o_shippriority
from customer, orders, lineitem
where c_mktsegment = 'BUILDING'
    and c_custkey = o_custkey
    and l_orderkey = o_orderkey
    and o_orderdate < date '1995-03-15'
    and l_shipdate > date '1995-03-15'
group by l_orderkey, o_orderdate, o_shippriority
order by revenue desc, o_orderdate
limit 10
"""

Q1_COLUMNS = (
    "l_returnflag",
    "l_linestatus",
    "sum_qty",
    "sum_base_price",
    "sum_disc_price",
    "sum_charge",
    "avg_qty",
    "avg_price",
    "avg_disc",
    "count_order",
)
Q3_COLUMNS = ("l_orderkey", "revenue", "o_orderdate", "o_shippriority")


def load_reference_tables(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    """Create the eight TPC-H tables in ``con`` from the CSV files in ``data_dir``."""
    con.execute(DDL)
    for table in TABLES:
        path = str(data_dir / f"{table}.csv").replace("'", "''")
        # orders and lineitem are change feeds: their files end with an _op column.
        columns = "* EXCLUDE (_op)" if table in ("orders", "lineitem") else "*"
        con.execute(f"INSERT INTO {table} SELECT {columns} FROM read_csv('{path}', header = true)")


def apply_change_files(con: duckdb.DuckDBPyConnection, change_dir: Path) -> None:
    """Apply a change batch (``<table>_changes.csv``, ``_op`` I/U/D) to the reference tables.

    Per key, the batch's row replaces the table's (``I``/``U``) or removes it (``D``).
    """
    keys = {"orders": ["o_orderkey"], "lineitem": ["l_orderkey", "l_linenumber"]}
    for table, key in keys.items():
        path = change_dir / f"{table}_changes.csv"
        if not path.exists():
            continue
        quoted = str(path).replace("'", "''")
        con.execute(f"CREATE OR REPLACE TEMP TABLE changes AS SELECT * FROM read_csv('{quoted}')")
        on = " AND ".join(f"{table}.{k} = changes.{k}" for k in key)
        con.execute(f"DELETE FROM {table} USING changes WHERE {on}")
        con.execute(f"INSERT INTO {table} SELECT * EXCLUDE (_op) FROM changes WHERE _op <> 'D'")


def reference_rows(
    data_dir: Path, query: str, change_dirs: Iterable[Path] = ()
) -> list[tuple[Any, ...]]:
    """Rows of ``query`` over the CSV files of ``data_dir`` (with change batches applied)."""
    with duckdb.connect() as con:
        load_reference_tables(con, data_dir)
        for change_dir in change_dirs:
            apply_change_files(con, change_dir)
        return con.execute(query).fetchall()


def _read_strings(path: Path) -> pa.Table:
    # Every column as a string: the reference does its own typing below.
    names = pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16)).column_names
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    return pacsv.read_csv(path, convert_options=convert)


def _order_row(raw: dict[str, str]) -> tuple[Any, ...]:
    import datetime

    return (
        int(raw["o_orderkey"]),
        int(raw["o_custkey"]),
        raw["o_orderstatus"].strip(),
        decimal.Decimal(raw["o_totalprice"]).quantize(decimal.Decimal("0.01")),
        datetime.date.fromisoformat(raw["o_orderdate"].strip()),
        raw["o_orderpriority"].strip(),
        raw["o_clerk"].strip(),
        int(raw["o_shippriority"]),
        raw["o_comment"].strip(),
    )


ORDER_COLUMNS = (
    "o_orderkey",
    "o_custkey",
    "o_orderstatus",
    "o_totalprice",
    "o_orderdate",
    "o_orderpriority",
    "o_clerk",
    "o_shippriority",
    "o_comment",
)


def expected_orders(
    data_dir: Path, change_files: Iterable[Path] = ()
) -> dict[int, tuple[Any, ...]]:
    """``orders.csv`` with each change file applied in order: order key -> row.

    Rows are typed as in silver (int, str trimmed, Decimal with 2 places, date).
    """
    state: dict[int, tuple[Any, ...]] = {}
    for path in [data_dir / "orders.csv", *change_files]:
        for raw in _read_strings(path).to_pylist():
            row = _order_row(raw)
            op = raw["_op"]
            if op == "D":
                state.pop(row[0], None)
            elif op in ("I", "U"):
                state[row[0]] = row
            else:
                raise AssertionError(f"unknown _op {op!r} in {path}")
    return state


def expected_lineitem_keys(
    data_dir: Path, change_files: Iterable[Path] = ()
) -> set[tuple[int, int]]:
    """(l_orderkey, l_linenumber) of ``lineitem.csv`` with each change file applied."""
    table = pacsv.read_csv(
        data_dir / "lineitem.csv",
        convert_options=pacsv.ConvertOptions(include_columns=["l_orderkey", "l_linenumber"]),
    )
    keys = set(zip(table["l_orderkey"].to_pylist(), table["l_linenumber"].to_pylist(), strict=True))
    for path in change_files:
        changes = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                include_columns=["l_orderkey", "l_linenumber", "_op"]
            ),
        ).to_pylist()
        for change in changes:
            key = (change["l_orderkey"], change["l_linenumber"])
            if change["_op"] == "D":
                keys.discard(key)
            else:
                keys.add(key)
    return keys
