"""Format-v2 manifest and manifest-list writers that derive their Avro layout once.

PyIceberg's writers derive, for every file they open, the manifest entry schema of the
table's partition type, the Avro encoder tree that maps it, and the Avro JSON schema of the
file header; and they write every entry as its own compressed Avro block. For a row delta
that is most of the cost of its three small metadata files. The writers here are
PyIceberg's (same entries, same counts, same header metadata), with that layout derived
once per schema and partition spec object and the entries of a file written as one block
when it is closed. Readers see ordinary Avro container files.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pyiceberg.avro.file import AvroOutputFile
from pyiceberg.manifest import ManifestContent, ManifestListWriterV2, ManifestWriterV2

if TYPE_CHECKING:
    from pyiceberg.avro.codecs import AvroCompressionCodec
    from pyiceberg.avro.writer import Writer
    from pyiceberg.io import OutputFile
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema


@dataclass(frozen=True)
class _Layout:
    """What PyIceberg derives from the schemas each time it opens an Avro file to write."""

    file_schema: Schema
    #: The encoder tree from the record schema to the file schema (holds no state).
    writer: Writer
    #: The file schema as Avro JSON, for the file header.
    avro_schema: str
    #: Header metadata that depends only on the schema and spec (no codec).
    meta: dict[str, str]


def _layout(file_schema: Schema, record_schema: Schema, name: str, meta: dict[str, str]) -> _Layout:
    from pyiceberg.avro.resolver import resolve_writer
    from pyiceberg.utils.schema_conversion import AvroSchemaConversion

    return _Layout(
        file_schema=file_schema,
        writer=resolve_writer(record_schema=record_schema, file_schema=file_schema),
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

    def __exit__(
        self,
        exctype: type[BaseException] | None,
        excinst: BaseException | None,
        exctb: TracebackType | None,
    ) -> None:
        """Write the kept records as one block (unless leaving on an error), then close."""
        try:
            if exctype is None and self._pending:
                super().write_block(self._pending)
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
        return self


__all__ = ["ManifestListWriter", "ManifestWriter"]
