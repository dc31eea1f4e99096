"""``lakehouse catalog check`` and the disaster-recovery runbook ``lakehouse dr …``.

::

    lakehouse catalog check [--ref REF]... [--repair] [--history]
    lakehouse dr pause [--reason TEXT] | resume | status [--ref REF]
    lakehouse dr backup --to DEST          (backup create, noting whether paused)
    lakehouse dr restore BACKUP [--to HOME] [--erase]   (restore, then pause the target)
    lakehouse dr validate [--history]      (catalog check of every reference)

A check that finds problems prints its report, then ``Error: …`` and exits with 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lakehouse.cli._common import Output, OutputOpt, State, console, print_json
from lakehouse.cli.backup import (
    AllowMissingOpt,
    BackupArg,
    CatalogOpt,
    DestOpt,
    EraseOpt,
    FullHashOpt,
    HistoryOpt,
    IdOpt,
    RestoreToOpt,
    WarehouseOpt,
    WorkersOpt,
    human_size,
    parse_time,
    print_backup_result,
    print_restore_result,
    progress_for,
    restore_with_progress,
)

if TYPE_CHECKING:
    from lakehouse.ops.check import CheckReport
    from lakehouse.ops.dr import PauseState, ReplayPoint

catalog_app = typer.Typer(
    help="Integrity of the versioned catalog: does every referenced file exist?",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
dr_app = typer.Typer(
    help="Disaster-recovery runbook: pause, backup, restore, validate, resume.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

RefsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ref",
        "-r",
        help="Reference to check (repeatable; default: every branch and tag).",
        show_default=False,
    ),
]
HistoryCheckOpt = Annotated[
    bool,
    typer.Option(
        "--history",
        help="Also check every metadata version the history of each reference reaches.",
    ),
]


def print_check(report: CheckReport) -> None:
    """Per-table text report, then one summary line."""
    out = console()
    width = max((len(t.ref) for t in report.tables), default=4)
    twidth = max((len(t.table) for t in report.tables), default=5)
    for t in report.tables:
        if t.ok:
            status = "ok"
            detail = f"{t.snapshots} snapshot(s), {t.files} file(s), {human_size(t.bytes)}"
        else:
            status = "BROKEN" if not t.current_readable else "DAMAGED"
            detail = (
                f"{len(t.problems)} problem(s); current state "
                f"{'readable' if t.current_readable else 'NOT readable'}"
            )
        out.print(f"{t.ref:<{width}}  {t.table:<{twidth}}  {status:<7}  {detail}")
        for p in t.problems[:20]:
            snaps = f" (snapshot(s) {', '.join(map(str, p.snapshots[:5]))})" if p.snapshots else ""
            out.print(f"    {p.describe()}{snaps}")
        if len(t.problems) > 20:
            out.print(f"    … and {len(t.problems) - 20} more")
        if t.repair is not None:
            mark = "repaired" if t.repair.repaired else "not repaired"
            out.print(f"    {mark}: {t.repair.message}")
            if t.repair.commit:
                out.print(f"    new commit {t.repair.commit[:12]} on {t.ref}")
    for h in report.history[:20]:
        out.print(f"history of {h.ref}: table {h.table}: {h.problem.describe()}")
    if len(report.history) > 20:
        out.print(f"… and {len(report.history) - 20} more in the history")
    if report.expired:
        runs: dict[str, int] = {}
        for h in report.expired:
            runs[str(h.expired_by)] = runs.get(str(h.expired_by), 0) + 1
        by_run = ", ".join(f"{n} by {run}" for run, n in sorted(runs.items()))
        out.print(
            f"expired: {len(report.expired)} file(s) of older history were deleted by garbage "
            f"collection by policy ({by_run}); those commits can no longer be read (not damage)"
        )
    out.print(report.summary() + f" ({report.seconds:.2f}s)")


def _finish_check(report: CheckReport) -> None:
    """Exit 1 with one error line when problems remain (repaired tables still count)."""
    if report.ok:
        return
    from lakehouse.ops.errors import IntegrityError

    repaired = [t for t in report.tables if t.repair is not None and t.repair.repaired]
    note = (
        f" ({len(repaired)} table(s) repaired: their current state is readable again)"
        if repaired
        else ""
    )
    raise IntegrityError(report.summary() + note)


@catalog_app.command("check")
def catalog_check(
    ctx: typer.Context,
    refs: RefsOpt = None,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Re-point broken tables on branches to their newest complete snapshot "
            "(a new commit; nothing is deleted).",
        ),
    ] = False,
    history: HistoryCheckOpt = False,
    workers: WorkersOpt = None,
    output: OutputOpt = None,
) -> None:
    """Walk metadata, manifests and data files of every table on every reference."""
    from lakehouse.ops.check import check

    state = State.of(ctx)
    report = check(state.lakehouse(), refs or None, repair=repair, history=history, workers=workers)
    if state.format(output) is Output.JSON:
        print_json(report.to_json())
    else:
        print_check(report)
    _finish_check(report)


# -- dr --------------------------------------------------------------------------------------


def _print_pause(state: PauseState, changed: bool, verb: str) -> None:
    out = console()
    if changed:
        out.print(f"{verb}: the lakehouse is {state.describe()}")
    else:
        out.print(f"nothing to do: the lakehouse is {state.describe()}")


@dr_app.command("pause")
def dr_pause(
    ctx: typer.Context,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (shown to jobs).")] = None,
    output: OutputOpt = None,
) -> None:
    """Pause ingestion, pipelines and maintenance (running jobs finish their commit)."""
    from lakehouse.ops.dr import pause

    state = State.of(ctx)
    pause_state, changed = pause(state.lakehouse(), reason)
    if state.format(output) is Output.JSON:
        print_json({**pause_state.to_json(), "changed": changed})
    else:
        _print_pause(pause_state, changed, "Paused")


@dr_app.command("resume")
def dr_resume(
    ctx: typer.Context,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded).")] = None,
    output: OutputOpt = None,
) -> None:
    """Lift the pause: ingestion, pipelines and maintenance may start again."""
    from lakehouse.ops.dr import resume

    state = State.of(ctx)
    pause_state, changed = resume(state.lakehouse(), reason)
    if state.format(output) is Output.JSON:
        print_json({**pause_state.to_json(), "changed": changed})
    else:
        _print_pause(pause_state, changed, "Resumed")


def _print_replay(points: list[ReplayPoint]) -> None:
    out = console()
    if not points:
        out.print("No tables: nothing to replay.")
        return
    width = max(len(p.table) for p in points)
    out.print("To catch up after a restore:")
    for p in points:
        out.print(f"  {p.table:<{width}}  {p.action}")


@dr_app.command("status")
def dr_status(
    ctx: typer.Context,
    ref: Annotated[
        str | None,
        typer.Option("--ref", "-r", help="Branch whose replay points to show (default: main)."),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Whether the lakehouse is paused, and where ingestion resumes after a restore."""
    from lakehouse.ops.dr import pause_state, replay_points

    state = State.of(ctx)
    lh = state.lakehouse()
    paused = pause_state(lh.store)
    points = replay_points(lh, ref)
    if state.format(output) is Output.JSON:
        print_json({"pause": paused.to_json(), "replay": [p.to_json() for p in points]})
        return
    console().print(f"The lakehouse is {paused.describe()}.")
    _print_replay(points)


