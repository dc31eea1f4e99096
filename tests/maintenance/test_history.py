"""History with a limit per reference (catalog/files.py: RetainedHistory), as GC uses it."""

from __future__ import annotations

from datetime import timedelta

from lakehouse.catalog.files import HistoryLimit, RetainedHistory, limited_history_contents
from lakehouse.catalog.model import Reference
from lakehouse.client import Lakehouse
from lakehouse.maintenance._common import utcnow

from .conftest import batch, make_table


def _locations(lh: Lakehouse, limits: dict[str, HistoryLimit], order: list[str]) -> set[str]:
    refs = {r.name: r for r in lh.references()}
    return {
        content.metadata_location  # type: ignore[union-attr]
        for _, _, content in limited_history_contents(
            lh.store, lambda r: limits[r.name], [refs[n] for n in order]
        )
    }


def _at(lh: Lakehouse, spec: str) -> str:
    return lh.table("bronze.orders", spec).metadata_location


def test_keep_commits_yields_exactly_the_states_of_those_commits(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 5)
    found = _locations(lh, {"main": HistoryLimit(commits=3)}, ["main"])
    assert found == {_at(lh, f"main~{i}") for i in range(3)}
    everything = _locations(lh, {"main": HistoryLimit()}, ["main"])
    assert {_at(lh, f"main~{i}") for i in range(6)} <= everything


def test_a_cutoff_keeps_the_state_current_at_the_cutoff(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 3)
    later = utcnow() + timedelta(hours=1)
    found = _locations(lh, {"main": HistoryLimit(cutoff=later)}, ["main"])
    assert found == {_at(lh, "main")}  # every commit is older: only the head's state


def test_a_longer_limit_walks_past_where_a_shorter_one_stopped(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 5)
    lh.create_tag("t", "main")
    limits = {"t": HistoryLimit(commits=1), "main": HistoryLimit(commits=4)}
    # t (same head, shorter limit) first: main must still reach 4 commits back
    found = _locations(lh, limits, ["t", "main"])
    assert found == {_at(lh, f"main~{i}") for i in range(4)}


def test_branches_keep_their_own_history(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 3)
    lh.create_branch("b", "main~1")
    lh.branch("b").table("bronze.orders").append(batch(500, 1))
    lh.table("bronze.orders").append(batch(600, 1))
    limits = {"main": HistoryLimit(commits=1), "b": HistoryLimit(commits=2)}
    found = _locations(lh, limits, ["main", "b"])
    assert found == {_at(lh, "main"), _at(lh, "b"), _at(lh, "b~1")}


def test_state_is_remembered_across_calls(lh: Lakehouse) -> None:
    make_table(lh, "bronze.orders", 3)
    history = RetainedHistory(lh.store, lambda r: HistoryLimit())
    main: Reference = lh.store.get_reference("main")
    first = list(history.contents(main))
    assert first
    assert list(history.contents(main)) == []  # nothing new
    lh.table("bronze.orders").append(batch(99, 1))
    moved = lh.store.get_reference("main")
    again = list(history.contents(moved))
    assert [c.metadata_location for _, _, c in again] == [_at(lh, "main")]  # type: ignore[union-attr]
