"""The versioned catalog over HTTP: any server speaking Nessie's REST API v2.

:class:`NessieStore` implements :class:`~lakehouse.catalog.store.VersionStore` against
the real Project Nessie server or our own (``lakehouse serve``), with :mod:`httpx`.
Every call sends ``Nessie-Client-Spec: 2``; reference specs use Nessie's path syntax
(``name``, ``name@hash``, ``@hash``, ``~N``, ``^N``, ``*timestamp``) and content keys
Nessie's path encoding (escaped form for servers of spec 2.2.0 or later).

How server answers become our errors (:mod:`lakehouse.errors`):

* ``REFERENCE_NOT_FOUND`` / ``CONTENT_NOT_FOUND`` -> the ``NotFound`` types;
  ``REFERENCE_ALREADY_EXISTS`` -> :class:`ReferenceAlreadyExistsError`.
* ``REFERENCE_CONFLICT`` -> :class:`CommitConflictError` (commits) or
  :class:`MergeConflictError` (merges, transplants) with one
  :class:`~lakehouse.catalog.model.Conflict` per key, or
  :class:`ReferenceConflictError` when a reference was not at the expected hash.
* ``BAD_REQUEST`` -> :class:`InvalidInputError`. Nessie answers a few contract
  violations with a plain 400 (an update without the content id, a commit to a tag);
  after such a refusal the store reads the branch once to name the cause precisely
  (:class:`CommitConflictError` with ``KEY_EXISTS``/``CONTENT_ID_DIFFERS``,
  :class:`ReadOnlyReferenceError`). Nothing was committed in that case.
* Connection errors before a request was sent, and 5xx/429 answers to reads, are
  retried (bounded, with jittered exponential backoff) and then raised as
  :class:`TransientCatalogError`. A timeout, a dropped connection or a 5xx/429 *after*
  a write (commit, merge, transplant, reference change) was sent is
  :class:`CommitStateUnknownError`: the write may have landed, so it is never retried.

Where Nessie needs more than the contract gives, the store supplies it: a commit or
merge without an expected hash first reads the head and sends ``branch@head`` (so it
is conflict-checked from that head only); deleting without an expected hash likewise.
Merge and transplant flags are sent under both spellings (``dryRun`` and Nessie's
actual Jackson name ``isDryRun``, projectnessie/nessie#12130) and a dry run that comes
back applied is reported, not hidden. Behaviours that differ from our SQL store are
listed in ``docs/compatibility.md``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

from lakehouse.catalog.model import (
    NO_ANCESTOR,
    Branch,
    CommitConsistency,
    CommitMeta,
    CommitResult,
    Conflict,
    ConflictType,
    Content,
    ContentKey,
    ContentMergeResult,
    ContentType,
    Delete,
    DiffEntry,
    Entry,
    KeyMergeDetail,
    LogEntry,
    LogPage,
    MergeBehavior,
    MergeResult,
    Operation,
    Put,
    Reference,
    ReferenceHistory,
    ReferenceHistoryState,
    ReferenceType,
    RefSpec,
    RepositoryConfig,
    ResolvedContent,
    TableOutcome,
    content_from_json,
    operation_from_json,
    operation_to_json,
    validate_hash,
    validate_ref_name,
)
from lakehouse.catalog.store import (
    RefLike,
    ResolvedRef,
    VersionStore,
    check_reference_type,
    validate_operations,
)
from lakehouse.errors import (
    CatalogError,
    CommitConflictError,
    CommitStateUnknownError,
    ContentNotFoundError,
    InvalidInputError,
    MergeConflictError,
    NotFoundError,
    ReadOnlyReferenceError,
    ReferenceAlreadyExistsError,
    ReferenceConflictError,
    ReferenceNotFoundError,
    TransientCatalogError,
)

log = logging.getLogger(__name__)

#: Header announcing the client's Nessie spec major version.
CLIENT_SPEC_HEADER = "Nessie-Client-Spec"
#: Reference name Nessie uses for a commit that is not on a named reference.
DETACHED = "DETACHED"

_CONTENTS_CHUNK = 200
_RETRY_CAP_SECONDS = 5.0
# Nessie reports keys of a failed merge that have no conflict of their own like this.
_PLACEHOLDER_CONFLICT = ("KEY_CONFLICT", "UNKNOWN")
# Connection failures that happen before any byte of the request reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: ``additionalProperties`` key of ``GET /config`` with which ``lakehouse serve`` offers
#: content merges (``"contentMerge": true`` on a merge); the value is the extension's
#: version. Kept equal to :data:`lakehouse.server.schemas.CONTENT_MERGE_PROPERTY`.
CONTENT_MERGE_PROPERTY = "lakehouse.content-merge"


class _BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer …``; the token stays a :class:`SecretStr`."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Bearer " + self._token.get_secret_value()
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(**********)"


class _RefusedError(Exception):
    """A non-2xx answer, before it is mapped to a domain error."""

    def __init__(self, status: int, code: str, message: str, body: Mapping[str, Any]) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body

    @property
    def conflicts(self) -> list[Conflict]:
        details = self.body.get("errorDetails") or {}
        return _parse_conflicts(details.get("conflicts") or [])


class NessieStore(VersionStore):
    """:class:`VersionStore` over Nessie's REST API v2.

    ``uri`` is the API base, e.g. ``http://127.0.0.1:19120/api/v2`` (a bare
    ``http://host:port`` gets ``/api/v2`` appended). ``auth_token`` is sent as a
    bearer token and never shown; ``auth`` instead signs every request another way (e.g.
    :class:`~lakehouse.catalog.oauth2.ClientCredentials`). ``transport`` replaces the
    network (tests use :class:`httpx.MockTransport`). ``max_retries`` and ``retry_backoff``
    (seconds) bound the retries of requests that are safe to repeat.
    """

    def __init__(
        self,
        uri: str,
        *,
        auth_token: SecretStr | str | None = None,
        auth: httpx.Auth | None = None,
        timeout: float = 30,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 3,
        retry_backoff: float = 0.25,
    ) -> None:
        self.uri = _normalize_uri(uri)
        if max_retries < 0 or retry_backoff < 0:
            raise InvalidInputError("max_retries and retry_backoff must not be negative")
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        token = SecretStr(auth_token) if isinstance(auth_token, str) else auth_token
        if auth is not None and token is not None:
            raise InvalidInputError("NessieStore: pass auth_token or auth, not both")
        if auth is None and token is not None and token.get_secret_value():
            auth = _BearerAuth(token)
        self._client = httpx.Client(
            base_url=self.uri + "/",
            headers={CLIENT_SPEC_HEADER: "2", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            auth=auth,
            follow_redirects=False,
        )
        self._auth = auth
        self._config: dict[str, Any] | None = None
        self._default_branch: str | None = None

    def __repr__(self) -> str:
        return f"NessieStore({self.uri!r})"

    def close(self) -> None:
        """Close the HTTP connections (to the identity provider too, when signing in)."""
        self._client.close()
        close_auth = getattr(self._auth, "close", None)  # ClientCredentials, StoredLogin
        if callable(close_auth):
            close_auth()

    # -- server configuration -----------------------------------------------------------

    def server_config(self) -> Mapping[str, Any]:
        """The server's ``GET /config`` answer (fetched once)."""
        if self._config is None:
            config = self._call("GET", "config", what="read the server configuration")
            version = config.get("maxSupportedApiVersion")
            if isinstance(version, int) and version < 2:
                raise CatalogError(
                    f"the server at {self.uri} supports Nessie API v{version} only; "
                    "Lakehouse needs API v2"
                )
            self._config = config
        return self._config

    @property
    def default_branch(self) -> str:
        """The server's default branch (from its configuration)."""
        if self._default_branch is None:
            name = self.server_config().get("defaultBranch") or "main"
            self._default_branch = validate_ref_name(str(name))
        return self._default_branch

    @default_branch.setter
    def default_branch(self, value: str) -> None:
        self._default_branch = validate_ref_name(value)

    @property
    def _no_ancestor(self) -> str:
        return str(self.server_config().get("noAncestorHash") or NO_ANCESTOR)

    @property
    def offers_content_merge(self) -> bool:
        """Whether the server runs content merges itself (``lakehouse serve`` advertises it).

        Read from ``additionalProperties`` of ``GET /config`` (Nessie's free-form map, which
        the real Nessie server leaves without this key): version 1 or later of the
        ``contentMerge`` extension.
        """
        extra = self.server_config().get("additionalProperties")
        value = extra.get(CONTENT_MERGE_PROPERTY) if isinstance(extra, Mapping) else None
        return isinstance(value, str) and value.isdigit() and int(value) >= 1

    @property
    def _escaped_keys(self) -> bool:
        """Whether the server takes the escaped key form of Nessie spec 2.2.0."""
        spec = str(self.server_config().get("specVersion") or "")
        parts = [int(p) for p in spec.split(".")[:3] if p.isdigit()]
        return tuple(parts) >= (2, 2, 0)

    # -- HTTP plumbing ------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        write: bool = False,
    ) -> dict[str, Any]:
        """Send one request; retry what is safe; return the JSON body or raise.

        Non-2xx answers are raised as :class:`_RefusedError` for the caller to map; everything
        the caller cannot add meaning to (auth, transient, unknown) is mapped here.
        """
        attempt = 0
        while True:
            try:
                response = self._client.request(method, path, params=params, json=json)
            except _NOT_SENT as exc:
                if attempt < self.max_retries:
                    self._backoff(attempt, what, exc)
                    attempt += 1
                    continue
                raise TransientCatalogError(
                    f"cannot {what}: Nessie at {self.uri} is unreachable "
                    f"({type(exc).__name__}: {exc}); tried {attempt + 1} time(s)"
                ) from exc
            except httpx.TransportError as exc:
                if write:
                    raise CommitStateUnknownError(
                        f"{what}: the request was sent to {self.uri} but no answer came "
                        f"({type(exc).__name__}: {exc}); it may or may not have been applied"
                    ) from exc
                if attempt < self.max_retries:
                    self._backoff(attempt, what, exc)
                    attempt += 1
                    continue
                raise TransientCatalogError(
                    f"cannot {what}: no answer from Nessie at {self.uri} "
                    f"({type(exc).__name__}: {exc})"
                ) from exc
            status = response.status_code
            if 200 <= status < 300:
                if not response.content:
                    return {}
                try:
                    data = response.json()
                except ValueError as exc:
                    raise CatalogError(
                        f"cannot {what}: {self.uri} answered HTTP {status} with a body "
                        "that is not JSON (is this a Nessie API v2 endpoint?)"
                    ) from exc
                return data if isinstance(data, dict) else {"value": data}
            rejected = _rejected(response)
            if status >= 500 or status == 429:
                if write:
                    raise CommitStateUnknownError(
                        f"{what}: Nessie at {self.uri} answered HTTP {status} after receiving "
                        f"the request ({rejected.message}); it may or may not have been applied"
                    )
                if attempt < self.max_retries:
                    self._backoff(attempt, what, f"HTTP {status}")
                    attempt += 1
                    continue
                raise TransientCatalogError(
                    f"cannot {what}: Nessie at {self.uri} answered HTTP {status} "
                    f"({rejected.message}); tried {attempt + 1} time(s)"
                )
            if status == 401:
                raise CatalogError(
                    f"cannot {what}: Nessie at {self.uri} requires authentication "
                    "(missing or rejected bearer token)"
                )
            if status == 403:
                raise CatalogError(f"cannot {what}: permission denied ({rejected.message})")
            raise rejected

    def _backoff(self, attempt: int, what: str, cause: object) -> None:
        delay = random.uniform(0, min(_RETRY_CAP_SECONDS, self.retry_backoff * 2**attempt))
        log.info("retrying %s in %.2fs after %s", what, delay, cause)
        if delay > 0:
            time.sleep(delay)

    # -- specs, keys and paths ----------------------------------------------------------

    def _spec(self, ref: RefLike | None) -> RefSpec:
        if ref is None:
            return RefSpec(self.default_branch)
        if isinstance(ref, Reference):
            return RefSpec(ref.name, ref.hash)
        if isinstance(ref, str):
            return RefSpec.parse(ref)
        return ref

    def _key_text(self, key: ContentKey) -> str:
        return key_to_path(key, escaped=self._escaped_keys)

    # -- references ---------------------------------------------------------------------

    def list_references(self) -> list[Reference]:
        """Every branch and tag, sorted by name."""
        out: list[Reference] = []
        token: str | None = None
        while True:
            params: dict[str, str | int] = {"page-token": token} if token else {}
            try:
                data = self._call("GET", "trees", params=params, what="list references")
            except _RefusedError as rej:
                _raise_default(rej)
            for item in data.get("references") or []:
                reference = _reference_or_none(item)
                if reference is not None:
                    out.append(reference)
            token = data.get("token")
            if not data.get("hasMore") or not token:
                break
        out.sort(key=lambda r: r.name)
        return out

    def get_reference(self, name: str) -> Reference:
        """The branch or tag called ``name``."""
        validate_ref_name(name)
        try:
            data = self._call(
                "GET", "trees/" + ref_path(RefSpec(name)), what=f"read reference '{name}'"
            )
        except _RefusedError as rej:
            if rej.code == "REFERENCE_NOT_FOUND" or rej.status == 404:
                raise ReferenceNotFoundError(name) from None
            _raise_default(rej)
        return _reference(data["reference"])

    def create_reference(
        self, name: str, type: ReferenceType, from_ref: RefLike | None = None
    ) -> Reference:
        """Create a branch or tag at ``from_ref`` (default: the default branch's head)."""
        validate_ref_name(name)
        kind = ReferenceType(type)
        source = self.resolve(from_ref)
        try:
            data = self._call(
                "POST",
                "trees",
                params={"name": name, "type": kind.value},
                json=_target_json(source),
                write=True,
                what=f"create {kind.value.lower()} '{name}'",
            )
        except _RefusedError as rej:
            if rej.code == "REFERENCE_ALREADY_EXISTS":
                raise ReferenceAlreadyExistsError(name) from None
            _raise_default(rej, ref=str(source))
        created = data["reference"]
        return Reference.of(created.get("type") or kind, name, created["hash"])

    def assign_reference(
        self, name: str, expected_hash: str, to: RefLike, type: ReferenceType | None = None
    ) -> Reference:
        """Point ``name`` at ``to`` if it is still at ``expected_hash``."""
        validate_ref_name(name)
        expected = validate_hash(expected_hash)
        target = self.resolve(to)
        params: dict[str, str | int] = {"type": ReferenceType(type).value} if type else {}
        try:
            data = self._call(
                "PUT",
                "trees/" + ref_path(RefSpec(name, expected)),
                params=params,
                json=_target_json(target),
                write=True,
                what=f"assign '{name}' to {target}",
            )
        except _RefusedError as rej:
            self._raise_reference_change(rej, name, expected, type)
        assigned = data["reference"]
        return Reference.of(assigned.get("type") or ReferenceType.BRANCH, name, assigned["hash"])

    def delete_reference(
        self, name: str, expected_hash: str | None = None, type: ReferenceType | None = None
    ) -> None:
        """Delete ``name`` (if still at ``expected_hash`` when given). The default branch stays."""
        validate_ref_name(name)
        if name == self.default_branch:
            raise InvalidInputError(f"the default branch '{name}' cannot be deleted")
        if expected_hash is None:
            current = self.get_reference(name)
            check_reference_type(name, current.type, type)
            expected = current.hash
        else:
            expected = validate_hash(expected_hash)
        params: dict[str, str | int] = {"type": ReferenceType(type).value} if type else {}
        try:
            self._call(
                "DELETE",
                "trees/" + ref_path(RefSpec(name, expected)),
                params=params,
                write=True,
                what=f"delete '{name}'",
            )
        except _RefusedError as rej:
            self._raise_reference_change(rej, name, expected, type)

    def _raise_reference_change(
        self, rej: _RefusedError, name: str, expected: str, type: ReferenceType | None
    ) -> NoReturn:
        """Map a refused assign/delete; reads the reference to name the cause."""
        if rej.code == "REFERENCE_CONFLICT":
            current = self.get_reference(name)
            raise ReferenceConflictError(name, expected, current.hash) from None
        if rej.code == "REFERENCE_NOT_FOUND" or rej.status == 404:
            self.get_reference(name)  # raises if the reference is the missing part
            raise ReferenceNotFoundError(
                name, f"'{name}': {rej.message or 'commit not found'}"
            ) from None
        if rej.code == "BAD_REQUEST" and type is not None:
            current = self.get_reference(name)
            check_reference_type(name, current.type, type)
        _raise_default(rej, ref=name)

    # -- reference history and repository config ---------------------------------------

    def reference_history(
        self, name: str, limit: int | None = None, *, scan_commits: int | None = None
    ) -> ReferenceHistory:
        """``GET trees/{name}/recent-changes``: the heads the server recorded.

        Nessie keeps the last ``ref-previous-head-count`` heads (default 20) that are
        younger than ``ref-previous-head-time-span-seconds`` (default 5 minutes, pruned
        on the next change); ``limit`` is applied here.
        """
        validate_ref_name(name)
        if limit is not None and limit < 0:
            raise InvalidInputError("the history limit must not be negative")
        params: dict[str, str | int] = {}
        if scan_commits is not None:
            params["scan-commits"] = scan_commits
        try:
            data = self._call(
                "GET",
                "trees/" + ref_path(RefSpec(name)) + "/recent-changes",
                params=params,
                what=f"read the history of reference '{name}'",
            )
        except _RefusedError as rej:
            if rej.code == "REFERENCE_NOT_FOUND" or rej.status == 404:
                raise ReferenceNotFoundError(name) from None
            _raise_default(rej, ref=name)
        previous = tuple(_history_state(p) for p in data.get("previous") or [])
        return ReferenceHistory(
            _reference(data["reference"]),
            _history_state(data["current"]),
            previous[:limit] if limit is not None else previous,
            _consistency(data.get("commitLogConsistency")),
        )

    def repository_config(self, types: Iterable[str]) -> list[RepositoryConfig]:
        """``GET config/repository?type=…``: the config objects of ``types`` that exist."""
        wanted = sorted(set(types))
        if not wanted:
            return []
        query = "&".join("type=" + quote(t, safe="") for t in wanted)
        try:
            data = self._call(
                "GET", "config/repository?" + query, what="read the repository config"
            )
        except _RefusedError as rej:
            _raise_default(rej)
        return [RepositoryConfig.from_json(c) for c in data.get("configs") or []]

    def update_repository_config(self, config: RepositoryConfig) -> RepositoryConfig | None:
        """``POST config/repository``: create or replace; returns the previous object."""
        try:
            data = self._call(
                "POST",
                "config/repository",
                json={"config": config.to_json()},
                write=True,
                what=f"update the repository config '{config.type}'",
            )
        except _RefusedError as rej:
            _raise_default(rej)
        previous = data.get("previous")
        return RepositoryConfig.from_json(previous) if isinstance(previous, Mapping) else None

    def resolve(self, ref: RefLike | None = None) -> ResolvedRef:
        """Resolve a spec (``name``, ``name@hash``, ``@hash``, ``~N``, ``^N``, ``*time``)."""
        spec = self._spec(ref)
        reference: Reference | None = None
        if spec.name is not None:
            reference = self.get_reference(spec.name)
            if spec.hash is None and not spec.relative:
                return ResolvedRef(reference, reference.hash)
        resolved = self._resolve_hash(spec)
        if resolved == self._no_ancestor and spec.relative:
            self._check_not_beyond_root(spec)
        return ResolvedRef(reference, resolved)

    def _check_not_beyond_root(self, spec: RefSpec) -> None:
        """Nessie resolves ``~N`` past the first commit and a missing ``^N`` parent to the
        beginning; the contract says such a commit does not exist."""
        op, arg = spec.relative[-1]
        if op == "*":
            return
        assert isinstance(arg, int)
        before = RefSpec(spec.name, spec.hash, spec.relative[:-1])
        if op == "~":
            if arg == 0:
                return
            shorter = RefSpec(
                spec.name, spec.hash, before.relative + ((("~", arg - 1),) if arg > 1 else ())
            )
            exists = self._resolve_hash(shorter) != self._no_ancestor
        else:
            start = self._resolve_hash(before)
            parents = () if start == self._no_ancestor else self.commit_meta(start).parent_hashes
            exists = arg == 0 or len(parents) >= arg
        if not exists:
            raise ReferenceNotFoundError(
                str(spec), f"'{spec}' names a commit before the first one or a missing parent"
            )

    def _resolve_hash(self, spec: RefSpec) -> str:
        """The commit ``spec`` points at: the newest entry of its log (none: the beginning)."""
        try:
            data = self._call(
                "GET",
                f"trees/{ref_path(spec)}/history",
                params={"max-records": 1},
                what=f"resolve '{spec}'",
            )
        except _RefusedError as rej:
            if rej.code == "REFERENCE_NOT_FOUND" or rej.status == 404:
                raise ReferenceNotFoundError(str(spec), f"'{spec}': {rej.message}") from None
            if rej.status == 400 and any(op == "^" for op, _ in spec.relative):
                raise ReferenceNotFoundError(
                    str(spec), f"'{spec}': no such parent ({rej.message})"
                ) from None
            _raise_default(rej, ref=str(spec))
        entries = data.get("logEntries") or []
        if not entries:
            return self._no_ancestor
        return str(entries[0]["commitMeta"]["hash"])

    # -- contents -----------------------------------------------------------------------

    def get_contents(
        self, ref: RefLike | None, keys: Iterable[ContentKey]
    ) -> dict[ContentKey, Content]:
        """Contents of ``keys`` at ``ref``; absent keys are left out."""
        wanted = list(dict.fromkeys(keys))
        spec = self._spec(ref)
        if not wanted:
            self.resolve(spec)
            return {}
        out: dict[ContentKey, Content] = {}
        for start in range(0, len(wanted), _CONTENTS_CHUNK):
            chunk = wanted[start : start + _CONTENTS_CHUNK]
            try:
                data = self._call(
                    "POST",
                    f"trees/{ref_path(spec)}/contents",
                    json={"requestedKeys": [k.to_json() for k in chunk]},
                    what=f"read contents at '{spec}'",
                )
            except _RefusedError as rej:
                _raise_default(rej, ref=str(spec))
            for item in data.get("contents") or []:
                out[_key(item["key"])] = content_from_json(item["content"])
            spec = _pinned(spec, data, "effectiveReference")
        return out

    def get_content(self, ref: RefLike | None, key: ContentKey) -> Content:
        """Content of one key at ``ref`` (raises ContentNotFoundError)."""
        spec = self._spec(ref)
        path = f"trees/{ref_path(spec)}/contents/{quote(self._key_text(key), safe='')}"
        try:
            data = self._call("GET", path, what=f"read '{key}' at '{spec}'")
        except _RefusedError as rej:
            if rej.code == "CONTENT_NOT_FOUND":
                raise ContentNotFoundError(str(key), str(ref or self.default_branch)) from None
            _raise_default(rej, ref=str(spec))
        return content_from_json(data["content"])

    def entries(
        self,
        ref: RefLike | None = None,
        *,
        prefix: ContentKey | None = None,
        with_content: bool = False,
    ) -> list[Entry]:
        """Every key at ``ref`` (inside namespace ``prefix`` if given), sorted."""
        spec = self._spec(ref)
        params: dict[str, str | int] = {}
        if prefix is not None:
            params["prefix-key"] = self._key_text(prefix)
        if with_content:
            params["content"] = "true"
        out: list[Entry] = []

        def path(previous: Mapping[str, Any] | None) -> str:
            return f"trees/{ref_path(_pinned(spec, previous, 'effectiveReference'))}/entries"

        for data in self._pages(f"entries at '{spec}'", path, params, str(spec)):
            for item in data.get("entries") or []:
                key = _key(item["name"])
                if prefix is not None and not prefix.is_prefix_of(key):
                    continue
                try:
                    kind = ContentType(item.get("type") or "")
                except ValueError:
                    log.warning(
                        "skipping '%s' at '%s': unsupported type %r", key, spec, item.get("type")
                    )
                    continue
                content = item.get("content")
                out.append(
                    Entry(
                        key,
                        kind,
                        item.get("contentId"),
                        content_from_json(content) if with_content and content else None,
                    )
                )
        out.sort(key=lambda e: e.key)
        return out

    def _pages(
        self,
        what: str,
        path: Callable[[Mapping[str, Any] | None], str],
        params: Mapping[str, str | int],
        ref: str,
    ) -> Iterator[dict[str, Any]]:
        """Pages of a paged GET; ``path`` gets the previous page (to pin the commit)."""
        previous: dict[str, Any] | None = None
        while True:
            page_params = dict(params)
            if previous is not None:
                page_params["page-token"] = str(previous["token"])
            try:
                data = self._call("GET", path(previous), params=page_params, what="read " + what)
            except _RefusedError as rej:
                if rej.code == "REFERENCE_NOT_FOUND" or rej.status == 404:
                    raise ReferenceNotFoundError(ref, f"'{ref}': {rej.message}") from None
                _raise_default(rej, ref=ref)
            yield data
            if not data.get("hasMore") or not data.get("token"):
                return
            previous = data

    # -- history ------------------------------------------------------------------------

    def commit(
        self,
        branch: str,
        operations: Sequence[Operation],
        meta: CommitMeta | str = "",
        *,
        expected_hash: str | None = None,
    ) -> CommitResult:
        """Commit ``operations`` atomically on ``branch``.

        Without ``expected_hash`` the branch head is read first and sent as the expected
        hash (Nessie requires one): conflicts are then detected from that head only.
        """
        validate_ref_name(branch)
        meta = CommitMeta(message=meta) if isinstance(meta, str) else meta
        ops = list(operations)
        validate_operations(ops)
        if expected_hash is None:
            current = self.get_reference(branch)
            if current.type is not ReferenceType.BRANCH:
                raise ReadOnlyReferenceError(branch)
            expected = current.hash
        else:
            expected = validate_hash(expected_hash)
        body = {"commitMeta": _meta_json(meta), "operations": [operation_to_json(o) for o in ops]}
        try:
            data = self._call(
                "POST",
                f"trees/{ref_path(RefSpec(branch, expected))}/history/commit",
                json=body,
                write=True,
                what=f"commit to '{branch}'",
            )
        except _RefusedError as rej:
            if rej.code == "REFERENCE_CONFLICT":
                raise CommitConflictError(rej.conflicts or [_unknown_conflict(rej)]) from None
            if rej.code == "REFERENCE_NOT_FOUND" or rej.status == 404:
                self._raise_not_found_target(rej, branch, expected, merge=False)
            if rej.code == "BAD_REQUEST" or rej.status == 400:
                self._explain_refused_commit(rej, branch, ops)
            _raise_default(rej, ref=branch)
        target = data["targetBranch"]
        added = {_key(a["key"]): str(a["contentId"]) for a in data.get("addedContents") or []}
        return CommitResult(Branch(branch, target["hash"]), added)

    def _raise_not_found_target(
        self, rej: _RefusedError, branch: str, expected: str, *, merge: bool
    ) -> NoReturn:
        """A write named ``branch@expected`` and Nessie found no such thing: say which."""
        current = self.get_reference(branch)  # raises ReferenceNotFoundError for the branch
        if not self._commit_exists(expected):
            raise ReferenceNotFoundError("@" + expected, f"Commit '{expected}' not found")
        if merge:
            raise ReferenceConflictError(branch, expected, current.hash) from None
        raise CommitConflictError(
            [
                Conflict(
                    None,
                    ConflictType.UNEXPECTED_HASH,
                    f"expected hash {expected[:12]} is not in the history of '{branch}' "
                    f"({rej.message})",
                )
            ]
        ) from None

    def _commit_exists(self, commit: str) -> bool:
        try:
            self._resolve_hash(RefSpec(None, commit))
        except ReferenceNotFoundError:
            return False
        return True

    def _explain_refused_commit(
        self, rej: _RefusedError, branch: str, ops: Sequence[Operation]
    ) -> NoReturn:
        """Name the contract rule behind a 400 refusal of a commit (nothing was committed).

        Reads the branch head once: a tag is read-only; an update without the existing
        content id is ``KEY_EXISTS``, with another id ``CONTENT_ID_DIFFERS``; new content
        carrying an id is invalid input. Anything else keeps Nessie's own message.
        """
        current = self.get_reference(branch)
        if current.type is not ReferenceType.BRANCH:
            raise ReadOnlyReferenceError(branch) from None
        existing = self.get_contents(current, [op.key for op in ops])
        deleted_ids = {
            existing[op.key].id for op in ops if isinstance(op, Delete) and op.key in existing
        }
        conflicts: list[Conflict] = []
        for op in ops:
            if not isinstance(op, Put):
                continue
            found = existing.get(op.key)
            if found is None:
                if op.content.id is not None and op.content.id not in deleted_ids:
                    raise InvalidInputError(
                        f"new content at '{op.key}' must not carry a content id "
                        "(only a rename, deleting the old key in the same commit, keeps an id)"
                    ) from None
            elif op.content.id is None:
                conflicts.append(Conflict(op.key, ConflictType.KEY_EXISTS, "key already exists"))
            elif op.content.id != found.id or op.content.type is not found.type:
                conflicts.append(
                    Conflict(
                        op.key,
                        ConflictType.CONTENT_ID_DIFFERS,
                        f"expected content id {op.content.id}, found {found.id}",
                    )
                )
        if conflicts:
            raise CommitConflictError(conflicts) from None
        raise InvalidInputError(f"Nessie refused the commit to '{branch}': {rej.message}") from None

    def log(
        self,
        ref: RefLike | None = None,
        *,
        limit: int = 100,
        page_token: str | None = None,
        fetch_operations: bool = False,
    ) -> LogPage:
        """History of ``ref`` along first parents, newest first, one page at a time.

        The page token is the hash of the first commit of the next page, as in the SQL
        store; Nessie's own tokens are only used inside one call.
        """
        if limit < 1:
            raise InvalidInputError("log limit must be at least 1")
        spec = RefSpec(None, validate_hash(page_token)) if page_token else self._spec(ref)
        params: dict[str, str | int] = {"max-records": limit + 1}
        if fetch_operations:
            params["fetch"] = "ALL"
        raw: list[dict[str, Any]] = []
        path = f"trees/{ref_path(spec)}/history"
        for data in self._pages(f"the log of '{spec}'", lambda _: path, params, str(spec)):
            raw.extend(data.get("logEntries") or [])
            if len(raw) > limit:
                break
        entries = tuple(_log_entry(e, fetch_operations) for e in raw[:limit])
        next_token = str(raw[limit]["commitMeta"]["hash"]) if len(raw) > limit else None
        return LogPage(entries, next_token)

    def commit_meta(self, hash: str) -> CommitMeta:
        """Metadata of one commit."""
        h = validate_hash(hash)
        try:
            data = self._call(
                "GET",
                f"trees/@{h}/history",
                params={"max-records": 1},
                what=f"read commit {h[:12]}",
            )
        except _RefusedError as rej:
            if rej.code == "REFERENCE_NOT_FOUND" or rej.status == 404:
                raise ReferenceNotFoundError("@" + h, f"Commit '{h}' not found") from None
            _raise_default(rej)
        entries = data.get("logEntries") or []
        if not entries:
            return CommitMeta(message="", hash=self._no_ancestor)
        return _commit_meta(entries[0]["commitMeta"])

    def diff(
        self, from_ref: RefLike, to_ref: RefLike, *, prefix: ContentKey | None = None
    ) -> list[DiffEntry]:
        """Keys whose content differs from ``from_ref`` to ``to_ref``, sorted."""
        a = self._spec(from_ref)
        b = self._spec(to_ref)
        params: dict[str, str | int] = {}
        if prefix is not None:
            params["prefix-key"] = self._key_text(prefix)
        out: list[DiffEntry] = []

        def path(previous: Mapping[str, Any] | None) -> str:
            pinned_a = _pinned(a, previous, "effectiveFromReference")
            pinned_b = _pinned(b, previous, "effectiveToReference")
            return f"trees/{ref_path(pinned_a)}/diff/{ref_path(pinned_b)}"

        for data in self._pages(f"the diff '{a}'..'{b}'", path, params, f"{a}' or '{b}"):
            for item in data.get("diffs") or []:
                key = _key(item["key"])
                if prefix is not None and not prefix.is_prefix_of(key):
                    continue
                before, after = item.get("from"), item.get("to")
                out.append(
                    DiffEntry(
                        key,
                        content_from_json(before) if before else None,
                        content_from_json(after) if after else None,
                    )
                )
        out.sort(key=lambda d: d.key)
        return out

    # -- merge and transplant -------------------------------------------------------------

    def _target_head(self, target: str, expected: str | None) -> str:
        if expected is not None:
            return validate_hash(expected)
        current = self.get_reference(target)
        if current.type is not ReferenceType.BRANCH:
            raise ReadOnlyReferenceError(target)
        return current.hash

    def merge(
        self,
        source: RefLike,
        into: str | None = None,
        *,
        expected_target_hash: str | None = None,
        default_behavior: MergeBehavior = MergeBehavior.NORMAL,
        key_behaviors: Mapping[ContentKey, MergeBehavior] | None = None,
        dry_run: bool = False,
        meta: CommitMeta | str | None = None,
        raise_on_conflict: bool = True,
        resolved: Mapping[ContentKey, ResolvedContent] | None = None,
    ) -> MergeResult:
        """Merge ``source`` into branch ``into`` (default branch) as one commit.

        ``resolved`` is sent as Nessie's ``expectedTargetContent``/``resolvedContent``.
        """
        body = {**_merge_modes(default_behavior, key_behaviors, resolved), **_flags(dry_run)}
        result = self._merge(source, into, expected_target_hash, body, dry_run, meta)[1]
        return self._finish(result, "merge", dry_run, raise_on_conflict)

    def merge_by_content(
        self,
        source: RefLike,
        into: str,
        *,
        expected_target_hash: str | None = None,
        default_behavior: MergeBehavior = MergeBehavior.NORMAL,
        key_behaviors: Mapping[ContentKey, MergeBehavior] | None = None,
        dry_run: bool = False,
        meta: CommitMeta | str | None = None,
        raise_on_conflict: bool = True,
    ) -> ContentMergeResult | None:
        """One merge request with ``"contentMerge": true`` when the server offers it.

        ``None`` when it does not (:attr:`offers_content_merge`; the real Nessie server
        never does): the caller merges by content on the client. The server's per-table
        report comes back in each detail's ``contentMerge`` field.
        """
        if not self.offers_content_merge:
            return None
        body = {
            **_merge_modes(default_behavior, key_behaviors),
            **_flags(dry_run),
            "contentMerge": True,
        }
        data, result = self._merge(source, into, expected_target_hash, body, dry_run, meta)
        tables = tuple(_table_outcomes(data.get("details") or []))
        return ContentMergeResult(self._finish(result, "merge", dry_run, raise_on_conflict), tables)

    def _merge(
        self,
        source: RefLike,
        into: str | None,
        expected_target_hash: str | None,
        body: Mapping[str, Any],
        dry_run: bool,
        meta: CommitMeta | str | None,
    ) -> tuple[dict[str, Any], MergeResult]:
        """Send one merge request (``body``: modes and flags); its JSON and its result."""
        target = validate_ref_name(into or self.default_branch)
        src = self.resolve(source)
        expected = self._target_head(target, expected_target_hash)
        request: dict[str, Any] = {
            "fromRefName": src.reference.name if src.reference is not None else DETACHED,
            "fromHash": src.hash,
            **body,
        }
        if meta is not None:
            request["commitMeta"] = _meta_json(
                CommitMeta(message=meta) if isinstance(meta, str) else meta
            )
        data = self._merge_call("merge", target, expected, request, dry_run)
        return data, _merge_result(data, target, src.hash, expected)

    def transplant(
        self,
        hashes: Sequence[str],
        into: str | None = None,
        *,
        expected_target_hash: str | None = None,
        default_behavior: MergeBehavior = MergeBehavior.NORMAL,
        key_behaviors: Mapping[ContentKey, MergeBehavior] | None = None,
        dry_run: bool = False,
        raise_on_conflict: bool = True,
    ) -> MergeResult:
        """Cherry-pick commits (oldest first) onto branch ``into``, one commit each.

        Nessie needs the commits to be a contiguous run of history (each the parent of
        the next); other sequences are refused as invalid input.
        """
        target = validate_ref_name(into or self.default_branch)
        if not hashes:
            raise InvalidInputError("transplant needs at least one commit hash")
        picks = [validate_hash(h) for h in hashes]
        expected = self._target_head(target, expected_target_hash)
        body: dict[str, Any] = {
            "fromRefName": DETACHED,
            "hashesToTransplant": picks,
            **_merge_modes(default_behavior, key_behaviors),
            **_flags(dry_run),
        }
        data = self._merge_call("transplant", target, expected, body, dry_run)
        result = _merge_result(data, target, picks[-1], expected, transplant=True)
        if result.was_applied and result.resultant_target_hash:
            added = self._first_parent_run(
                result.resultant_target_hash, result.effective_target_hash, len(picks)
            )
            result = _replace(result, added_commits=added)
        return self._finish(result, "transplant", dry_run, raise_on_conflict)

    def _merge_call(
        self, action: str, target: str, expected: str, body: Mapping[str, Any], dry_run: bool
    ) -> dict[str, Any]:
        try:
            return self._call(
                "POST",
                f"trees/{ref_path(RefSpec(target, expected))}/history/{action}",
                json=body,
                write=not dry_run,
                what=f"{action} into '{target}'" + (" (dry run)" if dry_run else ""),
            )
        except _RefusedError as rej:
            if rej.code == "REFERENCE_CONFLICT":
                conflicts = rej.conflicts
                if conflicts and all(c.type is ConflictType.UNEXPECTED_HASH for c in conflicts):
                    current = self.get_reference(target)
                    raise ReferenceConflictError(target, expected, current.hash) from None
                # a server that ignores returnConflictAsResult: same meaning, as an error
                raise MergeConflictError(conflicts or [_unknown_conflict(rej)], action) from None
            if rej.code == "REFERENCE_NOT_FOUND" or rej.status == 404:
                self.get_reference(target)
                self._raise_not_found_target(rej, target, expected, merge=True)
            if rej.code == "BAD_REQUEST" or rej.status == 400:
                current = self.get_reference(target)
                if current.type is not ReferenceType.BRANCH:
                    raise ReadOnlyReferenceError(target) from None
            _raise_default(rej, ref=target)

    def _finish(
        self, result: MergeResult, action: str, dry_run: bool, raise_on_conflict: bool
    ) -> MergeResult:
        if dry_run and result.was_applied:
            raise CatalogError(
                f"Nessie at {self.uri} applied a {action} into '{result.target_branch}' that "
                f"was requested as a dry run (it ignored the dry-run flag): the branch is now at "
                f"{result.resultant_target_hash}"
            )
        if not result.was_successful and raise_on_conflict:
            conflicts = result.conflicts or [
                Conflict(None, ConflictType.UNKNOWN, f"the {action} was not successful")
            ]
            raise MergeConflictError(conflicts, action)
        return result

    def _first_parent_run(self, head: str, base: str, most: int) -> tuple[str, ...]:
        """Commits after ``base`` up to ``head`` along first parents, oldest first."""
        page = self.log(RefSpec(None, head), limit=most + 1)
        run: list[str] = []
        for entry in page.entries:
            if entry.hash == base:
                break
            run.append(entry.hash)
        return tuple(reversed(run))


