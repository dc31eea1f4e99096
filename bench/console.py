"""Console pages: server time per page on a demo home, HTML next to its JSON twin.

Run: ``.venv/bin/python bench/console.py [--scale-factor 0.1] [--rounds 7] [--home PATH]``

Builds the TPC-H demo home (``python -m lakehouse.demo``, the user's setup) plus a branch
``feature/discounts`` from the first load that changes ``silver.orders`` (so the compare
page has a conflict), then requests every page through the server app in-process (no
network: server time only). Rounds alternate page and twin; printed are the medians and
the paired ratio HTML / JSON (the cost of rendering over the page's data).
The issue's targets: <= 300 ms per page, <= 1 s for the compare page.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import median, paired_ratio
from rich.console import Console

from lakehouse import demo
from lakehouse.client import connect
from lakehouse.console import WebConsole
from lakehouse.server.app import create_app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-factor", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--home", type=Path, default=None, help="reuse (or make) this demo home")
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
                "table silver.orders": "/ui/table/silver.orders?ref=main",
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
    return 0


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
