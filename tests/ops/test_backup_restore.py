"""Backups are consistent, verified, incremental; restores are exact, verified, all or nothing."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lakehouse.catalog.model import IcebergTable
from lakehouse.client import Lakehouse, connect
from lakehouse.config import Settings
from lakehouse.errors import ConfigError
from lakehouse.ops import (
    BackupCorruptError,
    BackupError,
    BackupFormatError,
    BackupNotFoundError,
    SourceIncompleteError,
    TargetNotEmptyError,
    create_backup,
    list_backups,
    restore_backup,
    verify_backup,
)
from lakehouse.ops.backup import (
    BACKUP_FORMAT_VERSION,
    MANIFEST_NAME,
    BackupManifest,
    BackupRepository,
)
from lakehouse.ops.export import EXPORT_FORMAT_VERSION
from lakehouse.storage.objects import Storage
from tests.ops.helpers import rows, snapshot_state, sql_answers


def manifest_of(dest: Path) -> tuple[Path, BackupManifest]:
    (folder,) = [p for p in (dest / "backups").iterdir() if (p / MANIFEST_NAME).exists()]
    return folder, BackupManifest.loads((folder / MANIFEST_NAME).read_bytes())


def object_path(dest: Path, sha: str) -> Path:
    return dest / "objects" / sha[:2] / sha


def data_object(manifest: BackupManifest) -> Any:
    return next(o for o in manifest.objects if o.kind == "data")


def dir_is_empty_or_absent(path: Path) -> bool:
    return not path.exists() or not any(p.is_file() for p in path.rglob("*"))


# -- the round trip ---------------------------------------------------------------------------


def test_round_trip_restores_every_reference_commit_table_and_query(
    rich_lakehouse: Lakehouse, home: Path, tmp_path: Path
) -> None:
    lh = rich_lakehouse
    before = snapshot_state(lh)
    answers = sql_answers(lh)
    settings = lh.settings
    dest = tmp_path / "backups"

    result = create_backup(lh, str(dest))
    assert result.references == 5
    assert result.missing == 0
    assert verify_backup(str(dest)).ok
    lh.close()
    shutil.rmtree(home)  # the disaster

    restored = restore_backup(str(dest), settings)
    assert restored.check.ok
    assert restored.references == 5

    with connect(home) as again:
        assert snapshot_state(again) == before
        assert sql_answers(again) == answers
        # relative specs resolve as before
        main = next(h for n, _, h in before["references"] if n == "main")
        assert again.resolve("main~1").hash == before["commits"][main]["parents"][0]
    # landed raw files came back; the batch that was still being landed did not
    raw = home / "warehouse" / "raw"
    restored_raw = sorted(str(p.relative_to(raw)) for p in raw.rglob("*") if p.is_file())
    assert restored_raw == [
        "README.txt",
        "_rejected/orders_files/20260115T111500Z-5e6f7a8b/bad.csv",
        "_rejected/orders_files/20260115T111500Z-5e6f7a8b/reason.json",
        "orders_files/2026/01/15/20260115T101500Z-1a2b3c4d/_manifest.json",
        "orders_files/2026/01/15/20260115T101500Z-1a2b3c4d/orders.csv",
    ]


# -- incremental ------------------------------------------------------------------------------


def test_incremental_backup_of_an_unchanged_lakehouse_copies_nothing(
    rich_lakehouse: Lakehouse, tmp_path: Path
) -> None:
    dest = str(tmp_path / "backups")
    first = create_backup(rich_lakehouse, dest)
    second = create_backup(rich_lakehouse, dest)

    assert first.copied_objects == first.objects > 0
    assert second.copied_objects == 0
    assert second.copied_bytes == 0
    assert second.reused_objects == second.objects == first.objects
    infos = list_backups(dest)
    assert [i.backup_id for i in infos] == [first.backup_id, second.backup_id]
    assert all(i.complete for i in infos)
    assert verify_backup(dest, backup_id=first.backup_id).ok
    assert verify_backup(dest, backup_id=second.backup_id).ok


def test_incremental_backup_copies_only_what_changed(
    rich_lakehouse: Lakehouse, tmp_path: Path
) -> None:
    dest = str(tmp_path / "backups")
    create_backup(rich_lakehouse, dest)
    rich_lakehouse.table("silver.customers", "main").append(rows((99, "new")))
    second = create_backup(rich_lakehouse, dest)
    # one data file, one manifest, one manifest list, one metadata file
    assert second.copied_objects == 4
    assert verify_backup(dest).ok


def test_full_hash_rereads_but_still_stores_nothing_twice(
    rich_lakehouse: Lakehouse, tmp_path: Path
) -> None:
    dest = str(tmp_path / "backups")
    create_backup(rich_lakehouse, dest)
    again = create_backup(rich_lakehouse, dest, full_hash=True)
    assert again.copied_objects == 0


# -- damaged backups --------------------------------------------------------------------------


@pytest.fixture
def backed_up(rich_lakehouse: Lakehouse, home: Path, tmp_path: Path) -> tuple[Path, Settings]:
    """A backup of the rich lakehouse, whose home is then deleted."""
    dest = tmp_path / "backups"
    create_backup(rich_lakehouse, str(dest))
    settings = rich_lakehouse.settings
    rich_lakehouse.close()
    shutil.rmtree(home)
    return dest, settings


def test_one_flipped_byte_fails_verify_and_restore_naming_the_object(
    backed_up: tuple[Path, Settings], home: Path
) -> None:
    dest, settings = backed_up
    _, manifest = manifest_of(dest)
    victim = data_object(manifest)
    path = object_path(dest, victim.sha256)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    result = verify_backup(str(dest))
    assert not result.ok
    assert [p.object for p in result.problems] == [victim.uri]
    assert "sha256" in result.problems[0].message

    with pytest.raises(BackupCorruptError) as err:
        restore_backup(str(dest), settings)
    assert victim.uri in str(err.value)
    assert err.value.objects == [victim.uri]
    assert not home.exists()  # nothing half-restored, not even an empty folder


def test_one_missing_object_fails_verify_and_restore_naming_the_object(
    backed_up: tuple[Path, Settings], home: Path
) -> None:
    dest, settings = backed_up
    _, manifest = manifest_of(dest)
    victim = next(o for o in manifest.objects if o.kind == "manifest")
    object_path(dest, victim.sha256).unlink()

    result = verify_backup(str(dest))
    assert victim.uri in [p.object for p in result.problems]
    assert "missing" in result.summary()

    with pytest.raises(BackupCorruptError, match="missing from the backup") as err:
        restore_backup(str(dest), settings)
    assert victim.uri in str(err.value)
    assert not home.exists()


def test_a_tampered_manifest_is_refused(backed_up: tuple[Path, Settings]) -> None:
    dest, settings = backed_up
    folder, _ = manifest_of(dest)
    body = json.loads((folder / MANIFEST_NAME).read_text())
    body["objects"][0]["size"] += 1  # checksum no longer matches
    (folder / MANIFEST_NAME).write_text(json.dumps(body))

    with pytest.raises(BackupCorruptError, match="fails its checksum"):
        verify_backup(str(dest))
    with pytest.raises(BackupCorruptError, match="fails its checksum"):
        restore_backup(str(dest), settings)


def test_a_newer_backup_format_version_is_refused(backed_up: tuple[Path, Settings]) -> None:
    dest, settings = backed_up
    folder, _ = manifest_of(dest)
    body = json.loads((folder / MANIFEST_NAME).read_text())
    body["format_version"] = BACKUP_FORMAT_VERSION + 1
    (folder / MANIFEST_NAME).write_text(json.dumps(body))

    with pytest.raises(BackupFormatError, match="newer than this Lakehouse reads"):
        verify_backup(str(dest))
    with pytest.raises(BackupFormatError, match="format_version 2"):
        restore_backup(str(dest), settings)


def test_a_wrong_format_is_refused(backed_up: tuple[Path, Settings]) -> None:
    dest, settings = backed_up
    folder, _ = manifest_of(dest)
    (folder / MANIFEST_NAME).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(BackupFormatError, match="not a Lakehouse backup"):
        restore_backup(str(dest), settings)


def _rewrite_export(folder: Path, edit: Any) -> None:
    """Rewrite the export with ``edit(lines)`` and re-seal the manifest (as an attacker could)."""
    export = folder / "catalog.jsonl.gz"
    lines = gzip.decompress(export.read_bytes()).decode().splitlines()
    export.write_bytes(gzip.compress(("\n".join(edit(lines)) + "\n").encode()))
    import hashlib

    body = json.loads((folder / MANIFEST_NAME).read_text())
    body.pop("checksum")
    body["catalog_export"]["sha256"] = hashlib.sha256(export.read_bytes()).hexdigest()
    body["catalog_export"]["size"] = export.stat().st_size
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    body["checksum"] = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    (folder / MANIFEST_NAME).write_text(json.dumps(body))


def test_a_newer_export_format_version_is_refused(
    backed_up: tuple[Path, Settings], home: Path
) -> None:
    dest, settings = backed_up
    folder, _ = manifest_of(dest)

    def newer(lines: list[str]) -> list[str]:
        header = json.loads(lines[0])
        header["format_version"] = EXPORT_FORMAT_VERSION + 1
        return [json.dumps(header), *lines[1:]]

    _rewrite_export(folder, newer)
    with pytest.raises(BackupFormatError, match="newer than this Lakehouse reads"):
        restore_backup(str(dest), settings)
    assert not (home / "catalog.db").exists()


def test_a_truncated_export_is_refused(backed_up: tuple[Path, Settings], home: Path) -> None:
    dest, settings = backed_up
    folder, _ = manifest_of(dest)
    _rewrite_export(folder, lambda lines: lines[: len(lines) // 2])

    assert not verify_backup(str(dest)).ok
    with pytest.raises(BackupCorruptError, match="truncated"):
        restore_backup(str(dest), settings)
    assert not (home / "catalog.db").exists()
    assert dir_is_empty_or_absent(home / "warehouse")


def test_a_forged_commit_fails_its_hash_check(backed_up: tuple[Path, Settings], home: Path) -> None:
    dest, settings = backed_up
    folder, _ = manifest_of(dest)

    def forge(lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            record = json.loads(line)
            if record.get("kind") == "commit" and record.get("message"):
                record["message"] += " (forged)"
            out.append(json.dumps(record))
        return out

    _rewrite_export(folder, forge)
    result = verify_backup(str(dest))
    assert any("fails its hash check" in p.message for p in result.problems)
    with pytest.raises(BackupCorruptError, match="fails its hash check"):
        restore_backup(str(dest), settings)
    assert not (home / "catalog.db").exists()


def test_an_incomplete_backup_is_never_restored(backed_up: tuple[Path, Settings]) -> None:
    dest, settings = backed_up
    folder, _ = manifest_of(dest)
    (folder / MANIFEST_NAME).unlink()
    assert [i.complete for i in list_backups(str(dest))] == [False]
    with pytest.raises(BackupNotFoundError, match="no complete backup"):
        restore_backup(str(dest), settings)
    with pytest.raises(BackupNotFoundError, match="incomplete"):
        restore_backup(str(folder), settings)


# -- targets ----------------------------------------------------------------------------------


def test_restore_into_a_non_empty_target_is_refused(
    rich_lakehouse: Lakehouse, tmp_path: Path
) -> None:
    dest = str(tmp_path / "backups")
    create_backup(rich_lakehouse, dest)
    with pytest.raises(TargetNotEmptyError, match=r"not empty.*--erase"):
        restore_backup(dest, rich_lakehouse.settings)


def test_erase_replaces_a_local_lakehouse_with_the_backup(
    rich_lakehouse: Lakehouse, home: Path, tmp_path: Path
) -> None:
    dest = str(tmp_path / "backups")
    before = snapshot_state(rich_lakehouse)
    create_backup(rich_lakehouse, dest)
    rich_lakehouse.table("bronze.orders", "main").append(rows((500, "after the backup")))
    rich_lakehouse.create_branch("later")
    settings = rich_lakehouse.settings
    rich_lakehouse.close()

    restore_backup(dest, settings, erase=True)
    with connect(home) as lh:
        assert snapshot_state(lh) == before
    assert not [p for p in home.rglob("*replaced*")]
    assert not [p for p in home.rglob("*restore-*")]


def test_restore_to_another_location_is_refused_with_both_locations(
    backed_up: tuple[Path, Settings], tmp_path: Path
) -> None:
    dest, settings = backed_up
    elsewhere = Settings(home=tmp_path / "elsewhere")
    with pytest.raises(BackupError, match="relocation is not supported") as err:
        restore_backup(str(dest), elsewhere)
    assert str(settings.home) in str(err.value)
    assert not (tmp_path / "elsewhere").exists()


# -- the source ---------------------------------------------------------------------------------


def test_a_backup_refuses_a_lakehouse_missing_a_referenced_file(
    rich_lakehouse: Lakehouse, tmp_path: Path
) -> None:
    table = rich_lakehouse.table("silver.customers", "main")
    victim = next(iter(table.inspect.files().to_pylist()))["file_path"]
    Path(victim.removeprefix("file://")).unlink()
    dest = tmp_path / "backups"

    with pytest.raises(SourceIncompleteError, match="catalog check") as err:
        create_backup(rich_lakehouse, str(dest))
    assert victim in str(err.value)
    assert list_backups(str(dest)) == []  # nothing that looks like a backup was left

    result = create_backup(rich_lakehouse, str(dest), allow_missing=True)
    assert result.missing >= 1
    verified = verify_backup(str(dest))
    assert verified.ok, verified.summary()  # the manifest records what was missing


def test_backup_of_a_nessie_backed_catalog_is_not_supported(tmp_path: Path) -> None:
    from lakehouse.catalog.nessie_store import NessieStore

    store = object.__new__(NessieStore)
    with pytest.raises(ConfigError, match="use Nessie's own export"):
        list(store.export_rows())
    with pytest.raises(ConfigError, match="use Nessie's own import"):
        store.import_rows([])


def test_the_raw_batch_layout_matches_ingestion() -> None:
    from lakehouse.ingest import landing
    from lakehouse.ops import backup

    assert landing.MANIFEST == backup._LANDED_MARKER
    assert landing.REASON == backup._REJECTED_MARKER
    assert landing.REJECTED == "_rejected"
    folder = "src/2026/01/15/" + landing.new_batch_id(__import__("datetime").datetime.now())
    assert backup._LANDED_BATCH.match(folder + "/x.csv")


def test_a_backup_pins_every_reference_once(rich_lakehouse: Lakehouse, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    create_backup(rich_lakehouse, str(dest))
    _, manifest = manifest_of(dest)
    assert sorted((r["name"], r["hash"]) for r in manifest.references) == sorted(
        (r.name, r.hash) for r in rich_lakehouse.references()
    )
    contents = rich_lakehouse.store.entries("main", with_content=True)
    metadata = {
        c.content.metadata_location for c in contents if isinstance(c.content, IcebergTable)
    }
    uris = {o.uri for o in manifest.objects}
    assert metadata <= uris


def test_backup_repository_rejects_unknown_ids(backed_up: tuple[Path, Settings]) -> None:
    dest, _ = backed_up
    repo = BackupRepository.open(Storage(), str(dest))
    assert len(repo.backup_ids()) == 1
    with pytest.raises(BackupNotFoundError):
        verify_backup(str(dest), backup_id="20990101T000000000000Z-00000000")


def test_history_the_garbage_collector_deleted_does_not_block_a_backup(
    rich_lakehouse: Lakehouse, home: Path, tmp_path: Path
) -> None:
    from datetime import timedelta

    from lakehouse.maintenance.gc import collect_garbage
    from lakehouse.maintenance.policies import Policies

    keep_one = Policies().with_changes(
        gc={"grace_period": timedelta(0), "references": [{"pattern": "*", "keep_commits": 1}]}
    )
    collected = collect_garbage(rich_lakehouse, policies=keep_one)
    assert collected.deleted.files > 0
    heads = {r.name: r.hash for r in rich_lakehouse.references()}
    answers = sql_answers(rich_lakehouse)
    dest = tmp_path / "backups"

    result = create_backup(rich_lakehouse, str(dest))
    assert result.collected > 0 and result.missing == 0
    assert verify_backup(str(dest)).ok
    settings = rich_lakehouse.settings
    rich_lakehouse.close()
    shutil.rmtree(home)
    restore_backup(str(dest), settings)
    with connect(home) as lh:
        assert {r.name: r.hash for r in lh.references()} == heads
        assert sql_answers(lh) == answers


def test_a_damaged_file_of_old_history_still_blocks_a_backup(
    rich_lakehouse: Lakehouse, tmp_path: Path
) -> None:
    table = rich_lakehouse.table("bronze.orders", "v1")
    old = table.metadata.metadata_log[0].metadata_file  # no reference's head uses it
    Path(old.removeprefix("file://")).unlink()
    with pytest.raises(SourceIncompleteError, match="missing or damaged") as err:
        create_backup(rich_lakehouse, str(tmp_path / "backups"))
    assert old in err.value.files


# -- ingest-state checkpoints -------------------------------------------------------------------


def test_a_restored_lakehouse_keeps_ingestion_checkpoints_and_loads_nothing_twice(
    home: Path, tmp_path: Path
) -> None:
    from datetime import timedelta

    from lakehouse.ingest import FolderSource, ingest
    from lakehouse.ingest.bronze import CHECKPOINT_PROPERTY
    from lakehouse.maintenance import expire_snapshots
    from lakehouse.maintenance.policies import Policies

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source = FolderSource.model_validate(
        {"name": "shop", "path": str(inbox), "table": "bronze.orders"}
    )
    lh = connect(home, create=True)
    for n in range(3):
        (inbox / f"orders_{n}.csv").write_text(f"id,amount\n{n},{n}.5\n")
        ingest(lh, source)
    policies = Policies().with_changes(snapshots={"keep_last": 1, "max_age": timedelta(0)})
    expire_snapshots(lh, policies=policies)
    checkpoint = lh.table("bronze.orders").properties[CHECKPOINT_PROPERTY]
    settings = lh.settings
    dest = tmp_path / "backups"
    create_backup(lh, str(dest))
    _, manifest = manifest_of(dest)
    assert [o.kind for o in manifest.objects if o.uri == checkpoint] == ["ingest-checkpoint"]
    lh.close()
    shutil.rmtree(home)

    restored = restore_backup(str(dest), settings)
    assert restored.check.ok
    assert Path(checkpoint.removeprefix("file://")).exists()
    with connect(home) as again:
        assert len(again.table("bronze.orders").snapshots()) == 1
        [result] = ingest(again, source)
        assert result.batch_id is None and result.rows_loaded == 0
        assert again.table("bronze.orders").scan().to_arrow().num_rows == 3
