"""Write-audit-publish runs: merge on success, main untouched on failure, --ref mode."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.client import Lakehouse, connect
from lakehouse.errors import CommitStateUnknownError, ReadOnlyReferenceError
from lakehouse.pipelines import ModelError, PipelineConfigError, RunEvent, run_pipeline
from lakehouse.pipelines.runner import RUN_ID, RUN_PIPELINE, RUN_RECORD, RUN_STATUS, new_run_id
from lakehouse.storage.records import Records
from lakehouse.tables.upsert import delete_rows
from tests.pipelines.conftest import bronze, rows, write_pipeline

YAML = """
name: shop
checks:
  - {model: silver.orders, type: not_null, columns: [id]}
  - {model: silver.orders, type: unique, columns: [id]}
  - {model: gold.by_status, type: row_count, min: 1}
  - {model: silver.orders, type: row_count, min: 1000, severity: warn}
"""
MODELS = {
    "silver/orders.sql": "SELECT id, status, amount FROM bronze.orders",
    "gold/by_status.sql": """
        SELECT status, count(*) AS orders, sum(amount) AS amount
        FROM silver.orders GROUP BY status
    """,
}


def orders(ids: list[int | None], status: str = "new") -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "status": pa.array([status] * len(ids), pa.string()),
            "amount": pa.array([10.0] * len(ids), pa.float64()),
        }
    )


@pytest.fixture
def shop(tmp_path: Path, lh: Lakehouse) -> Path:
    """The pipeline folder; bronze.orders on main with three good rows."""
    bronze(lh, "bronze.orders", orders([1, 2, 3]))
    return write_pipeline(tmp_path / "pipelines", "shop", YAML, MODELS)


def test_a_clean_run_merges_into_main_and_records_itself(lh: Lakehouse, shop: Path) -> None:
    events: list[RunEvent] = []
    result = run_pipeline(lh, shop, run_id="r1", listener=events.append)

    assert result.ok and result.status == "success" and result.merged
    assert result.branch == "run/shop/r1" and result.target == "main"
    assert [m.model for m in result.models] == ["silver.orders", "gold.by_status"]
    assert [c.status for c in result.checks] == ["pass", "pass", "pass", "fail"]
    assert [c.name for c in result.warnings] == ["row_count(silver.orders: 1000..)"]
    assert rows(lh, "SELECT status, orders FROM gold.by_status") == [{"status": "new", "orders": 3}]
    # the merge commit on main carries the run's outcome
    head = lh.log("main", 1)[0].meta
    assert head.hash == result.merge_hash
    assert head.properties[RUN_ID] == "r1"
    assert head.properties[RUN_PIPELINE] == "shop"
    assert head.properties[RUN_STATUS] == "success"
    assert len(head.parent_hashes) == 2
    # the run branch is gone; its final commit is the merge's second parent
    assert "run/shop/r1" not in [b.name for b in lh.branches()]
    assert lh.store.commit_meta(head.parent_hashes[1]).properties[RUN_STATUS] == "success"
    # progress: every step started and ended
    ended = [(e.step, e.name, e.status) for e in events if e.phase == "end"]
    assert ("model", "silver.orders", "ok") in ended
    assert ("check", "row_count(silver.orders: 1000..)", "warn") in ended
    assert ended[-1] == ("publish", "run/shop/r1 -> main", "ok")


def test_keep_branch_keeps_the_run_branch(lh: Lakehouse, shop: Path) -> None:
    result = run_pipeline(lh, shop, run_id="r1", keep_branch=True)
    assert result.merged and not result.branch_deleted
    head = lh.log("run/shop/r1", 1)[0].meta
    assert head.properties[RUN_STATUS] == "success"


def test_a_failed_check_leaves_main_untouched_and_keeps_the_branch(
    lh: Lakehouse, shop: Path
) -> None:
    bronze(lh, "bronze.orders", orders([3, None]))
    main_before = lh.resolve("main").hash

    result = run_pipeline(lh, shop, run_id="bad")

    assert result.status == "failed" and not result.ok and not result.merged
    assert lh.resolve("main").hash == main_before
    assert not lh.catalog("main").table_exists("silver.orders")
    failed = {c.name: c for c in result.failed_checks}
    assert set(failed) == {"not_null(silver.orders: id)", "unique(silver.orders: id)"}
    nulls = failed["not_null(silver.orders: id)"]
    assert nulls.failing_rows == 1 and nulls.model == "silver.orders"
    assert nulls.sample == [{"id": None, "status": "new", "amount": 10.0}]
    assert failed["unique(silver.orders: id)"].sample == [{"id": 3, "duplicates": 2}]
    # the branch holds what was built, and its last commit records the failure
    assert "run/shop/bad" in [b.name for b in lh.branches()]
    assert rows(lh, "SELECT count(*) AS n FROM silver.orders", "run/shop/bad") == [{"n": 5}]
    meta = lh.log("run/shop/bad", 1)[0].meta
    assert meta.hash == result.head_hash
    assert meta.properties[RUN_STATUS] == "failed"
    assert "not_null(silver.orders: id)" in meta.properties["lakehouse.run.failed-checks"]
    assert meta.message.startswith("Run bad of pipeline shop: failed")


def test_a_run_on_a_feature_branch_audits_on_a_child_and_merges_into_it(
    lh: Lakehouse, shop: Path
) -> None:
    lh.create_branch("feat")
    main_before = lh.resolve("main").hash
    result = run_pipeline(lh, shop, ref="feat", run_id="d1")
    assert result.ok and result.merged
    assert result.branch == "run/shop/d1" and result.target == "feat"
    assert result.branch_deleted and "run/shop/d1" not in [b.name for b in lh.branches()]
    assert lh.resolve("main").hash == main_before
    assert rows(lh, "SELECT count(*) AS n FROM silver.orders", "feat") == [{"n": 3}]
    merge = lh.log("feat", 1)[0].meta
    assert merge.hash == result.merge_hash and len(merge.parent_hashes) == 2
    assert merge.properties[RUN_STATUS] == "success" and merge.properties[RUN_ID] == "d1"


def test_a_failed_run_on_a_feature_branch_leaves_it_unchanged_and_keeps_the_child(
    lh: Lakehouse, shop: Path
) -> None:
    lh.create_branch("feat")
    bronze(lh, "bronze.orders", orders([3, None]), branch="feat")
    feat_before = lh.resolve("feat").hash
    result = run_pipeline(lh, shop, ref="feat", run_id="bad")
    assert result.status == "failed" and not result.merged and result.target == "feat"
    assert lh.resolve("feat").hash == feat_before
    assert not lh.catalog("feat").table_exists("silver.orders")
    assert lh.log("run/shop/bad", 1)[0].meta.properties[RUN_STATUS] == "failed"
    assert lh.catalog("run/shop/bad").table_exists("silver.orders")  # the child holds the build


def test_nessie_ref_selects_the_branch_to_start_from_and_merge_into(
    tmp_path: Path, shop: Path, lh: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    lh.create_branch("etl")
    monkeypatch.setenv("NESSIE_REF", "etl")
    with connect(tmp_path / "home") as env_lh:
        result = run_pipeline(env_lh, shop)
    assert result.target == "etl" and result.merged
    assert lh.catalog("etl").table_exists("silver.orders")
    assert not lh.catalog("main").table_exists("silver.orders")


def test_an_in_place_step_writes_to_the_ref_and_never_merges(lh: Lakehouse, shop: Path) -> None:
    lh.create_branch("run/shop/dag1")
    main_before = lh.resolve("main").hash
    result = run_pipeline(lh, shop, ref="run/shop/dag1", run_id="dag1", in_place=True)
    assert result.ok and not result.merged and result.target is None
    assert result.branch == "run/shop/dag1" and lh.resolve("main").hash == main_before
    assert lh.catalog("run/shop/dag1").table_exists("silver.orders")
    assert [b.name for b in lh.branches()] == ["main", "run/shop/dag1"]


def test_an_in_place_run_needs_a_ref(lh: Lakehouse, shop: Path) -> None:
    with pytest.raises(PipelineConfigError, match="needs the branch"):
        run_pipeline(lh, shop, in_place=True)


def test_a_tag_cannot_be_the_ref_of_a_run(lh: Lakehouse, shop: Path) -> None:
    lh.create_tag("v1")
    with pytest.raises(ReadOnlyReferenceError, match="cannot write to tag 'v1'"):
        run_pipeline(lh, shop, ref="v1", run_id="t")
    assert [b.name for b in lh.branches()] == ["main"]


def test_a_second_run_without_changes_still_records_itself_on_main(
    lh: Lakehouse, shop: Path
) -> None:
    run_pipeline(lh, shop, run_id="r1")
    second = run_pipeline(lh, shop, run_id="r2")
    assert second.ok and second.merged
    head = lh.log("main", 1)[0].meta
    assert head.properties[RUN_ID] == "r2" and head.hash == second.merge_hash


def test_a_model_sql_error_names_the_model_and_keeps_the_branch(
    lh: Lakehouse, tmp_path: Path
) -> None:
    bronze(lh, "bronze.orders", orders([1]))
    folder = write_pipeline(
        tmp_path,
        "broken",
        "name: broken\n",
        {
            "silver/orders.sql": "SELECT id FROM bronze.orders",
            "gold/totals.sql": "SELECT sum(nope) AS total FROM silver.orders",
        },
    )
    main_before = lh.resolve("main").hash
    with pytest.raises(ModelError) as info:
        run_pipeline(lh, folder, run_id="x")
    error = info.value
    message = str(error)
    assert message.startswith("model gold.totals (")
    assert "gold/totals.sql" in message
    assert 'Referenced column "nope" not found' in message
    assert "main unchanged, run branch 'run/broken/x' kept" in message
    assert "\n" not in message
    assert error.run_id == "x" and error.branch == "run/broken/x"
    assert error.__cause__ is not None  # the original error, for --debug
    assert lh.resolve("main").hash == main_before
    meta = lh.log("run/broken/x", 1)[0].meta
    assert meta.properties[RUN_STATUS] == "error"
    assert "gold.totals" in meta.properties["lakehouse.run.error"]


def test_a_model_reading_a_missing_table_names_the_model_file(
    lh: Lakehouse, tmp_path: Path
) -> None:
    folder = write_pipeline(
        tmp_path, "p", "name: p\n", {"silver/orders.sql": "SELECT * FROM bronze.nowhere"}
    )
    with pytest.raises(ModelError) as info:
        run_pipeline(lh, folder, run_id="m")
    assert str(info.value).startswith("model silver.orders (")
    assert "silver/orders.sql): table 'bronze.nowhere' does not exist on 'run/p/m'" in str(
        info.value
    )


def test_a_run_whose_publish_races_an_append_on_main_still_publishes(
    lh: Lakehouse, shop: Path
) -> None:
    """The run rewrote silver.orders; main appended a file the run never saw: they commute."""
    run_pipeline(lh, shop, run_id="r1")
    bronze(lh, "bronze.orders", orders([4]))

    def meddle(event: RunEvent) -> None:
        if event.step == "publish" and event.phase == "start":
            lh.catalog("main").load_table("silver.orders").append(
                pa.table({"id": pa.array([99], pa.int64()), "status": ["x"], "amount": [1.0]})
            )

    result = run_pipeline(lh, shop, run_id="r2", listener=meddle)
    assert result.status == "success" and result.merged, result.error
    got = sorted(r["id"] for r in rows(lh, "SELECT id FROM silver.orders"))
    assert got == [1, 2, 3, 4, 99]


def test_a_merge_conflict_fails_the_publish_and_keeps_main(lh: Lakehouse, shop: Path) -> None:
    run_pipeline(lh, shop, run_id="r1")
    bronze(lh, "bronze.orders", orders([4]))

    def meddle(event: RunEvent) -> None:
        if event.step == "publish" and event.phase == "start":
            # a row delete on main, from the data file the run rewrote
            table = lh.catalog("main").load_table("silver.orders")
            delete_rows(table, pa.table({"id": pa.array([1], pa.int64())}), ["id"])

    result = run_pipeline(lh, shop, run_id="r2", listener=meddle)
    assert result.status == "error" and not result.merged
    assert result.error is not None and "merge into main failed" in result.error
    assert "silver.orders" in result.error
    assert lh.log("run/shop/r2", 1)[0].meta.properties[RUN_STATUS] == "error"


def test_sources_are_ingested_on_the_run_branch(
    lh: Lakehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "landing"
    data.mkdir()
    (data / "orders1.csv").write_text("id,status,amount\n1,new,2.5\n2,paid,4\n", encoding="utf-8")
    monkeypatch.setenv("SHOP_DATA", str(data))
    folder = write_pipeline(
        tmp_path,
        "feed",
        """
        name: feed
        sources:
          - name: shop
            type: folder
            path: ${SHOP_DATA}
            format: csv
            tables: [{table: orders, pattern: "orders*.csv"}]
        checks:
          - {model: bronze.orders, type: freshness, column: _ingested_at, max_age: 1h}
          - {model: silver.orders, type: row_count, min: 2, max: 2}
        """,
        {"silver/orders.sql": "SELECT id, status, amount FROM bronze.orders"},
    )
    result = run_pipeline(lh, folder, run_id="f1")
    assert result.ok, [c.to_json() for c in result.checks]
    assert [(i.table, i.rows) for i in result.ingested] == [("bronze.orders", 2)]
    assert rows(lh, "SELECT id FROM silver.orders ORDER BY id") == [{"id": 1}, {"id": 2}]


def test_run_ids_are_sortable_and_unique() -> None:
    first, second = new_run_id(), new_run_id()
    assert first != second and first[:8].isdigit() and first[8] == "T"


def test_lakehouse_run_delegates(lh: Lakehouse, shop: Path) -> None:
    result = lh.run("shop", pipelines_dir=shop.parent, run_id="via-client")
    assert result.ok and result.run_id == "via-client"


# -- main moved on while the run was in flight ----------------------------------------------

FEED = """
name: feed
sources:
  - name: shop
    type: folder
    path: ${SHOP_DATA}
    format: csv
    tables: [{table: orders, pattern: "orders*.csv"}]
