"""Benchmark of the demo's change-batch run: incremental vs merge silver, with a breakdown.

Run from the repository root::

    .venv/bin/python bench/incremental.py [--scale-factor 0.1] [--rounds 3]
                                          [--variants merge,incremental]
                                          [--markdown docs/benchmarks.md]

What a user does: the first load of the TPC-H pipeline (``TPCH_DATA=<data> lakehouse run
tpch``), then the demo's change batch (``tpch.write_change_batch``: ~1 % of the orders
updated, 0.5 % deleted, a few inserted) as a second run — **that run is timed**, and only
that run: the batch's files are written once before any round, the first load once per
variant (its time is printed, not counted). Every round runs the same change batch from the
same loaded commit: the first load is tagged, each round branches from the tag and runs the
pipeline with ``ref=<that branch>`` (the run branches off it, ingests, builds, audits and
merges into it), so every round starts from identical tables. The variants, interleaved
round by round, differ only in ``pipeline.yaml``:

* **incremental** — ``pipelines/tpch`` as shipped: every silver model is
  ``materialized: incremental`` and reads only the bronze rows of the change batch;
* **merge** (the baseline, the pipeline before incremental models) — the same folder
  with every silver model ``materialized: merge``: each run reads all of bronze.

With both variants, both must publish the same gold tables (checked every round). Printed:
medians of the run's wall time and of its silver models, the paired ratio, the rows the
silver models read, and the median of every step of the run (ingestion, each model, the
audit and its slowest checks, the publish).
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from _common import (  # bench/ is the script's folder
    REPO,
    Report,
    Table,
    git_revision,
    median,
    paired_ratio,
    ratio_iqr,
    replace_section,
    same_rows,
    say,
    seconds,
)

from lakehouse import connect, tpch
from lakehouse.client import Lakehouse
from lakehouse.pipelines import RunEvent, RunResult, load_pipeline, run_pipeline

GOLD = ("gold.q1_pricing_summary", "gold.q3_shipping_priority", "gold.revenue_by_nation_month")
VARIANTS = ("merge", "incremental")
LOADED = "bench-loaded"
#: How many of the slowest checks the breakdown names one by one.
SLOWEST_CHECKS = 5


def section(scale_factor: str, *, baseline: bool) -> str:
    """The docs/benchmarks.md heading of one scale factor's results (per kind of comparison)."""
    if baseline:
        return (
            f"## Change-batch run at SF {scale_factor}, against a baseline's code "
            "(bench/incremental.py)"
        )
    return f"## Incremental models at SF {scale_factor} (bench/incremental.py)"


@dataclass
class Sample:
    """One change-batch run."""

    seconds: float
    silver_seconds: float
    silver_rows_read: int
    gold: dict[str, list[dict[str, object]]]
    #: Seconds by step of the run: ``ingest``, ``model <name>``, ``check <name>``, ...
    steps: dict[str, float] = field(default_factory=dict)


def merge_pipeline(work: Path) -> Path:
    """A copy of ``pipelines/tpch`` whose silver models are ``merge`` (the baseline)."""
    folder = work / "pipelines" / "tpch"
    shutil.copytree(REPO / "pipelines" / "tpch", folder, dirs_exist_ok=True)
    spec = folder / "pipeline.yaml"
    text = spec.read_text()
    assert "materialized: incremental" in text
    spec.write_text(text.replace("materialized: incremental", "materialized: merge"))
    return folder


