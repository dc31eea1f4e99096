"""Files by URI on any filesystem pyarrow knows (local folders, S3 buckets).

Every path on the data path goes through :func:`resolve`, which gets the filesystem of
the URI from :func:`lakehouse.storage.filesystem.arrow_filesystem` (the same client
PyIceberg's FileIO uses for table files), so the same code reads ``/data/in``,
``file:///data/in`` and ``s3://bucket/in`` with the warehouse's FileIO settings
(``s3.endpoint`` …). While :func:`storage_properties` is active (the ingestion engine
wraps each run in it), URIs resolved without explicit properties — a folder source on
``s3://…`` — use the warehouse's settings too, so a source folder on the same S3 server
needs no extra configuration.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from lakehouse.errors import StorageError
from lakehouse.storage.filesystem import arrow_filesystem

#: Bytes read or written at a time when streaming a file.
CHUNK_SIZE = 1 << 20

_PROPERTIES: ContextVar[Mapping[str, str] | None] = ContextVar("storage_properties", default=None)


@contextlib.contextmanager
def storage_properties(properties: Mapping[str, str]) -> Iterator[None]:
    """Within the block, :func:`resolve` without properties uses ``properties``."""
    token = _PROPERTIES.set(dict(properties))
    try:
        yield
    finally:
        _PROPERTIES.reset(token)


@dataclass(frozen=True)
class FileRef:
    """One file (or folder): its filesystem, the path on it and the URI people see."""

    fs: pafs.FileSystem
    path: str
    uri: str

    def child(self, *parts: str) -> FileRef:
        """The file ``parts`` below this folder."""
        tail = "/".join(p.strip("/") for p in parts if p.strip("/"))
        return FileRef(self.fs, f"{self.path.rstrip('/')}/{tail}", f"{self.uri.rstrip('/')}/{tail}")

    @property
    def name(self) -> str:
        """The last segment of the path."""
        return posixpath.basename(self.path.rstrip("/"))

    def info(self) -> pafs.FileInfo:
        """The filesystem's information about this path."""
        return self.fs.get_file_info(self.path)

    def exists(self) -> bool:
        """True when something is at this path."""
        return bool(self.info().type != pafs.FileType.NotFound)

    def read_chunks(self) -> Iterator[bytes]:
        """The file's bytes, :data:`CHUNK_SIZE` at a time."""
        # compression=None: the bytes as stored (no transparent .gz decompression)
        with self.fs.open_input_stream(self.path, compression=None) as stream:
            while chunk := stream.read(CHUNK_SIZE):
                yield bytes(chunk)


def resolve(uri: str, properties: Mapping[str, str] | None = None) -> FileRef:
    """The :class:`FileRef` of ``uri`` (a local path, ``file:``, ``s3:`` … URI).

    ``properties`` are FileIO properties; ``None`` uses those of the enclosing
    :func:`storage_properties` block, if any.
    """
    fs, path = arrow_filesystem(uri, _PROPERTIES.get() if properties is None else properties)
    if isinstance(fs, pafs.LocalFileSystem):
        return FileRef(fs, path, "file://" + path)
    return FileRef(fs, path, uri)


def hash_file(ref: FileRef, check: Callable[[bytes], None] | None = None) -> tuple[int, str]:
    """Size and sha256 of a file; ``check`` sees every chunk (e.g. an encoding check)."""
    digest = hashlib.sha256()
    size = 0
    for chunk in ref.read_chunks():
        digest.update(chunk)
        size += len(chunk)
        if check is not None:
            check(chunk)
    return size, digest.hexdigest()


def write_new(target: FileRef, chunks: Iterator[bytes] | bytes) -> tuple[int, str]:
    """Write a file that must not exist yet; return its size and sha256.

    Landed files are never rewritten: an existing file at ``target`` is an error.
    """
    if target.exists():
        raise StorageError(f"refusing to overwrite {target.uri}: landed files are never rewritten")
    parent = posixpath.dirname(target.path)
    if parent:
        target.fs.create_dir(parent, recursive=True)
    digest = hashlib.sha256()
    size = 0
    data: Any = [chunks] if isinstance(chunks, bytes) else chunks
    with target.fs.open_output_stream(target.path, compression=None) as out:
        for chunk in data:
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return size, digest.hexdigest()


__all__ = ["CHUNK_SIZE", "FileRef", "hash_file", "resolve", "storage_properties", "write_new"]
