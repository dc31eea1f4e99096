"""Kafka CDC against the real broker of scripts/services/kafka.sh, with a kill -9 mid-stream.

A source table is modelled in Python; its Debezium-format change stream (inserts,
updates, deletes with tombstones, and a re-delivered suffix as after a connector
restart) is produced to a 3-partition topic keyed by primary key. `lakehouse ingest
kafka` runs as a subprocess, is killed with SIGKILL while it is committing batches,
restarted, and stopped with SIGTERM once it has caught up. Silver must then equal the
source row for row and the bronze change log must hold every Kafka offset once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lakehouse
from lakehouse.client import Lakehouse
from lakehouse.ingest.kafka import recorded_offsets
from lakehouse.ops.dr import replay_points

pytestmark = pytest.mark.integration

BOOTSTRAP_ENV = "LAKEHOUSE_TEST_KAFKA_BOOTSTRAP"
PARTITIONS = 3


@pytest.fixture
def bootstrap() -> str:
    """The broker of the integration tier (a missing one is a failure, not a skip)."""
    value = os.environ.get(BOOTSTRAP_ENV)
    if not value:
        pytest.fail(
            f"{BOOTSTRAP_ENV} is not set: run `make test-integration` "
            "(or `scripts/services/kafka.sh start` and export the address it prints)",
            pytrace=False,
        )
    return value


@pytest.fixture
def topic(bootstrap: str) -> Iterator[str]:
    """A fresh topic with three partitions, deleted afterwards."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    name = f"cdc-test-{uuid.uuid4().hex[:8]}"
    [future] = admin.create_topics([NewTopic(name, PARTITIONS, 1)]).values()
    future.result(30)
    yield name
    for f in admin.delete_topics([name]).values():
        f.result(30)


class SourceTable:
    """A primary-keyed table and the Debezium events its changes produce."""

    def __init__(self, seed: int) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.events: list[tuple[int, bytes | None]] = []
        self.lsn = 1000
        self.random = random.Random(seed)

    def _emit(self, op: str, key: int, before: Any, after: Any) -> None:
        self.lsn += 8
        payload = {
            "before": before,
            "after": after,
            "op": op,
            "ts_ms": int(time.time() * 1000),
            "source": {
                "connector": "postgresql",
                "name": "shop",
                "db": "shop",
                "table": "orders",
                "lsn": self.lsn,
                "sequence": json.dumps([str(self.lsn - 4), str(self.lsn)]),
            },
        }
        wrapped = self.random.random() < 0.5  # both envelope forms
        value = {"schema": {"type": "struct", "name": "shop.orders.Envelope"}, "payload": payload}
        self.events.append((key, json.dumps(value if wrapped else payload).encode()))

    def change(self) -> None:
        key = self.random.randint(1, 400)
        row = self.rows.get(key)
        if row is None:
            after = {"id": key, "customer": f"c{key % 37}", "amount": key * 1.5, "status": "new"}
            self.rows[key] = after
            self._emit("c", key, None, after)
        elif self.random.random() < 0.2:
            del self.rows[key]
            self._emit("d", key, row, None)
            self.events.append((key, None))  # Debezium's tombstone after a delete
        else:
            after = {**row, "amount": round(row["amount"] + 1.25, 2), "status": "paid"}
            self.rows[key] = after
            self._emit("u", key, row, after)

    def redeliver(self, n: int) -> None:
        """Re-send the last ``n`` events, as Debezium does after a connector restart."""
        self.events.extend(self.events[-n:])


def produce(bootstrap: str, topic: str, events: list[tuple[int, bytes | None]]) -> None:
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
    )
    for key, value in events:
        producer.produce(topic, value=value, key=json.dumps({"id": key}).encode())
        producer.poll(0)
    assert producer.flush(30) == 0


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lakehouse-test"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)
        }
    finally:
        consumer.close()


