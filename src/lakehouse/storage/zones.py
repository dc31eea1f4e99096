"""Zones, buckets and where a table's files live.

The lakehouse keeps its files in five buckets (DESIGN §3, "Storage layout"):

* ``raw`` — landed source files, never rewritten;
* ``bronze``, ``silver``, ``gold`` — the data files of the tables of each zone;
* ``iceberg-metadata`` — every Iceberg metadata file (table metadata JSON, manifest
  lists, manifests) of every table.

A :class:`Warehouse` maps each bucket name to a URI. In the ``embedded`` profile the
buckets are sub-folders of one local folder (``file:///abs/root/<bucket>``); in the
``cluster`` profile each bucket is an S3 bucket (``s3://<bucket>``, or a prefixed name).

A table ``bronze.orders`` gets::

    data:     <bronze bucket>/orders_<suffix>/data
    metadata: <iceberg-metadata bucket>/bronze/orders_<suffix>/metadata

The namespace's first element picks the zone when it names one (``raw``, ``bronze``,
``silver``, ``gold``) and is then not repeated inside the zone bucket; any other
namespace goes to :data:`DEFAULT_ZONE`. The short random ``<suffix>`` makes every
created table's folders new, so a table that is dropped and created again never
writes over files that an older branch may still reference.

:meth:`Warehouse.contains` is the one rule deciding whether a location supplied from
outside (an explicit table location, a metadata file to register, a ``write.*.path``
property) may be used: it must be a normalized URI inside one of the buckets.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import unquote, urlparse, urlsplit

from lakehouse.errors import StorageError

#: The data zones, in the order data flows through them.
ZONES: tuple[str, ...] = ("raw", "bronze", "silver", "gold")
#: The bucket holding every Iceberg metadata file.
METADATA_BUCKET = "iceberg-metadata"
#: Every bucket a warehouse must map.
BUCKETS: tuple[str, ...] = (*ZONES, METADATA_BUCKET)
#: Zone of tables whose namespace does not start with a zone name.
DEFAULT_ZONE = "silver"
#: Length of the random suffix that makes each created table's folders unique.
SUFFIX_LENGTH = 8

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=-]+")
_BUCKET_PLACEHOLDER = "{bucket}"


def _segment(element: str) -> str:
    """A key element as one safe path segment (the random suffix keeps paths unique)."""
    return _UNSAFE.sub("_", element).strip(".") or "_"


def _file_uri(path: str | Path) -> str:
    # Not Path.as_uri(): PyIceberg's FileIO does not percent-decode file URIs.
    return "file://" + Path(path).expanduser().resolve().as_posix()


def _local_path(uri: str) -> Path | None:
    """The local path of a ``file:`` URI (or a plain path), else ``None``."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "":
        return Path(uri)
    return None


#: Schemes that name the same object store (Hadoop's S3 connectors use ``s3a``/``s3n``).
_SCHEME_ALIASES = {"s3a": "s3", "s3n": "s3"}


def _normalized(uri: str) -> tuple[str, str, tuple[str, ...]] | None:
    """``(scheme, host, path segments)`` of a location, ``None`` if it is not acceptable.

    A plain absolute path is a ``file`` location; ``file://localhost/`` is ``file:///``.
    Refused: relative paths, user info, queries, fragments, control characters,
    backslashes, and any ``..`` segment (also percent-encoded): object stores keep
    ``..`` literally while local file systems resolve it, so such a string names two
    different places and is refused rather than normalized.
    """
    if not isinstance(uri, str) or not uri or any(ord(c) < 32 or ord(c) == 127 for c in uri):
        return None
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.netloc.lower()
    if not scheme:
        if not uri.startswith("/") or uri.startswith("//"):
            return None
        scheme = "file"
    scheme = _SCHEME_ALIASES.get(scheme, scheme)
    if parts.query or parts.fragment or "?" in uri or "#" in uri or "@" in host:
        return None
    if scheme == "file":
        if host not in ("", "localhost") or not parts.path.startswith("/"):
            return None
        host = ""
    elif not host:
        return None
    path = unquote(parts.path)
    if "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        return None
    segments = tuple(s for s in path.split("/") if s not in ("", "."))
    if ".." in segments:
        return None
    return scheme, host, segments


