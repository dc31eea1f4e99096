"""What a query reads and what can be pushed down (sqlglot analysis, no catalog)."""

from __future__ import annotations

import pytest
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.schema import Schema
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from lakehouse.query.analysis import (
    TableName,
    check_statement,
    parse,
    pushdowns,
    strip_terminator,
    tables_read,
)
from lakehouse.query.errors import SqlSyntaxError, UnsupportedQueryError

ORDERS = TableName("silver", "orders")
CUSTOMERS = TableName("bronze", "customers")
SCHEMAS = {
    ORDERS: Schema(
        NestedField(1, "id", LongType()),
        NestedField(2, "region", StringType()),
        NestedField(3, "amount", DoubleType()),
        NestedField(4, "day", DateType()),
        NestedField(5, "price", DecimalType(10, 2)),
        NestedField(6, "paid", BooleanType()),
        NestedField(7, "ts", TimestamptzType()),
        NestedField(8, "customer", LongType()),
    ),
    CUSTOMERS: Schema(NestedField(1, "id", LongType()), NestedField(2, "name", StringType())),
}


def pushed(sql: str, table: TableName = ORDERS) -> str:
    """The pushed filter of ``table`` as PyIceberg prints it."""
    return str(pushdowns(parse(sql), SCHEMAS)[table].row_filter)


def columns(sql: str, table: TableName = ORDERS) -> set[str] | None:
    found = pushdowns(parse(sql), SCHEMAS)[table].columns
    return None if found is None else set(found)


# -- statements and tables ----------------------------------------------------------------


def test_one_query_passes_the_check() -> None:
    check_statement("WITH x AS (SELECT 1) SELECT * FROM x")
    check_statement("EXPLAIN SELECT 1")
    check_statement("DESCRIBE silver.orders")


