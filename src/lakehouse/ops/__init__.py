"""Day-2 operations: backup, restore, the catalog integrity check, disaster recovery.

* :func:`create_backup`, :func:`list_backups`, :func:`verify_backup` — consistent,
  verified, incremental backups of the catalog and every file it references
  (:mod:`lakehouse.ops.backup`);
* :func:`restore_backup` — into an empty lakehouse, verified, all or nothing
  (:mod:`lakehouse.ops.restore`);
* :func:`check` — does every file every reference needs exist, whole? ``repair``
  re-points broken tables on branches (:mod:`lakehouse.ops.check`);
* :func:`pause`, :func:`resume`, :func:`ensure_not_paused`, :func:`replay_points` —
  the disaster-recovery runbook (:mod:`lakehouse.ops.dr`).

Errors are :class:`OpsError` subclasses (:mod:`lakehouse.ops.errors`). The file walker
these share with garbage collection is :mod:`lakehouse.catalog.files`.
"""

from __future__ import annotations

from lakehouse.ops.backup import BackupInfo as BackupInfo
from lakehouse.ops.backup import BackupManifest as BackupManifest
from lakehouse.ops.backup import BackupResult as BackupResult
from lakehouse.ops.backup import VerifyResult as VerifyResult
from lakehouse.ops.backup import create_backup as create_backup
from lakehouse.ops.backup import list_backups as list_backups
from lakehouse.ops.backup import verify_backup as verify_backup
from lakehouse.ops.check import CheckReport as CheckReport
from lakehouse.ops.check import TableReport as TableReport
from lakehouse.ops.check import check as check
from lakehouse.ops.dr import PauseState as PauseState
from lakehouse.ops.dr import ReplayPoint as ReplayPoint
from lakehouse.ops.dr import ensure_not_paused as ensure_not_paused
from lakehouse.ops.dr import pause as pause
from lakehouse.ops.dr import pause_state as pause_state
from lakehouse.ops.dr import replay_points as replay_points
from lakehouse.ops.dr import resume as resume
from lakehouse.ops.errors import BackupCorruptError as BackupCorruptError
from lakehouse.ops.errors import BackupError as BackupError
from lakehouse.ops.errors import BackupFormatError as BackupFormatError
from lakehouse.ops.errors import BackupNotFoundError as BackupNotFoundError
from lakehouse.ops.errors import IntegrityError as IntegrityError
from lakehouse.ops.errors import OpsError as OpsError
from lakehouse.ops.errors import PausedError as PausedError
from lakehouse.ops.errors import SourceIncompleteError as SourceIncompleteError
from lakehouse.ops.errors import TargetNotEmptyError as TargetNotEmptyError
from lakehouse.ops.restore import RestoreResult as RestoreResult
from lakehouse.ops.restore import restore_backup as restore_backup

__all__ = [
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
