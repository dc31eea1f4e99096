"""Every error Lakehouse raises, rooted at :class:`LakehouseError`.

The tree (retryable types are marked *transient*)::

    LakehouseError
    ├── ConfigError                      bad or missing settings
    ├── CatalogError                     the versioned catalog
    │   ├── InvalidInputError (ValueError)  malformed name, key, hash, ref spec
    │   ├── NotFoundError (LookupError)
    │   │   ├── ReferenceNotFoundError   no branch/tag/commit of that name/hash
    │   │   ├── ContentNotFoundError     no content at that key
    │   │   └── NamespaceNotFoundError   no namespace (explicit or implied by a key) there
    │   ├── ReferenceAlreadyExistsError
    │   ├── NamespaceAlreadyExistsError  a namespace (or other content) is at that key
    │   ├── NamespaceNotEmptyError       a namespace to delete still holds tables or views
    │   ├── ReferenceConflictError       expected hash is stale (ref moved)
    │   ├── CommitConflictError          per-key conflicts of a commit
    │   │   └── MergeConflictError       per-key conflicts of a merge/transplant
    │   ├── ReadOnlyReferenceError       a tag or a hash used as a write target
    │   ├── CommitStateUnknownError      the outcome of a commit is unknown
    │   └── TransientCatalogError        *transient*: the backend was busy/unreachable
    ├── StorageError                     files and buckets
    │   └── LocationNotAllowedError (ValueError)  a location outside the warehouse
    ├── IngestError                      ingestion failed; nothing was committed
    │   ├── SourceConfigError (ConfigError, ValueError)  a source definition is invalid
    │   ├── SourceNotFoundError (LookupError)  folder, URL (404) or database table missing
    │   ├── SourceUnavailableError       *transient*: server or database unreachable
    │   ├── SourceChangedError           *transient*: a file changed while being ingested
    │   ├── BadInputError (ValueError)   unreadable, empty, wrongly encoded or malformed input
    │   └── BatchQuarantinedError        a batch was quarantined (incompatible schema)
    ├── QueryError                       lakehouse sql: syntax, unknown table, execution
    ├── PipelineError                    pipeline definition, model or check failures
    └── OpsError                         backup, restore, integrity check, DR
        ├── BackupError                  (NotFound, Format, Corrupt, SourceIncomplete,
        │                                 TargetNotEmpty)
        ├── IntegrityError               the catalog references missing or damaged files
        └── PausedError                  the lakehouse is paused for disaster recovery

Domain subtrees live beside their code (``lakehouse.ingest.errors``,
``lakehouse.query.errors``, ``lakehouse.pipelines.errors``, ``lakehouse.ops.errors``,
each documenting its full subtree) and all derive
from :class:`LakehouseError`, so ``except LakehouseError`` catches every one of them.

:class:`LakehouseError`, :class:`CatalogError` and :class:`InvalidInputError` are defined
in :mod:`lakehouse._errors`, below :mod:`lakehouse.keys` (content keys raise
``InvalidInputError``, and the catalog errors here carry keys and conflicts); import
every error from this module.

Context is kept on the exception as attributes (``ref``, ``key``, ``conflicts``)
and repeated in the message, so a one-line ``Error: …`` is enough for a person.
"""

from __future__ import annotations

from collections.abc import Sequence

from lakehouse._errors import CatalogError as CatalogError
from lakehouse._errors import InvalidInputError as InvalidInputError
from lakehouse._errors import LakehouseError as LakehouseError
from lakehouse.keys import Conflict, ContentKey


class ConfigError(LakehouseError):
    """Settings are missing or invalid."""


class StorageError(LakehouseError):
    """A file or bucket operation failed."""


class LocationNotAllowedError(StorageError, ValueError):
    """A table, data or metadata location that is not inside the configured warehouse.

    Raised for explicit table locations, metadata files to register and ``write.*.path``
    properties (see :meth:`lakehouse.storage.zones.Warehouse.contains`).
    """

    def __init__(self, location: str, what: str = "location") -> None:
        self.location = location
        shown = location if len(location) <= 300 else location[:300] + "…"
        super().__init__(
            f"{what} {shown!r} is not allowed: locations must be normalized URIs (no '..') "
            "inside the warehouse (its root folder or buckets)"
        )


class NotFoundError(CatalogError, LookupError):
    """Something that was asked for does not exist."""


