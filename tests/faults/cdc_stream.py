"""The change stream the CDC fault tests apply, and what "exactly once" means after a rerun."""

from __future__ import annotations

from lakehouse.client import Lakehouse
from lakehouse.ingest.kafka import KafkaCdcSource, recorded_offsets
from lakehouse.ops import check
from tests.ingest.test_kafka_integration import SourceTable, end_offsets, produce

#: Events per batch: the stream is several batches long, so a fault can hit one mid-stream.
BATCH = 120


def produce_stream(
    bootstrap: str, topic: str, seed: int
) -> tuple[SourceTable, dict[int, int], KafkaCdcSource]:
    """400 changes of a modelled source table with a re-delivered suffix of 20 in between.

    Returns the source table (the rows silver must end with), the topic's end offsets and
    the CDC source that applies the topic into ``silver.orders``.
    """
    source_table = SourceTable(seed=seed)
    for _ in range(300):
        source_table.change()
    source_table.redeliver(20)
    for _ in range(100):
        source_table.change()
    produce(bootstrap, topic, source_table.events)
    cdc = KafkaCdcSource(
        topics=(topic,),
        table="silver.orders",
        key=("id",),
        batch_size=BATCH,
        batch_timeout=0.5,
        bootstrap_servers=bootstrap,
    )
    return source_table, end_offsets(bootstrap, topic), cdc


def assert_applied_exactly_once(
    lh: Lakehouse, source_table: SourceTable, topic: str, ends: dict[int, int], ref: str
) -> None:
    """Silver equals the source row for row, bronze holds every offset once, check is clean."""
    silver = lh.table("silver.orders", ref).scan().to_arrow().to_pylist()
    keys = [r["id"] for r in silver]
    assert len(keys) == len(set(keys)), "duplicate keys in silver"
    got = {r["id"]: {k: r[k] for k in ("id", "customer", "amount", "status")} for r in silver}
    assert got == source_table.rows
    changes = lh.table("bronze.orders_changes", ref).scan().to_arrow()
    offsets = list(
        zip(
            changes.column("partition").to_pylist(),
            changes.column("offset").to_pylist(),
            strict=True,
        )
    )
    assert len(offsets) == len(set(offsets)) == len(source_table.events)  # each event once
    assert recorded_offsets(lh.table("bronze.orders_changes", ref)) == {topic: ends}
    report = check(lh, [ref])
    assert report.ok, [p for t in report.tables for p in t.problems]
    assert report.files_checked > 0
