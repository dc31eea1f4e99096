"""The TPC-H lakehouse demo: ``python -m lakehouse.demo [--home PATH] [--scale-factor SF]``.

The demo's home is ``--home``, else the ``lakehouse`` command's own default
(``LAKEHOUSE_HOME``, else ``./.lakehouse``), so every command it prints at the end works
as printed, without ``--home``, from the folder the demo ran in. The home must not hold
a lakehouse yet, except one an earlier demo made (it carries :data:`MARKER`): that one
is replaced. ``--temporary`` runs in a temporary folder, deleted at the end.

It shows write-audit-publish end to end with the shipped pipeline ``pipelines/tpch``:

1. **init** — a new lakehouse (catalog, warehouse buckets);
2. **data** — TPC-H at scale factor ``SF`` (default 0.1) from ``tpchgen-cli``, cached in
   ``~/.cache/lakehouse/tpch/sf<SF>`` (:mod:`lakehouse.tpch`);
3. **first load** — ``lakehouse run tpch``: a run branch, the eight CSV files landed in
   ``raw`` and loaded into ``bronze``, silver and gold built, every check run, then the
   merge into ``main``; tagged ``tpch-initial``;
4. **changes** — a change batch (about 1 % of the orders updated, 0.5 % deleted with
   their line items, a few new ones; ``_op`` = U/D/I) through the same pipeline: the
   merge materialization of ``silver.orders`` and ``silver.lineitem`` applies it;
   tagged ``tpch-changes``;
5. **ingestion on main while a run is in flight** — a run brings new orders; when its
   audit has passed and before it publishes (the runner's ``publish`` start event), other
   new orders and new customers are ingested on ``main`` (``bronze.orders``,
   ``bronze.lineitem``, ``bronze.customer``). The run still publishes: the demo prints, per
   table, who changed it and what the merge did (``bronze.orders`` and ``bronze.lineitem``,
   ingested on both sides: ``merged by content (…)``), then checks that ``main`` holds
   both sides' rows (row counts) and that ``catalog check`` finds no problem. What does
   not merge by content yet: docs/sql-and-pipelines.md, "Publishing after ``main`` moved
   on";
6. **broken batch** — negative prices, a missing customer key, an unknown status,
   orphan line items: the checks fail, nothing is merged, ``main`` is untouched and the
   run branch is kept for inspection;
7. the gold tables, the log of ``main``, and commands to explore further.

Everything goes through the library the ``lakehouse`` command uses
(:func:`lakehouse.pipelines.run_pipeline`, :func:`lakehouse.query.sql`), so each step
can be repeated by hand with the commands printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table as RichTable

from lakehouse import tpch
from lakehouse.client import Lakehouse, connect, sqlite_path
from lakehouse.config import load_settings
from lakehouse.errors import ConfigError, LakehouseError

if TYPE_CHECKING:
    import pyarrow as pa

    from lakehouse.pipelines import Pipeline, RunEvent, RunResult, WriteResult

#: The pipeline the demo runs.
PIPELINE = "tpch"
#: The environment variable ``pipelines/tpch/pipeline.yaml`` reads its folder from.
DATA_VARIABLE = tpch.DATA_VARIABLE
#: File in a home the demo made: a later demo may replace that home.
MARKER = "demo.json"
#: The rows of the broken batch, as they sit on the rejected run's branch.
BROKEN_ROWS_SQL = (
    "SELECT o_orderkey, o_custkey, o_orderstatus, o_totalprice FROM silver.orders "
    "WHERE o_totalprice < 0 OR o_custkey IS NULL OR o_orderstatus = 'X'"
)
#: Tags the demo sets on ``main`` after the first load and after the changes.
TAG_INITIAL = "tpch-initial"
TAG_CHANGES = "tpch-changes"
#: Share of the orders the run in flight brings as new orders (the concurrent step).
LATE_ORDERS_FRACTION = 0.002
#: Tables whose rows the concurrent step counts on ``main`` before and after the publish.
CONCURRENT_TABLES = (
    "bronze.customer",
    "bronze.orders",
    "bronze.lineitem",
    "silver.orders",
    "silver.lineitem",
)
#: What ingestion on main loads in the concurrent step: bronze table -> file pattern.
ON_MAIN_FILES = {
    "bronze.customer": "customer.csv",
    "bronze.orders": "orders*.csv",
    "bronze.lineitem": "lineitem*.csv",
}


def pipeline_dir() -> Path:
    """The shipped ``pipelines/tpch`` folder (the repository's, else the installed copy)."""
    repo = Path(__file__).resolve().parents[2] / "pipelines" / PIPELINE
    if (repo / "pipeline.yaml").is_file():
        return repo
    packaged = Path(__file__).resolve().parent / "_pipelines" / PIPELINE
    if (packaged / "pipeline.yaml").is_file():
        return packaged
    raise ConfigError(f"the {PIPELINE} pipeline is missing (looked in {repo} and {packaged})")


@dataclass
class DemoResult:
    """What the demo did (for tests and benchmarks)."""

    home: Path
    scale_factor: float
    runs: dict[str, RunResult] = field(default_factory=dict)
    #: Head of ``main`` before and after the broken batch (equal: it was rejected).
    main_before_broken: str = ""
    main_after_broken: str = ""
    change_batch: tpch.ChangeBatch | None = None
    broken_batch: tpch.BrokenBatch | None = None
    #: The concurrent step: the run's batch, the batch ingested into ``main`` meanwhile,
    #: rows ingested there per table, each changed table's outcome at publish (``run``,
    #: ``main``, or how a table both changed was merged) and the catalog check's verdict.
    late_orders: tpch.ChangeBatch | None = None
    new_customers: tpch.CustomerBatch | None = None
    main_orders: tpch.ChangeBatch | None = None
    ingested_on_main: dict[str, int] = field(default_factory=dict)
    publish: dict[str, str] = field(default_factory=dict)
    concurrent_check_ok: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


# -- helpers -------------------------------------------------------------------------------


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    return "NULL" if value is None else str(value)


def arrow_table(data: pa.Table, title: str | None = None) -> RichTable:
    """A rich table of an Arrow table's rows (numbers right-aligned)."""
    import pyarrow as pa

    table = RichTable(title=title, title_justify="left", title_style="bold")
    for f in data.schema:
        numeric = pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
        numeric = numeric or pa.types.is_decimal(f.type)
        table.add_column(f.name, justify="right" if numeric else "left")
    for row in data.to_pylist():
        table.add_row(*(_fmt(v) for v in row.values()))
    return table


def _shell_word(arg: str) -> str:
    # SQL reads better in double quotes when it holds single quotes and nothing the
    # shell would expand inside double quotes.
    if "'" in arg and not any(c in arg for c in '"$`\\!'):
        return f'"{arg}"'
    return shlex.quote(arg)


def _changed_rows(write: WriteResult) -> int:
    return write.inserted + write.updated + write.deleted


def _quote(args: Sequence[str]) -> str:
    return " ".join(_shell_word(a) for a in args)


def _shell_path(path: Path) -> str:
    """``path`` relative to the working directory when inside it, else absolute."""
    absolute = path.absolute()
    try:
        relative = absolute.relative_to(Path.cwd())
    except ValueError:
        return str(absolute)
    return str(relative) if str(relative) != "." else "."


def lakehouse_command() -> list[str]:
    """How a shell reaches the ``lakehouse`` command of this installation.

    ``lakehouse`` when it is on ``PATH`` (an activated venv), else the console script
    next to this interpreter (``.venv/bin/lakehouse``), else ``python -m lakehouse.cli``.
    """
    beside = Path(sys.executable).absolute().parent / "lakehouse"
    found = shutil.which("lakehouse")
    if found and (not beside.exists() or Path(found).absolute() == beside):
        return ["lakehouse"]
    if beside.exists():
        return [_shell_path(beside)]
    return [tpch.python_command(), "-m", "lakehouse.cli"]


class RunProgress:
    """A rich progress bar over a run's steps (ingest, each model, each check, publish)."""

    def __init__(self, console: Console, pipeline: Pipeline, title: str) -> None:
        total = len(pipeline.config.sources) + len(pipeline.models) + len(pipeline.checks) + 1
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task(title, total=total)
        self.title = title

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: RunEvent) -> None:
        if event.step == "branch":
            return
        if event.phase == "start":
            self.progress.update(self.task, description=f"{self.title}: {event.step} {event.name}")
            return
        self.progress.advance(self.task)


