"""Query results as JSON rows, CSV text and display strings (``lakehouse sql --output …``)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

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


def json_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The rows of ``table`` as JSON-able objects."""
    return [{k: jsonable(v) for k, v in row.items()} for row in table.to_pylist()]


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


def csv_text(table: pa.Table) -> str:
    """``table`` as CSV with a header line (NULL as an empty field)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        writer.writerow([text(row.get(name)) for name in table.column_names])
    return out.getvalue()


__all__ = ["csv_text", "json_rows", "jsonable", "text"]
