"""The ASGI application: Nessie API v2 and v1, health, readiness, metrics, OpenAPI.

=====================  ==========================================================
path                   what
=====================  ==========================================================
``/api/v2/…``          Nessie REST API v2 (:mod:`lakehouse.server.api_v2`)
``/api/v1/…``          Nessie REST API v1, over the v2 handlers (:mod:`lakehouse.server.api_v1`)
``/iceberg/…``         Iceberg REST catalog, ref in the prefix (:mod:`.iceberg_rest`);
                       served when the app is given a warehouse (``iceberg=``)
``/healthz``           the process is up (no store call)
``/readyz``            the store answers (reads the default branch), else 503
``/metrics``           Prometheus text format (:mod:`lakehouse.server.metrics`)
``/openapi.json``      OpenAPI document; ``/docs`` and ``/redoc`` render it (assets
                       served locally from ``/docs-static``: no CDN)
``/``, ``/ui/…``       the web console, when the caller mounts it (``console=``, an
                       :class:`AppExtension` such as ``lakehouse.console.WebConsole``);
                       it signs users in itself
=====================  ==========================================================

Middleware, outermost first: reference-path decoding (Nessie and Iceberg paths),
metrics, bearer auth (when a token is configured), request size and media-type limits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import SecretStr
from starlette.convertors import Convertor, register_url_convertor

import lakehouse
from lakehouse.catalog.store import VersionStore
from lakehouse.errors import ConfigError, LakehouseError
from lakehouse.observability import add_log_context_provider, logging_configured
from lakehouse.server import api_v1, api_v2
from lakehouse.server.authz import AuthorizationRules
from lakehouse.server.errors import install_error_handlers
from lakehouse.server.iceberg_rest import (
    IcebergPathMiddleware,
    IcebergRestSettings,
    build_iceberg_router,
)
from lakehouse.server.metrics import MetricsMiddleware, ServerMetrics, operation_of
from lakehouse.server.middleware import (
    BearerAuthMiddleware,
    HeadAsGetMiddleware,
    OidcAuthMiddleware,
    RefPathMiddleware,
    RequestLimitMiddleware,
    current_principal,
)
from lakehouse.server.oidc import OidcVerifier
from lakehouse.server.settings import ServerSettings

log = logging.getLogger(__name__)
#: Where the Swagger UI and ReDoc assets (package ``fastapi-offline``) are served.
DOCS_STATIC = "/docs-static"


class NessieRefConvertor(Convertor[str]):
    """A reference path element, as Nessie matches it: no ``/`` unless followed by ``@``.

    ``main``, ``main@abc``, ``@abc``, ``main~2`` and ``feature/x@`` or
    ``feature/x@abc`` (a name with a slash must end with ``@`` in a path).
    """

    regex = r"[^/]+|[^@]+@[^@/]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("nessieref", NessieRefConvertor())


class AppExtension(Protocol):
    """Routes a caller above the server mounts on its app: the web console.

    The server knows nothing of what it mounts, so the import arrows point down: the
    console uses the server's auth and rules; the CLI hands the console to the server.
    The extension's paths (``/`` and ``/ui/…``) sign people in themselves, so the
    server's bearer middleware leaves them alone.
    """

    def install(
        self,
        app: FastAPI,
        *,
        token: SecretStr | None,
        verifier: OidcVerifier | None,
        rules: AuthorizationRules | None,
    ) -> None:
        """Add the extension's routes to ``app``, with the server's auth and rules."""


def create_app(
    store: VersionStore,
    *,
    settings: ServerSettings | None = None,
    iceberg: IcebergRestSettings | None = None,
    oidc_verifier: OidcVerifier | None = None,
    console: AppExtension | None = None,
) -> FastAPI:
    """The server app over ``store``. The caller keeps ownership of ``store``.

    With ``settings.oidc`` requests need a bearer token of that issuer; ``oidc_verifier``
    replaces the verifier built from those settings (tests inject one with a transport).

    With ``iceberg`` (the warehouse and its FileIO settings) the Iceberg REST catalog
    is served under ``/iceberg`` too, and Nessie API v2 merges offer the ``contentMerge``
    opt-in (unless ``settings.content_merge`` is off); with ``console`` (for example
    ``lakehouse.console.WebConsole`` over a lakehouse on the same store) the web console
    at ``/``.
    """
    settings = settings or ServerSettings()
    metrics = ServerMetrics()
    add_log_context_provider("principal", _principal_log_context)
    app = FastAPI(
        title="Lakehouse catalog server",
        version=lakehouse.__version__,
        description=(
            "Project Nessie's REST API v2 (and v1, for v1-only clients) over the Lakehouse "
            "versioned catalog. "
            "Errors are Nessie's `NessieError` JSON; send `Nessie-Client-Spec: 2` "
            "to receive per-key conflict details. When the server runs with a token, "
            "`/api/…` requires `Authorization: Bearer <token>`."
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.metrics = metrics

    def count_conflict(request: Any) -> None:
        metrics.conflicts.labels(operation_of(request.scope)).inc()

    install_error_handlers(app, on_conflict=count_conflict)
    rules = None
    if settings.authorization_rules is not None:
        rules = AuthorizationRules.from_mapping(settings.authorization_rules)
    # content merges read the tables' files: offered when the server knows the warehouse
    content_merge_io = (
        api_v2.ContentMergeIO(iceberg.fileio_properties, iceberg.warehouse.contains)
        if iceberg is not None and settings.content_merge
        else None
    )
    v2_router, v2_handlers = api_v2.build(
        store, settings, metrics, rules, content_merge_io=content_merge_io
    )
    app.include_router(v2_router)
    app.include_router(api_v1.build_router(v2_handlers))
    if iceberg is not None:
        app.include_router(build_iceberg_router(store, iceberg, metrics, rules))

    _install_docs(app)
    if oidc_verifier is None and settings.oidc is not None:
        oidc_verifier = OidcVerifier(settings.oidc)
    if console is not None:
        console.install(app, token=settings.token, verifier=oidc_verifier, rules=rules)

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process is up")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "UP"})

    @app.get("/readyz", tags=["operations"], summary="Readiness: the catalog store answers")
    def readyz() -> JSONResponse:
        try:
            head = store.get_reference(store.default_branch)
        except Exception as exc:  # any failure means "not ready"; the reason is logged
            log.warning("readiness check failed: %s", exc)
            return JSONResponse(
                {"status": "DOWN", "checks": [{"name": "catalog", "status": "DOWN"}]},
                status_code=503,
            )
        check = {"name": "catalog", "status": "UP", "data": {"defaultBranch": head.name}}
        return JSONResponse({"status": "UP", "checks": [check]})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # add_middleware puts each new one outside the previous: innermost first here.
    app.add_middleware(RequestLimitMiddleware, max_bytes=settings.max_request_bytes)
    if oidc_verifier is not None:
        # the console signs people in itself (a token in a cookie, or a bearer header)
        app.add_middleware(OidcAuthMiddleware, verifier=oidc_verifier, console=console is not None)
    elif settings.token is not None:
        app.add_middleware(
            BearerAuthMiddleware,
            token=settings.token,
            console=console is not None,
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RefPathMiddleware)
    app.add_middleware(IcebergPathMiddleware)
    app.add_middleware(HeadAsGetMiddleware)
    return app


def _install_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` with assets from this process: no CDN."""
    import fastapi_offline

    assets = files(fastapi_offline) / "static"
    app.mount(DOCS_STATIC, StaticFiles(directory=str(assets)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_STATIC}/favicon.png",
            with_google_fonts=False,
        )


