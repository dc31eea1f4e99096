"""Kafka CDC apply (`lakehouse ingest kafka`) with faults on the catalog or S3 mid-stream.

The lakehouse's catalog is PostgreSQL and its warehouse MinIO, each behind its own
Toxiproxy proxy; Kafka is the integration tier's broker (not proxied: the faults under
test are between the lakehouse and its storage). A Debezium change stream of a modelled
source table (inserts, updates, deletes with tombstones, a re-delivered suffix) is on a
3-partition topic. :func:`lakehouse.ingest.consume_cdc` commits its first batch cleanly; the
fault is armed right after it, so it hits the *next* batch:

* ``catalog: COMMIT reply lost`` — PostgreSQL commits the batch (bronze + silver, one
  catalog commit), its answer is lost: the outcome is unknown;
* ``catalog: reset as COMMIT leaves`` — the connection is reset as ``COMMIT`` is sent: the
  transaction is rolled back, and the consumer cannot tell that from the first;
* ``S3: connections reset`` — every S3 request of the batch (landing, data and metadata
  files) meets a TCP reset;
* ``S3: replies stall`` — S3 answers stop, each connection is closed after a second.

The consumer stops with an error. Once the network heals, a rerun of the consumer from the
offsets the tables recorded must leave: silver equal to the source table row for row (no
duplicate keys), the bronze change log holding every Kafka offset exactly once, the
offsets recorded in the tables equal to the topic's end offsets, and ``catalog check``
clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from pyiceberg.exceptions import CommitStateUnknownException

from lakehouse.catalog.sql_store import SqlStore
from lakehouse.client import Lakehouse, connect
from lakehouse.config import Settings
from lakehouse.ingest.kafka import BatchResult, consume_cdc, recorded_offsets
from tests.faults.arming import arm_before_commit
from tests.faults.cdc_stream import assert_applied_exactly_once, produce_stream
from tests.faults.conftest import host_port, through
from tests.faults.toxiproxy import Proxy
from tests.ingest.test_kafka_integration import (  # the broker's fixtures and the source model
    bootstrap,
    topic,
)

pytestmark = pytest.mark.integration

__all__ = ["bootstrap", "topic"]  # fixtures used by name


@dataclass
class Wired:
    lh: Lakehouse
    pg: Proxy
    s3: Proxy


@pytest.fixture
def wired(
    fresh_postgres_url: str,
    s3_settings: dict[str, str],
    s3_proxy: Proxy,
    prefix: str,
    proxy_to: Callable[[str], Proxy],
    tmp_path: Path,
) -> Iterator[Wired]:
    pg = proxy_to(host_port(fresh_postgres_url))
    settings = Settings(
        profile="cluster",
        home=tmp_path / "home",
        catalog={"uri": through(fresh_postgres_url, pg)},
        warehouse=f"s3://{{bucket}}/{prefix}",
        s3={**s3_settings, "endpoint": through(s3_settings["endpoint"], s3_proxy)},
    )
    with connect(settings=settings, create=True) as lh:
        yield Wired(lh, pg, s3_proxy)


FAULTS: dict[str, Callable[[Wired], object]] = {
    "catalog: COMMIT reply lost": lambda w: arm_before_commit(
        store_engine(w), lambda: w.pg.cut_after(0, stream="downstream"), writes_only=True
    ),
    "catalog: reset as COMMIT leaves": lambda w: arm_before_commit(
        store_engine(w), lambda: w.pg.reset_peer(stream="upstream"), writes_only=True
    ),
    "S3: connections reset": lambda w: w.s3.reset_peer(stream="downstream"),
    "S3: replies stall": lambda w: w.s3.stall(stream="downstream", close_after_ms=1000),
}

#: What the consumer raises: the outcome of a commit cut at ``COMMIT`` is unknown.
EXPECTED: dict[str, type[Exception]] = {
    "catalog: COMMIT reply lost": CommitStateUnknownException,
    "catalog: reset as COMMIT leaves": CommitStateUnknownException,
    "S3: connections reset": OSError,
    "S3: replies stall": OSError,
}


def store_engine(w: Wired) -> sa.Engine:
    assert isinstance(w.lh.store, SqlStore)
    return w.lh.store.engine


@pytest.mark.parametrize("fault", FAULTS)
def test_cdc_apply_with_a_fault_mid_stream_is_completed_exactly_once_by_a_rerun(
    wired: Wired, fault: str, bootstrap: str, topic: str
) -> None:
    lh = wired.lh
    source_table, ends, cdc = produce_stream(bootstrap, topic, seed=11)

    armed: list[object] = []

    def after_first_batch(done: BatchResult) -> None:
        if not armed:
            armed.append(FAULTS[fault](wired))

    with pytest.raises(Exception) as raised:
        consume_cdc(lh, cdc, idle_timeout=1.5, on_batch=after_first_batch)
    # the catalog's faults are an unknown outcome (never a plain failure); S3's are I/O errors
    assert isinstance(raised.value, EXPECTED[fault]), raised.value
    wired.pg.clear()
    wired.s3.clear()
    assert armed, "the first batch never committed: the fault was never armed"
    first = sum(recorded_offsets(lh.table("bronze.orders_changes")).get(topic, {}).values())
    assert 0 < first < len(source_table.events), (first, raised.value)  # stopped mid-stream

    rerun = consume_cdc(lh, cdc, idle_timeout=1.5)
    assert rerun.stopped == "idle"

    assert_applied_exactly_once(lh, source_table, topic, ends, lh.default_branch)
