"""Folder sources: landing, exactly-once loading, schema drift, quarantine, bad input."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.client import Lakehouse
from lakehouse.errors import LakehouseError, ReadOnlyReferenceError
from lakehouse.ingest import (
    BadInputError,
    FolderSource,
    FormatOptions,
    IngestError,
    SourceChangedError,
    SourceNotFoundError,
    TableMapping,
    ingest,
)
from lakehouse.ingest.bronze import LAST_BATCH_PROPERTY, SUMMARY_BATCH_ID, SUMMARY_FILES

from .conftest import manifests, raw_files, raw_root, rows

ORDERS = "id,customer,amount\n1,alice,10.5\n2,bob,20.0\n"


def folder(inbox: Path, **kwargs: object) -> FolderSource:
    """A CSV folder source feeding bronze.orders."""
    fields: dict[str, object] = {"name": "shop", "path": str(inbox), "table": "bronze.orders"}
    fields.update(kwargs)
    return FolderSource.model_validate(fields)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def head(lh: Lakehouse, branch: str = "main") -> str:
    return lh.resolve(branch).hash


# -- landing -------------------------------------------------------------------------------


def test_batch_is_landed_unchanged_under_source_date_and_batch_id(
    lh: Lakehouse, inbox: Path
) -> None:
    (inbox / "orders.csv").write_text(ORDERS)

    [result] = ingest(lh, folder(inbox))

    assert result.batch_id is not None
    day = dt.datetime.strptime(result.batch_id[:8], "%Y%m%d")
    prefix = f"shop/{day:%Y/%m/%d}/{result.batch_id}"
    assert raw_files(lh) == [f"{prefix}/_manifest.json", f"{prefix}/orders.csv"]
    landed = raw_root(lh) / prefix / "orders.csv"
    assert landed.read_bytes() == (inbox / "orders.csv").read_bytes()
    assert result.landed[0].uri == "file://" + landed.as_posix()


def test_landing_manifest_records_size_checksum_source_time_and_origin(
    lh: Lakehouse, inbox: Path
) -> None:
    (inbox / "orders.csv").write_text(ORDERS)
    before = dt.datetime.now(dt.UTC)

    [result] = ingest(lh, folder(inbox))

    [manifest] = manifests(lh)
    assert manifest["format_version"] == 1
    assert manifest["batch_id"] == result.batch_id
    assert manifest["source"] == "shop"
    assert manifest["source_type"] == "folder"
    assert manifest["table"] == "bronze.orders"
    assert manifest["branch"] == "main"
    landed_at = dt.datetime.fromisoformat(manifest["landed_at"])
    assert before - dt.timedelta(seconds=1) <= landed_at <= dt.datetime.now(dt.UTC)
    [entry] = manifest["files"]
    assert entry["name"] == "orders.csv"
    assert entry["original"] == "file://" + (inbox / "orders.csv").as_posix()
    assert entry["size"] == len(ORDERS)
    assert entry["sha256"] == sha256(inbox / "orders.csv")
    assert entry["rows"] == 2
    assert result.manifest is not None and result.manifest.endswith("/_manifest.json")


def test_loaded_rows_carry_ingestion_columns(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "orders.csv").write_text(ORDERS)

    [result] = ingest(lh, folder(inbox))

    table = lh.table("bronze.orders")
    assert [f.name for f in table.schema().fields] == [
        "id",
        "customer",
        "amount",
        "_batch_id",
        "_source_file",
        "_ingested_at",
    ]
    assert str(table.schema().find_field("_ingested_at").field_type) == "timestamptz"
    data = table.scan().to_arrow()
    assert set(data.column("_batch_id").to_pylist()) == {result.batch_id}
    assert set(data.column("_source_file").to_pylist()) == {result.landed[0].uri}
    assert rows(lh, "bronze.orders") == [(1, "alice", 10.5), (2, "bob", 20.0)]
    assert result.rows_loaded == 2
    assert result.commit_hash == head(lh)


def test_bronze_namespace_and_table_are_created_in_one_commit_each(
    lh: Lakehouse, inbox: Path
) -> None:
    (inbox / "orders.csv").write_text(ORDERS)
    commits = len(lh.log())

    ingest(lh, folder(inbox))

    log = lh.log()
    assert len(log) == commits + 2
    assert [e.meta.message for e in log[:2]] == [
        "Create table bronze.orders",
        "Create namespace bronze",
    ]


# -- exactly once --------------------------------------------------------------------------


def test_batch_ids_and_checksums_are_in_the_snapshot_summary(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "orders.csv").write_text(ORDERS)

    [result] = ingest(lh, folder(inbox))

    snapshot = lh.table("bronze.orders").current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.snapshot_id == result.snapshot_id
    assert snapshot.summary[SUMMARY_BATCH_ID] == result.batch_id
    files = json.loads(snapshot.summary[SUMMARY_FILES] or "")
    assert files == [["orders.csv", sha256(inbox / "orders.csv")]]
    assert lh.table("bronze.orders").properties[LAST_BATCH_PROPERTY] == result.batch_id


def test_rerun_loads_nothing_and_lands_nothing(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "orders.csv").write_text(ORDERS)
    [first] = ingest(lh, folder(inbox))
    landed = raw_files(lh)
    commit = head(lh)

    [again] = ingest(lh, folder(inbox))

    assert again.batch_id is None and again.rows_loaded == 0 and again.commit_hash is None
    assert [(s.name, s.reason, s.batch_id) for s in again.skipped] == [
        ("orders.csv", "already loaded", first.batch_id)
    ]
    assert head(lh) == commit
    assert raw_files(lh) == landed
    assert len(rows(lh, "bronze.orders")) == 2


def test_state_comes_from_the_table_history_not_from_raw(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "orders.csv").write_text(ORDERS)
    ingest(lh, folder(inbox))
    for path in sorted(raw_root(lh).rglob("*"), reverse=True):  # raw wiped: no side state
        path.unlink() if path.is_file() else path.rmdir()

    [again] = ingest(lh, folder(inbox))

    assert again.batch_id is None
    assert len(rows(lh, "bronze.orders")) == 2


def test_new_files_are_picked_up_and_loaded_ones_skipped(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "orders_1.csv").write_text(ORDERS)
    ingest(lh, folder(inbox))
    (inbox / "orders_2.csv").write_text("id,customer,amount\n3,carol,30.0\n")

    [result] = ingest(lh, folder(inbox))

    assert [f.name for f in result.landed] == ["orders_2.csv"]
    assert [s.name for s in result.skipped] == ["orders_1.csv"]
    assert result.rows_loaded == 1
    assert [r[0] for r in rows(lh, "bronze.orders")] == [1, 2, 3]
    assert len(manifests(lh)) == 2


def test_same_name_with_new_content_is_a_new_batch(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "orders.csv").write_text(ORDERS)
    [first] = ingest(lh, folder(inbox))
    (inbox / "orders.csv").write_text("id,customer,amount\n3,carol,30.0\n")

    [second] = ingest(lh, folder(inbox))

    assert second.batch_id not in (None, first.batch_id)
    assert second.rows_loaded == 1
    assert second.landed[0].sha256 == sha256(inbox / "orders.csv")
    assert [m["files"][0]["name"] for m in manifests(lh)] == ["orders.csv", "orders.csv"]
    assert [r[0] for r in rows(lh, "bronze.orders")] == [1, 2, 3]


def test_files_with_identical_content_load_once(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "a.csv").write_text(ORDERS)
    (inbox / "b.csv").write_text(ORDERS)

    [result] = ingest(lh, folder(inbox))

    assert [f.name for f in result.landed] == ["a.csv"]
    assert [(s.name, s.reason) for s in result.skipped] == [("b.csv", "same content as a.csv")]
    assert len(rows(lh, "bronze.orders")) == 2


def test_several_files_are_one_batch_and_one_snapshot(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "a.csv").write_text(ORDERS)
    (inbox / "b.csv").write_text("id,customer,amount\n3,carol,30.0\n")

    [result] = ingest(lh, folder(inbox))

    assert [f.name for f in result.landed] == ["a.csv", "b.csv"]
    assert [f.rows for f in result.landed] == [2, 1]
    table = lh.table("bronze.orders")
    assert len(table.metadata.snapshots) == 1
    data = table.scan().to_arrow()
    ids, files = data.column("id").to_pylist(), data.column("_source_file").to_pylist()
    by_file = sorted(zip(ids, files, strict=True))
    assert [uri.rsplit("/", 1)[1] for _, uri in by_file] == ["a.csv", "a.csv", "b.csv"]


# -- formats and layout ----------------------------------------------------------------------


def test_jsonl_and_parquet_files_are_read_by_suffix(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "a.jsonl").write_text('{"id": 1, "customer": "alice"}\n{"id": 2, "customer": "bob"}\n')
    pq.write_table(pa.table({"id": [3], "customer": ["carol"]}), inbox / "b.parquet")

    [result] = ingest(lh, folder(inbox))

    assert result.rows_loaded == 3
    assert rows(lh, "bronze.orders") == [(1, "alice"), (2, "bob"), (3, "carol")]


def test_csv_options_delimiter_no_header_and_column_types(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "orders.tbl").write_text("1|00042|10.50\n2|00007|20.00\n")
    options = FormatOptions(
        delimiter="|",
        header=False,
        column_names=("id", "zip", "amount"),
        column_types={"zip": "string", "amount": "decimal(10,2)"},
    )

    ingest(lh, folder(inbox, format="csv", options=options))

    table = lh.table("bronze.orders")
    assert str(table.schema().find_field("amount").field_type) == "decimal(10, 2)"
    assert [r[1] for r in rows(lh, "bronze.orders")] == ["00042", "00007"]


def test_table_mappings_route_files_to_tables_each_with_its_batch(
    lh: Lakehouse, inbox: Path
) -> None:
    (inbox / "orders.csv").write_text(ORDERS)
    (inbox / "customers.csv").write_text("name\nalice\n")
    (inbox / "notes.txt").write_text("ignored: matches no pattern")
    source = FolderSource(
        name="shop",
        path=str(inbox),
        tables=(
            TableMapping(table="orders", pattern="orders*.csv"),
            TableMapping(table="bronze.customers", pattern="customers*.csv"),
        ),
    )

    results = ingest(lh, source)

    assert [(r.table, r.rows_loaded) for r in results] == [
        ("bronze.orders", 2),
        ("bronze.customers", 1),
    ]
    assert results[0].batch_id != results[1].batch_id
    assert rows(lh, "bronze.customers") == [("alice",)]


def test_hidden_files_are_ignored_and_unknown_formats_skipped(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "orders.csv").write_text(ORDERS)
    (inbox / "_SUCCESS").write_text("")
    (inbox / ".orders.csv.swp").write_text("x")
    (inbox / "readme.md").write_text("# hi")

    [result] = ingest(lh, folder(inbox))

    assert [f.name for f in result.landed] == ["orders.csv"]
    assert [s.name for s in result.skipped] == ["readme.md"]
    assert "unknown format" in result.skipped[0].reason


# -- schema drift ----------------------------------------------------------------------------


def test_schema_drift_adds_a_new_column(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "a.csv").write_text(ORDERS)
    ingest(lh, folder(inbox))
    (inbox / "b.csv").write_text("id,customer,amount,channel\n3,carol,30.0,web\n")

    commits = len(lh.log())

    [result] = ingest(lh, folder(inbox))

    assert len(lh.log()) == commits + 1  # schema change and data: one commit
    assert result.added_columns == ("channel",)
    table = lh.table("bronze.orders")
    assert [f.name for f in table.schema().fields] == [
        "id",
        "customer",
        "amount",
        "channel",
        "_batch_id",
        "_source_file",
        "_ingested_at",
    ]
    assert rows(lh, "bronze.orders", "main", "id", "channel") == [
        (1, None),
        (2, None),
        (3, "web"),
    ]
    assert lh.log()[0].hash == result.commit_hash


def test_a_missing_optional_column_is_loaded_as_null(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "a.csv").write_text(ORDERS)
    ingest(lh, folder(inbox))
    (inbox / "b.csv").write_text("id,amount\n3,30.0\n")

    [result] = ingest(lh, folder(inbox))

    assert result.ok and result.rows_loaded == 1
    assert (3, None, 30.0) in rows(lh, "bronze.orders")


def test_narrower_types_are_widened_to_the_table(lh: Lakehouse, inbox: Path) -> None:
    pq.write_table(pa.table({"id": pa.array([1], pa.int64()), "x": [1.5]}), inbox / "a.parquet")
    ingest(lh, folder(inbox))
    pq.write_table(
        pa.table({"id": pa.array([2], pa.int32()), "x": pa.array([2], pa.int64())}),
        inbox / "b.parquet",
    )

    [result] = ingest(lh, folder(inbox))

    assert result.ok
    assert rows(lh, "bronze.orders") == [(1, 1.5), (2, 2.0)]


def test_the_table_column_type_is_widened_when_iceberg_allows(lh: Lakehouse, inbox: Path) -> None:
    pq.write_table(pa.table({"id": pa.array([1], pa.int32())}), inbox / "a.parquet")
    ingest(lh, folder(inbox))
    pq.write_table(pa.table({"id": pa.array([2**40], pa.int64())}), inbox / "b.parquet")

    [result] = ingest(lh, folder(inbox))

    assert result.ok
    assert str(lh.table("bronze.orders").schema().find_field("id").field_type) == "long"
    assert rows(lh, "bronze.orders") == [(1,), (2**40,)]


def test_incompatible_type_change_is_quarantined_and_bronze_untouched(
    lh: Lakehouse, inbox: Path
) -> None:
    (inbox / "a.csv").write_text(ORDERS)
    ingest(lh, folder(inbox))
    commit = head(lh)
    metadata = lh.table("bronze.orders").metadata_location
    (inbox / "b.csv").write_text("id,customer,amount\nX-3,carol,30.0\n")

    [result] = ingest(lh, folder(inbox))

    assert not result.ok and result.quarantined is not None
    assert result.snapshot_id is None and result.commit_hash is None
    assert "id" in result.quarantined.reasons[0] and "long" in result.quarantined.reasons[0]
    assert head(lh) == commit
    assert lh.table("bronze.orders").metadata_location == metadata
    rejected = raw_root(lh) / "_rejected" / "shop" / result.quarantined.batch_id
    assert (rejected / "b.csv").read_bytes() == (inbox / "b.csv").read_bytes()
    reason = json.loads((rejected / "reason.json").read_text())
    assert reason["reasons"] == list(result.quarantined.reasons)
    assert reason["table"] == "bronze.orders"
    assert reason["files"][0]["sha256"] == sha256(inbox / "b.csv")
    assert len(manifests(lh)) == 1  # the rejected batch was not landed as a batch
    with pytest.raises(IngestError, match=r"was not loaded into bronze\.orders"):
        result.raise_for_quarantine()


def test_a_missing_required_column_is_quarantined(lh: Lakehouse, inbox: Path) -> None:
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("x", pa.string())])
    pq.write_table(pa.table({"id": [1], "x": ["a"]}, schema=schema), inbox / "a.parquet")
    ingest(lh, folder(inbox))
    assert lh.table("bronze.orders").schema().find_field("id").required
    pq.write_table(pa.table({"x": ["b"]}), inbox / "b.parquet")

    [result] = ingest(lh, folder(inbox))

    assert result.quarantined is not None
    assert result.quarantined.reasons == ("required column 'id' is missing",)
    assert rows(lh, "bronze.orders") == [(1, "a")]


def test_nulls_in_a_required_column_are_quarantined(lh: Lakehouse, inbox: Path) -> None:
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False)])
    pq.write_table(pa.table({"id": [1]}, schema=schema), inbox / "a.parquet")
    ingest(lh, folder(inbox))
    pq.write_table(pa.table({"id": pa.array([2, None], pa.int64())}), inbox / "b.parquet")

    [result] = ingest(lh, folder(inbox))

    assert result.quarantined is not None
    assert "'id' is required but 1 row(s) are NULL" in result.quarantined.reasons[0]


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "cannot read empty.csv as csv: the file is empty"),
        ("header_only.csv", b"id,customer\n", "cannot read header_only.csv as csv: the file has"),
        ("latin1.csv", b"id,name\n1,caf\xe9\n", "latin1.csv: not valid utf-8 text at byte 13"),
        ("ragged.csv", b"a,b\n1,2,3\n", "cannot read ragged.csv as csv: CSV parse error"),
        ("broken.jsonl", b'{"a": 1}\n{"a": oops}\n', "cannot read broken.jsonl as jsonl"),
        ("broken.parquet", b"not a parquet file", "cannot read broken.parquet as parquet"),
    ],
)
def test_bad_input_is_a_one_line_error_naming_the_file_and_nothing_is_committed(
    lh: Lakehouse, inbox: Path, name: str, content: bytes, message: str
) -> None:
    (inbox / "good.csv").write_text(ORDERS)
    (inbox / name).write_bytes(content)
    commit = head(lh)

    with pytest.raises(BadInputError) as caught:
        ingest(lh, folder(inbox, pattern="*"))

    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert isinstance(caught.value, LakehouseError)
    assert caught.value.source == "shop"
    assert head(lh) == commit
    assert not lh.namespaces()
    assert raw_files(lh) == []


def test_bad_input_in_one_table_keeps_every_table_of_the_source_untouched(
    lh: Lakehouse, inbox: Path
) -> None:
    (inbox / "orders.csv").write_text(ORDERS)
    (inbox / "customers.csv").write_bytes(b"")
    source = FolderSource(
        name="shop",
        path=str(inbox),
        tables=(
            TableMapping(table="orders", pattern="orders*"),
            TableMapping(table="customers", pattern="customers*"),
        ),
    )
    commit = head(lh)

    with pytest.raises(BadInputError, match=r"customers\.csv"):
        ingest(lh, source)

    assert head(lh) == commit
    assert raw_files(lh) == []


def test_a_declared_encoding_is_used(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "latin1.csv").write_bytes("id,name\n1,café\n".encode("latin-1"))

    ingest(lh, folder(inbox, options=FormatOptions(encoding="latin-1")))

    assert rows(lh, "bronze.orders") == [(1, "café")]


def test_a_missing_folder_is_a_one_line_error(lh: Lakehouse, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match=r"folder .*nowhere of source 'shop' does not"):
        ingest(lh, folder(tmp_path / "nowhere"))


def test_reserved_column_names_are_bad_input(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "a.csv").write_text("id,_batch_id\n1,x\n")

    with pytest.raises(BadInputError, match="_batch_id are reserved"):
        ingest(lh, folder(inbox))


def test_a_file_changing_while_it_is_ingested_is_detected(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "a.csv").write_text(ORDERS)

    def rewrite_before_landing(stage: str, item: str, done: int, total: int) -> None:
        if stage == "land" and item == "a.csv":
            (inbox / "a.csv").write_text(ORDERS + "3,carol,30.0\n")

    with pytest.raises(SourceChangedError, match="changed while it was being ingested"):
        ingest(lh, folder(inbox), progress=rewrite_before_landing)

    assert lh.tables() == []
    [again] = ingest(lh, folder(inbox))
    assert again.rows_loaded == 3


def test_progress_is_reported_per_stage(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "a.csv").write_text(ORDERS)
    (inbox / "b.csv").write_text("id\n3\n")
    seen: list[tuple[str, str, int, int]] = []

    ingest(lh, folder(inbox), progress=lambda *event: seen.append(event))

    assert [e for e in seen if e[0] == "read"] == [
        ("read", "a.csv", 0, 2),
        ("read", "b.csv", 1, 2),
        ("read", "", 2, 2),
    ]
    assert [e[0] for e in seen if e[2] == e[3]] == ["check", "read", "land", "load"]


# -- branches --------------------------------------------------------------------------------


def test_ingestion_on_a_branch_is_invisible_on_main(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "orders.csv").write_text(ORDERS)
    lh.create_branch("dev")
    main = head(lh)

    [result] = ingest(lh, folder(inbox), branch="dev")

    assert result.branch == "dev"
    assert result.commit_hash == head(lh, "dev")
    assert head(lh) == main
    assert [e.key.to_path_string() for e in lh.tables("main")] == []
    assert len(rows(lh, "bronze.orders", "dev")) == 2


def test_state_is_per_branch(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "orders.csv").write_text(ORDERS)
    lh.create_branch("dev")
    ingest(lh, folder(inbox), branch="dev")

    [on_main] = ingest(lh, folder(inbox), branch="main")
    [again] = ingest(lh, folder(inbox), branch="dev")

    assert on_main.rows_loaded == 2  # main never saw the file
    assert again.batch_id is None


def test_a_merged_branch_carries_its_batches(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "orders.csv").write_text(ORDERS)
    lh.create_branch("dev")
    ingest(lh, folder(inbox), branch="dev")
    lh.merge("dev", "main")

    [again] = ingest(lh, folder(inbox), branch="main")

    assert again.batch_id is None
    assert len(rows(lh, "bronze.orders")) == 2


def test_tags_cannot_be_ingested_into(lh: Lakehouse, inbox: Path) -> None:
    (inbox / "orders.csv").write_text(ORDERS)
    lh.create_tag("v1")

    with pytest.raises(ReadOnlyReferenceError):
        ingest(lh, folder(inbox), branch="v1")


# -- concurrency ------------------------------------------------------------------------------


@pytest.mark.parametrize("table_exists", [False, True])
def test_a_concurrent_load_of_the_same_file_is_not_duplicated(
    lh: Lakehouse, inbox: Path, monkeypatch: pytest.MonkeyPatch, table_exists: bool
) -> None:
    """A rival run loads the file between our read of the table and our commit."""
    from lakehouse.ingest import bronze

    if table_exists:
        (inbox / "old.csv").write_text("id,customer,amount\n0,zed,1.0\n")
        ingest(lh, folder(inbox))
    (inbox / "orders.csv").write_text(ORDERS)
    real_append = bronze.finish_append
    rivals = []

    def append_after_a_rival(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(bronze, "finish_append", real_append)
        rivals.extend(ingest(lh, folder(inbox)))  # the rival commits first
        return real_append(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bronze, "finish_append", append_after_a_rival)

    [result] = ingest(lh, folder(inbox))

    assert [r.rows_loaded for r in rivals] == [2]
    assert result.batch_id is None and result.commit_hash is None
    assert [(s.name, s.reason) for s in result.skipped if s.name == "orders.csv"] == [
        ("orders.csv", "loaded concurrently")
    ]
    assert [r[0] for r in rows(lh, "bronze.orders")] == [0, 1, 2][1 - table_exists :]
