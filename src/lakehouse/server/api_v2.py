"""Nessie REST API v2 (``/api/v2``) over a :class:`~lakehouse.catalog.store.VersionStore`.

Handlers only translate: they parse Nessie's request syntax, call the store, and
write Nessie's JSON (:mod:`lakehouse.server.wire`). Versioning rules (conflicts,
content ids, merges) are the store's. Reads that return an ``effectiveReference``
resolve the reference once and then read at that commit, so the data and the hash
reported with it always agree.

Listings (references, entries, diffs) are paged here: the store returns them sorted
and whole, the page token is the hex of the next name or key. The commit log is paged
by the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lakehouse.catalog import refcounts
from lakehouse.catalog.content_merge import content_merge
from lakehouse.catalog.model import (
    NO_ANCESTOR,
    Branch,
    CommitMeta,
    ConflictType,
    ContentKey,
    ContentMergeResult,
    Delete,
    Entry,
    LogEntry,
    MergeBehavior,
    MergeResult,
    Operation,
    Put,
    Reference,
    ReferenceType,
    RefSpec,
    RepositoryConfig,
    ResolvedContent,
    Unchanged,
)
from lakehouse.catalog.refcounts import RefCounts, ReferenceCounter
from lakehouse.catalog.store import VersionStore
from lakehouse.errors import (
    CommitConflictError,
    ContentNotFoundError,
    InvalidInputError,
    ReferenceConflictError,
    ReferenceNotFoundError,
)
from lakehouse.server import cel, wire
from lakehouse.server.audit import AuditLog
from lakehouse.server.authz import (
    AuthorizationRules,
    Check,
    CheckType,
    on_content,
    on_reference,
    view_reference,
)
from lakehouse.server.metrics import ServerMetrics
from lakehouse.server.middleware import current_principal
from lakehouse.server.oidc import Principal
from lakehouse.server.schemas import (
    CONTENT_MERGE_PROPERTY,
    CONTENT_MERGE_VERSION,
    CommitMetaBody,
    GetMultipleContentsBody,
    MergeBody,
    MergeKeyBehaviorBody,
    MergeResponse,
    NessieConfigurationResponse,
    OperationBody,
    OperationsBody,
    ReferenceBody,
    TransplantBody,
    UpdateRepositoryConfigBody,
)
from lakehouse.server.settings import ServerSettings

#: ``specVersion`` of Nessie's API that this server implements.
SPEC_VERSION = "2.2.0"

_REFERENCE_VARS = frozenset({"ref", "refType", "commit", "refMeta"})
_ENTRY_VARS = frozenset({"entry"})
_DIFF_VARS = frozenset({"key"})
_LOG_VARS = frozenset({"commit", "operations"})

_COMMIT_HEADER_PREFIX = "nessie-commit-property-"

# What each operation requires of its references and hashes (Nessie's rules and wording).
_TARGET_HASH = wire.HashRule("Target hash", unambiguous=True)
_SOURCE_HASH = wire.HashRule("Source hash", unambiguous=True)
_TRANSPLANT_HASH = wire.HashRule("Hash to transplant", unambiguous=True)
_READ_HASH = wire.HashRule("Expected hash")
_ASSIGN_TARGET = wire.HashRule(
    "Expected hash", "Assignment target", branch_or_tag=True, unambiguous=True
)
_DELETE_TARGET = wire.HashRule("Expected hash", unambiguous=True)
_YOUNGEST_HASH = wire.HashRule("Youngest hash")
_OLDEST_HASH = wire.HashRule("Oldest hash")
_FROM_HASH = wire.HashRule('"From" hash')
_TO_HASH = wire.HashRule('"To" hash')


def _write_target(what: str) -> wire.HashRule:
    return wire.HashRule("Expected hash", f"Reference to {what}", branch=True, unambiguous=True)


_COMMIT_TARGET = _write_target("commit into")
_MERGE_TARGET = _write_target("merge into")
_TRANSPLANT_TARGET = _write_target("transplant into")


class NessieErrorModel(BaseModel):
    """The body of every error response (Nessie's ``NessieError``)."""

    status: int
    reason: str
    message: str
    error_code: str = Field(alias="errorCode")
    server_stack_trace: str | None = Field(default=None, alias="serverStackTrace")
    error_details: dict[str, Any] | None = Field(default=None, alias="errorDetails")


def _error(description: str) -> dict[str, Any]:
    return {"model": NessieErrorModel, "description": description}


_READ_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Invalid reference, key, hash or parameter"),
    401: _error("Missing or wrong bearer token (when auth is on)"),
    404: _error("Reference, commit or content not found"),
}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_READ_ERRORS,
    409: _error("Conflict: the reference moved or keys conflict (see errorDetails)"),
    413: _error("Request body too large"),
    503: _error("Catalog unavailable, or the outcome of a write is unknown"),
}


def _json(data: Mapping[str, Any]) -> JSONResponse:
    return JSONResponse(dict(data))


def _fetch_all(value: str | None) -> bool:
    if value is None or value.upper() == "MINIMAL":
        return False
    if value.upper() == "ALL":
        return True
    raise InvalidInputError(f"Invalid fetch option {value!r}: use MINIMAL or ALL")


def _reference_type(value: str | None) -> ReferenceType | None:
    if value is None:
        return None
    try:
        return ReferenceType(value.upper())
    except ValueError:
        raise InvalidInputError(
            f"Reference type name must be either 'branch' or 'tag' - but was: {value}"
        ) from None


def _key_env(key: ContentKey) -> dict[str, Any]:
    namespace = key.namespace
    return {
        "key": str(key),
        "keyElements": list(key.elements),
        "encodedKey": wire.key_to_path(key),
        "name": key.name,
        "namespace": wire.key_to_path(namespace) if namespace else "",
        "namespaceElements": list(namespace.elements) if namespace else [],
    }


def _commit_env(meta: CommitMeta | None) -> dict[str, Any]:
    if meta is None:
        meta = CommitMeta()
    return {
        "hash": meta.hash or "",
        "message": meta.message,
        "author": meta.author or "",
        "authors": [meta.author] if meta.author else [],
        "committer": meta.committer or "",
        "signedOffBy": meta.signed_off_by[0] if meta.signed_off_by else "",
        "allSignedOffBy": list(meta.signed_off_by),
        "commitTime": meta.commit_time,
        "authorTime": meta.authored_time,
        "properties": dict(meta.properties),
        "allProperties": {k: [v] for k, v in meta.properties.items()},
        "parentCommitHashes": list(meta.parent_hashes),
    }