# -- the demo ------------------------------------------------------------------------------


class Demo:
    """The demo's steps, printing to ``console``."""

    def __init__(self, lh: Lakehouse, console: Console, result: DemoResult) -> None:
        self.lh = lh
        self.console = console
        self.result = result
        self.pipeline_path = pipeline_dir()

    @contextmanager
    def step(self, title: str, key: str) -> Iterator[None]:
        self.console.rule(f"[bold]{title}")
        started = time.perf_counter()
        yield
        self.result.timings[key] = time.perf_counter() - started

    def sql(self, query: str, ref: str | None = None) -> pa.Table:
        from lakehouse import query as q

        return q.sql(self.lh, query, ref)

    # -- data ---------------------------------------------------------------------------

    def generate(self) -> tpch.Dataset:
        sf = self.result.scale_factor
        target = tpch.dataset_dir(sf)
        if tpch.is_complete(target):
            dataset = tpch.generate(sf)
            self.console.print(f"TPC-H sf{tpch.format_scale_factor(sf)} from the cache: {target}")
        else:
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            ) as progress:
                task = progress.add_task(f"tpchgen-cli csv -s {tpch.format_scale_factor(sf)}")

                def update(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                dataset = tpch.generate(sf, on_progress=update)
            self.console.print(
                f"generated TPC-H sf{tpch.format_scale_factor(sf)} with tpchgen-cli in "
                f"{dataset.seconds:.1f} s, cached in {dataset.path}"
            )
        sizes = RichTable("table", "files", "MB", title="landing files", title_justify="left")
        for table in tpch.TABLES:
            files = dataset.files(table)
            mb = sum(f.stat().st_size for f in files) / 1e6
            sizes.add_row(table, ", ".join(f.name for f in files), f"{mb:,.1f}")
        self.console.print(sizes)
        return dataset

    # -- runs ---------------------------------------------------------------------------

    def run(
        self, label: str, data: Path, before_publish: Callable[[], None] | None = None
    ) -> RunResult:
        """Run the pipeline on ``data``; ``before_publish`` acts at the runner's publish start.

        That is the ``publish`` step's ``start`` event: the audit passed, the merge into
        ``main`` has not begun (see :mod:`lakehouse.pipelines.runner`).
        """
        from lakehouse.pipelines import PipelineError, load_pipeline, run_pipeline
        from lakehouse.pipelines.runner import RunResult

        with _env(DATA_VARIABLE, str(data)):
            pipeline = load_pipeline(self.pipeline_path)
            self.console.print(
                f"$ {DATA_VARIABLE}={shlex.quote(str(data))} lakehouse run {PIPELINE}",
                style="cyan",
                highlight=False,
            )
            with RunProgress(self.console, pipeline, f"run {PIPELINE}") as progress:

                def listener(event: RunEvent) -> None:
                    progress(event)
                    if before_publish and event.step == "publish" and event.phase == "start":
                        before_publish()

                try:
                    result = run_pipeline(self.lh, pipeline, listener=listener)
                except PipelineError as exc:
                    # A source or model failed: main is unchanged, the branch kept.
                    result = RunResult(
                        PIPELINE, exc.run_id or "?", exc.branch or "?", "main", "", "error"
                    )
                    result.error = str(exc)
        self.result.runs[label] = result
        self.summarize(result, full=label == "initial")
        return result

    def summarize(self, run: RunResult, *, full: bool) -> None:
        """Print what ``run`` did: every table (``full``) or only those that changed."""
        if run.ingested:
            loaded = [i for i in run.ingested if full or i.rows or i.quarantined]
            ingested = RichTable("bronze table", "rows loaded", "batch", title_justify="left")
            ingested.title = f"ingest ({sum(i.rows for i in run.ingested):,} rows)"
            for i in loaded:
                batch = i.batch_id or "nothing new (files already loaded)"
                ingested.add_row(i.table, f"{i.rows:,}", batch)
            self.console.print(ingested)
            if len(loaded) < len(run.ingested):
                self.console.print(
                    f"[dim]{len(run.ingested) - len(loaded)} other bronze tables: nothing new "
                    "(their files were loaded before)[/dim]"
                )
        if run.models:
            shown = [m for m in run.models if full or _changed_rows(m.write)]
            models = RichTable(
                "model", "materialized", "read", "rows", "inserted", "updated", "deleted", "s",
                title="models", title_justify="left",
            )  # fmt: skip
            for m in shown:
                w = m.write
                read = m.incremental
                how = "-" if read is None else f"{read.rows:,} ({read.mode})"
                models.add_row(
                    m.model, m.materialized, how, f"{w.rows:,}", f"{w.inserted:,}",
                    f"{w.updated:,}", f"{w.deleted:,}", f"{m.seconds:.1f}",
                )  # fmt: skip
            self.console.print(models)
            unchanged = [m.model for m in run.models if m not in shown]
            if unchanged:
                self.console.print(f"[dim]no changes, so no commit: {', '.join(unchanged)}[/dim]")
        passed = sum(1 for c in run.checks if c.passed)
        self.console.print(
            f"checks: [green]{passed} passed[/green], "
            f"[red]{len(run.failed_checks)} failed[/red], "
            f"[yellow]{len(run.warnings)} warnings[/yellow]"
        )
        for c in run.warnings:
            self.console.print(f"  [yellow]warn[/yellow] {c.name}: {c.message}")
        if run.ok and run.merged:
            self.console.print(
                f"[green]published:[/green] {run.branch} merged into main at "
                f"{(run.merge_hash or '')[:12]} in {run.seconds:.1f} s"
            )
        elif run.error:
            self.console.print(f"[red]run {run.status}:[/red] {run.error}")

    def first_load(self, dataset: tpch.Dataset) -> None:
        run = self.run("initial", dataset.path)
        if not run.ok:
            raise LakehouseError(f"the first load did not succeed: {run.error or run.status}")
        self.lh.create_tag(TAG_INITIAL, ref="main")
        self.console.print(f"tagged main as [bold]{TAG_INITIAL}[/bold]")

    def changes(self, dataset: tpch.Dataset, batches: Path) -> None:
        batch = tpch.write_change_batch(dataset.path, batches / "changes")
        self.result.change_batch = batch
        self.console.print(
            f"change batch in {batch.path}: {batch.updated_orders:,} orders updated (U), "
            f"{batch.deleted_orders:,} deleted (D) with {batch.deleted_lineitems:,} line items, "
            f"{batch.inserted_orders:,} inserted (I) with {batch.inserted_lineitems:,} line items"
        )
        example = self._example_order(batch)
        run = self.run("changes", batch.path)
        if not run.ok:
            raise LakehouseError(f"the change batch did not succeed: {run.error or run.status}")
        self.lh.create_tag(TAG_CHANGES, ref="main")
        self.console.print(f"tagged main as [bold]{TAG_CHANGES}[/bold]")
        if example is not None:
            columns = "o_orderkey, o_orderstatus, o_totalprice, o_clerk, _op"
            where = f"o_orderkey = {example}"
            before = self.sql(f"SELECT {columns} FROM silver.orders WHERE {where}", TAG_INITIAL)
            after = self.sql(f"SELECT {columns} FROM silver.orders WHERE {where}", "main")
            self.console.print(arrow_table(before, f"order {example} at {TAG_INITIAL}"))
            self.console.print(arrow_table(after, f"order {example} on main (after the merge)"))
        rows = RichTable("ref", "silver.orders", "silver.lineitem", title_justify="left")
        rows.title = "rows before and after (time travel by tag)"
        for ref in (TAG_INITIAL, "main"):
            n = self.sql(
                "SELECT (SELECT count(*) FROM silver.orders) AS o, "
                "(SELECT count(*) FROM silver.lineitem) AS l",
                ref,
            ).to_pylist()[0]
            rows.add_row(ref, f"{n['o']:,}", f"{n['l']:,}")
        self.console.print(rows)

    def concurrent(self, dataset: tpch.Dataset, batches: Path) -> None:
        """A run in flight while ``main`` moves on: ingestion lands first; the run publishes."""
        late = tpch.write_change_batch(
            dataset.path,
            batches / "late-orders",
            update_fraction=0.0,
            delete_fraction=0.0,
            insert_fraction=LATE_ORDERS_FRACTION,
            salt=7,
            key_offset=1,
        )
        on_main = batches / "on-main"
        customers = tpch.write_new_customers(dataset.path, on_main)
        main_orders = tpch.write_change_batch(
            dataset.path,
            on_main,
            update_fraction=0.0,
            delete_fraction=0.0,
            insert_fraction=LATE_ORDERS_FRACTION,
            salt=11,
            key_offset=2,
        )
        self.result.late_orders, self.result.new_customers = late, customers
        self.result.main_orders = main_orders
        self.console.print(
            f"the run: {late.inserted_orders:,} new orders with {late.inserted_lineitems:,} "
            f"line items in {late.path}\n"
            f"meanwhile on main: {customers.customers:,} new customers and "
            f"{main_orders.inserted_orders:,} other new orders with "
            f"{main_orders.inserted_lineitems:,} line items in {on_main}"
        )
        before = self.row_counts("main")
        heads: list[str] = []

        def ingest_on_main() -> None:
            heads.append(self.ingest_into_main(on_main))

        run = self.run("concurrent", late.path, before_publish=ingest_on_main)
        if not run.ok or not heads:
            raise LakehouseError(
                f"the run did not publish after main moved on: {run.error or run.status}"
            )
        # main's changes since the run branched off, then the run's as merged
        self.publish_report(run, run.base_hash, heads[0])
        self.verify_concurrent(before, late, customers, main_orders)

    def ingest_into_main(self, folder: Path) -> str:
        """Ingest ``folder`` through the pipeline's own source into ``main``; the new head.

        The same as the ``lakehouse ingest folder`` commands it prints: ``folder`` holds
        new customers and new orders, so ``bronze.customer``, ``bronze.orders`` and
        ``bronze.lineitem`` gain rows — the last two are tables the run ingests into too.
        """
        from lakehouse.ingest import ingest
        from lakehouse.pipelines import load_pipeline

        with _env(DATA_VARIABLE, str(folder)):
            pipeline = load_pipeline(self.pipeline_path)
        for table, pattern in ON_MAIN_FILES.items():
            command = ["lakehouse", "ingest", "folder", str(folder), "--table", table]
            command += ["--source", PIPELINE, "--pattern", pattern, "--ref", "main"]
            self.console.print(
                f"$ {_quote(command)}", style="cyan", highlight=False, soft_wrap=True, end=""
            )
            self.console.print("   # while the run waits to publish", style="dim", highlight=False)
        for source in pipeline.sources:
            for r in ingest(self.lh, source, branch="main"):
                if r.rows_loaded:
                    self.result.ingested_on_main[r.table] = r.rows_loaded
                    self.console.print(
                        f"ingested on main: {r.table} +{r.rows_loaded:,} rows (batch {r.batch_id})"
                    )
        return self.lh.resolve("main").hash

    def publish_report(self, run: RunResult, main_before: str, main_after: str) -> None:
        """Per table: who changed it since the run branched, and what the publish did."""
        meanwhile = {str(e.key) for e in self.lh.diff(f"@{main_before}", f"@{main_after}")}
        published = {str(e.key) for e in self.lh.diff(f"@{main_after}", f"@{run.merge_hash}")}
        table = RichTable("table", "changed by", "at publish", title_justify="left")
        table.title = "the publish, per table"
        for key in sorted(meanwhile | published):
            if key in meanwhile and key in published:
                how = run.content_merges.get(key, "merged")
                table.add_row(key, "the run and main", f"[green]{how}[/green]")
            elif key in meanwhile:
                table.add_row(key, "main (meanwhile)", "kept: the run did not change it")
            else:
                table.add_row(key, "the run", "taken from the run")
        self.console.print(table)
        self.result.publish = {
            key: run.content_merges.get(key, "both")
            if key in meanwhile and key in published
            else ("main" if key in meanwhile else "run")
            for key in meanwhile | published
        }

    def row_counts(self, ref: str) -> dict[str, int]:
        """Rows of the tables the concurrent step changes, on ``ref``."""
        n = self.sql(
            " ".join(
                [
                    "SELECT",
                    ", ".join(f'(SELECT count(*) FROM {t}) AS "{t}"' for t in CONCURRENT_TABLES),
                ]
            ),
            ref,
        ).to_pylist()[0]
        return {t: int(n[t]) for t in CONCURRENT_TABLES}

    def verify_concurrent(
        self,
        before: dict[str, int],
        late: tpch.ChangeBatch,
        customers: tpch.CustomerBatch,
        main_orders: tpch.ChangeBatch,
    ) -> None:
        """``main`` holds both the rows ingested meanwhile and the run's; ``catalog check`` ok."""
        from lakehouse.ops.check import check

        after = self.row_counts("main")
        expected = {
            "bronze.customer": before["bronze.customer"] + customers.customers,
            # both sides ingested into these two: merged by content
            "bronze.orders": before["bronze.orders"]
            + late.inserted_orders
            + main_orders.inserted_orders,
            "bronze.lineitem": before["bronze.lineitem"]
            + late.inserted_lineitems
            + main_orders.inserted_lineitems,
            # main's new orders reach silver on the next run
            "silver.orders": before["silver.orders"] + late.inserted_orders,
            "silver.lineitem": before["silver.lineitem"] + late.inserted_lineitems,
        }
        rows = RichTable("table on main", "before", "after", "expected", title_justify="left")
        rows.title = "rows on main after the publish"
        for name in CONCURRENT_TABLES:
            ok = after[name] == expected[name]
            mark = "[green]ok[/green]" if ok else "[red]MISMATCH[/red]"
            rows.add_row(
                name, f"{before[name]:,}", f"{after[name]:,}", f"{expected[name]:,} {mark}"
            )
        self.console.print(rows)
        report = check(self.lh, ["main"])
        self.result.concurrent_check_ok = report.ok
        verdict = "[green]no problems[/green]" if report.ok else "[red]problems found[/red]"
        self.console.print(
            f"lakehouse catalog check main: {report.files_checked:,} files checked, {verdict}"
        )
        self.console.print(
            "[dim]main's new orders reach silver with the next run. Not merged by content "
            "yet: a silver table the run's incremental merge rewrote, a gold table it "
            "rebuilt, or ingestion of the same file on both sides "
            "(docs/sql-and-pipelines.md)[/dim]",
            soft_wrap=True,
        )
        if after != expected or not report.ok:
            raise LakehouseError("main does not hold both the ingested rows and the run's")

    def _example_order(self, batch: tpch.ChangeBatch) -> int | None:
        import pyarrow.csv as pacsv

        changes = pacsv.read_csv(batch.path / "orders_changes.csv").to_pylist()
        for row in changes:
            if row[tpch.OP_COLUMN] == "U":
                return int(row["o_orderkey"])
        return None

    def broken(self, dataset: tpch.Dataset, batches: Path) -> None:
        batch = tpch.write_broken_batch(dataset.path, batches / "broken")
        self.result.broken_batch = batch
        self.console.print(
            f"broken batch in {batch.path}: {batch.negative_price_orders} negative prices, "
            f"{batch.null_customer_orders} orders without customer, {batch.bad_status_orders} "
            f"with status X, {batch.negative_quantity_lineitems} negative quantities, "
            f"{batch.orphan_lineitems} line items of a missing order"
        )
        before = self.lh.resolve("main").hash
        self.result.main_before_broken = before
        run = self.run("broken", batch.path)
        after = self.lh.resolve("main").hash
        self.result.main_after_broken = after
        if run.failed_checks:
            failed = RichTable(
                "check", "failing rows", "sample", title="failed checks", title_justify="left"
            )
            for c in run.failed_checks:
                sample = c.sample[0] if c.sample else {}
                shown = ", ".join(f"{k}={_fmt(v)}" for k, v in list(sample.items())[:4])
                failed.add_row(c.name, f"{c.failing_rows:,}", shown or c.message)
            self.console.print(failed)
        same = "[green]unchanged[/green]" if before == after else "[red]CHANGED[/red]"
        self.console.print(f"main before: {before[:12]}  after: {after[:12]}  -> {same}")
        if run.branch and not run.branch_deleted:
            self.console.print(f"the rejected run's branch is kept for inspection: {run.branch}")
        if run.ok or before != after:
            raise LakehouseError("the broken batch was not rejected")

    # -- results ------------------------------------------------------------------------

    def gold(self) -> None:
        q1 = self.sql("SELECT * FROM gold.q1_pricing_summary ORDER BY 1, 2").to_pylist()
        # Transposed: one column per (return flag, line status) group, so it fits.
        table = RichTable("", title="gold.q1_pricing_summary (TPC-H Q1)", title_justify="left")
        table.title_style = "bold"
        for row in q1:
            table.add_column(f"{row['l_returnflag']}/{row['l_linestatus']}", justify="right")
        for name in list(q1[0])[2:] if q1 else []:
            table.add_row(name, *(_fmt(row[name]) for row in q1))
        self.console.print(table)
        self.console.print(
            arrow_table(
                self.sql("SELECT * FROM gold.q3_shipping_priority ORDER BY revenue DESC"),
                "gold.q3_shipping_priority (TPC-H Q3: BUILDING, 1995-03-15, top 10)",
            )
        )
        self.console.print(
            arrow_table(
                self.sql(
                    "SELECT region, nation, CAST(sum(orders) AS BIGINT) AS orders, "
                    "sum(revenue) AS revenue "
                    "FROM gold.revenue_by_nation_month GROUP BY ALL "
                    "ORDER BY revenue DESC LIMIT 10"
                ),
                "gold.revenue_by_nation_month: top 10 nations over all months",
            )
        )

    def log(self) -> None:
        from lakehouse.pipelines.runner import RUN_STATUS

        log = RichTable("hash", "status", "message", title="lakehouse log (main)")
        log.title_justify = "left"
        for entry in self.lh.log("main", limit=15):
            status = entry.meta.properties.get(RUN_STATUS, "")
            style = {"success": "green", "failed": "red", "error": "red"}.get(status, "")
            shown = f"[{style}]{status}[/{style}]" if style else status
            log.add_row(entry.hash[:12], shown, entry.meta.message)
        self.console.print(log)
        broken = self.result.runs.get("broken")
        if broken is not None and broken.branch and not broken.branch_deleted:
            kept = RichTable(
                "hash", "status", "message", title=f"lakehouse log --ref {broken.branch}"
            )
            kept.title_justify = "left"
            for entry in self.lh.log(broken.branch, limit=3):
                status = entry.meta.properties.get(RUN_STATUS, "")
                kept.add_row(
                    entry.hash[:12], f"[red]{status}[/red]" if status else "", entry.meta.message
                )
            self.console.print(kept)
        branches = ", ".join(b.name for b in self.lh.branches())
        tags = ", ".join(t.name for t in self.lh.tags())
        self.console.print(f"branches: {branches}\ntags: {tags}")

    def next_steps(self, keep: bool) -> None:
        lh = lakehouse_command()
        if not keep or self.result.home.absolute() != load_settings().home.absolute():
            lh += ["--home", _shell_path(self.result.home)]
        broken = self.result.runs.get("broken")
        branch = broken.branch if broken is not None else "run/tpch/<id>"
        lines = [
            ("the history of main", [*lh, "log"]),
            ("what the change batch did to the tables", [*lh, "diff", TAG_INITIAL, TAG_CHANGES]),
            (
                "query gold on main",
                [*lh, "sql", "SELECT * FROM gold.q3_shipping_priority ORDER BY revenue DESC"],
            ),
            (
                "time travel: an order before the changes",
                [*lh, "sql", "--ref", TAG_INITIAL, "SELECT count(*) FROM silver.orders"],
            ),
            (
                "inspect the rejected batch on its kept branch",
                [*lh, "sql", "--ref", branch, BROKEN_ROWS_SQL],
            ),
            ("tables and their snapshots", [*lh, "table", "history", "silver.orders"]),
        ]
        rerun = [
            tpch.data_command(self.result.scale_factor),
            _quote([*lh, "run", _shell_path(self.pipeline_path)]),
        ]
        self.console.rule("[bold]where to look next")
        if not keep:
            self.console.print(
                "[dim](this home was temporary: these commands no longer work; "
                "run without --temporary to keep it)[/dim]",
                soft_wrap=True,
            )
        else:
            self.console.print(
                f"# the lakehouse lives in {_shell_path(self.result.home)}",
                style="dim",
                highlight=False,
                soft_wrap=True,
            )
        if lh[0] != "lakehouse" and Path(sys.prefix) != Path(sys.base_prefix):
            activate = _shell_path(Path(sys.prefix) / "bin" / "activate")
            self.console.print(
                f"# `source {activate}` puts lakehouse on PATH",
                style="dim",
                highlight=False,
                soft_wrap=True,
            )
        for what, args in lines:
            self.console.print(f"# {what}", style="dim", highlight=False, soft_wrap=True)
            self.console.print(_quote(args), style="cyan", highlight=False, soft_wrap=True)
        self.console.print(
            "# run the pipeline again: already-loaded files are skipped "
            f"({DATA_VARIABLE} names the folder to load)",
            style="dim",
            highlight=False,
            soft_wrap=True,
        )
        for line in rerun:
            self.console.print(line, style="cyan", highlight=False, soft_wrap=True)


def run(
    home: Path,
    console: Console,
    *,
    scale_factor: float = tpch.DEFAULT_SCALE_FACTOR,
    keep: bool = True,
) -> DemoResult:
    """Run the demo in ``home`` (which must not hold a lakehouse yet)."""
    started = time.perf_counter()
    # ref="": the demo publishes to main even when NESSIE_REF is set in the environment.
    settings = load_settings(home=home, ref="")
    tpch.format_scale_factor(scale_factor)  # validates
    db = sqlite_path(settings.catalog_uri)
    if db is not None and db.exists():
        if not (settings.home / MARKER).is_file():
            raise ConfigError(
                f"{home} already holds a lakehouse the demo did not make; "
                "the demo needs a fresh --home"
            )
        console.print(f"[dim]replacing the lakehouse of an earlier demo in {home}[/dim]")
        shutil.rmtree(settings.home)
    result = DemoResult(home=settings.home, scale_factor=scale_factor)

    console.print(
        f"[bold]Lakehouse demo[/bold]: TPC-H scale factor {tpch.format_scale_factor(scale_factor)}"
        f", pipeline {pipeline_dir()}"
    )
    with connect(settings=settings, create=True) as lh:
        demo = Demo(lh, console, result)
        with demo.step("1. lakehouse init", "init"):
            marker = {"made_by": "python -m lakehouse.demo", "scale_factor": scale_factor}
            (settings.home / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
            console.print(f"home      {settings.home}")
            console.print(f"catalog   {settings.summary()['catalog']}")
            console.print(f"warehouse {settings.warehouse_location}")
        with demo.step("2. TPC-H data (tpchgen-cli)", "data"):
            dataset = demo.generate()
        batches = settings.home / "batches"
        with demo.step("3. first load: write, audit, publish", "first load"):
            demo.first_load(dataset)
        with demo.step("4. change batch: updates and deletes through merge", "changes"):
            demo.changes(dataset, batches)
        with demo.step("5. ingestion on main while a run is in flight", "concurrent"):
            demo.concurrent(dataset, batches)
        with demo.step("6. broken batch: rejected by the checks", "broken batch"):
            demo.broken(dataset, batches)
        with demo.step("7. gold tables on main", "gold"):
            demo.gold()
        with demo.step("8. history", "log"):
            demo.log()
        demo.next_steps(keep)

    result.seconds = time.perf_counter() - started
    timings = RichTable("step", "seconds", title="timings", title_justify="left")
    for key, value in result.timings.items():
        timings.add_row(key, f"{value:.1f}")
    console.print(timings)
    console.print(f"\n[green]Done in {result.seconds:.1f} s.[/green]")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m lakehouse.demo``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m lakehouse.demo",
        description="The TPC-H lakehouse demo: write-audit-publish, merges, rejected batches.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--home",
        type=Path,
        help="folder to keep the demo's lakehouse in (default: LAKEHOUSE_HOME, else "
        "./.lakehouse, as the lakehouse command); it must not hold a lakehouse the demo "
        "did not make",
    )
    where.add_argument(
        "--temporary",
        action="store_true",
        help="run in a temporary folder, deleted at the end",
    )
    parser.add_argument(
        "--scale-factor",
        type=float,
        default=tpch.DEFAULT_SCALE_FACTOR,
        help=f"TPC-H scale factor (default {tpch.DEFAULT_SCALE_FACTOR}; 1 = 6 M line items)",
    )
    args = parser.parse_args(argv)
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 120  # logs and pipes: wide enough for the gold tables
    try:
        if not args.temporary:
            home = args.home if args.home is not None else load_settings().home
            run(home, console, scale_factor=args.scale_factor)
        else:
            with tempfile.TemporaryDirectory(prefix="lakehouse-demo-") as tmp:
                run(Path(tmp) / "home", console, scale_factor=args.scale_factor, keep=False)
    except LakehouseError as exc:
        console.print(f"[red]Error:[/red] {exc}", soft_wrap=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
