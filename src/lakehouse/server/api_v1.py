"""Nessie REST API v1 (``/api/v1``), a translation over the API v2 handlers.

Nessie still serves v1 beside v2, and v1-only clients use it: pynessie, Nessie's Spark
SQL extensions at their default ``client-api-version=1``, older ``NessieCatalog``
configurations. Every route here parses v1's request syntax, calls the v2 handler that
does the same thing (:class:`~lakehouse.server.api_v2.NessieHandlers`: same parsing of
names and hashes, same store call, same access checks, audit records and metrics) and
writes v1's JSON, which is v2's through Nessie's ``Views.V1``:

* a reference and its hash travel apart: the name in the path or ``ref``/``sourceRefName``,
  the hash in ``hashOnRef`` (reads) or ``expectedHash`` (writes), a query parameter;
* single objects are returned bare (a ``Reference``, a ``Content``), not wrapped, and
  assign, delete and namespace updates answer 204 without a body;
* v2-only fields are left out (``effectiveReference``, entries' ``contentId``, commit
  metadata's ``authors``/``allSignedOffBy``/``allProperties``/``parentCommitHashes``),
  v1's single-valued ones put back (``author``, ``signedOffBy``, ``properties``), and the
  merge response carries v1's deprecated ``conflictType``/``sourceCommits`` fields;
* diffs name their sides as ``from...to``, a hash joined to its reference with ``*``;
* namespaces have their own resource (v2 has only content at keys): created and updated
  by commits on the branch's head, as Nessie does, with Nessie's ``NAMESPACE_*`` errors.

Errors keep Nessie's ``NessieError`` body (``message``, ``status``, ``reason``,
``errorCode``, ``serverStackTrace``), as for v2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from lakehouse.catalog.model import ContentKey, ContentType, validate_ref_name
from lakehouse.errors import (
    InvalidInputError,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NamespaceNotFoundError,
)
from lakehouse.server import wire
from lakehouse.server.api_v2 import NessieHandlers
from lakehouse.server.schemas import (
    CommitMetaBody,
    ContentKeyBody,
    GetMultipleContentsBody,
    MergeBody,
    OperationBody,
    OperationsBody,
    ReferenceBody,
    TransplantBody,
)

#: ``DiffParams``: the two sides of ``/diffs/{from}...{to}``, a hash after ``*``.
_DIFF_SEPARATOR = "..."
_DIFF_HASH_SEPARATOR = "*"
#: Entries fetched per call when a v1 request needs a whole listing (namespaces).
_PAGE = 1000


class _V1Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


#: Nessie's ``Validation.REF_NAME_MESSAGE`` (its clients and tests match on it).
REF_NAME_MESSAGE = (
    "Reference name must start with a letter, followed by letters, digits, one of the "
    "./_- characters, not end with a slash or dot, not contain '..'"
)
_REFERENCE_MODELS = {"BRANCH": "Branch", "TAG": "Tag", "DETACHED": "Detached"}


def reference_body(data: Any) -> ReferenceBody:
    """v1's ``Reference`` body, refused as Nessie's JSON reader refuses it.

    The type (``BRANCH``, ``TAG``, ``DETACHED``) is required; a branch or tag needs a
    valid name, also when the body only names a commit to assign to.
    """
    if not isinstance(data, Mapping):
        raise InvalidInputError("a reference must be a JSON object with 'type' and 'name'")
    kind = data.get("type")
    if kind is None:
        raise InvalidInputError(
            "Missing type id when trying to resolve subtype of "
            "`org.projectnessie.model.Reference`: missing type id property 'type'"
        )
    model = _REFERENCE_MODELS.get(str(kind).upper()) if isinstance(kind, str) else None
    if model is None:
        raise InvalidInputError(
            f"Could not resolve type id '{kind}' as a subtype of "
            "`org.projectnessie.model.Reference`: known type ids = [BRANCH, DETACHED, TAG]"
        )
    name, hash_ = data.get("name"), data.get("hash")
    if not isinstance(name, str | None) or not isinstance(hash_, str | None):
        raise InvalidInputError("a reference's 'name' and 'hash' must be strings")
    if model != "Detached":
        try:
            validate_ref_name(name or "")
        except InvalidInputError:
            raise InvalidInputError(
                f"Cannot construct instance of `org.projectnessie.model.Immutable{model}`, "
                f"problem: {REF_NAME_MESSAGE} - but was: {name or ''}\n"
            ) from None
    return ReferenceBody(type=model.upper(), name=name, hash=hash_)


def _required(operation: str, **values: Any) -> None:
    """Nessie's bean-validation error for missing required parameters or bodies."""
    missing = [f"{operation}.{name}: must not be null" for name, v in values.items() if v is None]
    if missing:
        raise InvalidInputError(", ".join(missing))


