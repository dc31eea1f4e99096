"""A pipeline run whose publish (the merge of its run branch into main) loses its reply.

The catalog is `lakehouse serve` (on PostgreSQL, a subprocess) or the real Nessie (shared
with the rest of the tier); on both, the run publishes into a branch of the test's own,
emptied first (``run --ref``: audited on a child branch, merged when clean); Toxiproxy
sits between it and the runner. The pipeline ingests a folder into ``bronze.orders``,
builds an incremental ``silver.orders`` and a ``gold.totals`` table, audits, and
publishes. While the run is in flight the target moves on (another source is ingested into
``bronze.orders``), so the publish is a *content* merge, as in production. A fault is
armed just before the merge request that commits leaves the runner:

* ``reply lost, network back`` — the server merges, the connection closes before any byte
  of the answer, the next request goes through: the runner finds its merge commit on
  the target (by run id) and the run succeeds;
* ``reply lost, network still down`` — the same, but the runner cannot look: it raises the
  unknown outcome, saves the run's report (status ``error``) and keeps the run branch;
* ``request cut, network back`` — the server gets half the request and merges nothing: the
  runner finds no merge commit and reports the unknown outcome the same way.

Then a rerun of the pipeline must leave the target with every row once: the first run's rows
merged once (never a second merge of it) or published by the rerun, the concurrent
ingestion kept, and ``catalog check`` clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lakehouse.client import Lakehouse
from lakehouse.errors import CommitStateUnknownError
from lakehouse.ingest import FolderSource, ingest
from lakehouse.ops import check
from lakehouse.pipelines import run_pipeline
from lakehouse.pipelines.runner import RUN_ID, RunEvent, run_branch
from lakehouse.storage.records import Records
from tests.faults.arming import ArmedTransport, is_merge
from tests.faults.conftest import host_port, through
from tests.faults.services import empty_branch, remote_lakehouse
from tests.faults.toxiproxy import Proxy
from tests.pipelines.conftest import write_pipeline

pytestmark = pytest.mark.integration


def reply_lost(proxy: Proxy) -> object:
    return proxy.cut_after(0, stream="downstream")


def request_cut(proxy: Proxy) -> object:
    return proxy.cut_after(60, stream="upstream")


@dataclass(frozen=True)
class Fault:
    inject: Callable[[Proxy], object]
    #: The server received the whole merge request (and so merged).
    applied: bool
    #: The network works again right after the merge request (else: until the test heals it).
    heals: bool


FAULTS = {
    "reply lost, network back": Fault(reply_lost, applied=True, heals=True),
    "reply lost, network still down": Fault(reply_lost, applied=True, heals=False),
    "request cut, network back": Fault(request_cut, applied=False, heals=True),
}

PIPELINE = """
name: shop
sources:
  - name: shop
    type: folder
    path: ${SHOP_DATA}
    format: csv
    tables: [{table: orders, pattern: "orders*.csv"}]
models:
  silver.orders:
    materialized: incremental
    unique_key: [id]
checks:
  - {model: silver.orders, type: unique, columns: [id]}
