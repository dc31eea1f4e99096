"""``lakehouse maintenance expire|compact|gc|run`` and ``lakehouse branch approve NAME``.

::

    lakehouse maintenance expire  [--ref BRANCH]... [--table T]... [--dry-run] [--policies FILE]
    lakehouse maintenance compact [--ref BRANCH]... [--table T]... [--dry-run] [--policies FILE]
    lakehouse maintenance gc      [--dry-run] [--policies FILE]
    lakehouse maintenance run     [--ref BRANCH]... [--table T]... [--dry-run] [--policies FILE]
                                  [--skip merge|compact|expire|gc]...
    lakehouse branch approve NAME [--message TEXT]

Policies come from ``--policies`` (or ``LAKEHOUSE_MAINTENANCE_POLICIES``), else from
``maintenance.yaml`` in the lakehouse home, else the defaults
(:mod:`lakehouse.maintenance.policies`). Text output shows progress bars on a terminal
(on stderr) and a summary; ``--output json`` prints the result objects. A failed table,
branch or step makes the command exit with 1 after the summary.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

import typer

from lakehouse.cli._common import Output, OutputOpt, State, console, print_json

if TYPE_CHECKING:
    from rich.console import Console

    from lakehouse.maintenance import (
        BranchMergeResult,
        CompactResult,
        ExpireResult,
        GCResult,
        Policies,
        ProgressEvent,
    )

maintenance_app = typer.Typer(
    help="Compact tables, expire snapshots, collect garbage, merge approved branches.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Report what would be done; change and delete nothing.")
]
RefsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ref",
        "-r",
        metavar="BRANCH",
        help="Branch to maintain (repeatable; default: main).",
        show_default=False,
    ),
]
TablesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--table",
        "-t",
        metavar="TABLE",
        help="Table, namespace or pattern (repeatable; default: every table).",
        show_default=False,
    ),
]
PoliciesOpt = Annotated[
    Path | None,
    typer.Option(
        "--policies",
        envvar="LAKEHOUSE_MAINTENANCE_POLICIES",
        help="Policies file (default: maintenance.yaml in the lakehouse home).",
        show_default=False,
    ),
]


def _policies(state: State, path: Path | None) -> Policies:
    from lakehouse.maintenance import load_policies

    return load_policies(path, home=state.lakehouse().settings.home)


@contextmanager
def _progress(state: State, output: Output | None) -> Iterator[Callable[[ProgressEvent], None]]:
    """Progress bars on stderr for text output on a terminal; silent otherwise."""
    if state.format(output) is not Output.TEXT or not sys.stderr.isatty():
        yield lambda event: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[item]}", style="dim"),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(event: ProgressEvent) -> None:
        task = tasks.get(event.step)
        item = event.item if len(event.item) <= 60 else "…" + event.item[-59:]
        if task is None:
            task = tasks[event.step] = bar.add_task(event.step, total=event.total, item=item)
        bar.update(task, completed=event.done, total=event.total, item=item)

    with bar:
        yield update


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _prefix(dry_run: bool) -> str:
    return "[dry run] " if dry_run else ""


# -- text summaries ------------------------------------------------------------------------


def print_expire(out: Console, result: ExpireResult) -> None:
    """Summary of a snapshot expiry."""
    from rich.table import Table

    verb = "would expire" if result.dry_run else "expired"
    out.print(
        f"{_prefix(result.dry_run)}Snapshot expiry on '{result.ref}': {verb} "
        f"{result.expired} snapshot(s) in {sum(1 for t in result.tables if t.expired)} "
        f"of {len(result.tables)} table(s)" + (" (one catalog commit)" if result.committed else "")
    )
    rows = [t for t in result.tables if t.expired or t.kept_for_ingest or t.error]
    if not rows:
        return
    table = Table(box=None, pad_edge=False)
    for col in ("table", "snapshots", verb, "kept for ingestion", "error"):
        table.add_column(col)
    for t in rows:
        table.add_row(
            t.table, str(t.snapshots), str(len(t.expired)), str(t.kept_for_ingest), t.error or ""
        )
    out.print(table)


def print_compact(out: Console, result: CompactResult) -> None:
    """Summary of a compaction."""
    from rich.table import Table

    out.print(
        f"{_prefix(result.dry_run)}Compaction on '{result.ref}': "
        f"{result.files_rewritten} data file(s) "
        + ("to rewrite" if result.dry_run else f"rewritten into {result.files_written}")
        + f" over {len(result.tables)} table(s)"
    )
    rows = [t for t in result.tables if t.compacted or t.error]
    if not rows:
        return
    table = Table(box=None, pad_edge=False)
    for col in (
        "table", "files", "rewritten", "written", "delete files", "bytes in → out", "manifests",
        "note",
    ):  # fmt: skip
        table.add_column(col)
    for t in rows:
        note = t.error or ("" if t.attempts <= 1 else f"{t.attempts} attempts")
        counts = ((t.delete_files_removed, "dropped"), (t.delete_files_trimmed, "trimmed"))
        deletes = [f"{n} {what}" for n, what in counts if n]
        table.add_row(
            t.table,
            str(t.data_files_before),
            str(t.files_rewritten),
            "-" if result.dry_run else str(t.files_written),
            ", ".join(deletes) or "-",
            f"{_size(t.bytes_rewritten)} → {_size(t.bytes_written)}"
            if not result.dry_run
            else _size(t.bytes_rewritten),
            f"{t.manifests_before} → {t.manifests_after}",
            note,
        )
    out.print(table)


def print_gc(out: Console, result: GCResult) -> None:
    """Summary of a garbage collection."""
    out.print(
        f"{_prefix(result.dry_run)}Garbage collection {result.run_id}: "
        f"{len(result.references)} reference(s) marked, {result.marked} reachable file(s)"
    )
    out.print(f"  live:        {result.live.files} file(s), {_size(result.live.bytes)}")
    out.print(
        f"  young:       {result.young.files} file(s), {_size(result.young.bytes)} "
        "(unreachable but within the grace period)"
    )
    verb = "would delete" if result.dry_run else "deleted"
    count = result.candidates if result.dry_run else result.deleted
    out.print(f"  {verb + ':':<12} {count.files} file(s), {_size(count.bytes)}")
    if result.failed:
        out.print(f"  failed:      {len(result.failed)} file(s)", style="red")
    if result.missing:
        out.print(
            f"  missing:     {result.missing} reachable file(s) not found "
            "(run `lakehouse catalog check`)",
            style="yellow",
        )
    if result.resumed:
        verb = "would finish" if result.dry_run else "finished"
        out.print(f"  {verb} interrupted run(s): {', '.join(result.resumed)}")
    if result.plan:
        out.print(f"  deferred-delete list: {result.plan}", style="dim")
    for path in result.samples:
        out.print(f"    {path}", style="dim")


def print_merges(out: Console, result: BranchMergeResult) -> None:
    """Summary of the approved-branch merges."""
    verb = "would merge" if result.dry_run else "merged"
    out.print(
        f"{_prefix(result.dry_run)}Approved branches into '{result.target}': "
        f"{verb} {len(result.merged)}, {len(result.problems)} reported"
    )
    for b in result.branches:
        if b.state == "not-approved":
            continue
        style = "green" if b.state in ("merged", "would-merge") else "yellow"
        out.print(f"  {b.state:<15}", style=style, end="")
        out.print(f" {b.branch}  {b.detail}")


def _fail_if(failed: bool) -> None:
    if failed:
        raise typer.Exit(1)


class _BranchResult(Protocol):
    """What a per-branch maintenance job returns."""

    @property
    def errors(self) -> Sequence[object]: ...

    def to_json(self) -> dict[str, Any]: ...


_R = TypeVar("_R", bound=_BranchResult)


def _per_branch(
    ctx: typer.Context,
    refs: list[str] | None,
    tables: list[str] | None,
    dry_run: bool,
    policies: Path | None,
    output: Output | None,
    job: Callable[..., _R],
    render: Callable[[Console, _R], None],
) -> None:
    """Run ``job`` on each branch of ``refs`` (default: the default branch), then report.

    Exit 1 when any branch reported an error (the others still ran).
    """
    state = State.of(ctx)
    lh = state.lakehouse()
    chosen = _policies(state, policies)
    with _progress(state, output) as progress:
        results = [
            job(lh, ref, tables=tables, policies=chosen, dry_run=dry_run, on_progress=progress)
            for ref in refs or [lh.default_branch]
        ]
    if state.format(output) is Output.JSON:
        print_json([r.to_json() for r in results])
    else:
        for r in results:
            render(console(), r)
    _fail_if(any(r.errors for r in results))


# -- commands --------------------------------------------------------------------------------


@maintenance_app.command("expire")
def expire_command(
    ctx: typer.Context,
    refs: RefsOpt = None,
    tables: TablesOpt = None,
    dry_run: DryRunOpt = False,
    policies: PoliciesOpt = None,
    output: OutputOpt = None,
) -> None:
    """Expire old snapshots (metadata only, one catalog commit per branch; no file deleted)."""
    from lakehouse.maintenance import expire_snapshots

    _per_branch(ctx, refs, tables, dry_run, policies, output, expire_snapshots, print_expire)


@maintenance_app.command("compact")
def compact_command(
    ctx: typer.Context,
    refs: RefsOpt = None,
    tables: TablesOpt = None,
    dry_run: DryRunOpt = False,
    policies: PoliciesOpt = None,
    output: OutputOpt = None,
) -> None:
    """Rewrite small data files into target-sized ones and merge manifests."""
    from lakehouse.maintenance import compact

    _per_branch(ctx, refs, tables, dry_run, policies, output, compact, print_compact)


@maintenance_app.command("gc")
def gc_command(
    ctx: typer.Context,
    dry_run: DryRunOpt = False,
    policies: PoliciesOpt = None,
    output: OutputOpt = None,
) -> None:
    """Delete files no reference reaches within its retention (mark and sweep, all references)."""
    from lakehouse.maintenance import collect_garbage

    state = State.of(ctx)
    lh = state.lakehouse()
    chosen = _policies(state, policies)
    with _progress(state, output) as progress:
        result = collect_garbage(lh, policies=chosen, dry_run=dry_run, on_progress=progress)
    if state.format(output) is Output.JSON:
        print_json(result.to_json())
    else:
        print_gc(console(), result)
    _fail_if(bool(result.failed))


@maintenance_app.command("run")
def run_command(
    ctx: typer.Context,
    refs: RefsOpt = None,
    tables: TablesOpt = None,
    dry_run: DryRunOpt = False,
    policies: PoliciesOpt = None,
    skip: Annotated[
        list[str] | None,
        typer.Option(
            "--skip", metavar="STEP", help="Skip a step: merge, compact, expire or gc (repeatable)."
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Merge approved branches, compact, expire snapshots, then collect garbage."""
    from lakehouse.errors import InvalidInputError
    from lakehouse.maintenance.run import STEPS, run_maintenance

    unknown = sorted(set(skip or ()) - set(STEPS))
    if unknown:
        raise InvalidInputError(
            f"unknown step(s) {', '.join(unknown)}; steps are {', '.join(STEPS)}"
        )
    state = State.of(ctx)
    lh = state.lakehouse()
    chosen = _policies(state, policies)
    steps = [s for s in STEPS if s not in set(skip or ())]
    with _progress(state, output) as progress:
        report = run_maintenance(
            lh,
            refs=refs,
            tables=tables,
            policies=chosen,
            steps=steps,
            dry_run=dry_run,
            on_progress=progress,
        )
    if state.format(output) is Output.JSON:
        print_json(report.to_json())
    else:
        out = console()
        if report.merges is not None:
            print_merges(out, report.merges)
        for c in report.compactions:
            print_compact(out, c)
        for e in report.expiries:
            print_expire(out, e)
        if report.gc is not None:
            print_gc(out, report.gc)
        for step, error in report.errors.items():
            out.print(f"{step}: {error}", style="red")
    _fail_if(not report.ok)


def approve_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Branch to approve.")],
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Commit message of the approval.")
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Approve branch NAME at its current head; `maintenance run` then merges it into main.

    Anything committed to the branch after the approval makes it stale.
    """
    from lakehouse.maintenance import approve_branch

    state = State.of(ctx)
    approval = approve_branch(state.lakehouse(), name, message=message)
    if state.format(output) is Output.JSON:
        print_json(approval.to_json())
    else:
        console().print(
            f"Approved branch '{approval.branch}' at {approval.approved_hash[:12]} "
            f"(approval commit {approval.commit[:12]})"
        )


__all__ = ["approve_command", "maintenance_app"]
