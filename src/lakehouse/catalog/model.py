"""Value objects of the versioned catalog: references, keys, contents, operations, commits.

The shapes follow Project Nessie's REST API v2 so that our store and a real Nessie
server are interchangeable: contents serialize to Nessie's JSON (``type``,
``id``, ``metadataLocation`` …) and reference specs use Nessie's syntax
(``name``, ``name@hash``, ``@hash``, ``name~N``, ``name^N``, ``name*timestamp``).

Every object here is immutable and validates itself on construction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeAlias

from lakehouse._errors import InvalidInputError
from lakehouse.keys import KEY_DOT_ESCAPE as KEY_DOT_ESCAPE
from lakehouse.keys import Conflict as Conflict
from lakehouse.keys import ConflictType as ConflictType
from lakehouse.keys import ContentKey as ContentKey

#: Hash of the empty catalog, before any commit (the same value as Nessie's "no ancestor").
NO_ANCESTOR = "2e1cfa82b035c26cbbbdae632cea070514eb8b773f616aaeaf668e2f0be8f10d"

_REF_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9_\-./]*[A-Za-z0-9_\-])?$")
_HASH = re.compile(r"^[0-9a-fA-F]{8,64}$")
#: Names that would be ambiguous in reference specs (Nessie refuses them too).
_RESERVED_REF_NAMES = frozenset({"HEAD", "DETACHED"})


def validate_ref_name(name: str) -> str:
    """Return ``name`` if it is a valid branch/tag name, else raise :class:`InvalidInputError`."""
    if (
        not isinstance(name, str)
        or len(name) > 250
        or not _REF_NAME.match(name)
        or ".." in name
        or "//" in name
        or name.endswith(".lock")
        or name in _RESERVED_REF_NAMES
        or _HASH.match(name)
    ):
        # Nessie's wording (its clients match on it), plus the rules it states elsewhere
        raise InvalidInputError(
            f"invalid reference name {name!r}: Reference name must start with a letter, "
            "followed by letters, digits, one of the ./_- characters, not end with a slash "
            "or dot, not contain '..' (nor be HEAD, DETACHED or look like a commit hash)"
        )
    return name


def validate_hash(value: str) -> str:
    """Return ``value`` lower-cased if it looks like a (possibly abbreviated) commit hash."""
    if not isinstance(value, str) or not _HASH.match(value):
        raise InvalidInputError(f"invalid commit hash {value!r}: expected 8 to 64 hex digits")
    return value.lower()


class ReferenceType(StrEnum):
    """Kind of a named reference."""

    BRANCH = "BRANCH"
    TAG = "TAG"


@dataclass(frozen=True)
class Reference:
    """A named pointer to a commit. Use :class:`Branch` or :class:`Tag`."""

    name: str
    hash: str
    type: ClassVar[ReferenceType]

    def __post_init__(self) -> None:
        validate_ref_name(self.name)
        validate_hash(self.hash)

    def to_json(self) -> dict[str, Any]:
        """Nessie v2 JSON form."""
        return {"type": self.type.value, "name": self.name, "hash": self.hash}

    @staticmethod
    def of(kind: ReferenceType | str, name: str, hash: str) -> Reference:
        """Build a :class:`Branch` or :class:`Tag` from its kind."""
        kind = ReferenceType(str(kind).upper())
        return Branch(name, hash) if kind is ReferenceType.BRANCH else Tag(name, hash)


@dataclass(frozen=True)
class Branch(Reference):
    """A movable reference: the only kind that accepts commits."""

    type: ClassVar[ReferenceType] = ReferenceType.BRANCH


@dataclass(frozen=True)
class Tag(Reference):
    """A reference that only moves when reassigned with its expected hash."""

    type: ClassVar[ReferenceType] = ReferenceType.TAG


RelativeKind: TypeAlias = Literal["~", "^", "*"]


@dataclass(frozen=True)
class RefSpec:
    """A parsed reference spec: ``name``, ``name@hash``, ``@hash``, plus relative parts.

    ``relative`` holds ``("~", n)`` (n-th first-parent ancestor), ``("^", n)`` (n-th
    parent: 1 = first, 2 = merge parent) and ``("*", datetime)`` (the newest commit at
    or before that time) in the order written.
    """

    name: str | None = None
    hash: str | None = None
    relative: tuple[tuple[RelativeKind, int | datetime], ...] = ()

    _SPLIT: ClassVar[re.Pattern[str]] = re.compile(r"([~^*])")

    @classmethod
    def parse(cls, spec: str) -> RefSpec:
        """Parse Nessie's v2 reference syntax."""
        if not isinstance(spec, str) or not spec:
            raise InvalidInputError("empty reference")
        head, *rest = cls._SPLIT.split(spec)
        name: str | None
        hash_: str | None = None
        if "@" in head:
            name_part, hash_part = head.split("@", 1)
            name = name_part or None
            hash_ = validate_hash(hash_part)
        else:
            name = head or None
        if name is not None:
            validate_ref_name(name)
        if name is None and hash_ is None:
            raise InvalidInputError(f"invalid reference {spec!r}: no name and no hash")
        relative: list[tuple[RelativeKind, int | datetime]] = []
        for op, arg in zip(rest[0::2], rest[1::2], strict=True):
            if op == "*":
                relative.append(("*", parse_timestamp(arg)))
            else:
                if not arg.isdigit():
                    raise InvalidInputError(f"invalid reference {spec!r}: '{op}' needs a number")
                relative.append((op, int(arg)))  # type: ignore[arg-type]
        return cls(name, hash_, tuple(relative))

    def __str__(self) -> str:
        out = self.name or ""
        if self.hash:
            out += "@" + self.hash
        for op, arg in self.relative:
            out += op + (arg.isoformat() if isinstance(arg, datetime) else str(arg))
        return out


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO-8601 instant or epoch milliseconds into an aware UTC datetime."""
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError) as exc:
        raise InvalidInputError(
            f"invalid timestamp {value!r}: use ISO-8601, e.g. 2026-01-01T00:00:00Z"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ContentType(StrEnum):
    """Kinds of content, with Nessie's type names."""

    ICEBERG_TABLE = "ICEBERG_TABLE"
    ICEBERG_VIEW = "ICEBERG_VIEW"
    NAMESPACE = "NAMESPACE"


