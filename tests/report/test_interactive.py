"""The interactive (plotly) figures of ``liprobe.report.interactive``: each figure's data
against the same numbers computed another way (numpy on the masses, positions and hits),
hover texts naming the run, and the HTML embedding plotly.js once, with no network."""

from __future__ import annotations

import numpy as np
import pytest

import liprobe
from liprobe import Range, RangeTable, parse_ion
from liprobe.errors import AnalysisError
from liprobe.report.interactive import (
    atom_map_figure,
    composition_figure,
    detector_figure,
    figure_html,
    overlay_figure,
    plotly_script,
    run_label,
    sample_indices,
    scatter_figure,
    spectrum_figure,
)


@pytest.fixture(scope="module")
def si(real):
    d = real / "apav_si"
    return (liprobe.read(d / "Si_first100000.epos"), liprobe.read_ranges(d / "Si.RRNG"),
            liprobe.read(d / "Si.pos"))


def _table():
    return RangeTable.from_ranges([Range(6.9, 7.2, parse_ion("Li+")),
                                   Range(15.9, 16.2, parse_ion("O+")),
                                   Range(31.8, 32.2, parse_ion("O2+"))])


def _naive_ion_names(mass, table):
    """Each ion's name by a plain loop over the windows ([lo, hi)), None when unranged."""
    out = np.full(len(mass), None, dtype=object)
    for r in table.ranges:
        out[(mass >= r.lo) & (mass < r.hi)] = r.ion.name
    return out


def _hover_strings(trace):
    return " ".join(str(v) for v in (trace.hovertemplate, trace.text, trace.name) if v)


def _bins(trace):
    """The bin centres of a spectrum trace (x0 + dx * k), in Da."""
    return trace.x0 + trace.dx * np.arange(len(trace.y))


# -- spectrum ------------------------------------------------------------------------------

def test_spectrum_counts_are_numpys_histogram_of_the_real_masses(si):
    run, table, _ = si
    fig = spectrum_figure(run, table)
    line = fig.data[0]
    y = np.asarray(line.y)
    assert line.dx == pytest.approx(0.01) and line.x0 == pytest.approx(0.005)
    edges = 0.0 + 0.01 * np.arange(len(y) + 1)
    expect, _ = np.histogram(np.asarray(run["mass"], np.float64), bins=edges)
    assert np.array_equal(y.astype(np.int64), expect)
    assert y.sum() == run.n_ions                      # the default window holds every mass
    assert edges[-1] > float(run["mass"].max())
    assert y.dtype.kind == "u"                        # compact: integer counts, no x array
    assert line.x is None
    assert fig.layout.yaxis.type == "log"
    assert "Da" in fig.layout.xaxis.title.text


def test_spectrum_shades_every_window_named_by_ion_and_window_and_hover_names_the_run(si):
    run, table, _ = si
    fig = spectrum_figure(run, table, labels=["my-si-run"])
    fills = fig.data[1:]
    assert len(fills) == len(table)
    for tr, r in zip(fills, table.ranges):
        assert tr.fill == "toself"
        assert min(tr.x) == pytest.approx(r.lo) and max(tr.x) == pytest.approx(r.hi)
        assert f"{r.ion.name}: {r.lo:.3f}-{r.hi:.3f} Da" in tr.text
        assert tr.fillcolor == r.color
    # one legend entry per ion, not per window
    assert sum(bool(t.showlegend) for t in fills) == len(table.ions)
    for tr in fig.data:
        assert "my-si-run" in _hover_strings(tr)


def test_spectrum_of_several_arrays_and_a_given_window():
    a = np.array([7.004, 7.004, 16.013, 31.999], np.float32)
    b = np.array([16.013, 16.017, 16.055], np.float32)
    fig = spectrum_figure([a, b], labels=["a", "b"], bin_da=0.5, mass_range=(5, 35))
    assert [t.meta for t in fig.data] == ["a", "b"]
    ya, yb = (np.asarray(t.y) for t in fig.data)
    assert len(ya) == 60 and ya[(7 - 5) * 2] == 2 and ya[(16 - 5) * 2] == 1 and ya.sum() == 4
    assert yb[(16 - 5) * 2] == 3 and yb.sum() == 3
    assert _bins(fig.data[0])[4] == pytest.approx(7.25)


# -- overlay -------------------------------------------------------------------------------

