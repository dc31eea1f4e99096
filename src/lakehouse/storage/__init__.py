"""Object storage: zones and buckets, and where each table keeps its files."""

from __future__ import annotations

from lakehouse.storage.zones import BUCKETS as BUCKETS
from lakehouse.storage.zones import DEFAULT_ZONE as DEFAULT_ZONE
from lakehouse.storage.zones import METADATA_BUCKET as METADATA_BUCKET
from lakehouse.storage.zones import ZONES as ZONES
from lakehouse.storage.zones import TableLocations as TableLocations
from lakehouse.storage.zones import Warehouse as Warehouse

__all__ = ["BUCKETS", "DEFAULT_ZONE", "METADATA_BUCKET", "ZONES", "TableLocations", "Warehouse"]
