"""Automatic ranging against simulated runs (whose truth is known) and the real Si run.

Simulated runs are small (300,000 ions, 400,000 uncoated) so that the module runs in
seconds:
coated at 5 pJ, uncoated and coated at 10 pJ (the simulator's laser-energy,
Li transport and H physics apply; uncoated at 5 pJ, two thirds of the Li leave
between pulses, a flat background of ~20 % of the ions, under which the weakest
molecular peaks are no longer significant: tests/simulate/test_lithium.py). See
the module's notes for the ratio comparison of the uncoated run.
"""

import json

import numpy as np
import pytest

import liprobe
from liprobe.composition import composition
from liprobe.spectrum.autorange import autorange

NMC = ["Li", "Ni", "Co", "Mn", "O", "Cr"]
RATIOS = ["Li/(Li+Ni+Co+Mn)", "Ni/(Ni+Co+Mn)", "Co/(Li+Ni+Co+Mn)", "Mn/(Li+Ni+Co+Mn)"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from liprobe.simulate import DEFAULT_HYDROGEN, SimulationConfig, simulate, write_simulation

    out = {}
    base = tmp_path_factory.mktemp("sim")
    for key, coating, pj, seed, h in (("coated", "Cr", 5.0, 1, None),
                                      ("uncoated", "none", 10.0, 2, None),
                                      ("coated10", "Cr", 10.0, 3, None),
                                      ("coated_h", "Cr", 8.0, 4, DEFAULT_HYDROGEN)):
        extra = {} if h is None else {"hydrogen": h}
        # uncoated: 400,000 ions, as its Li from the flanks leaves fewer to the oxides
        n = 400_000 if coating == "none" else 300_000
        res = simulate(SimulationConfig("NMC811", coating=coating, ions=n, seed=seed,
                                        laser_pj=pj, **extra))
        path = base / f"{key}.epos"
        write_simulation(res, path)
        run = liprobe.read(path)
        ar = autorange(run["mass"], NMC, tof=run["tof"])
        out[key] = {"run": run, "ar": ar, "truth": json.loads(path.with_suffix(".truth.json")
                                                              .read_text()),
                    "rrng": liprobe.read_ranges(path.with_suffix(".rrng"))}
    return out


def _ion_at(table, m):
    for r in table.ranges:
        if r.lo <= m < r.hi:
            return r.ion.name
    return None


def _ambiguous_names(ar, m, tol=0.05):
    names = set()
    for a in ar.ambiguities:
        if abs(a["mass"] - m) < tol:
            names |= set(a["ions"])
    return names


@pytest.mark.parametrize("key", ["coated", "uncoated", "coated10", "coated_h"])
def test_every_significant_simulated_peak_is_ranged_and_named_right(runs, key):
    r = runs[key]
    if key == "coated_h":   # the run with chamber hydrogen really carries H ions
        assert any(k.startswith("H") for k in r["truth"]["species"]), sorted(r["truth"]["species"])
    ar, truth = r["ar"], r["truth"]
    checked = 0
    widths = truth["peak_widths"]
    for w in truth["windows"]:
        for d in w["designed_for"]:
            sp, mz = d["species"], d["mz"]
            # this isotope peak's counts in the window, exactly, from the truth (the species'
            # window count also holds the tails of its other isotopes: 64Ni++ in the O2+
            # window is 402 of the 642 Ni++ ions there, seed 2)
            n_j = d["count"]
            # its local background: everything else in the window, spread over the window,
            # under its core (+-4 sigma)
            sig = widths[sp]["sigma_da_at_median_voltage"] * mz / widths[sp]["mz"]
            b_j = (w["total"] - n_j) * min(8 * sig / (w["hi"] - w["lo"]), 1.0)
            if n_j < 5 * np.sqrt(max(b_j, 1.0)) or n_j < 30:
                continue
            got = _ion_at(ar.table, mz)
            assert got is not None, (key, sp, mz, "not ranged")
            if got != sp:
                # allowed only where the peak is declared ambiguous with the true ion
                assert sp in _ambiguous_names(ar, mz), (key, sp, mz, got)
            checked += 1
    assert checked >= 40


def test_declared_ambiguities_are_reported(runs):
    ar = runs["coated"]["ar"]
    # O+ and O2++ coincide at 16 Da (no 16O18O++ isotopologue test possible with 17O+...)
    assert {"O+", "O2++"} <= _ambiguous_names(ar, 15.995)
    assert _ion_at(ar.table, 15.995) == "O+"            # the convention
    # 32 Da goes to O2+ (64Ni++ under it: see test_64ni_under_o2_is_declared_...)
    assert _ion_at(ar.table, 31.99) == "O2+"
    # 133.86: Co2O+ on 58Ni60NiO+
    assert {"Ni2O+", "Co2O+"} <= _ambiguous_names(ar, 133.86)
    d = ar.to_dict()
    assert all(set(a) >= {"mass", "ions", "assigned", "split", "predicted", "how"}
               for a in d["ambiguities"])
    for ion in d["ions"]:
        assert set(ion) >= {"ion", "windows", "counts", "abundance", "pattern_fit"}
    json.dumps(d, allow_nan=False, default=float)


@pytest.mark.parametrize("key", ["coated", "uncoated", "coated10"])
def test_64ni_under_o2_is_declared_and_split_by_the_ni_isotopes(runs, key):
    """64Ni++ (31.963 Da, 0.9 % of Ni++) sits in the O2+ peak: ~0.5 % of it, on either side
    of the 0.5 % share, but predicted by the other Ni++ isotopes and a significant peak on its
    own: reported with both names, split, and the window assigned to the larger share."""
    ar, truth = runs[key]["ar"], runs[key]["truth"]
    amb = [a for a in ar.ambiguities if abs(a["mass"] - 31.99) < 0.02]
    assert len(amb) == 1, ar.ambiguities
    a = amb[0]
    assert {"O2+", "Ni++"} <= set(a["ions"]) and a["assigned"] == "O2+"
    assert _ion_at(ar.table, 31.99) == "O2+"
    assert a["split"] is not None and a["predicted"]["Ni++"] == a["split"]["Ni++"]
    ni = next(d for d in ar.ions if d["ion"] == "Ni++")
    a64 = next(ab for m, ab in liprobe.parse_ion("Ni++").peaks(1e-6) if abs(m - 31.963) < 1e-3)
    assert a["split"]["Ni++"] == pytest.approx(ni["counts"] * a64, rel=0.01, abs=0.2)
    w = next(w for w in truth["windows"] if w["lo"] <= 31.963 < w["hi"])
    true = {d["species"]: d["count"] for d in w["designed_for"]}
    ratio = a["split"]["Ni++"] / a["split"]["O2+"]
    assert ratio == pytest.approx(true["Ni++"] / true["O2+"], rel=0.30)


def test_a_cr_free_run_has_no_cr_ion(runs):
    """Missing isotopes are measured above their local background: the tails of Ni+ and NiO+
    in the uncoated (Cr-free) run are no evidence for CrO4++, Cr2O++ or Cr2O3++."""
    ar = runs["uncoated"]["ar"]
    assert not [d["ion"] for d in ar.ions if "Cr" in d["ion"]]
    assert not any("Cr" in r.ion.name for r in ar.table.ranges)


def test_a_minor_isotope_peak_stays_with_the_ion_that_predicts_it(runs):
    """62NiO3+ (109.9 Da) is predicted by NiO3+ seen at 105.9 Da: Mn2+ (one isotope, no
    other evidence) does not take its window, by convention or otherwise."""
    for key in ("uncoated", "coated10"):
        ar = runs[key]["ar"]
        assert _ion_at(ar.table, 109.92) == "NiO3+", key
        assert "Mn2+" not in {d["ion"] for d in ar.ions}, key


@pytest.mark.parametrize("key", ["coated", "coated_h"])
def test_ratios_from_the_autoranged_file_match_the_simulators(runs, key):
    r = runs[key]
    mine = composition(r["run"]["mass"], r["ar"].table, ratios=RATIOS).ratios
    sim = composition(r["run"]["mass"], r["rrng"], ratios=RATIOS).ratios
    for k in RATIOS[:2]:
        assert abs(mine[k].value - sim[k].value) < 0.01, k
    for k in RATIOS[2:]:
        assert mine[k].value == pytest.approx(sim[k].value, rel=0.10), k


def test_uncoated_ratios_match_the_detected_truth(runs):
    """Uncoated: the simulator's own range file merges 60-64Ni++ into its O2+ window (its
    window design joins the long-tailed Ni++ isotopes and then meets the O2+ core), which
    takes ~25 % of Ni++ away from Ni; the autoranged file is compared with the true detected
    atoms instead. With 8 ns tails the 58Ni+ tail runs under 59Co+ (Ni:Co = 8:1); the
        windows meet where the two peaks' model densities are equal, so the windowed Co stays
        within 10 % (it was 25 % high when a tail ran up to the next window's 4-sigma edge). All
        four are also checked on the background-subtracted, tail-corrected deconvolution
        (`composition --deconvolve --background`), the issue's tolerances."""
    from liprobe.composition import composition_from_counts
    from liprobe.spectrum.deconvolve import corrected_counts

    r = runs["uncoated"]
    mass, table = r["run"]["mass"], r["ar"].table
    mine = composition(mass, table, ratios=RATIOS).ratios
    atoms = r["truth"]["composition"]["detected_ions_atoms"]
    assert r["truth"]["li_budget"]["background"] < 0.001 * r["truth"]["li_budget"]["total"]
    li, ni, co, mn = (atoms[e] for e in ("Li", "Ni", "Co", "Mn"))
    truth = {RATIOS[0]: li / (li + ni + co + mn), RATIOS[1]: ni / (ni + co + mn),
             RATIOS[2]: co / (li + ni + co + mn), RATIOS[3]: mn / (li + ni + co + mn)}
    assert abs(mine[RATIOS[0]].value - truth[RATIOS[0]]) < 0.01
    assert mine[RATIOS[3]].value == pytest.approx(truth[RATIOS[3]], rel=0.10)
    assert mine[RATIOS[2]].value == pytest.approx(truth[RATIOS[2]], rel=0.10)
    counts, details = corrected_counts(mass, table, True, True, tof=r["run"]["tof"])
    dec = composition_from_counts(counts, table, len(mass), ratios=RATIOS).ratios
    for k in RATIOS[:2]:
        assert abs(dec[k].value - truth[k]) < 0.01, k
    for k in RATIOS[2:]:
        assert dec[k].value == pytest.approx(truth[k], rel=0.10), k
    assert details["deconvolution"]["peak_shape"]["weight"] > 0.2


def test_fwhm_of_isolated_peaks_and_tails_coated_against_uncoated(runs):
    for key in ("coated", "uncoated"):
        ar, widths = runs[key]["ar"], runs[key]["truth"]["peak_widths"]
        for sp in ("Li+", "O2+", "Ni+"):
            p = ar.peaks.nearest(widths[sp]["mz"])
            assert p.fwhm == pytest.approx(widths[sp]["fwhm_da"], rel=0.10), (key, sp)
    for sp in ("Li+", "O+"):
        m = runs["coated"]["truth"]["peak_widths"][sp]["mz"]
        t_c = runs["coated"]["ar"].peaks.nearest(m).tail_ns
        t_u = runs["uncoated"]["ar"].peaks.nearest(m).tail_ns
        assert t_u > 2 * t_c, (sp, t_c, t_u)
    shape_c = runs["coated"]["truth"]["segments"][0]["peak"]["tail_tau_ns"]
    assert runs["coated"]["ar"].peaks.nearest(7.016).tail_ns == pytest.approx(shape_c, rel=0.25)


def test_real_si_major_peaks(real):
    """Si.pos with Si.RRNG's elements (Si, Cr, Cu, C, O).

    Found as in Si.RRNG: 28Si++ (14.04 Da) with 29Si++ and 30Si++, 28Si+ (27.95 Da).
    Accepted differences, and why:
    - the peak family 57.9/59.9/60.9/61.9/63.9 Da (and 29.0/30.0/30.5/31.0/32.0 Da) has the
      isotope ratios of Ni (58/60/61/62/64 = 68/26/1.1/3.6/0.9 %), mostly in the first
      ~150,000 ions (a Ni-rich cap); Si.RRNG calls 57.8-61.2 Da Cr2O++, whose pattern
      (59.94 Da 70 %, 60.44 Da 16 %) the data refute (no 60.44 Da peak). Without Ni among
      the elements nothing explains 57.94 Da: it is reported unexplained, never Cr2O++;
    - with Ni added, those peaks are Ni+ and Ni++;
    - 28Si++ sits 0.05 Da high (14.04 Da, 3 FWHM): the matching tolerance is widened
      (0.4 % of the mass) and the result warns about the calibration.
    """
    run = liprobe.read(real / "apav_si" / "Si.pos")
    ar = autorange(run["mass"], ["Si", "Cr", "Cu", "C", "O"])
    assert _ion_at(ar.table, 14.04) == "Si++"
    assert _ion_at(ar.table, 14.54) == "Si++" and _ion_at(ar.table, 15.03) == "Si++"
    assert _ion_at(ar.table, 27.95) == "Si+"
    assert _ion_at(ar.table, 57.94) is None
    assert any(abs(u["mass"] - 57.94) < 0.05 for u in ar.unexplained)
    assert "Cr2O++" not in {r.ion.name for r in ar.table.ranges}
    si = next(a for a in ar.calibration["anchors"] if a["ion"] == "Si++")
    assert si["offset_da"] == pytest.approx(0.050, abs=0.003)
    assert ar.tolerance["rule"] == "1.5 FWHM"
    assert any(w["kind"] == "unexplained_peak" and abs(w["mass"] - 57.94) < 0.05
               for w in ar.warnings)
    with_ni = autorange(run["mass"], ["Si", "Cr", "Cu", "C", "O", "Ni"])
    assert _ion_at(with_ni.table, 57.94) == "Ni+" and _ion_at(with_ni.table, 59.93) == "Ni+"
    assert _ion_at(with_ni.table, 28.97) == "Ni++"
    assert _ion_at(with_ni.table, 14.04) == "Si++"
