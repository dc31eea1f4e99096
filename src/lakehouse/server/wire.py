"""Nessie REST API v2 wire format: JSON shapes and the path syntaxes of refs and keys.

Pure functions between :mod:`lakehouse.catalog.model` objects and the JSON that
Nessie's server sends and accepts (``org.projectnessie.model`` serialized with the
``V2`` view). No web framework is imported here.

Shapes follow Nessie's Jackson output: nullable fields without ``NON_NULL`` are
written as ``null`` (``token``, ``parentCommitHash``, ``commonAncestor``…), the
``NON_NULL``/``NON_EMPTY`` ones are left out when empty (``metadata``,
``allProperties``, ``parentCommitHashes``, a merge detail's ``conflict``).

Path syntaxes:

* a **reference** in a path is ``name``, ``name@hash``, ``@hash``, ``name@`` (a name
  containing ``/`` must end in ``@``), any of them followed by relative parts
  ``~N``, ``^N``, ``*timestamp``; ``-`` names the default branch and ``DETACHED`` no
  branch at all;
* a **content key** in a path or a ``key``/``min-key``/``max-key``/``prefix-key``
  query parameter is Nessie's path string: elements separated by ``.``, a dot inside
  an element written as ``\\u001D`` (or ``\\u0000``); or the escaped form, which
  starts with ``.`` and writes ``*.`` ``*{`` ``*}`` ``*[`` ``**`` for ``.`` ``/``
  ``\\`` ``%`` ``*``. URL percent-encoding is decoded before either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lakehouse.catalog.model import (
    CommitMeta,
    CommitResult,
    Conflict,
    Content,
    ContentKey,
    ContentType,
    DiffEntry,
    Entry,
    LogEntry,
    MergeResult,
    Operation,
    Reference,
    ReferenceHistory,
    ReferenceHistoryState,
    ReferenceType,
    RefSpec,
    TableOutcome,
    Unchanged,
    content_from_json,
    operation_to_json,
)
from lakehouse.catalog.refcounts import RefCounts as RefCounts
from lakehouse.catalog.store import ResolvedRef
from lakehouse.errors import InvalidInputError

#: Name Nessie gives a detached commit; a path or body naming it means "no branch".
DETACHED = "DETACHED"
#: Stands for the default branch in a path (Nessie: ``main/diff/-``).
DEFAULT_REF_IN_PATH = "-"

_HASH = re.compile(r"^[0-9a-fA-F]{8,64}$")
_PATH_REF = re.compile(r"^(?P<name>[^@~^*]*)(?:@(?P<hash>[^~^*]*))?(?P<rel>[~^*].*)?$", re.S)
_HASH_WITH_RELATIVE = re.compile(r"^(?P<hash>[0-9a-fA-F]*)(?P<rel>(?:[~^*].*)?)$", re.S)
_FORBIDDEN_NAMES = frozenset({"HEAD", DETACHED})

HASH_OR_RELATIVE_MESSAGE = (
    "a hash with optional relative part must be a commit hash (8 to 64 hex digits) "
    "and/or relative parts: '~N' (N-th predecessor), '^N' (N-th parent) or "
    "'*timestamp' (ISO-8601 or epoch milliseconds)"
)

# -- references ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HashRule:
    """What an operation requires of a reference and its "hash with optional relative part".

    Nessie checks a reference and its hash in this order and with this wording (its
    ``HashValidator``): the reference's type first (``<ref_what> must be a branch.``,
    ``... must be a branch or a tag.``), then the hash (``<hash_what> must be provided.``,
    ``... must contain a starting commit ID.``). A hash is *unambiguous* when it has an
    absolute part: it then names the same commit whenever the request arrives. Writes
    require that; a detached reference always does, as it has no head to start from.
    """

    hash_what: str = "Hash"
    ref_what: str = "Reference"
    branch: bool = False
    branch_or_tag: bool = False
    unambiguous: bool = False

    @property
    def needs_type(self) -> bool:
        """Whether checking needs the type of a named reference (a store lookup)."""
        return self.branch or self.branch_or_tag

    def check_type(self, kind: ReferenceType | None, name: str | None = None) -> None:
        """Refuse a reference of the wrong type; ``kind`` ``None`` is a detached commit."""
        what = f" '{name}' is a {kind.value.lower()}." if kind is not None and name else ""
        if self.branch and kind is not ReferenceType.BRANCH:
            raise InvalidInputError(f"{self.ref_what} must be a branch.{what}")
        if self.branch_or_tag and kind is None:
            raise InvalidInputError(f"{self.ref_what} must be a branch or a tag.")

    def check_hash(self, detached: bool, hash_: str | None, relative: bool) -> None:
        """Refuse a missing or ambiguous hash where one is required."""
        if hash_ is None and (self.unambiguous or detached):
            if relative:
                raise InvalidInputError(f"{self.hash_what} must contain a starting commit ID.")
            raise InvalidInputError(f"{self.hash_what} must be provided.")

    def check(self, kind: ReferenceType | None, spec: RefSpec) -> None:
        """Both checks, in Nessie's order, for a parsed spec of a reference of type ``kind``."""
        self.check_type(kind, spec.name)
        self.check_hash(kind is None, spec.hash, bool(spec.relative))