@dataclass(frozen=True)
class IcebergTable:
    """An Iceberg table: where its current metadata file is, and what it points at."""

    metadata_location: str
    snapshot_id: int = -1
    schema_id: int = 0
    spec_id: int = 0
    sort_order_id: int = 0
    id: str | None = None
    type: ClassVar[ContentType] = ContentType.ICEBERG_TABLE

    def to_json(self) -> dict[str, Any]:
        """Nessie v2 JSON form."""
        out: dict[str, Any] = {
            "type": self.type.value,
            "metadataLocation": self.metadata_location,
            "snapshotId": self.snapshot_id,
            "schemaId": self.schema_id,
            "specId": self.spec_id,
            "sortOrderId": self.sort_order_id,
        }
        if self.id is not None:
            out["id"] = self.id
        return out


@dataclass(frozen=True)
class IcebergView:
    """An Iceberg view: its metadata file and current version."""

    metadata_location: str
    version_id: int = 0
    schema_id: int = 0
    id: str | None = None
    type: ClassVar[ContentType] = ContentType.ICEBERG_VIEW

    def to_json(self) -> dict[str, Any]:
        """Nessie v2 JSON form."""
        out: dict[str, Any] = {
            "type": self.type.value,
            "metadataLocation": self.metadata_location,
            "versionId": self.version_id,
            "schemaId": self.schema_id,
        }
        if self.id is not None:
            out["id"] = self.id
        return out


@dataclass(frozen=True)
class Namespace:
    """A namespace is content too: it must exist before anything is put inside it."""

    elements: tuple[str, ...]
    properties: Mapping[str, str] = field(default_factory=dict)
    id: str | None = None
    type: ClassVar[ContentType] = ContentType.NAMESPACE

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", tuple(self.elements))
        ContentKey(self.elements)  # validates
        object.__setattr__(self, "properties", dict(self.properties))

    def __hash__(self) -> int:
        return hash((self.elements, tuple(sorted(self.properties.items())), self.id))

    @property
    def key(self) -> ContentKey:
        """The key this namespace lives at."""
        return ContentKey(self.elements)

    def to_json(self) -> dict[str, Any]:
        """Nessie v2 JSON form."""
        out: dict[str, Any] = {
            "type": self.type.value,
            "elements": list(self.elements),
            "properties": dict(self.properties),
        }
        if self.id is not None:
            out["id"] = self.id
        return out


Content: TypeAlias = IcebergTable | IcebergView | Namespace


