"""How fast the interactive report opens in a browser (issue 25: target under 3 s).

    python bench/report_load.py [PAGE.html ...] [--repeats 5]

Default pages: the demo's ``out/report.html`` (``make demo``) and a ``liprobe view``
page of the real Si .epos (written into a temporary folder when ../shared is there).
Each page is opened ``--repeats`` times in headless Chromium (Debian's chromium and
chromedriver, through selenium, as the browser tests), each time in a fresh tab with
the cache off. Per page: its size, the navigation timing's ``loadEventEnd`` (ms from
the navigation's start: the HTML parsed, plotly.js run, every figure drawn in its
script), and when every plotly figure has its layout and SVG (polled), median and
range. Writes ``bench/results/report_load.md``. Run it on a quiet machine; it is not a
test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_line, markdown_table, write_report  # noqa: E402

TARGET_S = 3.0
DRAWN = ("return Array.from(document.querySelectorAll('.js-plotly-plot'))"
         ".filter(d => d._fullLayout && d.querySelector('svg.main-svg')).length")
ALL = "return document.querySelectorAll('.js-plotly-plot').length"


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
    if not chromium or not os.path.exists(driver):
        sys.exit("bench/report_load.py needs Debian's chromium and chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1800", "--disable-application-cache"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    d.set_page_load_timeout(120)
    return d


def measure(drv, page: Path, repeats: int) -> dict:
    loads, drawn = [], []
    n_figs = 0
    for _ in range(repeats):
        drv.get("about:blank")
        t0 = time.perf_counter()
        drv.get(page.resolve().as_uri())
        n_figs = drv.execute_script(ALL)
        while drv.execute_script(DRAWN) < n_figs and time.perf_counter() - t0 < 120:
            time.sleep(0.02)
        drawn.append(time.perf_counter() - t0)
        loads.append(drv.execute_script(
            "return performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000.0)
    return {"page": page, "mb": page.stat().st_size / 1e6, "figures": n_figs,
            "load": statistics.median(loads), "load_range": (min(loads), max(loads)),
            "drawn": statistics.median(drawn)}


def default_pages(tmp: Path) -> list[Path]:
    pages = []
    demo = Path("out/report.html")
    if demo.exists():
        pages.append(demo)
    si = Path(os.environ.get("LIPROBE_SHARED", HERE.parent.parent / "shared")) / "data" / \
        "real" / "apav_si"
    if (si / "Si_first100000.epos").exists():
        out = tmp / "si-view.html"
        exe = Path(sys.executable).with_name("liprobe")
        subprocess.run([str(exe), "view", str(si / "Si_first100000.epos"), "-r",
                        str(si / "Si.RRNG"), "-o", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        pages.append(out)
    return pages


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pages", nargs="*", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(HERE / "results" / "report_load.md"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pages = a.pages or default_pages(Path(tmp))
        if not pages:
            sys.exit("no page to open: run `make demo` first, or name pages")
        drv = browser()
        try:
            res = [measure(drv, p, a.repeats) for p in pages]
        finally:
            drv.quit()
    rows = [[str(r["page"]) if "si-view" not in str(r["page"]) else "liprobe view (Si .epos)",
             f"{r['mb']:.1f}", r["figures"], f"{r['load']:.2f}",
             f"{r['load_range'][0]:.2f}-{r['load_range'][1]:.2f}", f"{r['drawn']:.2f}",
             "yes" if r["load"] < TARGET_S else "**no**"] for r in res]
    text = "\n".join([
        "# How fast the interactive pages open", "", machine_line(), "",
        f"`python bench/report_load.py --repeats {a.repeats}`: headless Chromium, a fresh "
        "navigation each time; `loadEventEnd` from the navigation timing (the page parsed, "
        "plotly.js run, every figure drawn by its script), median of the repeats; "
        "'drawn' is the wall time until every plotly figure has its SVG: the report's 3-D "
        "atom map (WebGL) is asked for in the load event and finishes after it. Target "
        f"(loadEventEnd): under {TARGET_S:.0f} s.", "",
        markdown_table(["page", "MB", "plotly figures", "loadEventEnd (s, median)",
                        "range (s)", "drawn (s)", f"< {TARGET_S:.0f} s"], rows), ""])
    write_report(a.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