def _principal_log_context() -> dict[str, str]:
    """The principal of the request being served, for every log line it causes."""
    principal = current_principal.get()
    return {"principal": principal.name} if principal is not None and principal.name else {}


def make_server(
    store: VersionStore,
    host: str = "127.0.0.1",
    port: int = 19120,
    *,
    settings: ServerSettings | None = None,
    log_level: str = "info",
    iceberg: IcebergRestSettings | None = None,
    console: AppExtension | None = None,
) -> uvicorn.Server:
    """A uvicorn server for ``store``, not started (``run()`` it, or ``should_exit`` it)."""
    no_auth = settings is None or (settings.token is None and settings.oidc is None)
    if no_auth and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "serving the catalog on %s without authentication: anyone who can reach "
            "the port can change the catalog; set a token",
            host,
        )
    if settings is not None and (settings.tls_certfile is None) != (settings.tls_keyfile is None):
        raise ConfigError("TLS needs both a certificate file and a key file")
    config = uvicorn.Config(
        create_app(store, settings=settings, iceberg=iceberg, console=console),
        host=host,
        port=port,
        log_level=log_level,
        # logging configured by the CLI (text or JSON): uvicorn's lines go through it too
        log_config=None if logging_configured() else uvicorn.config.LOGGING_CONFIG,
        proxy_headers=False,
        server_header=False,
        ssl_certfile=settings.tls_certfile if settings is not None else None,
        ssl_keyfile=settings.tls_keyfile if settings is not None else None,
    )
    return uvicorn.Server(config)


@contextmanager
def serving(server: uvicorn.Server, *, timeout: float = 30.0) -> Iterator[int]:
    """Run ``server`` in a background thread for the ``with`` block; yields its port.

    For embedding the server in another process (a notebook, a benchmark, a test): waits
    until it accepts connections (:class:`~lakehouse.errors.LakehouseError` after
    ``timeout`` seconds or if it dies while starting), and stops it when the block ends.
    """
    failed: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # uvicorn exits (SystemExit) when it cannot bind
            failed.append(exc.__context__ or exc)

    thread = threading.Thread(target=run, name="lakehouse-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if failed or not thread.is_alive():
            thread.join(timeout=timeout)
            reason = f": {failed[0]}" if failed else ""
            raise LakehouseError(f"the catalog server stopped while starting{reason}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise LakehouseError(f"the catalog server did not start within {timeout:g} s")
        time.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)


def run(
    store: VersionStore,
    host: str = "127.0.0.1",
    port: int = 19120,
    *,
    settings: ServerSettings | None = None,
    log_level: str = "info",
    iceberg: IcebergRestSettings | None = None,
) -> None:
    """Serve ``store`` with uvicorn until interrupted (``lakehouse serve``)."""
    make_server(store, host, port, settings=settings, log_level=log_level, iceberg=iceberg).run()


__all__ = ["AppExtension", "NessieRefConvertor", "create_app", "make_server", "run"]