class V1MergeBody(MergeBody):
    """v1's ``Merge``: v2's, plus the deprecated ``keepIndividualCommits`` (must be false)."""

    keep_individual_commits: bool | None = Field(default=None, alias="keepIndividualCommits")


class V1TransplantBody(TransplantBody):
    """v1's ``Transplant``: v2's, plus ``keepIndividualCommits`` (must be true)."""

    keep_individual_commits: bool | None = Field(default=None, alias="keepIndividualCommits")


class NamespaceBody(_V1Body):
    """v1's ``Namespace`` body of a create (the path names it; the body adds properties)."""

    elements: list[str] | None = None
    properties: dict[str, str] | None = None


class NamespaceUpdateBody(_V1Body):
    """v1's ``NamespaceUpdate``."""

    property_updates: dict[str, str] | None = Field(default=None, alias="propertyUpdates")
    property_removals: list[str] | None = Field(default=None, alias="propertyRemovals")


def _body(response: JSONResponse) -> Any:
    return json.loads(bytes(response.body))


def _json(data: Any) -> JSONResponse:
    return JSONResponse(data)


def _no_content() -> Response:
    return Response(status_code=204)


def _name(name: str) -> str:
    """A reference name as v1 takes it: a plain name (v2's ``@``/``~`` syntax is refused).

    One trailing ``@`` is dropped: the server's path decoding adds it to a name sent with
    an encoded slash (``feature%2Fx``), so that the name stays one path element.
    """
    return validate_ref_name(name.removesuffix("@"))


def _at(name: str, hash_: str | None) -> str:
    """The v2 path element for ``name`` at ``hash_`` (its head when ``None``)."""
    return f"{_name(name)}@{hash_}" if hash_ else _name(name)


def commit_meta_v1(meta: Mapping[str, Any]) -> dict[str, Any]:
    """v2 ``CommitMeta`` JSON as v1 shows it (first author, sign-off and property values)."""
    authors = meta.get("authors") or []
    signed = meta.get("allSignedOffBy") or []
    properties = meta.get("allProperties") or {}
    return {
        "hash": meta.get("hash"),
        "committer": meta.get("committer"),
        "author": authors[0] if authors else None,
        "signedOffBy": signed[0] if signed else None,
        "message": meta.get("message"),
        "commitTime": meta.get("commitTime"),
        "authorTime": meta.get("authorTime"),
        "properties": {name: values[0] for name, values in properties.items() if values},
    }


def reference_v1(reference: Mapping[str, Any]) -> dict[str, Any]:
    """A v2 reference as v1 shows it (the head's commit metadata in v1 form)."""
    out = dict(reference)
    metadata = out.get("metadata")
    if isinstance(metadata, Mapping) and metadata.get("commitMetaOfHEAD") is not None:
        out["metadata"] = {
            **metadata,
            "commitMetaOfHEAD": commit_meta_v1(metadata["commitMetaOfHEAD"]),
        }
    return out


