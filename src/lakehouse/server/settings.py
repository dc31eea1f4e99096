"""Settings of the catalog server (``lakehouse serve``).

A plain pydantic model so that :class:`lakehouse.config.Settings` can nest it (as
``server``, read from ``LAKEHOUSE_SERVER__*``); the server itself never reads the
environment.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from lakehouse.server.oidc import OidcSettings

#: Default cap on a request body: Nessie's own default for a commit is far below this.
DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024


class ServerSettings(BaseModel):
    """How the server behaves. Every field has a safe default; auth is off by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: When set, every ``/api/…`` request must carry ``Authorization: Bearer <token>``;
    #: others get 401. ``/healthz``, ``/readyz``, ``/metrics`` and the OpenAPI document
    #: stay open so that probes and scrapers work: restrict them at the network level.
    token: SecretStr | None = None
    #: When set, every ``/api/…`` and ``/iceberg/…`` request must carry a bearer token
    #: issued by this OIDC provider (:mod:`lakehouse.server.oidc`); replaces ``token``.
    oidc: OidcSettings | None = None
    #: Nessie authorization rules by id (``nessie.server.authorization.rules.<id>``); when
    #: set (even empty) every Nessie API and Iceberg REST call is checked, deny by default
    #: (:mod:`lakehouse.server.authz`, :mod:`lakehouse.server.iceberg_authz`), and the
    #: console shows only what the rules allow.
    authorization_rules: dict[str, str] | None = None
    #: PEM certificate chain and private key: serve HTTPS instead of HTTP (both or neither).
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    #: Requests with a larger body are refused with 413 before the body is read.
    max_request_bytes: int = Field(default=DEFAULT_MAX_REQUEST_BYTES, ge=1)
    #: Page size when a client sends no ``max-records`` (Nessie: a hint, not a promise).
    default_page_size: int = Field(default=250, ge=1)
    #: Upper bound for ``max-records``; larger values are lowered to it.
    max_page_size: int = Field(default=10_000, ge=1)
    #: Offer the ``contentMerge`` opt-in of Nessie API v2 merges (content-aware table
    #: merges computed on the server) when the server serves a warehouse; advertised in
    #: ``GET /api/v2/config``. Off: merges keep Nessie's semantics only, and clients merge
    #: by content themselves.
    content_merge: bool = True


__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "ServerSettings"]
