"""Nessie's path syntaxes and the CEL subset, without a server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import lakehouse.server
from lakehouse.catalog.model import ContentKey, RefSpec
from lakehouse.errors import InvalidInputError
from lakehouse.server import cel, wire

H = "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("main", RefSpec("main")),
        ("-", RefSpec("trunk")),
        (f"-@{H}", RefSpec("trunk", H)),
        (f"main@{H}", RefSpec("main", H)),
        (f"@{H}", RefSpec(None, H)),
        (f"DETACHED@{H}", RefSpec(None, H)),
        ("feature/x@", RefSpec("feature/x")),
        ("main~2", RefSpec("main", None, (("~", 2),))),
        ("feature/x@~2", RefSpec("feature/x", None, (("~", 2),))),
        (f"main@{H}^2", RefSpec("main", H, (("^", 2),))),
        (
            "main*2026-01-02T03:04:05Z",
            RefSpec("main", None, (("*", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),)),
        ),
    ],
)
def test_reference_path_elements(text: str, expected: RefSpec) -> None:
    assert wire.parse_ref_path(text, "trunk") == expected


@pytest.mark.parametrize(
    "text", ["", "@", "DETACHED", "main@xyz", "main@@abc", "1main", "main~", "a..b", "~1"]
)
def test_invalid_reference_path_elements(text: str) -> None:
    with pytest.raises(InvalidInputError):
        wire.parse_ref_path(text, "main")


def test_hashes_with_relative_parts_in_bodies() -> None:
    assert wire.ref_spec("main", None, "x") == RefSpec("main")
    assert wire.ref_spec(None, None, "trunk") == RefSpec("trunk")
    assert wire.ref_spec("main", "~1", "x") == RefSpec("main", None, (("~", 1),))
    assert wire.ref_spec("DETACHED", H + "~1", "x") == RefSpec(None, H, (("~", 1),))
    for bad in ["xyz", "main", "@" + H]:
        with pytest.raises(InvalidInputError):
            wire.ref_spec("main", bad, "x")
    with pytest.raises(InvalidInputError, match="Hash must contain a starting commit ID"):
        wire.ref_spec("DETACHED", "~1", "x")


@pytest.mark.parametrize(
    ("text", "elements"),
    [
        ("a", ("a",)),
        ("a.b.c", ("a", "b", "c")),
        ("a\u001db.c", ("a.b", "c")),
        ("a\u0000b.c", ("a.b", "c")),
        ("a/b.c d", ("a/b", "c d")),
        (".a*.b.c", ("a.b", "c")),
        (".a*{b*}c.*[x**", ("a/b\\c", "%x*")),
    ],
)
def test_content_key_path_strings(text: str, elements: tuple[str, ...]) -> None:
    key = wire.key_from_path(text)
    assert key == ContentKey(elements)
    assert wire.key_from_path(wire.key_to_path(key)) == key


@pytest.mark.parametrize("text", ["", "a..b", "a.", ".a*", ".a*x", "\u0001"])
def test_invalid_content_key_path_strings(text: str) -> None:
    with pytest.raises(InvalidInputError):
        wire.key_from_path(text)


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    assert wire.decode_token(wire.encode_token("bronze\u001dx.y")) == "bronze\u001dx.y"
    with pytest.raises(InvalidInputError):
        wire.decode_token("zz")


ENV = {
    "commit": {
        "message": "load orders",
        "author": "ana",
        "properties": {"job": "ingest"},
        "commitTime": datetime(2026, 1, 2, tzinfo=UTC),
    },
    "operations": [
        {
            "type": "PUT",
            "name": "orders",
            "key": "bronze.orders",
            "keyElements": ["bronze", "orders"],
        },
        {"type": "DELETE", "name": "old", "key": "bronze.old", "keyElements": ["bronze", "old"]},
    ],
}
VARS = frozenset({"commit", "operations"})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("commit.author == 'ana'", True),
        ('commit.author != "ana"', False),
        ("commit.message.startsWith('load') && commit.message.endsWith('orders')", True),
        ("commit.message.contains('ord') || false", True),
        ("commit.message.matches('^l.*s$')", True),
        ("commit.properties['job'] == 'ingest'", True),
        ("'job' in commit.properties", True),
        ("has(commit.properties.job) && !has(commit.properties.other)", True),
        ("commit.author in ['bob', 'ana']", True),
        ("operations.exists(op, op.type == 'DELETE')", True),
        ("operations.all(op, op.keyElements[0] == 'bronze')", True),
        ("operations.exists_one(op, op.name.startsWith('o'))", False),
        ("size(operations.filter(op, op.type == 'PUT')) == 1", True),
        ("operations.map(op, op.name) == ['orders', 'old']", True),
        ("timestamp(commit.commitTime) > timestamp('2026-01-01T00:00:00Z')", True),
        ("commit.commitTime < timestamp('2026-01-01T00:00:00Z')", False),
        ("size(commit.message) > 5 ? true : false", True),
        ("1 + 2 * 3 == 7 && 7 / 2 == 3 && 7 % 4 == 3 && -1 < 0", True),
        ("(commit.author == 'x' || commit.author == 'ana') && size(operations) == 2", True),
        ("1 == 'a'", False),
    ],
)
def test_cel_subset(expression: str, expected: bool) -> None:
    compiled = cel.compile_filter(expression, VARS)
    assert compiled is not None and compiled(ENV) is expected


@pytest.mark.parametrize(
    "expression",
    [
        "commit.author ==",
        "unknown == 1",
        "commit.author.explode()",
        "launch(commit)",
        "operations.exists(1, true)",
        "'unterminated",
        "commit.author = 'a'",
        "has(commit)",
        "x" * 5000,
    ],
)
def test_cel_refuses_what_it_cannot_compile(expression: str) -> None:
    with pytest.raises(InvalidInputError):
        cel.compile_filter(expression, VARS)


@pytest.mark.parametrize(
    "expression",
    [
        "commit.nope == 1",
        "commit.author",
        "commit.author < 1",
        "commit.properties['missing'] == 'x'",
        "1 / 0 == 1",
        "commit.message.startsWith(1)",
        "!commit.author",
        "operations[5].name == 'x'",
    ],
)
def test_cel_errors_on_values_are_input_errors(expression: str) -> None:
    compiled = cel.compile_filter(expression, VARS)
    assert compiled is not None
    with pytest.raises(InvalidInputError):
        compiled(ENV)


def test_blank_filters_are_no_filters() -> None:
    assert cel.compile_filter(None, VARS) is None
    assert cel.compile_filter("  ", VARS) is None


def test_the_public_surface_is_pinned() -> None:
    assert lakehouse.server.__all__ == ["ServerSettings", "create_app", "run"]
