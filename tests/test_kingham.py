"""Kingham curves (``liprobe.kingham``): the pieces against closed forms, the element data
against an independent table (mendeleev), the crossovers against the published values of
``docs/kingham.md``, and the inversion's error bars against their coverage."""

import math
import re
from pathlib import Path

import numpy as np
import pytest

import liprobe
from liprobe import kingham as K

DOCS = Path(__file__).resolve().parents[1] / "docs" / "kingham.md"


# --------------------------------------------------------------------------
# element data
# --------------------------------------------------------------------------

def test_ionisation_energies_equal_mendeleevs_nist_values():
    mendeleev = pytest.importorskip("mendeleev")
    for symbol, data in K.ELEMENTS.items():
        ref = mendeleev.element(symbol).ionenergies
        for k, value in enumerate(data.ionisation_ev, start=1):
            assert value == pytest.approx(ref[k], abs=0.01), (symbol, k)


def test_masses_are_the_standard_atomic_weights():
    import periodictable

    for symbol in ("Al", "Cr", "Ni", "W"):
        assert K.ELEMENTS[symbol].mass_da == pytest.approx(
            getattr(periodictable, symbol).mass, rel=2e-4)


# --------------------------------------------------------------------------
# the pieces, against closed forms computed here
# --------------------------------------------------------------------------

def test_free_rate_is_landaus_for_hydrogen():
    for F in (0.02, 0.05, 0.1):
        assert K._free_rate(np.array(F), 0.5, 1.0) == pytest.approx(
            4.0 / F * math.exp(-2.0 / (3.0 * F)), rel=1e-12)


def test_free_exponent_of_a_triangular_barrier():
    # no Coulomb term: 2 int_0^{ip/F} sqrt(2 (ip - F d)) dd = (4 sqrt2 / 3) ip^1.5 / F
    ip, F = 0.6, np.array([0.03, 0.06])
    got = K._free_exponent(F, ip, 1e-12)
    assert got == pytest.approx(4 * math.sqrt(2) / 3 * ip ** 1.5 / F, rel=1e-6)


def test_truncated_barrier_is_the_triangle_cut_at_the_surface():
    # no image terms, a vanishing core charge, a flat field (huge tip): the electron at
    # the ion, x from the surface, tunnels through F s + ip - F x down to s = 0
    ip, F, R = 0.6, 0.05, 1e12
    for x in (4.0, 8.0, 20.0):                          # ip / F = 12: cut, cut, not cut
        got = float(K._wkb_exponent(np.array(x), np.array(F), R, ip, 1e-12, "truncated"))
        rest = max(ip - F * x, 0.0)
        want = 4 * math.sqrt(2) / 3 * (ip ** 1.5 - rest ** 1.5) / F
        assert got == pytest.approx(want, rel=1e-4), x


def test_critical_distance_solves_kinghams_condition():
    # flat field: F x + (2n + 1) / (4x) = ip - phi, the larger root of a quadratic
    ip, phi, n, R = 35.187 / K.HARTREE_EV, 5.15 / K.HARTREE_EV, 2, 1e12
    for F in (0.05, 0.08, 0.12):
        a = ip - phi
        want = (a + math.sqrt(a * a - F * (2 * n + 1))) / (2 * F)
        got = float(K._critical_distance(np.array(F), R, ip, phi, n, np.array(1.0)))
        assert got == pytest.approx(want, rel=1e-9)


def test_schottky_start_is_the_maximum_of_the_ions_potential():
    F, R = 0.06, 945.0
    x = float(K._schottky_start(np.array(F), R, 1))
    grid = np.linspace(0.5, 10, 200001)
    potential = -K._w(grid, F, R) - 0.25 / grid
    assert x == pytest.approx(grid[np.argmax(potential)], abs=1e-4)


# --------------------------------------------------------------------------
# the curves
# --------------------------------------------------------------------------

@pytest.mark.parametrize("element", ["Al", "Cr", "Ni", "W"])
def test_fractions_sum_to_one_and_move_up_with_field(element):
    fields = np.arange(8.0, 120.0, 2.0)
    c = liprobe.kingham_curves(element, fields)
    total = sum(c.fractions.values())
    assert total == pytest.approx(np.ones_like(fields), abs=1e-12)
    assert np.all(np.diff(c.fractions[1]) <= 1e-15)             # 1+ only ever falls
    mean_charge = sum(q * f for q, f in c.fractions.items())
    assert np.all(np.diff(mean_charge) >= -1e-12)               # the mean charge rises


