"""A persistent, content-addressed key index: one immutable tree per commit.

Each commit points at the root of a hash-array-mapped trie. A key's position is
decided by the hex digits of ``sha256(key)``: a subtree holding at most
:data:`LEAF_MAX` keys is a leaf listing them; a larger one is an inner node with
up to 16 children, one per hex digit at that depth. The shape therefore depends
only on the set of keys (the tree is canonical), equal subtrees have equal hashes,
and:

* a lookup reads one node per level — independent of history length;
* a commit writes the nodes on the paths of the keys it changes — independent of
  the catalog's size beyond a logarithmic depth;
* a diff skips every subtree whose hash is shared — proportional to what changed.

Nodes are immutable, so any process may cache them forever. Storage is abstracted
by :class:`NodeSource`; :mod:`lakehouse.catalog.sql_store` keeps them in a table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

#: Largest number of keys in a leaf.
LEAF_MAX = 64
_MAX_DEPTH = 64  # hex digits of sha256

#: Content as stored in a leaf: Nessie's JSON form of the content object.
Value = dict[str, Any]


class Node:
    """A parsed tree node (leaf: ``entries``; inner: ``children``)."""

    __slots__ = ("children", "count", "entries")

    def __init__(
        self,
        entries: dict[str, Value] | None = None,
        children: dict[str, tuple[str, int]] | None = None,
    ) -> None:
        self.entries = entries
        self.children = children
        if entries is not None:
            self.count = len(entries)
        else:
            assert children is not None
            self.count = sum(c for _, c in children.values())

    @property
    def is_leaf(self) -> bool:
        """True for a leaf node."""
        return self.entries is not None

    def encode(self) -> bytes:
        """Canonical serialized form (its sha256 is the node's hash)."""
        if self.entries is not None:
            body: Any = {"L": sorted(self.entries.items())}
        else:
            assert self.children is not None
            body = {"I": sorted((k, h, c) for k, (h, c) in self.children.items())}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @staticmethod
    def decode(data: bytes) -> Node:
        """Parse :meth:`encode`'s output."""
        body = json.loads(data)
        if "L" in body:
            return Node(entries={k: v for k, v in body["L"]})
        return Node(children={k: (h, c) for k, h, c in body["I"]})


EMPTY_NODE = Node(entries={})
EMPTY_DATA = EMPTY_NODE.encode()
EMPTY_TREE = hashlib.sha256(EMPTY_DATA).hexdigest()


@lru_cache(maxsize=200_000)
def key_hash(key: str) -> str:
    """Hex sha256 of a key's path string: its address in the trie."""
    return hashlib.sha256(key.encode()).hexdigest()


class NodeSource(Protocol):
    """Where nodes are read from."""

    def get_nodes(self, hashes: Sequence[str]) -> dict[str, Node]:
        """Return the nodes for ``hashes`` (every hash must exist)."""
        ...


class TreeReader:
    """Read-only operations over trees stored in a :class:`NodeSource`."""

    def __init__(self, source: NodeSource) -> None:
        self.source = source

    def node(self, hash_: str) -> Node:
        """One node."""
        return self.source.get_nodes([hash_])[hash_]

    def lookup_many(self, root: str, keys: Sequence[str]) -> dict[str, Value]:
        """Values of ``keys`` under ``root``; absent keys are left out."""
        found: dict[str, Value] = {}
        frontier: dict[str, list[str]] = {root: list(dict.fromkeys(keys))}
        depth = 0
        while frontier:
            nodes = self.source.get_nodes(list(frontier))
            next_frontier: dict[str, list[str]] = {}
            for h, wanted in frontier.items():
                node = nodes[h]
                if node.entries is not None:
                    for k in wanted:
                        if k in node.entries:
                            found[k] = node.entries[k]
                    continue
                assert node.children is not None
                for k in wanted:
                    child = node.children.get(key_hash(k)[depth])
                    if child is not None:
                        next_frontier.setdefault(child[0], []).append(k)
            frontier = next_frontier
            depth += 1
        return found

    def items(self, root: str) -> Iterator[tuple[str, Value]]:
        """Every (key, value) under ``root``, level by level (unordered)."""
        return self.items_many([root])

    def items_many(self, roots: Sequence[str]) -> Iterator[tuple[str, Value]]:
        """Every (key, value) under each of ``roots``: one node fetch per level."""
        frontier = list(dict.fromkeys(roots))
        while frontier:
            nodes = self.source.get_nodes(frontier)
            next_frontier: list[str] = []
            for h in frontier:
                node = nodes[h]
                if node.entries is not None:
                    yield from node.entries.items()
                else:
                    assert node.children is not None
                    next_frontier.extend(c for c, _ in node.children.values())
            frontier = list(dict.fromkeys(next_frontier))

    def count(self, root: str) -> int:
        """Number of keys under ``root``."""
        return self.node(root).count

    def diff(self, a: str, b: str) -> Iterator[tuple[str, Value | None, Value | None]]:
        """Keys whose values differ between trees ``a`` and ``b``: (key, in a, in b).

        Walks both trees together level by level, one node fetch per level, and never
        enters a subtree whose hash both sides share.
        """
        pairs = [(a, b)] if a != b else []
        only_a: list[str] = []
        only_b: list[str] = []
        while pairs:
            nodes = self.source.get_nodes(list({h for pair in pairs for h in pair}))
            next_pairs: list[tuple[str, str]] = []
            for x, y in pairs:
                nx, ny = nodes[x], nodes[y]
                if nx.children is not None and ny.children is not None:
                    for digit in nx.children.keys() | ny.children.keys():
                        cx, cy = nx.children.get(digit), ny.children.get(digit)
                        if cx is not None and cy is not None:
                            if cx[0] != cy[0]:
                                next_pairs.append((cx[0], cy[0]))
                        elif cx is not None:
                            only_a.append(cx[0])
                        elif cy is not None:
                            only_b.append(cy[0])
                    continue
                left = nx.entries if nx.entries is not None else dict(self.items(x))
                right = ny.entries if ny.entries is not None else dict(self.items(y))
                for k in left.keys() | right.keys():
                    va, vb = left.get(k), right.get(k)
                    if va != vb:
                        yield k, va, vb
            pairs = next_pairs
        yield from ((k, v, None) for k, v in self.items_many(only_a))
        yield from ((k, None, v) for k, v in self.items_many(only_b))


class TreeWriter(TreeReader):
    """Builds new trees; the nodes it creates wait in :attr:`new_nodes` until stored."""

    def __init__(self, source: NodeSource) -> None:
        super().__init__(_Overlay(source))
        self._overlay: _Overlay = self.source  # type: ignore[assignment]

    @property
    def new_nodes(self) -> dict[str, bytes]:
        """Encoded nodes created by this writer and not yet stored, by hash."""
        return self._overlay.new_data

    def created(self, hashes: Iterable[str]) -> dict[str, Node]:
        """The parsed nodes this writer created, for ``hashes``."""
        return {h: self._overlay.new[h] for h in hashes}

    def apply(self, root: str, changes: Mapping[str, Value | None]) -> str:
        """The root of ``root`` with ``changes`` applied (``None`` deletes a key)."""
        if not changes:
            return root
        items = [(k, key_hash(k), v) for k, v in changes.items()]
        new_root, _ = self._apply(root, 0, items)
        return new_root

    def _store(self, node: Node) -> str:
        return self._overlay.add(node)

    def _apply(
        self, h: str, depth: int, changes: list[tuple[str, str, Value | None]]
    ) -> tuple[str, int]:
        node = self.node(h)
        if node.entries is not None:
            entries = dict(node.entries)
            for k, _, v in changes:
                if v is None:
                    entries.pop(k, None)
                else:
                    entries[k] = v
            return self._build(entries, depth)
        assert node.children is not None
        children = dict(node.children)
        groups: dict[str, list[tuple[str, str, Value | None]]] = {}
        for change in changes:
            groups.setdefault(change[1][depth], []).append(change)
        for digit, group in groups.items():
            child = children.get(digit)
            if child is not None:
                new_child = self._apply(child[0], depth + 1, group)
            else:
                new_child = self._build({k: v for k, _, v in group if v is not None}, depth + 1)
            if new_child[1] == 0:
                children.pop(digit, None)
            else:
                children[digit] = new_child
        total = sum(c for _, c in children.values())
        if total <= LEAF_MAX:
            entries = {}
            for child_hash, _ in children.values():
                entries.update(self.items(child_hash))
            return self._store(Node(entries=entries)), total
        return self._store(Node(children=children)), total

    def _build(self, entries: dict[str, Value], depth: int) -> tuple[str, int]:
        if len(entries) <= LEAF_MAX or depth >= _MAX_DEPTH:
            return self._store(Node(entries=entries)), len(entries)
        groups: dict[str, dict[str, Value]] = {}
        for k, v in entries.items():
            groups.setdefault(key_hash(k)[depth], {})[k] = v
        children = {digit: self._build(group, depth + 1) for digit, group in groups.items()}
        return self._store(Node(children=children)), len(entries)


class _Overlay:
    """A NodeSource that sees freshly built nodes before they are stored."""

    def __init__(self, base: NodeSource) -> None:
        self.base = base
        self.new: dict[str, Node] = {}
        self.new_data: dict[str, bytes] = {}

    def add(self, node: Node) -> str:
        data = node.encode()
        h = hashlib.sha256(data).hexdigest()
        if h not in self.new:
            self.new[h] = node
            self.new_data[h] = data
        return h

    def get_nodes(self, hashes: Sequence[str]) -> dict[str, Node]:
        out = {h: self.new[h] for h in hashes if h in self.new}
        missing = [h for h in hashes if h not in out]
        if missing:
            out.update(self.base.get_nodes(missing))
        return out