def test_overlay_curves_are_each_normalised_to_one(si):
    run, table, _ = si
    first, second = run.select(slice(0, 30_000)), run.select(slice(30_000, None))
    fig = overlay_figure(first, second, table, labels=["first", "rest"], mass_range=(0, 100))
    a, b = fig.data[:2]
    assert (a.name, b.name) == ("first", "rest")
    for tr, part in ((a, first), (b, second)):
        y = np.asarray(tr.y, np.float64)
        assert y.sum() == pytest.approx(1.0, abs=1e-5)
        m = np.asarray(part["mass"], np.float64)
        counts, _ = np.histogram(m, bins=0.01 * np.arange(len(y) + 1))
        assert np.allclose(y, counts / counts.sum(), rtol=1e-6, atol=0)
    assert "rest" in b.hovertemplate and "first" in a.hovertemplate
    assert len(fig.data) == 2 + len(table)


def test_overlay_of_a_run_without_ions_in_the_window_says_so():
    a = np.array([7.0, 16.0], np.float32)
    b = np.array([150.0], np.float32)
    with pytest.raises(AnalysisError, match="no ions"):
        overlay_figure(a, b, labels=["a", "b"], mass_range=(0, 100))


# -- one point per run ---------------------------------------------------------------------

def test_scatter_names_each_run_and_draws_its_error_bars():
    rows = [{"name": "cr-5pj", "f": 1.5, "r": 0.50, "r_err": 0.01},
            {"name": "un-5pj", "f": 2.5, "r": 0.42, "r_err": 0.02},
            {"name": "failed", "f": None, "r": 0.1, "r_err": 0.1}]
    fig = scatter_figure(rows, "f", "r", yerr="r_err", x_title="O2+/O+")
    tr = fig.data[0]
    assert list(tr.text) == ["cr-5pj", "un-5pj"]                 # the row without x left out
    assert np.allclose(tr.x, [1.5, 2.5]) and np.allclose(tr.y, [0.50, 0.42])
    assert np.allclose(tr.error_y.array, [0.01, 0.02])
    assert "%{text}" in tr.hovertemplate
    assert fig.layout.xaxis.title.text == "O2+/O+"
    pd = pytest.importorskip("pandas")
    same = scatter_figure(pd.DataFrame(rows), "f", "r", yerr="r_err")
    assert list(same.data[0].text) == list(tr.text)


# -- atom map ------------------------------------------------------------------------------

def test_atom_map_holds_the_seeded_sample_per_species_as_the_masses_say(si):
    run, table, _ = si
    fig = atom_map_figure(run, table, max_ions=5_000, seed=3)
    idx = np.sort(np.random.default_rng(3).choice(run.n_ions, 5_000, replace=False))
    names = _naive_ion_names(np.asarray(run["mass"])[idx], table)
    points = [t for t in fig.data if t.mode == "markers"]
    assert sum(len(t.x) for t in points) <= 5_000
    got = {t.name.split(" (")[0]: len(t.x) for t in points}
    want = {}
    for n in names[names != None]:  # noqa: E711 - an object array's elementwise test
        want[n] = want.get(n, 0) + 1
    assert got == want
    meta = fig.layout.meta
    assert meta["ions_sampled"] == 5_000 and meta["unranged_left_out"] == int(
        np.sum(names == None))  # noqa: E711
    # the positions are the sampled ions' own (float32), species by species
    si_plus = next(t for t in points if t.name.startswith("Si+ "))
    pick = idx[names == "Si+"]
    assert np.array_equal(np.asarray(si_plus.x), np.asarray(run["x"])[pick])
    assert np.array_equal(np.asarray(si_plus.z), np.asarray(run["z"])[pick])
    for t in fig.data:
        assert "Si_first100000" in t.hovertemplate
    assert fig.layout.scene.xaxis.title.text == "x (nm)"


def test_atom_map_of_a_small_run_draws_every_ranged_ion_and_leaves_the_unranged_out():
    mass = np.array([7.0, 7.1, 16.0, 32.0, 50.0, 16.1], np.float32)
    run = liprobe.Run.from_arrays(x=np.arange(6.0), y=np.zeros(6), z=-np.arange(6.0),
                                  mass=mass)
    fig = atom_map_figure(run, _table(), label="tiny")
    got = {t.name: list(t.x) for t in fig.data}
    assert got == {"Li+ (2)": [0.0, 1.0], "O+ (2)": [2.0, 5.0], "O2+ (1)": [3.0]}
    assert fig.layout.meta["unranged_left_out"] == 1
    by_el = atom_map_figure(run, _table(), label="tiny", by="element")
    assert {t.name: len(t.x) for t in by_el.data} == {"Li (2)": 2, "O (3)": 3}


