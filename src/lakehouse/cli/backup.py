"""``lakehouse backup create | list | verify | restore`` (thin layer over :mod:`lakehouse.ops`).

::

    lakehouse backup create --to DEST [--history-since TIME] [--allow-missing] [--full-hash]
    lakehouse backup list DEST
    lakehouse backup verify BACKUP [--id ID] [--quick] [--repair]
    lakehouse backup restore BACKUP [--id ID] [--to HOME | --catalog URI --warehouse W] [--erase]

``DEST`` is a local folder or ``s3://bucket/prefix``; ``BACKUP`` is a backup's folder
(``DEST/backups/<id>``) or a destination (the newest complete backup, or ``--id``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lakehouse.cli._common import Output, OutputOpt, State, console, print_json

if TYPE_CHECKING:
    from lakehouse.config import Settings
    from lakehouse.ops.backup import BackupResult
    from lakehouse.ops.restore import RestoreResult

backup_app = typer.Typer(
    help="Consistent, verified, incremental backups; restore into an empty lakehouse.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

DestOpt = Annotated[
    str,
    typer.Option(
        "--to",
        envvar="LAKEHOUSE_BACKUP_DEST",
        help="Backup destination: a local folder or s3://bucket/prefix.",
    ),
]
BackupArg = Annotated[
    str,
    typer.Argument(
        metavar="BACKUP",
        help="A backup folder (DEST/backups/ID) or a destination (its newest complete backup).",
    ),
]
IdOpt = Annotated[
    str | None,
    typer.Option("--id", help="Backup id inside the destination (default: the newest complete)."),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", min=1, max=64, help="Parallel copies (default: by CPU count)."),
]
HistoryOpt = Annotated[
    str | None,
    typer.Option(
        "--history-since",
        metavar="TIME",
        help="Copy only files of history newer than TIME (ISO 8601), plus the state at TIME. "
        "Default: all history.",
    ),
]
AllowMissingOpt = Annotated[
    bool,
    typer.Option(
        "--allow-missing",
        help="Back up even if referenced files are missing in the lakehouse (recorded).",
    ),
]
FullHashOpt = Annotated[
    bool,
    typer.Option(
        "--full-hash",
        help="Re-read every file, even those a previous backup has, and confirm every "
        "reused object by its full sha256 (default: size, mtime and a sampled hash).",
    ),
]
RestoreToOpt = Annotated[
    Path | None,
    typer.Option(
        "--to",
        help="Lakehouse home to restore into (default: the global --home / LAKEHOUSE_HOME).",
        show_default=False,
    ),
]
CatalogOpt = Annotated[
    str | None, typer.Option("--catalog", help="Target catalog URL (default: from the settings).")
]
WarehouseOpt = Annotated[
    str | None, typer.Option("--warehouse", help="Target warehouse (default: from the settings).")
]
EraseOpt = Annotated[
    bool,
    typer.Option(
        "--erase",
        help="Replace a non-empty local target (its catalog and files are removed after "
        "the restore succeeded).",
    ),
]


def human_size(n: float) -> str:
    """``12.3 MB``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time; naive means UTC."""
    if value is None:
        return None
    from lakehouse.catalog.model import parse_timestamp

    return parse_timestamp(value)


@contextmanager
def progress_for(state: State, output: Output | None) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback: a bar on stderr for text output on a terminal, else silent."""
    if state.format(output) is not Output.TEXT or not sys.stderr.isatty():
        yield lambda phase, done, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        task = tasks.get(phase)
        if task is None:
            task = tasks[phase] = bar.add_task(phase, total=total or None)
        bar.update(task, completed=done, total=total or None)

    with bar:
        yield update


def target_settings(
    state: State, to: Path | None, catalog: str | None, warehouse: str | None
) -> Settings:
    """Settings of a restore target: ``--to`` home, ``--catalog``/``--warehouse`` overrides."""
    from lakehouse.config import load_settings

    overrides: dict[str, Any] = {"home": to or state.home}
    if catalog:
        overrides["catalog"] = {"uri": catalog}
    if warehouse:
        overrides["warehouse"] = warehouse
    return load_settings(**overrides)


def print_backup_result(result: BackupResult) -> None:
    """Text output of a backup."""
    out = console()
    out.print(f"Backup {result.backup_id} written to {result.location}")
    out.print(
        f"  catalog:  {result.references} reference(s), {result.commits} commit(s), "
        "exported at one consistent point"
    )
    out.print(
        f"  objects:  {result.objects} ({human_size(result.bytes)}); copied "
        f"{result.copied_objects} ({human_size(result.copied_bytes)}), reused "
        f"{result.reused_objects} (the same bytes already stored, by this backup or an "
        "earlier one)"
    )
    if result.healed_objects:
        out.print(
            f"  healed:   {result.healed_objects} damaged object(s) in the destination were "
            "replaced with the lakehouse's good bytes"
        )
    if result.raw_objects or result.skipped_raw:
        out.print(
            f"  raw:      {result.raw_objects} landed file(s); skipped {result.skipped_raw} of "
            "batches still being landed"
        )
    for artifact in result.artifacts:
        if "skipped" in artifact:
            out.print(f"  {artifact['kind']}:  skipped ({artifact['skipped']})")
        else:
            out.print(f"  {artifact['kind']}:  {artifact['path']} ({human_size(artifact['size'])})")
    if result.collected:
        out.print(
            f"  history:  {result.collected} file(s) of older commits were deleted by garbage "
            "collection (those commits cannot be read; recorded in manifest.json)"
        )
    if result.missing:
        out.print(
            f"  WARNING: {result.missing} referenced file(s) were missing (see manifest.json)"
        )
    rate = result.bytes / result.seconds if result.seconds else 0
    out.print(f"  took {result.seconds:.1f}s ({human_size(rate)}/s)")


