"""The report in a real headless browser (Debian's chromium driven by Playwright; never a
downloaded browser): no console errors, no request beyond the file itself (the CSP blocks any
attempt), every figure drawn, summary and ledger present, tables sortable, downloads work, and a
screenshot for a person to look at.

Skipped, with the reason, without /usr/bin/chromium (apt-get install -y chromium) or the
playwright package (pip install playwright; no `playwright install`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.report import render
from tests.report import synth

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path("/tmp/ctxbench-report.png")

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="pip install playwright (the browser is the system's)"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    a = synth.full_run(tmp / "results" / "a")
    b = synth.Builder(1).full()
    for r in b.records:  # run B: Mamba-2 prefill 25% slower, to exercise the comparison
        if (
            r["point"]["suite"] == "prefill"
            and r["point"]["model"] == "mamba2"
            and r["status"] == "ok"
        ):
            r["metrics"]["time_ms"] *= 1.25
            r["samples"]["time_ms"] = [x * 1.25 for x in r["samples"]["time_ms"]]
    b_dir = synth.write(tmp / "results" / "b", b.records, sha="feedc0de99", driver="590.10")
    return render(a, tmp / "reports" / "a-vs-b", compare=b_dir)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, report):
    """A page with the report loaded; console messages, page errors and every request seen."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    pg = ctx.new_page()
    pg.seen = {"console": [], "errors": [], "requests": []}
    pg.on("console", lambda m: pg.seen["console"].append((m.type, m.text)))
    pg.on("pageerror", lambda e: pg.seen["errors"].append(str(e)))
    pg.on("request", lambda r: pg.seen["requests"].append(r.url))
    pg.goto(report.as_uri(), wait_until="load")
    yield pg
    ctx.close()


def test_loads_without_console_errors_or_any_request_but_itself(page, report):
    page.wait_for_timeout(300)  # let late scripts run
    assert page.seen["errors"] == []
    assert [m for m in page.seen["console"] if m[0] in ("error", "warning")] == []
    assert page.seen["requests"] == [report.as_uri()]


def test_the_csp_blocks_a_network_request_from_the_page(page):
    result = page.evaluate(
        """() => fetch("https://example.com/x").then(() => "fetched", e => "blocked: " + e.name)"""
    )
    assert result.startswith("blocked")
    assert not any("example.com" in u for u in page.seen["requests"][1:]) or result.startswith(
        "blocked"
    )
    assert any("Content Security Policy" in text for _, text in page.seen["console"])


def test_every_figure_is_present_and_drawn(page):
    figs = page.evaluate(
        """() => [...document.querySelectorAll("figure")].map(f => {
             const svg = f.querySelector("svg");
             const box = svg ? svg.getBoundingClientRect() : null;
             return {id: f.id, w: box ? box.width : 0, h: box ? box.height : 0,
                     lines: svg ? svg.querySelectorAll("path").length : 0,
                     text: svg ? svg.querySelectorAll("text").length : 0,
                     caption: (f.querySelector("figcaption") || {}).textContent || ""}; })"""
    )
    assert len(figs) >= 15
    for f in figs:
        assert f["w"] > 200 and f["h"] > 150, f
        assert f["lines"] > 5 and f["text"] > 3, f  # axes, data and labels, not an empty frame
        assert f["caption"].strip(), f["id"]


def test_summary_ledger_and_crossovers_are_there(page):
    summary = page.locator("#summary li")
    assert summary.count() >= 8
    text = page.locator("#summary").inner_text()
    assert "overtakes" in text
    assert "Against run b" in text and "slower beyond the run-to-run spread" in text
    rows = page.locator("#ledger-table tbody tr")
    assert rows.count() == 26
    verdicts = page.locator("#ledger-table .v").all_inner_texts()
    assert set(verdicts) <= {"supported", "contradicted", "inconclusive", "untestable here"}
    assert {"supported", "contradicted"} <= set(verdicts)
    assert page.locator("#crossovers-table tbody tr").count() > 5
    assert page.locator("#compare-table tbody tr").count() > 100


def test_internal_links_land_on_elements(page):
    missing = page.evaluate(
        """() => [...document.querySelectorAll('a[href^="#"]')]
                 .map(a => a.getAttribute("href").slice(1))
                 .filter(id => !document.getElementById(id))"""
    )
    assert missing == []


def test_tables_sort_numerically_by_clicked_header(page):
    by_name = page.locator("#points-table").get_by_role("columnheader", name="length", exact=True)
    col = by_name.evaluate("th => th.cellIndex")
    header = page.locator("#points-table thead th").nth(col)  # its name gains ▲/▼ once sorted
    values = "rows => rows.map(r => parseFloat(r.cells[COL].dataset.v ?? 'NaN'))"
    values = values.replace("COL", str(col)) + ".filter(v => !isNaN(v))"
    header.click()
    up = page.locator("#points-table tbody tr").evaluate_all(values)
    assert up == sorted(up) and up[0] < up[-1]
    header.click()
    down = page.locator("#points-table tbody tr").evaluate_all(values)
    assert down == sorted(down, reverse=True)


def test_downloads_csv_and_raw_json(page, tmp_path):
    with page.expect_download() as dl:
        page.locator("a[download$='points.csv']").click()
    csv_text = Path(dl.value.path()).read_text()
    n_rows = page.locator("#points-table tbody tr").count()
    assert len(csv_text.strip().splitlines()) == n_rows + 1
    with page.expect_download() as dl:
        page.locator("#download-json").click()
    records = json.loads(Path(dl.value.path()).read_text())
    assert len(records) == n_rows and all("hash" in r for r in records)
    assert page.seen["errors"] == []


def test_screenshot(page, tmp_path):
    """Taken in the test run for a person to look at: the top of the report (summary, first
    figures) and the claims ledger."""
    top = tmp_path / "report-top.png"
    page.screenshot(path=str(top))
    page.locator("#ledger").scroll_into_view_if_needed()
    ledger = tmp_path / "report-ledger.png"
    page.screenshot(path=str(ledger))
    assert top.stat().st_size > 50_000 and ledger.stat().st_size > 50_000
    shutil.copy(top, SCREENSHOT)
    shutil.copy(ledger, SCREENSHOT.with_name("ctxbench-report-ledger.png"))
