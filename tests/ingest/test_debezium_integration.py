"""Real CDC: PostgreSQL → Debezium on Kafka Connect → Kafka → `lakehouse ingest kafka` → silver.

The services are the real ones: the logical-decoding PostgreSQL of
``scripts/services/postgres.sh --logical`` (``LAKEHOUSE_TEST_CDC_POSTGRES_URL``), the broker
of ``scripts/services/kafka.sh`` (``LAKEHOUSE_TEST_KAFKA_BOOTSTRAP``) and a Kafka Connect
worker with the Debezium PostgreSQL connector, started here by
``scripts/services/kafka-connect.sh`` and stopped at teardown. A source table gets inserts,
updates and deletes (snapshot first, then streaming), a schema change (ADD COLUMN), a
``kill -9`` of the consumer and a restart of Connect, all mid-stream; silver must then equal
the source table row for row, and the bronze change log must hold every Kafka record once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import lakehouse
from lakehouse.client import Lakehouse
from lakehouse.ingest.kafka import recorded_offsets
from tests.ingest.test_kafka_integration import start_cli

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONNECT_SH = REPO / "scripts" / "services" / "kafka-connect.sh"
BOOTSTRAP_ENV = "LAKEHOUSE_TEST_KAFKA_BOOTSTRAP"
SOURCE_ENV = "LAKEHOUSE_TEST_CDC_POSTGRES_URL"
COLUMNS = ("id", "customer", "amount", "qty", "status", "created", "updated_at", "note")


def _required(name: str, how: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run `make test-integration` ({how})", pytrace=False)
    return value


@pytest.fixture(scope="module")
def bootstrap() -> str:
    """The broker of the integration tier (a missing one is a failure, not a skip)."""
    return _required(BOOTSTRAP_ENV, "or `scripts/services/kafka.sh start`")


@pytest.fixture(scope="module")
def source_url() -> str:
    """libpq URL of the logical-decoding PostgreSQL (``postgres.sh --logical``)."""
    url = _required(SOURCE_ENV, "or `scripts/services/postgres.sh --logical start`")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def connect_script(command: str, bootstrap: str) -> str:
    """Run ``kafka-connect.sh COMMAND`` against ``bootstrap``; its last output line."""
    env = {**os.environ, "LAKEHOUSE_CONNECT_BOOTSTRAP": bootstrap}
    done = subprocess.run(
        ["bash", str(CONNECT_SH), command], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


@pytest.fixture(scope="module")
def connect(bootstrap: str) -> Iterator[str]:
    """A running Kafka Connect worker (its REST URL), stopped afterwards if started here."""
    env = {**os.environ, "LAKEHOUSE_CONNECT_BOOTSTRAP": bootstrap}
    was_running = (
        subprocess.run(["bash", str(CONNECT_SH), "status"], env=env, capture_output=True).returncode
        == 0
    )
    url = connect_script("start", bootstrap)
    yield url
    if not was_running:
        connect_script("stop", bootstrap)


def rest(url: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else None


@pytest.fixture
def database(source_url: str) -> Iterator[str]:
    """A throw-away source database on the logical cluster; slot and database dropped after."""
    import psycopg

    name = f"cdc_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(source_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield name
    with psycopg.connect(source_url, autocommit=True) as admin:
        for _ in range(30):  # the connector's walsender may take a moment to go away
            admin.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                "WHERE slot_name = %s AND active_pid IS NOT NULL",
                (name,),
            )
            try:
                admin.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE slot_name = %s",
                    (name,),
                )
                break
            except psycopg.errors.ObjectInUse:
                time.sleep(1)
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def connector_config(source_url: str, database: str, prefix: str) -> dict[str, str]:
    """The connector configuration docs/cdc.md documents, for ``database``."""
    from urllib.parse import urlsplit

    parts = urlsplit(source_url)
    return {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "database.hostname": parts.hostname or "127.0.0.1",
        "database.port": str(parts.port or 5432),
        "database.user": parts.username or "",
        "database.password": parts.password or "",
        "database.dbname": database,
        "topic.prefix": prefix,
        "plugin.name": "pgoutput",
        "slot.name": database,
        "publication.name": f"{database}_pub",
        "publication.autocreate.mode": "filtered",
        "table.include.list": "public.orders",
        "snapshot.mode": "initial",
    }


class Source:
    """The source table, changed at random through SQL."""

    def __init__(self, url: str, seed: int) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.random = random.Random(seed)
        self.next_id = 1
        self.has_note = False

    def create(self) -> None:
        self.conn.execute(
            "CREATE TABLE orders (id integer PRIMARY KEY, customer text NOT NULL, "
            "amount numeric(12, 2), qty bigint, status text, created date, "
            "updated_at timestamp)"
        )

    def ids(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT id FROM orders").fetchall()]

    def change(self, n: int) -> None:
        """``n`` random statements in transactions of one to five statements."""
        done = 0
        while done < n:
            with self.conn.transaction():
                for _ in range(min(n - done, self.random.randint(1, 5))):
                    self._one()
                    done += 1

    def _one(self) -> None:
        r = self.random.random()
        ids = self.ids() if r >= 0.4 else []
        day = dt.date(2024, 1, 1) + dt.timedelta(days=self.random.randint(0, 400))
        stamp = dt.datetime(2024, 1, 1) + dt.timedelta(microseconds=self.random.getrandbits(45))
        amount = Decimal(self.random.randint(-99_999, 9_999_999)).scaleb(-2)
        if r < 0.4 or not ids:
            self.conn.execute(
                "INSERT INTO orders (id, customer, amount, qty, status, created, updated_at) "
                "VALUES (%s, %s, %s, %s, 'new', %s, %s)",
                (self.next_id, f"c{self.next_id % 17}", amount, self.next_id * 3, day, stamp),
            )
            if self.has_note and self.random.random() < 0.5:
                self.conn.execute(
                    "UPDATE orders SET note = %s WHERE id = %s", (f"n{self.next_id}", self.next_id)
                )
            self.next_id += 1
        elif r < 0.8:
            key = self.random.choice(ids)
            if self.has_note and self.random.random() < 0.5:
                self.conn.execute(
                    "UPDATE orders SET note = %s, status = 'noted' WHERE id = %s",
                    (f"note {key} {self.random.randint(0, 99)}", key),
                )
            else:
                self.conn.execute(
                    "UPDATE orders SET amount = %s, status = 'paid', updated_at = %s, "
                    "qty = NULL WHERE id = %s",
                    (amount, stamp, key),
                )
        else:
            self.conn.execute("DELETE FROM orders WHERE id = %s", (self.random.choice(ids),))

    def add_note_column(self) -> None:
        self.conn.execute("ALTER TABLE orders ADD COLUMN note text")
        self.has_note = True

    def rows(self) -> dict[int, tuple[Any, ...]]:
        columns = ", ".join(COLUMNS if self.has_note else COLUMNS[:-1])
        found = self.conn.execute(f"SELECT {columns} FROM orders").fetchall()
        return {r[0]: tuple(r) + (() if self.has_note else (None,)) for r in found}


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lakehouse-test"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return {}
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in meta.partitions
        }
    finally:
        consumer.close()


def committed(lh: Lakehouse, topic: str) -> dict[int, int]:
    lh.store.resolve("main")
    try:
        table = lh.table("bronze.orders_changes")
    except Exception:
        return {}
    return recorded_offsets(table).get(topic, {})


def silver_rows(lh: Lakehouse) -> dict[int, tuple[Any, ...]]:
    from pyiceberg.exceptions import NoSuchTableError

    try:
        data = lh.table("silver.orders", "main").scan().to_arrow().to_pylist()
    except NoSuchTableError:  # before the consumer's first commit
        return {}
    ids = [r["id"] for r in data]
    assert len(ids) == len(set(ids)), "a key is twice in silver"
    return {r["id"]: tuple(r.get(c) for c in COLUMNS) for r in data}


def wait_for(what: str, check: Any, seconds: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() >= deadline:
            tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
            pytest.fail(f"timed out waiting for {what}\n{tail}", pytrace=False)
        time.sleep(0.5)


def test_debezium_stream_reaches_silver_row_for_row_through_kill_9_and_connect_restart(
    tmp_path: Path, bootstrap: str, source_url: str, connect: str, database: str
) -> None:
    prefix = f"lhcdc{uuid.uuid4().hex[:6]}"
    topic = f"{prefix}.public.orders"
    name = f"lakehouse-test-{prefix}"
    db_url = source_url.rsplit("/", 1)[0] + f"/{database}"
    source = Source(db_url, seed=11)
    source.create()
    source.change(150)  # rows for the initial snapshot (op r)

    rest(
        f"{connect}/connectors/{name}/config", "PUT", connector_config(source_url, database, prefix)
    )
    home = tmp_path / "home"
    lakehouse.connect(home, create=True).close()
    log = tmp_path / "consumer.log"
    consumer: subprocess.Popen[bytes] | None = None
    try:
        wait_for("the snapshot in Kafka", lambda: sum(end_offsets(bootstrap, topic).values()), 120)
        consumer = start_cli(home, bootstrap, topic, log, batch_size=60)
        source.change(400)

        with lakehouse.connect(home) as lh:
            # kill -9 the consumer mid-stream (possibly mid-commit), then restart it
            wait_for(
                "the consumer's first commits",
                lambda: sum(committed(lh, topic).values()) >= 200,
                120,
                log,
            )
            consumer.send_signal(signal.SIGKILL)
            consumer.wait(10)
            ends = end_offsets(bootstrap, topic)
            assert sum(committed(lh, topic).values()) < sum(ends.values()), "killed too late"
            consumer = start_cli(home, bootstrap, topic, log, batch_size=60)

            # a schema change, then more changes that use the new column
            source.add_note_column()
            source.change(300)

            # restart Connect mid-stream: changes made while it is down wait in the slot
            connect_script("stop", bootstrap)
            source.change(200)
            connect_script("start", bootstrap)
            source.change(200)

            expected = source.rows()
            wait_for(
                "silver to equal the source table",
                lambda: silver_rows(lh) == expected,
                240,
                log,
            )
            consumer.send_signal(signal.SIGTERM)
            assert consumer.wait(60) == 0, log.read_text()[-3000:]
            consumer = None

            got = silver_rows(lh)
            assert got == expected and len(got) > 100
            assert any(row[-1] is not None for row in got.values()), "no note reached silver"
            table = lh.table("silver.orders", "main")
            types = {f.name: str(f.field_type) for f in table.schema().fields}
            assert (types["amount"], types["created"], types["updated_at"]) == (
                "decimal(12, 2)",
                "date",
                "timestamp",
            )

            # the change log: every Kafka record exactly once, nothing rejected
            ends = end_offsets(bootstrap, topic)
            assert committed(lh, topic) == ends
            changes = lh.table("bronze.orders_changes", "main").scan().to_arrow()
            offsets = list(
                zip(
                    changes.column("partition").to_pylist(),
                    changes.column("offset").to_pylist(),
                    strict=True,
                )
            )
            assert len(offsets) == len(set(offsets))
            assert set(offsets) == {(p, o) for p, end in ends.items() for o in range(end)}
            assert set(changes.column("error").to_pylist()) == {None}
            ops = set(changes.column("op").to_pylist())
            assert {"r", "c", "u", "d", None} <= ops  # None: the tombstones after deletes
    finally:
        if consumer is not None and consumer.poll() is None:
            consumer.kill()
            consumer.wait(10)
        with contextlib.suppress(urllib.error.URLError):
            rest(f"{connect}/connectors/{name}", "DELETE")
        source.conn.close()
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.delete_topics([topic]).values():
            with contextlib.suppress(Exception):  # absent when the test failed early
                future.result(30)


def _epoch_micros(value: dt.datetime) -> int:
    return (value - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)


def test_without_schemas_silver_holds_the_values_as_debezium_sends_them(
    tmp_path: Path, bootstrap: str, source_url: str, connect: str, database: str
) -> None:
    """The JSON converter with schemas off: no types in the events, values as Debezium sends."""
    prefix = f"lhcdc{uuid.uuid4().hex[:6]}"
    topic = f"{prefix}.public.orders"
    name = f"lakehouse-test-{prefix}"
    source = Source(source_url.rsplit("/", 1)[0] + f"/{database}", seed=5)
    config = {
        **connector_config(source_url, database, prefix),
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "decimal.handling.mode": "string",
    }
    home = tmp_path / "home"
    lakehouse.connect(home, create=True).close()
    log = tmp_path / "consumer.log"
    consumer: subprocess.Popen[bytes] | None = None
    try:
        source.create()
        source.change(60)
        rest(f"{connect}/connectors/{name}/config", "PUT", config)
        wait_for("the snapshot in Kafka", lambda: sum(end_offsets(bootstrap, topic).values()), 120)
        consumer = start_cli(home, bootstrap, topic, log, batch_size=60)
        source.change(120)
        source.add_note_column()
        source.change(120)

        # what Debezium sends for these columns without a schema to decode them with
        expected = {
            key: (
                key,
                customer,
                None if amount is None else str(amount),
                qty,
                status,
                None if created is None else (created - dt.date(1970, 1, 1)).days,
                None if updated is None else _epoch_micros(updated),
                note,
            )
            for key, (_, customer, amount, qty, status, created, updated, note) in (
                source.rows().items()
            )
        }
        with lakehouse.connect(home) as lh:
            wait_for(
                "silver to equal the source table", lambda: silver_rows(lh) == expected, 180, log
            )
            types = {f.name: str(f.field_type) for f in lh.table("silver.orders").schema().fields}
            assert (types["amount"], types["created"], types["updated_at"]) == (
                "string",
                "long",
                "long",
            )
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(60) == 0, log.read_text()[-3000:]
        consumer = None
    finally:
        if consumer is not None and consumer.poll() is None:
            consumer.kill()
            consumer.wait(10)
        with contextlib.suppress(urllib.error.URLError):
            rest(f"{connect}/connectors/{name}", "DELETE")
        source.conn.close()
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.delete_topics([topic]).values():
            with contextlib.suppress(Exception):
                future.result(30)