def _run(
    lh: Lakehouse,
    pipeline: Path,
    data: Path,
    ref: str | None = None,
    steps: dict[str, float] | None = None,
) -> RunResult:
    """Run ``pipeline`` over ``data``; with ``steps``, record the seconds of every step.

    ``audit`` is the wall time from the end of the last model to the start of the publish
    (every check, and whatever the engine prepares for them).
    """
    marks: dict[str, float] = {}

    def listen(event: RunEvent) -> None:
        if steps is None or event.step == "branch":
            return
        if event.step == "model" and event.phase == "end":
            marks["models done"] = time.perf_counter()
        if event.step == "publish" and event.phase == "start" and "models done" in marks:
            steps["audit"] = time.perf_counter() - marks["models done"]
        if event.phase == "end":
            name = (
                event.step if event.step in ("ingest", "publish") else f"{event.step} {event.name}"
            )
            steps[name] = steps.get(name, 0.0) + event.seconds

    os.environ["TPCH_DATA"] = str(data)
    try:
        result = run_pipeline(lh, load_pipeline(pipeline), ref=ref, listener=listen)
    finally:
        os.environ.pop("TPCH_DATA", None)
    if not result.ok:
        raise SystemExit(f"run of {pipeline} failed: {result.error or result.status}")
    return result


def first_load(lh: Lakehouse, pipeline: Path, data: Path) -> float:
    """The first load into ``main``, tagged :data:`LOADED`; its seconds."""
    started = time.perf_counter()
    _run(lh, pipeline, data)
    elapsed = time.perf_counter() - started
    lh.create_tag(LOADED, lh.default_branch)
    return elapsed


def change_run(lh: Lakehouse, pipeline: Path, changes: Path, branch: str) -> Sample:
    """The change batch run on ``branch``, made from the loaded tag (only the run is timed)."""
    lh.create_branch(branch, LOADED)
    steps: dict[str, float] = {}
    started = time.perf_counter()
    result = _run(lh, pipeline, changes, ref=branch, steps=steps)
    elapsed = time.perf_counter() - started
    models = [m for m in result.models if m.model.startswith("silver.")]
    rows_read = 0
    for m in models:
        if m.incremental is not None:
            rows_read += m.incremental.rows
        else:  # a merge model reads its whole bronze table
            source = "bronze." + m.model.split(".", 1)[1]
            rows_read += lh.sql(f"SELECT count(*) AS n FROM {source}", branch).column(0)[0].as_py()
    gold = {name: lh.sql(f"SELECT * FROM {name} ORDER BY ALL", branch).to_pylist() for name in GOLD}
    lh.delete_branch(branch)
    return Sample(elapsed, sum(m.seconds for m in models), rows_read, gold, steps)


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a pipeline folder, run by the code in ``src``.

    ``src`` ``None``: this process's code, in this process; else a child process with
    ``PYTHONPATH=src`` runs each round (imports and connecting are not timed).
    """

    label: str
    pipeline: Path
    src: Path | None = None


def child_run(side: Side, home: Path, changes: Path, branch: str) -> Sample:
    """One round of ``side`` in a child process running the code in ``side.src``."""
    assert side.src is not None
    with tempfile.NamedTemporaryFile(suffix=".pickle") as out:
        env = {**os.environ, "PYTHONPATH": str(side.src)}
        command = [sys.executable, __file__, "--child", str(home), str(side.pipeline)]
        command += [str(changes), branch, out.name]
        subprocess.run(command, check=True, env=env)
        with open(out.name, "rb") as f:
            sample: Sample = pickle.load(f)
    return sample


def child_main(home: str, pipeline: str, changes: str, branch: str, out: str) -> int:
    """The child of :func:`child_run`: one timed round, its :class:`Sample` pickled to ``out``."""
    with connect(Path(home)) as lh:
        sample = change_run(lh, Path(pipeline), Path(changes), branch)
    with open(out, "wb") as f:
        pickle.dump(sample, f)
    return 0


def breakdown(samples: dict[str, list[Sample]], variants: Sequence[str]) -> Table:
    """Median seconds of every step, per variant: where the change-batch run's time goes."""
    names: dict[str, None] = {}
    for variant in variants:
        for s in samples[variant]:
            names.update(dict.fromkeys(s.steps))
    checks = [n for n in names if n.startswith("check ")]
    slowest = sorted(
        checks, key=lambda n: -median([s.steps.get(n, 0.0) for s in samples[variants[-1]]])
    )[:SLOWEST_CHECKS]
    shown = [n for n in names if not n.startswith("check ")] + slowest
    table = Table(
        "Where the change-batch run's time goes (median seconds per step)",
        ["step", *variants],
    )
    for name in shown:
        row = [name]
        for variant in variants:
            values = [s.steps[name] for s in samples[variant] if name in s.steps]
            row.append(seconds(median(values)) if values else "-")
        table.rows.append(row)
    table.notes.append(
        f"`model <name>` is one model's build (query, write, commit); `audit` is the wall time "
        f"of the {len(checks)} checks (from the last model's end to the publish), of which the "
        f"{len(slowest)} slowest are listed (`check <name>`: that check's own time); `ingest` "
        "loads the batch's files into bronze; `publish` merges the run branch."
    )
    return table


