"""``lakehouse trino-catalog``: a Trino catalog for this lakehouse, as a file or a statement.

Prints ``etc/catalog/<name>.properties`` (``--format properties``, the default) or the
``CREATE CATALOG`` statement (``--format sql``, for Trino's dynamic catalog management)
of :func:`lakehouse.serving.trino.catalog_properties`. Secrets stay in Trino's
environment (``${ENV:LAKEHOUSE_S3__SECRET_ACCESS_KEY}`` …) unless ``--secrets inline``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from lakehouse.cli._common import Output, OutputOpt, State, print_json


class CatalogFormat(StrEnum):
    """What the command prints."""

    PROPERTIES = "properties"
    SQL = "sql"


class Api(StrEnum):
    """How Trino reaches the catalog."""

    REST = "rest"
    NESSIE = "nessie"


class Secrets(StrEnum):
    """Where the S3 keys and the catalog token come from."""

    ENV = "env"
    INLINE = "inline"


def trino_catalog_command(
    ctx: typer.Context,
    ref: Annotated[
        str | None,
        typer.Option(
            "--ref", "-r", help="Branch or tag the catalog reads (default: the default branch)."
        ),
    ] = None,
    api: Annotated[
        Api,
        typer.Option(
            "--api",
            case_sensitive=False,
            help="rest (Iceberg REST: create tables here) or nessie (Nessie API v2).",
        ),
    ] = Api.REST,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="URL of the catalog server Trino talks to (lakehouse serve or Nessie); "
            "default: the catalog URI when it is a server.",
        ),
    ] = None,
    name: Annotated[
        str, typer.Option("--name", help="Catalog name in the CREATE CATALOG statement.")
    ] = "lakehouse",
    fmt: Annotated[
        CatalogFormat,
        typer.Option("--format", case_sensitive=False, help="properties (a file) or sql."),
    ] = CatalogFormat.PROPERTIES,
    secrets: Annotated[
        Secrets,
        typer.Option(
            "--secrets",
            case_sensitive=False,
            help="env: ${ENV:LAKEHOUSE_…} references Trino resolves; inline: the values.",
        ),
    ] = Secrets.ENV,
    output: OutputOpt = None,
) -> None:
    """Print a Trino catalog (Iceberg connector) for a reference of this lakehouse."""
    from lakehouse.config import load_settings
    from lakehouse.serving.trino import catalog_file, catalog_properties, create_catalog_sql

    state = State.of(ctx)
    settings = load_settings(home=state.home)
    props = catalog_properties(
        settings, ref=ref, catalog_type=api.value, server=server, secrets=secrets.value
    )
    statement = create_catalog_sql(name, props)  # also validates the name
    if state.format(output) is Output.JSON:
        print_json({"name": name, "properties": props, "sql": statement})
    elif fmt is CatalogFormat.SQL:
        typer.echo(statement)
    else:
        typer.echo(catalog_file(props), nl=False)
