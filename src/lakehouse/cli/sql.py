"""``lakehouse sql "SELECT …" [--ref REF] [--output table|tsv|json|csv]``: DuckDB over a reference.

On a terminal the default output is a table for people (``--max-rows`` rows); piped or
redirected it is TSV: a header line, then every row, values whole, NULL as an empty
field, tabs and newlines inside values escaped as ``\t`` and ``\n``. Every format prints
a :class:`~lakehouse.query.result.QueryResult` (:meth:`Lakehouse.fetch
<lakehouse.client.Lakehouse.fetch>`): a statement that names no table prints without
pyarrow, and the same as it would through Arrow.

Without a query, an interactive shell (:mod:`lakehouse.cli.shell`); fed from a pipe
(``lakehouse sql < script.sql``) it runs the script's statements.
"""

from __future__ import annotations

import itertools
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from lakehouse.cli._common import (
    Output,
    RefOpt,
    State,
    console,
    print_json,
    remember_output,
    stdout_is_terminal,
)

if TYPE_CHECKING:
    from rich.console import Console

    from lakehouse.query.result import QueryResult


class SqlOutput(StrEnum):
    """Output formats of ``lakehouse sql``."""

    TABLE = "table"
    TEXT = "text"  # the global --output's name for a table
    TSV = "tsv"
    JSON = "json"
    CSV = "csv"


def sql_command(
    ctx: typer.Context,
    query: Annotated[
        str | None,
        typer.Argument(
            metavar="QUERY",
            help="One query in DuckDB's SQL dialect ('-' reads it from stdin); without it, "
            "an interactive shell (statements end with ';', \\help for commands).",
            show_default=False,
        ),
    ] = None,
    ref: RefOpt = None,
    output: Annotated[
        SqlOutput | None,
        typer.Option(
            "--output",
            "-o",
            case_sensitive=False,
            help="table, tsv, json (an array of row objects) or csv (default: table on a "
            "terminal, tsv when piped, json with the global --output json).",
            show_default=False,
            callback=remember_output,
        ),
    ] = None,
    max_rows: Annotated[
        int,
        typer.Option("--max-rows", min=1, help="Rows shown by the table output on a terminal."),
    ] = 1000,
) -> None:
    """Run a query over the tables of a branch, tag or commit (tables are namespace.table).

    Example: lakehouse sql "SELECT o_orderstatus, count(*) FROM silver.orders GROUP BY 1"
    """
    state = State.of(ctx)
    state.read_ref = ref or state.ref
    terminal = stdout_is_terminal()
    chosen = output or (
        SqlOutput.JSON
        if state.output is Output.JSON
        else SqlOutput.TABLE
        if terminal
        else SqlOutput.TSV
    )

    limit = max_rows if terminal and chosen in (SqlOutput.TABLE, SqlOutput.TEXT) else None

    def show(result: QueryResult) -> None:
        show_result(result, chosen, limit)

    if query is None:
        from lakehouse.cli.shell import SqlShell, piped_lines, terminal_lines

        lh = state.lakehouse()
        label = ref or lh.default_ref
        lh.resolve(label)  # a bad --ref fails here, before the shell starts
        interactive = sys.stdin.isatty()
        shell = SqlShell(state, label, show=show, interactive=interactive, max_rows=limit)
        history = lh.settings.home / "sql_history"
        lines = terminal_lines(shell, history) if interactive else piped_lines()
        code = shell.run(lines)
        if code:
            raise typer.Exit(code)
        return
    text = sys.stdin.read() if query == "-" else query
    show(state.lakehouse().fetch(text, ref, max_rows=limit))


def show_result(result: QueryResult, chosen: SqlOutput, max_rows: int | None) -> None:
    """Print ``result`` in the chosen format (the table cut to ``max_rows`` when given).

    Every format but the table prints the rows ``result`` holds: fetch them all for it.
    """
    if chosen is SqlOutput.JSON:
        from lakehouse.query.output import json_rows

        print_json(json_rows(result))
    elif chosen is SqlOutput.CSV:
        from lakehouse.query.output import csv_text

        typer.echo(csv_text(result), nl=False)
    elif chosen is SqlOutput.TSV:
        typer.echo(tsv_text(result), nl=False)
    else:
        print_table(console(), result, max_rows)


def _tsv_field(value: object) -> str:
    from lakehouse.query.output import text

    if value is None:
        return ""
    return (
        text(value)
        .replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


def tsv_text(result: QueryResult) -> str:
    """The held rows as TSV: a header line and every row, values whole, NULL empty."""
    lines = ["\t".join(_tsv_field(name) for name in result.column_names)]
    # by position: duplicate column names stay apart
    lines.extend("\t".join(_tsv_field(v) for v in row) for row in result.rows())
    return "\n".join(lines) + "\n"


def print_table(out: Console, result: QueryResult, max_rows: int | None) -> None:
    """The result as a table of text, NULLs marked, with a row count (all rows: ``None``)."""
    from rich.table import Table as RichTable
    from rich.text import Text

    from lakehouse.query.output import text

    table = RichTable(box=None, pad_edge=False, header_style="bold")
    for column in result.columns:
        table.add_column(column.name, justify="right" if column.numeric else "left")
    max_rows = result.num_rows if max_rows is None else max_rows
    for row in itertools.islice(result.rows(), max_rows):  # by position, as the header
        table.add_row(
            *(Text("NULL", style="dim") if value is None else Text(text(value)) for value in row)
        )
    if result.num_columns:
        out.print(table)
    total = result.num_rows
    if total > max_rows:
        out.print(f"({total} rows, first {max_rows} shown; --max-rows or --output csv for all)")
    else:
        out.print(f"({total} row{'' if total == 1 else 's'})")
