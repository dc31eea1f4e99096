"""Snapshot expiry of ingestion tables: exactly-once state survives in checkpoints."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.table import Table

from lakehouse.catalog.files import FileKind, TableWalker
from lakehouse.catalog.model import ContentKey
from lakehouse.client import Lakehouse
from lakehouse.ingest import FolderSource, IngestError, ingest
from lakehouse.ingest.bronze import (
    CHECKPOINT_FORMAT_VERSION,
    CHECKPOINT_PROPERTY,
    ingest_state,
    read_checkpoint,
    read_state,
)
from lakehouse.ingest.kafka import recorded_offsets
from lakehouse.maintenance import collect_garbage, expire_snapshots
from lakehouse.maintenance.expire import DRY_RUN_CHECKPOINT
from lakehouse.maintenance.policies import Policies
from lakehouse.ops.dr import SUMMARY_KAFKA_OFFSETS, replay_points

from .conftest import aggressive, batch, exists

EXPIRE_ALL = Policies().with_changes(snapshots={"keep_last": 1, "max_age": timedelta(0)})
ORDERS = "id,customer,amount\n{i},c{i},{i}.5\n"


def local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def folder(inbox: Path) -> FolderSource:
    return FolderSource.model_validate(
        {"name": "shop", "path": str(inbox), "table": "bronze.orders"}
    )


def land(lh: Lakehouse, inbox: Path, *numbers: int, ref: str | None = None) -> Any:
    """Write ``orders_<n>.csv`` for each number and ingest the folder (one batch)."""
    for n in numbers:
        (inbox / f"orders_{n}.csv").write_text(ORDERS.format(i=n))
    [result] = ingest(lh, folder(inbox), branch=ref)
    return result


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


def checkpoint_of(table: Table) -> str:
    location = table.properties.get(CHECKPOINT_PROPERTY)
    assert location, "no checkpoint"
    return location


def document(location: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gzip.decompress(local(location).read_bytes()))
    return data


def test_folder_ingestion_stays_exactly_once_after_expiring_every_snapshot(
    lh: Lakehouse, inbox: Path
) -> None:
    for n in range(6):
        land(lh, inbox, n)
    table = lh.table("bronze.orders")
    assert len(table.snapshots()) == 6
    before = read_state(table, "bronze.orders", "shop")
    assert len(before.batches) == 6 and len(before.loaded) == 6

    result = expire_snapshots(lh, policies=EXPIRE_ALL)
    (expiry,) = result.tables
    assert len(expiry.expired) == 5 and expiry.kept_for_ingest == 0
    table = lh.table("bronze.orders")
    assert len(table.snapshots()) == 1
    location = checkpoint_of(table)
    assert expiry.checkpoint == location
    # next to the metadata files, in the iceberg-metadata bucket, self-describing
    assert location.rsplit("/", 1)[0] == table.metadata_location.rsplit("/", 1)[0]
    assert "/iceberg-metadata/" in location and local(location).exists()
    doc = document(location)
    assert doc["format_version"] == CHECKPOINT_FORMAT_VERSION
    assert doc["table_uuid"] == str(table.metadata.table_uuid) and doc["previous"] is None
    assert len(doc["state"]["batches"]) == 5  # the current snapshot stays in the ancestry

    after = read_state(table, "bronze.orders", "shop")
    assert after.batches == before.batches
    assert after.loaded == before.loaded
    assert after.last_batch == before.last_batch
    # re-running the same folder loads nothing; a new file loads alone
    again = land(lh, inbox)
    assert again.batch_id is None and again.rows_loaded == 0
    assert len(lh.table("bronze.orders").scan().to_arrow()) == 6
    new = land(lh, inbox, 6)
    assert new.rows_loaded == 1 and [f.name for f in new.landed] == ["orders_6.csv"]


def test_two_expiries_chain_their_checkpoints(lh: Lakehouse, inbox: Path) -> None:
    for n in range(3):
        land(lh, inbox, n)
    expire_snapshots(lh, policies=EXPIRE_ALL)
    first = checkpoint_of(lh.table("bronze.orders"))
    for n in range(3, 6):
        land(lh, inbox, n)
    before = read_state(lh.table("bronze.orders"), "bronze.orders", "shop")

    second_run = expire_snapshots(lh, policies=EXPIRE_ALL)
    table = lh.table("bronze.orders")
    second = checkpoint_of(table)
    assert second != first and second_run.tables[0].checkpoint == second
    assert local(first).exists()  # never deleted by expiry
    doc = document(second)
    assert doc["previous"] == first
    # cumulative: the second holds the first's batches, then the newly cut-off ones
    assert doc["state"]["batches"] == list(before.batches[:5])
    assert document(first)["state"]["batches"] == list(before.batches[:2])
    after = read_state(table, "bronze.orders", "shop")
    assert (after.batches, after.loaded, after.last_batch) == (
        before.batches,
        before.loaded,
        before.last_batch,
    )
    assert land(lh, inbox).rows_loaded == 0
    # a third expiry with nothing to cut writes no new checkpoint
    third = expire_snapshots(lh, policies=EXPIRE_ALL)
    assert third.expired == 0 and checkpoint_of(lh.table("bronze.orders")) == second


def test_expiry_on_one_branch_leaves_the_other_branch_as_it_was(lh: Lakehouse, inbox: Path) -> None:
    for n in range(4):
        land(lh, inbox, n)
    lh.create_branch("b", "main")
    expire_snapshots(lh, "main", policies=EXPIRE_ALL)
    assert len(lh.table("bronze.orders", "main").snapshots()) == 1

    other = lh.table("bronze.orders", "b")
    assert len(other.snapshots()) == 4
    assert CHECKPOINT_PROPERTY not in other.properties
    assert ingest_state(other).checkpoint is None
    assert read_state(other, "bronze.orders", "shop") == read_state(
        lh.table("bronze.orders", "main"), "bronze.orders", "shop"
    )
    # b expires on its own later: its own checkpoint, main's is untouched
    main_checkpoint = checkpoint_of(lh.table("bronze.orders", "main"))
    land(lh, inbox, 9, ref="b")
    expire_snapshots(lh, "b", policies=EXPIRE_ALL)
    b_checkpoint = checkpoint_of(lh.table("bronze.orders", "b"))
    assert b_checkpoint != main_checkpoint
    assert checkpoint_of(lh.table("bronze.orders", "main")) == main_checkpoint
    assert land(lh, inbox, ref="b").rows_loaded == 0
    # main never saw orders_9: it is still to be loaded there
    assert land(lh, inbox).rows_loaded == 1


def test_a_dry_run_writes_no_checkpoint(lh: Lakehouse, inbox: Path) -> None:
    for n in range(3):
        land(lh, inbox, n)
    metadata_folder = local(lh.table("bronze.orders").metadata_location).parent
    result = expire_snapshots(lh, policies=EXPIRE_ALL, dry_run=True)
    assert result.tables[0].checkpoint == DRY_RUN_CHECKPOINT
    assert not list(metadata_folder.glob("ingest-checkpoint-*"))
    assert CHECKPOINT_PROPERTY not in lh.table("bronze.orders").properties


def test_tables_without_ingestion_get_no_checkpoint(lh: Lakehouse) -> None:
    table = lh.catalog("main").create_table("silver.plain", batch(0).schema)
    for i in range(3):
        table.append(batch(i * 10))
    result = expire_snapshots(lh, policies=EXPIRE_ALL)
    assert result.expired == 2 and result.tables[0].checkpoint is None
    assert CHECKPOINT_PROPERTY not in lh.table("silver.plain").properties


def test_a_missing_checkpoint_is_an_error_not_an_empty_state(lh: Lakehouse, inbox: Path) -> None:
    for n in range(3):
        land(lh, inbox, n)
    expire_snapshots(lh, policies=EXPIRE_ALL)
    location = checkpoint_of(lh.table("bronze.orders"))
    local(location).unlink()
    with pytest.raises(IngestError, match="cannot read the ingestion checkpoint"):
        read_state(lh.table("bronze.orders"), "bronze.orders", "shop")
    with pytest.raises(IngestError):
        land(lh, inbox)
    # expiry refuses to fold onto it (it would drop the lost state for good)
    table = lh.table("bronze.orders")
    table.append(
        table.scan().to_arrow().slice(0, 1),
        snapshot_properties={"lakehouse.ingest.batch-id": "x", "lakehouse.ingest.source": "s"},
    )
    table.append(table.scan().to_arrow().slice(0, 1))
    result = expire_snapshots(lh, policies=EXPIRE_ALL)
    assert result.tables[0].error and "checkpoint" in result.tables[0].error
    assert not result.committed


def test_a_tampered_or_newer_checkpoint_is_refused(lh: Lakehouse, inbox: Path) -> None:
    for n in range(3):
        land(lh, inbox, n)
    expire_snapshots(lh, policies=EXPIRE_ALL)
    table = lh.table("bronze.orders")
    location = checkpoint_of(table)
    doc = document(location)
    doc["state"]["loaded"] = {}
    local(location).write_bytes(gzip.compress(json.dumps(doc).encode()))
    with pytest.raises(IngestError, match="checksum"):
        read_checkpoint(table.io, location)
    doc["format_version"] = CHECKPOINT_FORMAT_VERSION + 1
    local(location).write_bytes(gzip.compress(json.dumps(doc).encode()))
    with pytest.raises(IngestError, match="format version"):
        read_checkpoint(table.io, location)


def test_old_behaviour_keeps_the_whole_ingestion_chain(lh: Lakehouse, inbox: Path) -> None:
    for n in range(4):
        land(lh, inbox, n)
    legacy = Policies().with_changes(
        snapshots={"keep_last": 1, "max_age": timedelta(0), "ingest_checkpoints": False}
    )
    result = expire_snapshots(lh, policies=legacy)
    assert result.expired == 0 and result.tables[0].kept_for_ingest == 3
    assert CHECKPOINT_PROPERTY not in lh.table("bronze.orders").properties


# -- Kafka offsets and replay points --------------------------------------------------------


def _offsets_commit(table: Table, offsets: dict[str, dict[str, int]], n: int) -> Table:
    table.append(
        batch(n * 10, 1),
        snapshot_properties={
            SUMMARY_KAFKA_OFFSETS: json.dumps(offsets),
            "lakehouse.ingest.batch-id": f"k{n}",
            "lakehouse.ingest.source": "kafka",
        },
    )
    return table


def test_kafka_offsets_survive_expiry(lh: Lakehouse) -> None:
    table = lh.catalog("main").create_table("bronze.changes", batch(0).schema)
    _offsets_commit(table, {"t": {"0": 10, "1": 4}}, 0)
    _offsets_commit(table, {"t": {"0": 20}, "u": {"0": 3}}, 1)
    _offsets_commit(table, {"t": {"0": 30}}, 2)
    _offsets_commit(table, {"t": {"0": 40}}, 3)
    expected = {"t": {0: 40, 1: 4}, "u": {0: 3}}
    assert recorded_offsets(lh.table("bronze.changes")) == expected

    expire_snapshots(lh, policies=EXPIRE_ALL)
    table = lh.table("bronze.changes")
    assert len(table.snapshots()) == 1
    # partitions only the expired snapshots recorded come from the checkpoint
    assert read_checkpoint(table.io, checkpoint_of(table)).kafka_offsets == {
        "t": {0: 30, 1: 4},
        "u": {0: 3},
    }
    assert recorded_offsets(table) == expected
    point = {p.table: p for p in replay_points(lh)}["bronze.changes"]
    assert point.kafka_offsets == expected
    assert (point.source, point.batch_id) == ("kafka", "k3")
    # a newer snapshot wins over the checkpoint for its partitions
    _offsets_commit(table, {"t": {"1": 9}}, 4)
    assert recorded_offsets(lh.table("bronze.changes")) == {"t": {0: 40, 1: 9}, "u": {0: 3}}


# -- the garbage collector -----------------------------------------------------------------


def test_gc_keeps_the_live_checkpoint_and_collects_unreferenced_ones(
    lh: Lakehouse, inbox: Path
) -> None:
    for n in range(3):
        land(lh, inbox, n)
    expire_snapshots(lh, policies=EXPIRE_ALL)
    first = checkpoint_of(lh.table("bronze.orders"))
    land(lh, inbox, 3)
    expire_snapshots(lh, policies=EXPIRE_ALL)
    second = checkpoint_of(lh.table("bronze.orders"))
    # the walker every file consumer uses yields the checkpoint as a referenced file
    table = lh.table("bronze.orders")
    walked = list(
        TableWalker(table.io).table_files(
            ContentKey.of("bronze", "orders"), "main", table.metadata_location
        )
    )
    assert [(f.path, f.required) for f in walked if f.kind is FileKind.INGEST_CHECKPOINT] == [
        (second, True)
    ]
    orphan = local(second).parent / "ingest-checkpoint-orphan.gz.json"  # a failed commit's
    orphan.write_bytes(local(second).read_bytes())

    # all history kept (the default): both checkpoints are live, the orphan is not
    everything = aggressive(gc={"grace_period": timedelta(0), "references": []})
    result = collect_garbage(lh, policies=everything)
    assert not result.failed
    assert exists(first) and exists(second) and not orphan.exists()
    # only the newest commit kept: the first checkpoint is unreferenced, the live one stays
    collect_garbage(lh, policies=aggressive())
    assert exists(second) and not exists(first)
    assert land(lh, inbox).rows_loaded == 0


# -- incremental SQL sources ---------------------------------------------------------------


def test_an_incremental_sql_cursor_survives_expiry(lh: Lakehouse, tmp_path: Path) -> None:
    sa = pytest.importorskip("sqlalchemy")
    from lakehouse.ingest import SqlSource

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER)"))
    source = SqlSource.model_validate(
        {
            "name": "shopdb",
            "url": str(engine.url),
            "table": "bronze.orders",
            "source_table": "orders",
            "cursor": "id",
        }
    )
    for n in range(3):
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO orders VALUES (:i, :a)"), {"i": n, "a": n * 10})
        [loaded] = ingest(lh, source)
        assert loaded.rows_loaded == 1
    cursor = read_state(lh.table("bronze.orders"), "bronze.orders", "shopdb").cursor
    assert cursor is not None and cursor.value == 2

    expire_snapshots(lh, policies=EXPIRE_ALL)
    assert len(lh.table("bronze.orders").snapshots()) == 1
    [nothing] = ingest(lh, source)
    assert nothing.rows_loaded == 0
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO orders VALUES (3, 30)"))
    [more] = ingest(lh, source)
    assert more.rows_loaded == 1
    expire_snapshots(lh, policies=EXPIRE_ALL)  # the cursor now lives in the checkpoint only
    table = lh.table("bronze.orders")
    assert read_checkpoint(table.io, checkpoint_of(table)).sources["shopdb"].cursor
    [again] = ingest(lh, source)
    assert again.rows_loaded == 0
    assert sorted(lh.table("bronze.orders").scan().to_arrow().column("id").to_pylist()) == [
        0,
        1,
        2,
        3,
    ]
    engine.dispose()
