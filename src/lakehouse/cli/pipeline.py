"""The pipeline development loop: ``plan``, ``test`` and ``pipeline new``.

::

    lakehouse plan PIPELINE [--select MODEL[+]]... [--ref REF]   (= lakehouse run --dry-run)
    lakehouse test [PIPELINE] [--model MODEL]...
    lakehouse pipeline new NAME [--pipelines-dir DIR]

``plan`` binds every model and check against the schemas of the ref and writes nothing
(:mod:`lakehouse.pipelines.plan`); it exits with 1 when one does not bind. ``test`` runs
the model unit tests (``<model>.test.yaml``) in DuckDB without the catalog
(:mod:`lakehouse.pipelines.modeltests`); it exits with 1 when one fails. ``pipeline new``
writes a pipeline that runs as it is (:mod:`lakehouse.pipelines.scaffold`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lakehouse.cli._common import Output, OutputOpt, RefOpt, State, console, print_json

if TYPE_CHECKING:
    from rich.console import Console

    from lakehouse.pipelines.modeltests import ModelTestResult
    from lakehouse.pipelines.plan import PipelinePlan

PipelinesDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--pipelines-dir", help="Folder holding the pipelines.", show_default="./pipelines"
    ),
]
SelectOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        "-s",
        metavar="MODEL[+]",
        help="Only this model (MODEL+: and every model depending on it); repeatable.",
        show_default=False,
    ),
]

pipeline_app = typer.Typer(help="Create pipelines.", no_args_is_help=True, rich_markup_mode=None)

_STYLES = {"ok": "green", "pass": "green", "skip": "dim", "error": "bold red", "fail": "bold red"}


def plan_command(
    ctx: typer.Context,
    pipeline: Annotated[
        str, typer.Argument(metavar="PIPELINE", help="Pipeline name or path to its folder.")
    ],
    select: SelectOpt = None,
    ref: RefOpt = None,
    pipelines_dir: PipelinesDirOpt = None,
    output: OutputOpt = None,
) -> None:
    """Check a pipeline without running it: bind every model and check to the ref's schemas.

    Parses pipeline.yaml and the SQL, orders the models by dependency, and binds each
    model and check in DuckDB against empty tables with the schemas of REF (or of the
    models planned before it). Nothing is read or written. A misspelled table or column
    fails here, with the model or check and the line. Exit code 1 when one fails.
    """
    show_plan(ctx, pipeline, select=select, ref=ref, pipelines_dir=pipelines_dir, output=output)


def show_plan(
    ctx: typer.Context,
    pipeline: str,
    *,
    select: list[str] | None,
    ref: str | None,
    pipelines_dir: Path | None,
    output: Output | None,
) -> None:
    """Plan ``pipeline`` and print the plan (``plan`` and ``run --dry-run``)."""
    from lakehouse.pipelines import load_pipeline
    from lakehouse.pipelines.plan import plan_pipeline

    state = State.of(ctx)
    loaded = load_pipeline(pipeline, pipelines_dir)
    if select:
        loaded = loaded.select(select)
    plan = plan_pipeline(state.lakehouse(), loaded, ref=ref or state.ref)
    if state.format(output) is Output.JSON:
        print_json(plan.to_json())
    else:
        print_plan(console(), plan)
    if not plan.ok:
        raise typer.Exit(1)


def print_plan(out: Console, plan: PipelinePlan) -> None:
    """The steps of ``plan``, one line each, then the outcome."""
    from rich.text import Text

    out.print(f"plan of pipeline {plan.pipeline} on {plan.ref} at {plan.hash[:12]}")
    for step in plan.steps:
        line = Text("  ")
        line.append(f"{step.status:<5}", style=_STYLES.get(step.status, ""))
        line.append(f" {step.kind:<6} {step.name}")
        if step.detail:
            line.append(f"  {step.detail}", style="dim" if step.status == "ok" else "")
        if step.where and step.status == "error":
            line.append(f"  ({step.where})")
        out.print(line)
    counts = {s: sum(1 for x in plan.steps if x.status == s) for s in ("ok", "skip", "error")}
    verdict = "binds" if plan.ok else "does NOT bind"
    out.print(
        f"pipeline {plan.pipeline} {verdict}: {counts['ok']} ok, {counts['skip']} skipped, "
        f"{counts['error']} error(s); nothing was written"
    )


def model_tests_command(
    ctx: typer.Context,
    pipeline: Annotated[
        str | None,
        typer.Argument(
            metavar="PIPELINE",
            help="Pipeline name or path (default: every pipeline of --pipelines-dir).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", help="Only this model's tests; repeatable.", show_default=False
        ),
    ] = None,
    pipelines_dir: PipelinesDirOpt = None,
    output: OutputOpt = None,
) -> None:
    """Run the model unit tests: fixture rows in, expected rows out, in DuckDB.

    Each model's tests are in <model>.test.yaml next to its .sql file (given: rows of
    every table it reads; expect: its result rows). The catalog is not touched.
    Exit code 1 when a test fails.
    """
    from lakehouse.pipelines import PipelineNotFoundError, load_pipeline
    from lakehouse.pipelines.definition import DEFAULT_PIPELINES_DIR, PIPELINE_FILE
    from lakehouse.pipelines.modeltests import run_model_tests

    state = State.of(ctx)
    if pipeline is not None:
        pipelines = [load_pipeline(pipeline, pipelines_dir)]
    else:
        if model:
            raise typer.BadParameter("--model needs a PIPELINE", param_hint="--model")
        base = pipelines_dir or DEFAULT_PIPELINES_DIR
        folders = sorted(p.parent for p in base.glob(f"*/{PIPELINE_FILE}"))
        if not folders:
            raise PipelineNotFoundError(f"no pipeline in {base} (no */{PIPELINE_FILE})")
        pipelines = [load_pipeline(folder) for folder in folders]
    results: list[ModelTestResult] = []
    for loaded in pipelines:
        names = [loaded.model(m).name if loaded.has_model(m) else m for m in model or ()]
        unknown = [m for m in names if not loaded.has_model(m)]
        if unknown:
            loaded.select(unknown)  # raises, with "did you mean"
        results.extend(run_model_tests(loaded, names))
    if state.format(output) is Output.JSON:
        print_json({"tests": [r.to_json() for r in results], "ok": all(r.passed for r in results)})
    else:
        print_tests(console(), results)
    if not all(r.passed for r in results):
        raise typer.Exit(1)


def print_tests(out: Console, results: list[ModelTestResult]) -> None:
    """One line per test, the rows of failed ones, then the totals."""
    from rich.text import Text

    if not results:
        out.print("no model tests (write <model>.test.yaml next to a model's .sql file)")
        return
    for result in results:
        line = Text("  ")
        line.append(f"{result.status:<5}", style=_STYLES.get(result.status, ""))
        line.append(f" {result.model}: {result.name}")
        if not result.passed:
            line.append(f"  {result.message}  ({result.where})")
        out.print(line)
        for label, rows in (("missing", result.missing), ("unexpected", result.unexpected)):
            for row in rows:
                out.print(f"        {label}: {row}")
    failed = sum(1 for r in results if not r.passed)
    out.print(f"{len(results) - failed} passed, {failed} failed")


@pipeline_app.command("new")
def new_command(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Pipeline name (lowercase, digits, '_').")
    ],
    pipelines_dir: PipelinesDirOpt = None,
    output: OutputOpt = None,
) -> None:
    """Create a pipeline that runs as it is: source, silver, gold, checks, tests, data."""
    from lakehouse.pipelines.definition import display_path
    from lakehouse.pipelines.scaffold import new_pipeline

    state = State.of(ctx)
    files = new_pipeline(name, pipelines_dir)
    if state.format(output) is Output.JSON:
        print_json({"pipeline": name, "files": [display_path(f) for f in files]})
        return
    out = console()
    out.print(f"Created pipeline {name}:")
    for file in files:
        out.print(f"  {display_path(file)}")
    flag = f" --pipelines-dir {pipelines_dir}" if pipelines_dir is not None else ""
    out.print("Next:")
    out.print(f"  lakehouse test {name}{flag}   # model unit tests, no catalog")
    out.print(f"  lakehouse plan {name}{flag}   # bind models and checks, write nothing")
    out.print(f"  lakehouse run {name}{flag}    # ingest, build, check, merge into main")