"""
MODELS = {
    "silver/orders.sql": "SELECT id, amount FROM bronze.orders",
    "gold/totals.sql": "SELECT count(*) AS n, sum(amount) AS amount FROM silver.orders",
}


@dataclass
class Served:
    """A lakehouse whose catalog traffic goes through ``proxy``; runs publish into ``target``."""

    lh: Lakehouse
    proxy: Proxy
    transport: ArmedTransport
    target: str


@pytest.fixture
def served(catalog_api: str, proxy_to: Callable[[str], Proxy], tmp_path: Path) -> Iterator[Served]:
    proxy = proxy_to(host_port(catalog_api))
    transport = ArmedTransport()
    lh = remote_lakehouse(through(catalog_api, proxy), tmp_path / "warehouse", transport=transport)
    target = empty_branch(lh)
    try:
        yield Served(lh, proxy, transport, target)
    finally:
        proxy.clear()
        for ref in lh.store.list_references():  # the target and the run branches it kept
            if ref.name == target or ref.name.startswith(run_branch("shop", target)):
                lh.delete_branch(ref.name)
        lh.close()


def ids(lh: Lakehouse, table: str, branch: str) -> list[int]:
    return sorted(lh.table(table, branch).scan().to_arrow().column("id").to_pylist())


@pytest.mark.parametrize("fault", FAULTS)
def test_a_publish_whose_merge_reply_is_lost_is_resolved_by_a_rerun_without_a_double_merge(
    served: Served,
    fault: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lh, proxy, transport, target = served.lh, served.proxy, served.transport, served.target
    chosen = FAULTS[fault]
    data = tmp_path / "landing"
    data.mkdir()
    (data / "orders1.csv").write_text("id,amount\n1,10\n2,20\n")
    monkeypatch.setenv("SHOP_DATA", str(data))
    folder = write_pipeline(tmp_path, "shop", PIPELINE, MODELS)
    # the tables exist on the target
    assert run_pipeline(lh, folder, ref=target, run_id=f"{target}-r1").ok
    (data / "orders2.csv").write_text("id,amount\n3,30\n4,40\n")
    other = tmp_path / "pos"
    other.mkdir()
    (other / "till.csv").write_text("id,amount\n100,1000\n")

    def target_moves_on(event: RunEvent) -> None:
        if event.step == "publish" and event.phase == "start":
            # another source is ingested into a table the run also changed: a content merge
            ingest(lh, FolderSource(name="pos", path=str(other), table="orders"), branch=target)
            transport.arm(
                is_merge,
                lambda: chosen.inject(proxy),
                then=proxy.clear if chosen.heals else None,
            )

    records = Records(lh.warehouse, lh.settings.fileio_properties())
    if chosen.applied and chosen.heals:
        # the runner looks for its merge commit on the target, finds it: it is published
        published = run_pipeline(
            lh, folder, ref=target, run_id=f"{target}-r2", listener=target_moves_on
        )
        assert published.ok and published.merged and published.branch_deleted
        assert published.merge_hash == lh.log(target, limit=1)[0].hash
    else:
        with pytest.raises(CommitStateUnknownError, match="may or may not have been applied"):
            run_pipeline(lh, folder, ref=target, run_id=f"{target}-r2", listener=target_moves_on)
        proxy.clear()
        # the run's report is kept and says what is known; its branch is kept
        report = records.read("pipeline-run", f"{target}-r2")
        assert report is not None and report["status"] == "error"
        assert "run the pipeline again" in report["error"]
        assert run_branch("shop", f"{target}-r2") in {r.name for r in lh.store.list_references()}
    assert transport.fired, "the fault was never armed: the test proved nothing"
    proxy.clear()

    def merges_of(run_id: str) -> int:
        log = lh.log(target, limit=None)
        return sum(1 for e in log if e.meta.properties.get(RUN_ID) == run_id)

    assert merges_of(f"{target}-r2") == (1 if chosen.applied else 0)
    assert ids(lh, "bronze.orders", target) == (
        [1, 2, 3, 4, 100] if chosen.applied else [1, 2, 100]
    )

    rerun = run_pipeline(lh, folder, ref=target, run_id=f"{target}-r3")
    assert rerun.ok, rerun.error
    assert merges_of(f"{target}-r2") == (1 if chosen.applied else 0)  # never merged twice
    assert merges_of(f"{target}-r3") == 1
    assert ids(lh, "bronze.orders", target) == [1, 2, 3, 4, 100]  # each file once, the append kept
    assert ids(lh, "silver.orders", target) == [1, 2, 3, 4, 100]
    (totals,) = lh.table("gold.totals", target).scan().to_arrow().to_pylist()
    assert (totals["n"], totals["amount"]) == (5, 1100)
    checked = check(lh, [target])
    assert checked.ok, [p for t in checked.tables for p in t.problems]
    assert run_branch("shop", f"{target}-r3") not in {r.name for r in lh.store.list_references()}
