"""Every figure of the demo is a valid, non-blank image; figures the study cannot support
are skipped with a reason, never a crash."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from liprobe.report import (
    FIGURES,
    FigureSkipped,
    field_collapse,
    figure_1,
    figure_5,
    figure_6,
    figure_7,
    supplementary_figure_3,
    supplementary_table_1,
)


def _non_blank_png(path):
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        a = np.asarray(im.convert("L"), dtype=np.float64)
    assert a.shape[0] > 150 and a.shape[1] > 150, a.shape
    inked = np.mean(a < 200)
    assert 0.01 < inked < 0.98, f"{path}: {inked:.3f} of the pixels are dark"
    assert a.std() > 10, f"{path}: flat image"


def _valid_svg(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg"), root.tag
    drawn = [e for e in root.iter() if e.tag.rsplit("}", 1)[-1] in ("path", "image", "use")]
    assert len(drawn) > 20, f"{path}: {len(drawn)} drawing elements"


def test_every_figure_is_drawn_as_a_valid_non_blank_png_and_svg(demo):
    drawn = demo.summary["report"]["figures"]
    assert not demo.summary["report"]["skipped"], demo.summary["report"]["skipped"]
    # the paper's series draws every figure but those of a study without a coating
    # comparison (each run's spectrum, maps and profile: Figures 1, 3 and 4 show them)
    left_out = demo.summary["report"]["left_out"]
    assert set(left_out) == {"spectra", "maps", "profiles"}, left_out
    assert set(drawn) == {f.name for f in FIGURES} - set(left_out)
    for _name, paths in drawn.items():
        assert sorted(p.rsplit(".", 1)[1] for p in paths) == ["png", "svg"], paths
        for p in paths:
            (_non_blank_png if p.endswith(".png") else _valid_svg)(p)


def test_supplementary_table_1_gives_mu_by_laser_energy_and_material(demo):
    t = pd.read_csv(demo.out / "figures" / "supplementary_table_1.csv", index_col=0)
    assert {"NMC811, coated", "NMC811, uncoated", "LiMn2O4"} <= set(t.columns)
    assert any(c.startswith("NMC811 particles of another phase") for c in t.columns)
    coated = demo.table[(demo.table["coating"] == "Cr") & (demo.table["material"] == "NMC811")
                        & ~demo.table["flags"].fillna("").str.contains("other_phase")]
    at5 = coated[coated["laser_pj"] == 5]["fda_mu_Li+"].mean()
    assert t.loc[5.0, "NMC811, coated"] == pytest.approx(at5)


def _table(**cols):
    n = len(next(iter(cols.values())))
    base = {"run": [f"r{i}" for i in range(n)], "segment": [None] * n, "status": ["ok"] * n,
            "material": ["NMC811"] * n, "coating": ["Cr"] * n, "particle": ["P1"] * n,
            "laser_pj": [5.0 + 5 * i for i in range(n)], "flags": [""] * n}
    base.update(cols)
    return pd.DataFrame(base)


def test_figures_without_what_they_need_are_skipped_with_the_reason(tmp_path):
    t = _table(**{"Li/(Li+Ni+Co+Mn)": [0.5, 0.49, 0.51]})
    with pytest.raises(FigureSkipped, match="no uncoated run"):
        figure_1(t, tmp_path)
    with pytest.raises(FigureSkipped, match="O2\\+/O\\+"):
        figure_5(t, tmp_path)
    with pytest.raises(FigureSkipped, match="Mn\\+\\+/Mn\\+"):
        figure_7(t, tmp_path)
    with pytest.raises(FigureSkipped, match="charge-state ratio"):
        supplementary_figure_3(t, tmp_path)
    assert supplementary_table_1(t) is None
    assert list(tmp_path.iterdir()) == []


def test_figure_5_plots_the_tables_numbers_with_expected_lines(tmp_path):
    t = _table(**{"O2+/O+": [2.5, 3.1, 4.2], "O2+/O+_err": [0.1] * 3,
                  "Li/(Li+Ni+Co+Mn)": [0.5, 0.49, 0.51], "Li/(Li+Ni+Co+Mn)_err": [0.01] * 3})
    paths = figure_5(t, tmp_path)
    assert [p.rsplit(".", 1)[1] for p in paths] == ["png", "svg"]
    _non_blank_png(paths[0])
    root = ET.parse(paths[1]).getroot()
    text = ET.tostring(root, encoding="unicode")
    assert "NMC811: 0.5" in text                # the expected value, dashed
    assert "particle P1" in text


def test_figure_7_draws_runs_of_another_phase_without_particles_or_li_mn_ratios(tmp_path):
    t = _table(**{"Mn++/Mn+": [1.2, 1.5, 1.9], "O2+/O+": [2.9, 3.0, 3.1],
                  "at_pct_Li": [14.0, 14.5, 13.8], "at_pct_Mn": [28.0, 28.4, 28.9],
                  "flags": ["other_phase"] * 3, "best_phase": ["LiMn2O4"] * 3})
    t = t.drop(columns=["particle"])
    paths = figure_7(t, tmp_path)
    _non_blank_png(paths[0])
    text = ET.tostring(ET.parse(paths[1]).getroot(), encoding="unicode")
    assert "LiMn2O4: 0.667" in text and "LiMn2O4: 0.333" in text


def test_field_collapse_is_skipped_without_a_truth_file(tmp_path):
    t = _table(**{"O2+/O+": [2.5, 3.1, 4.2], "O2+/O+_err": [0.1] * 3})
    with pytest.raises(FigureSkipped, match="truth file"):
        field_collapse(t, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_demo_o2_ratio_collapses_on_the_model_curve_against_the_true_field(demo):
    """Measured blind (the study's O2+/O+ in its ROI) against the simulator's true mean field
    of the oxide's ions: every coated and uncoated row of the demo on the model's r(F)."""
    from liprobe.report.figures import _truth_segment
    from liprobe.report.sources import RunFiles
    from liprobe.simulate.evaporation import EvaporationModel, o2_to_o_ratio
    from liprobe.study import load_manifest

    runs = RunFiles.from_manifest(load_manifest(demo.out / "series" / "study.toml"))
    t = demo.table[demo.table["material"] == "NMC811"]
    t = t[~t["flags"].fillna("").str.contains("other_phase")]
    cache: dict = {}
    checked = {"Cr": 0, "none": 0}
    for _, row in t.iterrows():
        seg, evap = _truth_segment(runs, row, cache)
        f = seg["field"]["oxide_mean_v_nm"]
        r, err = row["O2+/O+"], row["O2+/O+_err"]
        expect = o2_to_o_ratio(EvaporationModel(**evap), f)
        # counting error, and 8 % for the field map seen through a 25 nm ROI (the ROI's
        # field is not the mean over all the oxide's ions)
        assert abs(r - expect) < 3 * err + 0.08 * expect, (row["run"], r, expect)
        checked[row["coating"]] += 1
    assert checked["Cr"] >= 5 and checked["none"] >= 2, checked


def test_demo_figures_have_readable_fonts_unique_panel_letters_and_the_papers_numbers(demo):
    import re

    from liprobe.report.figures import DPI, MIN_FONT_PT, PAGE_PX

    from .test_table_html import _svg_texts

    drawn = demo.summary["report"]["figures"]
    for name, paths in drawn.items():
        texts, width_pt = _svg_texts(next(p for p in paths if p.endswith(".svg")))
        scale = min(1.0, PAGE_PX / (width_pt / 72.0 * DPI))
        smallest = min(size for size, _ in texts)
        assert smallest * scale >= MIN_FONT_PT - 0.05, (name, smallest, scale)
        letters = [m.group(1) for _, t in texts for m in [re.match(r"^\(([a-z])\)", t)] if m]
        assert len(letters) == len(set(letters)), (name, letters)
    # the paper preset keeps the paper's numbering, in the figure and in the report
    texts, _ = _svg_texts(next(p for p in drawn["figure_1"] if p.endswith(".svg")))
    assert any(t.startswith("Figure 1. Uncoated NMC811") for _, t in texts)
    html = demo.html.read_text()
    assert "<b>Figure 5.</b>" in html and "Supplementary Table 1" in html


def test_figures_follow_the_studys_numbering(tmp_path):
    t = _table(**{"O2+/O+": [2.5, 3.1, 4.2], "O2+/O+_err": [0.1] * 3,
                  "Li/(Li+Ni+Co+Mn)": [0.5, 0.49, 0.51], "Li/(Li+Ni+Co+Mn)_err": [0.01] * 3})
    paper = ET.tostring(ET.parse(figure_5(t, tmp_path / "p")[1]).getroot(), encoding="unicode")
    plain = ET.tostring(ET.parse(figure_5(t, tmp_path / "d", numbering="descriptive")[1])
                        .getroot(), encoding="unicode")
    assert "Figure 5. Coated NMC811" in paper
    assert "Figure 5" not in plain and "Coated NMC811, particle P1" in plain


def test_which_figures_a_study_gets_depends_on_what_it_holds():
    by = {f.name: f for f in FIGURES}
    coated = _table(**{"O2+/O+": [2.5, 3.1, 4.2], "Li/(Li+Ni+Co+Mn)": [0.5, 0.49, 0.51]})
    assert by["figure_5"].why_not(coated) is None               # field-proxy plots
    assert by["figure_6"].why_not(coated) == "fewer than two coated particles"
    assert by["figure_1"].why_not(coated).startswith("no coated and uncoated runs")
    assert by["field_by_laser"].why_not(coated) is None         # 5, 10, 15 pJ: a series
    both = coated.assign(coating=["Cr", "none", "Cr"], particle=["P1", "P2", "P1"])
    assert by["figure_1"].why_not(both) is None and by["yield_by_coating"].why_not(both) is None
    assert by["figure_6"].why_not(both) == "fewer than two coated particles"
    two = both.assign(particle=["P1", "P1", "P2"])
    assert by["figure_6"].why_not(two) is None                  # the particle spread
    one_pj = coated.assign(laser_pj=[5.0] * 3)
    assert by["field_by_laser"].why_not(one_pj) == "no laser-energy series"
    # one material, no coating: the runs' own spectra, maps and profiles
    si = coated.assign(coating=["none"] * 3, material=["Si"] * 3)
    for name in ("spectra", "compositions", "maps", "profiles"):
        assert by[name].why_not(si) is None, name
    assert by["maps"].why_not(coated) == "the coated runs' maps and profiles are drawn"


def test_an_uncoated_laser_series_gets_the_field_proxy_plots_and_its_particle_spread(tmp_path):
    """No coated run: the ratios against the field proxy are the uncoated runs' (their
    particles for the spread), drawn from the table's own numbers."""
    by = {f.name: f for f in FIGURES}
    bare = _table(**{"O2+/O+": [2.5, 3.1, 4.2, 3.6], "O2+/O+_err": [0.1] * 4,
                     "Li/(Li+Ni+Co+Mn)": [0.47, 0.45, 0.41, 0.44],
                     "Li/(Li+Ni+Co+Mn)_err": [0.01] * 4,
                     "coating": ["none"] * 4, "particle": ["A", "A", "B", "B"]})
    assert by["figure_5"].why_not(bare) is None
    assert by["figure_6"].why_not(bare) is None
    assert by["figure_6"].why_not(bare.assign(particle=["A"] * 4)) == \
        "fewer than two uncoated particles"
    # one run with a measured proxy is no series
    assert by["figure_5"].why_not(bare.assign(**{"O2+/O+": [2.5, None, None, None]})) == \
        "fewer than two runs with a measured O2+/O+"
    svg = figure_5(bare, tmp_path, numbering="descriptive")[1]
    text = ET.tostring(ET.parse(svg).getroot(), encoding="unicode")
    assert "Uncoated NMC811, particle A" in text
    # the particle with the most rows first; ties in table order: A, then B
    six = figure_6(bare, tmp_path, numbering="descriptive")[1]
    text = ET.tostring(ET.parse(six).getroot(), encoding="unicode")
    assert "A (2 rows)" in text and "B (2 rows)" in text and "2 particles" in text


