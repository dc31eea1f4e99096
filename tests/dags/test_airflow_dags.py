"""The Airflow DAGs of ``dags/``, run for real: Airflow's DagBag, then ``dag.test()`` of each DAG
against an embedded lakehouse in a temporary LAKEHOUSE_HOME.

Integration tier: runs with the Python of the Airflow venv (``make test-airflow``); see
``conftest.py``. Tasks run in this process (``dag.test()`` without an executor), so the
lakehouse settings they read are this test's environment.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import lakehouse
from lakehouse.client import Lakehouse

pytestmark = [
    pytest.mark.integration,
    # Airflow's dependencies, not ours: pathspec (for dags/.airflowignore) and starlette's
    # test client (Airflow's in-process execution API).
    pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
]

DAG_IDS = {"ingestion", "maintenance_compaction_snapshot_policies", "medallion_pipeline"}


@pytest.fixture
def home(_isolate_lakehouse_config: Path) -> Iterator[Path]:
    """A new embedded lakehouse at LAKEHOUSE_HOME (what the DAGs' tasks open)."""
    with lakehouse.connect(create=True):
        pass
    yield _isolate_lakehouse_config


@pytest.fixture
def lh(home: Path) -> Iterator[Lakehouse]:
    with lakehouse.connect() as opened:
        yield opened


def run_dag(dagbag: Any, dag_id: str, **conf: Any) -> tuple[Any, dict[str, str]]:
    """``dag.test()`` of ``dag_id`` with run conf ``conf``; the run and its task states."""
    dag = dagbag.get_dag(dag_id)
    # No retries here: a failing task would otherwise wait out its retry delay (minutes).
    retries = {task.task_id: task.retries for task in dag.tasks}
    for task in dag.tasks:
        task.retries = 0
    started = time.perf_counter()
    try:
        run = dag.test(run_conf=conf or None)
    finally:
        for task in dag.tasks:
            task.retries = retries[task.task_id]
    print(f"dag.test({dag_id}) took {time.perf_counter() - started:.1f}s")
    states = {}
    for ti in run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        states[key] = str(ti.state.value if hasattr(ti.state, "value") else ti.state)
    return run, states


def rows(lh: Lakehouse, table: str, ref: str = "main") -> int:
    return int(lh.table(table, ref).scan().to_arrow().num_rows)


def table_names(lh: Lakehouse, ref: str = "main") -> set[str]:
    return {str(e.key) for e in lh.tables(ref)}


# -- the DagBag --------------------------------------------------------------------------------


def test_dagbag_imports_every_dag_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == DAG_IDS
    for dag_id in DAG_IDS:
        dag = dagbag.get_dag(dag_id)
        assert dag.catchup is False, dag_id
        assert dag.max_active_runs == 1, dag_id
        assert all(t.retries >= 1 for t in dag.tasks), dag_id
        assert "lakehouse" in dag.tags


def test_dag_structure(dagbag: Any) -> None:
    maintenance = dagbag.get_dag("maintenance_compaction_snapshot_policies")
    order = [
        "ensure_not_paused",
        "selected_branches",
        "compact",
        "expire_snapshots",
        "collect_garbage",
        "merge_approved_branches",
    ]
    for upstream, downstream in itertools.pairwise(order):
        assert upstream in maintenance.get_task(downstream).upstream_task_ids

    medallion = dagbag.get_dag("medallion_pipeline")
    assert set(medallion.task_group.children) == {
        "branch",
        "ingest",
        "silver",
        "gold",
        "audit",
        "publish",
    }
    layers = [
        "branch.create_run_branch",
        "ingest.load_bronze",
        "silver.build_silver",
        "gold.build_gold",
        "audit.run_checks",
        "publish.merge_run",
        "publish.delete_run_branch",
    ]
    for upstream, downstream in itertools.pairwise(layers):
        assert upstream in medallion.get_task(downstream).upstream_task_ids


# -- ingestion -----------------------------------------------------------------------------------


def test_ingestion_loads_bronze_once(
    dagbag: Any, home: Path, tiny_pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the Airflow Variable wins over the environment
    monkeypatch.setenv("LAKEHOUSE_HOME", str(home.parent / "not-this-one"))
    monkeypatch.setenv("AIRFLOW_VAR_LAKEHOUSE_HOME", str(home))
    conf = {"pipeline": "tiny", "pipelines_dir": str(tiny_pipeline.parent)}
    run, states = run_dag(dagbag, "ingestion", **conf)
    assert str(run.state) == "success", states
    assert states["ingest_source[0]"] == "success"

    with lakehouse.connect(home) as lh:
        assert table_names(lh) == {"bronze.orders"}
        assert rows(lh, "bronze.orders") == 3
        head = lh.resolve("main").hash

    run, _ = run_dag(dagbag, "ingestion", **conf)  # nothing new: nothing loaded twice
    assert str(run.state) == "success"
    with lakehouse.connect(home) as lh:
        assert rows(lh, "bronze.orders") == 3
        assert lh.resolve("main").hash == head
    assert not (home.parent / "not-this-one").exists()


@pytest.mark.parametrize(
    ("dag_id", "guard"),
    [
        ("ingestion", "ensure_not_paused"),
        ("medallion_pipeline", "branch.ensure_not_paused"),
        ("maintenance_compaction_snapshot_policies", "ensure_not_paused"),
    ],
)
def test_every_dag_skips_while_paused_for_disaster_recovery(
    dagbag: Any, lh: Lakehouse, tiny_pipeline: Path, dag_id: str, guard: str
) -> None:
    from lakehouse.ops.dr import pause

    pause(lh, "restore drill")
    heads = {r.name: r.hash for r in lh.references()}
    conf = {"pipeline": "tiny", "pipelines_dir": str(tiny_pipeline.parent)}
    run, states = run_dag(dagbag, dag_id, **({} if dag_id.startswith("maintenance") else conf))
    assert states[guard] == "skipped"
    assert set(states.values()) == {"skipped"}, states
    assert str(run.state) == "success"  # a skipped run is not an incident
    assert {r.name: r.hash for r in lh.references()} == heads
    assert table_names(lh) == set()


# -- medallion pipeline --------------------------------------------------------------------------


def test_medallion_publishes_tpch_to_main(
    dagbag: Any, lh: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakehouse import tpch

    monkeypatch.setenv("TPCH_DATA", str(tpch.generate(0.01).path))
    base = lh.resolve("main").hash
    run, states = run_dag(dagbag, "medallion_pipeline", pipeline="tpch")
    assert str(run.state) == "success", states
    assert set(states.values()) == {"success"}

    names = table_names(lh)
    for table in ("region", "nation", "customer", "orders", "lineitem"):
        assert f"bronze.{table}" in names
        assert f"silver.{table}" in names
    assert {"gold.q1_pricing_summary", "gold.revenue_by_nation_month"} <= names
    assert rows(lh, "silver.region") == 5
    assert rows(lh, "silver.nation") == 25
    assert rows(lh, "silver.orders") == 15000
    assert 1 <= rows(lh, "gold.q1_pricing_summary") <= 4

    # one merge commit on main, the run branch gone
    [merge] = lh.log("main", limit=1)
    assert merge.meta.message.startswith("Run ")
    assert "pipeline tpch: success (merged run/tpch/" in merge.meta.message
    assert lh.resolve("main").hash != base
    assert [b.name for b in lh.branches() if b.name.startswith("run/")] == []


def test_medallion_keeps_main_when_checks_fail(
    dagbag: Any, lh: Lakehouse, tiny_pipeline: Path
) -> None:
    (tiny_pipeline / "data" / "orders_2.csv").write_text("id,amount\n4,\n5,1.5\n", encoding="utf-8")
    base = lh.resolve("main").hash
    run, states = run_dag(
        dagbag, "medallion_pipeline", pipeline="tiny", pipelines_dir=str(tiny_pipeline.parent)
    )
    assert str(run.state) == "failed"
    assert states["gold.build_gold"] == "success"
    assert states["audit.run_checks"] == "failed"
    assert states["publish.merge_run"] == "upstream_failed"
    assert states["publish.delete_run_branch"] == "upstream_failed"

    assert lh.resolve("main").hash == base  # nothing published
    [kept] = [b.name for b in lh.branches() if b.name.startswith("run/tiny/")]
    assert rows(lh, "silver.orders", kept) == 5  # kept for inspection, with the bad row
    assert table_names(lh) == set()


def test_medallion_on_a_given_ref_does_not_merge(
    dagbag: Any, lh: Lakehouse, tiny_pipeline: Path
) -> None:
    lh.create_branch("dev")
    base = lh.resolve("main").hash
    run, states = run_dag(
        dagbag,
        "medallion_pipeline",
        pipeline="tiny",
        pipelines_dir=str(tiny_pipeline.parent),
        ref="dev",
    )
    assert str(run.state) == "success", states
    assert states["audit.run_checks"] == "success"
    assert states["publish.merge_run"] == "skipped"
    assert states["publish.delete_run_branch"] == "skipped"
    assert lh.resolve("main").hash == base
    assert {"bronze.orders", "silver.orders", "gold.revenue"} <= table_names(lh, "dev")
    assert [b.name for b in lh.branches()] == ["dev", "main"]
    revenue = lh.table("gold.revenue", "dev").scan().to_arrow().to_pylist()
    assert revenue == [{"orders": 3, "revenue": 60.75}]


# -- maintenance -------------------------------------------------------------------------------


def test_maintenance_compacts_and_merges_approved_branches(
    dagbag: Any, lh: Lakehouse, home: Path, nessie_client: Any
) -> None:
    catalog = lh.catalog("main")
    catalog.create_namespace("bronze")
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("amount", pa.float64())])
    table = catalog.create_table("bronze.orders", schema=schema)
    for i in range(6):  # six small files: more than the default min_small_files (5)
        table.append(pa.table({"id": [i], "amount": [float(i)]}, schema=schema))
    files_before = len(lh.table("bronze.orders").inspect.files())

    nessie_client.create_branch(lh, "feature/approved")
    lh.catalog("feature/approved").create_namespace("silver")
    lh.catalog("feature/approved").create_table("silver.extra", schema=schema)
    nessie_client.approve_branch(lh, "feature/approved")
    nessie_client.create_branch(lh, "feature/not-approved")

    run, states = run_dag(dagbag, "maintenance_compaction_snapshot_policies")
    assert str(run.state) == "success", states
    assert set(states.values()) == {"success"}

    assert rows(lh, "bronze.orders") == 6  # same rows, fewer files
    assert len(lh.table("bronze.orders").inspect.files()) < files_before
    assert "silver.extra" in table_names(lh)  # the approved branch was merged
    assert "feature/not-approved" in [b.name for b in lh.branches()]


def test_maintenance_dry_run_changes_nothing(dagbag: Any, lh: Lakehouse) -> None:
    catalog = lh.catalog("main")
    catalog.create_namespace("bronze")
    schema = pa.schema([pa.field("id", pa.int64())])
    table = catalog.create_table("bronze.events", schema=schema)
    for i in range(6):
        table.append(pa.table({"id": [i]}, schema=schema))
    head = lh.resolve("main").hash
    run, states = run_dag(
        dagbag, "maintenance_compaction_snapshot_policies", dry_run=True, branches=["main"]
    )
    assert str(run.state) == "success", states
    assert lh.resolve("main").hash == head
