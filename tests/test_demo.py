"""`python -m lakehouse.demo` runs end to end and leaves the promised state behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lakehouse.client import connect
from lakehouse.demo import MARKER, TAG_CHANGES, TAG_INITIAL, main
from lakehouse.ops.check import check
from lakehouse.pipelines.runner import RUN_STATUS

#: Small, so the whole demo (four pipeline runs) takes seconds.
SCALE_FACTOR = "0.01"


def test_demo_in_a_given_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # as in a log: 120 columns, tables unwrapped
    home = tmp_path / "demo"
    assert main(["--home", str(home), "--scale-factor", SCALE_FACTOR]) == 0
    out = capsys.readouterr().out
    for shown in (
        "first load",
        "published:",
        "change batch",
        "ingestion on main while a run is in flight",
        "ingested on main: bronze.customer",
        "the publish, per table",
        "kept: the run did not change it",
        "merged by content (appends on the source",
        "files checked, no problems",
        "failed checks",
        "-> unchanged",
        "gold.q1_pricing_summary",
        "gold.q3_shipping_priority",
        "gold.revenue_by_nation_month",
        "lakehouse log",
        "where to look next",
        "Done in",
    ):
        assert shown in out, shown

    with connect(home) as lh:
        names = {r.name for r in lh.references()}
        assert {"main", TAG_INITIAL, TAG_CHANGES} <= names
        # The rejected run's branch is kept; main still is where the concurrent step left it:
        # the run's merge, then the ingestion that landed on main while it was in flight.
        kept = [n for n in names if n.startswith("run/tpch/")]
        assert len(kept) == 1
        assert lh.log(kept[0], limit=1)[0].meta.properties[RUN_STATUS] == "failed"
        merge = lh.log("main", limit=1)[0]
        assert merge.meta.properties[RUN_STATUS] == "success"
        before_publish = merge.meta.parent_hashes[0]
        log = lh.log(f"@{before_publish}", limit=None)
        ingested = log[: [e.hash for e in log].index(lh.resolve(TAG_CHANGES).hash)]
        assert ingested and all(RUN_STATUS not in e.meta.properties for e in ingested)
        meanwhile = [str(e.key) for e in lh.diff(TAG_CHANGES, f"@{before_publish}")]
        assert meanwhile == ["bronze.customer", "bronze.lineitem", "bronze.orders"]
        # main holds both what was ingested on it meanwhile and the run's new orders: the
        # bronze tables both sides ingested into merged by content
        late, on_main = home / "batches" / "late-orders", home / "batches" / "on-main"
        new_orders = csv_rows(late / "orders_changes.csv")
        new_lineitems = csv_rows(late / "lineitem_changes.csv")
        new_customers = csv_rows(on_main / "customer.csv")
        main_orders = csv_rows(on_main / "orders_changes.csv")
        main_lineitems = csv_rows(on_main / "lineitem_changes.csv")
        assert min(new_orders, new_lineitems, new_customers, main_orders, main_lineitems) > 0
        for table, added in [
            ("bronze.customer", new_customers),
            ("bronze.orders", new_orders + main_orders),
            ("bronze.lineitem", new_lineitems + main_lineitems),
            ("silver.orders", new_orders),
            ("silver.lineitem", new_lineitems),
        ]:
            counted = "SELECT count(*) AS n FROM " + table
            before = lh.sql(counted, TAG_CHANGES).to_pylist()[0]["n"]
            assert lh.sql(counted, "main").to_pylist()[0]["n"] == before + added, table
        assert check(lh, ["main"]).ok
        tables = {".".join(e.key.elements) for e in lh.tables("main")}
        assert {"bronze.orders", "silver.orders", "gold.q3_shipping_priority"} <= tables

    assert (home / MARKER).is_file()


def csv_rows(path: Path) -> int:
    """Data rows of a CSV file with a header."""
    return len(path.read_text(encoding="utf-8").splitlines()) - 1


def test_demo_refuses_a_home_it_did_not_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "mine"
    connect(home, create=True).close()
    assert main(["--home", str(home), "--scale-factor", SCALE_FACTOR]) == 1
    assert "already holds a lakehouse the demo did not make" in capsys.readouterr().out
    assert not (home / MARKER).exists()


def printed_commands(out: str) -> list[str]:
    """The shell lines the demo prints under "where to look next" (comments left out)."""
    section = out.split("where to look next", 1)[1].split("timings", 1)[0]
    return [
        line.strip()
        for line in section.splitlines()[1:]
        if line.strip() and not line.lstrip().startswith(("#", "(")) and "─" not in line
    ]


def test_demo_keeps_the_default_home_and_every_printed_command_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As `make demo` on a fresh machine: no LAKEHOUSE_HOME, so ./.lakehouse.
    monkeypatch.delenv("LAKEHOUSE_HOME")
    assert main(["--scale-factor", SCALE_FACTOR]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / ".lakehouse" / MARKER).is_file()
    assert "# the lakehouse lives in .lakehouse" in out
    commands = printed_commands(out)
    assert len(commands) == 8, "\n".join(commands)  # six looks, then making the data and the re-run
    assert not any("--home" in c for c in commands)  # the default home needs none
    assert commands[-2].startswith("export TPCH_DATA=$(")
    script = "set -e\n" + "\n".join(commands)
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True
    )
    assert done.returncode == 0, (commands, done.stdout, done.stderr)
    assert "Error" not in done.stderr
    assert "o_orderkey" in done.stdout  # the rejected batch's rows on the kept branch
    assert "merged into main at" in done.stdout  # the re-run, as printed

    # `make demo` again: the earlier demo's home is replaced, not refused.
    assert main(["--scale-factor", SCALE_FACTOR]) == 0
    assert "replacing the lakehouse of an earlier demo" in capsys.readouterr().out
