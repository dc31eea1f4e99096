"""Fixtures of the query tests: a fresh embedded lakehouse and small Iceberg tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestWriterV2,
    write_manifest_list,
)
from pyiceberg.table import Table
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, Summary
from pyiceberg.table.update import AddSnapshotUpdate, AssertRefSnapshotId, SetSnapshotRefUpdate
from pyiceberg.typedef import Record

from lakehouse.client import Lakehouse, connect


@pytest.fixture
def lh(tmp_path: Path) -> Iterator[Lakehouse]:
    """A new embedded lakehouse in ``tmp_path/home``."""
    with connect(tmp_path / "home", create=True) as opened:
        yield opened


def orders(ids: list[int], region: str = "EU") -> pa.Table:
    """A few order rows."""
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "region": pa.array([region] * len(ids), pa.string()),
            "amount": pa.array([float(i) * 1.5 for i in ids], pa.float64()),
        }
    )


def make_table(lh: Lakehouse, name: str, data: pa.Table, branch: str = "main") -> Table:
    """Create ``name`` on ``branch`` (and its namespace) holding ``data``."""
    catalog = lh.catalog(branch)
    namespace = name.split(".")[0]
    if not catalog.namespace_exists(namespace):
        catalog.create_namespace(namespace)
    table = catalog.create_table(name, schema=data.schema)
    table.append(data)
    return catalog.load_table(name)


class _DeleteManifestWriter(ManifestWriterV2):
    """A v2 manifest writer for delete files (PyIceberg only writes data manifests)."""

    def content(self) -> ManifestContent:
        return ManifestContent.DELETES

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes"}


def add_delete_file(
    table: Table,
    rows: pa.Table,
    content: DataFileContent,
    equality_ids: list[int] | None = None,
) -> Table:
    """Commit a merge-on-read delete file holding ``rows`` on the table's branch.

    Positional deletes: ``rows`` has ``file_path`` and ``pos``. Equality deletes: ``rows``
    has the equality columns (named as in the table; field ids from the table schema).
    """
    io = table.io
    metadata = table.metadata
    parent = table.current_snapshot()
    assert parent is not None
    location = metadata.location.rstrip("/")
    if content == DataFileContent.POSITION_DELETES:
        schema = pa.schema(
            [
                pa.field("file_path", pa.string(), False, {b"PARQUET:field_id": b"2147483546"}),
                pa.field("pos", pa.int64(), False, {b"PARQUET:field_id": b"2147483545"}),
            ]
        )
    else:
        iceberg = table.schema()
        schema = pa.schema(
            [
                pa.field(
                    name,
                    rows.schema.field(name).type,
                    True,
                    {b"PARQUET:field_id": str(iceberg.find_field(name).field_id).encode()},
                )
                for name in rows.column_names
            ]
        )
    path = f"{location}/data/delete-{uuid.uuid4().hex}.parquet"
    with io.new_output(path).create() as stream:
        pq.write_table(rows.cast(schema), stream)
    size = len(io.new_input(path))
    delete_file = DataFile.from_args(
        _table_format_version=2,
        content=content,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=rows.num_rows,
        file_size_in_bytes=size,
        equality_ids=equality_ids,
    )
    delete_file.spec_id = metadata.default_spec_id
    snapshot_id = abs(uuid.uuid4().int) % (2**62)
    sequence_number = metadata.next_sequence_number()
    manifest_path = f"{location}/metadata/{uuid.uuid4().hex}-m0.avro"
    writer = _DeleteManifestWriter(
        metadata.spec(), metadata.schema(), io.new_output(manifest_path), snapshot_id, "null"
    )
    with writer:
        writer.add_entry(
            ManifestEntry.from_args(
                status=ManifestEntryStatus.ADDED,
                snapshot_id=snapshot_id,
                sequence_number=None,
                file_sequence_number=None,
                data_file=delete_file,
            )
        )
    manifests = [*parent.manifests(io), writer.to_manifest_file()]
    list_path = f"{location}/metadata/snap-{snapshot_id}-{uuid.uuid4().hex}.avro"
    with write_manifest_list(
        format_version=2,
        output_file=io.new_output(list_path),
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent.snapshot_id,
        sequence_number=sequence_number,
        avro_compression="null",
    ) as list_writer:
        list_writer.add_manifests(manifests)
    snapshot = Snapshot(
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent.snapshot_id,
        sequence_number=sequence_number,
        timestamp_ms=parent.timestamp_ms + 1,
        manifest_list=list_path,
        summary=Summary(Operation.DELETE),
        schema_id=metadata.current_schema_id,
    )
    table.catalog.commit_table(
        table,
        (AssertRefSnapshotId(ref="main", snapshot_id=parent.snapshot_id),),
        (
            AddSnapshotUpdate(snapshot=snapshot),
            SetSnapshotRefUpdate(
                ref_name="main", type=SnapshotRefType.BRANCH, snapshot_id=snapshot_id
            ),
        ),
    )
    return table.catalog.load_table(table.name())


#: One column of every DuckDB type a query can return, as ``expression AS name``: the
#: values a result holds must not depend on whether the statement read a table.
EVERY_TYPE: tuple[str, ...] = (
    "1::TINYINT AS tinyint",
    "-2::SMALLINT AS smallint",
    "3::INTEGER AS integer",
    "9007199254740993::BIGINT AS bigint",
    "170141183460469231731687303715884105727::HUGEINT AS hugeint",
    "5::HUGEINT AS small_hugeint",
    "255::UTINYINT AS utinyint",
    "65535::USMALLINT AS usmallint",
    "4294967295::UINTEGER AS uinteger",
    "18446744073709551615::UBIGINT AS ubigint",
    "170141183460469231731687303715884105727::UHUGEINT AS uhugeint",
    "0.1::FLOAT AS float",
    "'nan'::DOUBLE AS nan",
    "'-inf'::DOUBLE AS minus_inf",
    "-0.0::DOUBLE AS minus_zero",
    "12.345::DECIMAL(10, 3) AS decimal",
    "123456789012345678901234567.8::DECIMAL(38, 1) AS long_decimal",
    "NULL::DECIMAL(4, 2) AS null_decimal",
    "E'tab\\there\\nline ünï' AS varchar",
    """'{"a": [1, 2]}'::JSON AS json""",
    "'\\x00\\xFFab'::BLOB AS blob",
    "true AS boolean",
    "DATE '2024-02-29' AS date",
    "TIME '01:02:03.5' AS time",
    "TIMETZ '01:02:03+05' AS timetz",
    "TIMESTAMP '2024-01-02 03:04:05.123456' AS timestamp",
    "TIMESTAMP_S '2024-01-02 03:04:05' AS timestamp_s",
    "TIMESTAMP_MS '2024-01-02 03:04:05.123' AS timestamp_ms",
    "TIMESTAMP_NS '2024-01-02 03:04:05.123456' AS timestamp_ns",
    "TIMESTAMPTZ '2024-01-02 03:04:05.123456+02' AS timestamptz",
    "INTERVAL '1 month 2 days 3.5 seconds' AS interval",
    "'6ba7b810-9dad-11d1-80b4-00c04fd430c8'::UUID AS uuid",
    "'b'::ENUM('a', 'b') AS enum",
    "'101'::BIT AS bit",
    "123456789012345678901234567890::BIGNUM AS bignum",
    "[1, NULL, 3] AS list",
    "[1, 2]::INTEGER[2] AS array",
    "[[1.5::DECIMAL(4, 1)], NULL] AS nested_list",
    "{'x': 1, 'y': [2, 3], 'z': {'h': 7::HUGEINT}} AS struct",
    "MAP {'k': 1, 'n': NULL} AS map",
    "MAP {[1, 2]: 'list key'} AS map_list_key",
    "[MAP {1: 2::UHUGEINT}] AS list_of_maps",
    "[INTERVAL 1 DAY] AS list_of_intervals",
    "union_value(num := 2)::UNION(num INTEGER, txt VARCHAR) AS union",
    "NULL::INTEGER AS null_integer",
    "NULL AS null",
)
