"""The report's interactive figures (issue 25): what the demo report and a Si study get,
checked against the study's own table and files."""

from __future__ import annotations

import re

import numpy as np

from liprobe.report.interactive import plotly_script
from liprobe.report.interactive_section import ATOM_MAP_IONS, interactive_figures
from liprobe.report.sources import RunFiles, row_label


def _plotly_bundles(html: str) -> int:
    marker = plotly_script()[200:260]          # a piece of plotly.js itself
    return html.count(marker)


def test_demo_report_holds_five_or_more_plotly_figures_and_plotly_once(demo):
    html = demo.html.read_text(encoding="utf-8")
    ids = set(re.findall(r'id="(liprobe-[a-z0-9-]+)"', html))
    assert {"liprobe-spectra", "liprobe-overlay", "liprobe-atom-map", "liprobe-detector",
            "liprobe-ratio-1"} <= ids and len(ids) >= 5
    assert _plotly_bundles(html) == 1
    assert not re.search(r"<script[^>]+src=", html)            # nothing fetched
    assert demo.html.stat().st_size < 15e6
    assert set(demo.summary["report"]["interactive"]) >= {"spectra", "atom-map"}


def test_ratio_points_are_the_tables_values_and_name_their_rows(demo):
    from liprobe.study import load_manifest

    m = load_manifest(demo.manifest)
    figs, left = interactive_figures(demo.table, RunFiles.from_manifest(m), m.params)
    by = {f.key: f for f in figs}
    x, y = m.params.field_proxies[0], m.params.ratios[0]
    ok = demo.table[demo.table["status"] == "ok"].dropna(subset=[x, y])
    traces = [t for t in by["ratio-1"].figure.data if t.type == "scatter"]
    assert {t.name for t in traces} <= {"uncoated", "coated", "another phase",
                                        "reference material"} and len(traces) >= 3
    got = {}                                      # row name -> (x, y, error), every trace
    for t in traces:
        for h, xv, yv, ev in zip(t.hovertext or t.text, t.x, t.y, t.error_y.array):
            got[str(h)] = (xv, yv, ev)
    assert len(got) == len(ok)
    for _, r in ok.iterrows():
        key = next(h for h in got if row_label(r) in h.split("<br>")[0])
        assert np.allclose(got[key], (r[x], r[y], r[f"{y}_err"]))
    # one spectrum trace per data file, the atom map within its sample size
    files = {m_.data for m_ in m.runs if m_.data}
    spectra = [t for t in by["spectra"].figure.data if t.type == "scatter" and t.name
               and not t.name.endswith("window")]
    assert len(spectra) == min(len(files), 40)
    n_atoms = sum(len(t.x) for t in by["atom-map"].figure.data if t.type == "scatter3d"
                  and t.mode == "markers")
    assert 0.5 * ATOM_MAP_IONS < n_atoms <= ATOM_MAP_IONS
    # the demo's ratios beyond the first three are left out, each with its reason
    assert set(left) == {f"ratio {r}" for r in m.params.ratios[3:]}
    assert set(left.values()) <= {"only the first 3 ratios are drawn"}


def test_the_paper_numbering_is_asked_for_and_not_the_default(demo, tmp_path):
    from click.testing import CliRunner

    from liprobe.cli import cli

    def titles(numbering):
        out = tmp_path / f"{numbering}.html"
        res = CliRunner().invoke(cli, ["report", str(demo.out), "--manifest", demo.manifest,
                                       "-o", str(out), "-q", "--numbering", numbering])
        assert res.exit_code == 0, res.output
        text = re.sub(r"<script\b[^>]*>.*?</script>", " ", out.read_text(encoding="utf-8"),
                      flags=re.S)
        return re.findall(r"<figcaption><b>([^<]*)\.</b>", text)

    paper, plain = titles("paper"), titles("descriptive")
    assert "Figure 1" in paper and "Figure 5" in paper and len(paper) == len(plain)
    assert not any(re.match(r"(Supplementary )?Figure \d", t) for t in plain)