checks:
  - {model: silver.orders, type: row_count, min: 1}
"""


@pytest.fixture
def feed(lh: Lakehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pipeline ingesting ``orders*.csv`` of ``SHOP_DATA`` into bronze.orders; one run done."""
    data = tmp_path / "landing"
    data.mkdir()
    (data / "orders1.csv").write_text("id,status,amount\n1,new,2.5\n2,paid,4\n", encoding="utf-8")
    monkeypatch.setenv("SHOP_DATA", str(data))
    folder = write_pipeline(
        tmp_path,
        "feed",
        FEED,
        {"silver/orders.sql": "SELECT id, status, amount FROM bronze.orders"},
    )
    assert run_pipeline(lh, folder, run_id="f1").ok
    (data / "orders2.csv").write_text("id,status,amount\n3,new,1\n", encoding="utf-8")
    return folder


def test_a_run_publishes_when_main_appended_to_a_table_it_appended_to(
    lh: Lakehouse, feed: Path
) -> None:
    def another_writer(event: RunEvent) -> None:
        if event.step == "publish" and event.phase == "start":
            table = lh.catalog("main").load_table("bronze.orders")
            table.append(table.scan(row_filter="id = 1").to_arrow())

    events: list[RunEvent] = []
    result = run_pipeline(
        lh, feed, run_id="f2", listener=lambda e: (events.append(e), another_writer(e))
    )

    assert result.ok and result.merged, result.error
    assert list(result.content_merges) == ["bronze.orders"]
    assert result.content_merges["bronze.orders"].startswith("merged by content (")
    assert result.to_json()["content_merges"] == result.content_merges
    # main holds both: the other writer's copy of order 1 and the run's order 3
    assert rows(lh, "SELECT id FROM bronze.orders ORDER BY id") == [
        {"id": 1},
        {"id": 1},
        {"id": 2},
        {"id": 3},
    ]
    publish = [e for e in events if e.step == "publish" and e.phase == "end"]
    assert publish[0].detail.endswith("1 table(s) merged by content")


