"""Trino catalogs over the lakehouse: the SQL serving engine of the cluster profile.

Trino's Iceberg connector reaches the versioned catalog in one of two ways, each bound
to one reference (a Trino catalog is one branch, tag or commit):

``rest``
    Our Iceberg REST API: ``iceberg.catalog.type=rest``,
    ``iceberg.rest-catalog.uri=<server>/iceberg/``. The reference travels as Nessie's
    ``ref|warehouse`` in the ``warehouse`` parameter (``iceberg.rest-catalog.warehouse``):
    the server answers ``GET /v1/config?warehouse=dev|warehouse`` with that prefix, and the
    connector sends it on every request. The default branch needs no warehouse. Tables
    Trino creates get the server's locations (the guide's bucket layout).
``nessie``
    The Nessie API v2 (of ``lakehouse serve`` or of the real Nessie server):
    ``iceberg.catalog.type=nessie``, ``iceberg.nessie-catalog.uri=<server>/api/v2``,
    ``iceberg.nessie-catalog.ref``; tables Trino creates go under
    ``iceberg.nessie-catalog.default-warehouse-dir`` (the ``iceberg-metadata`` bucket of
    the warehouse, as for Spark's ``NessieCatalog``).

Files are read and written by Trino itself over S3 (``fs.native-s3.enabled``, endpoint,
region, path-style access and the lakehouse's S3 credentials): a warehouse on a local
folder (the embedded profile) has no Trino catalog, :class:`TrinoCatalogError` says so.

:func:`catalog_properties` builds the properties from the lakehouse's settings;
:func:`catalog_file` renders them as ``etc/catalog/<name>.properties`` (with
``secrets="env"`` the S3 keys and the catalog token are ``${ENV:…}`` references that Trino
resolves from its own environment, so the file holds no secret), and
:func:`create_catalog_sql` as a ``CREATE CATALOG`` statement (dynamic catalog management).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

from lakehouse.catalog.model import validate_ref_name
from lakehouse.errors import ConfigError
from lakehouse.storage.filesystem import DEFAULT_REGION, is_s3
from lakehouse.storage.zones import METADATA_BUCKET, Warehouse

if TYPE_CHECKING:
    from lakehouse.config import Settings

__all__ = [
    "CONNECTOR",
    "TrinoCatalogError",
    "TrinoCatalogType",
    "catalog_file",
    "catalog_properties",
    "create_catalog_sql",
    "server_root",
]

#: The Trino connector every lakehouse catalog uses.
CONNECTOR = "iceberg"
#: How the connector reaches the catalog.
TrinoCatalogType = Literal["rest", "nessie"]
#: The warehouse name our Iceberg REST server serves (``ref|warehouse`` prefixes).
WAREHOUSE_NAME = "warehouse"
#: Environment variables ``secrets="env"`` files refer to (the lakehouse's own names).
ENV_ACCESS_KEY = "LAKEHOUSE_S3__ACCESS_KEY_ID"
ENV_SECRET_KEY = "LAKEHOUSE_S3__SECRET_ACCESS_KEY"
ENV_TOKEN = "LAKEHOUSE_CATALOG__TOKEN"

_CATALOG_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SERVER_SUFFIX = re.compile(r"/(api/v[12]|iceberg)(/.*)?$")


class TrinoCatalogError(ConfigError):
    """The settings cannot make a Trino catalog (local warehouse, bad name or URL)."""


def server_root(url: str) -> str:
    """``http://host:port[/path]`` of a catalog server URL (``…/api/v2`` or ``…/iceberg``
    and anything after them removed); :class:`TrinoCatalogError` for a non-HTTP URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TrinoCatalogError(
            f"Trino needs the catalog server's HTTP URL (lakehouse serve or Nessie), "
            f"not {url.split('://', 1)[0]!r}: pass e.g. http://HOST:19120"
        )
    path = _SERVER_SUFFIX.sub("", parts.path.rstrip("/"))
    return urlunsplit(parts._replace(path=path, query="", fragment=""))


def _default_server(settings: Settings) -> str:
    uri = settings.catalog_uri
    if not uri.startswith(("http://", "https://")):
        raise TrinoCatalogError(
            "Trino talks to a catalog server, and this lakehouse's catalog is the database "
            f"{uri.split(':', 1)[0]!r}: run `lakehouse serve` on it and pass its URL "
            "(--server http://HOST:19120)"
        )
    return server_root(uri)


