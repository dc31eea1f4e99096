"""Authorization rules with Nessie's semantics, evaluated with ``cel-python``.

Rules are written exactly as Nessie reads them, so one file configures both servers::

    nessie.server.authorization.rules.read_all=op in ['VIEW_REFERENCE', 'READ_ENTRIES', \\
        'READ_CONTENT_KEY', 'LIST_COMMIT_LOG', 'READ_ENTITY_VALUE']
    nessie.server.authorization.rules.bronze_writers=op in ['COMMIT_CHANGE_AGAINST_REFERENCE', \\
        'CREATE_ENTITY', 'UPDATE_ENTITY', 'DELETE_ENTITY'] && 'writers' in roles \\
        && ref != 'main' && (path == '' || path.startsWith('bronze'))

A check passes when any rule is true (deny by default). As in Nessie (0.99):

* the variables are ``op`` (a :class:`CheckType` name), ``role`` (the principal's name),
  ``roles`` (its roles), ``ref`` (the reference name, ``DETACHED`` for a bare hash, ``''``
  for repository checks), ``path`` (Nessie's path string of the content key, else ``''``),
  ``contentType`` (``ICEBERG_TABLE``, ``NAMESPACE``…, else ``''``) and ``type`` (repository
  config checks only);
* when no rule mentions ``VIEW_REFERENCE`` a rule allowing every ``VIEW_REFERENCE`` is
  added, so that listing references keeps working;
* a refusal names every failed check: ``'COMMIT_CHANGE_AGAINST_REFERENCE' is not allowed
  for role 'alice' on reference 'main'``, joined with ``, ``.

cel-python interprets a rule in milliseconds, so decisions are memoized: a rule's outcome
is a function of the variables it mentions (found in its text outside string literals),
and is kept per rule and those variables' values. A listing that checks
``READ_CONTENT_KEY`` per key then evaluates a rule that does not mention ``path`` once,
not once per key. Exact: the same variables always give the same outcome. A rule whose
top-level conjunction has ``op in [...]`` or ``op == '...'`` is not evaluated for other
operations (it is false for them whatever the rest says).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.celtypes import BoolType
from celpy.evaluation import CELEvalError
from lark import Token, Tree

from lakehouse.errors import LakehouseError
from lakehouse.server.oidc import Principal

#: Prefix of a rule in Nessie's ``application.properties``.
RULE_PREFIX = "nessie.server.authorization.rules."
_DEFAULT_VIEW_RULE_ID = "__ALLOW_VIEWING_REF_ID"
_DEFAULT_VIEW_RULE = "op=='VIEW_REFERENCE' && ref.matches('.*')"


class AccessDeniedError(LakehouseError, PermissionError):
    """An authorization rule set refused a check (403, Nessie's ``FORBIDDEN``)."""


class RulesError(LakehouseError, ValueError):
    """A rules file is malformed or a rule does not compile."""


class CheckType(StrEnum):
    """Nessie's ``Check.CheckType``: the operation names rules test with ``op``."""

    VIEW_REFERENCE = "VIEW_REFERENCE"
    CREATE_REFERENCE = "CREATE_REFERENCE"
    ASSIGN_REFERENCE_TO_HASH = "ASSIGN_REFERENCE_TO_HASH"
    DELETE_REFERENCE = "DELETE_REFERENCE"
    READ_ENTRIES = "READ_ENTRIES"
    READ_CONTENT_KEY = "READ_CONTENT_KEY"
    LIST_COMMIT_LOG = "LIST_COMMIT_LOG"
    COMMIT_CHANGE_AGAINST_REFERENCE = "COMMIT_CHANGE_AGAINST_REFERENCE"
    READ_ENTITY_VALUE = "READ_ENTITY_VALUE"
    CREATE_ENTITY = "CREATE_ENTITY"
    UPDATE_ENTITY = "UPDATE_ENTITY"
    DELETE_ENTITY = "DELETE_ENTITY"
    READ_REPOSITORY_CONFIG = "READ_REPOSITORY_CONFIG"
    UPDATE_REPOSITORY_CONFIG = "UPDATE_REPOSITORY_CONFIG"

    @property
    def on_content(self) -> bool:
        """Whether the check names a content key (``path``, ``contentType``)."""
        return self in _CONTENT_CHECKS

    @property
    def on_repository_config(self) -> bool:
        """Whether the check is about repository config (``type``, no ``ref``)."""
        return self in (CheckType.READ_REPOSITORY_CONFIG, CheckType.UPDATE_REPOSITORY_CONFIG)


_CONTENT_CHECKS = frozenset(
    {
        CheckType.READ_CONTENT_KEY,
        CheckType.READ_ENTITY_VALUE,
        CheckType.CREATE_ENTITY,
        CheckType.UPDATE_ENTITY,
        CheckType.DELETE_ENTITY,
    }
)


@dataclass(frozen=True)
class Check:
    """One access check: an operation on a reference, a content key or a config type."""

    type: CheckType
    ref: str = ""
    path: str = ""
    content_type: str = ""
    config_type: str = ""

    def variables(self, principal: Principal) -> dict[str, Any]:
        """The CEL variables of this check for ``principal`` (Nessie's names)."""
        env: dict[str, Any] = {
            "op": self.type.value,
            "role": principal.name,
            "roles": list(principal.roles),
            "ref": "" if self.type.on_repository_config else self.ref,
            "path": self.path if self.type.on_content else "",
            "contentType": self.content_type if self.type.on_content else "",
        }
        if self.type.on_repository_config:
            env["type"] = self.config_type
        return env

    def refusal(self, principal: Principal) -> str:
        """Nessie's message when this check fails."""
        op, role = self.type.value, principal.name
        if self.type.on_repository_config:
            return f"'{op}' is not allowed for repository config type '{self.config_type}'"
        if self.type.on_content:
            return f"'{op}' is not allowed for role '{role}' on content '{self.path}'"
        return f"'{op}' is not allowed for role '{role}' on reference '{self.ref}'"


def view_reference(ref: str) -> Check:
    """``VIEW_REFERENCE`` on ``ref``."""
    return Check(CheckType.VIEW_REFERENCE, ref)


def on_reference(kind: CheckType, ref: str) -> list[Check]:
    """``kind`` on ``ref`` with the ``VIEW_REFERENCE`` Nessie's checker adds to it."""
    if kind is CheckType.VIEW_REFERENCE or kind is CheckType.CREATE_REFERENCE:
        return [Check(kind, ref)]
    return [view_reference(ref), Check(kind, ref)]


def on_content(kind: CheckType, ref: str, path: str, content_type: str = "") -> list[Check]:
    """``kind`` on the content at ``path`` of ``ref``, with ``VIEW_REFERENCE`` first."""
    return [view_reference(ref), Check(kind, ref, path, content_type)]


#: Every variable a rule may read.
_VARIABLES = ("op", "role", "roles", "ref", "path", "contentType", "type")
#: CEL string and bytes literals (triple-quoted first), removed before looking for names.
_STRING_LITERAL = re.compile(
    r"(?s)'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\""
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Memoized decisions kept at most (the memo is emptied when full).
_MAX_DECISIONS = 100_000


def _mentioned(text: str) -> tuple[str, ...]:
    """The variables a rule's text names outside string literals (a superset is safe)."""
    names = set(_IDENTIFIER.findall(_STRING_LITERAL.sub(" ", text)))
    return tuple(v for v in _VARIABLES if v in names)


def _ops_allowed(ast: Tree[Token]) -> frozenset[str] | None:
    """The ``op`` values a rule can be true for, when a top-level conjunct says so.

    A rule ``op in ['A', 'B'] && …`` or ``op == 'A' && …`` is false for any other
    operation whatever the rest says (``false && x`` is false in CEL, errors included), so
    it need not be evaluated. ``None``: the rule does not restrict ``op`` this plainly.
    """
    node = _only_child(ast, "expr")
    node = _only_child(node, "conditionalor") if node is not None else None
    if node is None:
        return None
    conjuncts: list[Tree[Token]] = []
    pending = [node]
    while pending:  # 'conditionaland' nests to the left: a && b && c
        current = pending.pop()
        if current.data == "conditionaland" and len(current.children) == 2:
            pending.extend(c for c in current.children if isinstance(c, Tree))
        elif current.data == "conditionaland" and len(current.children) == 1:
            child = current.children[0]
            if isinstance(child, Tree):
                pending.append(child)
        else:
            conjuncts.append(current)
    allowed: frozenset[str] | None = None
    for conjunct in conjuncts:
        ops = _op_restriction(conjunct)
        if ops is not None:
            allowed = ops if allowed is None else allowed & ops
    return allowed


def _only_child(node: Tree[Token], data: str) -> Tree[Token] | None:
    if node.data != data or len(node.children) != 1 or not isinstance(node.children[0], Tree):
        return None
    return node.children[0]


def _leaf(node: Any) -> Token | None:
    """The one token at the end of a chain of single-child nodes."""
    while isinstance(node, Tree):
        if len(node.children) != 1:
            return None
        node = node.children[0]
    return node if isinstance(node, Token) else None


def _string(token: Token | None) -> str | None:
    """The value of a plain quoted string literal (no escapes, prefixes, triple quotes)."""
    if token is None or token.type != "STRING_LIT":
        return None
    text = str(token)
    if len(text) < 2 or text[0] not in "'\"" or text[-1] != text[0] or "\\" in text:
        return None
    inner = text[1:-1]
    return None if text[0] in inner or inner.startswith(text[0] * 2) else inner


def _op_restriction(relation: Tree[Token]) -> frozenset[str] | None:
    """``{'A', 'B'}`` for a conjunct ``op in ['A', 'B']``, ``{'A'}`` for ``op == 'A'``."""
    if relation.data != "relation" or len(relation.children) != 2:
        return None
    operator, right = relation.children
    if not isinstance(operator, Tree) or operator.data not in ("relation_in", "relation_eq"):
        return None
    if len(operator.children) != 1:
        return None
    left = _leaf(operator.children[0])
    if left is None or left.type != "IDENT" or str(left) != "op":
        return None
    if operator.data == "relation_eq":
        value = _string(_leaf(right))
        return frozenset({value}) if value is not None else None
    node: Any = right
    while isinstance(node, Tree) and node.data != "list_lit" and len(node.children) == 1:
        node = node.children[0]
    if not isinstance(node, Tree) or node.data != "list_lit":
        return None
    if not node.children:
        return frozenset()  # op in []
    exprlist = node.children[0]
    if len(node.children) != 1 or not isinstance(exprlist, Tree) or exprlist.data != "exprlist":
        return None
    items = exprlist.children
    values = {_string(_leaf(item)) for item in items}
    if None in values:
        return None
    return frozenset(v for v in values if v is not None)


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class AuthorizationRules:
    """A compiled rule set. Build with :meth:`from_mapping` or :meth:`from_properties`."""

    def __init__(self, rules: Mapping[str, str]) -> None:
        rules = dict(rules)
        if not any(CheckType.VIEW_REFERENCE.value in text for text in rules.values()):
            rules[_DEFAULT_VIEW_RULE_ID] = _DEFAULT_VIEW_RULE
        env = celpy.Environment()
        self._programs: dict[str, celpy.Runner] = {}
        #: the operations a rule can allow at all, when its text restricts ``op``
        self._ops: dict[str, frozenset[str] | None] = {}
        for rule_id, text in rules.items():
            try:
                ast = env.compile(text)
                self._programs[rule_id] = env.program(ast)
            except CELParseError as exc:
                raise RulesError(
                    f"authorization rule {rule_id!r} does not compile: {str(exc).splitlines()[0]}"
                ) from None
            self._ops[rule_id] = _ops_allowed(ast)
        self.rules = rules
        self._mentions = {rule_id: _mentioned(text) for rule_id, text in rules.items()}
        self._decisions: dict[tuple[Any, ...], bool] = {}

    @classmethod
    def from_mapping(cls, rules: Mapping[str, str]) -> AuthorizationRules:
        """Rules by id (``{"readers": "op == 'VIEW_REFERENCE'"}``)."""
        return cls(rules)

    @classmethod
    def from_properties(cls, text: str) -> AuthorizationRules:
        """The ``nessie.server.authorization.rules.<id>=<CEL>`` entries of a properties file.

        Other keys are ignored (the same file may hold the rest of Nessie's configuration).
        """
        rules: dict[str, str] = {}
        for key, value in parse_properties(text).items():
            if key.startswith(RULE_PREFIX):
                rule_id = key.removeprefix(RULE_PREFIX)
                if not rule_id:
                    raise RulesError(f"rule key {key!r} has no id")
                rules[rule_id] = value
        return cls(rules)

    def allows(self, check: Check, principal: Principal) -> bool:
        """Whether any rule is true for ``check`` by ``principal``."""
        variables = check.variables(principal)
        pending: list[tuple[str, tuple[Any, ...]]] = []
        for rule_id in self._programs:
            ops = self._ops[rule_id]
            if ops is not None and check.type.value not in ops:
                continue  # a conjunct 'op in [...]' / 'op == ...' is false: so is the rule
            key = (rule_id, *(_frozen(variables.get(v)) for v in self._mentions[rule_id]))
            known = self._decisions.get(key)
            if known:
                return True
            if known is None:
                pending.append((rule_id, key))
        if not pending:
            return False
        activation = {k: json_to_cel(v) for k, v in variables.items()}
        if len(self._decisions) > _MAX_DECISIONS:
            self._decisions.clear()
        for rule_id, key in pending:
            try:
                result = self._programs[rule_id].evaluate(activation)
            except CELEvalError as exc:
                raise RulesError(f"authorization rule {rule_id!r} failed: {exc}") from None
            # a rule that errors on these variables (an error value) does not allow
            allowed = isinstance(result, BoolType) and bool(result)
            self._decisions[key] = allowed
            if allowed:
                return True
        return False

    def failures(self, checks: Iterable[Check], principal: Principal) -> list[str]:
        """The refusal messages of the failed ``checks`` (each check once, in order)."""
        return [
            c.refusal(principal) for c in dict.fromkeys(checks) if not self.allows(c, principal)
        ]

    def check(self, checks: Iterable[Check], principal: Principal) -> None:
        """Raise :class:`AccessDeniedError` naming every failed check."""
        failed = self.failures(checks, principal)
        if failed:
            raise AccessDeniedError(", ".join(failed))


_PROPERTY_SEPARATOR = re.compile(r"(?<!\\)[=:]|(?<!\\)\s")


def parse_properties(text: str) -> dict[str, str]:
    """Key/value pairs of a Java ``.properties`` text (comments, ``\\`` continuations)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.lstrip()
        if not pending and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending += line[:-1]
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    result: dict[str, str] = {}
    for line in logical:
        match = _PROPERTY_SEPARATOR.search(line)
        if match is None:
            key, value = line, ""
        else:
            key = line[: match.start()]
            value = line[match.end() :].lstrip()
            if match.group().isspace() and value[:1] in ("=", ":"):
                value = value[1:].lstrip()
        result[_unescape(key.strip())] = _unescape(value)
    return result


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)


__all__ = [
    "RULE_PREFIX",
    "AccessDeniedError",
    "AuthorizationRules",
    "Check",
    "CheckType",
    "RulesError",
    "on_content",
    "on_reference",
    "parse_properties",
    "view_reference",
]
