"""Several server processes on one port: ``lakehouse serve --workers N``.

uvicorn's supervisor spawns ``N`` fresh interpreters that share one listening socket
(the kernel spreads connections over them). Each builds its own app with
:func:`create_app_from_env`, through a factory uvicorn imports by name (``factory=True``;
``lakehouse serve`` names ``lakehouse.cli.serve:worker_app``, which adds the web
console: the server never imports the console). The parent
hands down what the command line said as JSON in the environment variable
:data:`SPEC_ENV` (:class:`WorkerSpec`); it holds no secret: a worker reads the bearer
token again from the variable ``--token-env`` named, and the console's client secret from
``LAKEHOUSE_SERVER__OIDC__CONSOLE_CLIENT_SECRET``. Everything else (catalog URI,
warehouse, S3) comes from the same ``LAKEHOUSE_*`` environment and ``.env`` file.

Only a PostgreSQL catalog may have several workers (:func:`check_workers`): SQLite lets
one writer in at a time, so more processes would only queue on its lock.

What a worker keeps in memory, and why none of it can go stale when other workers (or
other replicas behind the same URL) write:

===========================  ===============================================================
state                        why it is safe
===========================  ===============================================================
references, repo config      not cached: every request reads the database; a commit checks
                             its expected hash in the transaction that moves the reference
commits, key-tree nodes      cached by hash: content-addressed rows are never rewritten
Iceberg metadata, manifests  cached by file path: Iceberg never rewrites a file
OIDC discovery and JWKS      per process, each refreshed on its own (unknown ``kid``: refetch)
console sign-in              in cookies (the PKCE flow and the token): no server session
metrics                      one file per process in a shared folder
                             (``PROMETHEUS_MULTIPROC_DIR``): ``/metrics`` sums all workers
===========================  ===============================================================
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from lakehouse.errors import ConfigError, LakehouseError
from lakehouse.server.metrics import MULTIPROCESS_DIR_ENV as METRICS_DIR_ENV
from lakehouse.server.settings import ServerSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lakehouse.client import Lakehouse
    from lakehouse.server.app import AppExtension

log = logging.getLogger(__name__)

#: Environment variable carrying the :class:`WorkerSpec` (JSON) from the parent to workers.
SPEC_ENV = "LAKEHOUSE_SERVE_WORKER_SPEC"
#: Variable holding the console's OIDC client secret (never in the spec).
CONSOLE_SECRET_ENV = "LAKEHOUSE_SERVER__OIDC__CONSOLE_CLIENT_SECRET"


class WorkerSpec(BaseModel):
    """What every worker needs beyond the ``LAKEHOUSE_*`` settings. No secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The global options of the command line (``--home``, ``--ref``, log format, level).
    home: str | None = None
    ref: str | None = None
    log_format: str | None = None
    log_level: str | None = None
    #: The server settings with ``token`` and the console's client secret left out.
    server: dict[str, Any] = Field(default_factory=dict)
    #: Name of the variable holding the static bearer token (``--token-env``), if any.
    token_env: str | None = None

    @classmethod
    def of(
        cls,
        settings: ServerSettings,
        *,
        token_env: str | None,
        home: str | None = None,
        ref: str | None = None,
        log_format: str | None = None,
        log_level: str | None = None,
    ) -> WorkerSpec:
        """The spec of ``settings``; its secrets must be readable from the environment."""
        if settings.token is not None and token_env is None:
            raise ConfigError("workers read the bearer token from a variable: use --token-env")
        server = settings.model_dump(
            mode="json", exclude={"token": True, "oidc": {"console_client_secret"}}
        )
        return cls(
            home=home,
            ref=ref,
            log_format=log_format,
            log_level=log_level,
            server=server,
            token_env=token_env,
        )

    def to_env(self) -> str:
        """The JSON value of :data:`SPEC_ENV`."""
        return self.model_dump_json()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> WorkerSpec:
        """The spec the parent left in :data:`SPEC_ENV` (:class:`ConfigError` if none)."""
        raw = (environ if environ is not None else os.environ).get(SPEC_ENV)
        if not raw:
            raise ConfigError(f"{SPEC_ENV} is not set: workers are started by lakehouse serve")
        return cls.model_validate_json(raw)

    def server_settings(self, environ: dict[str, str] | None = None) -> ServerSettings:
        """The full server settings: the spec's, with secrets read from the environment."""
        env = environ if environ is not None else os.environ
        data = json.loads(json.dumps(self.server))
        if self.token_env is not None:
            token = env.get(self.token_env, "").strip()
            if not token:
                raise ConfigError(f"--token-env {self.token_env}: the variable is empty")
            data["token"] = SecretStr(token)
        secret = env.get(CONSOLE_SECRET_ENV, "").strip()
        if data.get("oidc") is not None and secret:
            data["oidc"]["console_client_secret"] = SecretStr(secret)
        return ServerSettings.model_validate(data)