def catalog_properties(
    settings: Settings,
    *,
    ref: str | None = None,
    catalog_type: TrinoCatalogType = "rest",
    server: str | None = None,
    secrets: Literal["inline", "env"] = "inline",
) -> dict[str, str]:
    """Trino Iceberg connector properties for the lakehouse of ``settings`` at ``ref``.

    ``server`` is the catalog server's URL (``http://host:19120``; ``…/api/v2`` or
    ``…/iceberg`` are accepted), by default the lakehouse's catalog URI when that is a
    server. ``ref`` defaults to the default branch. With ``secrets="inline"`` the values
    hold the S3 keys and catalog token (never log them); with ``"env"`` they are
    ``${ENV:LAKEHOUSE_S3__ACCESS_KEY_ID}``-style references.
    """
    default_branch = settings.catalog.default_branch
    ref = validate_ref_name(ref) if ref else default_branch
    location = settings.warehouse_location
    if not is_s3(location):
        raise TrinoCatalogError(
            f"Trino reads the warehouse over S3, and this one is local ({location}): "
            "use the cluster profile (LAKEHOUSE_WAREHOUSE=s3://{bucket}/… with LAKEHOUSE_S3__*)"
        )
    root = server_root(server) if server else _default_server(settings)
    token = settings.catalog.token
    props: dict[str, str] = {"connector.name": CONNECTOR}
    if catalog_type == "rest":
        props["iceberg.catalog.type"] = "rest"
        props["iceberg.rest-catalog.uri"] = f"{root}/iceberg/"
        if ref != default_branch:
            props["iceberg.rest-catalog.warehouse"] = f"{ref}|{WAREHOUSE_NAME}"
        if token is not None:
            props["iceberg.rest-catalog.security"] = "OAUTH2"
            props["iceberg.rest-catalog.oauth2.token"] = (
                f"${{ENV:{ENV_TOKEN}}}" if secrets == "env" else token.get_secret_value()
            )
    elif catalog_type == "nessie":
        warehouse = Warehouse.from_uri(location)
        props["iceberg.catalog.type"] = "nessie"
        props["iceberg.nessie-catalog.uri"] = f"{root}/api/v2"
        props["iceberg.nessie-catalog.ref"] = ref
        props["iceberg.nessie-catalog.default-warehouse-dir"] = warehouse.bucket_uri(
            METADATA_BUCKET
        )
        if token is not None:
            props["iceberg.nessie-catalog.authentication.type"] = "BEARER"
            props["iceberg.nessie-catalog.authentication.token"] = (
                f"${{ENV:{ENV_TOKEN}}}" if secrets == "env" else token.get_secret_value()
            )
    else:  # pragma: no cover - the Literal keeps callers honest; the CLI validates
        raise TrinoCatalogError(f"unknown catalog type {catalog_type!r} (rest or nessie)")
    if settings.catalog.oauth2 is not None and token is None:
        raise TrinoCatalogError(
            "Trino catalogs take a static bearer token (LAKEHOUSE_CATALOG__TOKEN); "
            "OAuth2 client credentials (LAKEHOUSE_CATALOG__OAUTH2__*) are not rendered"
        )

    s3 = settings.s3
    props["fs.native-s3.enabled"] = "true"
    if s3.endpoint:
        props["s3.endpoint"] = s3.endpoint
    props["s3.region"] = s3.region or DEFAULT_REGION
    props["s3.path-style-access"] = str(s3.path_style_access).lower()
    if s3.access_key_id:
        props["s3.aws-access-key"] = (
            f"${{ENV:{ENV_ACCESS_KEY}}}" if secrets == "env" else s3.access_key_id
        )
    if s3.secret_access_key is not None:
        props["s3.aws-secret-key"] = (
            f"${{ENV:{ENV_SECRET_KEY}}}"
            if secrets == "env"
            else s3.secret_access_key.get_secret_value()
        )
    return props


def _check_name(name: str) -> str:
    if not _CATALOG_NAME.fullmatch(name):
        raise TrinoCatalogError(
            f"invalid Trino catalog name {name!r}: lower-case letters, digits and '_', "
            "starting with a letter"
        )
    return name


def catalog_file(properties: dict[str, str]) -> str:
    """``properties`` as the text of an ``etc/catalog/<name>.properties`` file."""
    lines = []
    for key, value in properties.items():
        if "\n" in value or "\r" in value:
            raise TrinoCatalogError(f"the value of {key} spans lines")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def create_catalog_sql(name: str, properties: dict[str, str]) -> str:
    """A ``CREATE CATALOG name USING iceberg WITH (…)`` statement for ``properties``."""
    _check_name(name)
    rest = {k: v for k, v in properties.items() if k != "connector.name"}
    connector = properties.get("connector.name", CONNECTOR)
    if not re.fullmatch(r"[a-z_]+", connector):
        raise TrinoCatalogError(f"invalid connector name {connector!r}")
    items = ", ".join(
        "\"{}\" = '{}'".format(key.replace('"', '""'), value.replace("'", "''"))
        for key, value in rest.items()
    )
    return f"CREATE CATALOG {name} USING {connector} WITH ({items})"
