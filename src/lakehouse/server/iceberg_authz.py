"""Nessie's access checks for the Iceberg REST catalog (``/iceberg``).

The real Nessie serves Iceberg REST on top of its own API: each Iceberg operation reads
contents and commits through the same services as API v2, so it is checked as the Nessie
operations it implies, with the same rules (:mod:`lakehouse.server.authz`). This module
states that mapping once; :mod:`lakehouse.server.iceberg_rest` calls it before each
operation. ``ref`` is the reference of the prefix (``DETACHED`` for a bare hash), ``path``
the content key (Nessie's path string) and ``contentType`` the type of the content at
that key, ``''`` when the key holds nothing yet.

Nessie groups checks in batches and stops at the first batch with a failure; the refusal
names every failed check of that batch. The batches, in order:

* **read** (``getMultipleContents`` for reading) — ``VIEW_REFERENCE``, then
  ``READ_ENTITY_VALUE`` on each key that exists. Missing keys are not checked (a load of
  a missing table is a 404, not a 403).
* **read for write** (the same, for writing) — ``VIEW_REFERENCE``,
  ``COMMIT_CHANGE_AGAINST_REFERENCE``, then per key ``READ_ENTITY_VALUE`` and
  ``UPDATE_ENTITY`` (existing key) or ``READ_ENTITY_VALUE`` and ``CREATE_ENTITY`` with
  ``contentType == ''`` (missing key).
* **entries** (``getEntries``) — ``VIEW_REFERENCE`` and ``READ_ENTRIES``; each listed key
  is then kept only if ``READ_CONTENT_KEY`` passes: listings are filtered, not refused.
* **commit** (the commit validator) — ``VIEW_REFERENCE``,
  ``COMMIT_CHANGE_AGAINST_REFERENCE`` and ``CREATE_ENTITY`` / ``UPDATE_ENTITY`` /
  ``DELETE_ENTITY`` per changed key with the type of the content committed.

=============================  ====================================================
Iceberg REST operation         batches (as in Nessie's ``IcebergApiV1*Resource``)
=============================  ====================================================
config (``/{ref}/v1/config``)  ``VIEW_REFERENCE`` on a reference the request names
                               (Nessie checks nothing here; plain ``/v1/config`` is
                               not checked either)
list namespaces / tables       entries; keys filtered by ``READ_CONTENT_KEY``
load / exists namespace        read (the namespace and each of its parents)
create namespace               read; commit ``CREATE_ENTITY`` (``NAMESPACE``)
update namespace properties    read for write; commit ``UPDATE_ENTITY``
drop namespace                 entries (a namespace the principal may not see is a
                               404); commit ``DELETE_ENTITY``
load / exists table            read
create table                   read for write; read (parent namespaces, for the
                               location); commit ``CREATE_ENTITY`` (``ICEBERG_TABLE``);
                               stage-create stops before the commit
register table                 read; commit ``CREATE_ENTITY``
commit table                   read for write; commit ``UPDATE_ENTITY`` (or
                               ``CREATE_ENTITY`` with ``assert-create``)
``transactions/commit``        read for write on every table, one batch; one commit
rename table                   read (source and destination); commit
                               ``DELETE_ENTITY`` (source), ``CREATE_ENTITY`` (target)
drop table                     read; commit ``DELETE_ENTITY``
metrics report                 nothing (Nessie ignores the report too)
=============================  ====================================================

Where an operation fails anyway (a 404 or 409 that Nessie raises between two batches),
the later batches are skipped so that the status is Nessie's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lakehouse.catalog.model import Content, ContentKey, ContentType, RefSpec
from lakehouse.catalog.store import VersionStore
from lakehouse.server import wire
from lakehouse.server.authz import AuthorizationRules, Check, CheckType, view_reference
from lakehouse.server.middleware import current_principal
from lakehouse.server.oidc import Principal


@dataclass(frozen=True)
class EntityChange:
    """One key a commit changes: the check (``CREATE/UPDATE/DELETE_ENTITY``) and its type."""

    kind: CheckType
    key: ContentKey
    content_type: ContentType


class IcebergAccess:
    """The checks of the Iceberg REST operations against ``rules`` (none: all allowed).

    Each method raises :class:`~lakehouse.server.authz.AccessDeniedError` (403) naming
    the failed checks of the first failing batch, and returns what the caller needs to
    decide whether Nessie would go on (the contents that exist, the visible keys).
    """

    def __init__(self, store: VersionStore, rules: AuthorizationRules | None) -> None:
        self.store = store
        self.rules = rules

    @property
    def enabled(self) -> bool:
        """Whether rules are configured (otherwise every method allows without reading)."""
        return self.rules is not None

    @staticmethod
    def principal() -> Principal:
        """The principal of the request (anonymous under a static token)."""
        return current_principal.get() or Principal("")

    def _require(self, checks: Iterable[Check]) -> None:
        if self.rules is not None:
            self.rules.check(checks, self.principal())

    def _allows(self, check: Check) -> bool:
        return self.rules is None or self.rules.allows(check, self.principal())

    @staticmethod
    def ref_name(spec: RefSpec) -> str:
        """The ``ref`` of checks on ``spec``: its name, ``DETACHED`` for a bare hash."""
        return spec.name if spec.name is not None else wire.DETACHED

    def view(self, spec: RefSpec) -> None:
        """``VIEW_REFERENCE`` on ``spec`` (404 first if it does not exist)."""
        if self.rules is None:
            return
        self.store.resolve(spec)
        self._require([view_reference(self.ref_name(spec))])

    def read(self, spec: RefSpec, keys: Sequence[ContentKey]) -> dict[ContentKey, Content]:
        """The read batch; returns the contents of ``keys`` that exist."""
        if self.rules is None:
            return {}
        existing = self.store.get_contents(spec, keys)
        ref = self.ref_name(spec)
        checks = [view_reference(ref)]
        for key in dict.fromkeys(keys):
            content = existing.get(key)
            if content is not None:
                checks.append(_on(CheckType.READ_ENTITY_VALUE, ref, key, content.type.value))
        self._require(checks)
        return existing

    def read_for_write(
        self, spec: RefSpec, keys: Sequence[ContentKey]
    ) -> dict[ContentKey, Content]:
        """The read-for-write batch; returns the contents of ``keys`` that exist."""
        if self.rules is None:
            return {}
        existing = self.store.get_contents(spec, keys)
        ref = self.ref_name(spec)
        checks = [view_reference(ref), Check(CheckType.COMMIT_CHANGE_AGAINST_REFERENCE, ref)]
        for key in dict.fromkeys(keys):
            content = existing.get(key)
            content_type = content.type.value if content is not None else ""
            change = CheckType.UPDATE_ENTITY if content is not None else CheckType.CREATE_ENTITY
            checks.append(_on(CheckType.READ_ENTITY_VALUE, ref, key, content_type))
            checks.append(_on(change, ref, key, content_type))
        self._require(checks)
        return existing

    def entries(self, spec: RefSpec) -> None:
        """The entries batch: ``VIEW_REFERENCE`` and ``READ_ENTRIES`` (404 first)."""
        if self.rules is None:
            return
        self.store.resolve(spec)
        ref = self.ref_name(spec)
        self._require([view_reference(ref), Check(CheckType.READ_ENTRIES, ref)])

    def visible(
        self, spec: RefSpec, keys: Iterable[tuple[str, ...]], content_type: ContentType
    ) -> list[tuple[str, ...]]:
        """The ``keys`` (of one content type) whose ``READ_CONTENT_KEY`` passes."""
        if self.rules is None:
            return list(keys)
        ref = self.ref_name(spec)
        return [
            k
            for k in keys
            if self._allows(_on(CheckType.READ_CONTENT_KEY, ref, ContentKey(k), content_type))
        ]

    def commit(self, branch: str, changes: Sequence[EntityChange]) -> None:
        """The commit validator's batch for ``changes`` on ``branch``."""
        if self.rules is None:
            return
        checks = [view_reference(branch), Check(CheckType.COMMIT_CHANGE_AGAINST_REFERENCE, branch)]
        checks += [_on(c.kind, branch, c.key, c.content_type.value) for c in changes]
        self._require(checks)


def _on(kind: CheckType, ref: str, key: ContentKey, content_type: str) -> Check:
    return Check(kind, ref, wire.key_to_path(key), content_type)


def parents(key: ContentKey) -> list[ContentKey]:
    """The namespaces enclosing ``key``, outermost first (``a``, ``a.b`` for ``a.b.t``)."""
    elements = key.elements
    return [ContentKey(elements[: i + 1]) for i in range(len(elements) - 1)]


__all__ = ["EntityChange", "IcebergAccess", "parents"]
