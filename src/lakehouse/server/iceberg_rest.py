"""The Iceberg REST catalog (``/iceberg``) over the versioned catalog; the prefix is the reference.

Any Iceberg REST client (PyIceberg's ``RestCatalog``, Spark/Trino/Flink with
``type=rest``) works with ``uri=http://host:19120/iceberg/``. As in Nessie, the spec's
``{prefix}`` names the reference the request reads or writes::

    GET  /iceberg/v1/config[?warehouse=W]          defaults.prefix = the default branch
                                                   (``main|W`` URL-encoded when W is given)
    GET  /iceberg/v1/config?warehouse=<ref>[|W]    defaults.prefix = ref (DuckDB's ATTACH)
    GET  /iceberg/{ref}/v1/config                  defaults.prefix = ref
                                                   (so uri=…/iceberg/dev selects branch dev)
    GET  /iceberg/v1/{prefix}/namespaces[?parent=]                list
    POST /iceberg/v1/{prefix}/namespaces                          create
    GET|HEAD|DELETE /iceberg/v1/{prefix}/namespaces/{ns}          load, exists, drop (empty)
    POST /iceberg/v1/{prefix}/namespaces/{ns}/properties          update properties
    GET  /iceberg/v1/{prefix}/namespaces/{ns}/tables              list
    POST /iceberg/v1/{prefix}/namespaces/{ns}/tables              create (also stage-create)
    GET|HEAD|DELETE /iceberg/v1/{prefix}/namespaces/{ns}/tables/{t}  load, exists, drop
    POST /iceberg/v1/{prefix}/namespaces/{ns}/tables/{t}          commit (requirements+updates)
    POST /iceberg/v1/{prefix}/namespaces/{ns}/tables/{t}/metrics  accepted and ignored
    POST /iceberg/v1/{prefix}/namespaces/{ns}/register            register metadata file
    POST /iceberg/v1/{prefix}/tables/rename                       rename (one catalog commit)
    POST /iceberg/v1/{prefix}/transactions/commit                 multi-table: one commit

**Config.** ``overrides`` are the real Nessie's (:func:`nessie_overrides`):
``nessie.is-nessie-catalog``, ``nessie.prefix-pattern``, ``nessie.default-branch.name``,
``nessie.core-base-uri``, ``nessie.iceberg-base-uri``, ``nessie.catalog-base-uri`` and
``uri``: what Nessie's Spark SQL extensions and the Nessie CLI look for.

**Prefix.** ``ref`` or ``ref|warehouse`` (Nessie's form); ``ref`` uses Nessie's path
syntax: ``main``, ``dev@<hash>``, ``@<hash>``, ``main~2``, ``main*2026-01-01T00:00:00Z``,
a tag name, or ``-`` for the default branch. A ``/`` in a branch name is written
``%2F`` or ``%1F`` (Nessie). Writes need the head of a branch: a tag, ``name@hash``,
a detached hash or a relative spec is read-only (400 with a message saying so).

**Namespaces** in paths are the levels joined by ``%1F`` (the spec's unit separator).
Iceberg namespaces are Nessie ``Namespace`` contents; a nested namespace needs its
parent (404 otherwise).

**Commits** go through :meth:`lakehouse.catalog.iceberg.RefCatalog.commit_tables`: the
server validates the requirements against the table's current metadata, applies the
updates (``update_table_metadata``), writes the new metadata file and commits it with
the hash it read at. Requirements are strict here (no server-side rebase of stale
appends: a failed requirement is 409 ``CommitFailedException`` and the client
retries). ``transactions/commit`` validates every table, writes every metadata file and
then makes *one* catalog commit with all of them and the expected hash: all tables
change, or none does.

**Safety.** Tables always carry ``gc.enabled=false`` and never delete old metadata;
``DELETE …/tables/{t}?purgeRequested=true`` is accepted but only drops the table from
the branch: no file is deleted, because other branches, tags and old commits may still
use them (``lakehouse maintenance gc`` collects unreachable files). Table locations,
``write.*.path`` properties and metadata files to register must be inside the
configured warehouse (403 ``ForbiddenException`` otherwise), and the server refuses to
read or write metadata of tables whose metadata lies outside it, however they got into
the catalog.

**Authorization.** With Nessie's authorization rules configured, each operation is checked
as the Nessie operations it implies (:mod:`lakehouse.server.iceberg_authz`): a refusal is
403 ``ForbiddenException`` naming the failed checks; listings leave out keys whose
``READ_CONTENT_KEY`` fails.

Not served: views, credential vending, server-side scan planning, the OAuth2 token
endpoint (use a bearer token), ETags on load. ``snapshots=refs`` on load returns all
snapshots. See :mod:`lakehouse.server.iceberg_errors` for error bodies and statuses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import quote, unquote, unquote_plus

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import Field
from pyiceberg import exceptions as ice
from pyiceberg.catalog.rest import (
    Capability,
    CreateTableRequest,
    Endpoint,
    HttpMethod,
    ListNamespaceResponse,
    ListTableResponseEntry,
    ListTablesResponse,
    NamespaceResponse,
    RegisterTableRequest,
    TableResponse,
    UpdateNamespacePropertiesResponse,
)
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.table import TableIdentifier
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder
from pyiceberg.table.update import AssertCreate, TableRequirement, TableUpdate
from pyiceberg.typedef import IcebergBaseModel
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from lakehouse.catalog.iceberg import (
    LOCATIONS_CONFINED,
    REBASE_FAST_APPENDS,
    RefCatalog,
    TableChange,
)
from lakehouse.catalog.model import ContentKey, ContentType, RefSpec
from lakehouse.catalog.store import VersionStore
from lakehouse.errors import ReadOnlyReferenceError, ReferenceNotFoundError
from lakehouse.server import wire
from lakehouse.server.authz import AuthorizationRules, CheckType
from lakehouse.server.iceberg_authz import EntityChange, IcebergAccess, parents
from lakehouse.server.iceberg_errors import (
    ICEBERG_ROOT,
    IcebergRestError,
    iceberg_error_response,
    map_exception,
)
from lakehouse.server.metrics import ServerMetrics
from lakehouse.storage.zones import Warehouse

if TYPE_CHECKING:
    from lakehouse.config import Settings

log = logging.getLogger(__name__)

M = TypeVar("M", bound=IcebergBaseModel)

#: Name of the catalog the server's RefCatalogs carry (shows in PyIceberg reprs).
CATALOG_NAME = "lakehouse"
#: Name of the one warehouse this server serves (the ``warehouse`` config parameter).
DEFAULT_WAREHOUSE_NAME = "warehouse"
#: The spec's namespace level separator in paths (``%1F`` once URL-decoded).
NAMESPACE_SEPARATOR = "\x1f"
#: Upper bound for ``pageSize``.
MAX_PAGE_SIZE = 1000
#: FileIO properties that may be passed to clients (never credentials).
_CLIENT_FILEIO_KEYS = ("s3.endpoint", "s3.region", "s3.force-virtual-addressing")

_PREFIX_PATH = "/v1/{prefix}"
_TRANSACTIONS = Endpoint(http_method=HttpMethod.POST, path=f"{_PREFIX_PATH}/transactions/commit")
_REPORT_METRICS = Endpoint(
    http_method=HttpMethod.POST,
    path=f"{_PREFIX_PATH}/namespaces/{{namespace}}/tables/{{table}}/metrics",
)
#: What ``/v1/config`` advertises (PyIceberg and the Java client check this list).
ENDPOINTS: tuple[Endpoint, ...] = (
    Capability.V1_LIST_NAMESPACES,
    Capability.V1_LOAD_NAMESPACE,
    Capability.V1_NAMESPACE_EXISTS,
    Capability.V1_UPDATE_NAMESPACE,
    Capability.V1_CREATE_NAMESPACE,
    Capability.V1_DELETE_NAMESPACE,
    Capability.V1_LIST_TABLES,
    Capability.V1_LOAD_TABLE,
    Capability.V1_TABLE_EXISTS,
    Capability.V1_CREATE_TABLE,
    Capability.V1_UPDATE_TABLE,
    Capability.V1_DELETE_TABLE,
    Capability.V1_RENAME_TABLE,
    Capability.V1_REGISTER_TABLE,
    _REPORT_METRICS,
    _TRANSACTIONS,
)


@dataclass(frozen=True)
class IcebergRestSettings:
    """What the Iceberg REST catalog serves: one warehouse and how to reach its files.

    ``fileio_properties`` are the server's own FileIO settings (may hold credentials, never
    sent to clients); ``client_properties`` are handed to clients in ``/v1/config`` and in
    every table's ``config`` (e.g. ``s3.endpoint``; never credentials).
    ``warehouse_location`` is the configured warehouse root, accepted (like
    ``warehouse_name``) as the ``warehouse`` parameter and in ``ref|warehouse`` prefixes.
    """

    warehouse: Warehouse
    warehouse_name: str = DEFAULT_WAREHOUSE_NAME
    warehouse_location: str | None = None
    fileio_properties: dict[str, str] = field(default_factory=dict)
    client_properties: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> IcebergRestSettings:
        """The Iceberg REST settings of a lakehouse installation (``lakehouse serve``)."""
        fileio = settings.fileio_properties()
        return cls(
            warehouse=Warehouse.from_uri(settings.warehouse_location),
            warehouse_location=settings.warehouse_location,
            fileio_properties=fileio,
            client_properties={k: v for k, v in fileio.items() if k in _CLIENT_FILEIO_KEYS},
        )

    def is_warehouse(self, value: str) -> bool:
        """Whether ``value`` names this server's warehouse (by name or location)."""
        known = {self.warehouse_name}
        if self.warehouse_location:
            known |= {self.warehouse_location, self.warehouse_location.rstrip("/")}
            if self.warehouse_location.startswith("/"):
                known.add("file://" + self.warehouse_location.rstrip("/"))
        return value.rstrip("/") in known or value in known

    def unknown_warehouse(self, value: str) -> IcebergRestError:
        """The 400 for a ``warehouse`` that is not this server's."""
        return IcebergRestError(
            400,
            f"unknown warehouse {value[:200]!r}: this server serves one warehouse, "
            f"{self.warehouse_name!r}"
            + (f" ({self.warehouse_location})" if self.warehouse_location else "")
            + "; in GET /v1/config the warehouse may also name a reference "
            "('<ref>' or '<ref>|<warehouse>')",
        )

    def check_warehouse(self, value: str | None) -> None:
        """Refuse a ``warehouse`` that is not this server's (400)."""
        if value and not self.is_warehouse(value):
            raise self.unknown_warehouse(value)