#: reads: only a detached reference needs a hash
ANY_HASH = HashRule()


def parse_ref_path(text: str, default_branch: str, rule: HashRule = ANY_HASH) -> RefSpec:
    """Parse a reference path element (see the module docstring) into a :class:`RefSpec`.

    ``rule`` is checked as far as it can be without the store: fully for a detached
    reference, the hash only for a named one unless the rule needs its type (then the
    caller checks, after looking the reference up).
    """
    match = _PATH_REF.match(text)
    if match is None:
        raise InvalidInputError(
            f"invalid reference {text!r}: expected 'name', 'name@hash', '@hash' or '-', "
            "optionally followed by relative parts '~N', '^N' or '*timestamp'"
        )
    name = match["name"] or None
    if name == DEFAULT_REF_IN_PATH:
        name = default_branch
    elif name == DETACHED:
        name = None
    return _spec(name, match["hash"] or None, match["rel"] or "", text, rule)


def ref_spec(
    name: str | None,
    hash_with_relative: str | None,
    default_branch: str,
    rule: HashRule = ANY_HASH,
) -> RefSpec:
    """A spec from a name and Nessie's "hash with optional relative part" (bodies, merges).

    ``name`` ``None`` means the default branch, ``DETACHED`` no branch; a ``None`` hash
    means the head of the named reference. ``rule`` as in :func:`parse_ref_path`.
    """
    if name is None:
        name = default_branch
    hash_: str | None = None
    relative = ""
    if hash_with_relative:
        match = _HASH_WITH_RELATIVE.match(hash_with_relative)
        if match is None:
            raise InvalidInputError(
                f"invalid hash {hash_with_relative!r}: {HASH_OR_RELATIVE_MESSAGE}"
            )
        hash_ = match["hash"] or None
        relative = match["rel"]
    return _spec(
        None if name == DETACHED else name,
        hash_,
        relative,
        f"{name}@{hash_with_relative}",
        rule,
    )


def _spec(
    name: str | None, hash_: str | None, relative: str, original: str, rule: HashRule
) -> RefSpec:
    if name is None:
        rule.check_type(None)
    if name is None or not rule.needs_type:
        rule.check_hash(name is None, hash_, bool(relative))
    return RefSpec.parse((name or "") + (f"@{hash_}" if hash_ else "") + relative)


def check_new_reference_name(name: str) -> str:
    """Refuse names Nessie forbids for new references: HEAD, DETACHED, hash-like names."""
    if name.upper() in _FORBIDDEN_NAMES or _HASH.match(name):
        raise InvalidInputError(
            f"invalid reference name {name!r}: must not be HEAD, DETACHED "
            "or look like a commit hash"
        )
    return name


