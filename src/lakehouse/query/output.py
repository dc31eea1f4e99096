"""Query results as JSON rows, CSV text and display strings (``lakehouse sql --output …``).

The functions take a :class:`~lakehouse.query.result.QueryResult` (or an Arrow table,
read as one): they work on Python values only, so printing a result needs no pyarrow.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lakehouse.query.result import QueryResult

if TYPE_CHECKING:
    import pyarrow as pa


#: Decimals with at most this many digits become JSON numbers (they round-trip exactly).
_EXACT_DIGITS = 15


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: numbers stay numbers (long decimals become text), times ISO text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        if len(value.as_tuple().digits) <= _EXACT_DIGITS:
            return int(value) if value == value.to_integral_value() else float(value)
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        # pyarrow gives maps as lists of (key, value) tuples
        return [jsonable(v) for v in value]
    return str(value)


def as_result(table: QueryResult | pa.Table) -> QueryResult:
    """``table`` as a :class:`~lakehouse.query.result.QueryResult` (Arrow tables converted)."""
    return table if isinstance(table, QueryResult) else QueryResult.from_arrow(table)


def json_rows(table: QueryResult | pa.Table) -> list[dict[str, Any]]:
    """The held rows of ``table`` as JSON-able objects (a repeated column name: the last)."""
    result = as_result(table)
    names = result.column_names
    return [{k: jsonable(v) for k, v in zip(names, row, strict=True)} for row in result.rows()]


def text(value: Any) -> str:
    """``value`` for a text cell (``None`` → empty; exact decimals; ISO times)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (Decimal, int, float, str)):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(jsonable(value), separators=(",", ":"))
    return str(jsonable(value))


def csv_text(table: QueryResult | pa.Table) -> str:
    """The held rows of ``table`` as CSV with a header line (NULL as an empty field)."""
    result = as_result(table)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.column_names)
    for row in result.rows():  # by position, as the header: repeated names stay apart
        writer.writerow([text(value) for value in row])
    return out.getvalue()


__all__ = ["as_result", "csv_text", "json_rows", "jsonable", "text"]
