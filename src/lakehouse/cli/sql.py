"""``lakehouse sql "SELECT …" [--ref REF] [--output table|json|csv]``: DuckDB over a reference."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from lakehouse.cli._common import Output, RefOpt, State, console, print_json

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.console import Console


class SqlOutput(StrEnum):
    """Output formats of ``lakehouse sql``."""

    TABLE = "table"
    TEXT = "text"  # the global --output's name for a table
    JSON = "json"
    CSV = "csv"


def sql_command(
    ctx: typer.Context,
    query: Annotated[
        str,
        typer.Argument(
            metavar="QUERY", help="One query in DuckDB's SQL dialect ('-' reads it from stdin)."
        ),
    ],
    ref: RefOpt = None,
    output: Annotated[
        SqlOutput | None,
        typer.Option(
            "--output",
            "-o",
            case_sensitive=False,
            help="table, json (an array of row objects) or csv (default: table, or json "
            "with the global --output json).",
            show_default=False,
        ),
    ] = None,
    max_rows: Annotated[
        int, typer.Option("--max-rows", min=1, help="Rows shown by the table output.")
    ] = 1000,
) -> None:
    """Run a query over the tables of a branch, tag or commit (tables are namespace.table).

    Example: lakehouse sql "SELECT o_orderstatus, count(*) FROM silver.orders GROUP BY 1"
    """
    state = State.of(ctx)
    text = sys.stdin.read() if query == "-" else query
    result = state.lakehouse().sql(text, ref)
    chosen = output or (SqlOutput.JSON if state.output is Output.JSON else SqlOutput.TABLE)
    if chosen is SqlOutput.JSON:
        from lakehouse.query.output import json_rows

        print_json(json_rows(result))
    elif chosen is SqlOutput.CSV:
        from lakehouse.query.output import csv_text

        typer.echo(csv_text(result), nl=False)
    else:
        print_table(console(), result, max_rows)


def print_table(out: Console, result: pa.Table, max_rows: int) -> None:
    """The result as a table of text, NULLs marked, with a row count."""
    from rich.table import Table as RichTable
    from rich.text import Text

    from lakehouse.query.output import text

    table = RichTable(box=None, pad_edge=False, header_style="bold")
    for f in result.schema:
        numeric = f.type.num_fields == 0 and str(f.type).startswith(
            ("int", "uint", "float", "double", "decimal")
        )
        table.add_column(f.name, justify="right" if numeric else "left")
    shown = result.slice(0, max_rows)
    for row in shown.to_pylist():
        table.add_row(
            *(
                Text("NULL", style="dim") if value is None else Text(text(value))
                for value in row.values()
            )
        )
    if result.num_columns:
        out.print(table)
    total = result.num_rows
    if total > max_rows:
        out.print(f"({total} rows, first {max_rows} shown; --max-rows or --output csv for all)")
    else:
        out.print(f"({total} row{'' if total == 1 else 's'})")