def print_restore_result(result: RestoreResult) -> None:
    """Text output of a restore."""
    out = console()
    out.print(f"Restored backup {result.backup_id} into {result.catalog}")
    out.print(
        f"  catalog:  {result.references} reference(s), {result.commits} commit(s), every hash "
        "verified"
    )
    out.print(f"  objects:  {result.objects} ({human_size(result.bytes)}), every checksum verified")
    verdict = (
        "ok"
        if result.check.ok
        else f"{result.check.problem_count} problem(s), all recorded when the backup was taken"
    )
    out.print(
        f"  check:    {len(result.check.tables)} table(s), {result.check.files_checked} "
        f"file(s): {verdict}"
    )
    out.print(f"  took {result.seconds:.1f}s")


@backup_app.command("create")
def backup_create(
    ctx: typer.Context,
    to: DestOpt,
    history_since: HistoryOpt = None,
    allow_missing: AllowMissingOpt = False,
    full_hash: FullHashOpt = False,
    workers: WorkersOpt = None,
    output: OutputOpt = None,
) -> None:
    """Back up the catalog and every file it references, at one consistent point."""
    from lakehouse.ops.backup import create_backup

    state = State.of(ctx)
    lh = state.lakehouse()
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
        print_json(result.to_json())
    else:
        print_backup_result(result)


@backup_app.command("list")
def backup_list(
    ctx: typer.Context,
    dest: Annotated[str, typer.Argument(metavar="DEST", help="Backup destination.")],
    output: OutputOpt = None,
) -> None:
    """List the backups of a destination, oldest first."""
    from lakehouse.config import load_settings
    from lakehouse.ops.backup import list_backups

    state = State.of(ctx)
    infos = list_backups(dest, load_settings(home=state.home))
    if state.format(output) is Output.JSON:
        print_json([i.to_json() for i in infos])
        return
    out = console()
    if not infos:
        out.print(f"No backups at {dest}")
        return
    for info in infos:
        data = info.to_json()
        if info.complete:
            out.print(
                f"{info.backup_id}  complete    {info.references:>3} ref(s)  "
                f"{info.objects:>6} object(s)  {human_size(info.bytes):>9}  "
                f"(copied {human_size(info.copied_bytes)})"
            )
        else:
            out.print(f"{info.backup_id}  {data['status']}")


@backup_app.command("verify")
def backup_verify(
    ctx: typer.Context,
    backup: BackupArg,
    backup_id: IdOpt = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Check sizes only, not checksums.")
    ] = False,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Replace damaged objects with the lakehouse's files where those still have "
            "the good bytes (heals every backup sharing them).",
        ),
    ] = False,
    workers: WorkersOpt = None,
    output: OutputOpt = None,
) -> None:
    """Re-check every checksum, the catalog export, and that it only references objects present.

    Damaged objects are reported with the other backups that share them.
    """
    from lakehouse.config import load_settings
    from lakehouse.ops.backup import verify_backup
    from lakehouse.ops.errors import BackupCorruptError

    state = State.of(ctx)
    with progress_for(state, output) as progress:
        result = verify_backup(
            backup,
            backup_id=backup_id,
            settings=load_settings(home=state.home),
            quick=quick,
            repair=repair,
            workers=workers,
            progress=progress,
        )
    if state.format(output) is Output.JSON:
        print_json(result.to_json())
    else:
        out = console()
        for fixed in result.repaired:
            shared = (
                f" (also healed in backup(s) {', '.join(fixed.shared_with)})"
                if fixed.shared_with
                else ""
            )
            out.print(
                f"repaired object {fixed.sha256[:12]} of {', '.join(fixed.uris)} from "
                f"{fixed.source}{shared}"
            )
        if result.ok:
            out.print(result.summary())
        for problem in result.problems:
            shared = (
                f" (shared with backup(s) {', '.join(problem.shared_with)})"
                if problem.shared_with
                else ""
            )
            out.print(f"{problem.object}: {problem.message}{shared}")
    if not result.ok:
        raise BackupCorruptError(result.summary(), [p.object for p in result.problems])


def restore_with_progress(
    state: State,
    backup: str,
    *,
    backup_id: str | None,
    to: Path | None,
    catalog: str | None,
    warehouse: str | None,
    erase: bool,
    workers: int | None,
    output: Output | None,
) -> tuple[Settings, RestoreResult]:
    """Restore ``backup`` into the target the options name; the target's settings too."""
    from lakehouse.ops.restore import restore_backup

    settings = target_settings(state, to, catalog, warehouse)
    with progress_for(state, output) as progress:
        result = restore_backup(
            backup,
            settings,
            backup_id=backup_id,
            erase=erase,
            workers=workers,
            progress=progress,
        )
    return settings, result


@backup_app.command("restore")
def backup_restore(
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
    """Restore a backup into an empty lakehouse (verified; all or nothing)."""
    state = State.of(ctx)
    _, result = restore_with_progress(
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
    if state.format(output) is Output.JSON:
        print_json(result.to_json())
    else:
        print_restore_result(result)