# -- encoding helpers ------------------------------------------------------------------------


def key_to_path(key: ContentKey, *, escaped: bool = True) -> str:
    """A content key in Nessie's URL form.

    ``escaped`` (spec 2.2.0+): elements joined by ``.``; if any element holds ``.``,
    ``/``, ``\\`` or ``%``, the whole key is written with a leading ``.`` and ``*``
    escapes (``*.``, ``**``, ``*{``, ``*}``, ``*[``). Otherwise the legacy form: dots
    inside elements become ``\\u001d``.
    """
    if not escaped:
        return key.to_path_string()
    if not any(ch in element for element in key.elements for ch in "./\\%"):
        return ".".join(key.elements)
    return "".join(
        "."
        + element.replace("*", "**")
        .replace(".", "*.")
        .replace("/", "*{")
        .replace("\\", "*}")
        .replace("%", "*[")
        for element in key.elements
    )


def ref_path(spec: RefSpec) -> str:
    """A reference spec as one URL path element of Nessie's v2 API (already quoted).

    A name containing ``/`` always takes the ``@`` separator (``feature/x@``), as
    Nessie's path matching requires; timestamps are written as UTC ISO instants.
    """
    text = spec.name or ""
    if spec.hash or (spec.name is not None and "/" in spec.name):
        text += "@" + (spec.hash or "")
    for op, arg in spec.relative:
        if isinstance(arg, datetime):
            text += "*" + arg.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        else:
            text += op + str(arg)
    return quote(text, safe="/@~*:")


