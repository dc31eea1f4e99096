"""Backup and restore of a lakehouse whose catalog is on PostgreSQL (integration tier)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lakehouse.client import connect
from lakehouse.config import Settings
from lakehouse.ops import TargetNotEmptyError, create_backup, restore_backup, verify_backup
from lakehouse.ops.backup import MANIFEST_NAME, PG_DUMP_NAME, BackupManifest
from tests.ops.helpers import build_rich_lakehouse, snapshot_state

pytestmark = pytest.mark.integration


def test_postgres_catalog_round_trip_with_pg_dump(
    fresh_postgres_url: str, second_postgres_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    source = Settings(home=home, catalog={"uri": fresh_postgres_url})
    lh = build_rich_lakehouse(home, source)
    before = snapshot_state(lh)
    dest = tmp_path / "backups"
    result = create_backup(lh, str(dest))
    lh.close()

    (artifact,) = result.artifacts
    assert artifact["kind"] == "pg_dump" and artifact["path"] == PG_DUMP_NAME, artifact
    folder = dest / "backups" / result.backup_id
    listing = subprocess.run(
        ["pg_restore", "--list", str(folder / PG_DUMP_NAME)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "TABLE DATA public lh_commits" in listing
    manifest = BackupManifest.loads((folder / MANIFEST_NAME).read_bytes())
    assert "lakehouse:***@" in manifest.source["catalog"]  # no password in the manifest
    assert verify_backup(str(dest)).ok

    # a non-empty PostgreSQL target is refused
    with pytest.raises(TargetNotEmptyError):
        restore_backup(str(dest), source)

    # disaster: the warehouse is gone; restore into a new database, same warehouse locations
    shutil.rmtree(home / "warehouse")
    target = Settings(home=home, catalog={"uri": second_postgres_url})
    restored = restore_backup(str(dest), target)
    assert restored.check.ok
    with connect(settings=target) as again:
        assert snapshot_state(again) == before
