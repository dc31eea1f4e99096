"""Content keys and the conflicts named by them: the vocabulary below the catalog.

:mod:`lakehouse.catalog.model` re-exports these types (import them from there); they
live here, below :mod:`lakehouse.errors`, because the catalog's errors carry them
(:class:`~lakehouse.errors.ContentNotFoundError` keeps the key,
:class:`~lakehouse.errors.CommitConflictError` the conflicts).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lakehouse._errors import InvalidInputError

_MAX_KEY_ELEMENTS = 20
#: Path segments refused in key elements (``..``, ``../../evil``, ``a/../b``): they would
#: name folders outside the table's own in a location derived from the key.
_RELATIVE_SEGMENTS = frozenset({".", ".."})
_MAX_ELEMENT_LENGTH = 256
#: Separator used for dots inside an element in the single-string ("path") form of a key.
KEY_DOT_ESCAPE = "\u001d"


@dataclass(frozen=True, order=True)
class ContentKey:
    """The name of a content object: namespace elements followed by the object name."""

    elements: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", tuple(self.elements))
        if not 1 <= len(self.elements) <= _MAX_KEY_ELEMENTS:
            raise InvalidInputError(
                f"invalid key {self.elements!r}: 1 to {_MAX_KEY_ELEMENTS} elements"
            )
        for element in self.elements:
            if (
                not isinstance(element, str)
                or not element
                or len(element) > _MAX_ELEMENT_LENGTH
                or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in element)
            ):
                raise InvalidInputError(
                    f"invalid key element {element!r}: non-empty text without control characters"
                )
            if _RELATIVE_SEGMENTS.intersection(element.split("/")):
                raise InvalidInputError(
                    f"invalid key element {element[:200]!r}: '.' and '..' are not allowed "
                    "(neither as an element nor as a '/'-separated part of one)"
                )

    @classmethod
    def of(cls, *elements: str) -> ContentKey:
        """``ContentKey.of("bronze", "orders")``."""
        return cls(tuple(elements))

    @classmethod
    def parse(cls, text: str) -> ContentKey:
        """Parse the dotted form (``bronze.orders``); ``\\u001d`` stands for a dot in an element."""
        if not isinstance(text, str) or not text:
            raise InvalidInputError("empty content key")
        return cls(tuple(part.replace(KEY_DOT_ESCAPE, ".") for part in text.split(".")))

    def to_path_string(self) -> str:
        """Nessie's single-string form, reversible by :meth:`parse`."""
        return ".".join(e.replace(".", KEY_DOT_ESCAPE) for e in self.elements)

    @property
    def namespace(self) -> ContentKey | None:
        """The key of the enclosing namespace, or ``None`` at top level."""
        return ContentKey(self.elements[:-1]) if len(self.elements) > 1 else None

    @property
    def name(self) -> str:
        """The last element."""
        return self.elements[-1]

    def is_prefix_of(self, other: ContentKey) -> bool:
        """True if ``other`` lies inside this key (namespace containment)."""
        n = len(self.elements)
        return len(other.elements) > n and other.elements[:n] == self.elements

    def __str__(self) -> str:
        return ".".join(self.elements)

    def to_json(self) -> dict[str, Any]:
        """Nessie v2 JSON form."""
        return {"elements": list(self.elements)}


class ConflictType(StrEnum):
    """Why a key conflicts (Nessie's names)."""

    UNKNOWN = "UNKNOWN"
    KEY_EXISTS = "KEY_EXISTS"
    KEY_DOES_NOT_EXIST = "KEY_DOES_NOT_EXIST"
    PAYLOAD_DIFFERS = "PAYLOAD_DIFFERS"
    CONTENT_ID_DIFFERS = "CONTENT_ID_DIFFERS"
    VALUE_DIFFERS = "VALUE_DIFFERS"
    NAMESPACE_ABSENT = "NAMESPACE_ABSENT"
    NAMESPACE_NOT_EMPTY = "NAMESPACE_NOT_EMPTY"
    NOT_A_NAMESPACE = "NOT_A_NAMESPACE"
    UNEXPECTED_HASH = "UNEXPECTED_HASH"


@dataclass(frozen=True)
class Conflict:
    """One conflicting key and why."""

    key: ContentKey | None
    type: ConflictType
    message: str

    def __str__(self) -> str:
        return f"{self.type.value} on '{self.key}': {self.message}" if self.key else self.message

    def to_json(self) -> dict[str, Any]:
        """Nessie v2 JSON form."""
        out: dict[str, Any] = {"conflictType": self.type.value, "message": self.message}
        if self.key is not None:
            out["key"] = self.key.to_json()
        return out


__all__ = ["KEY_DOT_ESCAPE", "Conflict", "ConflictType", "ContentKey"]
