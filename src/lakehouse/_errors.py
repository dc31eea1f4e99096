"""The root of the error tree and the catalog's input error; import them from `lakehouse.errors`.

They sit below :mod:`lakehouse.keys`, whose content keys raise :class:`InvalidInputError`
while :mod:`lakehouse.errors` names keys and conflicts in the errors it defines; the tree
is documented in :mod:`lakehouse.errors`.
"""

from __future__ import annotations


class LakehouseError(Exception):
    """Root of every error raised by Lakehouse."""

    #: Whether retrying the same call may succeed.
    transient: bool = False


class CatalogError(LakehouseError):
    """Base of versioned-catalog errors."""


class InvalidInputError(CatalogError, ValueError):
    """A name, key, hash or reference spec is malformed."""


__all__ = ["CatalogError", "InvalidInputError", "LakehouseError"]