def with_id(content: Content, content_id: str | None) -> Content:
    """A copy of ``content`` carrying ``content_id``."""
    return replace(content, id=content_id)


def content_from_json(data: Mapping[str, Any]) -> Content:
    """Parse Nessie's v2 JSON form of a content object."""
    try:
        kind = data["type"]
        if kind == ContentType.ICEBERG_TABLE:
            return IcebergTable(
                metadata_location=str(data["metadataLocation"]),
                snapshot_id=int(data.get("snapshotId", -1)),
                schema_id=int(data.get("schemaId", 0)),
                spec_id=int(data.get("specId", 0)),
                sort_order_id=int(data.get("sortOrderId", 0)),
                id=data.get("id"),
            )
        if kind == ContentType.ICEBERG_VIEW:
            return IcebergView(
                metadata_location=str(data["metadataLocation"]),
                version_id=int(data.get("versionId", 0)),
                schema_id=int(data.get("schemaId", 0)),
                id=data.get("id"),
            )
        if kind == ContentType.NAMESPACE:
            return Namespace(
                elements=tuple(data["elements"]),
                properties={str(k): str(v) for k, v in (data.get("properties") or {}).items()},
                id=data.get("id"),
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"invalid content {dict(data)!r}: {exc}") from exc
    raise InvalidInputError(f"unsupported content type {kind!r}")


@dataclass(frozen=True)
class Put:
    """Set ``key`` to ``content``. New content has no id; an update carries the existing id."""

    key: ContentKey
    content: Content


@dataclass(frozen=True)
class Delete:
    """Remove ``key``."""

    key: ContentKey


@dataclass(frozen=True)
class Unchanged:
    """Assert ``key`` did not change since the expected hash (conflict detection only)."""

    key: ContentKey


Operation: TypeAlias = Put | Delete | Unchanged


def operation_to_json(op: Operation) -> dict[str, Any]:
    """Nessie v2 JSON form of an operation."""
    if isinstance(op, Put):
        return {"type": "PUT", "key": op.key.to_json(), "content": op.content.to_json()}
    if isinstance(op, Delete):
        return {"type": "DELETE", "key": op.key.to_json()}
    return {"type": "UNCHANGED", "key": op.key.to_json()}


def operation_from_json(data: Mapping[str, Any]) -> Operation:
    """Parse Nessie's v2 JSON form of an operation."""
    try:
        key = ContentKey(tuple(data["key"]["elements"]))
        kind = str(data["type"]).upper()
    except (KeyError, TypeError) as exc:
        raise InvalidInputError(f"invalid operation {dict(data)!r}") from exc
    if kind == "PUT":
        return Put(key, content_from_json(data["content"]))
    if kind == "DELETE":
        return Delete(key)
    if kind == "UNCHANGED":
        return Unchanged(key)
    raise InvalidInputError(f"invalid operation type {kind!r}")


@dataclass(frozen=True)
class CommitMeta:
    """Who committed what and why. ``hash``/``parent_hashes``/times are set by the store.

    ``signed_off_by`` lists who signed the commit off (Nessie's ``allSignedOffBy``).
    """

    message: str = ""
    author: str | None = None
    authored_time: datetime | None = None
    committer: str | None = None
    commit_time: datetime | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    hash: str | None = None
    parent_hashes: tuple[str, ...] = ()
    signed_off_by: tuple[str, ...] = ()

    def __hash__(self) -> int:
        return hash((self.hash, self.message))

    def to_json(self) -> dict[str, Any]:
        """Nessie v2 JSON form (``allProperties`` holds lists, as Nessie's does)."""
        out: dict[str, Any] = {
            "message": self.message,
            "authors": [self.author] if self.author else [],
            "allSignedOffBy": list(self.signed_off_by),
            "properties": dict(self.properties),
            "allProperties": {k: [v] for k, v in self.properties.items()},
            "parentCommitHashes": list(self.parent_hashes),
        }
        if self.hash:
            out["hash"] = self.hash
        if self.committer is not None:
            out["committer"] = self.committer
        if self.authored_time:
            out["authorTime"] = _iso(self.authored_time)
        if self.commit_time:
            out["commitTime"] = _iso(self.commit_time)
        return out


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class LogEntry:
    """One commit of a log; ``operations`` is filled when asked for."""

    meta: CommitMeta
    operations: tuple[Operation, ...] | None = None

    @property
    def hash(self) -> str:
        """The commit hash."""
        assert self.meta.hash is not None
        return self.meta.hash


