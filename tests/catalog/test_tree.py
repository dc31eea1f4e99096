"""The content-addressed key tree behaves like a dict, canonically."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from lakehouse.catalog import tree as tree_mod
from lakehouse.catalog.tree import EMPTY_NODE, EMPTY_TREE, Node, TreeWriter, Value


class MemoryNodes:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {EMPTY_TREE: EMPTY_NODE}
        self.reads = 0

    def get_nodes(self, hashes: Sequence[str]) -> dict[str, Node]:
        self.reads += len(hashes)
        return {h: self.nodes[h] for h in hashes}

    def save(self, writer: TreeWriter) -> None:
        for h, data in writer.new_nodes.items():
            self.nodes[h] = Node.decode(data)


def apply(source: MemoryNodes, root: str, changes: dict[str, Value | None]) -> str:
    writer = TreeWriter(source)
    new_root = writer.apply(root, changes)
    source.save(writer)
    return new_root


@pytest.fixture(params=[2, 4, 64])
def leaf_max(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(tree_mod, "LEAF_MAX", request.param)
    return int(request.param)


def test_random_changes_match_a_dict_and_the_shape_is_canonical(leaf_max: int) -> None:
    rng = random.Random(leaf_max)
    source = MemoryNodes()
    model: dict[str, Value] = {}
    root = EMPTY_TREE
    history = []
    for step in range(150):
        changes: dict[str, Value | None] = {}
        for _ in range(rng.randint(1, 6)):
            key = f"ns.t{rng.randint(0, 80)}"
            changes[key] = None if rng.random() < 0.3 else {"type": "X", "v": step}
        root = apply(source, root, changes)
        for k, v in changes.items():
            if v is None:
                model.pop(k, None)
            else:
                model[k] = v
        history.append((root, dict(model)))
        reader = TreeWriter(source)
        assert dict(reader.items(root)) == model
        assert reader.count(root) == len(model)
        probe = [f"ns.t{i}" for i in range(0, 90, 7)]
        assert reader.lookup_many(root, probe) == {k: model[k] for k in probe if k in model}
    # canonical: the same contents built in another order give the same root hash
    rebuilt = apply(MemoryNodes(), EMPTY_TREE, dict(sorted(model.items(), reverse=True)))
    assert rebuilt == root
    # diff between any two versions is exactly the dict difference
    reader = TreeWriter(source)
    for (a, ma), (b, mb) in zip(history[::10], history[5::10], strict=False):
        got = {k: (va, vb) for k, va, vb in reader.diff(a, b)}
        want = {k: (ma.get(k), mb.get(k)) for k in ma.keys() | mb.keys() if ma.get(k) != mb.get(k)}
        assert got == want


def test_deleting_everything_returns_the_empty_tree(leaf_max: int) -> None:
    source = MemoryNodes()
    keys = {f"k{i}": {"v": i} for i in range(50)}
    root = apply(source, EMPTY_TREE, dict(keys))
    assert root != EMPTY_TREE
    assert apply(source, root, dict.fromkeys(keys)) == EMPTY_TREE


def test_a_change_rewrites_only_its_path() -> None:
    source = MemoryNodes()
    root = apply(source, EMPTY_TREE, {f"k{i}": {"v": i} for i in range(5000)})
    writer = TreeWriter(source)
    writer.apply(root, {"k1": {"v": "new"}})
    depth = 0
    node = source.nodes[root]
    while not node.is_leaf:
        assert node.children is not None
        node = source.nodes[next(iter(node.children.values()))[0]]
        depth += 1
    assert len(writer.new_nodes) == depth + 1  # one node per level, nothing else
