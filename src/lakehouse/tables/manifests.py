"""Format-v2 manifest and manifest-list writers that derive their Avro layout once.

PyIceberg's writers derive, for every file they open, the manifest entry schema of the
table's partition type, the Avro encoder tree that maps it, and the Avro JSON schema of the
file header; and they write every entry as its own compressed Avro block. For a row delta
that is most of the cost of its three small metadata files. The writers here are
PyIceberg's (same entries, same counts, same header metadata), with that layout derived
once per schema and partition spec object and the entries of a file written as one block
when it is closed. Readers see ordinary Avro container files.

The block itself is encoded by :func:`compiled`: PyIceberg's encoder tree, turned once
into plain functions that append to one ``bytearray`` (no encoder object, one method call
per value instead of one per byte). The bytes are PyIceberg's, byte for byte; a writer
kind it does not know is run through PyIceberg's own writer.
"""

from __future__ import annotations

import functools
import io
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from pyiceberg.avro import writer as avro_writer
from pyiceberg.avro.encoder import BinaryEncoder
from pyiceberg.avro.file import AvroOutputFile
from pyiceberg.manifest import ManifestContent, ManifestListWriterV2, ManifestWriterV2

if TYPE_CHECKING:
    from pyiceberg.avro.codecs import AvroCompressionCodec
    from pyiceberg.avro.file import AvroFile
    from pyiceberg.avro.reader import Reader as AvroReader
    from pyiceberg.avro.writer import Writer
    from pyiceberg.io import FileIO, OutputFile
    from pyiceberg.manifest import DataFile, ManifestEntry, ManifestFile
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table.metadata import TableMetadata


@dataclass(frozen=True)
class _Layout:
    """What PyIceberg derives from the schemas each time it opens an Avro file to write."""

    file_schema: Schema
    #: The encoder tree from the record schema to the file schema (holds no state).
    writer: Writer
    #: ``writer`` compiled (:func:`compiled`).
    encode: Encode
    #: The file schema as Avro JSON, for the file header.
    avro_schema: str
    #: Header metadata that depends only on the schema and spec (no codec).
    meta: dict[str, str]


#: Appends the Avro encoding of one value to a buffer.
Encode = Callable[[bytearray, Any], None]


def _put_long(buffer: bytearray, value: int) -> None:
    """Avro int/long: zig-zag, then 7 bits a byte, low bits first."""
    datum = (value << 1) ^ (value >> 63)
    while datum & ~0x7F:
        buffer.append((datum & 0x7F) | 0x80)
        datum >>= 7
    buffer.append(datum)


def _put_bytes(buffer: bytearray, value: bytes) -> None:
    _put_long(buffer, len(value))
    buffer += value


def _put_string(buffer: bytearray, value: str) -> None:
    _put_bytes(buffer, value.encode())


def _put_boolean(buffer: bytearray, value: bool) -> None:
    buffer.append(1 if value else 0)


_LONGS = (
    avro_writer.IntegerWriter,
    avro_writer.DateWriter,
    avro_writer.TimeWriter,
    avro_writer.TimestampWriter,
    avro_writer.TimestampNanoWriter,
    avro_writer.TimestamptzWriter,
    avro_writer.TimestamptzNanoWriter,
)


class _BufferStream(io.RawIOBase):
    """An output stream that appends to a ``bytearray`` (for PyIceberg's own writers)."""

    def __init__(self, buffer: bytearray) -> None:
        self.buffer = buffer

    def write(self, b: Any) -> int:
        self.buffer += b
        return len(b)


