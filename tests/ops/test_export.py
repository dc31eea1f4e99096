"""The catalog export: every reference, commit and node; every hash re-verified on import."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lakehouse.catalog.model import (
    ContentKey,
    IcebergTable,
    Namespace,
    Put,
    ReferenceType,
    RepositoryConfig,
)
from lakehouse.catalog.sql_store import SqlStore
from lakehouse.errors import InvalidInputError
from lakehouse.ops.errors import BackupCorruptError, BackupFormatError
from lakehouse.ops.export import read_header, read_records, write_export


@pytest.fixture
def source(tmp_path: Path) -> SqlStore:
    store = SqlStore(f"sqlite:///{tmp_path}/source.db")
    store.commit("main", [Put(ContentKey.of("ns"), Namespace(("ns",)))], "namespace")
    store.create_reference("dev", ReferenceType.BRANCH, "main")
    store.commit("dev", [Put(ContentKey.of("ns", "t"), IcebergTable("file:///m/1.json"))], "t")
    store.merge("dev", "main")
    store.create_reference("v1", ReferenceType.TAG, "main")
    store.create_reference("scratch", ReferenceType.BRANCH, "main")
    store.commit("scratch", [Put(ContentKey.of("ns", "u"), IcebergTable("file:///m/2.json"))], "u")
    return store


def fresh(tmp_path: Path, name: str = "target", **kwargs: Any) -> SqlStore:
    return SqlStore(f"sqlite:///{tmp_path}/{name}.db", **kwargs)


def test_round_trip_is_identical(source: SqlStore, tmp_path: Path) -> None:
    target = fresh(tmp_path)
    counts = target.import_rows(source.export_rows())
    assert counts["reference"] == 4
    assert target.list_references() == source.list_references()
    for ref in source.list_references():
        assert [e.meta for e in target.iter_log(ref.name)] == [
            e.meta for e in source.iter_log(ref.name)
        ]
        assert target.entries(ref.name, with_content=True) == source.entries(
            ref.name, with_content=True
        )


def test_export_at_pinned_references_holds_only_what_they_reach(
    source: SqlStore, tmp_path: Path
) -> None:
    pinned = [r for r in source.list_references() if r.name != "scratch"]
    records = list(source.export_rows(pinned))
    commits = {r["hash"] for r in records if r["kind"] == "commit"}
    scratch_head = source.get_reference("scratch").hash
    assert scratch_head not in commits
    target = fresh(tmp_path)
    target.import_rows(records)
    assert [r.name for r in target.list_references()] == ["dev", "main", "v1"]


def test_import_refuses_a_non_empty_catalog_unless_erase(source: SqlStore, tmp_path: Path) -> None:
    target = fresh(tmp_path)
    target.create_reference("mine", ReferenceType.BRANCH)
    with pytest.raises(InvalidInputError, match="not empty"):
        target.import_rows(source.export_rows())
    assert [r.name for r in target.list_references()] == ["main", "mine"]
    target.import_rows(source.export_rows(), erase=True)
    assert target.list_references() == source.list_references()


@pytest.mark.parametrize(
    ("kind", "field", "match"),
    [
        ("commit", "message", "fails its hash check"),
        ("node", "data", "fails its hash check"),
        ("reference", "hash", "is not in the import"),
    ],
)
def test_a_tampered_record_fails_and_nothing_is_imported(
    source: SqlStore, tmp_path: Path, kind: str, field: str, match: str
) -> None:
    records = list(source.export_rows())
    victim = next(r for r in records if r["kind"] == kind and r.get(field))
    if field == "hash":
        victim[field] = "ab" * 32
    elif field == "data":
        victim[field] = victim[field].replace("ns", "nz", 1)
    else:
        victim[field] += "!"
    target = fresh(tmp_path)
    with pytest.raises(InvalidInputError, match=match):
        target.import_rows(records)
    assert [r.name for r in target.list_references()] == ["main"]


def test_a_record_missing_from_the_import_is_named(source: SqlStore, tmp_path: Path) -> None:
    records = [r for r in source.export_rows() if r["kind"] != "node"]
    with pytest.raises(InvalidInputError, match=r"tree node .* is not in the import"):
        fresh(tmp_path).import_rows(records)


def test_the_default_branch_must_match(source: SqlStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="LAKEHOUSE_CATALOG__DEFAULT_BRANCH=main"):
        fresh(tmp_path, default_branch="trunk").import_rows(source.export_rows())


def test_the_export_file_detects_truncation_and_newer_versions(
    source: SqlStore, tmp_path: Path
) -> None:
    path = tmp_path / "export.jsonl.gz"
    info = write_export(source, source.list_references(), path, created_at=datetime.now(UTC))
    assert read_header(path)["format_version"] == 2
    assert len(list(read_records(path))) == info.records

    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join(lines[:-1]) + "\n").encode()))
    with pytest.raises(BackupCorruptError, match="no footer"):
        list(read_records(path))

    header = json.loads(lines[0])
    header["format_version"] = 99
    path.write_bytes(gzip.compress(("\n".join([json.dumps(header), *lines[1:]]) + "\n").encode()))
    with pytest.raises(BackupFormatError, match="newer than this Lakehouse reads"):
        list(read_records(path))


def test_repository_config_is_exported_and_the_reflog_starts_at_the_import(
    source: SqlStore, tmp_path: Path
) -> None:
    gc = RepositoryConfig("GARBAGE_COLLECTOR", {"defaultCutoffPolicy": "P30D"})
    source.update_repository_config(gc)
    path = tmp_path / "export.jsonl.gz"
    write_export(source, source.list_references(), path, created_at=datetime.now(UTC))
    target = fresh(tmp_path)
    counts = target.import_rows(read_records(path))
    assert counts["repository_config"] == 1
    assert target.repository_config(["GARBAGE_COLLECTOR"]) == [gc]
    for ref in source.list_references():
        history = target.reference_history(ref.name)
        assert history.current.hash == ref.hash and history.previous == ()
    with pytest.raises(InvalidInputError, match=r"record 1 \(repository_config\).*FOO_BAR"):
        fresh(tmp_path, "other").import_rows(
            [{"kind": "repository_config", "type": "FOO_BAR", "value": {}}]
        )


def test_a_format_version_1_export_still_imports(source: SqlStore, tmp_path: Path) -> None:
    """Version 1 files (before repository config) hold the same records minus that kind."""
    path = tmp_path / "export.jsonl.gz"
    write_export(source, source.list_references(), path, created_at=datetime.now(UTC))
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    header = json.loads(lines[0])
    header["format_version"], header["schema_version"] = 1, 1
    path.write_bytes(gzip.compress(("\n".join([json.dumps(header), *lines[1:]]) + "\n").encode()))
    target = fresh(tmp_path)
    target.import_rows(read_records(path))
    assert target.list_references() == source.list_references()
    assert target.repository_config(["GARBAGE_COLLECTOR"]) == []
