"""A query result as Python values, column by column, whichever way it was read.

:class:`QueryResult` is what the output code (:mod:`lakehouse.query.output`, ``lakehouse
sql``) prints. It is made from an Arrow table (:meth:`QueryResult.from_arrow`: the read
path of queries over tables) or straight from a DuckDB connection
(:meth:`QueryResult.from_duckdb`: statements that read no table, without importing
pyarrow or numpy). Both give the **same Python values** for the same data, so every
output format prints the same text either way:

* the values are those of ``pyarrow``'s ``to_pylist()`` — the read path's values;
* ``from_duckdb`` fetches with DuckDB's ``fetchall()`` and, where DuckDB's Python
  values differ from Arrow's, converts them: ``HUGEINT``/``UHUGEINT`` become
  :class:`~decimal.Decimal` (Arrow has no 128-bit integer), a ``MAP`` a list of
  ``(key, value)`` tuples, a fixed-size ``ARRAY`` a list, a ``UUID`` its text;
* a result with a type whose DuckDB value cannot be turned into Arrow's
  (``INTERVAL``: DuckDB gives a ``timedelta`` with months as 30 days, Arrow months, days
  and nanoseconds; ``BIT``, ``BIGNUM``, ``TIMESTAMP_NS`` and any type not listed in
  :data:`SAME_IN_PYTHON`) is read through Arrow by ``from_duckdb`` too, so it prints
  exactly as it would from a table;
* from Arrow, a timestamp with nanoseconds that do not fit in Python's microseconds is a
  :class:`NanoTimestamp` (a ``datetime`` whose ISO text has nine fractional digits); the
  others stay plain ``datetime`` values.

Three differences remain, all where the Arrow path is wrong. DuckDB hands ``TIME WITH
TIME ZONE`` to Arrow as the local time without its offset; fetched directly it keeps it
(``12:00:00+02:00``). A ``UHUGEINT`` above
2**127 - 1 reaches Arrow as a wrapped 128-bit decimal (a negative number) and fetched
directly keeps its value. DuckDB's infinite ``DATE``/``TIMESTAMP`` values are fetched as
Python's largest and smallest values, which a real ``9999-12-31`` also is: a result
holding one of those is read through Arrow, where a real date converts and an infinity
fails as it does from a table (``lakehouse sql`` says to cast it to text).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from duckdb.sqltypes import DuckDBPyType

#: DuckDB type ids whose ``fetchall()`` value is the value Arrow's ``to_pylist()`` gives.
SAME_IN_PYTHON = frozenset(
    {
        "null",
        "boolean",
        "tinyint",
        "smallint",
        "integer",
        "bigint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "float",
        "double",
        "decimal",
        "varchar",  # JSON too
        "blob",
        "enum",
        "date",
        "time",
        "timestamp",
        "timestamp_s",
        "timestamp_ms",
        "timestamp with time zone",  # the sandbox's time zone is UTC on both paths
        "struct",
        "list",
        "union",
    }
)

#: DuckDB type ids whose ``fetchall()`` value is converted to Arrow's (see the module).
CONVERTED = frozenset({"hugeint", "uhugeint", "map", "array", "uuid"})

#: DuckDB type ids right-aligned in a table of text (Arrow: int*, uint*, float, double,
#: decimal; DuckDB's 128-bit integers are Arrow decimals).
_NUMERIC_IDS = frozenset(
    {
        "tinyint",
        "smallint",
        "integer",
        "bigint",
        "hugeint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "uhugeint",
        "float",
        "double",
        "decimal",
    }
)

_Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class Column:
    """One result column: its name and whether it holds numbers (right-aligned as text)."""

    name: str
    numeric: bool = False


@dataclass(frozen=True)
class QueryResult:
    """Rows of a query as Python values, column by column.

    ``values`` holds one list per column, each as long as :attr:`num_held`.
    ``num_rows`` counts every row of the result; when the result was cut
    (``max_rows``), the lists hold the first rows only and :attr:`complete` is false.
    """

    columns: tuple[Column, ...]
    values: tuple[list[Any], ...]
    num_rows: int

    @property
    def column_names(self) -> list[str]:
        """The column names, in order (they may repeat)."""
        return [c.name for c in self.columns]

    @property
    def num_columns(self) -> int:
        """How many columns the result has."""
        return len(self.columns)

    @property
    def complete(self) -> bool:
        """True if every row of the result is held."""
        return self.num_held == self.num_rows

    @property
    def num_held(self) -> int:
        """How many rows are held (the first ones)."""
        return len(self.values[0]) if self.values else 0

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """The held rows as tuples, by position (duplicate column names stay apart)."""
        return zip(*self.values, strict=True)

    @classmethod
    def from_arrow(cls, table: pa.Table, max_rows: int | None = None) -> QueryResult:
        """The rows of an Arrow table (the first ``max_rows`` of them when given)."""
        shown = table if max_rows is None else table.slice(0, max_rows)
        columns = tuple(Column(f.name, _arrow_numeric(f.type)) for f in table.schema)
        values = tuple(_python_values(column) for column in shown.columns)
        return cls(columns, values, table.num_rows)

    @classmethod
    def from_duckdb(
        cls, con: duckdb.DuckDBPyConnection, sql: str, max_rows: int | None = None
    ) -> QueryResult:
        """Run ``sql`` on ``con`` and hold its rows (the first ``max_rows`` when given).

        The statement is bound first to learn its column types; it then runs once,
        fetched with ``fetchall()`` when every column's type is one of
        :data:`SAME_IN_PYTHON` or :data:`CONVERTED` (nested types: all the types inside
        too), else read as an Arrow table into :meth:`from_arrow` — the same values
        either way. :class:`duckdb.Error` propagates.
        """
        relation = con.sql(sql)
        if relation is None:
            raise ValueError("the statement returned no result")
        names, types = relation.columns, relation.types
        converters = [_converter(kind) for kind in types]
        if any(c is None for c in converters):
            return cls.from_arrow(relation.to_arrow_table(), max_rows)
        columns = tuple(
            Column(name, kind.id in _NUMERIC_IDS) for name, kind in zip(names, types, strict=True)
        )
        con.execute(sql)
        if max_rows is None:
            rows = con.fetchall()
            total = len(rows)
        else:
            rows = con.fetchmany(max_rows)
            total = len(rows)
            while more := len(con.fetchmany(_COUNT_CHUNK)):  # count the rows not held
                total += more
        values = tuple(
            [v if v is None or convert is _same else convert(v) for v in column]  # type: ignore[misc]
            for column, convert in zip(_columns_of(rows, len(columns)), converters, strict=True)
        )
        if any(
            kind.id in _TEMPORAL_IDS and any(v in _PYTHON_LIMITS for v in column)
            for kind, column in zip(types, values, strict=True)
        ):
            # DuckDB's infinities arrive as Python's largest and smallest values, the same
            # as a real 9999-12-31: Arrow tells them apart (an infinity does not convert)
            return cls.from_arrow(con.sql(sql).to_arrow_table(), max_rows)
        return cls(columns, values, total)


#: Date and timestamp types: their infinities are fetched as :data:`_PYTHON_LIMITS`.
_TEMPORAL_IDS = frozenset(
    ("date", "timestamp", "timestamp_s", "timestamp_ms", "timestamp with time zone")
)
_PYTHON_LIMITS = frozenset(
    (
        date.min,
        date.max,
        datetime.min,
        datetime.max,
        datetime.min.replace(tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
    )
)

#: Rows fetched at a time to count the rows a cut result does not hold.
_COUNT_CHUNK = 10_000


class NanoTimestamp(datetime):
    """A timestamp with nanoseconds: the ``datetime`` of its microseconds, plus
    :attr:`nanosecond` (0-999) beyond them, which :meth:`isoformat` prints."""

    #: 0 on what ``datetime`` arithmetic or ``replace`` derives (they keep the class)
    nanosecond: int = 0

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        """ISO 8601 text with nine fractional digits (``timespec`` is ignored)."""
        text = super().isoformat(sep, "microseconds")
        end = text.index(".", 11) + 7  # after the six digits of the microseconds
        return f"{text[:end]}{self.nanosecond:03d}{text[end:]}"

    def __str__(self) -> str:
        return self.isoformat(" ")

    @classmethod
    def of(cls, value: datetime, nanosecond: int) -> NanoTimestamp:
        """``value`` with ``nanosecond`` nanoseconds beyond its microseconds."""
        out = cls(
            value.year, value.month, value.day, value.hour, value.minute, value.second,
            value.microsecond, value.tzinfo,
        )  # fmt: skip
        out.nanosecond = nanosecond
        return out


def _python_values(column: pa.ChunkedArray) -> list[Any]:
    """``column.to_pylist()``, and timestamps with nanoseconds as :class:`NanoTimestamp`.

    pyarrow refuses a nanosecond timestamp that is not a whole number of microseconds
    (it asks for pandas); the values are split into microseconds and the rest.
    """
    import pyarrow as pa

    kind = column.type
    if not (pa.types.is_timestamp(kind) and kind.unit == "ns"):
        values: list[Any] = column.to_pylist()
        return values
    nanos = column.cast(pa.int64()).to_pylist()
    micros = pa.array(
        [None if n is None else n // 1000 for n in nanos], pa.timestamp("us", kind.tz)
    ).to_pylist()
    return [
        m if n is None or n % 1000 == 0 else NanoTimestamp.of(m, n % 1000)
        for m, n in zip(micros, nanos, strict=True)
    ]


def _columns_of(rows: list[tuple[Any, ...]], width: int) -> list[Sequence[Any]]:
    if not rows:
        return [[] for _ in range(width)]
    return list(zip(*rows, strict=True))


def _arrow_numeric(kind: pa.DataType) -> bool:
    return kind.num_fields == 0 and str(kind).startswith(
        ("int", "uint", "float", "double", "decimal")
    )


def _same(value: Any) -> Any:
    return value


def _children(kind: DuckDBPyType) -> list[tuple[str, DuckDBPyType]]:
    """The named child types of a nested type (an array's size and an enum's values dropped)."""
    return [(name, cast("DuckDBPyType", child)) for name, child in kind.children]


def _converter(kind: DuckDBPyType) -> _Convert | None:
    """How to turn DuckDB's Python value of type ``kind`` into Arrow's (``None``: cannot)."""
    type_id = kind.id
    if type_id in ("hugeint", "uhugeint"):
        return Decimal
    if type_id == "uuid":
        return str
    if type_id in ("list", "array"):
        item = _converter(_children(kind)[0][1])
        if item is None:
            return None
        if type_id == "list" and item is _same:
            return _same
        return lambda v: [None if x is None else item(x) for x in v]
    if type_id == "struct":
        fields = {name: _converter(child) for name, child in _children(kind)}
        if any(c is None for c in fields.values()):
            return None
        if all(c is _same for c in fields.values()):
            return _same
        converted = {name: c for name, c in fields.items() if c is not None}
        return lambda v: {k: None if x is None else converted[k](x) for k, x in v.items()}
    if type_id == "union":
        members = [_converter(child) for _, child in _children(kind)]
        # the value of the active member, untagged: only safe if no member needs converting
        return _same if all(c is _same for c in members) else None
    if type_id == "map":
        return _map_converter(kind)
    if type_id == "time with time zone":
        return _same  # with its offset (Arrow's value drops it: see the module)
    return _same if type_id in SAME_IN_PYTHON else None


def _map_converter(kind: DuckDBPyType) -> _Convert | None:
    (_, key_type), (_, value_type) = _children(kind)
    key, value = _converter(key_type), _converter(value_type)
    if key is None or value is None:
        return None
    # DuckDB gives {key: value}, or {"key": [...], "value": [...]} for unhashable keys
    unhashable = key_type.id in ("list", "array", "struct", "map", "union")

    def convert(v: dict[Any, Any]) -> list[tuple[Any, Any]]:
        pairs = zip(v["key"], v["value"], strict=True) if unhashable else v.items()
        return [(None if k is None else key(k), None if x is None else value(x)) for k, x in pairs]

    return convert


__all__ = ["CONVERTED", "SAME_IN_PYTHON", "Column", "NanoTimestamp", "QueryResult"]
