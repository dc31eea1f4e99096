"""SQL over a reference: branch-specific data, pruning, deletes, errors."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from pyiceberg.manifest import DataFileContent
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import DateType, DoubleType, LongType, NestedField, StringType

from lakehouse import query
from lakehouse.client import Lakehouse
from lakehouse.query.errors import (
    ForbiddenQueryError,
    QueryExecutionError,
    SqlSyntaxError,
    TableNotFoundError,
    UnsupportedQueryError,
)
from tests.query.conftest import add_delete_file, make_table, orders


def ids(lh: Lakehouse, sql: str, ref: str | None = None) -> list[int]:
    result = lh.sql(sql, ref)
    return sorted(result.column(0).to_pylist())


def test_tables_are_visible_as_namespace_dot_table(lh: Lakehouse) -> None:
    make_table(lh, "silver.orders", orders([1, 2, 3]))
    result = lh.sql("SELECT count(*) AS n, sum(amount) AS total FROM silver.orders")
    assert result.to_pylist() == [{"n": 3, "total": 9.0}]


def test_only_the_tables_a_query_reads_are_planned(lh: Lakehouse) -> None:
    make_table(lh, "silver.orders", orders([1]))
    make_table(lh, "silver.other", orders([2]))
    make_table(lh, "gold.unused", orders([3]))
    plan = query.plan(lh, "WITH x AS (SELECT * FROM silver.orders) SELECT * FROM x")
    assert list(plan.tables) == ["silver.orders"]
    assert plan.ref == "main"
    assert plan.to_json()["tables"][0]["table"] == "silver.orders"


def test_each_ref_sees_its_own_data(lh: Lakehouse) -> None:
    make_table(lh, "silver.orders", orders([1, 2]))
    lh.create_branch("dev")
    lh.catalog("dev").load_table("silver.orders").append(orders([3]))
    lh.create_tag("before", "main")
    lh.catalog("main").load_table("silver.orders").append(orders([4]))

    assert ids(lh, "SELECT id FROM silver.orders") == [1, 2, 4]
    assert ids(lh, "SELECT id FROM silver.orders", "dev") == [1, 2, 3]
    assert ids(lh, "SELECT id FROM silver.orders", "before") == [1, 2]
    assert ids(lh, "SELECT id FROM silver.orders", "main~1") == [1, 2]


def test_a_table_only_on_a_branch_is_unknown_elsewhere(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    make_table(lh, "gold.kpis", orders([1]), branch="dev")
    assert ids(lh, "SELECT id FROM gold.kpis", "dev") == [1]
    with pytest.raises(TableNotFoundError, match=r"table 'gold\.kpis' does not exist on 'main'"):
        lh.sql("SELECT * FROM gold.kpis")


def test_queries_join_tables_and_use_ctes(lh: Lakehouse) -> None:
    make_table(lh, "silver.orders", orders([1, 2, 3]))
    make_table(
        lh,
        "silver.customers",
        pa.table({"id": pa.array([1, 3], pa.int64()), "name": ["ann", "bob"]}),
    )
    result = lh.sql(
        "WITH o AS (SELECT * FROM silver.orders WHERE id > 1) "
        "SELECT o.id, c.name FROM o LEFT JOIN silver.customers c ON c.id = o.id ORDER BY o.id"
    )
    assert result.to_pylist() == [{"id": 2, "name": None}, {"id": 3, "name": "bob"}]


def test_names_resolve_case_insensitively_like_duckdb(lh: Lakehouse) -> None:
    make_table(lh, "silver.orders", orders([5]))
    assert ids(lh, "SELECT ID FROM Silver.ORDERS") == [5]
    assert ids(lh, 'SELECT "id" FROM "silver"."orders"') == [5]


def test_an_empty_table_reads_as_no_rows_with_its_columns(lh: Lakehouse) -> None:
    catalog = lh.catalog("main")
    catalog.create_namespace("silver")
    catalog.create_table("silver.empty", schema=orders([]).schema)
    result = lh.sql("SELECT * FROM silver.empty")
    assert result.num_rows == 0
    assert result.column_names == ["id", "region", "amount"]
    plan = query.plan(lh, "SELECT * FROM silver.empty").tables["silver.empty"]
    assert plan.reader == "empty" and plan.data_files == []


# -- pruning ---------------------------------------------------------------------------------


def _partitioned(lh: Lakehouse) -> None:
    catalog = lh.catalog("main")
    catalog.create_namespace("silver")
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "region", StringType(), required=False),
        NestedField(3, "amount", DoubleType(), required=False),
        NestedField(4, "day", DateType(), required=False),
    )
    spec = PartitionSpec(
        PartitionField(2, 1000, IdentityTransform(), "region"),
        PartitionField(4, 1001, IdentityTransform(), "day"),
    )
    table = catalog.create_table("silver.sales", schema, partition_spec=spec)
    for day, regions in ((1, ("EU", "US", "APAC")), (2, ("EU", "US"))):
        moment = dt.date(2024, 1, day)
        for n, region in enumerate(regions):
            rows = pa.table(
                {
                    "id": pa.array([day * 100 + n], pa.int64()),
                    "region": [region],
                    "amount": [1.0],
                    "day": pa.array([moment], pa.date32()),
                }
            )
            table.append(rows)


def test_partition_filters_prune_the_planned_files(lh: Lakehouse) -> None:
    _partitioned(lh)
    everything = query.plan(lh, "SELECT * FROM silver.sales").tables["silver.sales"]
    assert len(everything.data_files) == 5

    sql = "SELECT id FROM silver.sales WHERE region = 'EU'"
    eu = query.plan(lh, sql).tables["silver.sales"]
    assert len(eu.data_files) == 2
    assert all("region=EU" in path for path in eu.data_files)
    assert ids(lh, sql) == [100, 200]

    sql = "SELECT id FROM silver.sales WHERE day >= DATE '2024-01-02'"
    day2 = query.plan(lh, sql).tables["silver.sales"]
    assert len(day2.data_files) == 2
    assert ids(lh, sql) == [200, 201]


def test_metrics_prune_files_of_unpartitioned_tables(lh: Lakehouse) -> None:
    table = make_table(lh, "silver.orders", orders([1, 2, 3]))
    table.append(orders([10, 11]))
    table.append(orders([20, 21]))
    plan = query.plan(lh, "SELECT * FROM silver.orders WHERE id BETWEEN 10 AND 15")
    scan = plan.tables["silver.orders"]
    assert len(scan.data_files) == 1
    assert scan.predicates == ('"orders"."id" BETWEEN 10 AND 15',)
    assert ids(lh, "SELECT id FROM silver.orders WHERE id BETWEEN 10 AND 15") == [10, 11]


def test_a_query_reading_a_table_twice_plans_what_both_need(lh: Lakehouse) -> None:
    table = make_table(lh, "silver.orders", orders([1, 2]))
    table.append(orders([10, 11]))
    table.append(orders([20, 21]))
    sql = (
        "SELECT id FROM silver.orders WHERE id = 1 "
        "UNION ALL SELECT id FROM silver.orders WHERE id = 21"
    )
    assert len(query.plan(lh, sql).tables["silver.orders"].data_files) == 2
    assert ids(lh, sql) == [1, 21]


# -- deletes ---------------------------------------------------------------------------------


def test_rows_deleted_with_pyiceberg_are_gone(lh: Lakehouse) -> None:
    table = make_table(lh, "silver.orders", orders([1, 2, 3, 4]))
    table.delete("id = 2")
    assert ids(lh, "SELECT id FROM silver.orders") == [1, 3, 4]


def test_positional_delete_files_are_applied(lh: Lakehouse) -> None:
    table = make_table(lh, "silver.orders", orders([1, 2, 3, 4]))
    [path] = query.plan(lh, "SELECT * FROM silver.orders").tables["silver.orders"].data_files
    table = add_delete_file(
        table,
        pa.table({"file_path": [path, path], "pos": pa.array([0, 2], pa.int64())}),
        DataFileContent.POSITION_DELETES,
    )
    plan = query.plan(lh, "SELECT * FROM silver.orders").tables["silver.orders"]
    assert plan.reader == "parquet" and len(plan.delete_files) == 1
    assert ids(lh, "SELECT id FROM silver.orders") == [2, 4]
    assert lh.sql("SELECT count(*) FROM silver.orders").column(0)[0].as_py() == 2
    # the same rows through PyIceberg's reader
    assert sorted(table.scan().to_arrow().column("id").to_pylist()) == [2, 4]


def test_equality_delete_files_apply_to_older_rows_only(lh: Lakehouse) -> None:
    table = make_table(lh, "silver.orders", orders([1, 2, 3]))
    table = add_delete_file(
        table, pa.table({"id": pa.array([2, 3], pa.int64())}), DataFileContent.EQUALITY_DELETES, [1]
    )
    assert ids(lh, "SELECT id FROM silver.orders") == [1]
    table.append(orders([3]))  # newer than the delete: visible
    assert ids(lh, "SELECT id FROM silver.orders") == [1, 3]
    assert ids(lh, "SELECT id FROM silver.orders WHERE id = 3") == [3]


def test_deletes_on_a_branch_do_not_touch_main(lh: Lakehouse) -> None:
    make_table(lh, "silver.orders", orders([1, 2, 3]))
    lh.create_branch("dev")
    lh.catalog("dev").load_table("silver.orders").delete("id >= 2")
    assert ids(lh, "SELECT id FROM silver.orders", "dev") == [1]
    assert ids(lh, "SELECT id FROM silver.orders") == [1, 2, 3]


# -- schema evolution and readers -------------------------------------------------------------


def test_renamed_and_added_columns_read_by_field_id(lh: Lakehouse) -> None:
    table = make_table(lh, "silver.orders", orders([1, 2]))
    with table.update_schema() as update:
        update.rename_column("amount", "total")
        update.add_column("note", StringType())
    table = lh.catalog("main").load_table("silver.orders")
    table.append(
        pa.table(
            {
                "id": pa.array([3], pa.int64()),
                "region": ["US"],
                "total": [9.0],
                "note": ["new"],
            }
        )
    )
    plan = query.plan(lh, "SELECT * FROM silver.orders").tables["silver.orders"]
    assert plan.reader == "parquet"
    result = lh.sql("SELECT id, total, note FROM silver.orders ORDER BY id")
    assert result.to_pylist() == [
        {"id": 1, "total": 1.5, "note": None},
        {"id": 2, "total": 3.0, "note": None},
        {"id": 3, "total": 9.0, "note": "new"},
    ]


def test_nested_columns_read_through_arrow(lh: Lakehouse) -> None:
    data = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "tags": pa.array([["a"], ["b", "c"]], pa.list_(pa.string())),
        }
    )
    make_table(lh, "silver.tagged", data)
    sql = "SELECT id, len(tags) AS n FROM silver.tagged WHERE id = 2"
    plan = query.plan(lh, sql).tables["silver.tagged"]
    assert plan.reader == "arrow" and "tags" in (plan.reason or "")
    assert lh.sql(sql).to_pylist() == [{"id": 2, "n": 2}]


# -- errors ----------------------------------------------------------------------------------


def test_unknown_table_names_the_table_and_the_ref(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    with pytest.raises(TableNotFoundError) as info:
        lh.sql("SELECT * FROM silver.nope", "dev")
    assert str(info.value) == "table 'silver.nope' does not exist on 'dev'"
    assert info.value.table == "silver.nope" and info.value.ref == "dev"


def test_syntax_errors_are_one_line(lh: Lakehouse) -> None:
    with pytest.raises(SqlSyntaxError) as info:
        lh.sql("SELECT * FROM silver.orders WHERE")
    assert str(info.value) == 'SQL syntax error: syntax error at or near "WHERE" (line 1)'
    assert "\n" not in str(info.value)


def test_only_queries_run(lh: Lakehouse) -> None:
    with pytest.raises(UnsupportedQueryError, match="not DROP"):
        lh.sql("DROP TABLE silver.orders")


def test_binder_errors_are_one_line(lh: Lakehouse) -> None:
    make_table(lh, "silver.orders", orders([1]))
    with pytest.raises(QueryExecutionError) as info:
        lh.sql("SELECT nope FROM silver.orders")
    assert 'Referenced column "nope" not found' in str(info.value)
    assert "\n" not in str(info.value)


def test_python_variables_are_never_picked_up_as_tables(lh: Lakehouse) -> None:
    shadow = pa.table({"x": [1]})  # noqa: F841 - DuckDB would scan it by name if allowed
    with pytest.raises(QueryExecutionError, match="shadow"):
        lh.sql("SELECT * FROM shadow")


def test_fetch_gives_the_rows_of_sql_as_python_values(lh: Lakehouse) -> None:
    make_table(lh, "s.orders", orders([1, 2]))
    statement = "SELECT id, region FROM s.orders ORDER BY id"
    fetched = query.fetch(lh, statement)
    assert list(fetched.rows()) == [tuple(r.values()) for r in query.sql(lh, statement).to_pylist()]
    assert fetched.column_names == ["id", "region"]


def test_statements_without_a_table_run_one_after_another_errors_or_not(lh: Lakehouse) -> None:
    # they share the thread's locked parser connection: nothing may stay open on it
    assert list(query.fetch(lh, "FROM range(5)", max_rows=2).rows()) == [(0,), (1,)]
    with pytest.raises(QueryExecutionError, match="Could not convert"):
        query.fetch(lh, "SELECT CAST('x' || range AS INTEGER) FROM range(3)")
    assert query.fetch(lh, "SELECT 42 AS n").values == ([42],)
    with pytest.raises(ForbiddenQueryError):
        query.fetch(lh, "COPY (SELECT 1) TO 'x.csv'")
    (at,) = query.fetch(lh, "SELECT TIMESTAMPTZ '2024-01-01 00:00:00+02' AS t").values[0]
    assert at.isoformat() == "2023-12-31T22:00:00+00:00"  # the locked connection's zone: UTC


def test_an_infinite_date_is_an_error_and_the_last_real_date_its_value(lh: Lakehouse) -> None:
    # DuckDB hands both to Python as date.max: only the real one may print as 9999-12-31
    last = query.fetch(lh, "SELECT DATE '9999-12-31' AS d, TIMESTAMP '0001-01-01' AS t")
    assert last.values == ([dt.date(9999, 12, 31)], [dt.datetime(1, 1, 1)])
    for infinite in ("'infinity'::DATE", "'-infinity'::TIMESTAMP", "'infinity'::TIMESTAMPTZ"):
        with pytest.raises(QueryExecutionError, match="cast it to VARCHAR") as info:
            query.fetch(lh, f"SELECT {infinite} AS x")
        assert "\n" not in str(info.value)
    (text,) = query.fetch(lh, "SELECT 'infinity'::DATE::VARCHAR AS x").values
    assert text == ["infinity"]