def reference_json(ref: Reference, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A branch or tag; ``metadata`` is Nessie's ``ReferenceMetadata`` (fetch=ALL only)."""
    out = ref.to_json()
    if metadata is not None:
        out["metadata"] = dict(metadata)
    return out


def effective_reference_json(resolved: ResolvedRef) -> dict[str, Any]:
    """The reference a read was served from, with the commit it resolved to.

    A named reference keeps its name and carries the resolved hash (which differs from
    its head for ``name@hash``, ``name~N`` …); a detached commit is Nessie's
    ``{"type": "DETACHED", "hash": …}``.
    """
    if resolved.reference is None:
        return {"type": DETACHED, "hash": resolved.hash}
    return {
        "type": resolved.reference.type.value,
        "name": resolved.reference.name,
        "hash": resolved.hash,
    }


def reference_metadata_json(
    head: CommitMeta | None, counts: RefCounts | None = None
) -> dict[str, Any]:
    """Nessie's ``ReferenceMetadata`` (``fetch=ALL``)."""
    counts = counts or RefCounts()
    return {
        "numCommitsAhead": counts.ahead,
        "numCommitsBehind": counts.behind,
        "commitMetaOfHEAD": commit_meta_json(head) if head is not None else None,
        "commonAncestorHash": counts.common_ancestor,
        "numTotalCommits": counts.total,
    }


def reference_history_state_json(state: ReferenceHistoryState) -> dict[str, Any]:
    """Nessie's ``ReferenceHistoryState``: a head's hash, consistency and (if any) meta."""
    return {
        "commitHash": state.hash,
        "commitConsistency": state.consistency.value,
        "meta": commit_meta_json(state.meta) if state.meta is not None else None,
    }


def reference_history_json(history: ReferenceHistory) -> dict[str, Any]:
    """Nessie's ``ReferenceHistoryResponse`` (``GET /trees/{ref}/recent-changes``)."""
    return {
        "reference": reference_json(history.reference),
        "current": reference_history_state_json(history.current),
        "previous": [reference_history_state_json(s) for s in history.previous],
        "commitLogConsistency": history.commit_log.value,
    }


# -- content keys ---------------------------------------------------------------------------

_ESCAPES = {".": ".", "{": "/", "}": "\\", "[": "%", "*": "*"}


def key_from_path(text: str) -> ContentKey:
    """Parse Nessie's path string of a content key (see the module docstring)."""
    if not text:
        raise InvalidInputError("empty content key")
    if text.startswith("."):
        elements = _split_escaped(text)
    else:
        elements = [part.replace("\u001d", ".").replace("\u0000", ".") for part in text.split(".")]
    return ContentKey(tuple(elements))


def _split_escaped(text: str) -> list[str]:
    elements: list[str] = []
    current: list[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == ".":
            elements.append("".join(current))
            current = []
        elif ch == "*":
            i += 1
            if i == len(text) or text[i] not in _ESCAPES:
                raise InvalidInputError(f"invalid escape sequence in content key {text!r}")
            current.append(_ESCAPES[text[i]])
        else:
            current.append(ch)
        i += 1
    elements.append("".join(current))
    return elements


def key_to_path(key: ContentKey) -> str:
    """Nessie's (unescaped) path string of ``key``: ``\\u001D`` for dots in elements."""
    return key.to_path_string()


def key_json(key: ContentKey) -> dict[str, Any]:
    """``{"elements": [...]}``."""
    return key.to_json()


# -- contents and operations ----------------------------------------------------------------


def content_json(content: Content) -> dict[str, Any]:
    """A content object (``ICEBERG_TABLE``, ``ICEBERG_VIEW``, ``NAMESPACE``)."""
    return content.to_json()


def content_from_wire(data: Mapping[str, Any]) -> Content:
    """Parse a content object, checking the types the model leaves to its callers."""
    content_id = data.get("id")
    if content_id is not None and not isinstance(content_id, str):
        raise InvalidInputError(f"invalid content id {content_id!r}: must be a string")
    if data.get("type") == ContentType.NAMESPACE:
        elements = data.get("elements")
        if not isinstance(elements, list) or not all(isinstance(e, str) for e in elements):
            raise InvalidInputError("a NAMESPACE content needs 'elements', a list of strings")
        properties = data.get("properties")
        if properties is not None and not isinstance(properties, dict):
            raise InvalidInputError("a NAMESPACE content's 'properties' must be an object")
    return content_from_json(data)


def operation_json(op: Operation) -> dict[str, Any]:
    """``PUT``/``DELETE``/``UNCHANGED`` operation."""
    return operation_to_json(op)


# -- commits and history --------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    """An instant as Nessie writes it (ISO-8601, UTC, ``Z``)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def commit_meta_json(meta: CommitMeta) -> dict[str, Any]:
    """Nessie v2 ``CommitMeta``: ``authors``, ``allSignedOffBy``, ``allProperties`` …"""
    out: dict[str, Any] = {
        "hash": meta.hash,
        "committer": meta.committer or "",
        "authors": [meta.author] if meta.author else [],
        "allSignedOffBy": list(meta.signed_off_by),
        "message": meta.message,
        "commitTime": iso(meta.commit_time),
        "authorTime": iso(meta.authored_time),
    }
    if meta.properties:
        out["allProperties"] = {k: [v] for k, v in sorted(meta.properties.items())}
    if meta.parent_hashes:
        out["parentCommitHashes"] = list(meta.parent_hashes)
    return out


def log_entry_json(entry: LogEntry, *, fetch_all: bool) -> dict[str, Any]:
    """A ``LogEntry``: operations only with ``fetch=ALL`` (PUT and DELETE, as Nessie)."""
    parents = entry.meta.parent_hashes
    operations: list[dict[str, Any]] | None = None
    if fetch_all:
        operations = [
            operation_json(op) for op in entry.operations or () if not isinstance(op, Unchanged)
        ]
    return {
        "commitMeta": commit_meta_json(entry.meta),
        "parentCommitHash": parents[0] if parents else None,
        "operations": operations,
    }


def commit_response_json(result: CommitResult) -> dict[str, Any]:
    """``CommitResponse``; ``addedContents`` is null when nothing new was added (as Nessie)."""
    added = [
        {"key": key_json(key), "contentId": content_id}
        for key, content_id in sorted(result.added_contents.items())
    ]
    return {"targetBranch": result.branch.to_json(), "addedContents": added or None}


# -- listings -------------------------------------------------------------------------------


def entry_json(entry: Entry, content: Content | None = None) -> dict[str, Any]:
    """An ``EntriesResponse.Entry``."""
    return {
        "name": key_json(entry.key),
        "type": entry.type.value,
        "contentId": entry.content_id,
        "content": content_json(content) if content is not None else None,
    }


def diff_entry_json(diff: DiffEntry) -> dict[str, Any]:
    """A ``DiffResponse.DiffEntry`` (``null`` on the side where the key is absent)."""
    return {
        "key": key_json(diff.key),
        "from": content_json(diff.from_content) if diff.from_content is not None else None,
        "to": content_json(diff.to_content) if diff.to_content is not None else None,
    }


def conflict_json(conflict: Conflict) -> dict[str, Any]:
    """A ``Conflict`` (``key`` null when the conflict is not about one key)."""
    return {
        "conflictType": conflict.type.value,
        "key": key_json(conflict.key) if conflict.key is not None else None,
        "message": conflict.message,
    }


def conflicts_details_json(conflicts: Sequence[Conflict]) -> dict[str, Any]:
    """``errorDetails`` of a conflict error (Nessie's ``ReferenceConflicts``)."""
    return {"type": "REFERENCE_CONFLICTS", "conflicts": [conflict_json(c) for c in conflicts]}


def merge_response_json(
    result: MergeResult,
    expected_hash: str | None,
    tables: Sequence[TableOutcome] | None = None,
) -> dict[str, Any]:
    """``MergeResponse`` of a merge or transplant (also of a dry run or a conflict).

    ``tables`` (a merge with ``contentMerge``): each such table's detail gets the
    extension field ``contentMerge`` (``{"merged": …, "description": …}``). Without it the
    response is exactly Nessie's.
    """
    outcomes = {t.key: t for t in tables or ()}
    details: list[dict[str, Any]] = []
    for detail in result.details:
        item: dict[str, Any] = {
            "key": key_json(detail.key),
            "mergeBehavior": detail.merge_behavior.value,
        }
        if detail.conflict is not None:
            item["conflict"] = conflict_json(detail.conflict)
        outcome = outcomes.get(detail.key)
        if outcome is not None:
            item["contentMerge"] = {"merged": outcome.merged, "description": outcome.description}
        details.append(item)
    return {
        "wasApplied": result.was_applied,
        "wasSuccessful": result.was_successful,
        "resultantTargetHash": result.resultant_target_hash,
        "commonAncestor": result.common_ancestor,
        "targetBranch": result.target_branch,
        "effectiveTargetHash": result.effective_target_hash,
        "expectedHash": expected_hash,
        "details": details,
    }


# -- paging ---------------------------------------------------------------------------------


def encode_token(position: str) -> str:
    """An opaque page token (hex) for a position in a sorted listing."""
    return position.encode("utf-8").hex()


def decode_token(token: str) -> str:
    """The position a token of :func:`encode_token` stands for."""
    try:
        return bytes.fromhex(token).decode("utf-8")
    except ValueError as exc:
        raise InvalidInputError(f"invalid page token {token[:80]!r}") from exc


__all__ = [
    "ANY_HASH",
    "DEFAULT_REF_IN_PATH",
    "DETACHED",
    "HashRule",
    "RefCounts",
    "check_new_reference_name",
    "commit_meta_json",
    "commit_response_json",
    "conflict_json",
    "conflicts_details_json",
    "content_from_wire",
    "content_json",
    "decode_token",
    "diff_entry_json",
    "effective_reference_json",
    "encode_token",
    "entry_json",
    "iso",
    "key_from_path",
    "key_json",
    "key_to_path",
    "log_entry_json",
    "merge_response_json",
    "operation_json",
    "parse_ref_path",
    "ref_spec",
    "reference_history_json",
    "reference_history_state_json",
    "reference_json",
    "reference_metadata_json",
]
