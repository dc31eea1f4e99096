"""The public surface of `lakehouse.ops` is deliberate: changing it fails here."""

from __future__ import annotations

import lakehouse.ops
from lakehouse.errors import LakehouseError


def test_all_is_pinned() -> None:
    assert lakehouse.ops.__all__ == [
        "BackupCorruptError",
        "BackupError",
        "BackupFormatError",
        "BackupInfo",
        "BackupManifest",
        "BackupNotFoundError",
        "BackupResult",
        "CheckReport",
        "IntegrityError",
        "OpsError",
        "PauseState",
        "PausedError",
        "ReplayPoint",
        "RestoreResult",
        "SourceIncompleteError",
        "TableReport",
        "TargetNotEmptyError",
        "VerifyResult",
        "check",
        "create_backup",
        "ensure_not_paused",
        "list_backups",
        "pause",
        "pause_state",
        "replay_points",
        "restore_backup",
        "resume",
        "verify_backup",
    ]


def test_every_member_exists_and_errors_are_lakehouse_errors() -> None:
    for name in lakehouse.ops.__all__:
        member = getattr(lakehouse.ops, name)
        # The DR pause state and its errors are read by every writer below ops (ingest,
        # pipelines, maintenance), so they are defined in those low modules.
        shared = ("lakehouse.control", "lakehouse.errors")
        assert member.__module__.startswith(("lakehouse.ops.", *shared)), name
        if name.endswith("Error"):
            assert issubclass(member, lakehouse.ops.OpsError), name
    assert issubclass(lakehouse.ops.OpsError, LakehouseError)
    assert issubclass(lakehouse.ops.BackupNotFoundError, LookupError)
    assert issubclass(lakehouse.ops.BackupFormatError, ValueError)