def test_atom_map_outlines_the_cylinder_on_the_selections_axis(si):
    run, table, _ = si
    _core, sel = liprobe.select(run, "cylinder:10")
    fig = atom_map_figure(run, table, max_ions=2_000, roi=sel)
    line = fig.data[-1]
    assert line.mode == "lines" and line.name.startswith("ROI: cylinder, diameter 10 nm")
    x = np.array([v for v in line.x if v is not None], float)
    y = np.array([v for v in line.y if v is not None], float)
    z = np.array([v for v in line.z if v is not None], float)
    cx, cy = np.median(np.asarray(run["x"], np.float64)), np.median(np.asarray(run["y"],
                                                                               np.float64))
    assert np.allclose(np.hypot(x - cx, y - cy), 5.0, atol=0.01)
    drawn_z = np.concatenate([np.asarray(t.z) for t in fig.data[:-1]])
    assert z.min() == pytest.approx(drawn_z.min(), abs=1e-3)
    assert z.max() == pytest.approx(drawn_z.max(), abs=1e-3)
    # a spec is selected on the run to find the same axis
    again = atom_map_figure(run, table, max_ions=2_000, roi="cylinder:10").data[-1]
    assert list(again.x) == list(line.x)


def test_sample_indices_are_seeded_sorted_and_bounded():
    a = sample_indices(1_000, 100, seed=1)
    assert len(a) == 100 and np.all(np.diff(a) > 0) and a.max() < 1_000
    assert np.array_equal(a, sample_indices(1_000, 100, seed=1))
    assert not np.array_equal(a, sample_indices(1_000, 100, seed=2))
    assert np.array_equal(sample_indices(50, 100), np.arange(50))
    with pytest.raises(ValueError):
        sample_indices(10, 0)


# -- detector ------------------------------------------------------------------------------

def test_detector_heatmap_is_numpys_2d_histogram_of_the_hits(si):
    run, _, _ = si
    fig = detector_figure(run, bins=40)
    hm = fig.data[0]
    z = np.asarray(hm.z, np.int64)
    assert z.shape == (40, 40) and z.sum() == run.n_ions
    dx, dy = (np.asarray(run[c], np.float64) for c in ("det_x", "det_y"))
    w = float(hm.x[1] - hm.x[0])
    half = 20 * w
    assert half >= max(np.abs(dx).max(), np.abs(dy).max())
    edges = np.linspace(-half, half, 41)
    expect, _, _ = np.histogram2d(dy, dx, bins=[edges, edges])
    # bins decided in float64 by two different codes: at most a few hits on a border differ
    assert np.abs(z - expect).sum() <= 4
    assert np.corrcoef(z.ravel(), expect.ravel())[0, 1] > 0.9999
    assert "Si_first100000" in hm.hovertemplate and "mm" in fig.layout.xaxis.title.text


def test_detector_figure_of_a_pos_file_says_there_are_no_detector_columns(si):
    _, _, pos = si
    with pytest.raises(AnalysisError, match="det_x"):
        detector_figure(pos)


# -- composition ---------------------------------------------------------------------------

def test_composition_bars_are_the_atomic_percent_with_errors():
    from liprobe.composition import composition

    c = composition(np.array([7.0, 7.1, 16.0, 16.1, 32.0], np.float32), _table())
    fig = composition_figure(c, label="tiny")
    bar = fig.data[0]
    # 2 Li, 2 + 2 O atoms of 6
    assert list(bar.x) == ["Li", "O"]
    assert np.allclose(bar.y, [100 / 3, 200 / 3])
    p = 1 / 3
    assert np.allclose(bar.error_y.array, [100 * np.sqrt(p * (1 - p) / 6)] * 2)
    assert "tiny" in bar.hovertemplate


# -- HTML ----------------------------------------------------------------------------------

def test_figure_html_is_a_div_with_a_stable_id_and_no_plotly_js():
    from plotly.offline import get_plotlyjs

    fig = spectrum_figure(np.array([7.0, 16.0], np.float32), labels=["x"], bin_da=1.0,
                          mass_range=(0, 20))
    h = figure_html(fig, "my-div")
    assert 'id="my-div"' in h and "Plotly.newPlot" in h
    assert get_plotlyjs()[:200] not in h and "<script src" not in h
    assert figure_html(fig) == figure_html(fig)               # the default id: from the content
    assert 'id="liprobe-fig-' in figure_html(fig)


def test_plotly_script_embeds_the_bundle_inline_without_a_source():
    from plotly.offline import get_plotlyjs

    s = plotly_script()
    assert s.startswith("<script") and s.endswith("</script>")
    assert get_plotlyjs() in s
    assert "src=" not in s[:s.index(">")]


def test_run_label_is_the_file_stem_or_the_label(si):
    run, _, pos = si
    assert run_label(run) == "Si_first100000" and run_label(pos) == "Si"
    assert run_label(run, "mine") == "mine"
    assert run_label(liprobe.Run.from_arrays(mass=[1.0])) == "run"