class TableLocations(NamedTuple):
    """Where one table keeps its files; unpacks as ``data, metadata = …``."""

    #: Folder of data files (Iceberg ``write.data.path``).
    data: str
    #: Folder of metadata files (Iceberg ``write.metadata.path``).
    metadata: str

    @property
    def root(self) -> str:
        """The table location recorded in Iceberg metadata: the parent of :attr:`data`."""
        return self.data.rsplit("/", 1)[0]


@dataclass(frozen=True)
class Warehouse:
    """Bucket name → URI of every bucket (:data:`BUCKETS`); builds table locations.

    Use :meth:`local` for the embedded profile, :meth:`s3` for one S3 bucket per
    bucket name, or :meth:`from_uri` to choose from a single setting.
    """

    buckets: Mapping[str, str]
    #: The one folder all buckets sit under (``local`` and ``from_uri`` without a
    #: ``{bucket}`` template), or None. Locations under it are inside the warehouse too:
    #: clients such as Spark's ``NessieCatalog`` with ``warehouse=<root>`` write
    #: ``<root>/<namespace>/<table>``.
    root: str | None = None

    def __post_init__(self) -> None:
        missing = [b for b in BUCKETS if b not in self.buckets]
        if missing:
            raise StorageError(f"warehouse has no URI for bucket(s) {', '.join(missing)}")
        cleaned: dict[str, str] = {}
        for name, uri in self.buckets.items():
            if not isinstance(uri, str) or not uri.strip():
                raise StorageError(f"warehouse bucket {name!r} has an empty URI")
            cleaned[name] = uri.strip().rstrip("/")
        object.__setattr__(self, "buckets", MappingProxyType(cleaned))
        if self.root is not None:
            if not self.root.strip():
                raise StorageError("warehouse root is an empty URI")
            object.__setattr__(self, "root", self.root.strip().rstrip("/"))

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.buckets.items())), self.root))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Warehouse)
            and dict(self.buckets) == dict(other.buckets)
            and self.root == other.root
        )

    # -- constructors -------------------------------------------------------------------

    @classmethod
    def local(cls, path: str | Path) -> Warehouse:
        """One local folder with a sub-folder per bucket (``file:///abs/path/<bucket>``).

        ``path`` is a folder path or a ``file:`` URI; it is made absolute.
        """
        text = str(path)
        local = _local_path(text)
        if local is None:
            raise StorageError(f"not a local folder: {text!r}")
        root = _file_uri(local)
        return cls({bucket: f"{root}/{bucket}" for bucket in BUCKETS}, root=root)

    @classmethod
    def s3(cls, names: Mapping[str, str] | None = None, *, scheme: str = "s3") -> Warehouse:
        """One S3 bucket per bucket name: ``s3://raw``, ``s3://bronze`` …

        ``names`` renames buckets (``{"bronze": "acme-bronze"}``); the others keep
        their default name.
        """
        names = dict(names or {})
        unknown = sorted(set(names) - set(BUCKETS))
        if unknown:
            raise StorageError(
                f"unknown bucket(s) {', '.join(unknown)}; known: {', '.join(BUCKETS)}"
            )
        return cls({bucket: f"{scheme}://{names.get(bucket, bucket)}" for bucket in BUCKETS})

    @classmethod
    def from_uri(cls, uri: str | Path) -> Warehouse:
        """A warehouse from one setting.

        * ``/abs/path`` or ``file:///abs/path`` — :meth:`local`;
        * a URI containing ``{bucket}`` — each bucket's URI is the template filled in,
          e.g. ``s3://{bucket}`` or ``s3://acme-{bucket}/lake``;
        * any other URI (``s3://lake/prefix``) — one sub-folder per bucket under it.
        """
        text = str(uri).strip()
        if _BUCKET_PLACEHOLDER in text:
            return cls({bucket: text.replace(_BUCKET_PLACEHOLDER, bucket) for bucket in BUCKETS})
        if _local_path(text) is not None:
            return cls.local(text)
        root = text.rstrip("/")
        return cls({bucket: f"{root}/{bucket}" for bucket in BUCKETS}, root=root)

    # -- lookups ------------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        """True when every bucket is a local folder."""
        return all(_local_path(uri) is not None for uri in self.buckets.values())

    def bucket_uri(self, bucket: str) -> str:
        """URI of ``bucket`` (no trailing slash)."""
        try:
            return self.buckets[bucket]
        except KeyError:
            raise StorageError(
                f"unknown bucket {bucket!r}; known: {', '.join(sorted(self.buckets))}"
            ) from None

    def local_path(self, bucket: str) -> Path:
        """Local folder of ``bucket`` (:class:`StorageError` if it is not local)."""
        path = _local_path(self.bucket_uri(bucket))
        if path is None:
            raise StorageError(f"bucket {bucket!r} is not local: {self.bucket_uri(bucket)}")
        return path

    def contains(self, uri: str) -> bool:
        """True if ``uri`` is a normalized location inside the warehouse's root or buckets.

        Scheme and host must match a bucket's (``s3a``/``s3n`` count as ``s3``; a plain
        absolute path as ``file``), and the path must be at or below the bucket's path,
        compared segment by segment after percent-decoding. URIs with ``..`` segments,
        user info, queries, fragments or control characters are never contained (see
        :func:`_normalized`), so a location that passes cannot point anywhere else.
        """
        target = _normalized(uri)
        if target is None:
            return False
        scheme, host, segments = target
        folders = [*self.buckets.values(), *([self.root] if self.root else [])]
        for bucket_uri in folders:
            bucket = _normalized(bucket_uri)
            if bucket is None:
                continue
            b_scheme, b_host, b_segments = bucket
            if scheme == b_scheme and host == b_host and segments[: len(b_segments)] == b_segments:
                return True
        return False

    @staticmethod
    def zone_of(namespace: Sequence[str]) -> str:
        """Zone of ``namespace``: its first element if that is a zone, else :data:`DEFAULT_ZONE`."""
        if namespace and namespace[0] in ZONES:
            return namespace[0]
        return DEFAULT_ZONE

    def table_locations(
        self, namespace: Sequence[str], table: str, *, suffix: str | None = None
    ) -> TableLocations:
        """New, unique data and metadata folders for table ``table`` in ``namespace``.

        Each call draws a fresh random suffix unless ``suffix`` is given.
        """
        namespace = tuple(namespace)
        if not table:
            raise StorageError("a table needs a name")
        suffix = suffix or uuid.uuid4().hex[:SUFFIX_LENGTH]
        leaf = f"{_segment(table)}_{suffix}"
        zone = self.zone_of(namespace)
        inside_zone = namespace[1:] if namespace and namespace[0] == zone else namespace
        data_parts = [self.bucket_uri(zone), *(_segment(e) for e in inside_zone), leaf, "data"]
        meta_parts = [
            self.bucket_uri(METADATA_BUCKET),
            *(_segment(e) for e in namespace),
            leaf,
            "metadata",
        ]
        return TableLocations("/".join(data_parts), "/".join(meta_parts))

    def ensure_local_dirs(self) -> list[Path]:
        """Create the folder of every local bucket; return the folders (S3 buckets are skipped)."""
        made: list[Path] = []
        for uri in self.buckets.values():
            path = _local_path(uri)
            if path is not None:
                path.mkdir(parents=True, exist_ok=True)
                made.append(path)
        return made


__all__ = [
    "BUCKETS",
    "DEFAULT_ZONE",
    "METADATA_BUCKET",
    "SUFFIX_LENGTH",
    "ZONES",
    "TableLocations",
    "Warehouse",
]
