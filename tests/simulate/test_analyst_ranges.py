"""Ranges as an analyst makes them (liprobe.simulate.analyst_ranges), on spectra made here.

The spectra are drawn with numpy alone: NMC811 ions at their isotopic m/n
(isotope masses and abundances typed in from the AME2020 / IUPAC tables, not
taken from liprobe), Gaussian cores, exponential thermal tails toward high m/n
and a uniform background. The preset's own files are tested in test_preset.py.
"""

import json

import numpy as np
import pytest

from liprobe import Range, RangeTable, parse_ion
from liprobe.errors import AnalysisError
from liprobe.simulate.analyst_ranges import (
    MassSample,
    analyst_elements,
    keep_truth_ranges,
    material_ranges,
    ranging_bias,
    sample_masses,
    window_disagreement,
)

E = 0.000549                                   # electron mass, Da
#: isotope -> (mass in Da, abundance); AME2020 masses, IUPAC abundances
LI = [(6.015123, 0.0759), (7.016003, 0.9241)]
OX = [(15.994915, 0.99757), (16.999132, 0.00038), (17.999160, 0.00205)]
NI = [(57.935342, 0.68077), (59.930786, 0.26223), (60.931056, 0.011399),
      (61.928345, 0.036346), (63.927967, 0.009255)]
CO = [(58.933194, 1.0)]
MN = [(54.938043, 1.0)]


def _combine(*parts):
    """Isotopologues of a molecule: (mass, abundance) of every combination."""
    out = [(0.0, 1.0)]
    for iso in parts:
        out = [(m + mi, a * ai) for m, a in out for mi, ai in iso]
    return out


#: ion -> (charge, isotopologues, share of the ions)
IONS = {
    "Li+": (1, LI, 0.25), "O+": (1, OX, 0.10), "O2+": (1, _combine(OX, OX), 0.28),
    "Ni+": (1, NI, 0.20), "Ni++": (2, NI, 0.06), "NiO+": (1, _combine(NI, OX), 0.05),
    "Co+": (1, CO, 0.03), "Mn+": (1, MN, 0.03),
}
BACKGROUND = 0.02            # share of the ions, uniform over 1-100 Da
TAIL_FRACTION = 0.3          # share of a peak's ions delayed into its thermal tail


def spectrum(n, tail_da_at_16, seed, fwhm_rel=1 / 900):
    """n ions: a list of (ion, peak m/n, its masses) and the background; all masses."""
    rng = np.random.default_rng(seed)
    peaks, parts = [], []
    for ion, (z, isos, share) in IONS.items():
        for m, a in isos:
            k = rng.poisson(n * (1 - BACKGROUND) * share * a)
            if k == 0:
                continue
            mz = (m - z * E) / z
            x = rng.normal(mz, mz * fwhm_rel / 2.3548, k)
            tail = rng.random(k) < TAIL_FRACTION
            x[tail] += rng.exponential(tail_da_at_16 * np.sqrt(mz / 16), tail.sum())
            peaks.append((ion, mz, x))
            parts.append(x)
    parts.append(rng.uniform(1, 100, int(n * BACKGROUND)))
    return peaks, np.concatenate(parts)


def _covered(table, ion, x):
    """Share of the masses ``x`` in windows of ``ion``."""
    lo = np.array([r.lo for r in table.ranges if r.ion.name == ion])
    hi = np.array([r.hi for r in table.ranges if r.ion.name == ion])
    if not len(lo):
        return 0.0
    return float(((x[:, None] >= lo) & (x[:, None] < hi)).any(axis=1).mean())