def start_cli(
    home: Path, bootstrap: str, topic: str, log: Path, *extra: str, batch_size: int = 150
) -> subprocess.Popen[bytes]:
    """``lakehouse ingest kafka`` of ``topic`` into ``silver.orders`` (key ``id``), started."""
    env = {
        **os.environ,
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
    }
    command = [
        sys.executable,
        "-m",
        "lakehouse.cli",
        "ingest",
        "kafka",
        "--topic",
        topic,
        "--table",
        "silver.orders",
        "--key",
        "id",
        "--batch-size",
        str(batch_size),
        "--batch-timeout",
        "0.3",
        *extra,
    ]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def committed(lh: Lakehouse) -> dict[int, int]:
    lh.store.resolve("main")  # fresh read of the branch
    try:
        table = lh.table("bronze.orders_changes")
    except Exception:
        return {}
    return next(iter(recorded_offsets(table).values()), {})


def test_cdc_survives_kill_9_and_applies_everything_once(
    tmp_path: Path, bootstrap: str, topic: str
) -> None:
    home = tmp_path / "home"
    lakehouse.connect(home, create=True).close()
    source = SourceTable(seed=7)
    for _ in range(1200):
        source.change()
    source.redeliver(80)
    for _ in range(600):
        source.change()
    produce(bootstrap, topic, source.events)
    ends = end_offsets(bootstrap, topic)
    assert sum(ends.values()) == len(source.events)

    log = tmp_path / "cli.log"
    first = start_cli(home, bootstrap, topic, log)
    deadline = time.monotonic() + 90
    with lakehouse.connect(home) as lh:
        while sum(committed(lh).values()) < len(source.events) // 4:
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no progress: " + log.read_text()
            time.sleep(0.2)
        first.send_signal(signal.SIGKILL)  # mid-stream, possibly mid-commit
        first.wait(10)
        at_kill = committed(lh)
        assert sum(at_kill.values()) < len(source.events), "killed too late to prove anything"

        second = start_cli(home, bootstrap, topic, log)
        deadline = time.monotonic() + 120
        while committed(lh) != ends:
            assert second.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "did not catch up: " + log.read_text()
            time.sleep(0.3)
        second.send_signal(signal.SIGTERM)  # finishes its batch, exits cleanly
        assert second.wait(30) == 0, log.read_text()

        silver = lh.table("silver.orders", "main").scan().to_arrow().to_pylist()
        ids = [r["id"] for r in silver]
        assert len(ids) == len(set(ids)), "duplicate keys in silver"
        got = {r["id"]: {k: r[k] for k in ("id", "customer", "amount", "status")} for r in silver}
        assert got == source.rows

        changes = lh.table("bronze.orders_changes", "main").scan().to_arrow()
        offsets = list(
            zip(
                changes.column("partition").to_pylist(),
                changes.column("offset").to_pylist(),
                strict=True,
            )
        )
        assert len(offsets) == len(set(offsets)) == len(source.events)
        assert set(offsets) == {(p, o) for p, end in ends.items() for o in range(end)}

        points = {p.table: p for p in replay_points(lh)}
        assert points["silver.orders"].kafka_offsets.get(topic, {}).items() <= ends.items()
        assert points["bronze.orders_changes"].kafka_offsets == {topic: ends}
    assert "stopped: stopped" in log.read_text()


def test_bounded_run_reports_json(tmp_path: Path, bootstrap: str, topic: str) -> None:
    home = tmp_path / "home"
    lakehouse.connect(home, create=True).close()
    source = SourceTable(seed=3)
    for _ in range(50):
        source.change()
    produce(bootstrap, topic, source.events)
    log = tmp_path / "cli.log"
    proc = start_cli(home, bootstrap, topic, log, "--idle-timeout", "3", "--output", "json")
    assert proc.wait(90) == 0, log.read_text()
    summary = json.loads(log.read_text()[log.read_text().index("{") :])
    assert summary["records"] == len(source.events) and summary["stopped"] == "idle"
    assert summary["offsets"] == {
        topic: {str(p): o for p, o in end_offsets(bootstrap, topic).items()}
    }
    with lakehouse.connect(home) as lh:
        rows = lh.table("silver.orders").scan().to_arrow().to_pylist()
        assert {r["id"] for r in rows} == set(source.rows)
