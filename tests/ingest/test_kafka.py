"""Kafka CDC ingestion without a broker: parsing, ordering, dedupe, apply by key, offsets."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from lakehouse.client import Lakehouse
from lakehouse.ingest import BadInputError, BatchQuarantinedError
from lakehouse.ingest.kafka import (
    KafkaCdcSource,
    Record,
    RecordSource,
    consume_cdc,
    in_source_order,
    next_offsets,
    offsets_json,
    parse_event,
    plan_changes,
    recorded_offsets,
    source_position,
)
from lakehouse.ops.dr import SUMMARY_KAFKA_OFFSETS, pause, replay_points, resume
from lakehouse.ops.errors import PausedError
from tests.ingest.conftest import raw_root, rows

TOPIC = "shop.public.orders"


def envelope(
    op: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    lsn: int = 0,
    wrap: bool = False,
) -> bytes:
    """A Debezium PostgreSQL change event."""
    payload = {
        "before": before,
        "after": after,
        "op": op,
        "ts_ms": 1_700_000_000_000 + lsn,
        "source": {"connector": "postgresql", "lsn": lsn, "sequence": f'["{lsn - 1}","{lsn}"]'},
    }
    data = {"schema": {"type": "struct"}, "payload": payload} if wrap else payload
    return json.dumps(data).encode()


def rec(offset: int, value: bytes | None, partition: int = 0, topic: str = TOPIC) -> Record:
    return Record(topic, partition, offset, value, key=b'{"id":1}', timestamp=1_700_000_000_000)


class ListSource(RecordSource):
    """Records from a list, honouring ``assign`` offsets like a real consumer."""

    def __init__(self, records: Sequence[Record]) -> None:
        self.records = list(records)
        self.position: dict[tuple[str, int], int] = {}
        self.assigned: dict[str, dict[int, int]] = {}

    def assign(self, offsets: Mapping[str, Mapping[int, int]]) -> dict[str, dict[int, int]]:
        parts = {(r.topic, r.partition) for r in self.records}
        for topic, partition in parts:
            start = offsets.get(topic, {}).get(partition, 0)
            self.position[(topic, partition)] = start
            self.assigned.setdefault(topic, {})[partition] = start
        return self.assigned

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        out = []
        for r in sorted(self.records, key=lambda r: (r.offset, r.partition)):
            if len(out) >= max_records:
                break
            if r.offset >= self.position[(r.topic, r.partition)]:
                out.append(r)
                self.position[(r.topic, r.partition)] = r.offset + 1
        return out


def source(**extra: Any) -> KafkaCdcSource:
    fields: dict[str, Any] = {
        "topics": [TOPIC],
        "table": "silver.orders",
        "key": ["id"],
        "batch_timeout": 0.05,
    }
    fields.update(extra)
    return KafkaCdcSource(**fields)


def run(lh: Lakehouse, records: Sequence[Record], **kw: Any) -> Any:
    return consume_cdc(
        lh, kw.pop("src", source()), records=ListSource(records), idle_timeout=0.1, **kw
    )


# -- parsing ---------------------------------------------------------------------------------


def test_parse_bare_and_wrapped_envelopes() -> None:
    bare = parse_event(rec(0, envelope("c", after={"id": 1, "v": "a"}, lsn=10)))
    wrapped = parse_event(rec(1, envelope("c", after={"id": 1, "v": "a"}, lsn=10, wrap=True)))
    assert bare is not None and wrapped is not None
    assert (bare.op, bare.after, bare.position) == ("c", {"id": 1, "v": "a"}, (9, 10))
    assert (wrapped.op, wrapped.after, wrapped.ts_ms) == ("c", {"id": 1, "v": "a"}, bare.ts_ms)
    deleted = parse_event(rec(2, envelope("d", before={"id": 1}, lsn=11)))
    assert deleted is not None and deleted.image == {"id": 1}


def connect_schema(*columns: dict[str, Any]) -> dict[str, Any]:
    """The JSON converter's schema of a Debezium envelope whose rows have ``columns``."""
    row = {"type": "struct", "fields": list(columns), "optional": True}
    return {
        "type": "struct",
        "name": "shop.public.orders.Envelope",
        "fields": [
            {**row, "field": "before"},
            {**row, "field": "after"},
            {"type": "string", "optional": False, "field": "op"},
        ],
    }


