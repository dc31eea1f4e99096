"""``lakehouse branch …`` and ``lakehouse tag …``."""

from __future__ import annotations

from typing import Annotated

import typer

from lakehouse.cli._common import (
    Output,
    OutputOpt,
    State,
    complete_ref,
    console,
    print_json,
)

branch_app = typer.Typer(
    help="Create, list, delete, reset, prune and approve branches.",
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

NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="Reference name.", autocompletion=complete_ref)
]


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


@branch_app.command("reset")
def branch_reset(
    ctx: typer.Context,
    name: NameArg,
    to: Annotated[
        str, typer.Option("--to", help="Where to point the branch: branch, tag or hash.")
    ],
    expected_hash: Annotated[
        str | None,
        typer.Option(
            "--expected-hash",
            help="Only if NAME is still at this hash (default: its head now).",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Point branch NAME at another commit (Nessie's assign); its old head is printed.

    Example: lakehouse branch reset main --to main~1
    """
    state = State.of(ctx)
    lh = state.lakehouse()
    before = lh.store.writable_branch(name).hash
    after = lh.reset_branch(name, to, expected_hash=expected_hash)
    if state.format(output) is Output.JSON:
        print_json({**after.to_json(), "previous_hash": before})
    else:
        console().print(
            f"Reset branch '{after.name}' to {after.hash[:12]} (was {before[:12]}; "
            f"undo: lakehouse branch reset {after.name} --to @{before})"
        )


@branch_app.command("prune")
def branch_prune(
    ctx: typer.Context,
    pattern: Annotated[
        str | None,
        typer.Option("--pattern", help="Only branches whose name matches, e.g. 'run/*'."),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than", metavar="AGE", help="Idle for at least AGE: 30m, 12h, 7d, 2w."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Delete old branches; with no options, the failed run branches past their retention.

    The retention is the LAKEHOUSE_FAILED_RUN_RETENTION_DAYS setting (default 7 days).
    The default branch is never deleted. --older-than needs --pattern: every branch idle
    that long is rarely what is meant (--pattern '*' says so).

    Example: lakehouse branch prune --pattern 'run/*' --older-than 7d --dry-run
    """
    from lakehouse.catalog.recovery import parse_age

    state = State.of(ctx)
    age = parse_age(older_than) if older_than is not None else None
    pruned = state.lakehouse().prune_branches(pattern=pattern, older_than=age, dry_run=dry_run)
    if state.format(output) is Output.JSON:
        print_json({"dry_run": dry_run, "branches": [p.to_json() for p in pruned]})
        return
    out = console()
    verb = "Would delete" if dry_run else "Deleted"
    if not pruned and pattern is None and older_than is None:
        kept = state.lakehouse().settings.failed_run_retention_days
        out.print(
            f"No branch to prune: failed run branches are kept {kept} day(s) "
            "(LAKEHOUSE_FAILED_RUN_RETENTION_DAYS); to see them all: "
            "lakehouse branch prune --pattern 'run/*' --older-than 0d --dry-run",
            markup=False,
        )
    elif not pruned:
        out.print("No branch to prune")
    for p in pruned:
        days = p.age.total_seconds() / 86400
        out.print(f"{verb} branch '{p.name}' at {p.hash[:12]} (idle {days:.1f} days)", markup=False)
