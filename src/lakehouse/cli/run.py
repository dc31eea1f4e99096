"""``lakehouse run PIPELINE [--ref REF] [--engine duckdb|spark] [--full-refresh [MODEL…]]``.

Also ``--select MODEL[+]`` (that model, and with ``+`` every model depending on it,
without ingestion) and ``--dry-run`` (the plan of :mod:`lakehouse.cli.pipeline`).

A write-audit-publish run. ``--full-refresh`` rebuilds the incremental models from
everything (all of them, or only the MODELs named after the pipeline).

Prints one line per step as it finishes (a spinner while it runs), then a summary:
models written, checks, and for each failed or warning check its failing row count and
sample rows. Exits with 1 when the run did not succeed (``main`` is then unchanged and
the run branch kept).

Ctrl-C stops the run with exit code 130 and one line on stderr saying what it left:
``interrupted; main unchanged; run branch run/tpch/… deleted`` (a run branch that holds
no commit yet is deleted, one with partial work is kept for inspection). That holds
also when the SIGINT lands inside a DuckDB query, which DuckDB reports as its own error.

A reader of stdout that goes away (``| head``) stops the progress lines, not the run.

A source folder that does not exist because its ``${VAR}`` is unset names the variable
(and, for ``TPCH_DATA``, the command that makes the data).
"""

from __future__ import annotations

import json
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lakehouse.cli._common import (
    Output,
    OutputOpt,
    RefOpt,
    State,
    console,
    print_json,
    sigint_seen,
)
from lakehouse.cli.pipeline import SelectOpt, show_plan

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

    from lakehouse.client import Lakehouse
    from lakehouse.pipelines import Pipeline
    from lakehouse.pipelines.checks import CheckResult
    from lakehouse.pipelines.runner import RunEvent, RunResult


class EngineChoice(StrEnum):
    """Values of ``--engine``."""

    DUCKDB = "duckdb"
    SPARK = "spark"


_LABELS = {
    "ok": ("ok", "green"),
    "fail": ("FAIL", "bold red"),
    "warn": ("warn", "yellow"),
    "error": ("ERROR", "bold red"),
    "skip": ("skip", "dim"),
}


class Progress:
    """Prints run events: a spinner while a step runs, a line when it ends.

    When the reader of stdout goes away (``lakehouse run tpch | head -3``), rich sends
    the rest of the output to ``/dev/null`` and raises ``SystemExit(1)``; the run must
    not stop half-way for that, so the progress lines stop and the run goes on.
    """

    def __init__(self, out: Console) -> None:
        self.out = out
        self._status: Status | None = None
        self._gone = False

    def __call__(self, event: RunEvent) -> None:
        """Show ``event``."""
        if self._gone:
            return
        try:
            self._show(event)
        except SystemExit as exc:
            if not isinstance(exc.__context__, BrokenPipeError):
                raise
            self._gone = True

    def _show(self, event: RunEvent) -> None:
        if event.phase == "start":
            self._stop()
            self._status = self.out.status(f"{event.step} {event.name} …")
            self._status.start()
            return
        self._stop()
        from rich.text import Text

        label, style = _LABELS.get(event.status or "ok", (event.status or "", ""))
        line = Text("  ")
        line.append(f"{label:<5}", style=style)
        line.append(f" {event.step:<7} {event.name}")
        if event.detail:
            line.append(f"  {event.detail}", style="dim" if event.status == "ok" else "")
        if event.seconds:
            line.append(f"  {event.seconds:.2f}s", style="dim")
        self.out.print(line)

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def close(self) -> None:
        """Stop any spinner."""
        if not self._gone:
            self._stop()


