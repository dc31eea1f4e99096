"""Console pages: server time per page on a demo home, HTML next to its JSON twin.

Run: ``.venv/bin/python bench/console.py [--scale-factor 0.1] [--rounds 7] [--home PATH]``

Builds the TPC-H demo home (``python -m lakehouse.demo``, the user's setup) plus a branch
``feature/discounts`` from the first load that changes ``silver.orders`` (so the compare
page has a conflict). The demo leaves only a short history on ``main``, so the setup then
adds ``--commits`` small appends on ``main`` (a few rows each, round robin over the silver
tables, as repeated small loads would) and keeps a branch ``bench/behind`` that many minus
``--compare-span`` commits in, so one compare spans ``--compare-span`` commits. It then
requests every page through the server app in-process (no network: server time only).
Rounds alternate page and twin; printed are the medians and the paired ratio HTML / JSON
(the cost of rendering over the page's data).
The issue's targets: <= 300 ms per page, <= 1 s for the compare page.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _common import median, paired_ratio
from rich.console import Console

from lakehouse import demo
from lakehouse.client import Lakehouse, connect
from lakehouse.console import WebConsole
from lakehouse.console.pages import sample_rows
from lakehouse.server.app import create_app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-factor", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--home", type=Path, default=None, help="reuse (or make) this demo home")
    parser.add_argument("--commits", type=int, default=300, help="small appends added on main")
    parser.add_argument(
        "--compare-span", type=int, default=100, help="commits between compared refs"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        if not (home / demo.MARKER).exists():
            demo.run(home, Console(quiet=True), scale_factor=args.scale_factor)
        with connect(home) as lh:
            if "feature/discounts" not in {r.name for r in lh.references()}:
                lh.create_branch("feature/discounts", demo.TAG_INITIAL)
                orders = lh.table("silver.orders", "feature/discounts")
                orders.append(orders.scan(limit=3).to_arrow())
            if BEHIND not in {r.name for r in lh.references()}:
                grow_history(lh, args.commits, args.compare_span)
            run_id = next(
                e.meta.properties["lakehouse.run.id"]
                for e in lh.log(next(r.name for r in lh.branches() if r.name.startswith("run/")))
                if "lakehouse.run.id" in e.meta.properties
            )
            head = lh.resolve("main").hash
            pages = {
                "references": "/",
                "history main": "/ui/log?ref=main",
                "commit": f"/ui/commit/{head}",
                "compare main..feature": "/ui/compare?base=main&head=feature/discounts",
                f"compare {args.compare_span} commits": f"/ui/compare?base={BEHIND}&head=main",
                "table silver.orders": "/ui/table/silver.orders?ref=main",
                "table at tpch-changes": f"/ui/table/silver.orders?ref={demo.TAG_CHANGES}",
                "runs": "/ui/runs",
                "run (failed)": f"/ui/runs/{run_id}",
                "operations": "/ui/operations",
                "sql group by": "/ui/sql?q=SELECT+o_orderstatus,count(*)+FROM+silver.orders"
                "+GROUP+BY+1",
            }
            app = create_app(lh.store, console=WebConsole(lh))
            commits = len(lh.log("main", limit=None))
            print(
                f"demo home SF {args.scale_factor}: {commits} commits on main (first parents), "
                f"{len(lh.tables('main'))} tables, {args.rounds} rounds"
            )
            asyncio.run(measure(app, pages, args.rounds))
            for ref in (demo.TAG_CHANGES, "main"):
                measure_sample(lh, "silver.orders", ref, args.rounds)
    return 0


#: The branch left ``--compare-span`` commits behind ``main``.
BEHIND = "bench/behind"


def grow_history(lh: Lakehouse, commits: int, span: int) -> None:
    """Add ``commits`` small appends on main; branch ``BEHIND`` off ``span`` before the end."""
    names = sorted(str(e.key) for e in lh.tables("main") if str(e.key).startswith("silver."))
    samples = {name: lh.table(name, "main").scan(limit=2).to_arrow() for name in names}
    for i in range(commits):
        if i == commits - span:
            lh.create_branch(BEHIND, "main")
        name = names[i % len(names)]
        lh.table(name, "main").append(samples[name])
    if commits < span:
        lh.create_branch(BEHIND, demo.TAG_INITIAL)


def measure_sample(lh: Lakehouse, name: str, ref: str, rounds: int) -> None:
    """The table page's sample rows: a full scan with a limit (baseline) next to ours."""
    table = lh.table(name, ref)
    tasks = list(table.scan().plan_files())
    ours: list[float] = []
    scan: list[float] = []
    for _ in range(rounds):
        for out, read in (
            (scan, lambda: table.scan(limit=20).to_arrow()),
            (ours, lambda: sample_rows(table, tasks, 20)),
        ):
            t0 = time.perf_counter()
            read()
            out.append(time.perf_counter() - t0)
            drain_pyiceberg_pool()
    ratio, _, _ = paired_ratio(ours, scan)
    print(
        f"sample of {name} at {ref}: scan(limit=20) {median(scan) * 1000:.1f} ms, "
        f"sample_rows {median(ours) * 1000:.1f} ms, scan / ours {ratio:.1f}"
    )


def drain_pyiceberg_pool() -> None:
    """Wait until PyIceberg's shared worker pool is idle.

    A scan with a limit returns at its limit while the reads of its other files go on in
    that pool; without this, their time would be billed to the next measurement.
    """
    from pyiceberg.utils.concurrent import ExecutorFactory

    pool = ExecutorFactory.get_or_create()
    workers = pool._max_workers  # its size: occupy every worker
    barrier = threading.Barrier(workers)
    for future in [pool.submit(barrier.wait) for _ in range(workers)]:
        future.result()


async def measure(app: object, pages: dict[str, str], rounds: int) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        print(f"{'page':<24} {'HTML ms':>9} {'JSON ms':>9} {'HTML/JSON':>10}")
        for name, url in pages.items():
            html: list[float] = []
            twin: list[float] = []
            sep = "&" if "?" in url else "?"
            await client.get(url)  # warm: first load of metadata files
            for _ in range(rounds):
                for out, target in ((html, url), (twin, f"{url}{sep}format=json")):
                    t0 = time.perf_counter()
                    response = await client.get(target)
                    out.append(time.perf_counter() - t0)
                    assert response.status_code == 200, (target, response.text[:200])
            ratio, _, _ = paired_ratio(twin, html)
            print(
                f"{name:<24} {median(html) * 1000:>9.1f} {median(twin) * 1000:>9.1f} {ratio:>10.2f}"
            )


if __name__ == "__main__":
    sys.exit(main())
