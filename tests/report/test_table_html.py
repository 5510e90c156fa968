"""The study table as a sortable, filterable HTML table, and the report of a study that is
not the paper's: three real Si runs (../shared/data/real/apav_si) get spectra,
compositions, maps and profiles, descriptive titles, no skipped-figure noise, no warning."""

from __future__ import annotations

import json
import os
import re
import warnings
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from liprobe.cli import cli
from liprobe.report import build_report
from liprobe.report.figures import DPI, MIN_FONT_PT, PAGE_PX
from liprobe.report.flagtext import flag_sentences
from liprobe.report.table_html import SORT_SCRIPT, results_table_html


class _Table(HTMLParser):
    """The first ``<table>`` with ``id``: its headers (with attributes) and rows of cells
    (text and attributes); the page's scripts."""

    def __init__(self, table_id):
        super().__init__()
        self.id = table_id
        self.headers, self.rows, self.scripts, self.inputs = [], [], [], []
        self._in = False
        self._cell = None
        self._script = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self._script = []
        if tag == "input":
            self.inputs.append(a)
        if tag == "table" and a.get("id") == self.id:
            self._in = True
        if not self._in:
            return
        if tag == "tr" and "data-row" in a:
            self.rows.append((a, []))
        elif tag in ("th", "td"):
            self._cell = [tag, a, ""]

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append("".join(self._script))
            self._script = None
        if not self._in:
            return
        if tag == "table":
            self._in = False
        elif tag in ("th", "td") and self._cell is not None:
            kind, a, text = self._cell
            (self.headers if kind == "th" else self.rows[-1][1]).append((text.strip(), a))
            self._cell = None

    def handle_data(self, data):
        if self._script is not None:
            self._script.append(data)
        if self._cell is not None:
            self._cell[2] += data


def _parse(text, table_id="results-table") -> _Table:
    p = _Table(table_id)
    p.feed(text)
    return p


def _flagged_table():
    return pd.DataFrame({
        "run": ["a", "b", "c"], "segment": [None, None, None], "status": ["ok"] * 3,
        "laser_pj": [5.0, np.nan, 30.0], "coating": ["Cr", "none", "Cr"],
        "Li/(Li+Ni+Co+Mn)": [0.4970317, 0.31, np.nan],
        "Li/(Li+Ni+Co+Mn)_err": [0.0024, 0.003, np.nan],
        "detector_heterogeneity": [0.0159, -0.0021, 0.04],
        "detector_heterogeneity_err": [0.0049, 0.0008, 0.004],
        "flags": ["", "delithiated", ""],
        "flag_delithiated_Li/(Li+Ni+Co+Mn)_reference": [np.nan, 0.5, np.nan],
        "flag_delithiated_Li/(Li+Ni+Co+Mn)_score": [np.nan, -20.0, np.nan],
        "flag_delithiated_Li/(Li+Ni+Co+Mn)_threshold": [np.nan, 5.0, np.nan],
        "flag_reasons": ["", "delithiated: Li/(Li+Ni+Co+Mn) below the batch", ""],
    })


def test_results_table_has_a_row_per_table_row_values_with_errors_and_flag_reasons():
    t = _flagged_table()
    page = _parse(results_table_html(t, table_id="results-table"))
    heads = [h for h, _ in page.headers]
    assert heads[:2] == ["row", "laser energy (pJ)"]
    assert "Li/(Li+Ni+Co+Mn) ± 1σ" in heads and heads[-1] == "flags"
    cols = {a["data-col"]: i for i, (_, a) in enumerate(page.headers)}
    assert page.headers[cols["laser_pj"]][1]["data-type"] == "num"
    assert page.headers[cols["coating"]][1]["data-type"] == "text"
    assert [a["data-row"] for a, _ in page.rows] == ["a", "b", "c"]
    assert all(len(cells) == len(page.headers) for _, cells in page.rows)
    a, b, c = (cells for _, cells in page.rows)
    li = cols["Li/(Li+Ni+Co+Mn)"]
    assert a[li][0] == "0.4970 ± 0.0024"
    assert float(a[li][1]["data-sort"]) == pytest.approx(0.4970317)
    assert c[li][0] == "n/a" and c[li][1]["data-sort"] == ""      # missing: sorted last
    assert b[cols["laser_pj"]][1]["data-sort"] == ""
    het = b[cols["detector_heterogeneity"]][0]
    assert het.startswith("-0.00210 ± 0.00080 (negative") and "no heterogeneity" in het
    fl = b[cols["flags"]]
    assert fl[0] == "delithiated"
    assert fl[1]["title"] == "\n".join(flag_sentences(t.iloc[1].to_dict()))
    assert "z -20 past 5" in fl[1]["title"]
    assert "title" not in a[cols["flags"]][1]
    # the filter box points at the table
    (box,) = [i for i in page.inputs if "table-filter" in i.get("class", "")]
    assert box["data-table"] == "results-table"


