"""Manifest writers: PyIceberg's files, byte for byte, with the layout derived once."""

from __future__ import annotations

import io
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.avro.encoder import BinaryEncoder
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestWriterV2,
)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.typedef import Record
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FixedType,
    FloatType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
    UUIDType,
)

from lakehouse.tables.manifests import ManifestWriter, compiled

TYPES = (
    ("b", BooleanType(), True),
    ("l", LongType(), -(2**40)),
    ("s", StringType(), "ünïcode"),
    ("f", FloatType(), 1.5),
    ("d", DoubleType(), -2.25),
    ("dec", DecimalType(9, 2), Decimal("1234.56")),
    ("u", UUIDType(), uuid.UUID(int=7)),
    ("fx", FixedType(3), b"abc"),
    ("bin", BinaryType(), b"\x00\xff"),
    ("day", DateType(), 19_000),
)
SCHEMA = Schema(
    *(NestedField(i + 1, name, t, required=False) for i, (name, t, _) in enumerate(TYPES)),
    NestedField(len(TYPES) + 1, "ts", TimestampType(), required=False),
)
SPEC = PartitionSpec(
    *(
        PartitionField(i + 1, 1000 + i, IdentityTransform(), f"{name}_p")
        for i, (name, _, _) in enumerate(TYPES)
    ),
    PartitionField(len(TYPES) + 1, 1000 + len(TYPES), DayTransform(), "ts_day"),
)


def entry(n: int, *, nulls: bool) -> ManifestEntry:
    """An entry using every kind of value the manifest schema has, or nulls where it can."""
    values: list[Any] = [None if nulls else v for _, _, v in TYPES]
    values.append(None if nulls else n)
    data_file = DataFile.from_args(
        _table_format_version=2,
        content=DataFileContent.EQUALITY_DELETES if nulls else DataFileContent.DATA,
        file_path=f"s3://bronze/t/data/{n:05d}-ü.parquet",
        file_format=FileFormat.PARQUET,
        partition=Record(*values),
        record_count=n * 1_000_003,
        file_size_in_bytes=2**33 + n,
        column_sizes={} if nulls else {1: 10, 2: 2**31},
        value_counts={1: n},
        null_value_counts={1: 0, 3: 5},
        nan_value_counts={},
        lower_bounds={} if nulls else {2: b"\x01" * 8},
        upper_bounds={2: b"\xff" * 8},
        key_metadata=None if nulls else b"key",
        split_offsets=None if nulls else [4, 2**20],
        equality_ids=[1, 2] if nulls else None,
        sort_order_id=None if nulls else 0,
    )
    data_file.spec_id = 0
    return ManifestEntry.from_args(
        status=ManifestEntryStatus.EXISTING if nulls else ManifestEntryStatus.ADDED,
        snapshot_id=None if nulls else 5_000_000_000 + n,
        sequence_number=n,
        file_sequence_number=None if nulls else n,
        data_file=data_file,
    )


ENTRIES = [entry(n, nulls=n % 3 == 0) for n in range(12)]


def test_the_compiled_encoder_gives_pyiceberg_s_bytes_for_every_kind_of_value(
    tmp_path: Path,
) -> None:
    output = PyArrowFileIO().new_output(str(tmp_path / "m.avro"))
    layout = ManifestWriter(SPEC, SCHEMA, output, 1, "null")._laid_out()
    for e in ENTRIES:
        theirs = io.BytesIO()
        layout.writer.write(BinaryEncoder(theirs), e)
        ours = bytearray()
        compiled(layout.writer)(ours, e)
        assert bytes(ours) == theirs.getvalue()


@pytest.mark.parametrize("codec", ["null", "deflate", "zstd"])
def test_a_manifest_reads_back_as_the_one_pyiceberg_writes(tmp_path: Path, codec: str) -> None:
    io_ = PyArrowFileIO()
    written = {}
    for name, cls in (("ours", ManifestWriter), ("theirs", ManifestWriterV2)):
        with cls(SPEC, SCHEMA, io_.new_output(str(tmp_path / f"{name}.avro")), 1, codec) as w:  # type: ignore[abstract]
            for e in ENTRIES:
                w.add_entry(e)
        written[name] = w.to_manifest_file()
    ours, theirs = (written[n].fetch_manifest_entry(io_, discard_deleted=False) for n in written)
    assert [e.data_file.file_path for e in ours] == [e.data_file.file_path for e in ENTRIES]
    assert ours == theirs
    assert written["ours"].added_files_count == written["theirs"].added_files_count