# -- request models (PyIceberg's where it has them) ------------------------------------------


class CreateTableBody(CreateTableRequest):
    """PyIceberg's ``CreateTableRequest`` with the spec's optional fields optional."""

    location: str | None = None
    partition_spec: PartitionSpec | None = Field(default=None, alias="partition-spec")
    write_order: SortOrder | None = Field(default=None, alias="write-order")


class RegisterTableBody(RegisterTableRequest):
    """PyIceberg's ``RegisterTableRequest``; ``overwrite`` defaults to false (older clients)."""

    overwrite: bool = False


class CreateNamespaceBody(IcebergBaseModel):
    """The spec's ``CreateNamespaceRequest``."""

    namespace: list[str] = Field(min_length=1)
    properties: dict[str, str] = Field(default_factory=dict)


class UpdateNamespacePropertiesBody(IcebergBaseModel):
    """The spec's ``UpdateNamespacePropertiesRequest``."""

    removals: list[str] = Field(default_factory=list)
    updates: dict[str, str] = Field(default_factory=dict)


class RenameTableBody(IcebergBaseModel):
    """The spec's ``RenameTableRequest``."""

    source: TableIdentifier
    destination: TableIdentifier


class CommitTableBody(IcebergBaseModel):
    """The spec's ``CommitTableRequest`` (``identifier`` optional on the table endpoint)."""

    identifier: TableIdentifier | None = None
    requirements: tuple[TableRequirement, ...] = ()
    updates: tuple[TableUpdate, ...] = ()