def compiled(writer: Writer) -> Encode:
    """``writer`` (a PyIceberg encoder tree) as one function that appends to a buffer.

    Structs, options, lists, maps, ints and longs, strings, binaries and booleans are
    encoded here; any other kind by PyIceberg's writer itself. Same bytes either way.
    """
    if isinstance(writer, _LONGS):
        return _put_long
    if isinstance(writer, avro_writer.StringWriter):
        return _put_string
    if isinstance(writer, avro_writer.BinaryWriter):
        return _put_bytes
    if isinstance(writer, avro_writer.BooleanWriter):
        return _put_boolean
    if isinstance(writer, avro_writer.OptionWriter):
        return _option(compiled(writer.option))
    if isinstance(writer, avro_writer.StructWriter):
        return _struct(tuple((pos, compiled(w)) for pos, w in writer.field_writers))
    if isinstance(writer, avro_writer.ListWriter):
        return _list(compiled(writer.element_writer))
    if isinstance(writer, avro_writer.MapWriter):
        return _map(compiled(writer.key_writer), compiled(writer.value_writer))
    return _by_pyiceberg(writer)


def _option(inner: Encode) -> Encode:
    def encode(buffer: bytearray, value: Any) -> None:
        if value is None:
            buffer.append(0)  # branch 0 (null), zig-zag encoded
        else:
            buffer.append(2)  # branch 1
            inner(buffer, value)

    return encode


def _struct(fields: tuple[tuple[int | None, Encode], ...]) -> Encode:
    def encode(buffer: bytearray, value: Any) -> None:
        data = getattr(value, "_data", None)  # a PyIceberg Record: its values by position
        if data is None:
            for pos, field in fields:
                field(buffer, value[pos] if pos is not None else None)
        else:
            for pos, field in fields:
                field(buffer, data[pos] if pos is not None else None)

    return encode


def _list(element: Encode) -> Encode:
    def encode(buffer: bytearray, value: Any) -> None:
        _put_long(buffer, len(value))
        if value:
            for item in value:
                element(buffer, item)
            buffer.append(0)  # the end of the blocks

    return encode


def _map(key: Encode, item: Encode) -> Encode:
    def encode(buffer: bytearray, value: Any) -> None:
        _put_long(buffer, len(value))
        if value:
            for k, v in value.items():
                key(buffer, k)
                item(buffer, v)
            buffer.append(0)

    return encode


def _by_pyiceberg(writer: Writer) -> Encode:
    def encode(buffer: bytearray, value: Any) -> None:
        writer.write(BinaryEncoder(_BufferStream(buffer)), value)

    return encode


def _layout(file_schema: Schema, record_schema: Schema, name: str, meta: dict[str, str]) -> _Layout:
    from pyiceberg.avro.resolver import resolve_writer
    from pyiceberg.utils.schema_conversion import AvroSchemaConversion

    writer = resolve_writer(record_schema=record_schema, file_schema=file_schema)
    return _Layout(
        file_schema=file_schema,
        writer=writer,
        encode=compiled(writer),
        avro_schema=json.dumps(
            AvroSchemaConversion().iceberg_to_avro(file_schema, schema_name=name)
        ),
        meta=meta,
    )


_LAYOUTS: OrderedDict[tuple[int, int, bool], tuple[PartitionSpec, Schema, _Layout]] = OrderedDict()
_LIST_LAYOUT: list[_Layout] = []
_META_WRITER: list[Writer] = []
_LOCK = threading.Lock()
_LAYOUTS_MAX = 32


