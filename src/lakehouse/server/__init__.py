"""The catalog server: Project Nessie's REST API v2 and the Iceberg REST catalog.

``lakehouse serve`` calls :func:`run`; tests and embedders call :func:`create_app`
and drive the app with any ASGI client::

    from lakehouse.catalog import open_store
    from lakehouse.server import ServerSettings, create_app
    from lakehouse.server.iceberg_rest import IcebergRestSettings
    from lakehouse.storage import Warehouse

    app = create_app(
        open_store("catalog.db"),
        settings=ServerSettings(token="s3cret"),
        iceberg=IcebergRestSettings(Warehouse.local("warehouse")),  # serves /iceberg too
    )

Any Nessie v2 client works against it (the Nessie Java client, Spark/Iceberg's
``NessieCatalog``, our :mod:`lakehouse.catalog.nessie_store`). Where it differs from
Nessie is listed in ``docs/compatibility.md``.

Needs the ``server`` extra (``pip install 'lakehouse[server]'``): FastAPI, uvicorn and
prometheus-client are imported only when an app is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakehouse.errors import ConfigError
from lakehouse.server.settings import ServerSettings as ServerSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lakehouse.catalog.store import VersionStore
    from lakehouse.server.iceberg_rest import IcebergRestSettings

_MISSING = "the catalog server needs the 'server' extra: pip install 'lakehouse[server]'"


def create_app(
    store: VersionStore,
    *,
    settings: ServerSettings | None = None,
    iceberg: IcebergRestSettings | None = None,
) -> FastAPI:
    """The ASGI app serving ``store`` (see :func:`lakehouse.server.app.create_app`)."""
    try:
        from lakehouse.server.app import create_app as _create_app
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{_MISSING} ({exc.name} is missing)") from exc
    return _create_app(store, settings=settings, iceberg=iceberg)


def run(
    store: VersionStore,
    host: str = "127.0.0.1",
    port: int = 19120,
    *,
    settings: ServerSettings | None = None,
    log_level: str = "info",
    iceberg: IcebergRestSettings | None = None,
) -> None:
    """Serve ``store`` on ``host:port`` until interrupted (see :func:`lakehouse.server.app.run`)."""
    try:
        from lakehouse.server.app import run as _run
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{_MISSING} ({exc.name} is missing)") from exc
    _run(store, host, port, settings=settings, log_level=log_level, iceberg=iceberg)


__all__ = ["ServerSettings", "create_app", "run"]
