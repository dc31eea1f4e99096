"""``lakehouse branch …`` and ``lakehouse tag …``."""

from __future__ import annotations

from typing import Annotated

import typer

from lakehouse.cli._common import Output, OutputOpt, State, console, print_json

branch_app = typer.Typer(
    help="Create, list and delete branches.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
tag_app = typer.Typer(
    help="Create, list and delete tags.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Reference name.")]


@branch_app.command("create")
def branch_create(
    ctx: typer.Context,
    name: NameArg,
    from_ref: Annotated[
        str | None,
        typer.Option(
            "--from",
            "--ref",
            "-r",
            help="Start point: branch, tag or hash (default: NESSIE_REF, else main).",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Create branch NAME at a reference.

    Example: lakehouse branch create feature/foo --from main
    """
    state = State.of(ctx)
    lh = state.lakehouse()
    created = lh.create_branch(name, from_ref)
    if state.format(output) is Output.JSON:
        print_json(created.to_json())
    else:
        console().print(
            f"Created branch '{created.name}' at {created.hash[:12]} "
            f"(from {from_ref or lh.default_ref})"
        )


@branch_app.command("list")
def branch_list(ctx: typer.Context, output: OutputOpt = None) -> None:
    """List branches; the default branch is marked with *."""
    from lakehouse.cli import render

    state = State.of(ctx)
    lh = state.lakehouse()
    branches = lh.branches()
    if state.format(output) is Output.JSON:
        print_json(render.references_json(branches))
    else:
        render.print_references(console(), branches, lh.default_branch)


@branch_app.command("delete")
def branch_delete(ctx: typer.Context, name: NameArg, output: OutputOpt = None) -> None:
    """Delete branch NAME (its commits stay reachable from other references)."""
    state = State.of(ctx)
    state.lakehouse().delete_branch(name)
    if state.format(output) is Output.JSON:
        print_json({"deleted": name, "type": "BRANCH"})
    else:
        console().print(f"Deleted branch '{name}'")


@tag_app.command("create")
def tag_create(
    ctx: typer.Context,
    name: NameArg,
    ref: Annotated[
        str | None,
        typer.Option(
            "--ref",
            "--from",
            "-r",
            help="What to tag: branch, tag or hash (default: NESSIE_REF, else main).",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Create tag NAME at a reference.

    Example: lakehouse tag create prod-20260101 --ref main
    """
    state = State.of(ctx)
    lh = state.lakehouse()
    created = lh.create_tag(name, ref)
    if state.format(output) is Output.JSON:
        print_json(created.to_json())
    else:
        console().print(
            f"Created tag '{created.name}' at {created.hash[:12]} (from {ref or lh.default_ref})"
        )


@tag_app.command("list")
def tag_list(ctx: typer.Context, output: OutputOpt = None) -> None:
    """List tags."""
    from lakehouse.cli import render

    state = State.of(ctx)
    lh = state.lakehouse()
    tags = lh.tags()
    if state.format(output) is Output.JSON:
        print_json(render.references_json(tags))
    else:
        render.print_references(console(), tags, lh.default_branch)


@tag_app.command("delete")
def tag_delete(ctx: typer.Context, name: NameArg, output: OutputOpt = None) -> None:
    """Delete tag NAME."""
    state = State.of(ctx)
    state.lakehouse().delete_tag(name)
    if state.format(output) is Output.JSON:
        print_json({"deleted": name, "type": "TAG"})
    else:
        console().print(f"Deleted tag '{name}'")
