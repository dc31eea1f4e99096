"""`python -m lakehouse.demo` runs end to end and leaves the promised state behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.client import connect
from lakehouse.demo import main


def test_demo_in_a_given_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "demo"
    assert main(["--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "main vs dev" in out and "release-1" in out
    with connect(home) as lh:
        assert [r.name for r in lh.references()] == ["dev", "main", "release-1"]
        assert lh.resolve("release-1").hash == lh.resolve("main").hash
        assert lh.table("bronze.orders", ref="release-1").scan().to_arrow().num_rows == 8
        assert len(lh.log("main", limit=1)[0].meta.parent_hashes) == 2
    # A second run refuses to reuse the home.
    assert main(["--home", str(home)]) == 1


def test_demo_in_a_temporary_home(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "Done in" in capsys.readouterr().out
