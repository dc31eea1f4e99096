"""A reference's head in an embedded (SQLite) catalog, read with the standard library alone.

The catalog's schema belongs to :mod:`lakehouse.catalog.sql_store` (SQLAlchemy Core).
Importing SQLAlchemy costs more than most short commands do in all, and a command that
only needs to know where a branch or tag points (``lakehouse sql "SELECT 1" --ref dev``
checks the reference and reads no table) can get that from one row of ``lh_refs``. This
module reads that row through :mod:`sqlite3` and never writes.

It answers only when sure. Any doubt is ``None`` and the caller asks the full store,
which raises the proper error: a name that is not a reference (or a spec such as
``main~1`` or ``@hash``), a database of another schema version (the store migrates an
older one and refuses a newer one), a missing table, a file that cannot be read.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from lakehouse.catalog.model import ReferenceType

log = logging.getLogger(__name__)

#: Version of the SQL store's schema (``lh_meta.schema_version``) this Lakehouse writes.
SCHEMA_VERSION = 2


def reference_head(database: Path, name: str) -> tuple[ReferenceType, str] | None:
    """The type and head hash of reference ``name`` in the SQLite catalog ``database``.

    ``None`` unless ``database`` is a catalog of schema :data:`SCHEMA_VERSION` holding a
    branch or tag called ``name`` (see the module: ``None`` means "ask the store").
    """
    if not database.is_file():
        return None
    try:
        # mode=rw: never create the file; nothing is written (WAL readers do not block)
        conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=rw", uri=True, timeout=5)
    except sqlite3.Error as exc:
        log.debug("cannot open %s: %s", database, exc)
        return None
    try:
        version = conn.execute("SELECT value FROM lh_meta WHERE key = 'schema_version'").fetchone()
        if version is None or version[0] != str(SCHEMA_VERSION):
            return None
        row = conn.execute("SELECT type, hash FROM lh_refs WHERE name = ?", (name,)).fetchone()
    except sqlite3.Error as exc:
        log.debug("cannot read reference %r from %s: %s", name, database, exc)
        return None
    finally:
        conn.close()
    if row is None:
        return None
    try:
        return ReferenceType(row[0]), str(row[1])
    except ValueError:  # a type this version does not know
        return None


__all__ = ["SCHEMA_VERSION", "reference_head"]
