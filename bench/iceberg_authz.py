"""Iceberg REST under Nessie's authorization rules: server time with rules next to without.

Run: ``.venv/bin/python bench/iceberg_authz.py [--tables 500] [--rounds 15]``

One SQLite catalog with a namespace of ``--tables`` tables (keys only, the listing does
not read metadata) and one real table. Two apps over the same store, both with the same
static token: one without rules, one with a five-rule file (the worked example of
docs/operations.md plus the rule that lets the token's anonymous principal read and
write). Requests go through the app in-process (no network: server time only),
alternating the two apps; printed are medians and the paired ratio rules / none.
What the rules cost: a content read per request plus one CEL evaluation per check
(per listed key for a listing, which is filtered by ``READ_CONTENT_KEY``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pyarrow as pa
from _common import median, paired_ratio
from pydantic import SecretStr

from lakehouse.catalog.iceberg import RefCatalog
from lakehouse.catalog.model import ContentKey, IcebergTable, Put
from lakehouse.catalog.sql_store import SqlStore
from lakehouse.server import ServerSettings
from lakehouse.server.app import create_app
from lakehouse.server.iceberg_rest import CATALOG_NAME, IcebergRestSettings
from lakehouse.storage import Warehouse

RULES = {
    "readers": "op in ['VIEW_REFERENCE', 'READ_ENTRIES', 'READ_CONTENT_KEY', "
    "'LIST_COMMIT_LOG', 'READ_ENTITY_VALUE'] && 'readers' in roles",
    "branching": "op in ['CREATE_REFERENCE', 'DELETE_REFERENCE'] && 'writers' in roles "
    "&& ref != 'main'",
    "bronze_writers": "op in ['COMMIT_CHANGE_AGAINST_REFERENCE', 'CREATE_ENTITY', "
    "'UPDATE_ENTITY', 'DELETE_ENTITY'] && 'bronze-writers' in roles && ref != 'main' "
    "&& (path == '' || path == 'bronze' || path.startsWith('bronze.'))",
    "release": "op in ['COMMIT_CHANGE_AGAINST_REFERENCE', 'CREATE_ENTITY', 'UPDATE_ENTITY', "
    "'DELETE_ENTITY'] && 'release-managers' in roles && ref == 'main'",
    "service": "role == '' && (ref == 'main' || ref == '')",
}
#: The worst case for a listing: the rule that lets the principal see keys reads ``path``,
#: so each listed key is one more CEL evaluation the first time it is checked.
PATH_RULES = {
    **RULES,
    "service": "role == '' && (ref == 'main' || ref == '') "
    "&& (path == '' || path == 'bronze' || path.startsWith('bronze.'))",
}
TOKEN = "bench-token"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "warehouse"
        warehouse = Warehouse.local(root)
        warehouse.ensure_local_dirs()
        store = SqlStore(f"sqlite:///{tmp}/catalog.db")
        try:
            seed(store, warehouse, args.tables)
            iceberg = IcebergRestSettings(warehouse, warehouse_location=str(root))

            def apps(rules: dict[str, str]) -> dict[str, object]:
                return {
                    "none": create_app(
                        store, settings=ServerSettings(token=SecretStr(TOKEN)), iceberg=iceberg
                    ),
                    "rules": create_app(
                        store,
                        settings=ServerSettings(token=SecretStr(TOKEN), authorization_rules=rules),
                        iceberg=iceberg,
                    ),
                }

            print(f"{args.tables} tables in bronze, {args.rounds} rounds, in-process requests")
            print(f"{'request':<32} {'none ms':>9} {'rules ms':>9} {'rules/none':>11}")
            asyncio.run(measure(apps(RULES), args.rounds, "warm"))
            asyncio.run(measure(apps(PATH_RULES), args.rounds, "warm, path rule"))
            cold = [apps(PATH_RULES) for _ in range(min(args.rounds, 5))]
            asyncio.run(measure_cold(cold))
        finally:
            store.close()
    return 0


def seed(store: SqlStore, warehouse: Warehouse, tables: int) -> None:
    """bronze with ``tables`` keys (fake metadata, never loaded) and bronze.orders (real)."""
    cat = RefCatalog(CATALOG_NAME, store, "main", warehouse)
    cat.create_namespace("bronze")
    cat.create_table("bronze.orders", schema=pa.schema([("id", pa.int64())]))
    puts = [
        Put(
            ContentKey(("bronze", f"t{i:05d}")),
            IcebergTable(metadata_location=f"{warehouse.root}/t{i}/metadata.json"),
        )
        for i in range(tables)
    ]
    store.commit("main", puts, "bench tables")


async def measure_cold(rounds: list[dict[str, object]]) -> None:
    """The first listing of each app (nothing memoized yet), path rule: the worst case."""
    url = "/iceberg/v1/main/namespaces/bronze/tables"
    samples: dict[str, list[float]] = {"none": [], "rules": []}
    for apps in rounds:
        for name, app in apps.items():
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                base_url="http://bench",
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as client:
                t0 = time.perf_counter()
                response = await client.get(url)
                samples[name].append(time.perf_counter() - t0)
                assert response.status_code == 200, response.text[:300]
    ratio, p25, p75 = paired_ratio(samples["none"], samples["rules"])
    print(
        f"{'list tables (cold, path)':<32} {median(samples['none']) * 1000:>9.1f} "
        f"{median(samples['rules']) * 1000:>9.1f} {ratio:>7.2f} (p25 {p25:.2f}, p75 {p75:.2f})"
    )


async def measure(apps: dict[str, object], rounds: int, label: str) -> None:
    clients = {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="http://bench",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        for name, app in apps.items()
    }
    commit = {
        "requirements": [],
        "updates": [{"action": "set-properties", "updates": {"bench": "x"}}],
    }
    requests = {
        "list tables": ("GET", "/iceberg/v1/main/namespaces/bronze/tables", None),
        "load table": ("GET", "/iceberg/v1/main/namespaces/bronze/tables/orders", None),
        "commit table": ("POST", "/iceberg/v1/main/namespaces/bronze/tables/orders", commit),
    }
    try:
        for what, (method, url, body) in requests.items():
            samples: dict[str, list[float]] = {name: [] for name in clients}
            for client in clients.values():  # warm
                response = await client.request(method, url, json=body)
                assert response.status_code == 200, response.text[:300]
            for _ in range(rounds):
                for name, client in clients.items():
                    t0 = time.perf_counter()
                    response = await client.request(method, url, json=body)
                    samples[name].append(time.perf_counter() - t0)
                    assert response.status_code == 200, response.text[:300]
            ratio, p25, p75 = paired_ratio(samples["none"], samples["rules"])
            print(
                f"{what + f' ({label})':<32} {median(samples['none']) * 1000:>9.1f} "
                f"{median(samples['rules']) * 1000:>9.1f} {ratio:>7.2f} "
                f"(p25 {p25:.2f}, p75 {p75:.2f})"
            )
    finally:
        for client in clients.values():
            await client.aclose()


if __name__ == "__main__":
    sys.exit(main())