def _operation_env(op: Operation) -> dict[str, Any]:
    env = _key_env(op.key)
    if isinstance(op, Put):
        env["type"] = "PUT"
        env["content"] = {"type": op.content.type.value, "id": op.content.id or ""}
    else:
        env["type"] = "DELETE" if isinstance(op, Delete) else "UNCHANGED"
        env["content"] = None
    return env


def _in_key_range(
    key: ContentKey,
    requested: set[ContentKey],
    min_key: ContentKey | None,
    max_key: ContentKey | None,
    prefix_key: ContentKey | None,
    start: ContentKey | None,
) -> bool:
    return (
        (not requested or key in requested)
        and (min_key is None or key >= min_key)
        and (max_key is None or key <= max_key)
        and (prefix_key is None or key == prefix_key or prefix_key.is_prefix_of(key))
        and (start is None or key >= start)
    )


def _optional_key(text: str | None) -> ContentKey | None:
    return wire.key_from_path(text) if text else None


def _token_key(token: str | None) -> ContentKey | None:
    return wire.key_from_path(wire.decode_token(token)) if token else None


@dataclass(frozen=True)
class ContentMergeIO:
    """How the server reaches table files for the ``contentMerge`` opt-in of merges."""

    #: The warehouse's FileIO properties (may hold credentials; never sent to clients).
    fileio_properties: Mapping[str, str]
    #: Whether a location is inside the warehouse: a table whose metadata is elsewhere is
    #: not read (a conflict), so a merge cannot make the server read or write anywhere else.
    in_warehouse: Callable[[str], bool]


@dataclass(frozen=True)
class NessieHandlers:
    """The v2 endpoint functions of one router, for other API versions to call.

    Each is the route's own function (parameters as the route declares them, plain
    defaults), so a caller gets the v2 behaviour whole: parsing, the store call, access
    checks, audit records and metrics. API v1 (:mod:`lakehouse.server.api_v1`) is a thin
    translation over these.
    """

    default_branch: str
    get_config: Callable[[], JSONResponse]
    get_all_references: Callable[..., JSONResponse]
    create_reference: Callable[..., JSONResponse]
    get_reference: Callable[..., JSONResponse]
    assign_reference: Callable[..., JSONResponse]
    delete_reference: Callable[..., JSONResponse]
    get_entries: Callable[..., JSONResponse]
    get_content: Callable[..., JSONResponse]
    get_multiple_contents: Callable[..., JSONResponse]
    get_commit_log: Callable[..., JSONResponse]
    get_diff: Callable[..., JSONResponse]
    commit: Callable[..., JSONResponse]
    merge: Callable[..., JSONResponse]
    transplant: Callable[..., JSONResponse]


def build_router(
    store: VersionStore,
    settings: ServerSettings,
    metrics: ServerMetrics,
    rules: AuthorizationRules | None = None,
    *,
    content_merge_io: ContentMergeIO | None = None,
) -> APIRouter:
    """The ``/api/v2`` routes bound to ``store``; with ``rules``, Nessie's access checks."""
    return build(store, settings, metrics, rules, content_merge_io=content_merge_io)[0]


