"""A documented subset of CEL (Common Expression Language) for Nessie's ``filter`` parameters.

Nessie filters listings with CEL expressions such as
``entry.namespace.startsWith('bronze') && entry.contentType == 'ICEBERG_TABLE'`` or
``operations.exists(op, op.type == 'PUT')``. This module evaluates the part of CEL
those filters use; anything else is a 400, never a silent "match all".

Supported:

* literals: ``'text'``/``"text"`` (escapes ``\\\\ \\' \\" \\n \\t``), integers, decimals,
  ``true``, ``false``, ``null``, lists ``[a, b]``;
* variables and fields ``commit.author``, map and list indexing ``m['k']``, ``l[0]``;
* operators ``! - * / % + - < <= > >= == != in && || ?:`` with CEL precedence;
* functions ``size(x)``, ``timestamp(text)``, ``int(x)``, ``string(x)``, ``has(a.b)``;
* methods ``startsWith``, ``endsWith``, ``contains``, ``matches`` (regex search),
  ``size()``, and the macros ``exists``, ``all``, ``exists_one``, ``filter``, ``map``.

Timestamps (``commit.commitTime``) are compared with ``timestamp('…Z')``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lakehouse.catalog.model import parse_timestamp
from lakehouse.errors import InvalidInputError

_MAX_LENGTH = 4096

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    |(?P<num>\d+\.\d+|\d+)
    |(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\],.?:+\-*/%])
    """,
    re.VERBOSE | re.DOTALL,
)
_STRING_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_MACROS = frozenset({"exists", "all", "exists_one", "filter", "map"})


class CelError(InvalidInputError):
    """The filter expression is malformed or failed on a value."""


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


# -- AST --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lit:
    value: Any


@dataclass(frozen=True)
class _Var:
    name: str


@dataclass(frozen=True)
class _Field:
    target: _Node
    name: str


@dataclass(frozen=True)
class _Index:
    target: _Node
    index: _Node


@dataclass(frozen=True)
class _List:
    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Unary:
    op: str
    operand: _Node


@dataclass(frozen=True)
class _Binary:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Cond:
    test: _Node
    then: _Node
    other: _Node


@dataclass(frozen=True)
class _Call:
    name: str
    target: _Node | None
    args: tuple[_Node, ...]


_Node = _Lit | _Var | _Field | _Index | _List | _Unary | _Binary | _Cond | _Call


# -- parsing ----------------------------------------------------------------------------


