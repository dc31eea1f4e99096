"""Row-level writes to Iceberg tables: upserts and deletes that cost what they change.

* :func:`upsert` / :func:`delete_rows` — by key, one snapshot, merge-on-read (position
  delete files) or copy-on-write as the table's ``write.*.mode`` says;
* :class:`RowDelta` — the snapshot builder underneath (data files + position deletes);
* :data:`DEFAULT_TABLE_PROPERTIES` — what tables the lakehouse creates say about it.

Nothing here knows the versioned catalog: these functions take a PyIceberg
:class:`~pyiceberg.table.Table` of any catalog and commit through it.
"""

from __future__ import annotations

from lakehouse.tables.errors import RowDeltaConflictError as RowDeltaConflictError
from lakehouse.tables.errors import RowLevelWriteError as RowLevelWriteError
from lakehouse.tables.errors import UpsertKeyError as UpsertKeyError
from lakehouse.tables.rowdelta import RowDelta as RowDelta
from lakehouse.tables.rowdelta import RowDeltaSummary as RowDeltaSummary
from lakehouse.tables.upsert import COPY_ON_WRITE as COPY_ON_WRITE
from lakehouse.tables.upsert import MERGE_ON_READ as MERGE_ON_READ
from lakehouse.tables.upsert import UpsertResult as UpsertResult
from lakehouse.tables.upsert import delete_rows as delete_rows
from lakehouse.tables.upsert import upsert as upsert
from lakehouse.tables.upsert import write_mode as write_mode

#: Table properties of every table the lakehouse creates: merge-on-read row-level writes,
#: and row groups small enough that reading the rows an upsert replaces stays cheap.
DEFAULT_TABLE_PROPERTIES: dict[str, str] = {
    "write.delete.mode": MERGE_ON_READ,
    "write.update.mode": MERGE_ON_READ,
    "write.merge.mode": MERGE_ON_READ,
    "write.parquet.row-group-limit": "32768",
}

__all__ = [
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
