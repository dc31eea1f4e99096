"""The versioned catalog: git semantics (branches, tags, commits, merges) over Iceberg tables.

:func:`open_store` picks the :class:`VersionStore` implementation from a URI:

* ``sqlite:///path/catalog.db`` or a plain file path — embedded, in-process;
* ``postgresql+psycopg://user:pass@host/db`` — our store on PostgreSQL;
* ``http(s)://host:19120/api/v2`` — any Nessie REST API v2 server.
"""

from __future__ import annotations

from pathlib import Path

from lakehouse.catalog.store import RefLike as RefLike
from lakehouse.catalog.store import ResolvedRef as ResolvedRef
from lakehouse.catalog.store import VersionStore as VersionStore
from lakehouse.errors import ConfigError


def open_store(uri: str | Path, *, default_branch: str = "main") -> VersionStore:
    """Open the versioned catalog at ``uri`` (see the module docstring for the forms)."""
    text = str(uri)
    if text.startswith(("http://", "https://")):
        raise ConfigError(
            f"catalog URI {text!r}: the Nessie REST client is not part of this build yet; "
            "use a sqlite:/// or postgresql+psycopg:// URI"
        )
    if "://" not in text:
        path = Path(text).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f"sqlite:///{path}"
    if text.startswith("postgresql://"):
        text = "postgresql+psycopg://" + text.removeprefix("postgresql://")
    if not text.startswith(("sqlite:", "postgresql+")):
        raise ConfigError(
            f"unsupported catalog URI {text!r}: use a file path, sqlite:///…, "
            "postgresql+psycopg://… or http(s)://…/api/v2"
        )
    from lakehouse.catalog.sql_store import SqlStore

    return SqlStore(text, default_branch=default_branch)


__all__ = ["RefLike", "ResolvedRef", "VersionStore", "open_store"]
