"""The code path for object stores (S3): streamed copies, direct writes, rollback by delete.

No S3 server runs in the fast tier, so the local file system stands in for one: every
location is treated as non-local, which sends backup, verify and restore through the
pyarrow streaming code used for ``s3://`` (no renames, no staging folders, restored
objects written in place and deleted again on failure).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lakehouse.client import Lakehouse, connect
from lakehouse.ops import BackupCorruptError, create_backup, restore_backup, verify_backup
from lakehouse.ops.backup import MANIFEST_NAME, BackupManifest
from lakehouse.storage.objects import Location
from tests.ops.helpers import snapshot_state


@pytest.fixture
def as_object_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Location, "is_local", property(lambda self: False))


def test_backup_verify_restore_through_the_object_store_path(
    rich_lakehouse: Lakehouse, home: Path, tmp_path: Path, as_object_store: None
) -> None:
    before = snapshot_state(rich_lakehouse)
    dest = tmp_path / "backups"
    first = create_backup(rich_lakehouse, str(dest))
    assert create_backup(rich_lakehouse, str(dest)).copied_objects == 0
    assert verify_backup(str(dest)).ok
    settings = rich_lakehouse.settings
    rich_lakehouse.close()
    shutil.rmtree(home)

    # a damaged object: the restore fails and deletes every object it wrote
    (folder,) = [p for p in (dest / "backups").iterdir() if p.name == first.backup_id]
    manifest = BackupManifest.loads((folder / MANIFEST_NAME).read_bytes())
    victim = max(manifest.objects, key=lambda o: o.uri)
    path = dest / "objects" / victim.sha256[:2] / victim.sha256
    good = path.read_bytes()
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(BackupCorruptError, match="sha256"):
        restore_backup(str(dest), settings, backup_id=first.backup_id, workers=1)
    assert not [p for p in home.rglob("*") if p.is_file()]

    path.write_bytes(good)
    restore_backup(str(dest), settings, backup_id=first.backup_id)
    with connect(home) as lh:
        assert snapshot_state(lh) == before