@dataclass(frozen=True)
class LogPage:
    """A page of history, newest first; pass ``next_token`` to get the next page."""

    entries: tuple[LogEntry, ...]
    next_token: str | None


@dataclass(frozen=True)
class CommitResult:
    """Outcome of a successful commit."""

    branch: Branch
    added_contents: Mapping[ContentKey, str] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        """The new head of the branch."""
        return self.branch.hash


@dataclass(frozen=True)
class Entry:
    """A key listed on a reference."""

    key: ContentKey
    type: ContentType
    content_id: str | None
    content: Content | None = None


@dataclass(frozen=True)
class DiffEntry:
    """A key whose content differs between two references (``None`` = absent)."""

    key: ContentKey
    from_content: Content | None
    to_content: Content | None


class MergeBehavior(StrEnum):
    """How a merge treats a key changed on both sides.

    NORMAL: conflict. FORCE: the source wins. DROP: the source's change is dropped.
    """

    NORMAL = "NORMAL"
    FORCE = "FORCE"
    DROP = "DROP"


@dataclass(frozen=True)
class ResolvedContent:
    """A client's resolution of one key changed on both sides of a merge (Nessie 0.99).

    The merge commit puts ``content`` at the key instead of reporting a conflict, provided
    the target still holds ``expected_target`` there (otherwise: a conflict). This is how
    a content-aware merge, computed by the client from both sides, lands as one merge
    commit with the source as second parent on either backend.
    """

    expected_target: Content
    content: Content


@dataclass(frozen=True)
class KeyMergeDetail:
    """What a merge did with one key."""

    key: ContentKey
    merge_behavior: MergeBehavior
    conflict: Conflict | None = None
    #: How a key both sides changed was resolved without a conflict, for people (e.g.
    #: ``merged by content (appends on the source …)``); ``None`` otherwise.
    resolution: str | None = None


@dataclass(frozen=True)
class MergeResult:
    """Outcome of a merge or transplant (also of a dry run)."""

    was_applied: bool
    was_successful: bool
    target_branch: str
    source_hash: str
    effective_target_hash: str
    resultant_target_hash: str | None
    common_ancestor: str | None
    details: tuple[KeyMergeDetail, ...] = ()
    added_commits: tuple[str, ...] = ()

    @property
    def conflicts(self) -> list[Conflict]:
        """Conflicts found (empty when successful)."""
        return [d.conflict for d in self.details if d.conflict is not None]


@dataclass(frozen=True)
class TableOutcome:
    """What a content merge did (or would do) with one table changed on both sides."""

    key: ContentKey
    merged: bool
    #: "merged by content (…)" or "conflict: …".
    description: str


@dataclass(frozen=True)
class ContentMergeResult:
    """A merge's result plus what happened to each table changed on both sides.

    Made by :func:`lakehouse.catalog.content_merge.content_merge`, whether the content
    merge ran in this process or on a server that offers it.
    """

    result: MergeResult
    tables: tuple[TableOutcome, ...] = ()


# -- reference history (Nessie spec 2.2: GET /trees/{ref}/recent-changes) ---------------


class CommitConsistency(StrEnum):
    """How complete a commit is in the store (Nessie's ``CommitConsistency``)."""

    NOT_CHECKED = "NOT_CHECKED"
    COMMIT_CONSISTENT = "COMMIT_CONSISTENT"
    COMMIT_CONTENT_INCONSISTENT = "COMMIT_CONTENT_INCONSISTENT"
    COMMIT_INCONSISTENT = "COMMIT_INCONSISTENT"


@dataclass(frozen=True)
class ReferenceHistoryState:
    """One head a reference had (or has), with the consistency of that commit."""

    hash: str
    consistency: CommitConsistency
    meta: CommitMeta | None = None


@dataclass(frozen=True)
class ReferenceHistory:
    """The recorded recent heads of a reference (its reflog), newest first.

    ``current`` is the head now; ``previous`` the heads it had before, most recent
    first, as far as the store keeps them (assignments included). ``commit_log``
    is the combined consistency of the commits scanned from the head, or
    ``NOT_CHECKED`` when no scan was asked for.
    """

    reference: Reference
    current: ReferenceHistoryState
    previous: tuple[ReferenceHistoryState, ...]
    commit_log: CommitConsistency = CommitConsistency.NOT_CHECKED