def _tokenize(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise CelError(f"invalid filter: unexpected character {text[pos]!r} at {pos}")
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            out.append(_Tok(kind, match.group(), pos))
        pos = match.end()
    out.append(_Tok("end", "", len(text)))
    return out


class _Parser:
    """Recursive descent over CEL's grammar (conditional > || > && > relations > …)."""

    def __init__(self, text: str) -> None:
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self, text: str | None = None) -> _Tok:
        tok = self.toks[self.i]
        if text is not None and tok.text != text:
            found = tok.text or "end of expression"
            raise CelError(f"invalid filter: expected {text!r} at {tok.pos}, found {found!r}")
        self.i += 1
        return tok

    def accept(self, text: str) -> bool:
        if self.peek().kind in ("op", "ident") and self.peek().text == text:
            self.i += 1
            return True
        return False

    def parse(self) -> _Node:
        node = self.conditional()
        if self.peek().kind != "end":
            tok = self.peek()
            raise CelError(f"invalid filter: unexpected {tok.text!r} at {tok.pos}")
        return node

    def conditional(self) -> _Node:
        node = self.or_()
        if self.accept("?"):
            then = self.conditional()
            self.take(":")
            return _Cond(node, then, self.conditional())
        return node

    def or_(self) -> _Node:
        node = self.and_()
        while self.accept("||"):
            node = _Binary("||", node, self.and_())
        return node

    def and_(self) -> _Node:
        node = self.relation()
        while self.accept("&&"):
            node = _Binary("&&", node, self.relation())
        return node

    def relation(self) -> _Node:
        node = self.additive()
        while True:
            tok = self.peek()
            if tok.text in ("==", "!=", "<", "<=", ">", ">=", "in") and tok.kind in ("op", "ident"):
                self.i += 1
                node = _Binary(tok.text, node, self.additive())
            else:
                return node

    def additive(self) -> _Node:
        node = self.multiplicative()
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            node = _Binary(self.take().text, node, self.multiplicative())
        return node

    def multiplicative(self) -> _Node:
        node = self.unary()
        while self.peek().kind == "op" and self.peek().text in ("*", "/", "%"):
            node = _Binary(self.take().text, node, self.unary())
        return node

    def unary(self) -> _Node:
        if self.accept("!"):
            return _Unary("!", self.unary())
        if self.accept("-"):
            return _Unary("-", self.unary())
        return self.member()

    def member(self) -> _Node:
        node = self.primary()
        while True:
            if self.accept("."):
                name = self.take()
                if name.kind != "ident":
                    raise CelError(f"invalid filter: expected a field name at {name.pos}")
                if self.accept("("):
                    node = _Call(name.text, node, self.args(")"))
                else:
                    node = _Field(node, name.text)
            elif self.accept("["):
                index = self.conditional()
                self.take("]")
                node = _Index(node, index)
            else:
                return node

    def args(self, close: str) -> tuple[_Node, ...]:
        items: list[_Node] = []
        if not self.accept(close):
            items.append(self.conditional())
            while self.accept(","):
                items.append(self.conditional())
            self.take(close)
        return tuple(items)

    def primary(self) -> _Node:
        tok = self.take()
        if tok.kind == "num":
            return _Lit(float(tok.text) if "." in tok.text else int(tok.text))
        if tok.kind == "str":
            return _Lit(_unquote(tok.text))
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return _Lit(tok.text == "true")
            if tok.text == "null":
                return _Lit(None)
            if self.accept("("):
                return _Call(tok.text, None, self.args(")"))
            return _Var(tok.text)
        if tok.text == "(":
            node = self.conditional()
            self.take(")")
            return node
        if tok.text == "[":
            return _List(self.args("]"))
        found = tok.text or "end of expression"
        raise CelError(f"invalid filter: unexpected {found!r} at {tok.pos}")


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            i += 1
            if body[i] not in _STRING_ESCAPES:
                raise CelError(f"invalid filter: unsupported escape '\\{body[i]}' in {literal}")
            out.append(_STRING_ESCAPES[body[i]])
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _check_names(node: _Node, known: frozenset[str]) -> None:
    """Refuse unknown variables and functions before anything is evaluated."""
    if isinstance(node, _Var):
        if node.name not in known:
            raise CelError(f"invalid filter: undeclared reference to '{node.name}'")
    elif isinstance(node, _Field):
        _check_names(node.target, known)
    elif isinstance(node, _Index):
        _check_names(node.target, known)
        _check_names(node.index, known)
    elif isinstance(node, _List):
        for item in node.items:
            _check_names(item, known)
    elif isinstance(node, _Unary):
        _check_names(node.operand, known)
    elif isinstance(node, _Binary):
        _check_names(node.left, known)
        _check_names(node.right, known)
    elif isinstance(node, _Cond):
        for part in (node.test, node.then, node.other):
            _check_names(part, known)
    elif isinstance(node, _Call):
        if node.target is not None:
            _check_names(node.target, known)
        if node.name in _MACROS and node.target is not None:
            if len(node.args) != 2 or not isinstance(node.args[0], _Var):
                raise CelError(f"invalid filter: {node.name}() takes a variable and an expression")
            _check_names(node.args[1], known | {node.args[0].name})
            return
        if node.target is None and node.name not in _FUNCTIONS and node.name != "has":
            raise CelError(f"invalid filter: unknown function '{node.name}'")
        if node.target is not None and node.name not in _METHODS:
            raise CelError(f"invalid filter: unknown method '{node.name}'")
        if node.name == "has" and (len(node.args) != 1 or not isinstance(node.args[0], _Field)):
            raise CelError("invalid filter: has() takes a field selection, e.g. has(a.b)")
        for arg in node.args:
            _check_names(arg, known)