def main(argv: Sequence[str] | None = None) -> int:
    given = list(argv if argv is not None else sys.argv[1:])
    if given[:1] == ["--child"]:
        return child_main(*given[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-factor", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated: merge (the baseline), incremental (the shipped pipeline)",
    )
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="instead of the variants: the shipped pipeline run by the lakehouse package in "
        "this folder (e.g. <worktree of main>/src) against this checkout's, rounds "
        "interleaved, each in a child process, on one first load",
    )
    parser.add_argument("--markdown", type=Path, help="write the section into this file")
    args = parser.parse_args(argv)
    variants = [v for v in VARIANTS if v in args.variants.split(",")]
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown or not variants or args.rounds < 1:
        parser.error(f"--variants takes {', '.join(VARIANTS)}; --rounds at least 1")
    if args.baseline_src is not None and not (args.baseline_src / "lakehouse").is_dir():
        parser.error(f"--baseline-src {args.baseline_src}: no lakehouse package there")
    started = datetime.now(UTC)
    sf = tpch.format_scale_factor(args.scale_factor)
    dataset = tpch.generate(args.scale_factor)
    report = Report()
    loads: dict[str, float] = {}
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-incremental-") as tmp:
        work = Path(tmp)
        batch = tpch.write_change_batch(dataset.path, work / "changes")
        shipped = REPO / "pipelines" / "tpch"
        if args.baseline_src is not None:
            base = args.baseline_src.resolve()
            sides = [
                Side(f"baseline {_revision(base)}", shipped, base),
                Side(f"this checkout {git_revision()}", shipped, REPO / "src"),
            ]
        else:
            pipelines = {"merge": merge_pipeline(work), "incremental": shipped}
            sides = [Side(v, pipelines[v]) for v in variants]
        samples: dict[str, list[Sample]] = {side.label: [] for side in sides}
        homes: dict[str, Path] = {}
        by_pipeline: dict[Path, Path] = {}
        for side in sides:
            if side.pipeline in by_pipeline:  # same pipeline, same data: one first load
                homes[side.label] = by_pipeline[side.pipeline]
                continue
            homes[side.label] = by_pipeline[side.pipeline] = work / f"home-{len(by_pipeline)}"
            say(f"{side.label}: first load at SF {sf} (not timed)")
            with connect(homes[side.label], create=True) as lh:
                loads[side.label] = first_load(lh, side.pipeline, dataset.path)
            say(f"  first load {seconds(loads[side.label])}")
        load_rounds = os.getloadavg()[0]
        for i in range(args.rounds):
            for n, side in enumerate(sides):
                say(f"round {i + 1}/{args.rounds}: {side.label}")
                branch = f"bench/side-{n}-round-{i + 1}"
                if side.src is None:
                    with connect(homes[side.label]) as lh:
                        sample = change_run(lh, side.pipeline, batch.path, branch)
                else:
                    sample = child_run(side, homes[side.label], batch.path, branch)
                samples[side.label].append(sample)
                say(f"  change-batch run {seconds(sample.seconds)}")
            first, last = samples[sides[0].label][-1], samples[sides[-1].label][-1]
            if not all(same_rows(first.gold[g], last.gold[g]) for g in GOLD):
                raise SystemExit(f"round {i + 1}: the gold tables differ between the sides")
    load_end = os.getloadavg()[0]
    header = [
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'}: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, DuckDB {duckdb.__version__}, "
        f"pyarrow {pa.__version__}; load average (1 min) {load_start:.1f} at start, "
        f"{load_rounds:.1f} when the timed rounds began, {load_end:.1f} at the end. "
        f"Command: `python bench/incremental.py {' '.join(_shown(given))}`."
    ]
    print(header[0])
    labels = [side.label for side in sides]
    table = Table(
        f"Demo change-batch run at SF {sf}",
        ["side", "change-batch run (median)", "of which silver", "rows read by silver",
         "first load (not timed)"],
    )  # fmt: skip
    for side in sides:
        s = samples[side.label]
        table.rows.append(
            [
                side.label,
                seconds(median([x.seconds for x in s])),
                seconds(median([x.silver_seconds for x in s])),
                f"{s[0].silver_rows_read:,}",
                seconds(loads[side.label]) if side.label in loads else "(shared)",
            ]
        )
    if len(sides) == 2:
        a, b = samples[labels[1]], samples[labels[0]]
        run_ratio = paired_ratio([x.seconds for x in a], [x.seconds for x in b])
        silver_ratio = paired_ratio([x.silver_seconds for x in a], [x.silver_seconds for x in b])
        table.notes.append(
            f"Speed-up of the change-batch run ({labels[0]} / {labels[1]}, paired): "
            f"{ratio_iqr(run_ratio)}; of its silver models: {ratio_iqr(silver_ratio)}. "
            f"{args.rounds} rounds, interleaved; the same gold tables on both sides every round."
        )
    for side in sides:
        every = ", ".join(seconds(x.seconds) for x in samples[side.label])
        table.notes.append(f"Every round of {side.label}: {every}.")
    where = (
        "in a child process per round (imports and connecting not timed)"
        if any(side.src for side in sides)
        else "in this process"
    )
    table.notes.append(
        f"Change batch: {batch.updated_orders:,} orders updated, {batch.deleted_orders:,} "
        f"deleted ({batch.deleted_lineitems:,} line items), {batch.inserted_orders:,} inserted "
        f"({batch.inserted_lineitems:,} line items), written once before the rounds. Each round "
        "branches from the tagged first load (one per pipeline, run by this checkout's code) "
        "and times the change-batch run only (ingest, silver, gold, checks, merge into the "
        f"round's branch), {where}."
    )
    report.add(table)
    report.add(breakdown(samples, labels))
    measured_side = sides[-1].label
    if args.baseline_src is not None or "incremental" in variants:
        target = 5.0 if args.scale_factor <= 0.1 else 15.0
        measured = median([x.seconds for x in samples[measured_side]])
        report.check(
            f"demo change-batch run at SF {sf}",
            seconds(measured),
            f"<= {target:g} s",
            measured <= target,
        )
    print("\n" + report.summary().text())
    if args.markdown:
        heading = section(sf, baseline=args.baseline_src is not None)
        replace_section(args.markdown, heading, report.markdown(heading, header))
        print(f"\nSection written to {args.markdown}")
    return 0


def _shown(argv: Sequence[str]) -> list[str]:
    """``argv`` as the docs show it: the baseline's folder is this machine's, not the reader's."""
    shown = list(argv)
    for i, arg in enumerate(shown[:-1]):
        if arg == "--baseline-src":
            shown[i + 1] = "<checkout of the baseline>/src"
    return [
        a.split("=", 1)[0] + "=<checkout of the baseline>/src"
        if a.startswith("--baseline-src=")
        else a
        for a in shown
    ]


def _revision(src: Path) -> str:
    """The short git revision of the checkout holding ``src``."""
    found = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() or str(src)


if __name__ == "__main__":
    raise SystemExit(main())