class _LaidOutFile(AvroOutputFile[Any]):
    """PyIceberg's Avro container writer over a :class:`_Layout` derived before.

    Records given to :meth:`write_block` are kept and written as one block on close.
    """

    def __init__(
        self, output_file: OutputFile, layout: _Layout, schema_name: str, metadata: dict[str, str]
    ) -> None:
        # not AvroOutputFile.__init__: it would derive the encoder tree again
        from pyiceberg.avro.file import SYNC_SIZE

        self.output_file = output_file
        self.file_schema = layout.file_schema
        self.schema_name = schema_name
        self.sync_bytes = os.urandom(SYNC_SIZE)
        self.writer = layout.writer
        self.metadata = metadata
        self._layout = layout
        self._pending: list[Any] = []

    def _write_header(self) -> None:
        from pyiceberg.avro.codecs import AVRO_CODEC_KEY, CODEC_MAPPING_ICEBERG_TO_AVRO
        from pyiceberg.avro.file import _SCHEMA_KEY, MAGIC, AvroFileHeader
        from pyiceberg.table import TableProperties

        codec = self.metadata.get(AVRO_CODEC_KEY, TableProperties.WRITE_AVRO_COMPRESSION_DEFAULT)
        codec = CODEC_MAPPING_ICEBERG_TO_AVRO.get(codec) or codec
        meta = {**self.metadata, _SCHEMA_KEY: self._layout.avro_schema, AVRO_CODEC_KEY: codec}
        _meta_writer().write(self.encoder, AvroFileHeader(MAGIC, meta, self.sync_bytes))

    def write_block(self, objects: list[Any]) -> None:
        """Keep ``objects``; they are written as one block when the file is closed."""
        self._pending.extend(objects)

    def _write_pending(self) -> None:
        """Write the kept records as one block: count, (compressed) size, bytes, sync."""
        block = bytearray()
        encode = self._layout.encode
        for record in self._pending:
            encode(block, record)
        head = bytearray()
        _put_long(head, len(self._pending))
        codec = self.compression_codec()
        if codec is not None:
            content, length = codec.compress(bytes(block))
        else:
            content, length = bytes(block), len(block)
        _put_long(head, length)
        self.encoder.write(bytes(head))
        self.encoder.write(content)
        self.encoder.write(self.sync_bytes)

    def __exit__(
        self,
        exctype: type[BaseException] | None,
        excinst: BaseException | None,
        exctb: TracebackType | None,
    ) -> None:
        """Write the kept records as one block (unless leaving on an error), then close."""
        try:
            if exctype is None and self._pending:
                self._write_pending()
        finally:
            self._pending = []
            super().__exit__(exctype, excinst, exctb)


def _meta_writer() -> Writer:
    with _LOCK:
        if not _META_WRITER:
            from pyiceberg.avro.file import META_SCHEMA
            from pyiceberg.avro.resolver import construct_writer

            _META_WRITER.append(construct_writer(META_SCHEMA))
        return _META_WRITER[0]


class ManifestWriter(ManifestWriterV2):
    """PyIceberg's format-v2 manifest writer (data or delete files), laid out once.

    ``deletes`` makes it a delete manifest (``content`` 1), which PyIceberg's writer
    cannot write.
    """

    def __init__(
        self,
        spec: PartitionSpec,
        schema: Schema,
        output_file: OutputFile,
        snapshot_id: int,
        avro_compression: AvroCompressionCodec,
        *,
        deletes: bool = False,
    ) -> None:
        """A writer of one manifest of ``spec`` and ``schema`` into ``output_file``."""
        super().__init__(spec, schema, output_file, snapshot_id, avro_compression)
        self._deletes = deletes

    def content(self) -> ManifestContent:
        """``DELETES`` for a delete manifest, else ``DATA``."""
        return ManifestContent.DELETES if self._deletes else ManifestContent.DATA

    def _laid_out(self) -> _Layout:
        key = (id(self._spec), id(self._schema), self._deletes)
        with _LOCK:
            cached = _LAYOUTS.get(key)
            # the objects are kept with their ids, so an id is not reused while cached
            if cached is not None and cached[0] is self._spec and cached[1] is self._schema:
                _LAYOUTS.move_to_end(key)
                return cached[2]
        from pyiceberg.avro.codecs import AVRO_CODEC_KEY
        from pyiceberg.manifest import DEFAULT_READ_VERSION

        base = super()._meta
        base.pop(AVRO_CODEC_KEY, None)
        base["content"] = "deletes" if self._deletes else "data"
        layout = _layout(
            self._with_partition(self.version),
            self._with_partition(DEFAULT_READ_VERSION),
            "manifest_entry",
            base,
        )
        with _LOCK:
            _LAYOUTS[key] = (self._spec, self._schema, layout)
            while len(_LAYOUTS) > _LAYOUTS_MAX:
                _LAYOUTS.popitem(last=False)
        return layout

    @property
    def _meta(self) -> dict[str, str]:
        from pyiceberg.avro.codecs import AVRO_CODEC_KEY

        return {**self._laid_out().meta, AVRO_CODEC_KEY: self._compression}

    def new_writer(self) -> AvroOutputFile[Any]:
        """The Avro file the entries go to (its layout derived once)."""
        return _LaidOutFile(self._output_file, self._laid_out(), "manifest_entry", self._meta)


