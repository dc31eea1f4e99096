"""Maintenance records what it did: snapshots expired, files compacted and collected, failures."""

from __future__ import annotations

import pytest

from lakehouse.client import Lakehouse
from lakehouse.maintenance import GCRefusedError, collect_garbage, compact, expire_snapshots
from lakehouse.ops.dr import pause, resume
from lakehouse.ops.errors import PausedError
from tests.metrics_helpers import fresh_metrics, sample

from .conftest import aggressive, make_table

__all__ = ["fresh_metrics"]
pytestmark = pytest.mark.usefixtures("fresh_metrics")


def test_compaction_expiry_and_gc_record_what_they_committed(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 6)
    policies = aggressive()

    assert compact(lh, "main", policies=policies, dry_run=True).files_rewritten > 0
    assert sample("lakehouse_maintenance_files_compacted_total", ref="main") is None  # dry run

    compacted = compact(lh, "main", policies=policies)
    expired = expire_snapshots(lh, "main", policies=policies)
    collected = collect_garbage(lh, policies=policies)

    assert compacted.files_rewritten == 6
    assert sample("lakehouse_maintenance_files_compacted_total", ref="main") == 6
    assert expired.expired > 0
    assert sample("lakehouse_maintenance_snapshots_expired_total", ref="main") == expired.expired
    assert collected.deleted.files > 0 and not collected.failed
    job = {"job": "lakehouse"}
    assert sample("lakehouse_maintenance_gc_files_deleted_total", **job) == collected.deleted.files
    reclaimed = sample("lakehouse_maintenance_gc_bytes_reclaimed_total", **job)
    assert reclaimed == collected.deleted.bytes > 0
    assert sample("lakehouse_maintenance_last_gc_timestamp_seconds", outcome="success")
    assert sample("lakehouse_maintenance_gc_failures_total", stage="run") is None


def test_a_refused_collection_counts_as_a_gc_failure_but_a_dry_run_or_a_pause_does_not(
    lh: Lakehouse,
) -> None:
    make_table(lh, "bronze.orders", 2)
    disabled = aggressive(gc={"enabled": False})
    with pytest.raises(GCRefusedError):
        collect_garbage(lh, policies=disabled, dry_run=True)
    assert sample("lakehouse_maintenance_gc_failures_total", stage="run") is None

    with pytest.raises(GCRefusedError):
        collect_garbage(lh, policies=disabled)
    assert sample("lakehouse_maintenance_gc_failures_total", stage="run") == 1
    assert sample("lakehouse_maintenance_last_gc_timestamp_seconds", outcome="failed")

    pause(lh, reason="restore drill")
    try:
        with pytest.raises(PausedError):
            collect_garbage(lh, policies=aggressive())
    finally:
        resume(lh)
    assert sample("lakehouse_maintenance_gc_failures_total", stage="run") == 1