def test_the_pool_of_two_runs_has_windows_that_cover_every_known_peak():
    peaks_a, a = spectrum(150_000, 0.03, seed=1)
    peaks_b, b = spectrum(150_000, 0.03, seed=2)
    res = material_ranges("NMC811", {"Cr": [a, b]}, ("Li", "Ni", "Co", "Mn", "O", "Cr", "H"))
    assert not res.split and len(res.pools) == 1
    pool = res.pools[0]
    assert pool.name == "NMC811" and pool.sample["ions_total"] == len(a) + len(b)
    assert pool.sample["ions_sampled"] == len(a) + len(b)        # below max_ions: all of them
    table = pool.table
    pooled = {}
    for ion, mz, x in peaks_a + peaks_b:
        pooled.setdefault((ion, mz), []).append(x)
    checked = []
    for (ion, mz), xs in pooled.items():
        x = np.concatenate(xs)
        if len(x) < 300:             # a few hundred ions: a peak well above the background
            continue
        checked.append((ion, round(mz)))
        # the peak's centre is in a window of its own ion ...
        assert any(r.ion.name == ion and r.lo <= mz < r.hi for r in table.ranges), (ion, mz)
        # ... which holds its core and nearly all its tail (4 decay lengths: 98 % of it)
        assert _covered(table, ion, x) > 0.97, (ion, mz, _covered(table, ion, x))
    # every isotope of Li, Ni and NiO above 0.9 % of its ion, 16O+, 16O2+ and 16O18O+
    # every peak of at least 300 ions: all but the rarest isotopes (17O, 61Ni++, 64Ni++...)
    assert sorted(checked) == [
        ("Co+", 59), ("Li+", 6), ("Li+", 7), ("Mn+", 55), ("Ni+", 58), ("Ni+", 60), ("Ni+", 61),
        ("Ni+", 62), ("Ni+", 64), ("Ni++", 29), ("Ni++", 30), ("Ni++", 31), ("NiO+", 74),
        ("NiO+", 76), ("NiO+", 78), ("O+", 16), ("O2+", 32), ("O2+", 34)]
    # nothing else is ranged as an ion of the material: no Cr in these runs
    assert {ion.name for ion in table.ions} >= set(IONS)
    assert not any(ion.name.startswith("Cr") for ion in table.ions)


def test_short_and_long_tails_get_one_set_of_windows_each():
    _, short = spectrum(120_000, 0.02, seed=3)
    _, long_ = spectrum(120_000, 0.25, seed=4)
    res = material_ranges("NMC811", {"Cr": [short], "none": [long_]})
    assert res.split, res.reason
    assert [p.name for p in res.pools] == ["NMC811-Cr-coated", "NMC811-uncoated"]
    assert res.pool_of("none").coatings == ("none",)
    d = res.disagreement
    assert max(d["Cr"]["disagreement"], d["none"]["disagreement"]) > 0.005
    li = {p.name: next(r for r in p.table.ranges if r.ion.name == "Li+" and r.lo < 7.016 < r.hi)
          for p in res.pools}
    # the long tails' Li+ window reaches further above the peak than the short tails' one
    assert li["NMC811-uncoated"].hi - 7.016 > 3 * (li["NMC811-Cr-coated"].hi - 7.016)
    # same tails: one set of windows
    _, again = spectrum(120_000, 0.02, seed=5)
    same = material_ranges("NMC811", {"Cr": [short], "none": [again]})
    assert not same.split and [p.name for p in same.pools] == ["NMC811"], same.reason
    assert same.pool_of("none") is same.pool_of("Cr")
    json.dumps(same.to_dict())


def test_a_pool_without_a_peak_is_one_line_naming_the_pool():
    noise = np.random.default_rng(0).uniform(1, 100, 5000)
    with pytest.raises(AnalysisError) as e:
        material_ranges("LiMn2O4", {"Cr": [noise]})
    msg = str(e.value)
    assert "'LiMn2O4'" in msg and "autorange" in msg and "\n" not in msg
    with pytest.raises(AnalysisError, match="no runs"):
        material_ranges("NMC811", {})
    with pytest.raises(AnalysisError, match="max_ions"):
        sample_masses([noise], max_ions=0)
    with pytest.raises(AnalysisError, match="not-a-formula"):
        analyst_elements("not-a-formula")


def test_the_sample_keeps_every_ion_with_one_rate_and_nests():
    a = np.full(30_000, 7.0)
    b = np.full(10_000, 16.0)
    s = sample_masses([a, b], max_ions=8000, seed=4)
    assert s.rate == pytest.approx(0.2) and s.ions_total == 40_000 and s.tof_ns is None
    n7, n16 = (s.mass_da == 7).sum(), (s.mass_da == 16).sum()
    # binomial: 6000 +- 69 and 2000 +- 40, within 5 sigma
    assert abs(n7 - 6000) < 350 and abs(n16 - 2000) < 200
    half = s.at_rate(0.1)
    assert isinstance(half, MassSample) and half.rate == 0.1
    assert set(half.key.tolist()) <= set(s.key.tolist()) and (half.key < 0.1).all()
    assert np.array_equal(sample_masses([a, b], 8000, seed=4).mass_da, s.mass_da)


