"""Objects by URI for backup, restore, the check and GC: local folders and S3, through pyarrow.

Every URI goes through PyIceberg's :class:`~pyiceberg.io.pyarrow.PyArrowFileIO` to get
its pyarrow filesystem, so backups use the same S3 settings (``s3.endpoint``, keys) as
the tables. Errors become :class:`~lakehouse.errors.StorageError` naming the URI.

:func:`canonical` gives every location one spelling (``file:///abs/path``,
``s3://bucket/key``; ``s3a``/``s3n`` are ``s3``), used as the key wherever locations
read from Iceberg metadata are compared with locations found by listing.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import posixpath
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import pyarrow.fs as pafs
from pyiceberg.io.pyarrow import PyArrowFileIO

from lakehouse.errors import StorageError

#: Bytes per read when copying and hashing.
CHUNK_SIZE = 1 << 20
_S3_ALIASES = {"s3a": "s3", "s3n": "s3"}


@dataclass(frozen=True)
class Location:
    """A file or folder: its filesystem, the path on it and its canonical URI."""

    fs: pafs.FileSystem
    path: str
    uri: str

    @property
    def is_local(self) -> bool:
        """True for a local file system path."""
        return isinstance(self.fs, pafs.LocalFileSystem)

    def child(self, *parts: str) -> Location:
        """The location ``parts`` below this folder."""
        tail = "/".join(p.strip("/") for p in parts if p.strip("/"))
        return Location(
            self.fs, f"{self.path.rstrip('/')}/{tail}", f"{self.uri.rstrip('/')}/{tail}"
        )

    @property
    def name(self) -> str:
        """Last path segment."""
        return posixpath.basename(self.path.rstrip("/"))

    @property
    def parent(self) -> Location:
        """The enclosing folder."""
        return Location(
            self.fs,
            posixpath.dirname(self.path.rstrip("/")),
            self.uri.rstrip("/").rsplit("/", 1)[0],
        )


@dataclass(frozen=True)
class ListedFile:
    """A file found by listing a folder."""

    uri: str
    path: str
    size: int
    mtime_ns: int | None


def canonical(uri: str) -> str:
    """One spelling per location: ``file:///abs``, ``s3://bucket/key`` (no trailing slash)."""
    scheme, _, path = PyArrowFileIO.parse_location(uri)
    scheme = _S3_ALIASES.get(scheme, scheme)
    if scheme == "file":
        return "file://" + os.path.normpath(path) if path else "file:///"
    return f"{scheme}://{path.rstrip('/')}"


def describe(exc: BaseException) -> str:
    """An exception as one short line."""
    return " ".join(str(exc).split()) or type(exc).__name__