class CommitTransactionBody(IcebergBaseModel):
    """The spec's ``CommitTransactionRequest``."""

    table_changes: list[CommitTableBody] = Field(alias="table-changes", min_length=1)


# -- routing -----------------------------------------------------------------------------------


class IcebergPathMiddleware:
    """Route ``/iceberg/…`` on the raw, still percent-encoded path.

    Namespace levels, table names and reference names may contain ``/`` (sent as ``%2F``);
    decoded before routing they would split path segments. Handlers decode each segment
    themselves (:func:`segment`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope["path"]).startswith(ICEBERG_ROOT + "/"):
            raw = scope.get("raw_path")
            if isinstance(raw, bytes):
                path = raw.split(b"?", 1)[0].decode("latin-1")
            else:  # no raw path from this server: re-encode what it decoded
                path = quote(str(scope["path"]), safe="/@|~^*:!$&'()+,;=-._")
            scope = dict(scope)
            scope["path"] = path
        await self.app(scope, receive, send)


def segment(raw: str) -> str:
    """A path segment as the client meant it (percent-decoded once)."""
    return unquote(raw)


def _is_commit_route(path: str) -> bool:
    return path.endswith(("/tables/{table}", "/transactions/commit"))


class IcebergRoute(APIRoute):
    """Turn every failure of an Iceberg handler into an ``IcebergErrorResponse``.

    Validation of parameters, body reading (413) and domain errors alike; 409s are
    counted in the conflict metric; 5xx are logged with their traceback.
    """

    def get_route_handler(self) -> Callable[[Request], Any]:
        """The FastAPI handler, wrapped."""
        handler = super().get_route_handler()
        commit = _is_commit_route(self.path) and "POST" in (self.methods or ())
        operation = _operation(self.path)

        async def guarded(request: Request) -> Response:
            try:
                response: Response = await handler(request)
                return response
            except Exception as exc:
                status, type_, message = map_exception(exc, commit=commit)
                if status >= 500:
                    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
                if status == 409:
                    metrics = getattr(request.app.state, "metrics", None)
                    if isinstance(metrics, ServerMetrics):
                        metrics.conflicts.labels(operation).inc()
                if request.method == "HEAD":
                    return Response(status_code=status)
                return iceberg_error_response(status, message, type_)

        return guarded


def _operation(path: str) -> str:
    """Label of the commit and conflict metrics for an Iceberg route."""
    if path.endswith("/transactions/commit"):
        return "iceberg-transaction"
    if path.endswith("/tables/{table}"):
        return "iceberg-commit"
    return "iceberg"


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]

_JSON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def _error_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["message", "type", "code"],
                            "properties": {
                                "message": {"type": "string"},
                                "type": {"type": "string"},
                                "code": {"type": "integer"},
                            },
                        }
                    },
                }
            }
        },
    }


_READ_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error_doc("Malformed prefix, namespace, table name or parameter"),
    401: _error_doc("Missing or wrong bearer token (when auth is on)"),
    403: _error_doc("A location outside the warehouse"),
    404: _error_doc("No such reference, namespace or table"),
}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_READ_ERRORS,
    409: _error_doc("Already exists, not empty, or a requirement failed (nothing committed)"),
    413: _error_doc("Request body too large"),
    500: _error_doc("Commit endpoints: the outcome of the commit is unknown"),
    503: _error_doc("Catalog unavailable (nothing committed)"),
}


def _json_model(model: IcebergBaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


def _no_content() -> Response:
    return Response(status_code=204)


def parse_body(model: type[M], body: bytes) -> M:
    """Validate a JSON request body (400 on anything malformed)."""
    if not body.strip():
        raise IcebergRestError(400, "Bad request: a JSON request body is required")
    return model.model_validate_json(body)


def nessie_overrides(base_url: str, branch: str) -> dict[str, str]:
    """The ``overrides`` by which Nessie-aware clients recognise a Nessie catalog server.

    The same keys and values as the real Nessie's ``/iceberg/v1/config``: Nessie's Spark
    SQL extensions and the Nessie CLI read them to find the Nessie API (``core-base-uri``)
    beside the Iceberg REST catalog, and to build prefixes (``{ref}|{warehouse}``).
    ``uri`` sends every later request to the plain ``/iceberg/`` base, so that a client
    configured with ``uri=…/iceberg/<ref>`` keeps ``<ref>`` only through the prefix;
    ``nessie.default-branch.name`` is the reference the config was asked for.
    """
    base = base_url.rstrip("/")
    return {
        "nessie.is-nessie-catalog": "true",
        "nessie.prefix-pattern": "{ref}|{warehouse}",
        "nessie.default-branch.name": branch,
        "nessie.core-base-uri": f"{base}/api/",
        "nessie.iceberg-base-uri": f"{base}{ICEBERG_ROOT}/",
        "nessie.catalog-base-uri": f"{base}/catalog/v1/",
        "uri": f"{base}{ICEBERG_ROOT}/",
    }


def parse_prefix(raw: str, default_branch: str, settings: IcebergRestSettings) -> RefSpec:
    """The reference a prefix names (``ref`` or ``ref|warehouse``; see the module docstring)."""
    text = segment(raw).replace(NAMESPACE_SEPARATOR, "/")
    ref, _, warehouse = text.partition("|")
    settings.check_warehouse(warehouse)
    if not ref or ref == wire.DEFAULT_REF_IN_PATH:
        return RefSpec(default_branch)
    return wire.parse_ref_path(ref, default_branch)


def parse_namespace(raw: str) -> tuple[str, ...]:
    """Namespace levels from a path segment (levels joined by the unit separator)."""
    levels = tuple(segment(raw).split(NAMESPACE_SEPARATOR))
    return ContentKey(levels).elements


def parse_parent(value: str) -> tuple[str, ...]:
    """Namespace levels from the ``parent`` query parameter.

    PyIceberg sends the URL-quoted levels joined by ``\\x1f``; the Java client joins them
    with a literal ``%1F`` (decoded once by the query parser). Each level is decoded again.
    """
    parts = (
        value.split(NAMESPACE_SEPARATOR)
        if NAMESPACE_SEPARATOR in value
        else re.split("%1[fF]", value)
    )
    return ContentKey(tuple(unquote_plus(p) for p in parts)).elements


def _identifier(identifier: TableIdentifier) -> tuple[str, ...]:
    return ContentKey((*identifier.namespace.root, identifier.name)).elements


def _page(
    items: Sequence[tuple[str, ...]], token: str | None, size: int | None
) -> tuple[list[tuple[str, ...]], str | None]:
    """One page of sorted identifiers; the token is the (hex) key of the next one."""
    ordered = sorted(items)
    if token:
        start = tuple(wire.decode_token(token).split(NAMESPACE_SEPARATOR))
        ordered = [i for i in ordered if i >= start]
    if size is None or len(ordered) <= size:
        return ordered, None
    return ordered[:size], wire.encode_token(NAMESPACE_SEPARATOR.join(ordered[size]))


def _page_size(value: int | None) -> int | None:
    return None if value is None else min(value, MAX_PAGE_SIZE)


def build_iceberg_router(
    store: VersionStore,
    settings: IcebergRestSettings,
    metrics: ServerMetrics,
    rules: AuthorizationRules | None = None,
) -> APIRouter:
    """The ``/iceberg`` routes over ``store`` and the warehouse of ``settings``.

    With ``rules``, each operation is checked as the Nessie operations it implies
    (:mod:`lakehouse.server.iceberg_authz`): 403 ``ForbiddenException`` when refused,
    listings filtered.
    """
    access = IcebergAccess(store, rules)
    router = APIRouter(prefix=ICEBERG_ROOT, tags=["Iceberg REST catalog"], route_class=IcebergRoute)
    properties = {
        **settings.fileio_properties,
        REBASE_FAST_APPENDS: "false",
        LOCATIONS_CONFINED: "true",
    }

    # One catalog for the app, re-bound per request: the per-request catalogs share its
    # caches of parsed metadata files and manifest lists (immutable files, keyed by path),
    # so a loadTable of an unchanged table reads and parses nothing.
    shared = RefCatalog(CATALOG_NAME, store, store.default_branch, settings.warehouse, **properties)

    def catalog(spec: RefSpec) -> RefCatalog:
        return shared.with_ref(str(spec))

    def ref_of(prefix: str) -> RefSpec:
        return parse_prefix(prefix, store.default_branch, settings)

    def writer(prefix: str) -> RefCatalog:
        """A catalog on the head of the branch the prefix names (else 400 / 404)."""
        spec = parse_prefix(prefix, store.default_branch, settings)
        if spec.name is None or spec.hash is not None or spec.relative:
            raise ReadOnlyReferenceError(str(spec), kind="fixed commit")
        store.writable_branch(spec.name)  # a tag: ReadOnlyReferenceError; absent: 404
        return catalog(spec)

    def table_response(metadata: TableMetadata, metadata_location: str | None) -> Response:
        return _json_model(
            TableResponse(
                metadata_location=metadata_location,
                metadata=metadata,
                config=dict(settings.client_properties),
            )
        )

    def check_table_commits(
        spec: RefSpec, changes: Sequence[tuple[ContentKey, Sequence[TableRequirement]]]
    ) -> None:
        """Read for write on every table, then one commit batch (Nessie's catalog commit)."""
        existing = access.read_for_write(spec, [key for key, _ in changes])
        entity_changes: list[EntityChange] = []
        for key, requirements in changes:
            if key in existing:
                kind = CheckType.UPDATE_ENTITY
            elif any(isinstance(r, AssertCreate) for r in requirements):
                kind = CheckType.CREATE_ENTITY
            else:
                return  # a missing table without assert-create: 404 from the commit
            entity_changes.append(EntityChange(kind, key, ContentType.ICEBERG_TABLE))
        access.commit(access.ref_name(spec), entity_changes)

    def check_drop_namespace(spec: RefSpec, key: ContentKey) -> None:
        """Entries of the namespace; a hidden namespace is absent; a non-empty one is a 409."""
        access.entries(spec)
        found = store.get_contents(spec, [key]).get(key)
        if found is None or found.type is not ContentType.NAMESPACE:
            return  # 404 from the drop
        if not access.visible(spec, [key.elements], ContentType.NAMESPACE):
            raise ice.NoSuchNamespaceError(f"namespace '{key}' does not exist on '{spec}'")
        inside = [e for e in store.entries(spec, prefix=key) if e.key != key]
        if any(access.visible(spec, [e.key.elements], e.type) for e in inside):
            return  # not empty: 409 from the drop
        access.commit(
            access.ref_name(spec),
            [EntityChange(CheckType.DELETE_ENTITY, key, ContentType.NAMESPACE)],
        )

    # -- config ------------------------------------------------------------------------------

    def reference_as_warehouse(warehouse: str) -> tuple[RefSpec, str]:
        """``warehouse=<ref>`` or ``<ref>|<warehouse>``: the reference and the prefix to hand out.

        Clients that cannot set a prefix or keep a ``uri`` override (DuckDB's iceberg
        extension) reach a branch this way; the reference must exist (else 400, as for
        any unknown warehouse).
        """
        ref, bar, rest = warehouse.partition("|")
        if bar:
            settings.check_warehouse(rest)
        try:
            spec = parse_prefix(quote(ref, safe=""), store.default_branch, settings)
            store.resolve(spec)
        except (ReferenceNotFoundError, ValueError, IcebergRestError):
            raise settings.unknown_warehouse(warehouse) from None
        return spec, str(spec) if not bar else f"{spec}|{rest}"

    def config_response(ref: str | None, warehouse: str | None, request: Request) -> Response:
        if ref is None and warehouse and not settings.is_warehouse(warehouse):
            spec, prefix = reference_as_warehouse(warehouse)
        else:
            settings.check_warehouse(warehouse)
            spec = (
                parse_prefix(ref, store.default_branch, settings)
                if ref
                else RefSpec(store.default_branch)
            )
            prefix = str(spec) if warehouse is None else f"{spec}|{warehouse}"
        if ref is not None or (warehouse and not settings.is_warehouse(warehouse)):
            access.view(spec)  # a reference the request names (bootstrapping is open)
        defaults = {
            "prefix": quote(prefix, safe="@~^*:"),
            "warehouse": settings.warehouse_name,
            "rest-metrics-reporting-enabled": "false",
            **settings.client_properties,
        }
        body = {
            "defaults": defaults,
            "overrides": nessie_overrides(str(request.base_url), spec.name or str(spec)),
            "endpoints": [str(e) for e in ENDPOINTS],
        }
        return JSONResponse(body)

    @router.get(
        "/v1/config",
        operation_id="icebergGetConfig",
        summary="Catalog configuration (prefix = the default branch)",
        responses=_READ_ERRORS,
    )
    def get_config(
        request: Request,
        warehouse: Annotated[str | None, Query(description="This server's warehouse")] = None,
    ) -> Response:
        return config_response(None, warehouse, request)

    @router.get(
        "/{ref}/v1/config",
        operation_id="icebergGetConfigForRef",
        summary="Catalog configuration for a reference (uri=…/iceberg/<ref>, as Nessie)",
        responses=_READ_ERRORS,
    )
    def get_config_for_ref(
        request: Request,
        ref: str,
        warehouse: Annotated[str | None, Query(description="This server's warehouse")] = None,
    ) -> Response:
        return config_response(ref, warehouse, request)

    # -- namespaces --------------------------------------------------------------------------

    @router.get(
        "/v1/{prefix}/namespaces",
        operation_id="icebergListNamespaces",
        summary="Namespaces directly inside 'parent' (top-level ones without it)",
        responses=_READ_ERRORS,
    )
    def list_namespaces(
        prefix: str,
        parent: Annotated[str | None, Query(description="Levels joined by %1F")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
        page_size: Annotated[int | None, Query(alias="pageSize", ge=1)] = None,
    ) -> Response:
        levels = parse_parent(parent) if parent else ()
        spec = ref_of(prefix)
        access.entries(spec)
        found = access.visible(spec, catalog(spec).list_namespaces(levels), ContentType.NAMESPACE)
        page, token = _page(found, page_token, _page_size(page_size))
        return _json_model(ListNamespaceResponse(namespaces=page, next_page_token=token))

    @router.post(
        "/v1/{prefix}/namespaces",
        operation_id="icebergCreateNamespace",
        summary="Create a namespace (its parent must exist)",
        responses=_WRITE_ERRORS,
        openapi_extra=_JSON_BODY,
    )
    def create_namespace(prefix: str, body: RawBody) -> Response:
        request = parse_body(CreateNamespaceBody, body)
        key = ContentKey(tuple(request.namespace))
        levels = key.elements
        spec = ref_of(prefix)
        if key not in access.read(spec, [key]):
            access.commit(
                access.ref_name(spec),
                [EntityChange(CheckType.CREATE_ENTITY, key, ContentType.NAMESPACE)],
            )
        writer(prefix).create_namespace(levels, request.properties)
        metrics.commits.labels("iceberg").inc()
        return _json_model(NamespaceResponse(namespace=levels, properties=request.properties))

    @router.get(
        "/v1/{prefix}/namespaces/{namespace}",
        operation_id="icebergLoadNamespace",
        summary="A namespace's properties",
        responses=_READ_ERRORS,
    )
    def load_namespace(prefix: str, namespace: str) -> Response:
        levels = parse_namespace(namespace)
        spec = ref_of(prefix)
        key = ContentKey(levels)
        access.read(spec, [*parents(key), key])
        props = catalog(spec).load_namespace_properties(levels)
        return _json_model(NamespaceResponse(namespace=levels, properties=props))

    @router.head(
        "/v1/{prefix}/namespaces/{namespace}",
        operation_id="icebergNamespaceExists",
        summary="204 if the namespace exists, else 404",
        responses=_READ_ERRORS,
    )
    def namespace_exists(prefix: str, namespace: str) -> Response:
        levels = parse_namespace(namespace)
        spec = ref_of(prefix)
        access.read(spec, [ContentKey(levels)])
        exists = catalog(spec).namespace_exists(levels)
        return Response(status_code=204 if exists else 404)

    @router.delete(
        "/v1/{prefix}/namespaces/{namespace}",
        operation_id="icebergDropNamespace",
        summary="Drop an empty namespace",
        status_code=204,
        responses=_WRITE_ERRORS,
    )
    def drop_namespace(prefix: str, namespace: str) -> Response:
        levels = parse_namespace(namespace)
        if access.enabled:
            check_drop_namespace(ref_of(prefix), ContentKey(levels))
        writer(prefix).drop_namespace(levels)
        metrics.commits.labels("iceberg").inc()
        return _no_content()

    @router.post(
        "/v1/{prefix}/namespaces/{namespace}/properties",
        operation_id="icebergUpdateNamespaceProperties",
        summary="Set and remove namespace properties",
        responses={
            **_WRITE_ERRORS,
            422: _error_doc("A property is both set and removed"),
        },
        openapi_extra=_JSON_BODY,
    )
    def update_namespace_properties(prefix: str, namespace: str, body: RawBody) -> Response:
        request = parse_body(UpdateNamespacePropertiesBody, body)
        both = sorted(set(request.removals) & set(request.updates))
        if both:
            raise IcebergRestError(422, f"properties both set and removed: {', '.join(both)}")
        levels = parse_namespace(namespace)
        spec, key = ref_of(prefix), ContentKey(levels)
        existing = access.read_for_write(spec, [key])
        if key in existing and existing[key].type is ContentType.NAMESPACE:
            access.commit(
                access.ref_name(spec),
                [EntityChange(CheckType.UPDATE_ENTITY, key, ContentType.NAMESPACE)],
            )
        summary = writer(prefix).update_namespace_properties(
            levels, set(request.removals), request.updates
        )
        metrics.commits.labels("iceberg").inc()
        return _json_model(
            UpdateNamespacePropertiesResponse(
                removed=summary.removed, updated=summary.updated, missing=summary.missing
            )
        )

    # -- tables ------------------------------------------------------------------------------

    @router.get(
        "/v1/{prefix}/namespaces/{namespace}/tables",
        operation_id="icebergListTables",
        summary="Tables directly inside a namespace",
        responses=_READ_ERRORS,
    )
    def list_tables(
        prefix: str,
        namespace: str,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
        page_size: Annotated[int | None, Query(alias="pageSize", ge=1)] = None,
    ) -> Response:
        spec = ref_of(prefix)
        access.entries(spec)
        found = access.visible(
            spec, catalog(spec).list_tables(parse_namespace(namespace)), ContentType.ICEBERG_TABLE
        )
        page, token = _page(found, page_token, _page_size(page_size))
        entries = [ListTableResponseEntry(name=t[-1], namespace=t[:-1]) for t in page]
        return _json_model(ListTablesResponse(identifiers=entries, next_page_token=token))

    @router.post(
        "/v1/{prefix}/namespaces/{namespace}/tables",
        operation_id="icebergCreateTable",
        summary="Create a table (or, with stage-create, only return its staged metadata)",
        responses=_WRITE_ERRORS,
        openapi_extra=_JSON_BODY,
    )
    def create_table(prefix: str, namespace: str, body: RawBody) -> Response:
        request = parse_body(CreateTableBody, body)
        levels = parse_namespace(namespace)
        key = ContentKey((*levels, request.name))
        identifier = key.elements
        ref = ref_of(prefix)
        if key not in access.read_for_write(ref, [key]):
            access.read(ref, parents(key))  # the location derives from the namespaces
            if not request.stage_create:
                access.commit(
                    access.ref_name(ref),
                    [EntityChange(CheckType.CREATE_ENTITY, key, ContentType.ICEBERG_TABLE)],
                )
        cat = writer(prefix)
        spec = request.partition_spec or UNPARTITIONED_PARTITION_SPEC
        order = request.write_order or UNSORTED_SORT_ORDER
        if request.stage_create:
            if not cat.namespace_exists(levels):
                raise IcebergRestError(
                    404,
                    f"namespace '{'.'.join(levels)}' does not exist on '{cat.ref}'",
                    "NoSuchNamespaceException",
                )
            if cat.table_exists(identifier):
                raise IcebergRestError(
                    409,
                    f"table '{'.'.join(identifier)}' already exists on '{cat.ref}'",
                    "AlreadyExistsException",
                )
            # MetastoreCatalog's staging hook: locations and safety properties, no commit
            staged = cat._create_staged_table(
                identifier, request.table_schema, request.location, spec, order, request.properties
            )
            return table_response(staged.metadata, None)
        table = cat.create_table(
            identifier, request.table_schema, request.location, spec, order, request.properties
        )
        metrics.commits.labels("iceberg").inc()
        return table_response(table.metadata, table.metadata_location)

    @router.post(
        "/v1/{prefix}/namespaces/{namespace}/register",
        operation_id="icebergRegisterTable",
        summary="Register a metadata file (inside the warehouse) as a table",
        responses=_WRITE_ERRORS,
        openapi_extra=_JSON_BODY,
    )
    def register_table(prefix: str, namespace: str, body: RawBody) -> Response:
        request = parse_body(RegisterTableBody, body)
        key = ContentKey((*parse_namespace(namespace), request.name))
        identifier = key.elements
        spec = ref_of(prefix)
        if request.overwrite:  # an extension of the spec: may replace a table
            existing = access.read_for_write(spec, [key])
        else:
            existing = access.read(spec, [key])
        if key not in existing or request.overwrite:
            kind = CheckType.UPDATE_ENTITY if key in existing else CheckType.CREATE_ENTITY
            access.commit(
                access.ref_name(spec), [EntityChange(kind, key, ContentType.ICEBERG_TABLE)]
            )
        cat = writer(prefix)
        try:
            table = cat.register_table(
                identifier, request.metadata_location, overwrite=request.overwrite
            )
        except FileNotFoundError:
            raise
        except OSError as exc:  # a directory, unreadable file …: nothing was committed
            raise IcebergRestError(
                400, f"cannot register {request.metadata_location[:300]!r}: {exc}"
            ) from exc
        metrics.commits.labels("iceberg").inc()
        return table_response(table.metadata, table.metadata_location)

    @router.get(
        "/v1/{prefix}/namespaces/{namespace}/tables/{table}",
        operation_id="icebergLoadTable",
        summary="Load a table's metadata",
        responses=_READ_ERRORS,
    )
    def load_table(
        prefix: str,
        namespace: str,
        table: str,
        snapshots: Annotated[
            str | None, Query(description="all or refs (all snapshots are always returned)")
        ] = None,
    ) -> Response:
        if snapshots is not None and snapshots not in ("all", "refs"):
            raise IcebergRestError(400, f"invalid snapshots={snapshots[:40]!r}: use all or refs")
        key = ContentKey((*parse_namespace(namespace), segment(table)))
        spec = ref_of(prefix)
        access.read(spec, [key])
        loaded = catalog(spec).load_table(key.elements)
        return table_response(loaded.metadata, loaded.metadata_location)

    @router.head(
        "/v1/{prefix}/namespaces/{namespace}/tables/{table}",
        operation_id="icebergTableExists",
        summary="204 if the table exists, else 404",
        responses=_READ_ERRORS,
    )
    def table_exists(prefix: str, namespace: str, table: str) -> Response:
        key = ContentKey((*parse_namespace(namespace), segment(table)))
        spec = ref_of(prefix)
        access.read(spec, [key])
        exists = catalog(spec).table_exists(key.elements)
        return Response(status_code=204 if exists else 404)

    @router.delete(
        "/v1/{prefix}/namespaces/{namespace}/tables/{table}",
        operation_id="icebergDropTable",
        summary="Drop a table from the branch; purgeRequested is accepted but deletes no file",
        status_code=204,
        responses=_WRITE_ERRORS,
    )
    def drop_table(
        prefix: str,
        namespace: str,
        table: str,
        purge_requested: Annotated[
            bool,
            Query(
                alias="purgeRequested",
                description=(
                    "Accepted, but no file is ever deleted here: other branches, tags and "
                    "old commits may still use them (lakehouse maintenance gc collects them)"
                ),
            ),
        ] = False,
    ) -> Response:
        key = ContentKey((*parse_namespace(namespace), segment(table)))
        identifier = key.elements
        spec = ref_of(prefix)
        existing = access.read(spec, [key])
        if key in existing:
            access.commit(
                access.ref_name(spec),
                [EntityChange(CheckType.DELETE_ENTITY, key, existing[key].type)],
            )
        cat = writer(prefix)
        if purge_requested:
            log.info("drop of '%s' with purgeRequested: files are kept", ".".join(identifier))
        cat.drop_table(identifier)
        metrics.commits.labels("iceberg").inc()
        return _no_content()

    @router.post(
        "/v1/{prefix}/namespaces/{namespace}/tables/{table}",
        operation_id="icebergUpdateTable",
        summary="Commit requirements and updates to a table (one catalog commit)",
        responses=_WRITE_ERRORS,
        openapi_extra=_JSON_BODY,
    )
    def update_table(prefix: str, namespace: str, table: str, body: RawBody) -> Response:
        request = parse_body(CommitTableBody, body)
        identifier = ContentKey((*parse_namespace(namespace), segment(table))).elements
        if request.identifier is not None and _identifier(request.identifier) != identifier:
            raise IcebergRestError(
                400,
                f"the body names table '{'.'.join(_identifier(request.identifier))}' but the "
                f"path names '{'.'.join(identifier)}'",
            )
        change = TableChange(identifier, request.requirements, request.updates)
        if access.enabled:
            check_table_commits(ref_of(prefix), [(ContentKey(identifier), request.requirements)])
        [response] = writer(prefix).commit_tables([change])
        metrics.commits.labels("iceberg-commit").inc()
        return _json_model(response)

    @router.post(
        "/v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
        operation_id="icebergReportMetrics",
        summary="Scan/commit reports from clients: accepted and ignored",
        status_code=204,
        responses=_READ_ERRORS,
        openapi_extra=_JSON_BODY,
    )
    def report_metrics(prefix: str, namespace: str, table: str) -> Response:
        parse_prefix(prefix, store.default_branch, settings)
        parse_namespace(namespace)
        return _no_content()

    @router.post(
        "/v1/{prefix}/tables/rename",
        operation_id="icebergRenameTable",
        summary="Rename a table (delete + put with the same content id, one commit)",
        status_code=204,
        responses=_WRITE_ERRORS,
        openapi_extra=_JSON_BODY,
    )
    def rename_table(prefix: str, body: RawBody) -> Response:
        request = parse_body(RenameTableBody, body)
        source = ContentKey(_identifier(request.source))
        target = ContentKey(_identifier(request.destination))
        spec = ref_of(prefix)
        existing = access.read(spec, [target, source])
        if source in existing and target not in existing:
            content_type = existing[source].type
            access.commit(
                access.ref_name(spec),
                [
                    EntityChange(CheckType.DELETE_ENTITY, source, content_type),
                    EntityChange(CheckType.CREATE_ENTITY, target, content_type),
                ],
            )
        writer(prefix).rename_table(source.elements, target.elements)
        metrics.commits.labels("iceberg").inc()
        return _no_content()

    @router.post(
        "/v1/{prefix}/transactions/commit",
        operation_id="icebergCommitTransaction",
        summary="Commit changes to several tables as ONE atomic catalog commit",
        status_code=204,
        responses=_WRITE_ERRORS,
        openapi_extra=_JSON_BODY,
    )
    def commit_transaction(prefix: str, body: RawBody) -> Response:
        request = parse_body(CommitTransactionBody, body)
        changes: list[TableChange] = []
        keys: list[tuple[ContentKey, Sequence[TableRequirement]]] = []
        for i, change in enumerate(request.table_changes):
            if change.identifier is None:
                raise IcebergRestError(400, f"table-changes[{i}] needs an 'identifier'")
            identifier = _identifier(change.identifier)
            changes.append(TableChange(identifier, change.requirements, change.updates))
            keys.append((ContentKey(identifier), change.requirements))
        if access.enabled:
            check_table_commits(ref_of(prefix), keys)
        writer(prefix).commit_tables(changes)
        metrics.commits.labels("iceberg-transaction").inc()
        return _no_content()

    # -- anything else under /iceberg ------------------------------------------------------

    @router.api_route(
        "/{path:path}",
        methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"],
        include_in_schema=False,
    )
    def no_endpoint(request: Request, path: str) -> Response:
        for route in router.routes:
            if route is not request.scope.get("route"):
                match, _ = route.matches(request.scope)
                if match is Match.PARTIAL:
                    raise IcebergRestError(
                        405, f"Method {request.method} not allowed on {request.url.path}"
                    )
        raise IcebergRestError(
            404,
            f"no endpoint {request.method} {request.url.path} in this Iceberg REST catalog "
            "(views, credential vending and scan planning are not served)",
            "NoSuchEndpointException",
        )

    return router


__all__ = [
    "CATALOG_NAME",
    "DEFAULT_WAREHOUSE_NAME",
    "ENDPOINTS",
    "IcebergPathMiddleware",
    "IcebergRestSettings",
    "IcebergRoute",
    "build_iceberg_router",
    "parse_namespace",
    "parse_parent",
    "parse_prefix",
]
