"""Backups heal: a damaged shared object is never trusted by name, and is replaced when the
lakehouse still has its good bytes (`backup create`, `backup verify --repair`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner, Result

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect
from lakehouse.ops.backup import SAMPLE_WHOLE_BYTES, BackupManifest, BackupObject
from tests.ops.helpers import SCHEMA, rows

runner = CliRunner()


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def ok_json(*args: str) -> Any:
    result = run(*args, "--output", "json")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def failed_json(*args: str) -> Any:
    result = run(*args, "--output", "json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert len(result.stderr.splitlines()) == 1  # --output json: the error as JSON too
    assert json.loads(result.stderr)["error"]["type"] == "BackupCorruptError"
    return json.loads(result.stdout)


def manifest(dest: Path, backup_id: str) -> BackupManifest:
    return BackupManifest.loads((dest / "backups" / backup_id / "manifest.json").read_bytes())


def store_path(dest: Path, sha: str) -> Path:
    return dest / "objects" / sha[:2] / sha


def flip_a_byte(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0x01
    path.write_bytes(bytes(data))


def data_object(m: BackupManifest) -> BackupObject:
    return next(o for o in m.objects if o.kind == "data")


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Lakehouse:
    """bronze.orders on main with two small appends."""
    lake = connect(_isolate_lakehouse_config, create=True)
    lake.catalog("main").create_namespace("bronze")
    lake.catalog("main").create_table("bronze.orders", SCHEMA).append(rows((1, "a")))
    lake.table("bronze.orders", "main").append(rows((2, "b")))
    return lake


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "backups"


def test_full_hash_backup_replaces_a_damaged_shared_object_and_verifies(
    lh: Lakehouse, dest: Path
) -> None:
    first = ok_json("backup", "create", "--to", str(dest))
    victim = data_object(manifest(dest, first["backup_id"]))
    flip_a_byte(store_path(dest, victim.sha256))

    second = ok_json("backup", "create", "--to", str(dest), "--full-hash")

    assert second["healed_objects"] == 1
    assert ok_json("backup", "verify", str(dest), "--id", second["backup_id"])["ok"]
    # the object is shared: healing it healed the first backup too
    assert ok_json("backup", "verify", str(dest), "--id", first["backup_id"])["ok"]


def test_an_incremental_backup_does_not_trust_a_damaged_small_object(
    lh: Lakehouse, dest: Path
) -> None:
    first = ok_json("backup", "create", "--to", str(dest))
    victim = data_object(manifest(dest, first["backup_id"]))
    assert victim.size <= SAMPLE_WHOLE_BYTES  # confirmed by its whole sha256
    flip_a_byte(store_path(dest, victim.sha256))

    second = ok_json("backup", "create", "--to", str(dest))

    assert second["healed_objects"] == 1
    assert second["copied_objects"] == 1
    assert ok_json("backup", "verify", str(dest), "--id", second["backup_id"])["ok"]


def test_an_incremental_backup_samples_large_objects_against_the_source(
    lh: Lakehouse, dest: Path
) -> None:
    big = pa.Table.from_pylist(
        [{"id": i, "name": os.urandom(100).hex()} for i in range(2000)], schema=SCHEMA
    )
    lh.table("bronze.orders", "main").append(big)
    first = ok_json("backup", "create", "--to", str(dest))
    victim = max(manifest(dest, first["backup_id"]).objects, key=lambda o: o.size)
    assert victim.size > SAMPLE_WHOLE_BYTES
    flip_a_byte(store_path(dest, victim.sha256), at=0)  # the first block is always sampled

    second = ok_json("backup", "create", "--to", str(dest))

    assert second["healed_objects"] == 1
    assert ok_json("backup", "verify", str(dest))["ok"]
    # a sound large object passes its sample: reused, not copied again
    third = ok_json("backup", "create", "--to", str(dest))
    assert third["copied_objects"] == 0 and third["healed_objects"] == 0


def test_an_unchanged_lakehouse_with_a_sound_store_still_copies_nothing(
    lh: Lakehouse, dest: Path
) -> None:
    ok_json("backup", "create", "--to", str(dest))
    again = ok_json("backup", "create", "--to", str(dest))
    assert again["copied_objects"] == 0 and again["healed_objects"] == 0


def test_verify_names_the_backups_sharing_a_damaged_object_and_repair_heals_them(
    lh: Lakehouse, dest: Path
) -> None:
    first = ok_json("backup", "create", "--to", str(dest))
    second = ok_json("backup", "create", "--to", str(dest))
    victim = data_object(manifest(dest, first["backup_id"]))
    flip_a_byte(store_path(dest, victim.sha256))

    report = failed_json("backup", "verify", str(dest), "--id", first["backup_id"])
    (problem,) = report["problems"]
    assert problem["object"] == victim.uri and problem["sha256"] == victim.sha256
    assert problem["shared_with"] == [second["backup_id"]]
    text = run("backup", "verify", str(dest), "--id", first["backup_id"])
    assert f"shared with backup(s) {second['backup_id']}" in text.stdout
    assert "shared with 1 other backup(s)" in text.stderr

    repaired = ok_json("backup", "verify", str(dest), "--id", first["backup_id"], "--repair")

    assert repaired["ok"] and repaired["problems"] == []
    assert repaired["repaired"] == [
        {
            "sha256": victim.sha256,
            "objects": [victim.uri],
            "source": victim.uri,
            "shared_with": [second["backup_id"]],
        }
    ]
    assert ok_json("backup", "verify", str(dest), "--id", second["backup_id"])["ok"]


def test_a_damaged_object_without_a_good_source_copy_is_reported_not_repaired(
    lh: Lakehouse, dest: Path
) -> None:
    first = ok_json("backup", "create", "--to", str(dest))
    victim = data_object(manifest(dest, first["backup_id"]))
    flip_a_byte(store_path(dest, victim.sha256))
    flip_a_byte(Path(victim.uri.removeprefix("file://")))  # the lakehouse's copy is bad too
    damaged = store_path(dest, victim.sha256).read_bytes()

    report = failed_json("backup", "verify", str(dest), "--repair")

    assert report["repaired"] == []
    (problem,) = report["problems"]
    assert problem["object"] == victim.uri
    assert "fails its sha256 check" in problem["message"]
    assert "not repaired: no good copy in the lakehouse" in problem["message"]
    assert "has other content" in problem["message"]
    assert store_path(dest, victim.sha256).read_bytes() == damaged  # left as it was


def test_a_missing_object_is_repaired_from_the_lakehouse(lh: Lakehouse, dest: Path) -> None:
    ok_json("backup", "create", "--to", str(dest))
    (backup_id,) = [p.name for p in (dest / "backups").iterdir()]
    victim = next(o for o in manifest(dest, backup_id).objects if o.kind == "manifest")
    store_path(dest, victim.sha256).unlink()

    repaired = ok_json("backup", "verify", str(dest), "--repair")

    assert [r["sha256"] for r in repaired["repaired"]] == [victim.sha256]
    assert ok_json("backup", "verify", str(dest))["ok"]