ORDER_COLUMNS = (
    {"type": "int32", "optional": False, "field": "id"},
    {
        "type": "bytes",
        "optional": True,
        "name": "org.apache.kafka.connect.data.Decimal",
        "parameters": {"scale": "2", "connect.decimal.precision": "12"},
        "field": "amount",
    },
    {"type": "int32", "optional": True, "name": "io.debezium.time.Date", "field": "created"},
    {"type": "int64", "optional": True, "name": "io.debezium.time.MicroTimestamp", "field": "at"},
    {"type": "string", "optional": True, "name": "io.debezium.time.ZonedTimestamp", "field": "tz"},
    {"type": "int64", "optional": True, "name": "io.debezium.time.MicroTime", "field": "t"},
    {"type": "string", "optional": True, "field": "note"},
    {"type": "bytes", "optional": True, "field": "blob"},
)


def test_the_converter_schema_decodes_logical_types_and_types_every_column() -> None:
    import datetime as dt
    from decimal import Decimal

    import pyarrow as pa

    # values as Debezium 3.6's PostgreSQL connector sends them with the default settings
    after = {
        "id": 1,
        "amount": "BBo=",  # 1050 unscaled, scale 2
        "created": 19724,
        "at": 1704164645123456,
        "tz": "2024-01-02T03:04:05.000000Z",
        "t": 3_723_000_001,
        "note": None,
        "blob": "AAE=",
    }
    value = {"schema": connect_schema(*ORDER_COLUMNS), "payload": {"op": "c", "after": after}}
    event = parse_event(rec(0, json.dumps(value).encode()))
    assert event is not None and event.types is not None
    assert event.after == {
        "id": 1,
        "amount": Decimal("10.50"),
        "created": dt.date(2024, 1, 2),
        "at": dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
        "tz": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "t": dt.time(1, 2, 3, 1),
        "note": None,
        "blob": b"\x00\x01",
    }
    assert event.types == {
        "id": pa.int32(),
        "amount": pa.decimal128(12, 2),
        "created": pa.date32(),
        "at": pa.timestamp("us"),
        "tz": pa.timestamp("us", "UTC"),
        "t": pa.time64("us"),
        "note": pa.string(),
        "blob": pa.binary(),
    }
    negative = {**after, "amount": "/zk="}  # -199 unscaled
    value["payload"] = {"op": "c", "after": negative}
    event = parse_event(rec(1, json.dumps(value).encode()))
    assert event is not None and event.after is not None
    assert event.after["amount"] == Decimal("-1.99")
    wide = (10**37 + 7).to_bytes(17, "big", signed=True)  # 38 digits: no rounding to 28
    value["payload"] = {"op": "c", "after": {**after, "amount": base64.b64encode(wide).decode()}}
    event = parse_event(rec(2, json.dumps(value).encode()))
    assert event is not None and event.after is not None
    assert event.after["amount"] == Decimal("100000000000000000000000000000000000.07")


def test_a_value_that_does_not_match_its_schema_is_a_poison_event() -> None:
    value = {
        "schema": connect_schema(*ORDER_COLUMNS),
        "payload": {"op": "c", "after": {"id": 1, "amount": 12.5}},
    }
    with pytest.raises(BadInputError, match="does not match the event's schema"):
        parse_event(rec(3, json.dumps(value).encode()))


def test_schema_typed_events_land_in_silver_with_their_types(lh: Lakehouse) -> None:
    import datetime as dt
    from decimal import Decimal

    schema = connect_schema(*ORDER_COLUMNS[:3])
    first = {"id": 1, "amount": None, "created": None}  # all NULL: the schema still types them
    second = {"id": 2, "amount": "BBo=", "created": 19724}
    values = [
        json.dumps({"schema": schema, "payload": {"op": "c", "after": a, "source": {}}}).encode()
        for a in (first, second)
    ]
    run(lh, [rec(0, values[0])], max_batches=1)
    run(lh, [rec(0, values[0]), rec(1, values[1])])
    table = lh.table("silver.orders")
    types = {f.name: str(f.field_type) for f in table.schema().fields}
    assert (types["id"], types["amount"], types["created"]) == ("int", "decimal(12, 2)", "date")
    assert rows(lh, "silver.orders") == [
        (1, None, None),
        (2, Decimal("10.50"), dt.date(2024, 1, 2)),
    ]
    log = lh.table("bronze.orders_changes").scan().to_arrow().column("after").to_pylist()
    images = sorted((json.loads(a) for a in log), key=lambda a: a["id"])
    assert images[-1] == {"id": 2, "amount": "10.50", "created": "2024-01-02"}
    stamps = lh.table("bronze.orders_changes").scan().to_arrow().column("kafka_timestamp")
    assert set(stamps.to_pylist()) == {dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)}


