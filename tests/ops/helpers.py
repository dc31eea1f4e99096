"""Helpers of the ops tests: a lakehouse worth backing up; comparing two lakehouses exactly.

``build_rich_lakehouse`` builds, in a fresh home: namespaces, tables with several snapshots,
schema evolution, deleted rows (copy-on-write rewrites: DELETED manifest entries),
overwrites, a view, branches ``dev`` (merged) and ``feature`` (not merged), tags, and
landed files in ``raw`` (a complete batch, a quarantined one, a batch still being landed,
a loose file). ``snapshot_state`` captures everything a reader can observe: references,
every commit of every reference (parents, message, properties, contents), and the rows
and schema of every table at every commit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType
from pyiceberg.view.metadata import SQLViewRepresentation, ViewVersion

from lakehouse.catalog.model import IcebergTable, IcebergView, Reference
from lakehouse.client import Lakehouse, connect
from lakehouse.config import Settings
from lakehouse.storage.objects import Storage

SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])


def rows(*pairs: tuple[int, str]) -> pa.Table:
    return pa.Table.from_pylist([{"id": i, "name": n} for i, n in pairs], schema=SCHEMA)


def write_raw(lh: Lakehouse) -> None:
    """Landed files the way lakehouse.ingest lays them out (local folder or S3 bucket)."""
    storage = Storage(lh.settings.s3.fileio_properties())
    raw = storage.locate(lh.warehouse.bucket_uri("raw"))
    done = "orders_files/2026/01/15/20260115T101500Z-1a2b3c4d"
    rejected = "_rejected/orders_files/20260115T111500Z-5e6f7a8b"
    landing = "orders_files/2026/01/16/20260116T080000Z-9c0d1e2f"
    files = {
        f"{done}/orders.csv": b"id,name\n1,a\n2,b\n",
        f"{done}/_manifest.json": json.dumps({"format_version": 1, "files": []}).encode(),
        f"{rejected}/bad.csv": b"not,a,table\n",
        f"{rejected}/reason.json": json.dumps({"reasons": ["schema"]}).encode(),
        f"{landing}/half.csv": b"id,name\n3,",  # no _manifest.json yet: still landing
        "README.txt": b"dropped here by hand\n",
    }
    for name, data in files.items():
        storage.write_bytes(raw.child(name), data)


def build_rich_lakehouse(home: Path, settings: Settings | None = None) -> Lakehouse:
    """Build the lakehouse described in the module docstring at ``home`` (or ``settings``)."""
    lh = connect(settings=settings, create=True) if settings else connect(home, create=True)
    main = lh.catalog("main")
    main.create_namespace("bronze")
    main.create_namespace("silver")
    orders = main.create_table("bronze.orders", SCHEMA)
    orders.append(rows((1, "a"), (2, "b"), (3, "c")))
    orders.append(rows((4, "d"), (5, "e")))
    lh.create_tag("v1", "main")

    lh.create_branch("dev", "main")
    dev_orders = lh.table("bronze.orders", "dev")
    dev_orders.delete("id == 2")  # deleted rows: a rewrite with DELETED entries
    dev_orders = lh.table("bronze.orders", "dev")
    dev_orders.update_schema().add_column("note", StringType()).commit()  # schema evolution
    dev_orders = lh.table("bronze.orders", "dev")
    dev_orders.append(
        pa.Table.from_pylist(
            [{"id": 6, "name": "f", "note": "new"}],
            schema=pa.schema(
                [
                    pa.field("id", pa.int64(), nullable=False),
                    pa.field("name", pa.string()),
                    pa.field("note", pa.string()),
                ]
            ),
        )
    )
    dev = lh.catalog("dev")
    customers = dev.create_table("silver.customers", SCHEMA)
    customers.append(rows((10, "x"), (11, "y")))
    dev.create_view(
        ("silver", "customer_names"),
        Schema(NestedField(1, "name", StringType(), required=False)),
        ViewVersion(
            version_id=1,
            schema_id=0,
            timestamp_ms=1_700_000_000_000,
            summary={"engine-name": "duckdb"},
            representations=[
                SQLViewRepresentation(
                    type="sql", sql="SELECT name FROM silver.customers", dialect="duckdb"
                )
            ],
            default_namespace=["silver"],
        ),
    )
    lh.merge("dev", "main")
    lh.create_tag("v2", "main")

    lh.create_branch("feature", "main")
    feature = lh.table("silver.customers", "feature")
    feature.overwrite(rows((12, "z")))
    events = lh.catalog("feature").create_table(
        "bronze.events", Schema(NestedField(1, "n", LongType(), required=False))
    )
    events.append(pa.Table.from_pylist([{"n": 1}, {"n": 2}], schema=pa.schema([("n", pa.int64())])))

    main_orders = lh.table("bronze.orders", "main")
    main_orders.append(
        pa.Table.from_pylist(
            [{"id": 7, "name": "g", "note": None}],
            schema=pa.schema(
                [
                    pa.field("id", pa.int64(), nullable=False),
                    pa.field("name", pa.string()),
                    pa.field("note", pa.string()),
                ]
            ),
        )
    )
    write_raw(lh)
    return lh


def _rows(table: Any) -> list[dict[str, Any]]:
    data = table.scan().to_arrow()
    return sorted(data.to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))


def snapshot_state(lh: Lakehouse, references: list[Reference] | None = None) -> dict[str, Any]:
    """Everything a reader can observe, at every commit of every reference.

    ``references`` pins the references (default: as they are now).
    """
    refs = references if references is not None else lh.references()
    state: dict[str, Any] = {
        "references": sorted((r.name, r.type.value, r.hash) for r in refs),
        "commits": {},
    }
    seen: set[str] = set()
    for ref in refs:
        for entry in lh.log("@" + ref.hash, None):
            meta = entry.meta
            assert meta.hash is not None
            if meta.hash in seen:
                continue
            seen.add(meta.hash)
            at = "@" + meta.hash
            contents: dict[str, Any] = {}
            for e in lh.store.entries(at, with_content=True):
                assert e.content is not None
                item: dict[str, Any] = {"content": e.content.to_json()}
                if isinstance(e.content, IcebergTable):
                    table = lh.table(str(e.key), at)
                    item["schema"] = str(table.schema())
                    item["snapshots"] = [s.snapshot_id for s in table.snapshots()]
                    item["rows"] = _rows(table)
                elif isinstance(e.content, IcebergView):
                    item["view"] = lh.catalog(at).load_view(str(e.key)).metadata.model_dump_json()
                contents[str(e.key)] = item
            state["commits"][meta.hash] = {
                "message": meta.message,
                "parents": list(meta.parent_hashes),
                "author": meta.author,
                "commit_time": meta.commit_time.isoformat() if meta.commit_time else None,
                "properties": dict(meta.properties),
                "contents": contents,
            }
    return state


def sql_answers(lh: Lakehouse) -> dict[str, Any]:
    """The same queries over every reference, through `lakehouse sql`."""
    out: dict[str, Any] = {}
    for ref in lh.references():
        for entry in lh.tables(ref.name):
            if entry.type.value != "ICEBERG_TABLE":
                continue
            result = lh.sql(f"SELECT * FROM {entry.key} ORDER BY 1", ref=ref.name)
            out[f"{ref.name}:{entry.key}"] = result.to_pylist()
    return out
