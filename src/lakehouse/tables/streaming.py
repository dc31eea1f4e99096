"""Appending a stream of Arrow record batches to an Iceberg table in bounded memory.

PyIceberg's ``Transaction.append(pa.Table)`` needs the whole result in memory (and
bin-packs it into files of ``write.target-file-size-bytes``, counted in Arrow bytes);
its ``RecordBatchReader`` path still buffers a whole file's worth (512 MB by default).
Here a stream of batches is written as it comes:

* batches are gathered until they fill one Parquet row group (the table's
  ``write.parquet.row-group-limit`` rows, or :data:`ROW_GROUP_BYTES` of Arrow data,
  whichever comes first), converted to the table's schema (field ids, as PyIceberg's
  own writer does) and written;
* a data file is closed once it holds ``write.target-file-size-bytes`` of Arrow data
  (the same measure PyIceberg uses), and the next batch opens a new one;

so memory holds one row group, whatever the size of the stream.
:func:`append_batches` adds the files to the transaction's append snapshot (one
snapshot, one commit with the rest of the transaction); :func:`write_data_files` only
writes them (the caller commits). Partitioned tables fall back to PyIceberg's own
writer per row group (one or more files per partition and group).

Files written for a transaction that never commits are unreferenced: the garbage
collector removes them (as for any failed write).
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from pyiceberg.io import FileIO, OutputFile
    from pyiceberg.io.fileformat import FileFormatWriter
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Transaction
    from pyiceberg.table.metadata import TableMetadata

#: Most Arrow bytes gathered for one row group before it is written.
ROW_GROUP_BYTES = 64 * 1024**2


def _target_file_bytes(properties: Mapping[str, str]) -> int:
    from pyiceberg.table import TableProperties
    from pyiceberg.utils.properties import property_as_int

    value = property_as_int(
        properties=dict(properties),
        property_name=TableProperties.WRITE_TARGET_FILE_SIZE_BYTES,
        default=TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT,
    )
    return int(value or TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT)


def _row_group_rows(properties: Mapping[str, str]) -> int:
    from pyiceberg.table import TableProperties
    from pyiceberg.utils.properties import property_as_int

    value = property_as_int(
        properties=dict(properties),
        property_name=TableProperties.PARQUET_ROW_GROUP_LIMIT,
        default=TableProperties.PARQUET_ROW_GROUP_LIMIT_DEFAULT,
    )
    return int(value or TableProperties.PARQUET_ROW_GROUP_LIMIT_DEFAULT)


def row_groups(
    batches: Iterable[pa.RecordBatch], *, rows: int, max_bytes: int = ROW_GROUP_BYTES
) -> Iterator[pa.Table]:
    """``batches`` regrouped into tables of ``rows`` rows (fewer at the end, or when
    ``max_bytes`` of Arrow data come first); empty batches are skipped."""
    buffer: list[pa.RecordBatch] = []
    count = size = 0
    for batch in batches:
        while batch.num_rows:
            take = batch if count + batch.num_rows <= rows else batch.slice(0, rows - count)
            buffer.append(take)
            count += take.num_rows
            size += take.nbytes
            batch = batch.slice(take.num_rows)
            if count >= rows or size >= max_bytes:
                yield pa.Table.from_batches(buffer)
                buffer, count, size = [], 0, 0
    if buffer:
        yield pa.Table.from_batches(buffer)


def write_data_files(
    metadata: TableMetadata,
    io: FileIO,
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    *,
    write_uuid: uuid.UUID | None = None,
    counter: itertools.count[int] | None = None,
) -> Iterator[DataFile]:
    """Write ``batches`` (of Arrow ``schema``) as data files of the table ``metadata``
    describes; yield each file once closed (see the module docstring)."""
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    write_uuid = write_uuid or uuid.uuid4()
    counter = counter or itertools.count(0)
    groups = row_groups(batches, rows=_row_group_rows(metadata.properties))
    if not metadata.spec().is_unpartitioned():
        for group in groups:
            yield from _dataframe_to_data_files(
                table_metadata=metadata, df=group, io=io, write_uuid=write_uuid, counter=counter
            )
        return
    yield from _rolling(metadata, io, groups, schema, write_uuid, counter)


def _rolling(
    metadata: TableMetadata,
    io: FileIO,
    groups: Iterator[pa.Table],
    schema: pa.Schema,
    write_uuid: uuid.UUID,
    counter: itertools.count[int],
) -> Iterator[DataFile]:
    """Unpartitioned: row groups into files of about the target size (Arrow bytes)."""
    from pyiceberg.io.fileformat import FileFormatFactory
    from pyiceberg.io.pyarrow import _to_requested_schema, pyarrow_to_schema
    from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
    from pyiceberg.schema import sanitize_column_names
    from pyiceberg.table import DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE
    from pyiceberg.table.locations import load_location_provider
    from pyiceberg.typedef import Record
    from pyiceberg.utils.config import Config

    downcast = Config().get_bool(DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE) or False
    table_schema = metadata.schema()
    file_schema = sanitize_column_names(table_schema)
    task_schema = pyarrow_to_schema(
        schema,
        name_mapping=table_schema.name_mapping,
        downcast_ns_timestamp_to_us=downcast,
        format_version=metadata.format_version,
    )
    model = FileFormatFactory.get(FileFormat.PARQUET)
    provider = load_location_provider(metadata.location, metadata.properties)
    target = _target_file_bytes(metadata.properties)

    def close(writer: FileFormatWriter, output: OutputFile, path: str) -> DataFile:
        statistics = writer.close()
        return DataFile.from_args(
            content=DataFileContent.DATA,
            file_path=path,
            file_format=FileFormat.PARQUET,
            partition=Record(),
            file_size_in_bytes=len(output),
            sort_order_id=None,
            spec_id=metadata.default_spec_id,
            equality_ids=None,
            key_metadata=None,
            **statistics.to_serialized_dict(),
        )

    current: tuple[FileFormatWriter, OutputFile, str] | None = None
    written = 0
    try:
        for group in groups:
            converted = pa.Table.from_batches(
                [
                    _to_requested_schema(
                        requested_schema=file_schema,
                        file_schema=task_schema,
                        batch=batch,
                        downcast_ns_timestamp_to_us=downcast,
                        include_field_ids=True,
                        format_model=model,
                    )
                    for batch in group.to_batches()
                ]
            )
            if current is None:
                name = f"00000-{next(counter)}-{write_uuid}.{model.file_extension()}"
                path = provider.new_data_location(data_file_name=name)
                output = io.new_output(path)
                current = (
                    model.create_writer(output, file_schema, metadata.properties),
                    output,
                    path,
                )
                written = 0
            current[0].write(converted)
            written += group.nbytes
            del converted, group
            if written >= target:
                done, current = close(*current), None
                yield done
        if current is not None:
            done, current = close(*current), None
            yield done
    finally:
        if current is not None:  # the stream failed: drop the half-written file
            with contextlib.suppress(Exception):
                current[0].close()
            with contextlib.suppress(OSError):
                io.delete(current[2])


def append_batches(
    tx: Transaction,
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    *,
    snapshot_properties: Mapping[str, str] | None = None,
) -> int:
    """Append ``batches`` (of Arrow ``schema``) to the table of ``tx`` as one append
    snapshot, writing them as they come; returns the rows written.

    Like ``Transaction.append``: the schema must be compatible with the table's (evolve
    it first in the same transaction), and nothing is visible before the transaction
    commits.
    """
    from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible
    from pyiceberg.table import DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE
    from pyiceberg.utils.config import Config

    metadata = tx.table_metadata
    downcast = Config().get_bool(DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE) or False
    _check_pyarrow_schema_compatible(
        metadata.schema(),
        provided_schema=schema,
        downcast_ns_timestamp_to_us=downcast,
        format_version=metadata.format_version,
    )
    rows = 0

    def counted() -> Iterator[pa.RecordBatch]:
        nonlocal rows
        for batch in batches:
            rows += batch.num_rows
            yield batch

    with tx._append_snapshot_producer(dict(snapshot_properties or {})) as append:
        for data_file in write_data_files(
            metadata, tx._table.io, counted(), schema, write_uuid=append.commit_uuid
        ):
            append.append_data_file(data_file)
    return rows


def append_data_files(
    tx: Transaction,
    data_files: Iterable[DataFile],
    *,
    snapshot_properties: Mapping[str, str] | None = None,
) -> None:
    """Add data files already written for the table of ``tx`` (:func:`write_data_files`
    with the transaction's metadata) as one append snapshot of ``tx``."""
    with tx._append_snapshot_producer(dict(snapshot_properties or {})) as append:
        for data_file in data_files:
            append.append_data_file(data_file)


def delete_files(io: FileIO, data_files: Iterable[DataFile]) -> None:
    """Remove files written for a write that is certain not to commit (best effort)."""
    for data_file in data_files:
        with contextlib.suppress(OSError):  # else left for the garbage collector
            io.delete(data_file.file_path)


__all__ = [
    "ROW_GROUP_BYTES",
    "append_batches",
    "append_data_files",
    "delete_files",
    "row_groups",
    "write_data_files",
]