@dr_app.command("backup")
def dr_backup(
    ctx: typer.Context,
    to: DestOpt,
    history_since: HistoryOpt = None,
    allow_missing: AllowMissingOpt = False,
    full_hash: FullHashOpt = False,
    workers: WorkersOpt = None,
    output: OutputOpt = None,
) -> None:
    """Runbook step 2: a consistent, verified backup (same as `backup create`)."""
    from lakehouse.ops.backup import create_backup
    from lakehouse.ops.dr import pause_state

    state = State.of(ctx)
    lh = state.lakehouse()
    paused = pause_state(lh.store)
    with progress_for(state, output) as progress:
        result = create_backup(
            lh,
            to,
            cutoff=parse_time(history_since),
            allow_missing=allow_missing,
            full_hash=full_hash,
            workers=workers,
            progress=progress,
        )
    if state.format(output) is Output.JSON:
        print_json({**result.to_json(), "paused": paused.paused})
        return
    print_backup_result(result)
    if not paused.paused:
        console().print(
            "  note: the lakehouse was not paused; the backup is consistent, but writes after "
            "it started are not in it"
        )


@dr_app.command("restore")
def dr_restore(
    ctx: typer.Context,
    backup: BackupArg,
    backup_id: IdOpt = None,
    to: RestoreToOpt = None,
    catalog: CatalogOpt = None,
    warehouse: WarehouseOpt = None,
    erase: EraseOpt = False,
    workers: WorkersOpt = None,
    output: OutputOpt = None,
) -> None:
    """Runbook step 4: restore a backup, then pause the restored lakehouse until validated."""
    from lakehouse.client import connect
    from lakehouse.ops.dr import pause

    state = State.of(ctx)
    settings, result = restore_with_progress(
        state,
        backup,
        backup_id=backup_id,
        to=to,
        catalog=catalog,
        warehouse=warehouse,
        erase=erase,
        workers=workers,
        output=output,
    )
    with connect(settings=settings) as restored:
        paused, _ = pause(
            restored,
            f"restored from backup {result.backup_id}; run `lakehouse dr validate`, "
            "then `lakehouse dr resume`",
            update=True,
        )
    if state.format(output) is Output.JSON:
        print_json({**result.to_json(), "pause": paused.to_json()})
        return
    print_restore_result(result)
    console().print(f"  the restored lakehouse is {paused.describe()}")


@dr_app.command("validate")
def dr_validate(
    ctx: typer.Context,
    history: HistoryCheckOpt = False,
    workers: WorkersOpt = None,
    output: OutputOpt = None,
) -> None:
    """Runbook step 4b: catalog check of every reference, and where to replay from."""
    from lakehouse.ops.check import check
    from lakehouse.ops.dr import replay_points

    state = State.of(ctx)
    lh = state.lakehouse()
    report = check(lh, None, history=history, workers=workers)
    points = replay_points(lh) if report.ok else []
    if state.format(output) is Output.JSON:
        print_json({**report.to_json(), "replay": [p.to_json() for p in points]})
    else:
        print_check(report)
        if report.ok:
            _print_replay(points)
    _finish_check(report)
