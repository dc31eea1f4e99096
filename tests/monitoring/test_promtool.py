"""`promtool check rules` and `promtool check config` accept monitoring/ (integration tier).

promtool is built from the Go module proxy by scripts/tools/promtool.sh (cached; the
first build takes minutes), as helm is for tests/deploy.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import _tool
from tests.monitoring.test_monitoring_files import MONITORING, PROMETHEUS, RULES

RULE_TESTS = MONITORING / "prometheus" / "tests" / "lakehouse_test.yml"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def promtool() -> Path:
    return _tool("promtool.sh")


def run(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args], capture_output=True, text=True, check=False, timeout=120
    )


def test_promtool_accepts_the_alert_rules(promtool: Path) -> None:
    checked = run(promtool, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_promtool_accepts_the_scrape_config_and_its_rule_files(promtool: Path) -> None:
    checked = run(promtool, "check", "config", str(PROMETHEUS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_promtool_refuses_a_broken_rule(promtool: Path, tmp_path: Path) -> None:
    """The check can fail: a rule with a PromQL syntax error is refused."""
    broken = tmp_path / "broken.yml"
    good = 'up{job=~"lakehouse-catalog|nessie"} == 0'
    text = RULES.read_text(encoding="utf-8")
    assert good in text
    text = text.replace(good, 'up{job=~"lakehouse-catalog|nessie" == 0')  # no closing brace
    broken.write_text(text, encoding="utf-8")
    assert run(promtool, "check", "rules", str(broken)).returncode != 0


def test_the_alerts_fire_on_the_series_they_are_for(promtool: Path) -> None:
    """promtool's rule unit tests (monitoring/prometheus/tests): each alert fires when due."""
    checked = run(promtool, "test", "rules", str(RULE_TESTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