class ReferenceNotFoundError(NotFoundError):
    """No branch, tag or commit matches the given name or hash."""

    def __init__(self, ref: str, message: str | None = None) -> None:
        self.ref = ref
        super().__init__(message or f"reference '{ref}' does not exist")


class ContentNotFoundError(NotFoundError):
    """No content at a key on the given reference."""

    def __init__(self, key: str, ref: str, content_key: ContentKey | None = None) -> None:
        self.key = key
        self.ref = ref
        #: the key itself when known (``key`` is its display form, ambiguous for dots)
        self.content_key = content_key
        super().__init__(f"no content at key '{key}' on '{ref}'")


class NamespaceNotFoundError(NotFoundError):
    """No namespace at a key: neither one created there nor one implied by a key under it."""

    def __init__(self, namespace: ContentKey) -> None:
        self.namespace = namespace
        super().__init__(f"Namespace '{namespace}' does not exist")


class NamespaceAlreadyExistsError(CatalogError):
    """A namespace, or another content object, is at the key of a namespace to create."""

    def __init__(self, namespace: ContentKey, *, other_content: bool = False) -> None:
        self.namespace = namespace
        what = "Another content object with name" if other_content else "Namespace"
        super().__init__(f"{what} '{namespace}' already exists")


class NamespaceNotEmptyError(CatalogError):
    """A namespace to delete still holds content other than namespaces."""

    def __init__(self, namespace: ContentKey) -> None:
        self.namespace = namespace
        super().__init__(f"Namespace '{namespace}' is not empty")


class ReferenceAlreadyExistsError(CatalogError):
    """A branch or tag of that name exists already."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"reference '{ref}' already exists")


class ReferenceConflictError(CatalogError):
    """The reference is not at the expected hash (someone else moved it)."""

    def __init__(self, ref: str, expected: str, actual: str) -> None:
        self.ref = ref
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"reference '{ref}' is at {actual[:12]}, not at the expected {expected[:12]}"
        )


class CommitConflictError(CatalogError):
    """A commit touched keys that conflict; nothing was committed."""

    def __init__(self, conflicts: Sequence[Conflict], action: str = "commit") -> None:
        self.conflicts = list(conflicts)
        shown = "; ".join(str(c) for c in self.conflicts[:5])
        more = f" (and {len(self.conflicts) - 5} more)" if len(self.conflicts) > 5 else ""
        super().__init__(f"{action} failed with {len(self.conflicts)} conflict(s): {shown}{more}")


class MergeConflictError(CommitConflictError):
    """A merge or transplant found conflicting keys; the target is unchanged."""

    def __init__(self, conflicts: Sequence[Conflict], action: str = "merge") -> None:
        super().__init__(conflicts, action)


class ReadOnlyReferenceError(CatalogError):
    """Writes go to branches only; tags and detached hashes are read-only."""

    def __init__(self, ref: str, kind: str = "tag") -> None:
        self.ref = ref
        super().__init__(f"cannot write to {kind} '{ref}': only branches accept commits")


class CommitStateUnknownError(CatalogError):
    """The commit may or may not have landed (timeout, 5xx after sending).

    Never clean up files after this error: they may be referenced.
    """


class TransientCatalogError(CatalogError):
    """The backend was busy or unreachable; retrying may succeed."""

    transient = True


# The root of the operations subtree and the one operations error every writer raises live
# here, below the writers; the rest of the subtree is :mod:`lakehouse.ops.errors`.


class OpsError(LakehouseError):
    """Base of operations errors."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class PausedError(OpsError):
    """The lakehouse is paused for disaster recovery: ingestion, pipelines and maintenance wait."""


__all__ = [
    "CatalogError",
    "CommitConflictError",
    "CommitStateUnknownError",
    "ConfigError",
    "ContentNotFoundError",
    "InvalidInputError",
    "LakehouseError",
    "LocationNotAllowedError",
    "MergeConflictError",
    "NamespaceAlreadyExistsError",
    "NamespaceNotEmptyError",
    "NamespaceNotFoundError",
    "NotFoundError",
    "OpsError",
    "PausedError",
    "ReadOnlyReferenceError",
    "ReferenceAlreadyExistsError",
    "ReferenceConflictError",
    "ReferenceNotFoundError",
    "StorageError",
    "TransientCatalogError",
]
