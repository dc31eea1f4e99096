"""``lakehouse serve``: the catalog server over this lakehouse's store and warehouse.

Serves Nessie's REST API v2 (``/api/v2``) and v1 (``/api/v1``, for v1-only clients such as
pynessie) and the Iceberg REST catalog (``/iceberg/``,
the reference in the prefix) from one uvicorn process until Ctrl-C or SIGTERM, then
stops cleanly (exit code 0). Only typer and the standard library are imported at
module level; the server stack is imported when the command runs.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lakehouse.cli._common import Output, OutputOpt, State, console, print_json

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lakehouse.client import Lakehouse
    from lakehouse.server import ServerSettings

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), handed to uvicorn."""
    from lakehouse.errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # listening at once: clients that read the printed URI before uvicorn accepts
        # connections wait in the backlog instead of being refused
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        if exc.errno == errno.EADDRINUSE:
            # 19120 is also the real Nessie server's port: say how to pick another
            message += " (another server has it; choose a port with --port N, or --port 0)"
        raise ConfigError(message) from None
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve_command(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Interface to listen on. Keep loopback unless a token is set (--token-env).",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option("--port", "-p", min=0, max=65535, help="Port to listen on (0: any free)."),
    ] = 19120,
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            metavar="VAR",
            help=(
                "Require 'Authorization: Bearer <token>' on the APIs, the token being the "
                "value of environment variable VAR (never pass a token on the command line)."
            ),
            show_default=False,
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert",
            envvar="LAKEHOUSE_SERVER__TLS_CERTFILE",
            help="PEM certificate (chain): serve HTTPS. Needs --tls-key.",
            show_default=False,
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            "--tls-key",
            envvar="LAKEHOUSE_SERVER__TLS_KEYFILE",
            help="PEM private key of --tls-cert.",
            show_default=False,
        ),
    ] = None,
    oidc_issuer: Annotated[
        str | None,
        typer.Option(
            "--oidc-issuer",
            envvar="LAKEHOUSE_SERVER__OIDC__ISSUER",
            help="Require OIDC bearer tokens of this issuer (replaces --token-env).",
            show_default=False,
        ),
    ] = None,
    oidc_audience: Annotated[
        str | None,
        typer.Option(
            "--oidc-audience",
            envvar="LAKEHOUSE_SERVER__OIDC__AUDIENCE",
            help="Expected 'aud' of the tokens.",
            show_default=False,
        ),
    ] = None,
    oidc_roles_claim: Annotated[
        str,
        typer.Option(
            "--oidc-roles-claim",
            envvar="LAKEHOUSE_SERVER__OIDC__ROLES_CLAIM",
            help="Dotted path of the roles claim (Keycloak: realm_access.roles).",
        ),
    ] = "groups",
    oidc_console_client_id: Annotated[
        str | None,
        typer.Option(
            "--oidc-console-client-id",
            envvar="LAKEHOUSE_SERVER__OIDC__CONSOLE_CLIENT_ID",
            help=(
                "OAuth2 client of the console's sign-in (authorization code + PKCE; redirect "
                "URI <server>/ui/login/callback). A confidential client's secret is read from "
                "LAKEHOUSE_SERVER__OIDC__CONSOLE_CLIENT_SECRET."
            ),
            show_default=False,
        ),
    ] = None,
    oidc_principal_claim: Annotated[
        str,
        typer.Option(
            "--oidc-principal-claim",
            envvar="LAKEHOUSE_SERVER__OIDC__PRINCIPAL_CLAIM",
            help="Claim naming the principal (Nessie's 'role'); falls back to 'sub'.",
        ),
    ] = "preferred_username",
    oidc_leeway: Annotated[
        int,
        typer.Option(
            "--oidc-leeway",
            envvar="LAKEHOUSE_SERVER__OIDC__LEEWAY_SECONDS",
            min=0,
            max=600,
            help="Clock skew allowed on 'exp' and 'nbf', in seconds.",
        ),
    ] = 30,
    rules_file: Annotated[
        Path | None,
        typer.Option(
            "--authorization-rules",
            envvar="LAKEHOUSE_SERVER__AUTHORIZATION_RULES_FILE",
            help=(
                "Nessie properties file whose nessie.server.authorization.rules.<id> "
                "entries are enforced (deny by default)."
            ),
            show_default=False,
        ),
    ] = None,
    no_content_merge: Annotated[
        bool,
        typer.Option(
            "--no-content-merge",
            envvar="LAKEHOUSE_SERVER__NO_CONTENT_MERGE",
            help=(
                "Do not offer the contentMerge opt-in of Nessie API v2 merges (content-aware "
                "table merges computed by the server); clients then merge by content "
                "themselves, as against the real Nessie."
            ),
        ),
    ] = False,
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level", help="uvicorn log level: critical, error, warning, info, debug."
        ),
    ] = "info",
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-w",
            envvar="LAKEHOUSE_SERVER__WORKERS",
            min=1,
            max=64,
            help="Server processes sharing the port (more than 1 needs a PostgreSQL catalog).",
        ),
    ] = 1,
    output: OutputOpt = None,
) -> None:
    """Serve the catalog: console at /, Nessie API at /api/v2 (and v1), Iceberg REST at /iceberg/.

    Uses the lakehouse's catalog store (SQLite file or PostgreSQL) and warehouse.
    Stops on Ctrl-C or SIGTERM.

    Example: CATALOG_TOKEN=s3cret lakehouse serve --host 0.0.0.0 --token-env CATALOG_TOKEN
    """
    import signal

    from lakehouse.errors import ConfigError

    levels = ("critical", "error", "warning", "info", "debug", "trace")
    if log_level.lower() not in levels:
        raise ConfigError(f"invalid --log-level {log_level!r}: use one of {', '.join(levels)}")
    token: str | None = None
    if token_env is not None:
        token = os.environ.get(token_env, "").strip()
        if not token:
            raise ConfigError(
                f"--token-env {token_env}: environment variable {token_env} is not set or empty"
            )

    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    for option, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if path is not None and not path.is_file():
            raise ConfigError(f"{option} {path}: no such file")

    if oidc_issuer and token_env:
        raise ConfigError("use either --oidc-issuer or --token-env, not both")
    if oidc_console_client_id and not oidc_issuer:
        raise ConfigError("--oidc-console-client-id needs --oidc-issuer")
    console_secret = os.environ.get("LAKEHOUSE_SERVER__OIDC__CONSOLE_CLIENT_SECRET", "").strip()
    rules: dict[str, str] | None = None
    if rules_file is not None:
        from lakehouse.server.authz import RULE_PREFIX, AuthorizationRules, parse_properties

        try:
            text = rules_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--authorization-rules {rules_file}: {exc.strerror}") from None
        rules = {
            k.removeprefix(RULE_PREFIX): v
            for k, v in parse_properties(text).items()
            if k.startswith(RULE_PREFIX)
        }
        AuthorizationRules.from_mapping(rules)  # a rule that does not compile: error now

    state = State.of(ctx)
    lh = state.lakehouse()
    if lh.settings.catalog_uri.startswith(("http://", "https://")):
        raise ConfigError(
            "lakehouse serve serves a catalog database (SQLite or PostgreSQL); "
            "the configured catalog is already a server: "
            f"{lh.settings.summary()['catalog']}"
        )

    from pydantic import SecretStr

    from lakehouse.server import ServerSettings
    from lakehouse.server.oidc import OidcSettings
    from lakehouse.server.workers import check_workers

    check_workers(workers, lh.settings.catalog_uri)
    server_settings = ServerSettings(
        token=SecretStr(token) if token else None,
        tls_certfile=str(tls_cert) if tls_cert else None,
        tls_keyfile=str(tls_key) if tls_key else None,
        oidc=OidcSettings(
            issuer=oidc_issuer,
            audience=oidc_audience,
            roles_claim=oidc_roles_claim,
            console_client_id=oidc_console_client_id,
            console_client_secret=SecretStr(console_secret) if console_secret else None,
            principal_claim=oidc_principal_claim,
            leeway_seconds=oidc_leeway,
        )
        if oidc_issuer
        else None,
        authorization_rules=rules,
        content_merge=not no_content_merge,
    )
    sock = _bind(host, port)
    actual_port = int(sock.getsockname()[1])
    if workers > 1:
        run = _worker_processes(state, server_settings, token_env, workers, log_level.lower())
    else:
        run = _single_process(lh, server_settings, host, actual_port, log_level.lower())
    scheme = "https" if tls_cert else "http"
    base = f"{scheme}://{_url_host(host)}:{actual_port}"
    info = {
        "console_uri": f"{base}/",
        "docs_uri": f"{base}/docs",
        "redoc_uri": f"{base}/redoc",
        "metrics_uri": f"{base}/metrics",
        "health_uri": f"{base}/healthz",
        "ready_uri": f"{base}/readyz",
        "nessie_uri": f"{base}/api/v2",
        "nessie_v1_uri": f"{base}/api/v1",
        "iceberg_uri": f"{base}/iceberg/",
        "catalog": lh.settings.summary()["catalog"],
        "warehouse": lh.settings.summary()["warehouse"],
        "default_branch": lh.default_branch,
        "auth": "oidc" if oidc_issuer else ("bearer token" if token else "none"),
        "authorization": "rules" if rules is not None else "none",
        "workers": workers,
        "content_merge": not no_content_merge,
    }
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal with the
    # previous handler: make SIGTERM end like Ctrl-C (KeyboardInterrupt, caught below).
    # Installed before the URIs are printed, so a client that saw them can always stop us.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if state.format(output) is Output.JSON:
            print_json(info)
        else:
            out = console()
            out.print(f"console:        {info['console_uri']}")
            out.print(f"Nessie API v2:  {info['nessie_uri']}")
            out.print(f"Nessie API v1:  {info['nessie_v1_uri']}")
            out.print(f"Iceberg REST:   {info['iceberg_uri']}")
            out.print(f"API docs:       {info['docs_uri']}  (ReDoc: {info['redoc_uri']})")
            out.print(f"metrics:        {info['metrics_uri']}")
            out.print(f"health:         {info['health_uri']}  (ready: {info['ready_uri']})")
            out.print(
                f"catalog:        {info['catalog']}  (default branch {info['default_branch']})"
            )
            out.print(f"warehouse:      {info['warehouse']}")
            if workers > 1:
                out.print(f"workers:        {workers} processes")
            if not token and not oidc_issuer and host not in _LOOPBACK:
                out.print(
                    "auth:           none: anyone who can reach the port can change the catalog"
                )
            out.print("Press Ctrl-C to stop.")
        sys.stdout.flush()
        run(sock)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    if state.format(output) is not Output.JSON:
        console().print("Stopped.")