# -- evaluation -------------------------------------------------------------------------


def _size(value: Any) -> int:
    if isinstance(value, str | list | dict | tuple):
        return len(value)
    raise CelError(f"size() of {type(value).__name__} is not defined")


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return parse_timestamp(value)
    raise CelError(f"timestamp() needs a string, not {type(value).__name__}")


def _to_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise CelError(f"int() of {value!r} is not defined") from exc


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "size": _size,
    "timestamp": _timestamp,
    "int": _to_int,
    "string": _to_string,
}


def _str_method(fn: Callable[[str, str], bool]) -> Callable[[Any, Sequence[Any]], Any]:
    def method(target: Any, args: Sequence[Any]) -> Any:
        if len(args) != 1 or not isinstance(target, str) or not isinstance(args[0], str):
            raise CelError("string method called on a non-string or with a wrong argument")
        return fn(target, args[0])

    return method


def _matches(text: str, pattern: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error as exc:
        raise CelError(f"invalid regular expression {pattern!r}: {exc}") from exc


def _contains(target: Any, args: Sequence[Any]) -> Any:
    if len(args) == 1 and isinstance(target, str) and isinstance(args[0], str):
        return args[0] in target
    if len(args) == 1 and isinstance(target, list):
        return args[0] in target
    raise CelError("contains() needs a string or a list")


_METHODS: dict[str, Callable[[Any, Sequence[Any]], Any]] = {
    "startsWith": _str_method(str.startswith),
    "endsWith": _str_method(str.endswith),
    "matches": _str_method(_matches),
    "contains": _contains,
    "size": lambda target, args: _size(target),
}


class _Eval:
    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = env

    def run(self, node: _Node) -> Any:
        if isinstance(node, _Lit):
            return node.value
        if isinstance(node, _Var):
            return self.env[node.name]
        if isinstance(node, _Field):
            target = self.run(node.target)
            if not isinstance(target, Mapping) or node.name not in target:
                raise CelError(f"no such field '{node.name}'")
            return target[node.name]
        if isinstance(node, _Index):
            return self.index(self.run(node.target), self.run(node.index))
        if isinstance(node, _List):
            return [self.run(item) for item in node.items]
        if isinstance(node, _Unary):
            value = self.run(node.operand)
            if node.op == "!":
                return not self.boolean(value)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return -value
            raise CelError("unary '-' needs a number")
        if isinstance(node, _Binary):
            return self.binary(node)
        if isinstance(node, _Cond):
            return self.run(node.then if self.boolean(self.run(node.test)) else node.other)
        return self.call(node)

    @staticmethod
    def boolean(value: Any) -> bool:
        if not isinstance(value, bool):
            raise CelError(f"expected a boolean, got {type(value).__name__}")
        return value

    @staticmethod
    def index(target: Any, key: Any) -> Any:
        if isinstance(target, Mapping):
            if key not in target:
                raise CelError(f"no such key {key!r}")
            return target[key]
        if isinstance(target, list) and isinstance(key, int) and not isinstance(key, bool):
            if not 0 <= key < len(target):
                raise CelError(f"index {key} out of range")
            return target[key]
        raise CelError("indexing needs a map or a list and an integer")

    def binary(self, node: _Binary) -> Any:
        if node.op == "&&":
            return self.boolean(self.run(node.left)) and self.boolean(self.run(node.right))
        if node.op == "||":
            return self.boolean(self.run(node.left)) or self.boolean(self.run(node.right))
        left, right = self.run(node.left), self.run(node.right)
        if node.op == "==":
            return _same_type(left, right) and left == right
        if node.op == "!=":
            return not (_same_type(left, right) and left == right)
        if node.op == "in":
            if isinstance(right, list | Mapping):
                return left in right
            raise CelError("'in' needs a list or a map on its right")
        try:
            if node.op in ("<", "<=", ">", ">="):
                if not _same_type(left, right) or isinstance(left, bool | list | Mapping):
                    raise TypeError
                return {
                    "<": left < right,
                    "<=": left <= right,
                    ">": left > right,
                    ">=": left >= right,
                }[node.op]
            if isinstance(left, bool) or isinstance(right, bool):
                raise TypeError
            if node.op == "+" and _same_type(left, right):
                return left + right
            if isinstance(left, int | float) and isinstance(right, int | float):
                if node.op == "-":
                    return left - right
                if node.op == "*":
                    return left * right
                if right == 0:
                    raise CelError("division by zero")
                if node.op == "/":
                    return (
                        left // right
                        if isinstance(left, int) and isinstance(right, int)
                        else left / right
                    )
                return left % right
        except TypeError:
            pass
        raise CelError(
            f"operator '{node.op}' is not defined for {type(left).__name__} "
            f"and {type(right).__name__}"
        )

    def call(self, node: _Call) -> Any:
        if node.target is None:
            if node.name == "has":
                field = node.args[0]
                assert isinstance(field, _Field)
                target = self.run(field.target)
                return isinstance(target, Mapping) and field.name in target
            if len(node.args) != 1:
                raise CelError(f"{node.name}() takes one argument")
            return _FUNCTIONS[node.name](self.run(node.args[0]))
        target = self.run(node.target)
        if node.name in _MACROS:
            return self.macro(node, target)
        return _METHODS[node.name](target, [self.run(arg) for arg in node.args])

    def macro(self, node: _Call, target: Any) -> Any:
        if isinstance(target, Mapping):
            target = list(target)
        if not isinstance(target, list):
            raise CelError(f"{node.name}() needs a list or a map")
        var = node.args[0]
        assert isinstance(var, _Var)
        body = node.args[1]

        def each(item: Any) -> Any:
            return _Eval({**self.env, var.name: item}).run(body)

        if node.name == "map":
            return [each(item) for item in target]
        results = [(item, self.boolean(each(item))) for item in target]
        if node.name == "exists":
            return any(ok for _, ok in results)
        if node.name == "all":
            return all(ok for _, ok in results)
        if node.name == "exists_one":
            return sum(1 for _, ok in results if ok) == 1
        return [item for item, ok in results if ok]


def _same_type(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return True
    return type(a) is type(b) or (isinstance(a, Mapping) and isinstance(b, Mapping))


class Filter:
    """A compiled filter: call it with the variables of one item to test it."""

    def __init__(self, expression: str, variables: frozenset[str]) -> None:
        if len(expression) > _MAX_LENGTH:
            raise CelError(f"invalid filter: longer than {_MAX_LENGTH} characters")
        self.expression = expression
        self.tree = _Parser(expression).parse()
        _check_names(self.tree, variables)

    def uses(self, name: str) -> bool:
        """Whether the expression mentions variable ``name`` (to skip costly fetches)."""
        return re.search(rf"\b{re.escape(name)}\b", self.expression) is not None

    def __call__(self, env: Mapping[str, Any]) -> bool:
        try:
            result = _Eval(env).run(self.tree)
        except RecursionError as exc:
            raise CelError("invalid filter: expression too deeply nested") from exc
        if not isinstance(result, bool):
            raise CelError(
                f"filter {self.expression!r} must evaluate to a boolean, "
                f"not {type(result).__name__}"
            )
        return result


def compile_filter(expression: str | None, variables: frozenset[str]) -> Filter | None:
    """Compile ``expression`` (``None`` or blank: no filter) for the given variables."""
    if expression is None or not expression.strip():
        return None
    try:
        return Filter(expression, variables)
    except RecursionError as exc:
        raise CelError("invalid filter: expression too deeply nested") from exc


__all__ = ["CelError", "Filter", "compile_filter"]
