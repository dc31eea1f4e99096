"""A :class:`QueryResult` holds the same Python values whether it was read through Arrow
(queries over tables) or fetched from DuckDB directly (statements that read no table)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from lakehouse.query import sandbox
from lakehouse.query.output import csv_text, json_rows
from lakehouse.query.result import Column, NanoTimestamp, QueryResult
from tests.query.conftest import EVERY_TYPE

#: Types whose DuckDB value cannot become Arrow's: fetched through Arrow on both paths.
THROUGH_ARROW = {
    "timestamp_ns",
    "interval",
    "bit",
    "bignum",
    "list_of_intervals",
}


class Spy:
    """A connection that records whether a result was read through Arrow."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.arrow = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)

    def sql(self, sql: str) -> Any:
        spy = self

        class Relation:
            def __getattr__(self, name: str) -> Any:
                return getattr(relation, name)

            def to_arrow_table(self) -> pa.Table:
                spy.arrow = True
                return relation.to_arrow_table()

        relation = self.con.sql(sql)
        return Relation()


def both(sql: str, max_rows: int | None = None) -> tuple[QueryResult, QueryResult, bool]:
    """``sql`` read through Arrow, and fetched directly; and whether the latter used Arrow."""
    con = sandbox.connect()
    try:
        through_arrow = QueryResult.from_arrow(con.sql(sql).to_arrow_table(), max_rows)
        spy = Spy(con)
        direct = QueryResult.from_duckdb(spy, sql, max_rows)  # type: ignore[arg-type]
    finally:
        con.close()
    return through_arrow, direct, spy.arrow


@pytest.mark.parametrize("expression", EVERY_TYPE, ids=lambda e: e.rpartition(" AS ")[2])
def test_each_type_has_the_same_values_fetched_directly_as_through_arrow(
    expression: str,
) -> None:
    through_arrow, direct, used_arrow = both(f"SELECT {expression}")
    if expression.endswith(" AS timetz"):  # Arrow's value drops the offset: see below
        assert through_arrow.values[0][0] == direct.values[0][0].replace(tzinfo=None)
    else:
        assert repr(direct.values) == repr(through_arrow.values)  # NaN, -0.0, types count
    assert direct.columns == through_arrow.columns
    assert used_arrow is (expression.rpartition(" AS ")[2] in THROUGH_ARROW)


def test_a_statement_of_every_type_prints_the_same_either_way() -> None:
    through_arrow, direct, _ = both("SELECT " + ", ".join(EVERY_TYPE))
    assert json_rows(direct) == json_rows(through_arrow)
    assert csv_text(direct) == csv_text(through_arrow)


def test_values_are_python_values_of_arrow_kind() -> None:
    _, direct, used_arrow = both(
        "SELECT 7::HUGEINT AS h, MAP {'a': 1} AS m, [1, 2]::INTEGER[2] AS a, "
        "'6ba7b810-9dad-11d1-80b4-00c04fd430c8'::UUID AS u"
    )
    assert not used_arrow
    assert [v[0] for v in direct.values] == [
        pa.scalar(7, pa.decimal128(38, 0)).as_py(),
        [("a", 1)],
        [1, 2],
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    ]
    assert direct.columns == (
        Column("h", numeric=True),
        Column("m"),
        Column("a"),
        Column("u"),
    )


def test_an_unsigned_hugeint_above_the_signed_range_keeps_its_value_fetched_directly() -> None:
    # DuckDB hands it to Arrow as a 128-bit decimal, which wraps: the Arrow path is wrong
    through_arrow, direct, _ = both("SELECT 170141183460469231731687303715884105729::UHUGEINT AS u")
    assert direct.values == ([2**127 + 1],)
    assert through_arrow.values != direct.values


def test_a_time_with_time_zone_keeps_its_offset_fetched_directly() -> None:
    # DuckDB hands it to Arrow as the local time without its offset: the Arrow path is wrong
    through_arrow, direct, used_arrow = both("SELECT TIMETZ '01:02:03+05' AS z")
    assert not used_arrow
    assert json_rows(direct) == [{"z": "01:02:03+05:00"}]
    assert json_rows(through_arrow) == [{"z": "01:02:03"}]


def test_timestamps_with_nanoseconds_print_all_nine_digits_in_every_format() -> None:
    sql = (
        "SELECT TIMESTAMP_NS '2024-01-02 03:04:05.123456789' AS t, "
        "TIMESTAMP_NS '1969-12-31 23:59:59.999999999' AS before_epoch, "
        "TIMESTAMP_NS '2024-01-02 03:04:05.123456' AS whole_micros, NULL::TIMESTAMP_NS AS n"
    )
    through_arrow, direct, used_arrow = both(sql)
    assert used_arrow and repr(direct.values) == repr(through_arrow.values)
    t, before, whole, missing = (column[0] for column in direct.values)
    assert isinstance(t, NanoTimestamp) and t.nanosecond == 789
    assert (t.isoformat(), str(t)) == (
        "2024-01-02T03:04:05.123456789",
        "2024-01-02 03:04:05.123456789",
    )
    assert before.isoformat() == "1969-12-31T23:59:59.999999999"
    assert type(whole) is datetime and whole.isoformat() == "2024-01-02T03:04:05.123456"
    assert missing is None
    assert json_rows(direct)[0]["t"] == "2024-01-02T03:04:05.123456789"
    assert "2024-01-02T03:04:05.123456789,1969-12-31T23:59:59.999999999" in csv_text(direct)
    aware = pa.table({"t": pa.array([1_700_000_000_000_000_001], pa.timestamp("ns", "UTC"))})
    [[value]] = QueryResult.from_arrow(aware).values
    assert value.isoformat() == "2023-11-14T22:13:20.000000001+00:00"


def test_max_rows_holds_the_first_rows_and_counts_them_all() -> None:
    through_arrow, direct, _ = both("SELECT range AS n FROM range(25005)", max_rows=3)
    for result in (through_arrow, direct):
        assert result.values == ([0, 1, 2],)
        assert (result.num_rows, result.num_held, result.complete) == (25005, 3, False)


def test_no_rows_keeps_the_columns() -> None:
    through_arrow, direct, _ = both("SELECT 1 AS a, 'x' AS b WHERE false")
    assert direct == through_arrow
    assert direct.column_names == ["a", "b"]
    assert list(direct.rows()) == []
    assert direct.complete


def test_repeated_column_names_stay_apart() -> None:
    _, direct, _ = both("SELECT 1 AS a, 2 AS a")
    assert list(direct.rows()) == [(1, 2)]
    assert csv_text(direct) == "a,a\n1,2\n"