def test_a_run_main_did_not_race_reports_no_content_merge(lh: Lakehouse, feed: Path) -> None:
    result = run_pipeline(lh, feed, run_id="f2")
    assert result.ok and result.content_merges == {}


def test_a_run_publishes_when_main_ingested_into_the_same_bronze_table(
    lh: Lakehouse, feed: Path, tmp_path: Path
) -> None:
    from lakehouse.ingest import FolderSource, ingest

    late = tmp_path / "late"
    late.mkdir()
    (late / "orders9.csv").write_text("id,status,amount\n9,new,1\n", encoding="utf-8")

    def ingest_on_main(event: RunEvent) -> None:
        if event.step == "publish" and event.phase == "start":
            source = FolderSource(name="shop", path=str(late), format="csv", table="bronze.orders")
            ingest(lh, source, branch="main")

    result = run_pipeline(lh, feed, run_id="f2", listener=ingest_on_main)
    assert result.ok, result.error
    assert rows(lh, "SELECT id FROM bronze.orders ORDER BY id") == [
        {"id": 1},
        {"id": 2},
        {"id": 3},
        {"id": 9},
    ]


def test_a_run_that_ingested_the_file_main_ingested_meanwhile_does_not_publish(
    lh: Lakehouse, feed: Path, tmp_path: Path
) -> None:
    from lakehouse.ingest import FolderSource, ingest

    def ingest_the_same_folder_on_main(event: RunEvent) -> None:
        if event.step == "publish" and event.phase == "start":
            landing = str(tmp_path / "landing")
            source = FolderSource(name="shop", path=landing, format="csv", table="bronze.orders")
            ingest(lh, source, branch="main")

    before = rows(lh, "SELECT id FROM bronze.orders ORDER BY id")
    result = run_pipeline(lh, feed, run_id="f2", listener=ingest_the_same_folder_on_main)
    assert not result.ok and not result.merged
    assert "both sides ingested into the table: both sides loaded the same file" in str(
        result.error
    )
    # main holds the file once: its own ingestion of it, not the run's as well
    assert len(rows(lh, "SELECT id FROM bronze.orders")) == len(before) + 1