# -- repository config (Nessie spec 2.1: /config/repository) ----------------------------

#: Repository config types this Lakehouse knows (Nessie 0.99.0 knows the same one).
REPOSITORY_CONFIG_TYPES = frozenset({"GARBAGE_COLLECTOR"})

_COUNT_POLICY = re.compile(r"^[1-9][0-9]{0,10}$")
_DURATION_POLICY = re.compile(
    r"^[-+]?P(?:[-+]?[0-9]+D)?(?:T(?:[-+]?[0-9]+H)?(?:[-+]?[0-9]+M)?"
    r"(?:[-+]?[0-9]+(?:[.,][0-9]{0,9})?S)?)?$",
    re.IGNORECASE,
)


def validate_cutoff_policy(value: str) -> str:
    """A garbage-collector cutoff policy: ``NONE``, a commit count, an ISO duration or instant."""
    text = value.strip()
    if text.upper() == "NONE" or _COUNT_POLICY.match(text):
        return value
    if _DURATION_POLICY.match(text) and text.upper().rstrip("T") not in ("P", "+P", "-P"):
        return value
    if "T" in text.upper():
        try:
            instant = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if instant.tzinfo is not None:
                return value
    raise InvalidInputError(
        f"Failed to parse default-cutoff-value '{value}': a cutoff policy is NONE, a number "
        "of commits, an ISO-8601 duration (P30D) or an ISO-8601 instant "
        "(2011-12-03T10:15:30Z)"
    )


@dataclass(frozen=True)
class RepositoryConfig:
    """A repository-wide config object, one per ``type`` (e.g. ``GARBAGE_COLLECTOR``).

    ``value`` holds the object's fields in Nessie's JSON form, without ``type``
    (``{"defaultCutoffPolicy": "P30D", "newFilesGracePeriod": "PT3H"}``). Only the
    types in :data:`REPOSITORY_CONFIG_TYPES` are accepted, as Nessie accepts only the
    types it has a bundle for.
    """

    type: str
    value: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in REPOSITORY_CONFIG_TYPES:
            raise InvalidInputError(
                f"Repository config type bundle for '{self.type}' is not available "
                "on the Nessie server side."
            )
        if self.type == "GARBAGE_COLLECTOR":
            _check_gc_config(self.value)
        object.__setattr__(self, "value", dict(self.value))

    def __hash__(self) -> int:
        return hash(self.type)

    def to_json(self) -> dict[str, Any]:
        """Nessie v2 JSON form: the fields plus the ``type`` discriminator."""
        return {"type": self.type, **self.value}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RepositoryConfig:
        """Parse Nessie's JSON form (``type`` required)."""
        kind = data.get("type")
        if not isinstance(kind, str) or not kind:
            raise InvalidInputError("a repository config needs a 'type'")
        return cls(kind, {k: v for k, v in data.items() if k != "type"})


def _check_gc_config(value: Mapping[str, Any]) -> None:
    """The fields of Nessie's ``GarbageCollectorConfig``, checked as Nessie does."""
    policy = value.get("defaultCutoffPolicy")
    if policy is not None:
        if not isinstance(policy, str):
            raise InvalidInputError("defaultCutoffPolicy must be a string")
        validate_cutoff_policy(policy)
    per_ref = value.get("perRefCutoffPolicies")
    if per_ref is not None:
        if not isinstance(per_ref, list):
            raise InvalidInputError("perRefCutoffPolicies must be a list")
        for item in per_ref:
            if not (
                isinstance(item, Mapping)
                and isinstance(item.get("referenceNamePattern"), str)
                and isinstance(item.get("policy"), str)
            ):
                raise InvalidInputError(
                    "each of perRefCutoffPolicies needs a referenceNamePattern and a policy"
                )
            try:
                re.compile(item["referenceNamePattern"])
            except re.error as exc:
                raise InvalidInputError(
                    f"invalid referenceNamePattern {item['referenceNamePattern']!r}: {exc}"
                ) from None
            validate_cutoff_policy(item["policy"])
    grace = value.get("newFilesGracePeriod")
    if grace is not None and not (isinstance(grace, str) and _DURATION_POLICY.match(grace)):
        raise InvalidInputError(
            f"newFilesGracePeriod must be an ISO-8601 duration (PT3H), got {grace!r}"
        )
    count = value.get("expectedFileCountPerContent")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise InvalidInputError("expectedFileCountPerContent must be an integer")
