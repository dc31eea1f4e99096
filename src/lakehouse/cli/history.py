"""``lakehouse diff``, ``merge``, ``revert`` and ``cherry-pick``: moving changes between refs.

Thin over :class:`lakehouse.client.Lakehouse` (``diff``/``diff_rows``/``diff_sample``,
``merge(strategy=…)``, ``revert``, ``cherry_pick``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from lakehouse.cli._common import (
    Output,
    OutputOpt,
    State,
    complete_ref,
    console,
    print_json,
)

if TYPE_CHECKING:
    from lakehouse.catalog.model import MergeResult


def diff_command(
    ctx: typer.Context,
    from_ref: Annotated[
        str,
        typer.Argument(
            metavar="FROM", help="Reference to compare from.", autocompletion=complete_ref
        ),
    ],
    to_ref: Annotated[
        str,
        typer.Argument(metavar="TO", help="Reference to compare to.", autocompletion=complete_ref),
    ],
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Only keys inside this namespace.")
    ] = None,
    rows: Annotated[
        bool,
        typer.Option("--rows", help="Rows added/deleted per table (from snapshot summaries)."),
    ] = False,
    sample: Annotated[
        int,
        typer.Option(
            "--sample", min=0, metavar="N", help="With --rows: show up to N changed rows per table."
        ),
    ] = 0,
    output: OutputOpt = None,
) -> None:
    """Show the tables, views and namespaces that differ from FROM to TO.

    Example: lakehouse diff main run/tpch/20260101T120000Z-ab12cd --rows --sample 5
    """
    from lakehouse.cli import render

    state = State.of(ctx)
    lh = state.lakehouse()
    if not rows:
        entries = lh.diff(from_ref, to_ref, namespace=namespace)
        if state.format(output) is Output.JSON:
            print_json(render.diff_json(entries))
        else:
            render.print_diff(console(), entries)
        return
    changes = lh.diff_rows(from_ref, to_ref, namespace=namespace)
    data: list[dict[str, Any]] = []
    for change in changes:
        item = change.to_json()
        if sample:
            added, deleted = lh.diff_sample(change.table, from_ref, to_ref, sample)
            item["sample_added"] = added.to_pylist()
            item["sample_deleted"] = deleted.to_pylist()
        data.append(item)
    if state.format(output) is Output.JSON:
        print_json(data)
        return
    out = console()
    if not data:
        out.print(f"No table differs from {from_ref} to {to_ref}")
        return
    width = max(len(d["table"]) for d in data)
    out.print(
        f"{'TABLE':<{width}}  {'ADDED':>10}  {'DELETED':>10}  {'ROWS BEFORE':>11}  ROWS AFTER"
    )
    for d in data:
        out.print(
            f"{d['table']:<{width}}  {d['rows_added']:>10}  {d['rows_deleted']:>10}  "
            f"{d['from_rows']:>11}  {d['to_rows']:>10}"
        )
    for d in data:
        for label in ("added", "deleted"):
            sampled = d.get(f"sample_{label}") or []
            if sampled:
                out.print(f"\n{d['table']}: {label} (sample of {len(sampled)})")
                for row in sampled:
                    out.print("  " + "\t".join(str(v) for v in row.values()), markup=False)


def merge_command(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="Branch, tag or hash to merge.", autocompletion=complete_ref)
    ],
    into: Annotated[
        str | None,
        typer.Option("--into", help="Target branch (default: main).", show_default=False),
    ] = None,
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            "-s",
            metavar="normal|source-wins|target-wins",
            help="Keys changed on both sides: conflict, take the source's, or keep the target's.",
        ),
    ] = "normal",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change; commit nothing.")
    ] = False,
    force_keys: Annotated[
        list[str] | None,
        typer.Option("--force-key", metavar="KEY", help="On conflict, take the source's KEY."),
    ] = None,
    drop_keys: Annotated[
        list[str] | None,
        typer.Option("--drop-key", metavar="KEY", help="Keep the target's KEY; drop the source's."),
    ] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Commit message.")] = None,
    no_content_merge: Annotated[
        bool,
        typer.Option(
            "--no-content-merge",
            help="A table changed on both sides is a conflict even when the changes commute.",
        ),
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Merge SOURCE into a branch as one commit; conflicting keys abort the merge.

    A table changed on both sides merges by content when the changes commute (e.g.
    appends on both sides); otherwise it conflicts with the reason.

    Example: lakehouse merge dev --into main --strategy source-wins
    """
    from lakehouse.errors import MergeConflictError

    state = State.of(ctx)
    result = state.lakehouse().merge(
        source,
        into,
        dry_run=dry_run,
        force_keys=force_keys or (),
        drop_keys=drop_keys or (),
        message=message,
        raise_on_conflict=not dry_run,
        strategy=strategy,
        content_merge=not no_content_merge,
    )
    _report(state, output, result, source, dry_run)
    if result.conflicts:  # only reachable on a dry run
        raise MergeConflictError(result.conflicts, action="dry-run merge")


def cherry_pick_command(
    ctx: typer.Context,
    commits: Annotated[list[str], typer.Argument(metavar="COMMIT", help="Commits, oldest first.")],
    onto: Annotated[str, typer.Option("--onto", help="Branch to copy the commits onto.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change; commit nothing.")
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Copy commits onto a branch, one new commit each (Nessie's transplant).

    Example: lakehouse cherry-pick 3f9a1c2b4d5e --onto main
    """
    state = State.of(ctx)
    result = state.lakehouse().cherry_pick(commits, onto, dry_run=dry_run)
    _report(state, output, result, " ".join(commits), dry_run)


def revert_command(
    ctx: typer.Context,
    commit: Annotated[str, typer.Argument(metavar="COMMIT", help="Commit hash (or spec) to undo.")],
    on: Annotated[
        str | None,
        typer.Option(
            "--on", help="Branch to commit the revert on (default: NESSIE_REF, else main)."
        ),
    ] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Commit message.")] = None,
    output: OutputOpt = None,
) -> None:
    """Undo COMMIT with a new commit; keys changed again since are reported as conflicts.

    Example: lakehouse revert 3f9a1c2b4d5e --on main
    """
    state = State.of(ctx)
    lh = state.lakehouse()
    result = lh.revert(commit, on, message=message)
    if state.format(output) is Output.JSON:
        print_json({"reverted": commit, "branch": result.branch.name, "hash": result.hash})
    else:
        console().print(f"Reverted {commit} on {result.branch.name}: new commit {result.hash[:12]}")


def _report(
    state: State, output: Output | None, result: MergeResult, source: str, dry_run: bool
) -> None:
    from lakehouse.cli import render

    data = render.merge_json(result, source=source, dry_run=dry_run)
    if state.format(output) is Output.JSON:
        print_json(data)
    else:
        render.print_merge(console(), data)
