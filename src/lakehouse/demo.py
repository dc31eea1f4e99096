"""A two-minute tour of the versioned catalog: ``python -m lakehouse.demo [--home PATH]``.

In a fresh temporary home (or ``--home``, which must not hold a catalog yet) it
initializes a lakehouse, creates ``bronze.orders`` on ``main``, branches ``dev``,
appends on ``dev`` only, shows that ``main`` is untouched, merges ``dev`` into
``main``, tags ``release-1`` and prints the log. Everything goes through the public
API (:func:`lakehouse.connect`); the same steps work with the ``lakehouse`` command.

Temporary: replaced by the pipeline demo once the pipelines land.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
from rich.console import Console
from rich.table import Table as RichTable

from lakehouse.client import Lakehouse, connect, sqlite_path
from lakehouse.config import load_settings
from lakehouse.errors import ConfigError


def _orders(first_id: int, count: int) -> pa.Table:
    ids = list(range(first_id, first_id + count))
    return pa.table(
        {
            "order_id": pa.array(ids, pa.int64()),
            "customer": pa.array([f"customer-{i % 3}" for i in ids], pa.string()),
            "amount": pa.array([round(10.0 + i * 1.25, 2) for i in ids], pa.float64()),
        }
    )


def _rows(lh: Lakehouse, ref: str) -> int:
    rows: int = lh.table("bronze.orders", ref=ref).scan().to_arrow().num_rows
    return rows


def run(home: Path, console: Console, *, keep: bool = True) -> None:
    """Run the tour in ``home`` (``keep``: the home stays for exploring afterwards)."""
    started = time.perf_counter()
    settings = load_settings(home=home, ref=None)
    db = sqlite_path(settings.catalog_uri)
    if db is not None and db.exists():
        raise ConfigError(f"{home} already holds a lakehouse; the demo needs a fresh --home")

    with connect(settings=settings, create=True) as lh:
        console.rule("[bold]1. init")
        console.print(f"home      {settings.home}")
        console.print(f"catalog   {settings.summary()['catalog']}")
        console.print(f"warehouse {settings.warehouse_location}")

        console.rule("[bold]2. create bronze.orders on main")
        main = lh.catalog("main")
        main.create_namespace("bronze")
        first = _orders(1, 5)
        table = main.create_table("bronze.orders", schema=first.schema)
        table.append(first)
        console.print(f"appended 5 rows; metadata at {table.metadata_location}")

        console.rule("[bold]3. branch dev, append on dev only")
        dev = lh.branch("dev").create(from_ref="main")
        dev.table("bronze.orders").append(_orders(6, 3))
        counts = RichTable("ref", "rows in bronze.orders", title="main vs dev")
        counts.add_row("main", str(_rows(lh, "main")))
        counts.add_row("dev", str(_rows(lh, "dev")))
        console.print(counts)

        console.rule("[bold]4. merge dev into main")
        result = dev.merge_into("main", message="Publish dev: 3 new orders")
        console.print(
            f"merged {len(result.details)} key(s); main is now at "
            f"{(result.resultant_target_hash or '')[:12]} with {_rows(lh, 'main')} rows"
        )

        console.rule("[bold]5. tag release-1")
        tag = lh.create_tag("release-1", ref="main")
        console.print(f"release-1 -> {tag.hash[:12]}")

        console.rule("[bold]6. log of main")
        log = RichTable("hash", "author", "message", "parents")
        for entry in lh.log("main", limit=10):
            meta = entry.meta
            log.add_row(
                entry.hash[:12], meta.author or "-", meta.message, str(len(meta.parent_hashes))
            )
        console.print(log)
        refs = ", ".join(f"{r.name} ({r.type.value.lower()})" for r in lh.references())
        console.print(f"references: {refs}")

    console.print(f"\n[green]Done in {time.perf_counter() - started:.1f} s.[/green]")
    if keep:
        console.print(
            f"Explore it: lakehouse --home {home} log, "
            f"lakehouse --home {home} table show bronze.orders --ref release-1"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m lakehouse.demo``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m lakehouse.demo", description=__doc__)
    parser.add_argument("--home", type=Path, help="fresh folder to use (default: a temp folder)")
    args = parser.parse_args(argv)
    console = Console()
    try:
        if args.home is not None:
            run(args.home, console)
        else:
            with tempfile.TemporaryDirectory(prefix="lakehouse-demo-") as tmp:
                run(Path(tmp) / "home", console, keep=False)
    except ConfigError as exc:
        console.print(f"[red]Error:[/red] {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