def _single_process(
    lh: Lakehouse, settings: ServerSettings, host: str, port: int, log_level: str
) -> Callable[[socket.socket], None]:
    """Serve from this process (``--workers 1``): the app over the open lakehouse."""
    from lakehouse.console import WebConsole
    from lakehouse.server.app import make_server
    from lakehouse.server.iceberg_rest import IcebergRestSettings

    server = make_server(
        lh.store,
        host,
        port,
        settings=settings,
        log_level=log_level,
        iceberg=IcebergRestSettings.from_settings(lh.settings),
        console=WebConsole(lh),
    )
    return lambda sock: server.run(sockets=[sock])


def _worker_processes(
    state: State, settings: ServerSettings, token_env: str | None, workers: int, log_level: str
) -> Callable[[socket.socket], None]:
    """Serve from ``workers`` processes, each with its own app (:mod:`lakehouse.server.workers`)."""
    import uvicorn

    from lakehouse.observability import logging_configured
    from lakehouse.server.workers import WorkerSpec, run_workers

    spec = WorkerSpec.of(
        settings,
        token_env=token_env,
        home=str(state.home) if state.home is not None else None,
        ref=state.ref,
        log_format=state.log_format,
        log_level=state.log_level,
    )
    log_config = None if logging_configured() else uvicorn.config.LOGGING_CONFIG

    def run(sock: socket.socket) -> None:
        run_workers(
            spec,
            sock,
            workers,
            factory=WORKER_APP,
            log_level=log_level,
            log_config=log_config,
            tls_certfile=settings.tls_certfile,
            tls_keyfile=settings.tls_keyfile,
        )

    return run


#: What uvicorn imports in each worker of ``serve --workers N``.
WORKER_APP = "lakehouse.cli.serve:worker_app"


def worker_app() -> FastAPI:
    """The app of one worker process, with the web console (uvicorn calls it, ``factory=True``).

    The console is wired here, not in :mod:`lakehouse.server.workers`: the server never
    imports the console (it takes an ``AppExtension``).
    """
    from lakehouse.console import WebConsole
    from lakehouse.server.workers import create_app_from_env

    return create_app_from_env(console=WebConsole)


def ui_command(
    ctx: typer.Context,
    port: Annotated[
        int,
        typer.Option("--port", "-p", min=0, max=65535, help="Port to listen on (0: any free)."),
    ] = 19120,
    output: OutputOpt = None,
) -> None:
    """Open the web console on this lakehouse: the same app as serve, on loopback only.

    Example: lakehouse ui --port 8080
    """
    serve_command(ctx, host="127.0.0.1", port=port, token_env=None, log_level="info", output=output)


__all__ = ["serve_command", "ui_command"]
