"""The versioned catalog: git semantics (branches, tags, commits, merges) over Iceberg tables.

:func:`open_store` picks the :class:`VersionStore` implementation from a URI:

* ``sqlite:///path/catalog.db`` or a plain file path — embedded, in-process;
* ``postgresql+psycopg://user:pass@host/db`` — our store on PostgreSQL;
* ``http(s)://host:19120/api/v2`` — any Nessie REST API v2 server.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from lakehouse.catalog.store import RefLike as RefLike
from lakehouse.catalog.store import ResolvedRef as ResolvedRef
from lakehouse.catalog.store import VersionStore as VersionStore
from lakehouse.errors import ConfigError

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr

#: Name PyIceberg shows for our catalogs.
CATALOG_NAME = "lakehouse"


def open_store(
    uri: str | Path,
    *,
    default_branch: str = "main",
    token: SecretStr | str | None = None,
    auth: httpx.Auth | None = None,
) -> VersionStore:
    """Open the versioned catalog at ``uri`` (see the module docstring for the forms).

    ``token`` is a static bearer token for a Nessie server, ``auth`` any other way to sign
    its requests (:class:`~lakehouse.catalog.oauth2.ClientCredentials`); SQL stores ignore
    both.
    """
    text = str(uri)
    if text.startswith(("http://", "https://")):
        from lakehouse.catalog.nessie_store import NessieStore

        return NessieStore(text, auth_token=token, auth=auth)
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


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` URL or plain path (``None`` for other URLs, in-memory)."""
    if "://" not in uri:
        return Path(uri).expanduser()
    parts = urlsplit(uri)
    if not parts.scheme.startswith("sqlite"):
        return None
    path = unquote(parts.path)
    if path.startswith("/"):
        path = path[1:]  # sqlite:///relative, sqlite:////absolute
    if not path or path == ":memory:" or path.startswith("file:") or "mode=memory" in parts.query:
        return None
    return Path(path)


__all__ = [
    "CATALOG_NAME",
    "RefLike",
    "ResolvedRef",
    "VersionStore",
    "open_store",
    "sqlite_path",
]
