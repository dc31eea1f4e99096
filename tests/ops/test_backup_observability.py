"""Backups record their size, duration, copied bytes and the age of the last verified one."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.client import Lakehouse
from lakehouse.ops.backup import create_backup, verify_backup
from tests.metrics_helpers import fresh_metrics, sample
from tests.ops.test_backup_heal import data_object, dest, flip_a_byte, lh, manifest, store_path

__all__ = ["dest", "fresh_metrics", "lh"]
pytestmark = pytest.mark.usefixtures("fresh_metrics")


def test_create_and_verify_record_the_backup(lh: Lakehouse, dest: Path) -> None:
    created = create_backup(lh, str(dest))
    where = {"destination": dest.resolve().as_uri()}
    assert sample("lakehouse_backup_bytes", **where) == created.bytes > 0
    assert sample("lakehouse_backup_copied_bytes_total", **where) == created.copied_bytes > 0
    assert sample("lakehouse_backup_duration_seconds", **where, operation="create") == (
        pytest.approx(created.seconds)
    )
    assert sample("lakehouse_backup_last_success_timestamp_seconds", **where)
    assert sample("lakehouse_backup_last_verified_timestamp_seconds", **where) is None

    verified = verify_backup(str(dest), settings=lh.settings)
    assert verified.ok
    created_at = manifest(dest, created.backup_id).created_at.timestamp()
    assert sample("lakehouse_backup_last_verified_timestamp_seconds", **where) == created_at
    assert sample("lakehouse_backup_duration_seconds", **where, operation="verify") is not None


def test_a_backup_that_does_not_verify_is_counted_and_does_not_count_as_verified(
    lh: Lakehouse, dest: Path
) -> None:
    created = create_backup(lh, str(dest))
    flip_a_byte(store_path(dest, data_object(manifest(dest, created.backup_id)).sha256))
    assert not verify_backup(str(dest), settings=lh.settings).ok
    where = {"destination": dest.resolve().as_uri()}
    assert sample("lakehouse_backup_verify_failures_total", **where) == 1
    assert sample("lakehouse_backup_last_verified_timestamp_seconds", **where) is None