class ManifestListWriter(ManifestListWriterV2):
    """PyIceberg's format-v2 manifest list writer, laid out once per process."""

    def __enter__(self) -> ManifestListWriter:
        """Open the list for writing."""
        with _LOCK:
            cached = _LIST_LAYOUT[0] if _LIST_LAYOUT else None
        if cached is None:
            from pyiceberg.manifest import DEFAULT_READ_VERSION, MANIFEST_LIST_FILE_SCHEMAS

            cached = _layout(
                MANIFEST_LIST_FILE_SCHEMAS[2],
                MANIFEST_LIST_FILE_SCHEMAS[DEFAULT_READ_VERSION],
                "manifest_file",
                {},
            )
            with _LOCK:
                if not _LIST_LAYOUT:
                    _LIST_LAYOUT.append(cached)
        self._writer = _LaidOutFile(self._output_file, cached, "manifest_file", self._meta)
        self._writer.__enter__()
        self.listed: list[ManifestFile] = []
        return self

    def prepare_manifest(self, manifest_file: ManifestFile) -> ManifestFile:
        """The manifest as the list names it: a copy with this commit's sequence number when
        it has none yet (a manifest of this commit), else the manifest itself (PyIceberg
        copies every one: a hundred copies per append to a table of a hundred manifests)."""
        from pyiceberg.manifest import UNASSIGNED_SEQ

        if UNASSIGNED_SEQ in (manifest_file.sequence_number, manifest_file.min_sequence_number):
            return super().prepare_manifest(manifest_file)
        return manifest_file

    def add_manifests(self, manifest_files: list[ManifestFile]) -> ManifestListWriter:
        """Write ``manifest_files``; :attr:`listed` gets them as reading the list gives them."""
        prepared = [self.prepare_manifest(m) for m in manifest_files]
        self._writer.write_block(prepared)
        self.listed.extend(prepared)
        return self


#: Avro schemas of manifests whose reader :func:`read_entries` keeps (by schema text).
_MAX_MANIFEST_SCHEMAS = 64


def avro_compression(metadata: TableMetadata) -> AvroCompressionCodec:
    """The codec a table's manifests and manifest lists are written with
    (``write.avro.compression-codec``)."""
    from pyiceberg.table import TableProperties

    return cast(
        "AvroCompressionCodec",
        metadata.properties.get(
            TableProperties.WRITE_AVRO_COMPRESSION, TableProperties.WRITE_AVRO_COMPRESSION_DEFAULT
        ),
    )


def added_entry(data_file: DataFile, snapshot_id: int) -> ManifestEntry:
    """A manifest entry adding ``data_file`` in snapshot ``snapshot_id``; its sequence
    numbers are inherited from the manifest list (written as null)."""
    from pyiceberg.manifest import ManifestEntry, ManifestEntryStatus

    return ManifestEntry.from_args(
        status=ManifestEntryStatus.ADDED,
        snapshot_id=snapshot_id,
        sequence_number=None,
        file_sequence_number=None,
        data_file=data_file,
    )