def test_window_disagreement_counts_ions_named_differently():
    m = np.array([7.0, 7.2, 16.0, 16.1, 32.0, 50.0])
    a = RangeTable.from_ranges([Range(6.9, 7.3, parse_ion("Li+")),
                                Range(15.9, 16.2, parse_ion("O+"))])
    b = RangeTable.from_ranges([Range(6.9, 7.1, parse_ion("Li+")),
                                Range(15.9, 16.2, parse_ion("O2++")),
                                Range(31.9, 32.1, parse_ion("O2+"))])
    d = window_disagreement(m, a, b)
    # 7.2 ranged by a only, 16.0 and 16.1 named O+ / O2++, 32.0 ranged by b only
    assert d == {"ions": 6, "disagreement": pytest.approx(4 / 6),
                 "only_a": pytest.approx(1 / 6), "only_b": pytest.approx(1 / 6)}
    assert window_disagreement(np.zeros(0), a, b)["disagreement"] is None


def test_ranging_bias_is_the_difference_of_the_ratios_under_the_two_tables():
    truth = RangeTable.from_ranges([Range(6.9, 7.5, parse_ion("Li+")),
                                    Range(15.9, 16.3, parse_ion("O+")),
                                    Range(31.9, 32.3, parse_ion("O2+")),
                                    Range(57.8, 58.4, parse_ion("Ni+"))])
    mine = RangeTable.from_ranges([Range(6.9, 7.2, parse_ion("Li+")),
                                   Range(15.9, 16.3, parse_ion("O+")),
                                   Range(31.9, 32.1, parse_ion("O2+")),
                                   Range(57.8, 58.4, parse_ion("Ni+"))])
    m = np.array([7.0] * 6 + [7.3] * 2 + [16.0] * 4 + [32.0] * 6 + [32.2] * 2 + [58.0] * 8)
    b = ranging_bias(m, mine, truth)
    # by hand: Li 6 vs 8 of Li+Ni (8), O2+/O+ 6/4 vs 8/4; Ni/(Ni+Co+Mn) = 1 both
    assert b.truth["Li/(Li+Ni+Co+Mn)"] == pytest.approx(8 / 16)
    assert b.analyst["Li/(Li+Ni+Co+Mn)"] == pytest.approx(6 / 14)
    assert b.bias["O2+/O+"] == pytest.approx(6 / 4 - 8 / 4)
    assert b.bias["Ni/(Ni+Co+Mn)"] == 0
    assert b.ranged_fraction == {"analyst": pytest.approx(24 / 28), "truth": 1.0}
    json.dumps(b.to_dict())
    # an element no window holds counts 0 (an LiMn2O4 run's Ni); a ratio that cannot be
    # computed is None with its reason, not NaN
    c = ranging_bias(m, mine, truth, ["Co/(Co+Ni)", "Co/(Co+Mn)", "Mn++/Li+"])
    assert c.bias["Co/(Co+Ni)"] == 0
    assert c.bias["Co/(Co+Mn)"] is None and "zero" in c.reasons["truth:Co/(Co+Mn)"]
    assert c.bias["Mn++/Li+"] is None and "Mn++" in c.reasons["analyst:Mn++/Li+"]


def test_keep_truth_ranges_renames_the_file_and_the_truth_names_it(tmp_path):
    from liprobe.simulate import SimulationConfig, simulate_to_files

    path = tmp_path / "run.epos"
    simulate_to_files(SimulationConfig("NMC811", coating="Cr", ions=3000, seed=1), path)
    kept = keep_truth_ranges(path)
    assert kept == str(tmp_path / "run.truth.rrng")
    assert not (tmp_path / "run.rrng").exists() and (tmp_path / "run.truth.rrng").is_file()
    truth = json.loads((tmp_path / "run.truth.json").read_text())
    assert truth["files"]["ranges"] == "run.truth.rrng"
    assert keep_truth_ranges(path) == kept                       # again: nothing to do
    from liprobe.errors import FormatError

    with pytest.raises(FormatError, match="range file is missing"):
        keep_truth_ranges(tmp_path / "other.epos")