def _normalize_uri(uri: str) -> str:
    parts = urlsplit(str(uri).strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInputError(f"invalid Nessie URI {uri!r}: use http(s)://host:port/api/v2")
    path = parts.path.rstrip("/")
    if path.endswith("/api/v1"):
        raise InvalidInputError(
            f"invalid Nessie URI {uri!r}: Lakehouse speaks Nessie API v2 (…/api/v2)"
        )
    if not path:
        path = "/api/v2"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _rejected(response: httpx.Response) -> _RefusedError:
    body: Mapping[str, Any] = {}
    try:
        parsed = response.json() if response.content else {}
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        pass
    message = str(body.get("message") or response.reason_phrase or "")
    code = str(body.get("errorCode") or "")
    return _RefusedError(response.status_code, code, message, body)


def _raise_default(rej: _RefusedError, ref: str | None = None) -> NoReturn:
    """The mapping of a refusal when the endpoint adds no meaning of its own."""
    message = rej.message or f"HTTP {rej.status}"
    if rej.code == "REFERENCE_NOT_FOUND":
        raise ReferenceNotFoundError(ref or "?", message) from None
    if rej.code == "CONTENT_NOT_FOUND":
        raise NotFoundError(message) from None
    if rej.code == "REFERENCE_ALREADY_EXISTS":
        raise ReferenceAlreadyExistsError(ref or "?") from None
    if rej.code == "REFERENCE_CONFLICT":
        raise CommitConflictError(rej.conflicts or [_unknown_conflict(rej)]) from None
    if rej.status == 404:
        raise NotFoundError(f"not found: {message}") from None
    if rej.status in (400, 415) or rej.code == "BAD_REQUEST":
        raise InvalidInputError(f"Nessie refused the request: {message}") from None
    raise CatalogError(f"Nessie answered HTTP {rej.status} {rej.code}: {message}") from None


def _unknown_conflict(rej: _RefusedError) -> Conflict:
    return Conflict(None, ConflictType.UNKNOWN, rej.message or f"HTTP {rej.status}")


def _parse_conflicts(items: Iterable[Mapping[str, Any]]) -> list[Conflict]:
    real: list[Conflict] = []
    placeholders: list[Conflict] = []
    for item in items:
        raw_type = str(item.get("conflictType") or "UNKNOWN")
        message = str(item.get("message") or "")
        key = _key(item["key"]) if item.get("key") else None
        try:
            kind = ConflictType(raw_type)
        except ValueError:
            kind = ConflictType.UNKNOWN
            message = f"{raw_type}: {message}"
        conflict = Conflict(key, kind, message)
        if (raw_type, str(item.get("message") or "")) == _PLACEHOLDER_CONFLICT:
            placeholders.append(conflict)
        else:
            real.append(conflict)
    return real or placeholders


def _key(data: Mapping[str, Any]) -> ContentKey:
    return ContentKey(tuple(str(e) for e in data["elements"]))


def _reference(data: Mapping[str, Any]) -> Reference:
    return Reference.of(str(data.get("type") or "BRANCH"), str(data["name"]), str(data["hash"]))


def _reference_or_none(data: Mapping[str, Any]) -> Reference | None:
    try:
        return _reference(data)
    except (InvalidInputError, KeyError, ValueError):
        log.warning("skipping reference %r: not representable in Lakehouse", data.get("name"))
        return None


def _target_json(target: ResolvedRef) -> dict[str, Any]:
    """The body Nessie takes for 'point at this commit' (create and assign)."""
    if target.reference is None:
        return {"type": DETACHED, "hash": target.hash}
    return {
        "type": target.reference.type.value,
        "name": target.reference.name,
        "hash": target.hash,
    }


def _pinned(spec: RefSpec, page: Mapping[str, Any] | None, field: str) -> RefSpec:
    """``spec`` fixed to the commit the server resolved it to on ``page`` (for the next)."""
    effective = page.get(field) if page is not None else None
    if not isinstance(effective, Mapping) or not effective.get("hash"):
        return spec
    return RefSpec(None, validate_hash(str(effective["hash"])))


def _meta_json(meta: CommitMeta) -> dict[str, Any]:
    """Commit metadata as a client may send it (no committer, commit time or hashes)."""
    out: dict[str, Any] = {"message": meta.message, "properties": dict(meta.properties)}
    if meta.author:
        out["authors"] = [meta.author]
    if meta.signed_off_by:
        out["allSignedOffBy"] = list(meta.signed_off_by)
    if meta.authored_time is not None:
        out["authorTime"] = meta.authored_time.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return out


def _merge_modes(
    default: MergeBehavior,
    keys: Mapping[ContentKey, MergeBehavior] | None,
    resolved: Mapping[ContentKey, ResolvedContent] | None = None,
) -> dict[str, Any]:
    modes: dict[ContentKey, dict[str, Any]] = {
        key: {"key": key.to_json(), "mergeBehavior": MergeBehavior(b).value}
        for key, b in (keys or {}).items()
    }
    for key, resolution in (resolved or {}).items():
        modes[key] = {
            "key": key.to_json(),
            "mergeBehavior": MergeBehavior.NORMAL.value,
            "expectedTargetContent": resolution.expected_target.to_json(),
            "resolvedContent": resolution.content.to_json(),
        }
    return {
        "defaultKeyMergeMode": MergeBehavior(default).value,
        "keyMergeModes": [modes[key] for key in sorted(modes)],
    }


def _flags(dry_run: bool) -> dict[str, Any]:
    """Merge/transplant flags under the documented and the actual Jackson names."""
    return {
        "dryRun": dry_run,
        "isDryRun": dry_run,
        "returnConflictAsResult": True,
        "isReturnConflictAsResult": True,
    }


def _merge_result(
    data: Mapping[str, Any],
    target: str,
    source_hash: str,
    expected: str,
    *,
    transplant: bool = False,
) -> MergeResult:
    details = []
    for item in data.get("details") or []:
        conflict = _parse_conflicts([item["conflict"]]) if item.get("conflict") else []
        try:
            behavior = MergeBehavior(str(item.get("mergeBehavior") or "NORMAL"))
        except ValueError:
            behavior = MergeBehavior.NORMAL
        details.append(
            KeyMergeDetail(_key(item["key"]), behavior, conflict[0] if conflict else None)
        )
    applied = bool(data.get("wasApplied"))
    resultant = data.get("resultantTargetHash")
    return MergeResult(
        was_applied=applied,
        was_successful=bool(data.get("wasSuccessful", True)),
        target_branch=str(data.get("targetBranch") or target),
        source_hash=source_hash,
        effective_target_hash=str(data.get("effectiveTargetHash") or expected),
        resultant_target_hash=str(resultant) if resultant else None,
        common_ancestor=data.get("commonAncestor"),
        details=tuple(details),
        added_commits=(str(resultant),) if applied and resultant and not transplant else (),
    )


def _table_outcomes(details: Iterable[Mapping[str, Any]]) -> Iterator[TableOutcome]:
    """The ``contentMerge`` reports of a merge response's details (those that carry one)."""
    for item in details:
        report = item.get("contentMerge")
        if isinstance(report, Mapping) and item.get("key"):
            yield TableOutcome(
                _key(item["key"]),
                bool(report.get("merged")),
                str(report.get("description") or ""),
            )


def _replace(result: MergeResult, **changes: Any) -> MergeResult:
    from dataclasses import replace

    return replace(result, **changes)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    head, sep, rest = text.partition(".")
    if sep:  # Nessie sends nanoseconds; Python keeps microseconds
        digits = len(rest) - len(rest.lstrip("0123456789"))
        rest = rest[:digits][:6] + rest[digits:]
        text = head + "." + rest
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _commit_meta(data: Mapping[str, Any]) -> CommitMeta:
    authors = [str(a) for a in data.get("authors") or [] if a]
    author = authors[0] if authors else (str(data["author"]) if data.get("author") else None)
    all_properties = data.get("allProperties")
    if isinstance(all_properties, Mapping):
        properties = {str(k): str(v[0]) for k, v in all_properties.items() if v}
    else:
        properties = {str(k): str(v) for k, v in (data.get("properties") or {}).items()}
    return CommitMeta(
        message=str(data.get("message") or ""),
        author=author,
        authored_time=_parse_time(data.get("authorTime")),
        committer=str(data["committer"]) if data.get("committer") else None,
        commit_time=_parse_time(data.get("commitTime")),
        properties=properties,
        hash=str(data["hash"]) if data.get("hash") else None,
        parent_hashes=tuple(str(p) for p in data.get("parentCommitHashes") or []),
        signed_off_by=_signed_off_by(data),
    )


def _signed_off_by(data: Mapping[str, Any]) -> tuple[str, ...]:
    signers = data.get("allSignedOffBy")
    if isinstance(signers, list):
        return tuple(str(s) for s in signers if s)
    return (str(data["signedOffBy"]),) if data.get("signedOffBy") else ()


def _consistency(value: Any) -> CommitConsistency:
    try:
        return CommitConsistency(str(value))
    except ValueError:
        return CommitConsistency.NOT_CHECKED


def _history_state(data: Mapping[str, Any]) -> ReferenceHistoryState:
    meta = data.get("meta")
    return ReferenceHistoryState(
        str(data["commitHash"]),
        _consistency(data.get("commitConsistency")),
        _commit_meta(meta) if isinstance(meta, Mapping) else None,
    )


def _log_entry(data: Mapping[str, Any], with_operations: bool) -> LogEntry:
    operations = None
    if with_operations:
        operations = tuple(operation_from_json(o) for o in data.get("operations") or [])
    return LogEntry(_commit_meta(data["commitMeta"]), operations)


__all__ = ["CLIENT_SPEC_HEADER", "NessieStore", "key_to_path", "ref_path"]