def check_workers(workers: int, catalog_uri: str) -> None:
    """Refuse ``workers > 1`` unless the catalog is PostgreSQL (one-line reason)."""
    if workers < 1:
        raise ConfigError(f"--workers {workers}: use 1 or more")
    if workers > 1 and not catalog_uri.startswith("postgresql"):
        raise ConfigError(
            f"--workers {workers} needs a PostgreSQL catalog: SQLite admits one writer at a "
            "time, so more processes would only queue on its lock "
            "(set LAKEHOUSE_CATALOG__URI=postgresql+psycopg://…, or use --workers 1)"
        )


def create_app_from_env(console: Callable[[Lakehouse], AppExtension] | None = None) -> FastAPI:
    """The app of one worker process: settings from the environment, its own store.

    ``console`` builds the extension mounted at ``/`` from the worker's lakehouse (the
    web console). Called in every worker by the factory uvicorn imports; never by the
    parent. A
    worker that cannot build its app logs one line and exits with uvicorn's startup
    failure code, so that the supervisor stops instead of restarting it again and again.
    """
    try:
        return _create_app_from_env(console)
    except LakehouseError as exc:
        from uvicorn.config import STARTUP_FAILURE

        log.error("server worker cannot start: %s", exc)
        raise SystemExit(STARTUP_FAILURE) from None


def _create_app_from_env(console: Callable[[Lakehouse], AppExtension] | None) -> FastAPI:
    from lakehouse.client import connect
    from lakehouse.config import load_settings
    from lakehouse.observability import configure_logging
    from lakehouse.server.app import create_app
    from lakehouse.server.iceberg_rest import IcebergRestSettings

    spec = WorkerSpec.from_env()
    settings = load_settings(
        home=spec.home, ref=spec.ref, log_format=spec.log_format, log_level=spec.log_level
    )
    configure_logging(settings.log_format.lower(), settings.log_level)
    check_workers(2, settings.catalog_uri)  # a worker is one of several
    lh = connect(settings=settings)
    return create_app(
        lh.store,
        settings=spec.server_settings(),
        iceberg=IcebergRestSettings.from_settings(lh.settings),
        console=console(lh) if console is not None else None,
    )


@contextmanager
def shared_metrics_dir() -> Iterator[str]:
    """A fresh folder for the workers' metric files, in :data:`METRICS_DIR_ENV` meanwhile."""
    folder = tempfile.mkdtemp(prefix="lakehouse-metrics-")
    previous = os.environ.get(METRICS_DIR_ENV)
    os.environ[METRICS_DIR_ENV] = folder
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(METRICS_DIR_ENV, None)
        else:
            os.environ[METRICS_DIR_ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)


def run_workers(
    spec: WorkerSpec,
    sock: socket.socket,
    workers: int,
    *,
    factory: str,
    log_level: str = "info",
    log_config: dict[str, Any] | None = None,
    tls_certfile: str | None = None,
    tls_keyfile: str | None = None,
) -> None:
    """Serve on ``sock`` with ``workers`` processes until SIGINT or SIGTERM.

    ``factory`` is the import string of a no-argument function returning the app
    (``module:function``) that calls :func:`create_app_from_env`.

    Raises :class:`ConfigError` when a worker could not start (its reason is in the log).
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    previous = os.environ.get(SPEC_ENV)
    os.environ[SPEC_ENV] = spec.to_env()
    try:
        with shared_metrics_dir():
            config = uvicorn.Config(
                factory,
                factory=True,
                workers=workers,
                log_level=log_level,
                log_config=log_config,
                proxy_headers=False,
                server_header=False,
                ssl_certfile=tls_certfile,
                ssl_keyfile=tls_keyfile,
            )
            supervisor = Multiprocess(config, sockets=[sock])
            supervisor.run()
    finally:
        if previous is None:
            os.environ.pop(SPEC_ENV, None)
        else:
            os.environ[SPEC_ENV] = previous
    from uvicorn.config import STARTUP_FAILURE

    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        raise ConfigError("a server worker failed to start; its reason is logged above")


__all__ = [
    "SPEC_ENV",
    "WorkerSpec",
    "check_workers",
    "create_app_from_env",
    "run_workers",
]