def read_entries(
    io: FileIO, manifest: ManifestFile, *, discard_deleted: bool = True
) -> list[ManifestEntry]:
    """What ``manifest.fetch_manifest_entry(io, discard_deleted)`` returns, read faster.

    Converting a manifest's Avro schema and resolving PyIceberg's reader for it was ~85 %
    of a manifest read (12 of 14.5 ms CPU for eleven small manifests); every manifest of a
    table with one partition spec has the same schema text, so that work is done once per
    schema (see :func:`_schema_once_file`), and the entries are read and inherit from the
    manifest list as PyIceberg's own read does.
    """
    from pyiceberg.manifest import (
        DEFAULT_READ_VERSION,
        MANIFEST_ENTRY_SCHEMAS,
        DataFile,
        DataFileContent,
        FileFormat,
        ManifestEntry,
        ManifestEntryStatus,
        _inherit_from_manifest,
    )

    with _schema_once_file("manifest")(
        io.new_input(manifest.manifest_path),
        MANIFEST_ENTRY_SCHEMAS[DEFAULT_READ_VERSION],
        read_types={-1: ManifestEntry, 2: DataFile},
        read_enums={0: ManifestEntryStatus, 101: FileFormat, 134: DataFileContent},
    ) as reader:
        return [
            _inherit_from_manifest(entry, manifest)
            for entry in reader
            if not discard_deleted or entry.status != ManifestEntryStatus.DELETED
        ]


def read_manifest_list(io: FileIO, path: str) -> tuple[ManifestFile, ...]:
    """What ``pyiceberg.manifest.read_manifest_list`` gives for the list at ``path``, read
    with its Avro reader resolved once per schema (half of a 90-manifest list's read)."""
    from pyiceberg.manifest import (
        DEFAULT_READ_VERSION,
        MANIFEST_LIST_FILE_SCHEMAS,
        ManifestFile,
        PartitionFieldSummary,
    )

    with _schema_once_file("manifest list")(
        io.new_input(path),
        MANIFEST_LIST_FILE_SCHEMAS[DEFAULT_READ_VERSION],
        read_types={-1: ManifestFile, 508: PartitionFieldSummary},
        read_enums={517: ManifestContent},
    ) as reader:
        return tuple(reader)


@functools.cache
def _schema_once_file(kind: str) -> type[AvroFile[Any]]:
    """PyIceberg's ``AvroFile`` for one ``kind`` of file (manifests or manifest lists), its
    reader resolved once per schema.

    The read schema, types and enums of a kind never change, so the file's schema text
    decides the reader (kept for :data:`_MAX_MANIFEST_SCHEMAS` schemas per kind).
    Readers hold no state of a file: one serves every file of that schema, and one reader
    of the Avro file header (PyIceberg builds it again for every file) serves every file.
    """
    from pyiceberg.avro.decoder import new_decoder
    from pyiceberg.avro.file import META_SCHEMA, AvroFile, AvroFileHeader
    from pyiceberg.avro.resolver import construct_reader, resolve_reader

    resolved: OrderedDict[str, tuple[Schema, AvroReader]] = OrderedDict()
    lock = threading.Lock()
    header_reader = construct_reader(META_SCHEMA, {-1: AvroFileHeader})

    class SchemaOnceAvroFile(AvroFile[Any]):
        def _read_header(self) -> AvroFileHeader:
            header = header_reader.read(self.decoder)
            assert isinstance(header, AvroFileHeader)
            return header

        def __enter__(self) -> SchemaOnceAvroFile:
            with self.input_file.open() as stream:
                self.decoder = new_decoder(stream.read())
            self.header = self._read_header()
            text = self.header.meta.get("avro.schema", "")
            with lock:
                hit = resolved.get(text)
                if hit is not None:
                    resolved.move_to_end(text)
            if hit is None:
                schema = self.header.get_schema()
                read_schema = self.read_schema or schema
                reader = resolve_reader(schema, read_schema, self.read_types, self.read_enums)
                hit = (schema, reader)
                with lock:
                    resolved[text] = hit
                    while len(resolved) > _MAX_MANIFEST_SCHEMAS:
                        resolved.popitem(last=False)
            self.schema, self.reader = hit
            if not self.read_schema:
                self.read_schema = self.schema
            return self

    return SchemaOnceAvroFile


__all__ = [
    "ManifestListWriter",
    "ManifestWriter",
    "added_entry",
    "avro_compression",
    "compiled",
    "read_entries",
    "read_manifest_list",
]
