"""``lakehouse table …``: list, show and history of Iceberg tables on a reference."""

from __future__ import annotations

from typing import Annotated

import typer

from lakehouse.cli._common import (
    Output,
    OutputOpt,
    RefOpt,
    State,
    complete_table,
    console,
    print_json,
)

table_app = typer.Typer(
    help="List tables and show their schema and snapshots on a reference.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

TableArg = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="Table name: namespace.table (bronze.orders).",
        autocompletion=complete_table,
    ),
]


@table_app.command("list")
def table_list(
    ctx: typer.Context,
    ref: RefOpt = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Only tables inside this namespace.")
    ] = None,
    output: OutputOpt = None,
) -> None:
    """List the tables and views on a reference."""
    from lakehouse.cli import render

    state = State.of(ctx)
    entries = state.lakehouse().tables(ref, namespace=namespace)
    if state.format(output) is Output.JSON:
        print_json(render.entries_json(entries))
    else:
        render.print_entries(console(), entries)


@table_app.command("show")
def table_show(
    ctx: typer.Context, name: TableArg, ref: RefOpt = None, output: OutputOpt = None
) -> None:
    """Show a table: schema, partition spec, current snapshot, properties, metadata file."""
    from lakehouse.cli import render

    state = State.of(ctx)
    lh = state.lakehouse()
    at = ref or lh.default_ref
    data = render.table_json(lh.table(name, at), at)
    if state.format(output) is Output.JSON:
        print_json(data)
    else:
        render.print_table(console(), data)


@table_app.command("history")
def table_history(
    ctx: typer.Context, name: TableArg, ref: RefOpt = None, output: OutputOpt = None
) -> None:
    """List a table's snapshots on a reference, newest first."""
    from lakehouse.cli import render

    state = State.of(ctx)
    snapshots = render.history_json(state.lakehouse().table(name, ref))
    if state.format(output) is Output.JSON:
        print_json(snapshots)
    else:
        render.print_history(console(), snapshots)