def test_a_batch_the_run_ingested_stays_loaded_after_a_content_merge(
    lh: Lakehouse, feed: Path, tmp_path: Path
) -> None:
    from lakehouse.ingest import FolderSource, ingest

    def another_writer(event: RunEvent) -> None:
        if event.step == "publish" and event.phase == "start":
            table = lh.catalog("main").load_table("bronze.orders")
            table.append(table.scan(row_filter="id = 1").to_arrow())

    result = run_pipeline(lh, feed, run_id="f2", listener=another_writer)
    assert result.content_merges
    # the run's orders2.csv is on main: ingesting the folder again must load nothing
    source = FolderSource(
        name="shop", path=str(tmp_path / "landing"), format="csv", table="bronze.orders"
    )
    assert [r.rows_loaded for r in ingest(lh, source, branch="main")] == [0]


# -- the publish's reply is lost ---------------------------------------------------------------


def _lose_merge_reply(lh: Lakehouse, monkeypatch: pytest.MonkeyPatch, *, applied: bool) -> None:
    """The next merge raises "outcome unknown", after merging (``applied``) or without."""
    real = lh.merge

    def merge(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(lh, "merge", real)
        if applied:
            real(*args, **kwargs)  # type: ignore[arg-type]
        raise CommitStateUnknownError("merge into 'main': no answer came; it may or may not …")

    monkeypatch.setattr(lh, "merge", merge)


def test_a_publish_whose_reply_was_lost_finds_its_merge_on_main(
    lh: Lakehouse, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lose_merge_reply(lh, monkeypatch, applied=True)
    result = run_pipeline(lh, shop, run_id="r1")
    assert result.ok and result.merged and result.branch_deleted
    assert result.merge_hash == lh.log("main", 1)[0].hash
    assert [e.meta.properties.get(RUN_ID) for e in lh.log("main", 2)] == ["r1", None]


def test_a_publish_whose_outcome_stays_unknown_keeps_its_report_and_a_rerun_publishes_once(
    lh: Lakehouse, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lose_merge_reply(lh, monkeypatch, applied=False)
    with pytest.raises(CommitStateUnknownError):
        run_pipeline(lh, shop, run_id="r1")
    report = Records(lh.warehouse).read(RUN_RECORD, "r1")
    assert report is not None and report["status"] == "error"
    assert "may or may not have been applied" in report["error"]
    assert "run/shop/r1" in [b.name for b in lh.branches()]  # kept for inspection

    assert run_pipeline(lh, shop, run_id="r2").ok
    runs = [e.meta.properties.get(RUN_ID) for e in lh.log("main", None)]
    assert runs.count("r2") == 1 and "r1" not in runs
    assert rows(lh, "SELECT count(*) AS n FROM silver.orders") == [{"n": 3}]
