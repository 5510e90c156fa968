"""The HTML report: one self-contained file with the reporting table, flags, figures and
parameters; `liprobe report` rebuilds it from a finished study folder."""

from __future__ import annotations

import base64
import io
import json
import os
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner
from PIL import Image

from liprobe.cli import cli
from liprobe.report import build_report
from liprobe.study import load_manifest, run_study


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.refs, self.headers, self.text = [], [], [], []
        self._in_th = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        for k in ("src", "href"):
            if k in a:
                self.refs.append(a[k])
        self._in_th = tag == "th"

    def handle_endtag(self, tag):
        self._in_th = False

    def handle_data(self, data):
        if self._in_th:
            self.headers.append(data.strip())
        self.text.append(data)


def _page(path) -> _Page:
    p = _Page()
    p.feed(open(path, encoding="utf-8").read())
    return p


def test_report_is_self_contained_with_every_figure_embedded(demo):
    page = _page(demo.html)
    figures = demo.summary["report"]["figures"]
    assert len(page.imgs) == len(figures)
    for src in page.imgs:
        assert src.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
    for ref in page.refs:
        assert ref.startswith(("data:", "#")), ref     # nothing to fetch, no network


def test_report_has_the_per_run_reporting_table_in_the_fields_convention(demo):
    page = _page(demo.html)
    for h in ("instrument", "flight path (mm)", "detection efficiency", "mode",
              "base temperature (K)", "pulse frequency (kHz)", "laser energy (pJ)",
              "detection rate (%)", "ions (segment / ROI / ranged in ROI)", "reconstruction",
              "MRP at FWHM / FW10%M", "background (ppm/ns)", "ranging", "ROI", "errors"):
        assert h in page.headers, h
    rep = __import__("pandas").read_csv(demo.out / "reporting_table.csv")
    assert len(rep) == len(demo.table)
    assert set(rep["errors"]) == {"1 sigma"}
    assert rep["flight path (mm)"].astype(str).str.startswith("100").all()   # LEAP 5000 XS
    assert rep["ROI"].str.startswith("cylinder:25").all()
    assert rep["ranging"].str.match(r"R\d+").all()
    text = "".join(page.text)
    assert "Windows are half-open" in text and "16 Da is counted as O+" in text


def test_report_lists_each_flag_with_its_reason_and_the_parameters(demo):
    text = "".join(_page(demo.html).text)
    flagged = demo.table[demo.table["flags"].fillna("") != ""]
    assert len(flagged)
    from liprobe.report.flagtext import flag_sentences, flag_tests

    for _, r in flagged.iterrows():
        # one line per flag (the strongest test, with its columns); every reason is in runs.csv
        sentences = flag_sentences(r.to_dict())
        assert len(sentences) == len(set(filter(None, r["flags"].split(";"))))
        for sentence in sentences:
            assert sentence.split(": ", 1)[1] in text, sentence
            assert len(sentence) < 400
        for t in flag_tests(r.to_dict()):
            if t["test"] is not None:
                assert abs(t["score"]) > t["threshold"] > 0 and t["test"] in text
    for h in ("reference", "score (z or departure)", "threshold"):
        assert f">{h}</th>" in demo.html.read_text(), h
    for p in ("cylinder:25", "reference_peaks", "flags.delithiated_z", "materials.NMC811"):
        assert p in text, p
    assert demo.summary["source_text"] in text


@pytest.fixture(scope="module")
def coated_only(demo, tmp_path_factory):
    """A study of three coated runs of the demo's series (no uncoated run)."""
    m = load_manifest(demo.manifest)
    keep = [s for s in m.runs if s.coating == "Cr" and s.material == "NMC811"][:3]
    d = tmp_path_factory.mktemp("coated-only")
    lines = ['[study]\nroi = "cylinder:25"\nexclude = ["Cr"]\n'
             'ratios = ["Li/(Li+Ni+Co+Mn)"]\nfield_proxies = ["O2+/O+"]\n'
             'fda = { species = ["Li+"], shuffles = 5 }\n']
    for s in keep:
        lines.append(f'[[runs]]\nname = "{s.run}"\ndata = "{s.data}"\nranges = "{s.ranges}"\n'
                     f'material = "NMC811"\ncoating = "Cr"\nlaser_pj = {s.meta()["laser_pj"]}\n'
                     f'particle = "P1"\n')
    (d / "study.toml").write_text("\n".join(lines))
    run_study(d / "study.toml", d / "out", workers=0)
    return d


def test_a_study_without_uncoated_runs_leaves_out_the_figures_it_cannot_support(coated_only):
    r = build_report(coated_only / "out", manifest=coated_only / "study.toml")
    for name in ("figure_1", "figure_4", "figure_7"):
        assert name in r.left_out, name
    assert not r.skipped, r.skipped
    assert "figure_5" in r.figures and "figure_3" in r.figures
    assert "supplementary_figure_3" in r.left_out      # the study has no charge-state ratio
    page = _page(r.html)
    text = "".join(page.text)
    # no skipped-figure paragraphs: one note says what was left out and why
    assert "is not drawn" not in text and "could not be drawn" not in text
    assert text.count("Left out, as this study holds nothing for them") == 1
    assert "no coated and uncoated runs of one material to compare" in text
    # not the paper preset: descriptive titles, no paper numbering
    assert "Figure 1" not in text and "Figure 5" not in text
    assert "Composition ratios against the field proxy, one particle" in text
    assert not list((coated_only / "out" / "figures").glob("figure_1.*"))


def test_liprobe_report_rebuilds_from_the_study_folder_alone(coated_only):
    out = coated_only / "out"
    html = coated_only / "again.html"
    res = CliRunner().invoke(cli, ["report", str(out), "-o", str(html), "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["html"] == str(html) and html.exists()
    assert "figure_3" in d["figures"]          # run files found from the cache records
    assert "figure_1" in d["left_out"] and not d["skipped"]
    text = "".join(_page(html).text)
    assert "cylinder:25" in text               # the parameters, from the cache records


def test_liprobe_report_usage_and_input_errors(tmp_path):
    r = CliRunner().invoke(cli, ["report", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such folder" in r.output
    r = CliRunner().invoke(cli, ["report", str(tmp_path), "-o", "x.txt"])
    assert r.exit_code == 2 and ".html" in r.output
    r = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert r.exit_code == 1
    assert "runs.parquet: no such file" in r.output and len(r.output.strip().splitlines()) == 1


def test_liprobe_demo_usage_errors(tmp_path):
    for args in (["--ions", "0"], ["--workers", "-1"],
                 ["--workers", "1", "--scheduler", "tcp://127.0.0.1:1"]):
        r = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path / "d"), *args])
        assert r.exit_code == 2, (args, r.output)
    assert not os.path.exists(tmp_path / "d")