def build(
    store: VersionStore,
    settings: ServerSettings,
    metrics: ServerMetrics,
    rules: AuthorizationRules | None = None,
    *,
    content_merge_io: ContentMergeIO | None = None,
) -> tuple[APIRouter, NessieHandlers]:
    """The ``/api/v2`` router and its handlers (see :class:`NessieHandlers`).

    With ``content_merge_io`` (how to reach the warehouse the tables live in) merges take
    the ``contentMerge`` opt-in and ``/config`` advertises it
    (:data:`~lakehouse.server.schemas.CONTENT_MERGE_PROPERTY`); without, a merge that asks
    for it is refused (400).
    """
    router = APIRouter(prefix="/api/v2", tags=["Nessie API v2"])
    audit = AuditLog(metrics.audit_writes)

    def principal() -> Principal:
        return current_principal.get() or Principal("")

    def authorize(checks: Iterable[Check]) -> None:
        """Raise Nessie's 403 unless every check passes (no-op without rules)."""
        if rules is not None:
            rules.check(checks, principal())

    def allowed(checks: Iterable[Check]) -> bool:
        return rules is None or not rules.failures(checks, principal())

    def ref_name(spec: RefSpec) -> str:
        return spec.name if spec.name is not None else wire.DETACHED

    def entity_checks(branch: str, at_hash: str, operations: Sequence[Operation]) -> list[Check]:
        """CREATE/UPDATE/DELETE_ENTITY per changed key, as Nessie's commit validator does."""
        if rules is None:
            return []
        keys = [op.key for op in operations if not isinstance(op, Unchanged)]
        existing = store.get_contents(RefSpec(None, at_hash), keys) if keys else {}
        checks: list[Check] = []
        for op in operations:
            path = wire.key_to_path(op.key)
            if isinstance(op, Put):
                kind = CheckType.UPDATE_ENTITY if op.key in existing else CheckType.CREATE_ENTITY
                checks += on_content(kind, branch, path, op.content.type.value)
            elif isinstance(op, Delete):
                old = existing.get(op.key)
                content_type = old.type.value if old is not None else ""
                checks += on_content(CheckType.DELETE_ENTITY, branch, path, content_type)
        return checks

    def merged_entity_checks(
        target: Branch, dry_run: MergeResult, *, by_content: bool = False
    ) -> list[Check]:
        """The entity checks of the keys a merge or transplant changes on ``target``.

        Nessie runs its commit validator on the operations a merge applies, so merging a
        key the principal may not create, update or delete on the target is refused even
        when committing to the target is allowed. ``dry_run`` names those keys; with
        ``by_content`` the keys changed on both sides count too (a content merge
        updates them).
        """
        if rules is None:
            return []
        keys = [
            d.key
            for d in dry_run.details
            if d.merge_behavior is not MergeBehavior.DROP
            and (
                d.conflict is None or (by_content and d.conflict.type is ConflictType.VALUE_DIFFERS)
            )
        ]
        if not keys:
            return []
        incoming = store.get_contents(RefSpec(None, dry_run.source_hash), keys)
        operations: list[Operation] = [
            Put(k, incoming[k]) if k in incoming else Delete(k) for k in keys
        ]
        return entity_checks(target.name, target.hash, operations)

    def page_size(max_records: int | None) -> int:
        return min(max_records or settings.default_page_size, settings.max_page_size)

    def checked(spec: RefSpec, rule: wire.HashRule) -> RefSpec:
        """``spec`` after the checks of ``rule`` that need the reference's type."""
        if rule.needs_type and spec.name is not None:
            rule.check(store.get_reference(spec.name).type, spec)
        return spec

    def path_ref(text: str, rule: wire.HashRule = _READ_HASH) -> RefSpec:
        return checked(wire.parse_ref_path(text, store.default_branch, rule), rule)

    def body_ref(body: ReferenceBody | None, rule: wire.HashRule) -> RefSpec:
        """The commit a Reference body names (absent: the default branch, no hash)."""
        if body is None:
            return wire.ref_spec(None, None, store.default_branch, rule)
        kind = (body.type or "").upper()
        if kind not in ("", "BRANCH", "TAG", wire.DETACHED):
            raise InvalidInputError(
                f"Invalid reference type {body.type!r}: use BRANCH, TAG or DETACHED"
            )
        detached = kind == wire.DETACHED or (body.name is None and body.hash is not None)
        name = wire.DETACHED if detached else body.name
        return checked(wire.ref_spec(name, body.hash, store.default_branch, rule), rule)

    def expected_hash(spec: RefSpec) -> str:
        """The full hash an (unambiguous, checked) spec names, relative parts applied."""
        assert spec.hash is not None
        if spec.relative:
            return store.resolve(RefSpec(None, spec.hash, spec.relative)).hash
        return spec.hash

    @contextmanager
    def write_target(text: str, rule: wire.HashRule) -> Iterator[Branch]:
        """The branch a write goes to, with the (full) hash the client expects it at.

        Nessie refuses a reference of the wrong type before anything else. A write to a
        tag or to a missing reference fails in the store anyway, so the lookup of the
        type runs only when the block fails, and its error, if any, replaces the
        block's (or first, when the hash is missing: then the type picks the error).
        A write that succeeds thus reads the reference once, in its own transaction.
        """
        spec = wire.parse_ref_path(text, store.default_branch, rule)
        if spec.name is None or spec.hash is None:
            checked(spec, rule)
        assert spec.name is not None and spec.hash is not None
        try:
            yield Branch(spec.name, store.resolve(RefSpec(None, spec.hash, spec.relative)).hash)
        except Exception:
            checked(spec, rule)
            raise

    @contextmanager
    def expected_in_history(target: Branch) -> Iterator[None]:
        """Nessie's 404 for an expected hash that is not in the branch's history.

        The store refuses such a write as a conflict without a key (the contract); Nessie
        answers ``REFERENCE_NOT_FOUND``. Only on that refusal is the history walked.
        """
        try:
            yield
        except (ReferenceConflictError, CommitConflictError) as exc:
            if isinstance(exc, CommitConflictError) and any(
                c.key is not None or c.type is not ConflictType.UNEXPECTED_HASH
                for c in exc.conflicts
            ):
                raise
            head = store.get_reference(target.name).hash
            reachable = target.hash in (head, NO_ANCESTOR) or target.hash in first_parents(head)
            if not reachable:
                raise ReferenceNotFoundError(
                    f"{target.name}@{target.hash}",
                    f"Could not find commit '{target.hash}' in reference '{target.name}'.",
                ) from exc
            raise

    def check_type(reference: Reference, kind: ReferenceType | None) -> None:
        if kind is not None and reference.type is not kind:
            raise InvalidInputError(
                f"Expected reference type {kind.value} does not match existing reference "
                f"'{reference.name}' (a {reference.type.value.lower()})"
            )

    def head_meta(reference: Reference) -> CommitMeta | None:
        return None if reference.hash == NO_ANCESTOR else store.commit_meta(reference.hash)

    def first_parents(hash_: str) -> Iterator[str]:
        """``hash_`` and its first-parent ancestors, newest first (not the root)."""
        return refcounts.first_parents(store, hash_)

    def ref_counts() -> Callable[[Reference], RefCounts]:
        """Nessie's reference counts, for the references of one request."""
        return ReferenceCounter(store)

    def commit_meta(body: CommitMetaBody | None, headers: Mapping[str, str]) -> CommitMeta:
        """Client commit metadata plus Nessie's ``Nessie-Commit-*`` header overrides."""
        if body is not None:
            _refuse_server_fields(body)
        message = body.message if body is not None else ""
        authors = _authors(body)
        properties = _properties(body)
        for name, value in headers.items():
            lower = name.lower()
            if lower == "nessie-commit-message" and value.strip():
                message = value.strip()
            elif lower == "nessie-commit-authors":
                authors += [a.strip() for a in value.split(",") if a.strip()]
            elif lower.startswith(_COMMIT_HEADER_PREFIX) and value.strip():
                properties[lower.removeprefix(_COMMIT_HEADER_PREFIX).strip()] = value.strip()
        if len(authors) > 1:
            raise InvalidInputError(
                f"a commit has one author on this server, got {len(authors)}: "
                "join them in one string"
            )
        authored = body.author_time if body is not None else None
        if authored is not None and authored.tzinfo is None:
            authored = authored.replace(tzinfo=UTC)  # an instant without zone is UTC
        return CommitMeta(
            message=message,
            author=authors[0] if authors else None,
            authored_time=authored,
            properties=properties,
            signed_off_by=_signed_off_by(body),
        )

    def operation(op: OperationBody) -> Operation:
        key = ContentKey(tuple(op.key.elements))
        kind = op.type.upper()
        if kind == "PUT":
            if op.content is None:
                raise InvalidInputError(f"PUT operation on '{key}' needs a 'content'")
            return Put(key, wire.content_from_wire(op.content))
        if op.content is not None:
            raise InvalidInputError(f"{kind} operation on '{key}' must not carry a 'content'")
        if kind == "DELETE":
            return Delete(key)
        if kind == "UNCHANGED":
            return Unchanged(key)
        raise InvalidInputError(f"invalid operation type {op.type!r}: use PUT, DELETE or UNCHANGED")

    def key_behaviors(
        modes: Sequence[MergeKeyBehaviorBody] | None,
    ) -> dict[ContentKey, MergeBehavior]:
        out: dict[ContentKey, MergeBehavior] = {}
        for mode in modes or ():
            key = ContentKey(tuple(mode.key.elements))
            if mode.expected_target_content is not None or mode.resolved_content is not None:
                if mode.merge_behavior is MergeBehavior.NORMAL and (
                    mode.expected_target_content is not None and mode.resolved_content is not None
                ):
                    continue  # a resolution: resolved_contents() takes it (merges only)
                raise InvalidInputError(
                    f"key merge mode for '{key}': resolvedContent needs mergeBehavior NORMAL "
                    "and expectedTargetContent"
                )
            out[key] = mode.merge_behavior
        return out

    def resolved_contents(
        modes: Sequence[MergeKeyBehaviorBody] | None,
    ) -> dict[ContentKey, ResolvedContent]:
        """Nessie's client-resolved keys: put ``resolvedContent`` if the target is as expected."""
        out: dict[ContentKey, ResolvedContent] = {}
        for mode in modes or ():
            if mode.expected_target_content is None or mode.resolved_content is None:
                continue
            out[ContentKey(tuple(mode.key.elements))] = ResolvedContent(
                wire.content_from_wire(mode.expected_target_content),
                wire.content_from_wire(mode.resolved_content),
            )
        return out

    def detached_hash(text: str, rule: wire.HashRule) -> str:
        """The full hash of a "hash with optional relative part" (absolute part required)."""
        return store.resolve(wire.ref_spec(wire.DETACHED, text, store.default_branch, rule)).hash

    def oldest_hash(spec: RefSpec, text: str) -> str:
        """A log's ``limit-hash``: without an absolute part, relative to the reference's head."""
        name = wire.DETACHED if spec.name is None else spec.name
        limit = wire.ref_spec(name, text, store.default_branch, _OLDEST_HASH)
        return store.resolve(limit).hash

    def contents_response(ref: str, keys: Iterable[ContentKey]) -> JSONResponse:
        spec = path_ref(ref)
        resolved = store.resolve(spec)
        wanted = list(dict.fromkeys(keys))
        found = store.get_contents(RefSpec(None, resolved.hash), wanted) if wanted else {}
        checks = [view_reference(ref_name(spec))]
        for k in wanted:
            kind = found[k].type.value if k in found else ""
            checks += on_content(
                CheckType.READ_ENTITY_VALUE, ref_name(spec), wire.key_to_path(k), kind
            )
        authorize(checks)
        return _json(
            {
                "contents": [
                    {"key": wire.key_json(k), "content": wire.content_json(found[k])}
                    for k in wanted
                    if k in found
                ],
                "effectiveReference": wire.effective_reference_json(resolved),
            }
        )

    # -- config -----------------------------------------------------------------------

    @router.get(
        "/config",
        operation_id="getConfigV2",
        summary="Server configuration",
        responses={200: {"model": NessieConfigurationResponse}},
    )
    def get_config() -> JSONResponse:
        config: dict[str, Any] = {
            "defaultBranch": store.default_branch,
            "minSupportedApiVersion": 1,
            "maxSupportedApiVersion": 2,
            "actualApiVersion": 2,
            "specVersion": SPEC_VERSION,
            "noAncestorHash": NO_ANCESTOR,
        }
        if content_merge_io is not None:  # Nessie's free-form map: any client takes it
            config["additionalProperties"] = {CONTENT_MERGE_PROPERTY: str(CONTENT_MERGE_VERSION)}
        return _json(config)

    @router.get(
        "/config/repository",
        operation_id="getRepositoryConfig",
        summary="Repository config objects of the given types",
        responses=_READ_ERRORS,
    )
    def get_repository_config(
        type_: Annotated[
            list[str] | None, Query(alias="type", description="e.g. GARBAGE_COLLECTOR")
        ] = None,
    ) -> JSONResponse:
        authorize(
            Check(CheckType.READ_REPOSITORY_CONFIG, config_type=str(t).upper()) for t in type_ or []
        )
        configs = store.repository_config(type_ or [])
        return _json({"configs": [c.to_json() for c in configs]})

    @router.post(
        "/config/repository",
        operation_id="updateRepositoryConfig",
        summary="Create or replace a repository config object; answers the previous one",
        responses=_WRITE_ERRORS,
    )
    def update_repository_config(body: UpdateRepositoryConfigBody) -> JSONResponse:
        config = RepositoryConfig.from_json(body.config)
        authorize([Check(CheckType.UPDATE_REPOSITORY_CONFIG, config_type=config.type)])
        previous = store.update_repository_config(config)
        return _json({"previous": previous.to_json() if previous is not None else None})

    # -- references -------------------------------------------------------------------

    @router.get(
        "/trees",
        operation_id="getAllReferencesV2",
        summary="All branches and tags",
        responses=_READ_ERRORS,
    )
    def get_all_references(
        fetch: Annotated[str | None, Query(description="MINIMAL or ALL")] = None,
        filter_: Annotated[str | None, Query(alias="filter", description="CEL expression")] = None,
        max_records: Annotated[int | None, Query(alias="max-records", ge=1)] = None,
        page_token: Annotated[str | None, Query(alias="page-token")] = None,
    ) -> JSONResponse:
        fetch_all = _fetch_all(fetch)
        predicate = cel.compile_filter(filter_, _REFERENCE_VARS)
        counts = ref_counts() if fetch_all else None
        start = wire.decode_token(page_token) if page_token else None
        limit = page_size(max_records)
        page: list[dict[str, Any]] = []
        token: str | None = None
        for reference in sorted(store.list_references(), key=lambda r: r.name):
            if start is not None and reference.name < start:
                continue
            if not allowed([view_reference(reference.name)]):
                continue
            meta = head_meta(reference) if fetch_all else None
            metadata = None
            if counts is not None:
                metadata = wire.reference_metadata_json(meta, counts(reference))
            if predicate is not None and not predicate(
                {
                    "ref": {**reference.to_json(), "metadata": metadata or {}},
                    "refType": reference.type.value,
                    "commit": _commit_env(meta),
                    "refMeta": metadata or {},
                }
            ):
                continue
            if len(page) == limit:
                token = wire.encode_token(reference.name)
                break
            page.append(wire.reference_json(reference, metadata))
        return _json({"references": page, "hasMore": token is not None, "token": token})

    @router.post(
        "/trees",
        operation_id="createReferenceV2",
        summary="Create a branch or tag at the commit the body names",
        responses=_WRITE_ERRORS,
    )
    def create_reference(
        name: Annotated[str, Query(description="Name of the new branch or tag")],
        type_: Annotated[str, Query(alias="type", description="branch or tag")],
        body: Annotated[ReferenceBody | None, Body()] = None,
    ) -> JSONResponse:
        kind = _reference_type(type_)
        assert kind is not None
        wire.check_new_reference_name(name)
        source = body_ref(body, _TARGET_HASH)
        if rules is not None:
            store.resolve(source)  # Nessie resolves the source (404) before the checks
        with audit.write("create_reference", name) as record:
            authorize([Check(CheckType.CREATE_REFERENCE, name), view_reference(ref_name(source))])
            created = store.create_reference(name, kind, source)
            record["resultHash"] = created.hash
        return _json({"reference": created.to_json()})

    # -- contents ---------------------------------------------------------------------

    @router.get(
        "/trees/{ref:nessieref}/entries",
        operation_id="getEntriesV2",
        summary="Keys (and optionally contents) at a reference",
        responses=_READ_ERRORS,
    )
    def get_entries(
        ref: str,
        content: Annotated[bool, Query(description="Include the content objects")] = False,
        filter_: Annotated[
            str | None, Query(alias="filter", description="CEL over 'entry'")
        ] = None,
        key: Annotated[list[str] | None, Query(description="Only these keys")] = None,
        min_key: Annotated[str | None, Query(alias="min-key")] = None,
        max_key: Annotated[str | None, Query(alias="max-key")] = None,
        prefix_key: Annotated[str | None, Query(alias="prefix-key")] = None,
        max_records: Annotated[int | None, Query(alias="max-records", ge=1)] = None,
        page_token: Annotated[str | None, Query(alias="page-token")] = None,
    ) -> JSONResponse:
        predicate = cel.compile_filter(filter_, _ENTRY_VARS)
        requested = {wire.key_from_path(k) for k in key or ()}
        low, high, prefix = (
            _optional_key(min_key),
            _optional_key(max_key),
            _optional_key(prefix_key),
        )
        start = _token_key(page_token)
        spec = path_ref(ref)
        resolved = store.resolve(spec)
        authorize([Check(CheckType.READ_ENTRIES, ref_name(spec))])
        at = RefSpec(None, resolved.hash)
        limit = page_size(max_records)
        page: list[Entry] = []
        token: str | None = None
        for entry in sorted(store.entries(at), key=lambda e: e.key):
            if not _in_key_range(entry.key, requested, low, high, prefix, start):
                continue
            if predicate is not None and not predicate(
                {"entry": {**_key_env(entry.key), "contentType": entry.type.value}}
            ):
                continue
            path = wire.key_to_path(entry.key)
            read_key = Check(CheckType.READ_CONTENT_KEY, ref_name(spec), path, entry.type.value)
            if not allowed([read_key]):
                continue
            if len(page) == limit:
                token = wire.encode_token(wire.key_to_path(entry.key))
                break
            page.append(entry)
        contents = store.get_contents(at, [e.key for e in page]) if content and page else {}
        return _json(
            {
                "entries": [wire.entry_json(e, contents.get(e.key)) for e in page],
                "hasMore": token is not None,
                "token": token,
                "effectiveReference": wire.effective_reference_json(resolved),
            }
        )

    @router.get(
        "/trees/{ref:nessieref}/contents/{key:path}",
        operation_id="getContentV2",
        summary="The content at one key",
        responses=_READ_ERRORS,
    )
    def get_content(ref: str, key: str) -> JSONResponse:
        content_key = wire.key_from_path(key)
        spec = path_ref(ref)
        resolved = store.resolve(spec)
        found = store.get_contents(RefSpec(None, resolved.hash), [content_key])
        if content_key in found:
            kind = found[content_key].type.value
            path = wire.key_to_path(content_key)
            authorize(on_content(CheckType.READ_ENTITY_VALUE, ref_name(spec), path, kind))
        else:
            authorize([view_reference(ref_name(spec))])
        if content_key not in found:
            raise ContentNotFoundError(str(content_key), str(resolved), content_key)
        return _json(
            {
                "content": wire.content_json(found[content_key]),
                "effectiveReference": wire.effective_reference_json(resolved),
            }
        )

    @router.get(
        "/trees/{ref:nessieref}/contents",
        operation_id="getSeveralContents",
        summary="The contents at the keys given as 'key' parameters",
        responses=_READ_ERRORS,
    )
    def get_several_contents(
        ref: str, key: Annotated[list[str] | None, Query(description="Content keys")] = None
    ) -> JSONResponse:
        return contents_response(ref, [wire.key_from_path(k) for k in key or ()])

    @router.post(
        "/trees/{ref:nessieref}/contents",
        operation_id="getMultipleContentsV2",
        summary="The contents at the keys in the body",
        responses=_READ_ERRORS,
    )
    def get_multiple_contents(ref: str, body: GetMultipleContentsBody) -> JSONResponse:
        return contents_response(ref, [ContentKey(tuple(k.elements)) for k in body.requested_keys])

    # -- history ----------------------------------------------------------------------

    @router.get(
        "/trees/{ref:nessieref}/history",
        operation_id="getCommitLogV2",
        summary="Commit log, newest first",
        responses=_READ_ERRORS,
    )
    def get_commit_log(
        ref: str,
        fetch: Annotated[str | None, Query(description="MINIMAL or ALL")] = None,
        filter_: Annotated[
            str | None, Query(alias="filter", description="CEL over commit, operations")
        ] = None,
        limit_hash: Annotated[str | None, Query(alias="limit-hash")] = None,
        max_records: Annotated[int | None, Query(alias="max-records", ge=1)] = None,
        page_token: Annotated[str | None, Query(alias="page-token")] = None,
    ) -> JSONResponse:
        fetch_all = _fetch_all(fetch)
        predicate = cel.compile_filter(filter_, _LOG_VARS)
        with_operations = fetch_all or (predicate is not None and predicate.uses("operations"))
        spec = path_ref(ref, _YOUNGEST_HASH)
        if rules is not None:
            store.resolve(spec)  # 404 before 403, as Nessie
        authorize(on_reference(CheckType.LIST_COMMIT_LOG, ref_name(spec)))
        stop = oldest_hash(spec, limit_hash) if limit_hash else None
        limit = page_size(max_records)
        found: list[LogEntry] = []
        token = page_token
        while True:
            log_page = store.log(
                spec, limit=limit, page_token=token, fetch_operations=with_operations
            )
            token = log_page.next_token
            for entry in log_page.entries:
                if predicate is None or predicate(
                    {
                        "commit": _commit_env(entry.meta),
                        "operations": [_operation_env(op) for op in entry.operations or ()],
                    }
                ):
                    found.append(entry)
                if entry.hash == stop:
                    token = None
                    break
            if found or token is None:
                break
        return _json(
            {
                "logEntries": [wire.log_entry_json(e, fetch_all=fetch_all) for e in found],
                "hasMore": token is not None,
                "token": token,
            }
        )

    @router.get(
        "/trees/{ref:nessieref}/recent-changes",
        operation_id="getReferenceHistory",
        summary="Recent heads of a reference (its reflog), newest first",
        responses=_READ_ERRORS,
    )
    def get_reference_history(
        ref: str,
        scan_commits: Annotated[
            int | None,
            Query(alias="scan-commits", description="Commits to check from the head (<= 1000)"),
        ] = None,
    ) -> JSONResponse:
        spec = path_ref(ref)
        if spec.name is None or spec.hash is not None or spec.relative:
            raise InvalidInputError("Hashes are not allowed when fetching a reference by name")
        if rules is not None:
            store.get_reference(spec.name)
        authorize([view_reference(spec.name)])
        history = store.reference_history(spec.name, scan_commits=scan_commits)
        return _json(wire.reference_history_json(history))

    @router.get(
        "/trees/{from_ref:nessieref}/diff/{to_ref:nessieref}",
        operation_id="getDiffV2",
        summary="Keys whose content differs from one reference to another",
        responses=_READ_ERRORS,
    )
    def get_diff(
        from_ref: str,
        to_ref: str,
        filter_: Annotated[str | None, Query(alias="filter", description="CEL over 'key'")] = None,
        key: Annotated[list[str] | None, Query(description="Only these keys")] = None,
        min_key: Annotated[str | None, Query(alias="min-key")] = None,
        max_key: Annotated[str | None, Query(alias="max-key")] = None,
        prefix_key: Annotated[str | None, Query(alias="prefix-key")] = None,
        max_records: Annotated[int | None, Query(alias="max-records", ge=1)] = None,
        page_token: Annotated[str | None, Query(alias="page-token")] = None,
    ) -> JSONResponse:
        predicate = cel.compile_filter(filter_, _DIFF_VARS)
        requested = {wire.key_from_path(k) for k in key or ()}
        low, high, prefix = (
            _optional_key(min_key),
            _optional_key(max_key),
            _optional_key(prefix_key),
        )
        start = _token_key(page_token)
        from_spec = path_ref(from_ref, _FROM_HASH)
        to_spec = path_ref(to_ref, _TO_HASH)
        from_resolved = store.resolve(from_spec)
        to_resolved = store.resolve(to_spec)
        authorize([view_reference(ref_name(from_spec)), view_reference(ref_name(to_spec))])
        diffs = store.diff(RefSpec(None, from_resolved.hash), RefSpec(None, to_resolved.hash))
        limit = page_size(max_records)
        page: list[dict[str, Any]] = []
        token: str | None = None
        for diff in sorted(diffs, key=lambda d: d.key):
            if not _in_key_range(diff.key, requested, low, high, prefix, start):
                continue
            if predicate is not None and not predicate({"key": _key_env(diff.key)}):
                continue
            side = from_spec if diff.from_content is not None else to_spec
            read_key = Check(CheckType.READ_CONTENT_KEY, ref_name(side), wire.key_to_path(diff.key))
            if not allowed([read_key]):
                continue
            if len(page) == limit:
                token = wire.encode_token(wire.key_to_path(diff.key))
                break
            page.append(wire.diff_entry_json(diff))
        return _json(
            {
                "diffs": page,
                "hasMore": token is not None,
                "token": token,
                "effectiveFromReference": wire.effective_reference_json(from_resolved),
                "effectiveToReference": wire.effective_reference_json(to_resolved),
            }
        )

    # -- writes -----------------------------------------------------------------------

    @router.post(
        "/trees/{branch:nessieref}/history/commit",
        operation_id="commitV2",
        summary="Commit operations to 'branch@expectedHash'",
        responses=_WRITE_ERRORS,
    )
    def commit(branch: str, body: OperationsBody, request: Request) -> JSONResponse:
        keys = [wire.key_to_path(ContentKey(tuple(op.key.elements))) for op in body.operations]
        with (
            audit.write("commit", branch.split("@", 1)[0], keys) as record,
            write_target(branch, _COMMIT_TARGET) as target,
        ):
            record["expectedHash"] = target.hash
            meta = commit_meta(body.commit_meta, request.headers)
            operations = [operation(op) for op in body.operations]
            authorize(
                [
                    *on_reference(CheckType.COMMIT_CHANGE_AGAINST_REFERENCE, target.name),
                    *entity_checks(target.name, target.hash, operations),
                ]
            )
            with expected_in_history(target):
                result = store.commit(target.name, operations, meta, expected_hash=target.hash)
            record["resultHash"] = result.hash
        metrics.commits.labels("commit").inc()
        return _json(wire.commit_response_json(result))

    @router.post(
        "/trees/{branch:nessieref}/history/merge",
        operation_id="mergeV2",
        summary="Merge a reference into 'branch@expectedHash'",
        responses={200: {"model": MergeResponse}, **_WRITE_ERRORS},
    )
    def merge(branch: str, body: MergeBody, request: Request) -> JSONResponse:
        by_content = bool(body.content_merge)
        if by_content and content_merge_io is None:
            raise InvalidInputError(
                "contentMerge is not offered by this server: it runs without a warehouse "
                "to read the tables from (see additionalProperties in GET /api/v2/config)"
            )
        if by_content and resolved_contents(body.key_merge_modes):
            raise InvalidInputError(
                "contentMerge computes the merged contents itself: send no resolvedContent with it"
            )
        source = checked(
            wire.ref_spec(body.from_ref_name, body.from_hash, store.default_branch, _SOURCE_HASH),
            _SOURCE_HASH,
        )
        with (
            audit.write("merge", branch.split("@", 1)[0]) as record,
            write_target(branch, _MERGE_TARGET) as target,
        ):
            record["expectedHash"] = target.hash
            record["from"] = ref_name(source)
            authorize(
                [
                    view_reference(ref_name(source)),
                    *on_reference(CheckType.COMMIT_CHANGE_AGAINST_REFERENCE, target.name),
                ]
            )
            if rules is not None and not body.dry_run:
                # a content merge resolves the keys changed on both sides: check them too
                conflicts_as_result = {"return_conflict_as_result": True} if by_content else {}
                with expected_in_history(target):
                    preview = merge_into(
                        target,
                        source,
                        body.model_copy(update={"dry_run": True, **conflicts_as_result}),
                        None,
                    )
                authorize(merged_entity_checks(target, preview, by_content=by_content))
            meta: CommitMeta | None = None
            if body.commit_meta is not None or body.message or _has_commit_headers(request.headers):
                meta = commit_meta(body.commit_meta, request.headers)
                if not meta.message and body.message:  # Nessie's deprecated 'message' field
                    meta = replace(meta, message=body.message)
            tables = None
            with expected_in_history(target):
                if by_content:
                    record["contentMerge"] = True
                    merged = merge_by_content(target, source, body, meta)
                    result, tables = merged.result, merged.tables
                else:
                    result = merge_into(target, source, body, meta)
            record["resultHash"] = result.resultant_target_hash
            record["applied"] = result.was_applied
            record["keys"] = [wire.key_to_path(d.key) for d in result.details]
        _count(metrics, "merge", result.was_applied, len(result.added_commits), result.conflicts)
        return _json(wire.merge_response_json(result, target.hash, tables))

    def merge_by_content(
        target: Branch, source: RefSpec, body: MergeBody, meta: CommitMeta | None
    ) -> ContentMergeResult:
        """The library's content merge over this server's store (the ``contentMerge`` opt-in).

        The same function a client runs against a store that cannot merge by content
        (:func:`lakehouse.catalog.content_merge.content_merge`), here next to the catalog:
        the final store merge is checked against ``target.hash`` and the contents the
        table merges were computed from, atomically.
        """
        assert content_merge_io is not None
        return content_merge(
            store,
            source,
            target.name,
            io_properties=content_merge_io.fileio_properties,
            location_allowed=content_merge_io.in_warehouse,
            default_behavior=body.default_key_merge_mode or MergeBehavior.NORMAL,
            key_behaviors=key_behaviors(body.key_merge_modes) or None,
            expected_target_hash=target.hash,
            dry_run=bool(body.dry_run),
            meta=meta,
            raise_on_conflict=not body.return_conflict_as_result,
        )

    def merge_into(
        target: Branch, source: RefSpec, body: MergeBody, meta: CommitMeta | None
    ) -> MergeResult:
        return store.merge(
            source,
            target.name,
            expected_target_hash=target.hash,
            default_behavior=body.default_key_merge_mode or MergeBehavior.NORMAL,
            key_behaviors=key_behaviors(body.key_merge_modes),
            dry_run=bool(body.dry_run),
            meta=meta,
            raise_on_conflict=not body.return_conflict_as_result,
            resolved=resolved_contents(body.key_merge_modes) or None,
        )

    @router.post(
        "/trees/{branch:nessieref}/history/transplant",
        operation_id="transplantV2",
        summary="Cherry-pick commits (oldest first) onto 'branch@expectedHash'",
        responses={200: {"model": MergeResponse}, **_WRITE_ERRORS},
    )
    def transplant(branch: str, body: TransplantBody) -> JSONResponse:
        if body.content_merge:
            raise InvalidInputError(
                "contentMerge is supported by merges only: a transplant keeps Nessie's "
                "key-level semantics"
            )
        if resolved_contents(body.key_merge_modes):
            raise InvalidInputError("resolvedContent is supported by merges only")
        if body.from_ref_name != wire.DETACHED:
            store.get_reference(body.from_ref_name)
        last = detached_hash(body.hashes_to_transplant[-1], _TRANSPLANT_HASH)
        with (
            audit.write("transplant", branch.split("@", 1)[0]) as record,
            write_target(branch, _TRANSPLANT_TARGET) as target,
        ):
            record["expectedHash"] = target.hash
            record["hashes"] = list(body.hashes_to_transplant)
            authorize(
                [
                    view_reference(body.from_ref_name),
                    *on_reference(CheckType.COMMIT_CHANGE_AGAINST_REFERENCE, target.name),
                ]
            )
            hashes = [detached_hash(h, _TRANSPLANT_HASH) for h in body.hashes_to_transplant[:-1]]
            hashes.append(last)

            def transplant_into(dry_run: bool) -> MergeResult:
                with expected_in_history(target):
                    return store.transplant(
                        hashes,
                        target.name,
                        expected_target_hash=target.hash,
                        default_behavior=body.default_key_merge_mode or MergeBehavior.NORMAL,
                        key_behaviors=key_behaviors(body.key_merge_modes),
                        dry_run=dry_run,
                        raise_on_conflict=not body.return_conflict_as_result,
                    )

            if rules is not None and not body.dry_run:
                authorize(merged_entity_checks(target, transplant_into(True)))
            result = transplant_into(bool(body.dry_run))
            record["resultHash"] = result.resultant_target_hash
            record["applied"] = result.was_applied
        _count(
            metrics, "transplant", result.was_applied, len(result.added_commits), result.conflicts
        )
        return _json(wire.merge_response_json(result, target.hash))

    # Last: '/trees/{ref}' must not shadow the longer routes above, as a reference
    # path element may contain '/' (Nessie picks the most specific template).

    @router.get(
        "/trees/{ref:nessieref}",
        operation_id="getReferenceByNameV2",
        summary="One branch or tag",
        responses=_READ_ERRORS,
    )
    def get_reference(
        ref: str, fetch: Annotated[str | None, Query(description="MINIMAL or ALL")] = None
    ) -> JSONResponse:
        spec = path_ref(ref)
        if spec.name is None or spec.hash is not None or spec.relative:
            raise InvalidInputError("Hashes are not allowed when fetching a reference by name")
        reference = store.get_reference(spec.name)
        authorize([view_reference(spec.name)])
        metadata = None
        if _fetch_all(fetch):
            counts = ref_counts()(reference)
            metadata = wire.reference_metadata_json(head_meta(reference), counts)
        return _json({"reference": wire.reference_json(reference, metadata)})

    @router.put(
        "/trees/{ref:nessieref}",
        operation_id="assignReferenceV2",
        summary="Point 'name@expectedHash' at the commit the body names",
        responses=_WRITE_ERRORS,
    )
    def assign_reference(
        ref: str,
        body: Annotated[ReferenceBody, Body()],
        type_: Annotated[str | None, Query(alias="type", description="branch or tag")] = None,
    ) -> JSONResponse:
        kind = _reference_type(type_)
        spec = path_ref(ref, _ASSIGN_TARGET)
        assert spec.name is not None
        expected = expected_hash(spec)
        to = body_ref(body, _TARGET_HASH)
        if kind is not None:
            check_type(store.get_reference(spec.name), kind)
        with audit.write("assign_reference", spec.name) as record:
            record["expectedHash"] = expected
            if rules is not None:
                store.resolve(to)
            authorize(
                [
                    view_reference(ref_name(to)),
                    *on_reference(CheckType.ASSIGN_REFERENCE_TO_HASH, spec.name),
                ]
            )
            updated = store.assign_reference(spec.name, expected, to, kind)
            record["resultHash"] = updated.hash
        return _json({"reference": updated.to_json()})

    @router.delete(
        "/trees/{ref:nessieref}",
        operation_id="deleteReferenceV2",
        summary="Delete 'name@expectedHash'",
        responses=_WRITE_ERRORS,
    )
    def delete_reference(
        ref: str,
        type_: Annotated[str | None, Query(alias="type", description="branch or tag")] = None,
    ) -> JSONResponse:
        kind = _reference_type(type_)
        spec = wire.parse_ref_path(ref, store.default_branch, wire.HashRule(branch_or_tag=True))
        assert spec.name is not None
        current = store.get_reference(spec.name)
        check_type(current, kind)
        if spec.name == store.default_branch:
            raise InvalidInputError(f"Default branch '{spec.name}' cannot be deleted.")
        with audit.write("delete_reference", spec.name) as record:
            record["expectedHash"] = spec.hash
            authorize(on_reference(CheckType.DELETE_REFERENCE, spec.name))
            _DELETE_TARGET.check_hash(False, spec.hash, bool(spec.relative))
            expected = expected_hash(spec)
            store.delete_reference(spec.name, expected, kind)
        deleted_at = current.hash if current.hash.startswith(expected.lower()) else expected
        return _json({"reference": Reference.of(current.type, current.name, deleted_at).to_json()})

    handlers = NessieHandlers(
        default_branch=store.default_branch,
        get_config=get_config,
        get_all_references=get_all_references,
        create_reference=create_reference,
        get_reference=get_reference,
        assign_reference=assign_reference,
        delete_reference=delete_reference,
        get_entries=get_entries,
        get_content=get_content,
        get_multiple_contents=get_multiple_contents,
        get_commit_log=get_commit_log,
        get_diff=get_diff,
        commit=commit,
        merge=merge,
        transplant=transplant,
    )
    return router, handlers


