"""Object storage: zones and buckets, where each table keeps its files, and storage clients."""

from __future__ import annotations

from lakehouse.storage.filesystem import arrow_filesystem as arrow_filesystem
from lakehouse.storage.filesystem import fileio_properties as fileio_properties
from lakehouse.storage.filesystem import s3_properties as s3_properties
from lakehouse.storage.zones import BUCKETS as BUCKETS
from lakehouse.storage.zones import DEFAULT_ZONE as DEFAULT_ZONE
from lakehouse.storage.zones import METADATA_BUCKET as METADATA_BUCKET
from lakehouse.storage.zones import ZONES as ZONES
from lakehouse.storage.zones import TableLocations as TableLocations
from lakehouse.storage.zones import Warehouse as Warehouse

__all__ = [
    "BUCKETS",
    "DEFAULT_ZONE",
    "METADATA_BUCKET",
    "ZONES",
    "TableLocations",
    "Warehouse",
    "arrow_filesystem",
    "fileio_properties",
    "s3_properties",
]
