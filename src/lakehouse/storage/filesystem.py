"""The one mapping from settings to storage clients: PyIceberg FileIO properties and pyarrow.

Every component that touches table or landing files gets its storage configuration here,
so the Iceberg writer (PyIceberg's FileIO), the ``raw`` landing and ingestion (pyarrow
file systems) and the query reader all talk to the same endpoint with the same
credentials:

* :func:`s3_properties` — :class:`~lakehouse.config.S3Settings` as PyIceberg FileIO
  properties (``s3.endpoint``, ``s3.access-key-id``, ``s3.secret-access-key``,
  ``s3.region``, ``s3.force-virtual-addressing``);
* :func:`fileio_properties` — those properties when the warehouse is on S3, else none;
* :func:`arrow_filesystem` — the :class:`pyarrow.fs.FileSystem` and path of a URI, built
  by PyIceberg's own :class:`~pyiceberg.io.pyarrow.PyArrowFileIO` from the same properties
  (one S3 client per endpoint and credentials, reused).

Nothing here has a default endpoint or credential: they come from settings
(``LAKEHOUSE_S3__*``) or the caller. A custom endpoint without a region gets
:data:`DEFAULT_REGION`, which every S3-compatible server accepts; without it PyIceberg
would ask AWS where the bucket lives.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from lakehouse.errors import StorageError

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from pydantic import SecretStr

#: PyIceberg FileIO property names (``pyiceberg.io``), spelled out for the S3 API.
S3_ENDPOINT = "s3.endpoint"
S3_REGION = "s3.region"
S3_ACCESS_KEY_ID = "s3.access-key-id"
S3_SECRET_ACCESS_KEY = "s3.secret-access-key"
S3_FORCE_VIRTUAL_ADDRESSING = "s3.force-virtual-addressing"
#: Region used with a custom endpoint when none is configured (MinIO's default, too).
DEFAULT_REGION = "us-east-1"
#: URI schemes served by the S3 API.
S3_SCHEMES = ("s3", "s3a", "s3n")


class S3Config(Protocol):
    """The S3 settings this module reads (:class:`lakehouse.config.S3Settings` has them)."""

    @property
    def endpoint(self) -> str | None:
        """Custom endpoint URL (MinIO …); ``None`` for AWS."""
        ...

    @property
    def region(self) -> str | None:
        """Region; :data:`DEFAULT_REGION` with a custom endpoint when unset."""
        ...

    @property
    def access_key_id(self) -> str | None:
        """Access key id."""
        ...

    @property
    def secret_access_key(self) -> SecretStr | None:
        """Secret access key."""
        ...

    @property
    def path_style_access(self) -> bool:
        """Address buckets as paths."""
        ...


class StorageConfig(Protocol):
    """The settings :func:`fileio_properties` reads (:class:`lakehouse.config.Settings`)."""

    @property
    def s3(self) -> S3Config:
        """S3 settings."""
        ...

    @property
    def warehouse_location(self) -> str:
        """Where table files live (a folder or an ``s3://`` URI)."""
        ...


def s3_properties(s3: S3Config) -> dict[str, str]:
    """PyIceberg FileIO properties (``s3.*``) of ``s3``, secrets revealed (never log them).

    Path-style access (``s3.force-virtual-addressing=false``) is set whenever an endpoint
    is: self-hosted servers (MinIO …) serve buckets as paths, not host names.
    """
    props: dict[str, str] = {}
    if s3.endpoint:
        props[S3_ENDPOINT] = s3.endpoint
        props[S3_FORCE_VIRTUAL_ADDRESSING] = str(not s3.path_style_access).lower()
    region = s3.region or (DEFAULT_REGION if s3.endpoint else None)
    if region:
        props[S3_REGION] = region
    if s3.access_key_id:
        props[S3_ACCESS_KEY_ID] = s3.access_key_id
    if s3.secret_access_key is not None:
        props[S3_SECRET_ACCESS_KEY] = s3.secret_access_key.get_secret_value()
    return props


def is_s3(uri: str) -> bool:
    """True when ``uri`` is served by the S3 API (``s3://``, ``s3a://``, ``s3n://``)."""
    scheme, sep, _ = uri.partition("://")
    return bool(sep) and scheme.lower() in S3_SCHEMES


def fileio_properties(settings: StorageConfig) -> dict[str, str]:
    """FileIO properties for the warehouse of ``settings``: the S3 ones on S3, else none."""
    return s3_properties(settings.s3) if is_s3(settings.warehouse_location) else {}


def arrow_filesystem(
    uri: str, properties: Mapping[str, str] | None = None
) -> tuple[pafs.FileSystem, str]:
    """The pyarrow file system serving ``uri`` and the path of ``uri`` on it.

    ``properties`` are FileIO properties (:func:`fileio_properties`); the file system is
    the one PyIceberg would use for the same location, so landing files and table files
    go through identical clients. ``file`` paths come back absolute; S3 paths as
    ``bucket/key``. Raises :class:`~lakehouse.errors.StorageError` for an unsupported URI.
    """
    from pyiceberg.io.pyarrow import PyArrowFileIO

    frozen = tuple(sorted((properties or {}).items()))
    try:
        scheme, netloc, path = PyArrowFileIO.parse_location(uri)
        fs = _filesystem(frozen, scheme, netloc)
    except (ValueError, OSError) as exc:
        raise StorageError(f"cannot open {uri!r}: {exc}") from exc
    return fs, path


@functools.lru_cache(maxsize=32)
def _filesystem(
    properties: tuple[tuple[str, str], ...], scheme: str, netloc: str | None
) -> pafs.FileSystem:
    from pyiceberg.io.pyarrow import PyArrowFileIO

    # One client per endpoint + credentials + bucket: building an S3 client is not free.
    return PyArrowFileIO(dict(properties)).fs_by_scheme(scheme, netloc)


__all__ = [
    "DEFAULT_REGION",
    "S3_ACCESS_KEY_ID",
    "S3_ENDPOINT",
    "S3_FORCE_VIRTUAL_ADDRESSING",
    "S3_REGION",
    "S3_SCHEMES",
    "S3_SECRET_ACCESS_KEY",
    "S3Config",
    "StorageConfig",
    "arrow_filesystem",
    "fileio_properties",
    "is_s3",
    "s3_properties",
]
