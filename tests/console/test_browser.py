"""Click through the console on a demo home in a real browser (Playwright + Debian chromium).

Integration tier: needs ``chromium`` (``apt-get install chromium``; ``make test-integration``
installs it) and the ``playwright`` package; Playwright's own browser download is not used.
With ``CONSOLE_SCREENSHOTS=DIR`` every page is also saved as a PNG into DIR
(``make console-screenshots`` writes docs/console/).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.types import DoubleType
from rich.console import Console

from lakehouse import demo
from lakehouse.client import Lakehouse, connect
from lakehouse.console import WebConsole
from lakehouse.server.app import make_server, serving

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("LAKEHOUSE_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
#: Where screenshots go (relative to the repository root: tests run in a temporary folder).
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lakehouse]:
    """The demo at SF 0.01 plus ``feature/discounts``: a branch that conflicts with main."""
    path = tmp_path_factory.mktemp("console") / "home"
    demo.run(path, Console(quiet=True), scale_factor=0.01)
    with connect(path) as lh:
        lh.create_branch("feature/discounts", demo.TAG_INITIAL)
        orders = lh.table("silver.orders", "feature/discounts")
        # A backfill that rewrites every data file: main's change batch deleted rows from
        # some of them since the tag (merge-on-read upsert), so the branch conflicts.
        with orders.update_schema() as update:
            update.add_column("discount_pct", DoubleType())
        with pytest.warns(UserWarning, match="falling back to copy-on-write"):
            orders.overwrite(orders.scan().to_arrow())  # PyIceberg rewrites every file
        yield lh


@pytest.fixture(scope="module")
def base_url(home: Lakehouse) -> Iterator[str]:
    server = make_server(home.store, "127.0.0.1", 0, console=WebConsole(home), log_level="warning")
    with serving(server) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def page(base_url: str) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 800}, base_url=base_url)
        yield tab
        browser.close()


def shot(page: Any, name: str) -> None:
    if SHOTS:
        folder = REPO / SHOTS
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=False)


def test_click_through_the_demo(page: Any, home: Lakehouse) -> None:
    page.goto("/")
    assert page.locator("h1").inner_text() == "References"
    assert page.get_by_role("link", name="feature/discounts").is_visible()
    shot(page, "references")

    page.get_by_role("link", name="main", exact=True).first.click()
    assert page.locator("h1").inner_text() == "History of main"
    assert page.locator("tr.side").count() > 0  # the run branches' commits under each merge
    shot(page, "history")

    page.locator("td.hash a").first.click()
    assert page.locator("h1").inner_text().startswith("Commit ")
    assert "lakehouse.run.status" in page.content()
    shot(page, "commit")

    page.goto("/")
    page.locator("tr", has_text="feature/discounts").get_by_role("link", name="compare").click()
    conflict = page.locator("#conflicts")
    assert "Merge would conflict on silver.orders" in conflict.inner_text()
    shot(page, "compare")

    page.get_by_role("link", name="silver.orders").first.click()
    assert "silver.orders" in page.locator("h1").inner_text()
    assert page.locator("h2", has_text="Data files").is_visible()
    shot(page, "table")

    page.get_by_role("link", name="Runs", exact=True).click()
    failed = page.locator("tr", has=page.locator(".badge.failed")).first
    failed.get_by_role("link").first.click()
    assert "failed" in page.locator("h1").inner_text()
    rows = page.locator("tr.check", has_text="fail")
    assert rows.count() >= 1
    assert page.locator("tr.sample").count() >= 1  # failing sample rows under the checks
    shot(page, "run")

    page.get_by_role("link", name="Operations").click()
    assert page.locator("text=not paused").is_visible()
    shot(page, "operations")

    page.get_by_role("link", name="SQL").click()
    page.fill(
        "textarea[name=q]",
        "SELECT o_orderstatus, count(*) AS n FROM silver.orders GROUP BY 1 ORDER BY 1",
    )
    page.get_by_role("button", name="Run").click()
    result = page.locator("#sql-result table")
    assert result.locator("th").first.inner_text() == "o_orderstatus"
    expected = home.sql("SELECT count(DISTINCT o_orderstatus) FROM silver.orders").to_pylist()
    assert result.locator("tr").count() - 1 == next(iter(expected[0].values()))
    shot(page, "sql")