def _count(
    metrics: ServerMetrics, operation: str, applied: bool, commits: int, conflicts: Sequence[Any]
) -> None:
    if applied and commits:
        metrics.commits.labels(operation).inc(commits)
    if conflicts:
        metrics.conflicts.labels(operation).inc()


def _has_commit_headers(headers: Mapping[str, str]) -> bool:
    return any(name.lower().startswith("nessie-commit-") for name in headers)


def _refuse_server_fields(body: CommitMetaBody) -> None:
    """Nessie's rule: the server sets committer, commit time, hash and parents."""
    for value, what in (
        (body.committer, "committer"),
        (body.commit_time, "commit time"),
        (body.hash, "commit hash"),
    ):
        if value is not None:
            raise InvalidInputError(
                f"cannot set the {what} on the client side: it is set by the server"
            )
    if body.parent_commit_hashes:
        raise InvalidInputError(
            "cannot set the parent commit hashes on the client side: they are set by the server"
        )


def _signed_off_by(body: CommitMetaBody | None) -> tuple[str, ...]:
    """``allSignedOffBy`` (API v2), else the single ``signedOffBy`` (v1 spelling)."""
    if body is None:
        return ()
    if body.all_signed_off_by is not None:
        return tuple(s for s in body.all_signed_off_by if s)
    return (body.signed_off_by,) if body.signed_off_by else ()


def _authors(body: CommitMetaBody | None) -> list[str]:
    if body is None:
        return []
    if body.authors is not None:
        return [a for a in body.authors if a]
    return [body.author] if body.author else []


def _properties(body: CommitMetaBody | None) -> dict[str, str]:
    if body is None:
        return {}
    if body.all_properties is not None:
        out: dict[str, str] = {}
        for name, values in body.all_properties.items():
            if len(values) != 1:
                raise InvalidInputError(
                    f"commit property {name!r} has {len(values)} values: "
                    "this server stores exactly one value per property"
                )
            out[name] = values[0]
        return out
    return dict(body.properties or {})


__all__ = ["SPEC_VERSION", "ContentMergeIO", "NessieHandlers", "build", "build_router"]
