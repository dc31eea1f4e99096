"""The public surface of `lakehouse.maintenance` is deliberate: changing it fails here."""

from __future__ import annotations

import lakehouse.maintenance
from lakehouse.errors import ConfigError, LakehouseError


def test_all_is_pinned() -> None:
    assert lakehouse.maintenance.__all__ == [
        "Approval",
        "BranchMergeResult",
        "BranchOutcome",
        "CompactResult",
        "ConcurrentChangeError",
        "ExpireResult",
        "GCRefusedError",
        "GCResult",
        "IncompleteWalkError",
        "MaintenanceError",
        "MaintenanceReport",
        "Policies",
        "PolicyError",
        "ProgressEvent",
        "ProgressListener",
        "TableCompaction",
        "TableExpiry",
        "approve_branch",
        "collect_garbage",
        "compact",
        "compact_table",
        "expire_snapshots",
        "load_policies",
        "merge_approved_branches",
        "parse_policies",
        "rewrite_manifests",
        "run_maintenance",
    ]


def test_every_exported_member_exists() -> None:
    for name in lakehouse.maintenance.__all__:
        assert hasattr(lakehouse.maintenance, name), name


def test_errors_are_lakehouse_errors() -> None:
    m = lakehouse.maintenance
    assert issubclass(m.MaintenanceError, LakehouseError)
    assert issubclass(m.PolicyError, ConfigError)
    assert issubclass(m.IncompleteWalkError, m.GCRefusedError)
    assert m.ConcurrentChangeError.transient is True
