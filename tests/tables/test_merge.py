"""Three-way content merges of one table, on real Iceberg metadata written by PyIceberg."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.manifest import DataFileContent
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField, StringType

from lakehouse.tables.merge import MERGE_PROPERTY, TableMerge, merge_tables, summaries
from lakehouse.tables.rowdelta import RowDelta
from lakehouse.tables.upsert import KEY_PROPERTY, SMALL_FILE_ROWS, delete_rows, upsert


def rows(*ids: int) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64())})


@pytest.fixture
def sides(tmp_path: Path) -> tuple[SqlCatalog, Table]:
    """A catalog with table ns.t (rows 1, 2) to fork: register its metadata as ns.src."""
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/wh")
    catalog.create_namespace("ns")
    table = catalog.create_table("ns.t", schema=rows(1).schema, properties={"format-version": "2"})
    table.append(rows(1, 2))
    return catalog, table


def fork(catalog: SqlCatalog, table: Table) -> Table:
    return catalog.register_table("ns.src", table.metadata_location)


def ids(metadata_table: Table) -> list[int]:
    return sorted(metadata_table.scan().to_arrow().column("id").to_pylist())


def merged_table(table: Table, metadata: object) -> Table:
    return Table(table.name(), metadata, "", table.io, table.catalog)  # type: ignore[arg-type]


def test_appends_on_both_sides_merge_into_one_new_snapshot(
    sides: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    target.append(rows(3))
    source.append(rows(4))
    source.append(rows(5))
    result = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert result.merged and result.metadata is not None
    assert "appends on the source (2 data file(s))" in result.description
    merged = merged_table(target, result.metadata)
    assert ids(merged) == [1, 2, 3, 4, 5]
    snapshot = merged.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary[MERGE_PROPERTY] == "content"
    assert snapshot.parent_snapshot_id == target.metadata.current_snapshot_id
    assert snapshot.summary["total-records"] == "5"


def test_the_merged_snapshot_carries_the_sources_ingestion_bookkeeping(
    sides: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    target.append(rows(3))
    source.append(rows(4), snapshot_properties={"lakehouse.ingest.batch-id": "b1", "x": "1"})
    source.append(rows(5), snapshot_properties={"lakehouse.ingest.batch-id": "b2"})
    result = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert result.metadata is not None
    snapshot = merged_table(target, result.metadata).current_snapshot()
    assert snapshot is not None
    # newest first, only the bookkeeping prefixes: what an ancestry walk would have found
    assert summaries(snapshot)[1:] == [
        {"lakehouse.ingest.batch-id": "b2"},
        {"lakehouse.ingest.batch-id": "b1"},
    ]


def test_appends_land_on_a_target_that_deleted_and_overwrote(
    sides: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    target.delete("id = 1")
    target.overwrite(rows(7))
    source.append(rows(4))
    result = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert result.merged and result.metadata is not None
    assert ids(merged_table(target, result.metadata)) == [4, 7]


def test_properties_merge_key_by_key_and_clash_when_set_differently(
    sides: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    with target.transaction() as tx:
        tx.set_properties(owner="ops")
    with source.transaction() as tx:
        tx.set_properties(team="sales")
    ok = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert ok.metadata is not None
    assert (ok.metadata.properties["owner"], ok.metadata.properties["team"]) == ("ops", "sales")
    with source.transaction() as tx:
        tx.set_properties(owner="finance")
    clash = merge_tables(ancestor, target.metadata, source.refresh().metadata, target.io)
    assert clash.conflict == "both sides changed table properties owner"


def test_a_column_the_source_added_reaches_the_target_and_reads_null_in_the_targets_files(
    sides: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    with source.update_schema() as update:
        update.add_column("note", StringType())
    source.append(pa.table({"id": pa.array([4], pa.int64()), "note": ["new"]}))
    target.append(rows(3))
    result = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert result.merged and result.metadata is not None, result.conflict
    assert "the source's schema change applied" in result.description
    merged = merged_table(target, result.metadata)
    assert merged.schema() == source.schema()
    got = merged.scan().to_arrow().sort_by("id").to_pylist()
    assert got == [
        {"id": 1, "note": None},
        {"id": 2, "note": None},
        {"id": 3, "note": None},
        {"id": 4, "note": "new"},
    ]


def test_the_same_schema_change_on_both_sides_is_one_change(
    sides: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    for side in (target, source):
        with side.update_schema() as update:
            update.add_column("note", StringType())
    source.append(pa.table({"id": pa.array([4], pa.int64()), "note": ["s"]}))
    result = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert result.merged and result.metadata is not None
    assert len(result.metadata.schemas) == len(target.metadata.schemas)
    assert ids(merged_table(target, result.metadata)) == [1, 2, 4]


def test_different_schema_changes_on_the_two_sides_are_a_conflict(
    sides: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    with target.update_schema() as update:
        update.add_column("a", StringType())
    with source.update_schema() as update:
        update.add_column("b", StringType())
    result = merge_tables(ancestor, target.metadata, source.refresh().metadata, target.io)
    assert result.conflict == "both sides changed the schema, differently"


def test_a_required_column_added_on_the_source_is_a_conflict_naming_it(
    sides: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    with source.update_schema(allow_incompatible_changes=True) as update:
        update.add_column("must", StringType(), required=True)
    target.append(rows(3))
    result = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert result.conflict is not None
    assert "column must was added as required" in result.conflict


def test_a_widened_column_on_the_source_reads_the_targets_narrow_files(tmp_path: Path) -> None:
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/wh")
    catalog.create_namespace("ns")
    narrow = pa.table({"n": pa.array([1], pa.int32())})
    target = catalog.create_table("ns.t", schema=narrow.schema, properties={"format-version": "2"})
    target.append(narrow)
    ancestor = target.metadata
    source = catalog.register_table("ns.src", target.metadata_location)
    with source.update_schema() as update:
        update.update_column("n", LongType())
    source.append(pa.table({"n": pa.array([2**40], pa.int64())}))
    target.append(pa.table({"n": pa.array([2], pa.int32())}))
    result = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert result.merged and result.metadata is not None, result.conflict
    merged = merged_table(target, result.metadata)
    assert sorted(merged.scan().to_arrow().column("n").to_pylist()) == [1, 2, 2**40]


def test_a_partition_spec_the_source_added_becomes_the_default_and_old_files_keep_theirs(
    sides: tuple[SqlCatalog, Table],
) -> None:
    from pyiceberg.transforms import IdentityTransform

    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    with source.update_spec() as update:
        update.add_field("id", IdentityTransform(), "id_part")
    source.append(rows(4, 5))
    target.append(rows(3))
    result = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert result.merged and result.metadata is not None, result.conflict
    assert "the source's partition spec applied" in result.description
    merged = merged_table(target, result.metadata)
    assert merged.spec() == source.spec()
    assert ids(merged) == [1, 2, 3, 4, 5]
    specs = {t.file.spec_id for t in merged.scan().plan_files()}
    assert specs == {ancestor.default_spec_id, source.spec().spec_id}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda u: u.add_column("x", StringType()), None),
        (lambda u: u.rename_column("id", "key"), None),
        (lambda u: u.delete_column("v"), None),
        (lambda u: u.update_column("v", doc="a note"), None),
        (lambda u: u.update_column("id", required=True), "column id became required"),
    ],
    ids=["add optional", "rename", "drop", "doc", "make required"],
)
def test_files_written_under_the_old_schema_read_under_these_changes(
    change: object, reason: str | None, kv: tuple[SqlCatalog, Table]
) -> None:
    from lakehouse.tables.evolution import unreadable

    _, table = kv
    old = table.schema()
    with table.update_schema(allow_incompatible_changes=True) as update:
        change(update)  # type: ignore[operator]
    got = unreadable(old, table.schema())
    assert (got is None) if reason is None else (got is not None and reason in got)


def test_a_narrowed_or_retyped_column_is_unreadable_for_older_files() -> None:
    from pyiceberg.types import IntegerType

    from lakehouse.tables.evolution import unreadable

    wide = Schema(NestedField(1, "n", LongType(), required=False))
    narrow = Schema(NestedField(1, "n", IntegerType(), required=False))
    text = Schema(NestedField(1, "n", StringType(), required=False))
    assert unreadable(narrow, wide) is None
    assert unreadable(wide, narrow) == "column n changed from long to int"
    assert unreadable(narrow, text) == "column n changed from int to string"


# -- row-level changes: position deletes, copy-on-write rewrites, compaction ---------------

KEYED = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
Rows = dict[int, list[str]]


def keyed(values: Rows) -> pa.Table:
    pairs = [(k, v) for k, vs in sorted(values.items()) for v in vs]
    return pa.table(
        {"id": pa.array([k for k, _ in pairs], pa.int64()), "v": [v for _, v in pairs]},
        schema=KEYED,
    )


def state(table: Table) -> Rows:
    """The table's rows by id, through PyIceberg's reader (deletes applied)."""
    out: Rows = {}
    for row in table.scan().to_arrow().to_pylist():
        out.setdefault(row["id"], []).append(row["v"])
    return {k: sorted(v) for k, v in out.items()}


@pytest.fixture
def kv(tmp_path: Path) -> tuple[SqlCatalog, Table]:
    """Table ns.kv with ids 0..9 (v "a") in two data files; upserts write position deletes."""
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/wh")
    catalog.create_namespace("ns")
    table = catalog.create_table(
        "ns.kv",
        schema=KEYED,
        properties={"format-version": "2", SMALL_FILE_ROWS: "0"},
    )
    table.append(keyed({i: ["a"] for i in range(5)}))
    table.append(keyed({i: ["a"] for i in range(5, 10)}))
    return catalog, table


def fork_kv(catalog: SqlCatalog, table: Table) -> Table:
    return catalog.register_table("ns.src", table.metadata_location)


def merge(ancestor: object, target: Table, source: Table) -> TableMerge:
    return merge_tables(
        ancestor,  # type: ignore[arg-type]
        target.refresh().metadata,
        source.refresh().metadata,
        target.io,
    )


def data_file_of(table: Table, key: int) -> str:
    """The live data file holding ``id = key``."""
    for task in table.scan(row_filter=f"id = {key}").plan_files():
        return task.file.file_path
    raise AssertionError(f"no data file holds id {key}")


def delete_files(table: Table) -> set[str]:
    return {d.file_path for t in table.scan().plan_files() for d in t.delete_files}


def test_the_sources_position_deletes_are_carried_over_onto_the_targets_appends(
    kv: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = kv
    ancestor = target.metadata
    source = fork_kv(catalog, target)
    target.append(keyed({20: ["t"]}))
    upsert(source, keyed({1: ["s"], 6: ["s"]}), ["id"])  # position deletes on both files
    delete_rows(source, pa.table({"id": pa.array([2], pa.int64())}), ["id"])
    result = merge(ancestor, target, source)
    assert result.merged and result.metadata is not None, result.conflict
    assert "deletes on the source" in result.description
    expected = {i: ["a"] for i in range(10)} | {1: ["s"], 6: ["s"], 20: ["t"]}
    del expected[2]
    merged = merged_table(target, result.metadata)
    assert state(merged) == expected
    assert delete_files(merged) == delete_files(source.refresh())
    summary = merged.current_snapshot().summary  # type: ignore[union-attr]
    assert summary is not None and summary["total-records"] == "13"


def test_a_position_delete_of_a_file_the_source_added_still_applies_after_the_merge(
    kv: tuple[SqlCatalog, Table],
) -> None:
    """Re-added in one snapshot, the data file and its delete file share a sequence number."""
    catalog, target = kv
    ancestor = target.metadata
    source = fork_kv(catalog, target)
    target.append(keyed({20: ["t"]}))
    source.append(keyed({30: ["s"], 31: ["s"]}))
    upsert(source, keyed({30: ["s2"]}), ["id"])  # deletes a row of the source's own file
    result = merge(ancestor, target, source)
    assert result.metadata is not None, result.conflict
    merged = merged_table(target, result.metadata)
    assert state(merged) == {i: ["a"] for i in range(10)} | {
        20: ["t"],
        30: ["s2"],
        31: ["s"],
    }


def test_deleting_rows_of_a_file_the_target_rewrote_is_a_conflict_naming_the_file(
    kv: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = kv
    ancestor = target.metadata
    source = fork_kv(catalog, target)
    rewritten = data_file_of(target, 1)
    target.delete("id = 0")  # copy-on-write: the file of ids 0..4 is rewritten
    upsert(source, keyed({1: ["s"]}), ["id"])
    result = merge(ancestor, target, source)
    assert result.metadata is None
    assert result.conflict is not None
    assert f"the source deleted rows from data file {rewritten}" in result.conflict
    assert "which the target rewrote or removed" in result.conflict


def test_both_sides_deleting_rows_of_one_data_file_merge_as_the_union_of_their_deletes(
    kv: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = kv
    ancestor = target.metadata
    source = fork_kv(catalog, target)
    upsert(target, keyed({1: ["t"]}), ["id"])
    delete_rows(target, pa.table({"id": pa.array([3], pa.int64())}), ["id"])
    upsert(source, keyed({2: ["s"]}), ["id"])
    delete_rows(source, pa.table({"id": pa.array([3, 4], pa.int64())}), ["id"])
    result = merge(ancestor, target, source)
    assert result.metadata is not None, result.conflict
    merged = merged_table(target, result.metadata)
    expected = {i: ["a"] for i in range(10) if i not in (3, 4)} | {1: ["t"], 2: ["s"]}
    assert state(merged) == expected
    # the data file of ids 0..4 has the target's delete file and the source's
    shared = data_file_of(merged, 0)
    [task] = [t for t in merged.scan().plan_files() if t.file.file_path == shared]
    assert len(task.delete_files) == 2


def test_a_source_that_folded_an_ancestor_delete_file_replaces_it_on_the_target(
    kv: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = kv
    delete_rows(target, pa.table({"id": pa.array([0], pa.int64())}), ["id"])
    ancestor = target.refresh().metadata
    folded = delete_files(target)
    source = fork_kv(catalog, target)
    target.append(keyed({20: ["t"]}))
    delete_rows(source, pa.table({"id": pa.array([1], pa.int64())}), ["id"])  # folds it
    assert not folded & delete_files(source.refresh())
    result = merge(ancestor, target, source)
    assert result.metadata is not None, result.conflict
    merged = merged_table(target, result.metadata)
    assert state(merged) == {i: ["a"] for i in range(2, 10)} | {20: ["t"]}
    assert not folded & delete_files(merged)


def test_a_source_that_drops_a_delete_file_without_keeping_its_deletes_is_a_conflict(
    kv: tuple[SqlCatalog, Table],
) -> None:
    """Removing a delete file alone brings rows back: not something a merge may replay."""
    catalog, target = kv
    delete_rows(target, pa.table({"id": pa.array([0], pa.int64())}), ["id"])
    ancestor = target.refresh().metadata
    source = fork_kv(catalog, target)
    target.append(keyed({20: ["t"]}))
    [dropped] = [d for t in source.scan().plan_files() for d in t.delete_files]
    tx = source.transaction()
    delta = RowDelta(tx)
    delta.remove_files([dropped])
    delta.stage()
    tx.commit_transaction()
    assert 0 in state(source.refresh())
    result = merge(ancestor, target, source)
    assert result.conflict is not None
    assert f"the source removed delete file {dropped.file_path} without keeping" in result.conflict


def test_a_copy_on_write_delete_on_the_source_merges_with_the_targets_appends(
    kv: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = kv
    ancestor = target.metadata
    source = fork_kv(catalog, target)
    target.append(keyed({20: ["t"]}))
    source.delete("id = 7")  # PyIceberg rewrites the file of ids 5..9
    result = merge(ancestor, target, source)
    assert result.metadata is not None, result.conflict
    assert "rewrite on the source (1 data file(s) removed, 1 added)" in result.description
    merged = merged_table(target, result.metadata)
    assert state(merged) == {i: ["a"] for i in range(10) if i != 7} | {20: ["t"]}


def test_compaction_on_the_source_and_appends_on_the_target_merge(
    kv: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = kv
    upsert(target, keyed({1: ["b"]}), ["id"])
    ancestor = target.refresh().metadata
    source = fork_kv(catalog, target)
    target.append(keyed({20: ["t"]}))
    target.append(keyed({21: ["t"]}))
    source.overwrite(source.scan().to_arrow())  # compaction: one file replaces all
    result = merge(ancestor, target, source)
    assert result.metadata is not None, result.conflict
    merged = merged_table(target, result.metadata)
    expected = {i: ["a"] for i in range(10)} | {1: ["b"], 20: ["t"], 21: ["t"]}
    assert state(merged) == expected
    live = {t.file.file_path for t in merged.scan().plan_files()}
    assert live == {t.file.file_path for t in source.refresh().scan().plan_files()} | {
        data_file_of(target, 20),
        data_file_of(target, 21),
    }


def test_compaction_on_the_source_and_row_deletes_of_the_replaced_files_on_the_target_conflict(
    kv: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = kv
    ancestor = target.metadata
    source = fork_kv(catalog, target)
    deleted_from = data_file_of(target, 3)
    delete_rows(target, pa.table({"id": pa.array([3], pa.int64())}), ["id"])
    source.overwrite(source.scan().to_arrow())
    result = merge(ancestor, target, source)
    assert result.conflict is not None
    assert f"data file {deleted_from}, which the target deleted rows from" in result.conflict


def test_both_sides_rewriting_one_data_file_is_a_conflict(kv: tuple[SqlCatalog, Table]) -> None:
    catalog, target = kv
    ancestor = target.metadata
    source = fork_kv(catalog, target)
    rewritten = data_file_of(target, 0)
    target.delete("id = 0")
    source.delete("id = 1")
    result = merge(ancestor, target, source)
    assert result.conflict == f"both sides removed or rewrote data file {rewritten}"


def test_the_same_key_written_on_both_sides_of_a_keyed_table_is_a_conflict(
    tmp_path: Path,
) -> None:
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/wh")
    catalog.create_namespace("ns")
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "v", StringType(), required=False),
        identifier_field_ids=[1],
    )
    target = catalog.create_table(
        "ns.kv", schema=schema, properties={"format-version": "2", SMALL_FILE_ROWS: "0"}
    )
    required = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("v", pa.string())])
    target.append(keyed({i: ["a"] for i in range(5)}).cast(required))
    ancestor = target.metadata
    source = catalog.register_table("ns.src", target.metadata_location)
    upsert(target, keyed({1: ["t"], 7: ["t"]}).cast(required), ["id"])
    upsert(source, keyed({2: ["s"]}).cast(required), ["id"])
    ok = merge(ancestor, target, source)
    assert ok.metadata is not None, ok.conflict
    assert state(merged_table(target, ok.metadata)) == {0: ["a"], 1: ["t"], 2: ["s"]} | {
        3: ["a"],
        4: ["a"],
        7: ["t"],
    }
    upsert(source, keyed({1: ["s"]}).cast(required), ["id"])  # the key the target upserted
    clash = merge(ancestor, target, source)
    assert clash.conflict is not None
    assert clash.conflict.startswith("both sides wrote rows with key id=1 (1 key(s) in all)")


def test_the_same_key_upserted_on_both_sides_is_a_conflict_without_identifier_fields(
    kv: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = kv  # no identifier fields: the key upserts recorded is used
    ancestor = target.metadata
    source = fork_kv(catalog, target)
    upsert(target, keyed({1: ["t"]}), ["id"])
    upsert(source, keyed({2: ["s"]}), ["id"])
    assert target.refresh().properties[KEY_PROPERTY] == '["id"]'
    ok = merge(ancestor, target, source)
    assert ok.metadata is not None, ok.conflict
    expected = {i: ["a"] for i in range(10)} | {1: ["t"], 2: ["s"]}
    assert state(merged_table(target, ok.metadata)) == expected
    upsert(source, keyed({1: ["s"]}), ["id"])
    clash = merge(ancestor, target, source)
    assert clash.conflict is not None
    assert clash.conflict.startswith("both sides wrote rows with key id=1 (1 key(s) in all)")


def test_upserts_on_different_keys_of_one_table_are_a_conflict(
    kv: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = kv
    ancestor = target.metadata
    source = fork_kv(catalog, target)
    upsert(target, keyed({1: ["t"]}), ["id"])
    upsert(source, keyed({2: ["s"]}), ["v"])
    clash = merge(ancestor, target, source)
    assert clash.conflict is not None and KEY_PROPERTY in clash.conflict


def add_equality_delete(table: Table, name: str, *ids_: int) -> str:
    """Commit an equality delete file on ``id`` (field 1) deleting ``ids_``; its path."""
    import pyarrow.parquet as pq
    from pyiceberg.manifest import DataFile, FileFormat

    path = f"{table.location()}/data/{name}.parquet"
    values = pa.table(
        {"id": pa.array(ids_, pa.int64())},
        schema=pa.schema([pa.field("id", pa.int64(), metadata={b"PARQUET:field_id": b"1"})]),
    )
    with table.io.new_output(path).create() as out:
        pq.write_table(values, out)
    eq = DataFile.from_args(
        content=DataFileContent.EQUALITY_DELETES,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition={},
        record_count=len(ids_),
        file_size_in_bytes=len(table.io.new_input(path)),
        equality_ids=[1],
    )
    eq.spec_id = 0
    tx = table.transaction()
    delta = RowDelta(tx)
    delta.add_delete_files([eq])
    delta.stage()
    tx.commit_transaction()
    summary = table.refresh().current_snapshot().summary  # type: ignore[union-attr]
    assert summary is not None and summary["added-equality-delete-files"] == "1"
    return path


def data_sequence_numbers(table: Table) -> dict[str, int]:
    """Each live file of the current snapshot (data and deletes): its data sequence number."""
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return {
        e.data_file.file_path: e.sequence_number or 0
        for m in snapshot.manifests(table.io)
        for e in m.fetch_manifest_entry(table.io, discard_deleted=True)
    }


def test_equality_deletes_from_the_source_are_a_conflict(kv: tuple[SqlCatalog, Table]) -> None:
    catalog, target = kv
    ancestor = target.metadata
    source = fork_kv(catalog, target)
    target.append(keyed({20: ["t"]}))
    path = add_equality_delete(source, "eq-deletes", 1)
    result = merge(ancestor, target, source)
    assert result.conflict is not None
    assert f"the source wrote equality delete file {path}" in result.conflict


def test_the_targets_equality_deletes_do_not_reach_the_rows_the_source_appended(
    kv: tuple[SqlCatalog, Table],
) -> None:
    # the target deletes id=1 by equality while the source, concurrently, writes id=1
    # again: the merged table keeps the source's row (an append after a delete), which
    # holds because the appended file gets the merged snapshot's sequence number, above
    # the delete's, and an equality delete applies only to lower numbers
    catalog, target = kv
    ancestor = target.metadata
    old = data_file_of(target, 1)
    source = fork_kv(catalog, target)
    eq = add_equality_delete(target, "eq-deletes-target", 1)
    source.append(keyed({1: ["s"]}))
    appended = data_file_of(source, 1)
    assert appended != old
    result = merge(ancestor, target, source)
    assert result.metadata is not None, result.conflict
    numbers = data_sequence_numbers(merged_table(target, result.metadata))
    assert numbers[old] < numbers[eq] < numbers[appended]