def test_a_toast_placeholder_reaching_silver_is_logged_with_the_fix(
    lh: Lakehouse, caplog: pytest.LogCaptureFixture
) -> None:
    first = rec(0, envelope("c", after={"id": 1, "body": "x" * 9000, "v": "a"}, lsn=10))
    # REPLICA IDENTITY DEFAULT: an update that leaves a large (TOASTed) value unchanged
    update = {"id": 1, "body": "__debezium_unavailable_value", "v": "b"}
    with caplog.at_level("WARNING", logger="lakehouse.ingest.kafka"):
        run(lh, [first])
        assert not caplog.records
        run(lh, [first, rec(1, envelope("u", after=update, lsn=20))])  # resumes at offset 1
    [warning] = caplog.records
    assert "'body'" in warning.getMessage() and "REPLICA IDENTITY FULL" in warning.getMessage()


def test_tombstones_are_ignored() -> None:
    assert parse_event(rec(0, None)) is None
    assert parse_event(rec(0, b'{"schema": null, "payload": null}')) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "JSON object, not list"),
        (b'{"after": {"id": 1}}', "has no 'op'"),
        (b'{"op": "x", "after": {"id": 1}}', "has op 'x'"),
        (b'{"op": "d", "before": null}', "without the 'before' image"),
        (b'{"op": "u", "after": 5}', "'after' is not an object"),
    ],
)
def test_poison_events_raise_one_line(value: bytes, message: str) -> None:
    with pytest.raises(BadInputError, match=message) as info:
        parse_event(rec(7, value))
    assert "\n" not in str(info.value) and f"{TOPIC}[0]@7" in str(info.value)


def test_source_positions() -> None:
    assert source_position({"lsn": 5, "sequence": '["3","5"]'}) == (3, 5)
    assert source_position({"lsn": 5, "sequence": '[null,"5"]'}) == (0, 5)
    assert source_position({"lsn": 5}) == (5,)
    assert source_position({"file": "mysql-bin.000003", "pos": 154, "row": 2}) == (3, 154, 2)
    assert source_position({"connector": "sqlserver", "change_lsn": "x"}) is None


# -- ordering, offsets, planning -----------------------------------------------------------


def test_source_order_is_per_partition_by_offset() -> None:
    records = [rec(5, b"", 1), rec(3, b"", 0), rec(4, b"", 1), rec(1, b"", 0)]
    assert [(r.partition, r.offset) for r in in_source_order(records)] == [
        (0, 1),
        (0, 3),
        (1, 4),
        (1, 5),
    ]


def test_next_offsets_is_last_plus_one_and_keeps_other_partitions() -> None:
    offsets = next_offsets({TOPIC: {0: 3, 2: 9}}, [rec(3, b""), rec(4, b""), rec(0, b"", 1)])
    assert offsets == {TOPIC: {0: 5, 1: 1, 2: 9}}
    assert json.loads(offsets_json(offsets)) == {TOPIC: {"0": 5, "1": 1, "2": 9}}


def test_plan_newest_change_per_key_wins_and_duplicates_are_skipped() -> None:
    raw = [
        envelope("c", after={"id": 1, "v": "a"}, lsn=10),
        envelope("u", before={"id": 1}, after={"id": 1, "v": "b"}, lsn=20),
        envelope("c", after={"id": 2, "v": "x"}, lsn=30),
        envelope("u", before={"id": 1}, after={"id": 1, "v": "b"}, lsn=20),  # re-delivered
        envelope("d", before={"id": 2}, lsn=40),
    ]
    events = [e for n, v in enumerate(raw) if (e := parse_event(rec(n, v))) is not None]
    plan = plan_changes(events, ["id"])
    assert plan.duplicates == 1
    assert {k: (e.op, e.after) for k, e in plan.final.items()} == {
        (1,): ("u", {"id": 1, "v": "b"}),
        (2,): ("d", None),
    }
    # silver already holds key 1 at lsn 20: the change at lsn 20 is skipped too
    plan = plan_changes(events, ["id"], {(1,): "[19,20]"})
    assert (1,) not in plan.final and plan.duplicates == 3