def test_no_legend_of_a_demo_figure_covers_a_panel(demo, tmp_path, monkeypatch):
    """Every legend of every static figure of the demo's report lies outside every panel
    (axes) of its figure, colour bars aside: it covers no data (issue 25). Measured on
    the drawn figure, in display pixels."""
    from liprobe.report import build_report, figures as F

    seen: dict = {}
    real = F._save

    def spy(fig, out_dir, stem):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        r = canvas.get_renderer()
        panels = [a for a in fig.axes if a.get_label() != "<colorbar>"]
        for ax in fig.axes:
            leg = ax.get_legend()
            if leg is None or not leg.get_visible():
                continue
            lb = leg.get_window_extent(r)
            for other in panels:
                ab = other.get_window_extent(r)
                # touching is fine; a shared area of more than 2 px each way is not
                w = min(lb.x1, ab.x1) - max(lb.x0, ab.x0)
                h = min(lb.y1, ab.y1) - max(lb.y0, ab.y0)
                assert not (w > 2 and h > 2), (stem, ax.get_title(), other.get_title(),
                                               tuple(lb.bounds), tuple(ab.bounds))
            seen[stem] = seen.get(stem, 0) + 1
        return real(fig, out_dir, stem)

    monkeypatch.setattr(F, "_save", spy)
    res = build_report(demo.out, manifest=demo.manifest, html_path=str(tmp_path / "r.html"),
                       numbering="paper")
    assert not res.skipped, res.skipped
    assert sum(seen.values()) >= 10 and len(seen) >= 6, seen     # legends were checked
