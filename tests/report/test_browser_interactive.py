"""The interactive pages in a real headless browser (Debian's chromium driven by selenium,
as tests/report/test_browser.py): `liprobe view`'s page renders every plotly figure with no
console error, a drag on the spectrum zooms it (its x range changes), hovering a point
shows the run's name, and a screenshot is saved for people to look at
(``test-screenshots/`` in the working folder, or ``$LIPROBE_SCREENSHOTS``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from liprobe.cli import cli

pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                    "(pip install -e '.[test]')")


def screenshot_dir() -> Path:
    d = Path(os.environ.get("LIPROBE_SCREENSHOTS", "test-screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def wait_rendered(drv, n_min: int, timeout: float = 30.0) -> list:
    """Ids of the plotly figures once each has drawn (its full layout and an svg)."""
    from selenium.webdriver.support.ui import WebDriverWait

    js = ("return Array.from(document.querySelectorAll('.js-plotly-plot'))"
          ".filter(d => d._fullLayout && d.querySelector('svg.main-svg')).map(d => d.id)")
    WebDriverWait(drv, timeout).until(lambda b: len(b.execute_script(js)) >= n_min)
    return drv.execute_script(js)


def console_errors(drv) -> list:
    return [e for e in drv.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def drag_zoom(drv, div_id: str, frac=(0.3, 0.5)) -> tuple:
    """Drag across the plot area of a 2-D figure, as a user zooms; the x range before and
    after."""
    from selenium.webdriver.common.action_chains import ActionChains

    before = drv.execute_script(
        f"return document.getElementById('{div_id}')._fullLayout.xaxis.range.slice()")
    drag = drv.find_element("css selector", f"#{div_id} .nsewdrag")
    w = drag.size["width"]
    x0 = int(w * frac[0]) - w // 2
    x1 = int(w * frac[1]) - w // 2
    (ActionChains(drv).move_to_element_with_offset(drag, x0, 0).click_and_hold()
     .move_by_offset((x1 - x0) // 2, 0).move_by_offset((x1 - x0) - (x1 - x0) // 2, 0)
     .release().perform())
    after = drv.execute_script(
        f"return document.getElementById('{div_id}')._fullLayout.xaxis.range.slice()")
    return before, after


def hover_text(drv, div_id: str, curve: int = 0, point: int = 0) -> str:
    """Hover a point of a figure (plotly's own hover, as the mouse triggers it) and return
    the hover label's text."""
    drv.execute_script(
        f"Plotly.Fx.hover('{div_id}', [{{curveNumber: {curve}, pointNumber: {point}}}]);")
    return drv.execute_script(
        "return Array.from(document.querySelectorAll('#" + div_id + " .hoverlayer text'))"
        ".map(t => t.textContent).join(' ')")


@pytest.fixture(scope="module")
def view_page(real, tmp_path_factory):
    out = tmp_path_factory.mktemp("view") / "si-view.html"
    d = real / "apav_si"
    res = CliRunner().invoke(cli, ["view", str(d / "Si_first100000.epos"), "-r",
                                   str(d / "Si.RRNG"), "-o", str(out), "--label", "si-epos"])
    assert res.exit_code == 0, res.output
    return out


def test_view_page_renders_zooms_and_names_the_run_on_hover(browser, view_page):
    browser.get(view_page.resolve().as_uri())
    ids = wait_rendered(browser, 4)
    assert {"liprobe-composition", "liprobe-spectrum", "liprobe-detector",
            "liprobe-atom-map"} <= set(ids)
    assert console_errors(browser) == []
    before, after = drag_zoom(browser, "liprobe-spectrum")
    assert after != before and after[1] - after[0] < 0.5 * (before[1] - before[0]), \
        (before, after)
    text = hover_text(browser, "liprobe-composition")
    assert "si-epos" in text, text
    browser.save_screenshot(str(screenshot_dir() / "view-si-epos.png"))
    assert (screenshot_dir() / "view-si-epos.png").stat().st_size > 10_000


def test_demo_report_has_its_interactive_figures_working(browser, demo):
    """The demo report: at least 5 plotly figures drawn, no console error, a drag zooms the
    spectra, hovering a ratio point names its row, a click on a header sorts the results
    table; under 15 MB; a screenshot is saved."""
    assert demo.html.stat().st_size < 15e6
    browser.get(demo.html.resolve().as_uri())
    ids = wait_rendered(browser, 5, timeout=60)
    assert {"liprobe-spectra", "liprobe-overlay", "liprobe-atom-map",
            "liprobe-ratio-1"} <= set(ids), ids
    assert console_errors(browser) == []
    before, after = drag_zoom(browser, "liprobe-spectra")
    assert after[1] - after[0] < 0.5 * (before[1] - before[0]), (before, after)
    names = set(demo.table["run"].astype(str))
    text = hover_text(browser, "liprobe-ratio-1")
    assert any(n in text for n in names), text
    # the results table: a click on a numeric header sorts its rows by that column
    col = browser.execute_script(
        "const th = Array.from(document.querySelectorAll('#results-table th'))"
        ".find(t => t.dataset.type === 'num'); th.click(); return th.dataset.col;")
    values = browser.execute_script(
        "const t = document.getElementById('results-table');"
        "const i = Array.from(t.querySelectorAll('th')).findIndex(h => h.dataset.col === "
        "arguments[0]);"
        "return Array.from(t.tBodies[0].rows).map(r => r.cells[i].dataset.sort);", col)
    nums = [float(v) for v in values if v not in (None, "")]
    assert len(nums) > 3 and nums == sorted(nums), (col, values[:10])
    shot = screenshot_dir() / "demo-report.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