def test_a_postgres_change_after_a_restart_is_not_taken_for_a_duplicate() -> None:
    # Debezium sends [null, lsn] as the sequence of the first change it streams after a
    # (re)start: a pair smaller than the key's [commit, lsn] although its LSN is later.
    later = {"connector": "postgresql", "lsn": 700, "sequence": '[null,"700"]'}
    value = {"op": "u", "before": None, "after": {"id": 1, "v": "c"}, "source": later}
    event = parse_event(rec(0, json.dumps(value).encode()))
    assert event is not None
    plan = plan_changes([event], ["id"], {(1,): "[500,600]"})
    assert plan.duplicates == 0 and plan.final[(1,)].after == {"id": 1, "v": "c"}
    assert plan_changes([event], ["id"], {(1,): "[650,700]"}).duplicates == 1


def test_source_config_errors_are_one_line() -> None:
    from lakehouse.ingest import SourceConfigError

    with pytest.raises(SourceConfigError, match="topics"):
        KafkaCdcSource.create(topics=["bad topic"], table="silver.t", key=["id"])
    assert source().change_log == "bronze.orders_changes"


# -- end to end on an embedded lakehouse -----------------------------------------------------


def stream() -> list[Record]:
    values = [
        envelope("r", after={"id": 1, "name": "a", "qty": 1}, lsn=10),
        envelope("r", after={"id": 2, "name": "b", "qty": 2}, lsn=11),
        envelope("c", after={"id": 3, "name": "c", "qty": 3}, lsn=20),
        envelope("u", before={"id": 1}, after={"id": 1, "name": "a2", "qty": 10}, lsn=30),
        None,  # a tombstone
        envelope("d", before={"id": 2, "name": "b", "qty": 2}, lsn=40),
        envelope("u", before={"id": 3}, after={"id": 3, "name": "c2", "qty": 30}, lsn=50),
    ]
    return [rec(n, v) for n, v in enumerate(values)]


def test_changes_apply_by_key_exactly_once(lh: Lakehouse) -> None:
    records = stream()
    first = run(lh, records[:4], src=source(batch_size=2))
    assert (first.batches, first.records, first.stopped) == (2, 4, "idle")
    assert rows(lh, "silver.orders") == [(1, "a2", 10), (2, "b", 2), (3, "c", 3)]
    # a restart resumes at the catalog's offsets: the first four are not consumed again
    second = run(lh, records)
    assert second.start_offsets == {TOPIC: {0: 4}}
    assert (second.records, second.tombstones, second.deletes) == (3, 1, 1)
    assert rows(lh, "silver.orders") == [(1, "a2", 10), (3, "c2", 30)]
    log = lh.table("bronze.orders_changes").scan().to_arrow()
    assert sorted(log.column("offset").to_pylist()) == list(range(7))
    assert log.column("op").to_pylist().count(None) == 1  # the tombstone, logged once
    assert recorded_offsets(lh.table("bronze.orders_changes"), lh.table("silver.orders")) == {
        TOPIC: {0: 7}
    }
    third = run(lh, records)
    assert third.batches == 0 and third.records == 0
    # silver rows say which change wrote them
    silver = lh.table("silver.orders").scan().to_arrow().to_pylist()
    assert {r["id"]: r["_cdc_offset"] for r in silver} == {1: f"{TOPIC}/0/3", 3: f"{TOPIC}/0/6"}
    # both tables were committed together, the offsets in both snapshot summaries
    for name in ("bronze.orders_changes", "silver.orders"):
        snapshot = lh.table(name).current_snapshot()
        assert snapshot is not None and snapshot.summary is not None
        summary = snapshot.summary.additional_properties
        assert json.loads(summary[SUMMARY_KAFKA_OFFSETS]) == {TOPIC: {"0": 7}}


def test_replay_points_report_the_next_offsets(lh: Lakehouse) -> None:
    run(lh, stream())
    points = {p.table: p for p in replay_points(lh)}
    assert points["silver.orders"].kafka_offsets == {TOPIC: {0: 7}}
    assert points["bronze.orders_changes"].kafka_offsets == {TOPIC: {0: 7}}
    assert points["silver.orders"].action == f"replay Kafka from {TOPIC}[0]@7"


def test_redelivered_events_are_harmless(lh: Lakehouse) -> None:
    records = stream()
    # Debezium restarted and re-sent the last three changes under new offsets
    again = [rec(7 + n, r.value) for n, r in enumerate(records[4:])]
    result = run(lh, records + again)
    assert result.duplicates == 2
    assert rows(lh, "silver.orders") == [(1, "a2", 10), (3, "c2", 30)]
    log = lh.table("bronze.orders_changes").scan().to_arrow()
    assert sorted(log.column("offset").to_pylist()) == list(range(10))