def test_post_ionisation_matches_the_fractions():
    fields = np.array([18.0, 21.0, 25.0])
    p = K.post_ionisation("Cr", 1, fields)
    c = liprobe.kingham_curves("Cr", fields)
    assert 1 - p == pytest.approx(c.fractions[1], rel=1e-12)


def test_li_is_never_post_ionised_at_apt_fields():
    c = liprobe.kingham_curves("Li", [20.0, 50.0, 80.0])
    assert np.all(c.fractions[1] > 1 - 1e-6)
    assert c.crossover_v_nm["2/1"] is None


def test_bad_elements_and_fields():
    with pytest.raises(ValueError, match="no Kingham data for 'Xx'"):
        liprobe.kingham_curves("Xx")
    with pytest.raises(ValueError, match="positive and finite"):
        liprobe.kingham_curves("Ni", [10.0, -1.0])
    with pytest.raises(ValueError, match="positive and finite"):
        liprobe.kingham_curves("Ni", [np.nan])
    with pytest.raises(ValueError, match="no fields"):
        liprobe.kingham_curves("Ni", [])


# --------------------------------------------------------------------------
# the crossovers against the published values (docs/kingham.md is the data)
# --------------------------------------------------------------------------

def docs_table():
    """Rows of the crossover table of docs/kingham.md (its section "The fields at which...")."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## The fields at which", 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        m = re.match(r"\| (\w+) \| (\d)\+/(\d)\+ \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) "
                     r"\| ([^|]+) \|$", line)
        if m:
            el, hi, lo, ours, tegg, _yl, diff, within = (g.strip() for g in m.groups())
            rows.append((el, f"{hi}/{lo}", ours, tegg, diff, within))
    return rows


def test_the_docs_table_covers_every_element_and_pair():
    rows = docs_table()
    assert {r[0] for r in rows} == set(K.ELEMENTS)
    assert len(rows) >= 50


def test_crossovers_are_the_docs_tables():
    n_within = 0
    for el, pair, ours, tegg, diff, within in docs_table():
        got = K.crossover_fields(el)[pair]
        if ours.startswith("none"):
            assert got is None, (el, pair)
            continue
        assert got == pytest.approx(float(ours), abs=0.006), (el, pair)
        if tegg == "–":
            continue
        d = got - float(tegg)
        assert float(diff) == pytest.approx(d, abs=0.051), (el, pair)
        assert (within == "yes") == (abs(got - float(tegg)) <= 1.0), (el, pair)
        n_within += within == "yes"
        # the stated bounds of the docs: 2+/1+ within 2 V/nm, the others within 6.5
        assert abs(d) <= (2.0 if pair == "2/1" else 6.5), (el, pair, d)
    assert n_within >= 16


@pytest.mark.parametrize("element", ["Si", "Cr", "Mn", "Fe", "Co", "Ni", "Mo", "W"])
def test_2_1_crossover_within_one_v_nm_of_tegg_2024(element):
    tegg = {r[0]: float(r[3]) for r in docs_table() if r[1] == "2/1" and r[3] != "–"}
    assert K.crossover_fields(element)["2/1"] == pytest.approx(tegg[element], abs=1.0)


# --------------------------------------------------------------------------
# inversion
# --------------------------------------------------------------------------

def test_inversion_reads_the_curve_back():
    for el, F in (("Cr", 19.0), ("Cr", 21.3), ("Ni", 24.0), ("W", 33.0)):
        c = liprobe.kingham_curves(el, [F])
        hi, lo = (3, 2) if el == "W" else (2, 1)
        r = float(c.fractions[hi][0] / c.fractions[lo][0])
        f = K.field_from_ratio(el, hi, lo, r, 0.0)
        assert f.value_v_nm == pytest.approx(F, abs=0.02), (el, F)
        assert f.reason is None


def test_inversion_error_bars_cover_the_truth_at_their_stated_rate():
    """Counts drawn from the curves at known fields: |F - truth| < sigma in ~68 % of draws."""
    rng = np.random.default_rng(20261205)
    inside = total = 0
    for el, F in (("Cr", 19.5), ("Cr", 21.0), ("Ni", 23.5), ("Ni", 25.0)):
        c = liprobe.kingham_curves(el, [F])
        p2 = float(c.fractions[2][0] / (c.fractions[1][0] + c.fractions[2][0]))
        for _ in range(250):
            n = rng.binomial(4000, p2)
            a, b = n, 4000 - n
            r = a / b
            f = K.field_from_ratio(el, 2, 1, r, r * math.sqrt(1 / a + 1 / b))
            inside += abs(f.value_v_nm - F) <= f.error_v_nm
            total += 1
    assert inside / total == pytest.approx(0.683, abs=0.04)


def test_ratios_outside_the_curves_are_missing_with_a_reason():
    assert "outside 0.01 to 100" in K.field_from_ratio("Cr", 2, 1, 0.005).reason
    assert "outside 0.01 to 100" in K.field_from_ratio("Cr", 2, 1, 250.0).reason
    f = K.field_from_ratio("Li", 2, 1, 0.5)
    assert f.value_v_nm is None and "above the curves' highest value" in f.reason
    assert "no Kingham data" in K.field_from_ratio("Xx", 2, 1, 1.0).reason
    assert "no positive ratio" in K.field_from_ratio("Cr", 2, 1, 0.0).reason
    assert "no positive ratio" in K.field_from_ratio("Cr", 2, 1, float("nan")).reason
    assert "charge states" in K.field_from_ratio("Cr", 6, 5, 1.0).reason


@pytest.mark.parametrize("element", ["Cr", "W", "Nb", "Ta", "Al", "Ni"])
def test_curves_are_continuous_at_high_fields(element):
    """No step of a fraction on a 0.01 V/nm grid much larger than its neighbours' (the
    critical distance meets the start point continuously; an ion never starts inside its
    own Schottky hump)."""
    lo = {"Cr": 95.0, "W": 62.0, "Nb": 58.0, "Ta": 48.0, "Al": 47.0, "Ni": 120.0}[element]
    fields = np.arange(lo, lo + 6.0, 0.01)
    c = liprobe.kingham_curves(element, fields)
    for q, f in c.fractions.items():
        d = np.abs(np.diff(f))
        ref = np.maximum(np.maximum(d[:-2], d[2:]), 1e-9)
        assert np.all(d[1:-1] <= 5.0 * ref + 1e-6), (element, q)


def test_model_constants_are_checked():
    for kw, text in ((dict(tip_radius_nm=0.0), "tip_radius_nm"),
                     (dict(barrier="none"), "barrier must be one of"),
                     (dict(max_charge=1), "max_charge"),
                     (dict(grid_v_nm=(5.0, 2000.0, 0.5)), "grid_v_nm"),
                     (dict(flight_points=3), "flight_points")):
        with pytest.raises(ValueError, match=text):
            K.KinghamModel(**kw)
    with pytest.raises(ValueError, match="beyond the model"):
        liprobe.kingham_curves("Ni", [2000.0])
    with pytest.raises(ValueError, match="ratio_error"):
        K.field_from_ratio("Cr", 2, 1, 1.0, -0.1)
    with pytest.raises(ValueError, match="ratio_error"):
        K.field_from_ratio("Cr", 2, 1, 1.0, float("nan"))


def test_inversion_is_exact_on_the_curves():
    """Brent on the exact curves, not interpolation on the grid: Si++/Si+ = 20.36 (the real
    run's ratio) is read back to 1e-4 V/nm."""
    f = K.field_from_ratio("Si", 2, 1, 20.36).value_v_nm
    c = liprobe.kingham_curves("Si", [f])
    assert float(c.fractions[2][0] / c.fractions[1][0]) == pytest.approx(20.36, rel=2e-3)


def test_the_docs_headline_counts_are_the_tables():
    """'within ±1 V/nm of Tegg 2024 for N of the M elements' (2+/1+) is what the table gives."""
    text = DOCS.read_text(encoding="utf-8")
    m = re.search(r"Within ±1 V/nm of Tegg 2024 for (\d+) of the (\d+) elements", text)
    assert m, "the docs state the 2+/1+ count"
    rows = [r for r in docs_table() if r[1] == "2/1" and r[3] != "–"]
    within = sum(abs(K.crossover_fields(r[0])["2/1"] - float(r[3])) <= 1.0 for r in rows)
    assert (within, len(rows)) == (int(m.group(1)), int(m.group(2)))