class Storage:
    """Filesystems for URIs, configured with PyIceberg FileIO ``properties`` (``s3.*``)."""

    def __init__(self, properties: Mapping[str, str] | None = None) -> None:
        self.properties = dict(properties or {})
        self.io = PyArrowFileIO(self.properties)

    def locate(self, uri: str) -> Location:
        """The :class:`Location` of ``uri`` (a local path, ``file:`` or ``s3:`` URI)."""
        try:
            scheme, netloc, path = self.io.parse_location(uri)
            fs = self.io.fs_by_scheme(scheme, netloc)
        except (ValueError, OSError) as exc:
            raise StorageError(f"cannot open {uri!r}: {describe(exc)}") from exc
        if scheme == "file":
            path = os.path.normpath(path)
        return Location(fs, path, canonical(uri))

    # -- reading state --------------------------------------------------------------------

    def info(self, loc: Location) -> pafs.FileInfo:
        """File information (type ``NotFound`` when absent)."""
        try:
            return loc.fs.get_file_info(loc.path)
        except OSError as exc:
            raise StorageError(f"cannot access {loc.uri}: {describe(exc)}") from exc

    def size_of(self, loc: Location) -> int | None:
        """Size of the file at ``loc``, ``None`` when there is none."""
        info = self.info(loc)
        return int(info.size) if info.type == pafs.FileType.File else None

    def exists(self, loc: Location) -> bool:
        """True when a file or folder is at ``loc``."""
        return bool(self.info(loc).type != pafs.FileType.NotFound)

    def stat_many(self, locs: list[Location]) -> list[pafs.FileInfo]:
        """File information for many locations on one filesystem (one call where possible)."""
        if not locs:
            return []
        try:
            return list(locs[0].fs.get_file_info([loc.path for loc in locs]))
        except OSError as exc:
            raise StorageError(f"cannot access {locs[0].uri}: {describe(exc)}") from exc

    def list_files(self, folder: Location) -> Iterator[ListedFile]:
        """Every file below ``folder`` (nothing when it does not exist)."""
        selector = pafs.FileSelector(folder.path, recursive=True, allow_not_found=True)
        try:
            infos = folder.fs.get_file_info(selector)
        except OSError as exc:
            raise StorageError(f"cannot list {folder.uri}: {describe(exc)}") from exc
        root_path = folder.path.rstrip("/")
        root_uri = folder.uri.rstrip("/")
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            rel = info.path[len(root_path) :].lstrip("/") if info.path.startswith(root_path) else ""
            uri = f"{root_uri}/{rel}" if rel else canonical(info.path)
            mtime = info.mtime_ns
            yield ListedFile(uri, info.path, int(info.size), int(mtime) if mtime else None)

    def is_empty(self, folder: Location) -> bool:
        """True when no file is below ``folder``."""
        return next(iter(self.list_files(folder)), None) is None

    def read_bytes(self, loc: Location) -> bytes:
        """The whole file."""
        try:
            with loc.fs.open_input_stream(loc.path, compression=None) as stream:
                return bytes(stream.read())
        except FileNotFoundError as exc:
            raise StorageError(f"{loc.uri} does not exist") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {loc.uri}: {describe(exc)}") from exc

    # -- writing --------------------------------------------------------------------------

    def make_dirs(self, loc: Location) -> None:
        """Create the folder ``loc`` (and parents); a no-op on object stores."""
        try:
            loc.fs.create_dir(loc.path, recursive=True)
        except OSError as exc:
            raise StorageError(f"cannot create {loc.uri}: {describe(exc)}") from exc

    def write_bytes(self, loc: Location, data: bytes) -> None:
        """Write a whole file atomically (local: temporary file + rename; S3: one PUT)."""
        try:
            self.make_dirs(loc.parent)
            if loc.is_local:
                tmp = f"{loc.path}.tmp-{uuid.uuid4().hex[:8]}"
                with open(tmp, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, loc.path)
                return
            with loc.fs.open_output_stream(loc.path, compression=None) as out:
                out.write(data)
        except OSError as exc:
            raise StorageError(f"cannot write {loc.uri}: {describe(exc)}") from exc

    def delete_file(self, loc: Location, *, missing_ok: bool = True) -> None:
        """Delete one file."""
        try:
            loc.fs.delete_file(loc.path)
        except FileNotFoundError:
            if not missing_ok:
                raise StorageError(f"{loc.uri} does not exist") from None
        except OSError as exc:
            raise StorageError(f"cannot delete {loc.uri}: {describe(exc)}") from exc

    def delete_dir(self, loc: Location) -> None:
        """Delete a folder and everything below it (missing is fine)."""
        try:
            loc.fs.delete_dir(loc.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {loc.uri}: {describe(exc)}") from exc

    def move(self, src: Location, dst: Location) -> None:
        """Move a file (local: an atomic rename; S3: copy then delete)."""
        try:
            if src.is_local and dst.is_local:
                os.replace(src.path, dst.path)
            else:
                src.fs.move(src.path, dst.path)
        except OSError as exc:
            raise StorageError(f"cannot move {src.uri} to {dst.uri}: {describe(exc)}") from exc

    def copy_hashed(
        self,
        src: Location,
        dst: Location,
        *,
        on_bytes: Callable[[int], None] | None = None,
    ) -> tuple[int, str]:
        """Copy ``src`` to ``dst`` (parents created) while hashing; return size and sha256."""
        digest = hashlib.sha256()
        size = 0
        try:
            self.make_dirs(dst.parent)
            if src.is_local and dst.is_local:
                # The kernel copies (sendfile / copy_file_range, as shutil.copytree does);
                # then the *written* file is hashed, so the checksum is of what was stored.
                shutil.copyfile(src.path, dst.path)
                size, sha = _hash_local(dst.path)
                if on_bytes is not None:
                    on_bytes(size)
                return size, sha
            else:
                with (
                    src.fs.open_input_stream(src.path, compression=None) as inp,
                    dst.fs.open_output_stream(dst.path, compression=None) as out,
                ):
                    while chunk := inp.read(CHUNK_SIZE):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
                        if on_bytes is not None:
                            on_bytes(len(chunk))
        except FileNotFoundError as exc:
            raise StorageError(f"{src.uri} does not exist") from exc
        except OSError as exc:
            raise StorageError(f"cannot copy {src.uri} to {dst.uri}: {describe(exc)}") from exc
        return size, digest.hexdigest()

    def hash_file(
        self, loc: Location, *, on_bytes: Callable[[int], None] | None = None
    ) -> tuple[int, str]:
        """Size and sha256 of the file at ``loc``."""
        digest = hashlib.sha256()
        size = 0
        try:
            if loc.is_local:
                size, sha = _hash_local(loc.path)
                if on_bytes is not None:
                    on_bytes(size)
                return size, sha
            else:
                with loc.fs.open_input_stream(loc.path, compression=None) as inp:
                    while chunk := inp.read(CHUNK_SIZE):
                        digest.update(chunk)
                        size += len(chunk)
                        if on_bytes is not None:
                            on_bytes(len(chunk))
        except FileNotFoundError as exc:
            raise StorageError(f"{loc.uri} does not exist") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {loc.uri}: {describe(exc)}") from exc
        return size, digest.hexdigest()


def _hash_local(path: str) -> tuple[int, str]:
    """Size and sha256 of a local file (memory-mapped: one pass, no copies)."""
    with open(path, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        if size == 0:
            return 0, hashlib.sha256().hexdigest()
        with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return size, hashlib.sha256(view).hexdigest()


def default_workers() -> int:
    """Threads for copying and hashing: enough to overlap I/O with hashing."""
    return max(4, min(16, 2 * (os.cpu_count() or 2)))


__all__ = [
    "CHUNK_SIZE",
    "ListedFile",
    "Location",
    "Storage",
    "canonical",
    "default_workers",
    "describe",
]
