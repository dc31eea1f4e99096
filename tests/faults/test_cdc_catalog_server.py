"""Kafka CDC apply with the catalog behind HTTP, and the commit of a batch made ambiguous.

The catalog is `lakehouse serve` (on PostgreSQL, a subprocess) or the real Nessie (shared
with the rest of the tier); Toxiproxy sits between it and the consumer
(:class:`~lakehouse.catalog.nessie_store.NessieStore`); the warehouse is local. The
consumer writes to a branch of the test's own (``consume_cdc(branch=…)``), emptied first.
A Debezium change stream of a modelled source table (inserts, updates, deletes with
tombstones, a re-delivered suffix) is on a 3-partition topic (the broker is not proxied).
The first batch commits cleanly; the fault is armed right after it, just before the
*next* batch's commit request (bronze change log + silver, one catalog commit) leaves:

* ``reply lost`` — the server commits the batch, the connection closes before any byte of
  the answer;
* ``reply timeout`` — the server commits, the answer never comes (the client's read
  timeout expires);
* ``request cut`` — the server gets half the request and commits nothing.

The consumer cannot tell these apart: each stops it with the *unknown* outcome
(``CommitStateUnknownException``), never a plain failure. What landed is exactly what the
server applied (the offsets the tables record moved past the batch, or did not). Once the
network heals, a rerun from the offsets the tables recorded must leave silver equal to the
source table row for row, the bronze change log holding every Kafka offset exactly once,
the recorded offsets at the topic's end, and ``catalog check`` clean on the branch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyiceberg.exceptions import CommitStateUnknownException

from lakehouse.client import Lakehouse
from lakehouse.ingest.kafka import BatchResult, consume_cdc, recorded_offsets
from tests.faults.arming import ArmedTransport, is_commit
from tests.faults.cdc_stream import assert_applied_exactly_once, produce_stream
from tests.faults.conftest import host_port, through
from tests.faults.services import empty_branch, remote_lakehouse
from tests.faults.toxiproxy import Proxy
from tests.ingest.test_kafka_integration import (  # the broker's fixtures and the source model
    bootstrap,
    topic,
)

pytestmark = pytest.mark.integration

__all__ = ["bootstrap", "topic"]  # fixtures used by name

#: The client's read timeout (the ``reply timeout`` fault waits for it once).
READ_TIMEOUT = 5.0

FAULTS: dict[str, Callable[[Proxy], object]] = {
    "reply lost": lambda p: p.cut_after(0, stream="downstream"),
    "reply timeout": lambda p: p.stall(stream="downstream"),
    "request cut": lambda p: p.cut_after(60, stream="upstream"),
}
#: Whether the server received the whole commit request (and so applied the batch).
APPLIED = {"reply lost": True, "reply timeout": True, "request cut": False}


@dataclass
class Served:
    """A lakehouse whose catalog traffic goes through ``proxy``; CDC writes to ``branch``."""

    lh: Lakehouse
    proxy: Proxy
    transport: ArmedTransport
    branch: str


@pytest.fixture
def served(catalog_api: str, proxy_to: Callable[[str], Proxy], tmp_path: Path) -> Iterator[Served]:
    proxy = proxy_to(host_port(catalog_api))
    transport = ArmedTransport()
    lh = remote_lakehouse(
        through(catalog_api, proxy),
        tmp_path / "warehouse",
        transport=transport,
        timeout=READ_TIMEOUT,
    )
    branch = empty_branch(lh)
    try:
        yield Served(lh, proxy, transport, branch)
    finally:
        proxy.clear()
        lh.delete_branch(branch)
        lh.close()


def offsets_on(lh: Lakehouse, branch: str, table: str) -> dict[str, dict[int, int]]:
    return recorded_offsets(lh.table(table, branch))


@pytest.mark.parametrize("fault", FAULTS)
def test_cdc_apply_whose_commit_outcome_is_lost_is_completed_exactly_once_by_a_rerun(
    served: Served, fault: str, bootstrap: str, topic: str
) -> None:
    lh, proxy, transport, branch = served.lh, served.proxy, served.transport, served.branch
    source_table, ends, cdc = produce_stream(bootstrap, topic, seed=23)

    first: list[BatchResult] = []

    def after_first_batch(done: BatchResult) -> None:
        if not first:
            first.append(done)
            transport.arm(is_commit, lambda: FAULTS[fault](proxy))

    with pytest.raises(CommitStateUnknownException, match="outcome of the commit is unknown"):
        consume_cdc(lh, cdc, branch=branch, idle_timeout=1.5, on_batch=after_first_batch)
    assert first, "the first batch never committed: the fault was never armed"
    assert transport.fired, "the fault was never armed: the test proved nothing"
    proxy.clear()

    # what landed is exactly what the server applied: the batch once, or not at all
    after_fault = offsets_on(lh, branch, "bronze.orders_changes")
    assert offsets_on(lh, branch, "silver.orders") == after_fault  # one commit for both
    consumed_first = sum(first[0].offsets[topic].values())
    consumed = sum(after_fault[topic].values())
    if APPLIED[fault]:
        assert consumed_first < consumed < len(source_table.events)
    else:
        assert after_fault == first[0].offsets

    rerun = consume_cdc(lh, cdc, branch=branch, idle_timeout=1.5)
    assert rerun.stopped == "idle"
    assert rerun.branch == branch
    assert rerun.start_offsets == after_fault  # resumed from what the tables recorded

    assert_applied_exactly_once(lh, source_table, topic, ends, branch)