def test_sort_script_sorts_numbers_as_numbers_and_missing_values_last():
    assert "parseFloat" in SORT_SCRIPT and "data-sort" in SORT_SCRIPT
    assert "return a[0] === null ? 1 : -1" in SORT_SCRIPT     # in either direction
    assert "plotly" not in SORT_SCRIPT.lower()


# --------------------------------------------------------------------------
# a study of three real Si runs (docs/cli.md's si-study.toml, without the missing file)
# --------------------------------------------------------------------------

SI_MANIFEST = """
[study]
name = "Si (APAV test data)"
roi = "cylinder:25"
ratios = ["Si/(Si+O)"]
field_proxies = ["Si++/Si+"]
fda = {{ species = ["Cr"], block = 100 }}

[[runs]]
name = "si-pos"
data = "{d}/Si.pos"
ranges = "{d}/Si.RRNG"

[[runs]]
name = "si-apt"
data = "{d}/Si.apt"
ranges = "{d}/Si.RNG"

[[runs]]
name = "si-epos"
data = "{d}/Si_first100000.epos"
ranges = "{d}/Si.RRNG"
segments = [{{ start = 0, stop = 50000 }}, {{ start = 50000 }}]
"""


@pytest.fixture(scope="module")
def si_study(real, tmp_path_factory):
    d = tmp_path_factory.mktemp("si")
    (d / "si-study.toml").write_text(SI_MANIFEST.format(d=real / "apav_si"))
    res = CliRunner().invoke(cli, ["study", str(d / "si-study.toml"), "-o", str(d / "out"),
                                   "--workers", "0", "-q"])
    assert res.exit_code == 0, res.output
    return d


@pytest.fixture(scope="module")
def si_report(si_study):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = build_report(si_study / "out", manifest=si_study / "si-study.toml")
    return r, caught


def test_si_study_report_draws_spectra_compositions_maps_profiles_without_noise(si_report):
    r, caught = si_report
    assert not [str(w.message) for w in caught]
    assert set(r.figures) == {"spectra", "compositions", "maps", "profiles"}, r.figures
    assert not r.skipped, r.skipped
    # what does not apply is left out, with its reason
    assert r.left_out["figure_4"] == "no coated and uncoated runs of one material to compare"
    assert r.left_out["field_by_laser"] == "no laser-energy series"
    html = open(r.html, encoding="utf-8").read()
    page = _parse(html)
    text = re.sub(r"<(style|script)\b[^>]*>.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    for word in ("skipped", "is not drawn", "could not be drawn"):
        assert word not in text, word
    assert not re.search(r"(Supplementary )?(Figure|Table) \d", text)
    assert "Scorecard" not in text                      # the paper's claims: not a Si study
    folder = r.html.rsplit("/", 1)[0]
    assert "scorecard" not in r.tables and not os.path.exists(folder + "/scorecard.json")
    assert not os.path.exists(folder + "/recovery.csv")
    assert text.count("Left out, as this study holds nothing for them") == 1
    # the results table: one row per table row, the sorting script once
    table = pd.read_parquet(r.html.rsplit("/", 1)[0] + "/runs.parquet")
    assert [a["data-row"] for a, _ in page.rows] == ["si-pos", "si-apt", "si-epos[0]",
                                                    "si-epos[1]"]
    assert len(page.rows) == len(table)
    heads = [h for h, _ in page.headers]
    assert "Si/(Si+O) ± 1σ" in heads and "Si++/Si+ ± 1σ" in heads
    assert len([s for s in page.scripts if "table.sortable" in s]) == 1   # once per page
    assert html.count(SORT_SCRIPT) == 1
    cols = {a["data-col"]: i for i, (_, a) in enumerate(page.headers)}
    si = [cells[cols["Si/(Si+O)"]][0] for _, cells in page.rows]
    assert si[0] == "0.84714 ± 0.00047" and si[2] == "0.1494 ± 0.0017"


def test_si_report_from_the_command_line_prints_nothing_on_stderr(si_study):
    res = CliRunner().invoke(cli, ["report", str(si_study / "out"), "-q", "--json"])
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    d = json.loads(res.stdout)
    assert not d["skipped"] and "figure_1" in d["left_out"]
    res = CliRunner().invoke(cli, ["report", str(si_study / "out"), "-q"])
    assert res.exit_code == 0 and res.stderr == ""
    assert "skipped" not in res.stdout and "4 figures" in res.stdout


def _svg_texts(path):
    """(font size in pt, text) of each text of a matplotlib SVG (svg.fonttype none), and
    the figure's width in pt."""
    root = ET.parse(path).getroot()
    width = float(root.get("width").rstrip("pt"))
    out = []
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] != "text":
            continue
        m = re.search(r"font-size:\s*([\d.]+)px", el.get("style", ""))
        text = "".join(el.itertext()).strip()
        if m and text:
            out.append((float(m.group(1)), text))
    return out, width


