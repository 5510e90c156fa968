"""One small `liprobe demo` shared by the report's tests (written once per session).

Small: the paper preset at 3e4 ions per coated run (about 1.6 M ions in all),
the study in this process, so the whole demo takes about 20 seconds. The
full-size demo is a benchmark (bench/demo.py), not a test.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from liprobe.cli import cli

#: Detected ions of a coated single-energy run of the tests' demo (the preset's default: 2.5e5).
DEMO_IONS = 30_000


class Demo:
    def __init__(self, out, summary):
        import pandas as pd

        self.out = out
        self.summary = summary
        self.table = pd.read_parquet(out / "runs.parquet")
        self.html = out / "report.html"
        self.manifest = summary["manifest"]


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    res = CliRunner().invoke(cli, ["demo", "-o", str(out), "--ions", str(DEMO_IONS),
                                   "--workers", "0", "--quiet", "--json"])
    assert res.exit_code == 0, (res.output, res.exception)
    return Demo(out, json.loads(res.stdout))


@pytest.fixture(scope="module")
def browser():
    """Debian's headless chromium driven by selenium (the report's browser tests); skipped,
    saying why, where it is not installed, except in CI, where .ci/run installs it."""
    import os
    import shutil

    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install -e '.[test]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or shutil.which("chromium-driver") or next(
        (p for p in ("/usr/lib/chromium/chromedriver",) if os.path.exists(p)), None)
    if not (chromium and driver):
        msg = ("Debian's chromium and chromium-driver are not installed (apt-get install -y "
               "chromium chromium-driver; .ci/run does it)")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1800"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    d.set_page_load_timeout(60)
    yield d
    d.quit()