def log_entry_v1(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A v2 ``LogEntry`` as v1 shows it (extra parents in ``additionalParents``)."""
    parents = entry["commitMeta"].get("parentCommitHashes") or []
    operations = entry.get("operations")
    if operations is not None:  # v1's Put still names its deprecated 'expectedContent'
        operations = [
            {**op, "expectedContent": op.get("expectedContent")} if op["type"] == "PUT" else op
            for op in operations
        ]
    out = {
        "commitMeta": commit_meta_v1(entry["commitMeta"]),
        "parentCommitHash": entry.get("parentCommitHash"),
        "operations": operations,
    }
    if len(parents) > 1:
        out["additionalParents"] = parents[1:]
    return out


def merge_response_v1(response: Mapping[str, Any]) -> dict[str, Any]:
    """A v2 ``MergeResponse`` with v1's deprecated fields."""
    details = []
    for detail in response.get("details") or []:
        item = {k: v for k, v in detail.items() if k != "conflict"}
        item["conflictType"] = "UNRESOLVABLE" if detail.get("conflict") else "NONE"
        item["sourceCommits"] = []
        item["targetCommits"] = []
        details.append(item)
    return {**response, "details": details, "sourceCommits": [], "targetCommits": None}


def _without(data: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in names}


def _entry_v1(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": entry["type"], "name": entry["name"]}


def _diff_side(text: str) -> str:
    """``name`` or ``name*hash`` (a side of a v1 diff) as a v2 path element."""
    name, _, hash_ = text.partition(_DIFF_HASH_SEPARATOR)
    return _at(name, hash_ or None)


def _namespace_key(text: str) -> ContentKey:
    return wire.key_from_path(text)


def _namespace_json(content: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(content)
    if not out.get("properties"):
        out.pop("properties", None)
    return out


def _same_or_under(elements: list[str], namespace: ContentKey | None) -> bool:
    """Nessie's ``Namespace.isSameOrSubElementOf``."""
    if namespace is None:
        return True
    prefix = list(namespace.elements)
    return elements[: len(prefix)] == prefix


def _namespace_of(entry: Mapping[str, Any]) -> list[str]:
    """The namespace an entry is (a namespace) or is in (anything else)."""
    elements = list(entry["name"]["elements"])
    return elements if entry["type"] == ContentType.NAMESPACE.value else elements[:-1]


def build_router(v2: NessieHandlers) -> APIRouter:
    """The ``/api/v1`` routes, each a translation over the matching v2 handler."""
    router = APIRouter(prefix="/api/v1", tags=["Nessie API v1"])
    default_branch = v2.default_branch

    def ref_or_default(ref: str | None) -> str:
        return ref if ref else default_branch

    def all_entries(ref_text: str, *, content: bool) -> Iterator[dict[str, Any]]:
        """Every entry at ``ref_text`` (v2's listing, page after page)."""
        token: str | None = None
        while True:
            page = _body(
                v2.get_entries(ref=ref_text, content=content, max_records=_PAGE, page_token=token)
            )
            yield from page["entries"]
            token = page.get("token")
            if not page.get("hasMore") or token is None:
                return

    def head(name: str) -> str:
        return str(_body(v2.get_reference(ref=_name(name)))["reference"]["hash"])

    def find_namespace(ref_text: str, key: ContentKey) -> dict[str, Any]:
        """The namespace at ``key``: explicit (its content) or implied by keys under it."""
        found = _body(v2.get_multiple_contents(ref=ref_text, body=_keys_body([key])))
        contents = found["contents"]
        if contents:
            content = contents[0]["content"]
            if content.get("type") != ContentType.NAMESPACE.value:
                raise NamespaceNotFoundError(key)
            return _namespace_json(content)
        for entry in all_entries(ref_text, content=False):
            if _same_or_under(_namespace_of(entry), key):
                return {"type": ContentType.NAMESPACE.value, "elements": list(key.elements)}
        raise NamespaceNotFoundError(key)

    def commit_one(
        request: Request, branch: str, message: str, operation: OperationBody
    ) -> dict[str, Any]:
        """One operation committed on the branch's head (Nessie's namespace writes)."""
        body = OperationsBody(commit_meta=CommitMetaBody(message=message), operations=[operation])
        result = _body(v2.commit(branch=_at(branch, head(branch)), body=body, request=request))
        return dict(result["targetBranch"])

    # -- config ---------------------------------------------------------------------

    @router.get("/config", operation_id="getConfig", summary="Server configuration (v1 view)")
    def get_config() -> JSONResponse:
        config = _body(v2.get_config())
        return _json(
            {
                "defaultBranch": config["defaultBranch"],
                "maxSupportedApiVersion": config["maxSupportedApiVersion"],
            }
        )

    # -- references -----------------------------------------------------------------

    @router.get("/trees", operation_id="getAllReferences", summary="All branches and tags")
    def get_all_references(
        max_records: Annotated[int | None, Query(alias="maxRecords", ge=1)] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
        fetch: Annotated[str | None, Query(description="MINIMAL or ALL")] = None,
        filter_: Annotated[str | None, Query(alias="filter", description="CEL")] = None,
    ) -> JSONResponse:
        page = _body(
            v2.get_all_references(
                fetch=fetch, filter_=filter_, max_records=max_records, page_token=page_token
            )
        )
        page["references"] = [reference_v1(r) for r in page["references"]]
        return _json(page)

    @router.get("/trees/tree", operation_id="getDefaultBranch", summary="The default branch")
    def get_default_branch() -> JSONResponse:
        return _json(_body(v2.get_reference(ref=default_branch))["reference"])

    @router.post(
        "/trees/tree",
        operation_id="createReference",
        summary="Create the branch or tag the body names, at 'hash' on 'sourceRefName'",
    )
    def create_reference(
        body: Annotated[dict[str, Any] | None, Body()] = None,
        source_ref_name: Annotated[str | None, Query(alias="sourceRefName")] = None,
    ) -> JSONResponse:
        _required("createReference", reference=body)
        reference = reference_body(body)
        assert reference.name is not None
        if source_ref_name and reference.hash is None:
            # Nessie looks the source up before it asks for the hash: 404 first
            v2.get_reference(ref=_name(source_ref_name))
        source = ReferenceBody(name=ref_or_default(source_ref_name), hash=reference.hash)
        created = v2.create_reference(name=reference.name, type_=reference.type, body=source)
        return _json(_body(created)["reference"])

    @router.get(
        "/trees/tree/{ref:nessieref}/entries",
        operation_id="getEntries",
        summary="Keys at a reference ('hashOnRef': at that commit)",
    )
    def get_entries(
        ref: str,
        hash_on_ref: Annotated[str | None, Query(alias="hashOnRef")] = None,
        max_records: Annotated[int | None, Query(alias="maxRecords", ge=1)] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
        filter_: Annotated[str | None, Query(alias="filter", description="CEL")] = None,
        namespace_depth: Annotated[int | None, Query(alias="namespaceDepth", ge=0)] = None,
    ) -> JSONResponse:
        at = _at(ref, hash_on_ref)
        if not namespace_depth:
            page = _body(
                v2.get_entries(
                    ref=at, filter_=filter_, max_records=max_records, page_token=page_token
                )
            )
            return _json(
                {
                    "entries": [_entry_v1(e) for e in page["entries"]],
                    "hasMore": page["hasMore"],
                    "token": page["token"],
                }
            )
        # Nessie: keys cut to their first 'namespaceDepth' elements, each once (no paging);
        # a cut key is a namespace, shorter keys are left out.
        seen: dict[tuple[str, ...], dict[str, Any]] = {}
        token: str | None = None
        while True:
            page = _body(
                v2.get_entries(ref=at, filter_=filter_, max_records=_PAGE, page_token=token)
            )
            for entry in page["entries"]:
                elements = tuple(entry["name"]["elements"])
                if len(elements) < namespace_depth:
                    continue
                cut = elements[:namespace_depth]
                kind = entry["type"] if len(elements) == namespace_depth else "NAMESPACE"
                if cut not in seen or kind == "NAMESPACE":
                    seen[cut] = {"type": kind, "name": {"elements": list(cut)}}
            token = page.get("token")
            if not page.get("hasMore") or token is None:
                break
        return _json({"entries": list(seen.values()), "hasMore": False, "token": None})

    @router.get(
        "/trees/tree/{ref:nessieref}/log",
        operation_id="getCommitLog",
        summary="Commit log from 'endHash' (or the head) back to 'startHash'",
    )
    def get_commit_log(
        ref: str,
        start_hash: Annotated[str | None, Query(alias="startHash")] = None,
        end_hash: Annotated[str | None, Query(alias="endHash")] = None,
        max_records: Annotated[int | None, Query(alias="maxRecords", ge=1)] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
        filter_: Annotated[str | None, Query(alias="filter", description="CEL")] = None,
        fetch: Annotated[str | None, Query(description="MINIMAL or ALL")] = None,
    ) -> JSONResponse:
        page = _body(
            v2.get_commit_log(
                ref=_at(ref, end_hash),
                fetch=fetch,
                filter_=filter_,
                limit_hash=start_hash,
                max_records=max_records,
                page_token=page_token,
            )
        )
        page["logEntries"] = [log_entry_v1(e) for e in page["logEntries"]]
        return _json(page)

    @router.get(
        "/trees/tree/{ref:nessieref}", operation_id="getReferenceByName", summary="One reference"
    )
    def get_reference(
        ref: str, fetch: Annotated[str | None, Query(description="MINIMAL or ALL")] = None
    ) -> JSONResponse:
        found = _body(v2.get_reference(ref=_name(ref), fetch=fetch))
        return _json(reference_v1(found["reference"]))

    @router.post(
        "/trees/branch/{branch:nessieref}/commit",
        operation_id="commitMultipleOperations",
        summary="Commit operations to 'branch' expected at 'expectedHash'",
    )
    def commit(
        branch: str,
        request: Request,
        body: Annotated[OperationsBody | None, Body()] = None,
        expected_hash: Annotated[str | None, Query(alias="expectedHash")] = None,
    ) -> JSONResponse:
        _required("commitMultipleOperations", operations=body)
        result = _body(v2.commit(branch=_at(branch, expected_hash), body=body, request=request))
        return _json(result["targetBranch"])

    @router.post(
        "/trees/branch/{branch:nessieref}/merge",
        operation_id="mergeRefIntoBranch",
        summary="Merge a reference into 'branch' expected at 'expectedHash' (squashed)",
    )
    def merge(
        branch: str,
        request: Request,
        body: Annotated[V1MergeBody | None, Body()] = None,
        expected_hash: Annotated[str | None, Query(alias="expectedHash")] = None,
    ) -> JSONResponse:
        _required("mergeRefIntoBranch", merge=body)
        assert body is not None
        if body.keep_individual_commits:
            raise InvalidInputError(
                "The parameter 'keepIndividualCommits' is deprecated. "
                "Merge operations only support squashed now."
            )
        result = v2.merge(branch=_at(branch, expected_hash), body=body, request=request)
        return _json(merge_response_v1(_body(result)))

    @router.post(
        "/trees/branch/{branch:nessieref}/transplant",
        operation_id="transplantCommitsIntoBranch",
        summary="Cherry-pick commits onto 'branch' expected at 'expectedHash'",
    )
    def transplant(
        branch: str,
        body: Annotated[V1TransplantBody | None, Body()] = None,
        expected_hash: Annotated[str | None, Query(alias="expectedHash")] = None,
        message: Annotated[
            str | None, Query(description="Accepted, not applied: commits keep their messages")
        ] = None,
    ) -> JSONResponse:
        _required("transplantCommitsIntoBranch", transplant=body)
        assert body is not None
        if body.keep_individual_commits is False:
            raise InvalidInputError(
                "The parameter 'keepIndividualCommits' is deprecated. "
                "Transplant operations only support unsquashed now."
            )
        result = v2.transplant(branch=_at(branch, expected_hash), body=body)
        return _json(merge_response_v1(_body(result)))

    @router.put(
        "/trees/{reference_type}/{name:nessieref}",
        operation_id="assignReference",
        summary="Point 'name' (expected at 'expectedHash') at the commit the body names",
        status_code=204,
    )
    def assign_reference(
        reference_type: str,
        name: str,
        body: Annotated[dict[str, Any] | None, Body()] = None,
        expected_hash: Annotated[str | None, Query(alias="expectedHash")] = None,
    ) -> Response:
        # Nessie reads the body before it validates the parameters
        target = reference_body(body) if body is not None else None
        _required("assignReference", assignTo=target, expectedHash=expected_hash)
        assert target is not None
        v2.assign_reference(ref=_at(name, expected_hash), body=target, type_=reference_type)
        return _no_content()

    @router.delete(
        "/trees/{reference_type}/{name:nessieref}",
        operation_id="deleteReference",
        summary="Delete 'name' (expected at 'expectedHash')",
        status_code=204,
    )
    def delete_reference(
        reference_type: str,
        name: str,
        expected_hash: Annotated[str | None, Query(alias="expectedHash")] = None,
    ) -> Response:
        _required("deleteReference", expectedHash=expected_hash)
        v2.delete_reference(ref=_at(name, expected_hash), type_=reference_type)
        return _no_content()

    # -- contents and diffs -----------------------------------------------------------

    @router.get("/contents/{key}", operation_id="getContent", summary="The content at one key")
    def get_content(
        key: str,
        ref: Annotated[str | None, Query()] = None,
        hash_on_ref: Annotated[str | None, Query(alias="hashOnRef")] = None,
    ) -> JSONResponse:
        found = v2.get_content(ref=_at(ref_or_default(ref), hash_on_ref), key=key)
        return _json(_body(found)["content"])

    @router.post(
        "/contents", operation_id="getMultipleContents", summary="The contents at several keys"
    )
    def get_multiple_contents(
        body: GetMultipleContentsBody,
        ref: Annotated[str | None, Query()] = None,
        hash_on_ref: Annotated[str | None, Query(alias="hashOnRef")] = None,
    ) -> JSONResponse:
        found = v2.get_multiple_contents(ref=_at(ref_or_default(ref), hash_on_ref), body=body)
        return _json(_without(_body(found), "effectiveReference"))

    @router.get(
        "/diffs/{sides:path}",
        operation_id="getDiff",
        summary="Content differences 'from...to' (each 'name' or 'name*hash')",
    )
    def get_diff(sides: str) -> JSONResponse:
        from_text, separator, to_text = sides.partition(_DIFF_SEPARATOR)
        if not separator or not from_text or not to_text:
            raise InvalidInputError(
                f"invalid diff {sides!r}: expected 'from...to', each side 'name' or 'name*hash'"
            )
        found = v2.get_diff(from_ref=_diff_side(from_text), to_ref=_diff_side(to_text))
        return _json(_without(_body(found), "effectiveFromReference", "effectiveToReference"))

    # -- namespaces -------------------------------------------------------------------

    @router.get(
        "/namespaces/namespace/{ref:nessieref}/{name}",
        operation_id="getNamespace",
        summary="One namespace (explicitly created, or implied by keys under it)",
    )
    def get_namespace(
        ref: str, name: str, hash_on_ref: Annotated[str | None, Query(alias="hashOnRef")] = None
    ) -> JSONResponse:
        return _json(find_namespace(_at(ref, hash_on_ref), _namespace_key(name)))

    @router.put(
        "/namespaces/namespace/{ref:nessieref}/{name}",
        operation_id="createNamespace",
        summary="Create a namespace with a commit on the branch's head",
    )
    def create_namespace(
        ref: str, name: str, request: Request, body: Annotated[NamespaceBody, Body()]
    ) -> JSONResponse:
        key = _namespace_key(name)
        at = _at(ref, head(ref))
        try:
            existing = find_namespace(at, key)
        except NamespaceNotFoundError:
            existing = None
        if existing is not None:
            raise NamespaceAlreadyExistsError(key)
        found = _body(v2.get_multiple_contents(ref=at, body=_keys_body([key])))
        if found["contents"]:
            raise NamespaceAlreadyExistsError(key, other_content=True)
        content: dict[str, Any] = {"type": "NAMESPACE", "elements": list(key.elements)}
        if body.properties:
            content["properties"] = dict(body.properties)
        put = OperationBody(
            type="PUT", key=ContentKeyBody(elements=list(key.elements)), content=content
        )
        target = commit_one(request, ref, f"create namespace '{key}'", put)
        created = _body(v2.get_content(ref=_at(ref, target["hash"]), key=name))
        return _json(_namespace_json(created["content"]))

    @router.delete(
        "/namespaces/namespace/{ref:nessieref}/{name}",
        operation_id="deleteNamespace",
        summary="Delete an empty namespace with a commit on the branch's head",
        status_code=204,
    )
    def delete_namespace(ref: str, name: str, request: Request) -> Response:
        key = _namespace_key(name)
        at = _at(ref, head(ref))
        find_namespace(at, key)
        for entry in all_entries(at, content=False):
            if entry["type"] != ContentType.NAMESPACE.value and _same_or_under(
                _namespace_of(entry), key
            ):
                raise NamespaceNotEmptyError(key)
        delete = OperationBody(type="DELETE", key=ContentKeyBody(elements=list(key.elements)))
        commit_one(request, ref, f"delete namespace '{key}'", delete)
        return _no_content()

    @router.post(
        "/namespaces/namespace/{ref:nessieref}/{name}",
        operation_id="updateProperties",
        summary="Set and remove a namespace's properties with a commit on the branch's head",
        status_code=204,
    )
    def update_namespace_properties(
        ref: str, name: str, request: Request, body: NamespaceUpdateBody
    ) -> Response:
        key = _namespace_key(name)
        namespace = find_namespace(_at(ref, head(ref)), key)
        properties = dict(namespace.get("properties") or {})
        for removed in body.property_removals or ():
            properties.pop(removed, None)
        properties.update(body.property_updates or {})
        content = {**namespace, "properties": properties}
        put = OperationBody(
            type="PUT", key=ContentKeyBody(elements=list(key.elements)), content=content
        )
        commit_one(request, ref, f"update properties for namespace '{key}'", put)
        return _no_content()

    @router.get(
        "/namespaces/{ref:nessieref}",
        operation_id="getNamespaces",
        summary="Namespaces (explicit and implied) at or under 'name'",
    )
    def get_namespaces(
        ref: str,
        name: Annotated[str | None, Query()] = None,
        hash_on_ref: Annotated[str | None, Query(alias="hashOnRef")] = None,
    ) -> JSONResponse:
        under = _namespace_key(name) if name else None
        explicit: dict[tuple[str, ...], dict[str, Any]] = {}
        implied: dict[tuple[str, ...], dict[str, Any]] = {}
        for entry in all_entries(_at(ref, hash_on_ref), content=True):
            elements = _namespace_of(entry)
            if not elements or not _same_or_under(elements, under):
                continue
            if entry["type"] == ContentType.NAMESPACE.value:
                explicit[tuple(elements)] = _namespace_json(entry["content"])
            else:
                implied[tuple(elements)] = {"type": "NAMESPACE", "elements": elements}
        namespaces = [*explicit.values()]
        namespaces += [ns for elements, ns in implied.items() if elements not in explicit]
        return _json({"namespaces": namespaces})

    return router


def _keys_body(keys: list[ContentKey]) -> GetMultipleContentsBody:
    return GetMultipleContentsBody(
        requested_keys=[ContentKeyBody(elements=list(k.elements)) for k in keys]
    )


__all__ = [
    "REF_NAME_MESSAGE",
    "NamespaceBody",
    "NamespaceUpdateBody",
    "V1MergeBody",
    "V1TransplantBody",
    "build_router",
    "commit_meta_v1",
    "log_entry_v1",
    "merge_response_v1",
    "reference_body",
    "reference_v1",
]