def test_poison_events_are_set_aside_and_skipped(lh: Lakehouse) -> None:
    records = [
        rec(0, envelope("c", after={"id": 1, "name": "a", "qty": 1}, lsn=10)),
        rec(1, b"{oops"),
        rec(2, envelope("c", after={"name": "no key"}, lsn=11)),
        rec(3, envelope("c", after={"id": 2, "name": "b", "qty": 2}, lsn=12)),
    ]
    result = run(lh, records)
    assert (result.rejected, result.changes, result.offsets) == (2, 2, {TOPIC: {0: 4}})
    assert rows(lh, "silver.orders") == [(1, "a", 1), (2, "b", 2)]
    [reason_file] = (raw_root(lh) / "_rejected" / "kafka" / TOPIC).glob("*/reason.json")
    reasons = json.loads(reason_file.read_text())["reasons"]
    assert any("@1: malformed JSON" in r for r in reasons)
    assert any("@2: key column(s) id missing" in r for r in reasons)
    landed = (reason_file.parent / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["value"] for line in landed] == ["{oops", records[2].value.decode()]
    errors = lh.table("bronze.orders_changes").scan().to_arrow().column("error").to_pylist()
    assert sum(e is not None for e in errors) == 2


def test_raw_landing_keeps_the_values_unchanged(lh: Lakehouse) -> None:
    records = stream()
    run(lh, records)
    [manifest] = (raw_root(lh) / "kafka" / TOPIC).glob("*/*/*/*/_manifest.json")
    data = json.loads(manifest.read_text())
    assert data["source_type"] == "kafka" and data["files"][0]["rows"] == len(records)
    lines = [json.loads(x) for x in (manifest.parent / "events.jsonl").read_text().splitlines()]
    assert [(x["offset"], x["value"]) for x in lines] == [
        (r.offset, r.value.decode() if r.value is not None else None) for r in records
    ]


def test_new_columns_are_added(lh: Lakehouse) -> None:
    run(lh, stream()[:3])
    later = rec(3, envelope("u", after={"id": 1, "name": "a", "qty": 1, "note": "new"}, lsn=60))
    result = run(lh, [*stream()[:3], later])
    assert result.added_columns == ("note",)
    columns = lh.table("silver.orders").schema().column_names
    assert columns.index("note") < columns.index("_cdc_op")
    assert rows(lh, "silver.orders", "main", "id", "note") == [(1, "new"), (2, None), (3, None)]


def test_incompatible_schema_quarantines_the_batch_and_commits_nothing(lh: Lakehouse) -> None:
    run(lh, stream()[:3])
    before = lh.store.resolve("main").hash
    bad = rec(3, envelope("u", after={"id": 1, "name": "a", "qty": "lots"}, lsn=60))
    with pytest.raises(BatchQuarantinedError, match=r"does not fit silver\.orders") as info:
        run(lh, [*stream()[:3], bad])
    assert "\n" not in str(info.value)
    assert lh.store.resolve("main").hash == before
    assert list((raw_root(lh) / "_rejected" / "kafka" / TOPIC).glob("*/reason.json"))


def test_pause_is_respected(lh: Lakehouse) -> None:
    pause(lh, "restore drill")
    with pytest.raises(PausedError, match="paused"):
        run(lh, stream())
    resume(lh)
    assert run(lh, stream()).batches == 1


def test_composite_keys_and_partitions(lh: Lakehouse) -> None:
    def ev(op: str, a: int, b: str, v: int | None, lsn: int) -> bytes:
        image = {"a": a, "b": b, "v": v}
        return envelope(
            op, before=image if op == "d" else None, after=None if op == "d" else image, lsn=lsn
        )

    records = [
        rec(0, ev("c", 1, "x", 1, 10), 0),
        rec(0, ev("c", 1, "y", 2, 11), 1),
        rec(1, ev("c", 2, "x", 3, 12), 0),
        rec(1, ev("u", 1, "y", 20, 13), 1),
        rec(2, ev("d", 1, "x", None, 14), 0),
    ]
    src = source(key=["a", "b"], table="silver.pairs", batch_size=3)
    result = run(lh, records, src=src)
    assert result.offsets == {TOPIC: {0: 3, 1: 2}}
    assert rows(lh, "silver.pairs") == [(1, "y", 20), (2, "x", 3)]