def run_command(
    ctx: typer.Context,
    pipeline: Annotated[
        str,
        typer.Argument(
            metavar="PIPELINE",
            help="Pipeline name (a folder of --pipelines-dir) or path to its folder.",
        ),
    ],
    models: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="MODEL",
            help="With --full-refresh: only these incremental models (default: all).",
            show_default=False,
        ),
    ] = None,
    ref: RefOpt = None,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Rebuild incremental models from all their sources' rows, not only new ones.",
        ),
    ] = False,
    pipelines_dir: Annotated[
        Path | None,
        typer.Option(
            "--pipelines-dir",
            help="Folder holding the pipelines.",
            show_default="./pipelines",
        ),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Run id (default: time and a random suffix).")
    ] = None,
    keep_branch: Annotated[
        bool, typer.Option("--keep-branch", help="Keep the run branch after merging.")
    ] = False,
    engine: Annotated[
        EngineChoice | None,
        typer.Option(
            "--engine",
            "-e",
            case_sensitive=False,
            help="Compute engine for the models.",
            show_default="LAKEHOUSE_COMPUTE__ENGINE: duckdb, spark in the cluster profile",
        ),
    ] = None,
    select: SelectOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Only plan: bind every model and check to the ref's schemas (lakehouse plan).",
        ),
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Run a pipeline: branch, ingest, build silver and gold, check, merge into main if clean.

    With --ref (or NESSIE_REF) the run starts from that branch and merges into it
    when clean: every branch gets the same audit as main.
    Incremental models read only the rows their sources gained since their last run;
    --full-refresh [MODEL]... rebuilds them (or the ones named) from everything.
    --select MODEL runs that model only (MODEL+: and what depends on it), without
    ingestion, on a run branch audited like any run. --dry-run only plans (writes nothing).
    Exit code 1 when a blocking check fails (main is unchanged, the run branch is kept).
    """
    from lakehouse.errors import LakehouseError
    from lakehouse.pipelines import PipelineConfigError, load_pipeline, run_pipeline
    from lakehouse.pipelines.runner import new_run_id, run_branch

    if models and not full_refresh:
        raise PipelineConfigError(
            f"unexpected argument(s) {' '.join(models)}: models are named only with "
            "--full-refresh (lakehouse run PIPELINE --full-refresh MODEL...)"
        )

    if dry_run:
        show_plan(ctx, pipeline, select=select, ref=ref, pipelines_dir=pipelines_dir, output=output)
        return
    state = State.of(ctx)
    as_json = state.format(output) is Output.JSON
    lh = state.lakehouse()
    loaded = load_pipeline(pipeline, pipelines_dir)
    if select:
        loaded = loaded.select(select)
    run_id = run_id or new_run_id()
    given = ref if ref is not None else lh.settings.ref
    branch = given or run_branch(loaded.name, run_id)
    before = lh.resolve(lh.default_branch).hash
    out = console()
    progress = None if as_json else Progress(out)
    try:
        result = run_pipeline(
            lh,
            loaded,
            ref=ref,
            run_id=run_id,
            listener=progress,
            keep_branch=keep_branch,
            engine=engine.value if engine is not None else None,
            full_refresh=list(models) if models else full_refresh,
        )
    except KeyboardInterrupt:
        interrupted = True
    except LakehouseError as exc:
        # DuckDB turns Ctrl-C into "Query interrupted", which the run reports as a failed
        # model: the SIGINT the CLI noted says what it was
        if not sigint_seen():
            if _caused_by_missing_source(exc) and (hint := missing_data_hint(loaded)) is not None:
                exc.args = (f"{exc} ({hint})",)
            raise
        interrupted = True
    else:
        interrupted = not result.ok and sigint_seen()  # e.g. a check's query interrupted
    finally:
        if progress is not None:
            progress.close()
    if interrupted:
        message = after_interrupt(lh, branch, publishing=not given, before=before)
        if state.errors_as_json or as_json:
            error = {"type": "Interrupted", "message": message, "hint": None}
            typer.echo(json.dumps({"error": error}), err=True)
        else:
            typer.echo(message, err=True)
        raise typer.Exit(130)
    if as_json:
        print_json(result.to_json())
    else:
        print_summary(out, result)
    if not result.ok:
        raise typer.Exit(1)


def after_interrupt(lh: Lakehouse, branch: str, *, publishing: bool, before: str) -> str:
    """Tidy up after Ctrl-C and say what is left: the default branch, the run branch.

    A run branch still at the commit it was created from holds nothing and is deleted;
    one with commits is kept for inspection. A branch given with ``--ref`` is never
    touched.
    """
    from lakehouse.errors import LakehouseError, ReferenceNotFoundError

    target = lh.default_branch
    try:
        now = lh.resolve(target).hash
        parts = [
            "interrupted",
            f"{target} unchanged" if now == before else f"{target} now at {now[:12]}",
        ]
        if not publishing:
            parts.append(f"branch {branch} may hold part of the run")
            return "; ".join(parts)
        try:
            head = lh.resolve(branch).hash
        except ReferenceNotFoundError:
            parts.append(f"run branch {branch} not created")
            return "; ".join(parts)
        if head == before:
            lh.delete_branch(branch, expected_hash=head)
            parts.append(f"run branch {branch} deleted (it held no commit)")
        else:
            parts.append(f"run branch {branch} kept (lakehouse log --ref {branch})")
        return "; ".join(parts)
    except LakehouseError as exc:
        return f"interrupted; could not check what the run left: {exc}"


def _caused_by_missing_source(exc: BaseException) -> bool:
    from lakehouse.ingest import SourceNotFoundError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, SourceNotFoundError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


_VARIABLE = re.compile(r"\$\{(\w+)(?::-[^}]*)?\}")


def missing_data_hint(pipeline: Pipeline) -> str | None:
    """Why a source folder is missing when its ``${VAR}`` is unset, and how to fix it."""
    from lakehouse import tpch
    from lakehouse.pipelines.definition import PIPELINE_FILE

    text = (pipeline.path / PIPELINE_FILE).read_text(encoding="utf-8")
    unset = [v for v in dict.fromkeys(_VARIABLE.findall(text)) if v not in os.environ]
    if not unset:
        return None
    if tpch.DATA_VARIABLE in unset:
        return (
            f"{tpch.DATA_VARIABLE} is not set; make the TPC-H data and point it there: "
            f"{tpch.data_command()}"
        )
    return f"{', '.join(unset)} not set: export {unset[0]}=FOLDER"


def print_summary(out: Console, result: RunResult) -> None:
    """Models, checks, failing samples and the outcome of a run."""
    from rich.table import Table as RichTable

    if result.models:
        models = RichTable(title="models", title_justify="left", box=None, header_style="bold")
        for name in ("MODEL", "MATERIALIZED", "ROWS", "INSERTED", "UPDATED", "DELETED", "TIME"):
            models.add_column(
                name, justify="left" if name in ("MODEL", "MATERIALIZED") else "right"
            )
        for m in result.models:
            w = m.write
            models.add_row(
                m.model,
                m.materialized,
                str(w.rows),
                str(w.inserted),
                str(w.updated),
                str(w.deleted),
                f"{m.seconds:.2f}s",
            )
        out.print()
        out.print(models)
        for m in result.models:
            for read in m.incremental.full_reads if m.incremental else ():
                out.print(f"[dim]{m.model} read {read.table} in full: {read.reason}[/dim]")
    if result.checks:
        passed = sum(1 for c in result.checks if c.passed)
        out.print()
        out.print(
            f"checks: {passed} passed, {len(result.failed_checks)} failed (blocking), "
            f"{len(result.warnings)} warning(s)"
        )
        for check in [*result.failed_checks, *result.warnings]:
            print_check(out, check)
    for batch in result.quarantined:
        out.print(
            f"[bold red]quarantined[/] batch {batch.batch_id} of {batch.source} -> {batch.table}: "
            f"{batch.message}"
        )
    out.print()
    if result.ok:
        where = (
            f"audited on {result.branch}, merged into {result.target} at "
            f"{(result.merge_hash or '')[:12]}"
            if result.merged
            else f"on branch {result.branch} (not merged)"
        )
        out.print(f"[bold green]Run {result.run_id} succeeded[/]: {where}")
        return
    reason = result.error or f"{len(result.failed_checks)} blocking check(s) failed"
    if result.quarantined and not result.failed_checks and not result.error:
        reason = f"{len(result.quarantined)} batch(es) quarantined"
    kept = f"; {result.target} unchanged" if result.target else ""
    out.print(
        f"[bold red]Run {result.run_id} {result.status.upper()}[/]: {reason}{kept}; "
        f"branch {result.branch} kept"
    )


def print_check(out: Console, check: CheckResult) -> None:
    """A failed or warning check: name, model, failing rows, sample rows."""
    from rich.table import Table as RichTable

    from lakehouse.query.output import text

    label = "FAIL" if check.blocking else "warn"
    style = "bold red" if check.blocking else "yellow"
    model = f" on {check.model}" if check.model else ""
    out.print()
    out.print(
        f"[{style}]{label}[/] {check.name}{model}: "
        f"{check.message or f'{check.failing_rows} failing row(s)'}"
    )
    if not check.sample:
        return
    sample = RichTable(box=None, pad_edge=False, header_style="dim", padding=(0, 1))
    columns: list[str] = list(check.sample[0])
    for column in columns:
        sample.add_column(column)
    for row in check.sample:
        values: list[Any] = [row.get(c) for c in columns]
        sample.add_row(*("NULL" if v is None else text(v) for v in values))
    out.print(sample)
    if check.failing_rows > len(check.sample):
        out.print(f"  … {check.failing_rows - len(check.sample)} more failing row(s)")