def test_si_figures_have_readable_fonts_and_unique_panel_letters(si_report):
    r, _ = si_report
    for name, paths in r.figures.items():
        svg = next(p for p in paths if p.endswith(".svg"))
        texts, width_pt = _svg_texts(svg)
        assert texts, name
        # the page shows a figure at most PAGE_PX wide: a wider one is scaled down
        scale = min(1.0, PAGE_PX / (width_pt / 72.0 * DPI))
        smallest = min(size for size, _ in texts)
        assert smallest * scale >= MIN_FONT_PT - 0.05, (name, smallest, scale)
        letters = [m.group(1) for _, t in texts for m in [re.match(r"^\(([a-z])\)", t)] if m]
        assert len(letters) == len(set(letters)), (name, letters)
        assert not re.match(r"(Supplementary )?Figure \d", " ".join(t for _, t in texts))


# --------------------------------------------------------------------------
# in a real browser: a click on a header sorts the rows, the box filters them
# --------------------------------------------------------------------------

def test_a_click_on_a_header_sorts_the_rows_and_the_box_filters_them(browser, si_report):
    from pathlib import Path

    from selenium.webdriver.common.by import By

    r, _ = si_report
    browser.get(Path(r.html).resolve().as_uri())

    def order():
        return browser.execute_script(
            "return Array.from(document.querySelectorAll('#results-table tbody tr'))"
            ".filter(r => r.style.display !== 'none').map(r => r.dataset.row)")

    assert order() == ["si-pos", "si-apt", "si-epos[0]", "si-epos[1]"]
    th = browser.find_element(By.CSS_SELECTOR, '#results-table th[data-col="Si++/Si+"]')
    th.click()          # by value, not as text: 0.00192 < 0.0082 < 13.6
    assert order() == ["si-epos[1]", "si-epos[0]", "si-pos", "si-apt"]
    table = browser.find_element(By.ID, "results-table")
    assert table.get_attribute("data-sorted") == "Si++/Si+:asc"
    th.click()          # again: reversed (equal values keep their order)
    assert order() == ["si-pos", "si-apt", "si-epos[0]", "si-epos[1]"]
    assert table.get_attribute("data-sorted") == "Si++/Si+:desc"
    het = browser.find_element(By.CSS_SELECTOR,
                               '#results-table th[data-col="detector_heterogeneity"]')
    het.click()         # si-pos has no detector map: last, in both directions
    assert order() == ["si-apt", "si-epos[0]", "si-epos[1]", "si-pos"]
    het.click()
    assert order() == ["si-epos[1]", "si-epos[0]", "si-apt", "si-pos"]
    box = browser.find_element(By.ID, "results-table-filter")
    box.send_keys("epos")
    assert sorted(order()) == ["si-epos[0]", "si-epos[1]"]
    box.clear()
    box.send_keys(" ")
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
