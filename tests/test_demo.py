"""`python -m lakehouse.demo` runs end to end and leaves the promised state behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.client import connect
from lakehouse.demo import TAG_CHANGES, TAG_INITIAL, main
from lakehouse.pipelines.runner import RUN_STATUS

#: Small, so the whole demo (three pipeline runs) takes seconds.
SCALE_FACTOR = "0.01"


def test_demo_in_a_given_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "demo"
    assert main(["--home", str(home), "--scale-factor", SCALE_FACTOR]) == 0
    out = capsys.readouterr().out
    for shown in (
        "first load",
        "published:",
        "change batch",
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
        # The rejected run's branch is kept; main still is where the change batch left it.
        kept = [n for n in names if n.startswith("run/tpch/")]
        assert len(kept) == 1
        assert lh.resolve("main").hash == lh.resolve(TAG_CHANGES).hash
        assert lh.log(kept[0], limit=1)[0].meta.properties[RUN_STATUS] == "failed"
        statuses = [e.meta.properties.get(RUN_STATUS) for e in lh.log("main", limit=2)]
        assert statuses == ["success", "success"]
        tables = {".".join(e.key.elements) for e in lh.tables("main")}
        assert {"bronze.orders", "silver.orders", "gold.q3_shipping_priority"} <= tables

    # A second run refuses to reuse the home.
    assert main(["--home", str(home), "--scale-factor", SCALE_FACTOR]) == 1
    assert "already holds a lakehouse" in capsys.readouterr().out


def test_demo_rejects_a_bad_scale_factor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--scale-factor", "0"]) == 1
    assert "scale factor must be positive" in capsys.readouterr().out
