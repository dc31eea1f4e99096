"""The package's rooms, from the ground up: every import points down.

A room is a sub-package or a top-level module of ``lakehouse``. Each one may import the
rooms below it and never one above it, so no change to a lower room has to know about a
higher one and no import cycle can form. Imports inside functions and under
``TYPE_CHECKING`` count too: a late import is still an arrow. Rooms on the same floor may
import each other in one direction only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lakehouse

PACKAGE = Path(lakehouse.__file__).parent

#: Floors, from the ground up. A new room must be placed here before it can be imported.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("_errors",),
    ("keys",),
    ("errors",),
    ("tables", "storage", "tpch"),
    ("catalog",),
    ("config", "views"),
    ("session", "observability"),
    ("control", "query", "serving"),
    ("ingest",),
    ("pipelines", "maintenance"),
    ("client",),
    ("__init__",),
    ("server", "ops"),
    ("console", "cli", "demo", "__main__"),
)
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}


def room_of(module: str) -> str:
    """``lakehouse.catalog.model`` -> ``catalog``; ``lakehouse`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every ``lakehouse…`` module the file imports, wherever the import statement is."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # ``from lakehouse import console`` imports the room ``console``
            if target == "lakehouse":
                found.update(
                    f"lakehouse.{alias.name}"
                    for alias in node.names
                    if (PACKAGE / alias.name).is_dir() or (PACKAGE / f"{alias.name}.py").is_file()
                )
    return {m for m in found if m == "lakehouse" or m.startswith("lakehouse.")}


def arrows() -> list[tuple[str, str, str]]:
    """(importing module, its room, imported room) for every import across rooms."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        room = room_of(module) if path.name != "__init__.py" or "." in module else "__init__"
        for target in imported_modules(path):
            to = room_of(target)
            # ``from lakehouse import __version__`` reads the package's own constant
            if to != room and not (to == "__init__" and target == "lakehouse"):
                out.append((module, room, to))
    return out


def test_every_room_has_a_floor() -> None:
    rooms = {room_of(module_name(p)) for p in PACKAGE.rglob("*.py")} - {"lakehouse"}
    assert sorted(rooms - FLOOR.keys()) == []


def test_every_import_points_down() -> None:
    upward = [
        f"{module} ({room}, floor {FLOOR[room]}) imports {to} (floor {FLOOR[to]})"
        for module, room, to in arrows()
        if FLOOR[to] > FLOOR[room]
    ]
    assert upward == []


def test_rooms_on_one_floor_import_each_other_one_way_only() -> None:
    pairs = {(room, to) for _, room, to in arrows() if FLOOR[room] == FLOOR[to]}
    assert sorted(p for p in pairs if (p[1], p[0]) in pairs) == []


@pytest.mark.parametrize(
    ("room", "never"),
    [
        ("errors", "catalog"),  # errors carry keys and conflicts from lakehouse.keys
        ("server", "console"),  # the CLI hands the console to the server (AppExtension)
        ("ingest", "ops"),  # the DR pause flag and CDC offsets live in lakehouse.control
        ("pipelines", "ops"),
    ],
)
def test_known_temptations_stay_resisted(room: str, never: str) -> None:
    assert [m for m, r, to in arrows() if r == room and to == never] == []
