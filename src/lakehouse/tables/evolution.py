"""Three-way merge of a table's schema, partition spec and sort order.

Used by content merges (:mod:`lakehouse.tables.merge`): when one side of a merge evolved
the table and the other only wrote data, the evolution is applied to the merged table —
but only when the data files the other side wrote since the common ancestor read under
the new definition. Iceberg reads data files by field id, so a schema change is safe for
files written under the ancestor's schema when every column keeps a type the old values
promote to (``int`` → ``long``, ``float`` → ``double``, a wider decimal), no column
becomes required, and every added column is optional (a file without it reads NULL).
Renames, drops, reordering and doc changes are always readable.

* one side changed, the other did not → the change, if the other side's files read
  under it (else a conflict naming the column);
* both sides made the same change → one change;
* both sides changed differently → a conflict;
* a side that assigned new column ids (or schema, spec or sort order ids) the other side
  also assigned is a conflict: one id would name two columns.

Partition specs and sort orders follow the same rules; a spec or order the source added
keeps its id, so the source's data files keep naming the spec they were written with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyiceberg.schema import Schema
    from pyiceberg.table.metadata import TableMetadata
    from pyiceberg.table.update import TableUpdate
    from pyiceberg.types import NestedField


def unreadable(old: Schema, new: Schema) -> str | None:
    """Why a data file written under ``old`` cannot be read under ``new`` (``None``: it can)."""
    from pyiceberg.exceptions import ResolveError
    from pyiceberg.schema import index_by_id, promote
    from pyiceberg.types import PrimitiveType

    before = index_by_id(old)
    after = index_by_id(new)
    for field_id, now in sorted(after.items()):
        name = new.find_column_name(field_id) or now.name
        was: NestedField | None = before.get(field_id)
        if was is None:
            if now.required and now.initial_default is None:
                return f"column {name} was added as required, and older data files lack it"
            continue
        if now.required and not was.required:
            return f"column {name} became required, and older data files may hold NULLs in it"
        if was.field_type == now.field_type:
            continue
        if not (
            isinstance(was.field_type, PrimitiveType) and isinstance(now.field_type, PrimitiveType)
        ):
            if type(was.field_type) is not type(now.field_type):
                return f"column {name} changed from {was.field_type} to {now.field_type}"
            continue  # a struct, list or map: its fields are checked by their own ids
        try:
            promote(was.field_type, now.field_type)
        except ResolveError:
            return f"column {name} changed from {was.field_type} to {now.field_type}"
    return None


@dataclass
class Evolution:
    """The definition updates the merged table takes from the source, described."""

    updates: list[TableUpdate] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)


def merge_evolution(
    ancestor: TableMetadata, target: TableMetadata, source: TableMetadata
) -> Evolution | str:
    """The source's schema, spec and sort-order changes to apply on ``target``, or a conflict.

    Data files each side wrote since ``ancestor`` were written under the ancestor's
    definitions (a side's own later files are its own business): the other side's change
    must read them.
    """
    from pyiceberg.table.update import (
        AddPartitionSpecUpdate,
        AddSchemaUpdate,
        AddSortOrderUpdate,
        SetCurrentSchemaUpdate,
        SetDefaultSortOrderUpdate,
        SetDefaultSpecUpdate,
    )

    out = Evolution()
    base, ours, theirs = ancestor.schema(), target.schema(), source.schema()
    if theirs != base and theirs != ours:
        if ours != base:
            return "both sides changed the schema, differently"
        if target.last_column_id != ancestor.last_column_id or _ids(target.schemas) != _ids(
            ancestor.schemas
        ):
            return "the target assigned new column or schema ids since the common ancestor"
        reason = unreadable(base, theirs)
        if reason is not None:
            return f"the source changed the schema, unreadable for the target's new files: {reason}"
        if theirs.schema_id not in _ids(target.schemas):
            out.updates.append(AddSchemaUpdate(schema=theirs))  # type: ignore[call-arg]
        out.updates.append(SetCurrentSchemaUpdate(schema_id=theirs.schema_id))
        out.changes.append("the source's schema change")
    elif ours != base and theirs == base:
        reason = unreadable(base, ours)
        if reason is not None:
            return f"the target changed the schema, unreadable for the source's new files: {reason}"

    spec, their_spec, our_spec = ancestor.spec(), source.spec(), target.spec()
    if their_spec != spec and their_spec != our_spec:
        if our_spec != spec:
            return "both sides changed the partition spec, differently"
        if _ids(target.partition_specs, "spec_id") != _ids(ancestor.partition_specs, "spec_id"):
            return "the target added partition specs since the common ancestor"
        if their_spec.spec_id not in _ids(target.partition_specs, "spec_id"):
            out.updates.append(AddPartitionSpecUpdate(spec=their_spec))
        out.updates.append(SetDefaultSpecUpdate(spec_id=their_spec.spec_id))
        out.changes.append("the source's partition spec")

    order = ancestor.sort_order_by_id(ancestor.default_sort_order_id)
    their_order = source.sort_order_by_id(source.default_sort_order_id)
    our_order = target.sort_order_by_id(target.default_sort_order_id)
    if their_order != order and their_order != our_order and their_order is not None:
        if our_order != order:
            return "both sides changed the sort order, differently"
        if _ids(target.sort_orders, "order_id") != _ids(ancestor.sort_orders, "order_id"):
            return "the target added sort orders since the common ancestor"
        if their_order.order_id not in _ids(target.sort_orders, "order_id"):
            out.updates.append(AddSortOrderUpdate(sort_order=their_order))
        out.updates.append(SetDefaultSortOrderUpdate(sort_order_id=their_order.order_id))
        out.changes.append("the source's sort order")
    return out


def _ids(items: Iterable[Any], attribute: str = "schema_id") -> list[int]:
    return sorted(int(getattr(i, attribute)) for i in items)


__all__ = ["Evolution", "merge_evolution", "unreadable"]