@pytest.mark.parametrize(
    ("sql", "error", "fragment"),
    [
        ("SELEC 1", SqlSyntaxError, 'syntax error at or near "SELEC"'),
        ("SELECT 1; SELECT 2", UnsupportedQueryError, "2 statements"),
        ("CREATE TABLE x (a INT)", UnsupportedQueryError, "not CREATE"),
        ("INSERT INTO a.b VALUES (1)", UnsupportedQueryError, "not INSERT"),
        ("", UnsupportedQueryError, "no SQL statement"),
    ],
)
def test_bad_statements_are_refused_in_one_line(
    sql: str, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as info:
        check_statement(sql)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_tables_read_skips_ctes_functions_and_system_schemas() -> None:
    sql = """
        WITH recent AS (SELECT * FROM silver.orders WHERE day > DATE '2024-01-01')
        SELECT * FROM recent JOIN bronze.customers c ON c.id = recent.customer
        WHERE EXISTS (SELECT 1 FROM gold.kpis) AND 1 IN (SELECT 1 FROM read_parquet('x'))
        UNION ALL SELECT * FROM information_schema.tables
    """
    assert sorted(str(t) for t in tables_read(sql)) == [
        "bronze.customers",
        "gold.kpis",
        "silver.orders",
    ]


def test_tables_read_falls_back_to_duckdb_for_syntax_sqlglot_does_not_know() -> None:
    sql = "SELECT * FROM silver.orders"
    assert tables_read(sql, None) == [ORDERS]
    # DuckDB's own parse tree is used when sqlglot gives up
    from lakehouse.query.analysis import _duckdb_tables

    assert _duckdb_tables("SELECT * FROM silver.orders o JOIN gold.kpis k USING (id)") == [
        ORDERS,
        TableName("gold", "kpis"),
    ]


def test_strip_terminator_keeps_comments_and_strings() -> None:
    assert strip_terminator("SELECT ';' AS x;") == "SELECT ';' AS x"
    assert strip_terminator("-- a\nSELECT 1 -- b\n;\n-- c") == "-- a\nSELECT 1 -- b\n \n-- c"


# -- pushdown -------------------------------------------------------------------------------


def test_simple_predicates_are_pushed() -> None:
    text = pushed(
        "SELECT * FROM silver.orders WHERE region = 'EU' AND id >= 10 AND day < '2024-02-01' "
        "AND price BETWEEN 1.5 AND 3 AND paid AND customer IN (1, 2) AND region LIKE 'E%' "
        "AND ts >= TIMESTAMPTZ '2024-01-01 00:00:00+00:00' AND amount IS NOT NULL"
    )
    for fragment in (
        "EqualTo(term=Reference(name='region'), literal=literal('EU'))",
        "GreaterThanOrEqual(term=Reference(name='id'), literal=LongLiteral(10))",
        "LessThan(term=Reference(name='day'), literal=DateLiteral(19754))",
        "GreaterThanOrEqual(term=Reference(name='price'), literal=DecimalLiteral(Decimal('1.50')))",
        "LessThanOrEqual(term=Reference(name='price'), literal=DecimalLiteral(Decimal('3.00')))",
        "EqualTo(term=Reference(name='paid'), literal=BooleanLiteral(True))",
        "In(",
        "StartsWith(term=Reference(name='region'), literal=literal('E'))",
        "NotNull(term=Reference(name='amount'))",
        "Reference(name='ts')",
    ):
        assert fragment in text, fragment


def test_literal_on_the_left_is_flipped() -> None:
    assert pushed("SELECT * FROM silver.orders o WHERE 10 < o.id") == (
        "GreaterThan(term=Reference(name='id'), literal=LongLiteral(10))"
    )


@pytest.mark.parametrize(
    "where",
    [
        "amount > 1",  # float range: DuckDB sorts NaN above every number
        "amount BETWEEN 1 AND 2",
        "id = 2.5",  # not an integer: no exact literal
        "price = 1.555",  # more decimals than the column's scale
        "id + 1 = 3",  # an expression, not a column
        "lower(region) = 'eu'",
        "region = customer::VARCHAR",
        "customer NOT IN (1, NULL)",  # never true
        "region LIKE '%U'",  # not a prefix
        "day = '2024-13-45'",  # not a date
    ],
)
def test_unsafe_or_inexact_predicates_are_not_pushed(where: str) -> None:
    assert pushed(f"SELECT * FROM silver.orders WHERE {where}") == str(AlwaysTrue())


def test_or_is_pushed_only_when_both_sides_are() -> None:
    assert "Or(" in pushed("SELECT * FROM silver.orders WHERE id = 1 OR region = 'US'")
    assert pushed("SELECT * FROM silver.orders WHERE id = 1 OR id + 1 = 5") == str(AlwaysTrue())


def test_predicates_of_the_null_supplying_side_of_a_left_join_are_not_pushed() -> None:
    sql = (
        "SELECT * FROM silver.orders o LEFT JOIN bronze.customers c ON c.id = o.customer "
        "WHERE c.name IS NULL AND o.region = 'EU'"
    )
    assert pushed(sql, CUSTOMERS) == str(AlwaysTrue())
    assert "region" in pushed(sql, ORDERS)


@pytest.mark.parametrize("join", ["RIGHT JOIN", "FULL JOIN", "ASOF JOIN", "POSITIONAL JOIN"])
def test_no_pushdown_through_joins_that_filtering_would_change(join: str) -> None:
    on = "" if join == "POSITIONAL JOIN" else " ON c.id >= o.customer"
    sql = f"SELECT * FROM silver.orders o {join} bronze.customers c{on} WHERE o.region = 'EU'"
    assert pushed(sql, ORDERS) == str(AlwaysTrue())


def test_inner_join_predicates_go_to_their_own_table() -> None:
    sql = (
        "SELECT o.id, c.name FROM silver.orders o JOIN bronze.customers c ON c.id = o.customer "
        "WHERE o.id = 1 AND c.name = 'x' AND o.customer = c.id"
    )
    assert pushed(sql, ORDERS) == "EqualTo(term=Reference(name='id'), literal=LongLiteral(1))"
    assert pushed(sql, CUSTOMERS) == "EqualTo(term=Reference(name='name'), literal=literal('x'))"


def test_a_table_read_twice_gets_the_or_of_both_needs() -> None:
    sql = (
        "SELECT * FROM silver.orders WHERE id = 1 "
        "UNION ALL SELECT * FROM silver.orders WHERE id = 2"
    )
    assert pushed(sql).startswith("Or(")
    unfiltered = "SELECT * FROM silver.orders WHERE id = 1 UNION ALL SELECT * FROM silver.orders"
    assert pushed(unfiltered) == str(AlwaysTrue())


def test_predicates_inside_ctes_and_subqueries_are_pushed() -> None:
    sql = "WITH x AS (SELECT * FROM silver.orders WHERE id = 7) SELECT count(*) FROM x"
    assert pushed(sql) == "EqualTo(term=Reference(name='id'), literal=LongLiteral(7))"


def test_outer_filters_on_a_cte_are_not_pushed_into_it() -> None:
    sql = "WITH x AS (SELECT * FROM silver.orders) SELECT * FROM x WHERE x.id = 7"
    assert pushed(sql) == str(AlwaysTrue())


def test_columns_are_collected_per_table() -> None:
    sql = (
        "SELECT o.id, c.name FROM silver.orders o JOIN bronze.customers c "
        "ON c.id = o.customer WHERE o.region = 'EU'"
    )
    assert columns(sql) == {"id", "customer", "region"}
    assert columns(sql, CUSTOMERS) == {"id", "name"}
    assert columns("SELECT * FROM silver.orders") == {f.name for f in SCHEMAS[ORDERS].fields}
    assert columns("SELECT count(*) FROM silver.orders") == {"id"}  # keeps the row count


def test_unresolvable_queries_read_everything() -> None:
    result = pushdowns(parse("SELECT nope FROM silver.orders WHERE id = 1"), SCHEMAS)
    assert str(result[ORDERS].row_filter) == str(AlwaysTrue())
    assert result[ORDERS].columns is None


def test_sampled_tables_are_not_filtered_first() -> None:
    sql = "SELECT * FROM silver.orders USING SAMPLE 10 ROWS WHERE id = 1"
    assert pushed(sql) == str(AlwaysTrue())
