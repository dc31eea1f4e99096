"""The public surface of `lakehouse.tables` is deliberate: changing it fails here."""

from __future__ import annotations

import lakehouse.tables
from lakehouse.errors import LakehouseError


def test_all_is_pinned() -> None:
    assert lakehouse.tables.__all__ == [
        "COPY_ON_WRITE",
        "DEFAULT_TABLE_PROPERTIES",
        "MERGE_ON_READ",
        "RowDelta",
        "RowDeltaConflictError",
        "RowDeltaSummary",
        "RowLevelWriteError",
        "UpsertKeyError",
        "UpsertResult",
        "delete_rows",
        "upsert",
        "write_mode",
    ]


def test_every_export_exists_and_errors_share_the_root() -> None:
    for name in lakehouse.tables.__all__:
        assert hasattr(lakehouse.tables, name), name
    assert issubclass(lakehouse.tables.RowLevelWriteError, LakehouseError)
    assert issubclass(lakehouse.tables.UpsertKeyError, ValueError)
    assert lakehouse.tables.RowDeltaConflictError.transient
