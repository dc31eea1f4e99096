"""Backup to S3 and restore of a lakehouse on S3 + PostgreSQL (integration tier, MinIO)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from lakehouse.client import connect
from lakehouse.config import Settings
from lakehouse.errors import StorageError
from lakehouse.ops import create_backup, list_backups, restore_backup, verify_backup
from lakehouse.storage import BUCKETS
from tests.ops.helpers import build_rich_lakehouse, snapshot_state, sql_answers

pytestmark = pytest.mark.integration


@pytest.fixture
def s3(s3_settings: dict[str, str]) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        endpoint_override=s3_settings["endpoint"],
        access_key=s3_settings["access_key_id"],
        secret_key=s3_settings["secret_access_key"],
        region="us-east-1",
        force_virtual_addressing=False,
    )


@pytest.fixture
def prefix(s3: pafs.S3FileSystem) -> Iterator[str]:
    """A fresh prefix in every bucket (the buckets are shared); deleted afterwards."""
    name = f"ops-test-{uuid.uuid4().hex[:8]}"
    yield name
    for folder in [*(f"{bucket}/{name}" for bucket in BUCKETS), f"iceberg-metadata/{name}-backups"]:
        with contextlib.suppress(FileNotFoundError, OSError):
            s3.delete_dir(folder)


def settings_for(home: Path, catalog: str, prefix: str, s3: dict[str, str]) -> Settings:
    return Settings(
        profile="cluster",
        home=home,
        catalog={"uri": catalog},
        warehouse=f"s3://{{bucket}}/{prefix}",
        s3=s3,
    )


def test_backup_to_s3_and_restore_into_a_new_cluster(
    fresh_postgres_url: str,
    second_postgres_url: str,
    s3_settings: dict[str, str],
    s3: pafs.S3FileSystem,
    prefix: str,
    tmp_path: Path,
) -> None:
    source = settings_for(tmp_path / "a", fresh_postgres_url, prefix, s3_settings)
    lh = build_rich_lakehouse(tmp_path / "a", source)
    before = snapshot_state(lh)
    answers = sql_answers(lh)
    dest = f"s3://iceberg-metadata/{prefix}-backups"  # outside the warehouse's prefix

    first = create_backup(lh, dest)
    assert first.raw_objects == 5 and first.skipped_raw == 1
    again = create_backup(lh, dest)
    assert again.copied_objects == 0
    assert [b.complete for b in list_backups(dest, source)] == [True, True]
    assert verify_backup(dest, settings=source).ok
    lh.close()

    # the disaster: every bucket's files of this lakehouse are gone; a new catalog database
    for bucket in BUCKETS:
        with contextlib.suppress(FileNotFoundError):  # gold holds nothing
            s3.delete_dir(f"{bucket}/{prefix}")

    target = settings_for(tmp_path / "b", second_postgres_url, prefix, s3_settings)
    wrong = settings_for(
        tmp_path / "b", second_postgres_url, prefix, {**s3_settings, "secret_access_key": "x"}
    )
    with pytest.raises(StorageError, match="s3://"):
        restore_backup(dest, wrong)

    restored = restore_backup(dest, target)
    assert restored.check.ok
    with connect(settings=target) as again_lh:
        assert snapshot_state(again_lh) == before
        assert sql_answers(again_lh) == answers
