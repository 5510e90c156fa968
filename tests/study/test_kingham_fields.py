"""Kingham fields of a run (``liprobe.study.kingham``): a coated specimen built here with
numpy (not the simulator), counts drawn from the curves at known fields, and the real Si run."""

import math
import re

import numpy as np
import pytest

import liprobe
from liprobe import Range, RangeTable, parse_ion
from liprobe.kingham import field_from_ratio, kingham_curves
from liprobe.study.kingham import METAL_LABEL, OXIDE_LABEL, kingham_fields

CR_FIELD, NI_FIELD = 21.0, 24.0

WINDOWS = [("Li+", 7.016), ("O+", 15.995), ("Cr++", 25.970), ("Ni++", 28.967), ("O2+", 31.990),
           ("Cr+", 51.940), ("Ni+", 57.935)]


def fraction_high(element, field):
    c = kingham_curves(element, [field])
    return float(c.fractions[2][0] / (c.fractions[1][0] + c.fractions[2][0]))


def coated_run(seed=7, n_core=240_000, n_shell=60_000, background=6_000):
    """An oxide cylinder (r < 19 nm) in a Cr shell (20-25 nm), 40 nm deep.

    Core: Li+, O+, O2+ and Ni at NI_FIELD's Ni++/Ni+. Shell: Cr at CR_FIELD's
    Cr++/Cr+, plus Ni that is all Ni+ (a wrong region would pull the Ni field down).
    Background: uniform in time of flight (density ~ 1/sqrt(m) per Da), 1-80 Da.
    """
    rng = np.random.default_rng(seed)
    masses, radii = [], []

    def add(n, r_lo, r_hi, labels, probs):
        k = rng.choice(len(labels), size=n, p=probs)
        centre = np.array([dict(WINDOWS)[lab] for lab in labels])[k]
        masses.append(centre + rng.normal(0, 0.01, n))
        radii.append(np.sqrt(rng.uniform(r_lo ** 2, r_hi ** 2, n)))

    p_ni2 = fraction_high("Ni", NI_FIELD)
    add(n_core, 0.0, 19.0, ["Li+", "O+", "O2+", "Ni+", "Ni++"],
        [0.25, 0.25, 0.2, 0.3 * (1 - p_ni2), 0.3 * p_ni2])
    p_cr2 = fraction_high("Cr", CR_FIELD)
    add(n_shell, 20.0, 25.0, ["Cr+", "Cr++", "Ni+"], [0.9 * (1 - p_cr2), 0.9 * p_cr2, 0.1])
    masses.append(rng.uniform(1.0, math.sqrt(80.0), background) ** 2)
    radii.append(np.sqrt(rng.uniform(0, 25.0 ** 2, background)))
    m = np.concatenate(masses)
    r = np.concatenate(radii)
    phi = rng.uniform(0, 2 * np.pi, len(m))
    z = rng.uniform(-40.0, 0.0, len(m))
    order = np.argsort(-z)                         # evaporation order: top first
    run = liprobe.Run.from_arrays(x=(r * np.cos(phi))[order], y=(r * np.sin(phi))[order],
                                  z=z[order], mass=m[order])
    table = RangeTable.from_ranges([Range(c - 0.06, c + 0.06, parse_ion(n)) for n, c in WINDOWS])
    return run, table, p_cr2, p_ni2


@pytest.fixture(scope="module")
def coated():
    return coated_run()


def test_the_coatings_field_is_recovered_from_its_shell(coated):
    run, table, _, _ = coated
    kf = kingham_fields(run, table)
    cr = kf.elements["Cr"]
    assert cr.kind == "coating" and cr.label == METAL_LABEL
    assert "shell" in cr.region
    assert cr.field.pair == "Cr++/Cr+"
    assert abs(cr.value_v_nm - CR_FIELD) < 4 * cr.error_v_nm
    assert cr.error_v_nm < 0.05
    keys = kf.keys()
    assert keys["kingham_field_cr_v_nm"] == cr.value_v_nm
    assert keys["kingham_field_cr_v_nm_err"] == cr.error_v_nm
    # the oxide's cations are left out, and the notes say so
    assert set(kf.elements) == {"Cr"}
    assert any("Ni: oxide cations" in n and "all_elements" in n for n in kf.notes)


def test_background_is_subtracted_before_the_ratio(coated):
    run, table, _, _ = coated
    with_bg = kingham_fields(run, table).elements["Cr"]
    for name in ("Cr+", "Cr++"):
        s = with_bg.charge_states[name]
        assert s["background"] > 0
        assert s["net"] == pytest.approx(s["counts"] - s["background"], abs=0.01)
        assert s["error"] > math.sqrt(s["counts"])
    a, b = (with_bg.charge_states[n]["net"] for n in ("Cr++", "Cr+"))
    assert with_bg.field.ratio == pytest.approx(a / b, rel=1e-6)
    raw = kingham_fields(run, table, background=False).elements["Cr"]
    assert raw.charge_states["Cr+"]["background"] == 0
    assert raw.field.ratio == pytest.approx(raw.charge_states["Cr++"]["counts"]
                                            / raw.charge_states["Cr+"]["counts"])


def test_oxide_cations_come_from_the_core_and_are_labelled_indicators(coated):
    run, table, _, _ = coated
    kf = kingham_fields(run, table, all_elements=True)
    ni = kf.elements["Ni"]
    assert ni.kind == "oxide cation" and ni.label == OXIDE_LABEL
    assert "core" in ni.region
    assert ni.ions_in_region < run.n_ions
    # the shell's Ni+ would pull the field well below NI_FIELD; the core gives it back
    assert abs(ni.value_v_nm - NI_FIELD) < 4 * ni.error_v_nm
    assert "kingham_field_ni_v_nm" in kf.keys()
    everything = kingham_fields(run, table, all_elements=True, margin_nm=0.0)
    assert everything.elements["Ni"].ions_in_region >= ni.ions_in_region


def test_without_positions_the_coating_cannot_be_kept_out(coated):
    run, table, _, _ = coated
    bare = liprobe.Run.from_arrays(mass=np.asarray(run["mass"]))
    kf = kingham_fields(bare, table, all_elements=True)
    assert "no positions" in kf.elements["Cr"].region
    assert kf.elements["Cr"].ions_in_region == run.n_ions
    assert abs(kf.elements["Cr"].value_v_nm - CR_FIELD) < 4 * kf.elements["Cr"].error_v_nm
    # the oxide cations need the core: with the coating's Ni+ mixed in there is no value
    ni = kf.elements["Ni"]
    assert ni.value_v_nm is None and "could not be kept out" in ni.why_missing()


def test_a_ratio_of_a_few_ions_gives_no_field(coated):
    """A charge state within 3 sigma of zero gives no field (not a field +/- 1 V/nm)."""
    run, table, _, _ = coated
    few = run.select(np.flatnonzero(np.isin(np.round(np.asarray(run["mass"]), 0), [26, 52]))[:9])
    kf = kingham_fields(few, table, background=False)
    assert kf.elements["Cr"].value_v_nm is None
    assert "significantly above background" in kf.elements["Cr"].why_missing()


def test_an_element_that_is_not_ranged_or_has_one_charge_state():
    table = RangeTable.from_ranges([Range(57.8, 58.1, parse_ion("Ni+")),
                                    Range(28.9, 29.1, parse_ion("Ni++"))])
    run = liprobe.Run.from_arrays(mass=np.array([58.0] * 50 + [29.0] * 50))
    kf = kingham_fields(run, table, background=False)
    assert kf.elements["Cr"].value_v_nm is None
    assert kf.elements["Cr"].why_missing() == "Cr is not ranged"
    assert kf.reasons() == {"kingham_field_cr_v_nm": "Cr is not ranged"}
    ni = kf.elements["Ni"]                     # no O: a metal run, reported by default
    assert ni.kind == "metal" and ni.label == METAL_LABEL
    assert ni.value_v_nm == pytest.approx(field_from_ratio("Ni", 2, 1, 1.0).value_v_nm)
    one = RangeTable.from_ranges([Range(51.8, 52.1, parse_ion("Cr+"))])
    kf = kingham_fields(liprobe.Run.from_arrays(mass=np.full(10, 52.0)), one, background=False)
    assert "only Cr+ ranged" in kf.elements["Cr"].why_missing()


def si_window_counts(real, keep=None):
    """Counts of the Si.RRNG windows of Si and Cr single-atom ions, by a plain regex + numpy;
    ``keep(z)`` selects the ions counted by their z."""
    text = (real / "apav_si" / "Si.RRNG").read_text()
    raw = np.fromfile(real / "apav_si" / "Si.pos", dtype=">f4").reshape(-1, 4)
    mass = raw[:, 3] if keep is None else raw[keep(raw[:, 2].astype(np.float64)), 3]
    out = {}
    for lo, hi, rest in re.findall(r"Range\d+=([\d.]+) ([\d.]+) Vol:[\d.]+ (.*?) Color", text):
        atoms = dict(re.findall(r"([A-Z][a-z]?):(\d+)", rest))
        if len(atoms) == 1 and list(atoms.values()) == ["1"]:
            el = next(iter(atoms))
            q = "++" if float(hi) < (30 if el == "Cr" else 20) else "+"
            n = int(np.count_nonzero((mass >= float(lo)) & (mass <= float(hi))))
            out[el + q] = out.get(el + q, 0) + n
    return out


def test_real_si_run(real):
    """The Si run's Cr-rich cap (its top ~16 nm of z) is found: Cr is read in the cap, Si
    below it (3 nm clear), where Si++/Si+ = 106 is beyond Kingham's readable range; the
    counts are those of the windows in each region by z alone."""
    from liprobe.spatial.coating import coating_profile

    run = liprobe.read(real / "apav_si" / "Si.pos")
    table = liprobe.read_ranges(real / "apav_si" / "Si.RRNG")
    kf = kingham_fields(run, table)
    prof = coating_profile(run, table)
    assert prof.geometry == "cap"
    z_cap = prof.cap.interface_z_nm
    cap = si_window_counts(real, lambda z: z > z_cap)
    core = si_window_counts(real, lambda z: z <= z_cap - 3.0)
    cr = kf.elements["Cr"]
    assert cr.value_v_nm is None and cr.region == "the Cr cap (above its interface)"
    assert "no Cr++ or Cr+ ions significantly above background" in cr.why_missing()
    assert cr.charge_states["Cr+"]["counts"] == cap["Cr+"]
    assert cr.charge_states["Cr++"]["counts"] == cap["Cr++"]
    si = kf.elements["Si"]                      # the run is not an oxide: Si is a metal here
    assert si.label == METAL_LABEL and si.region == "the core (3 nm clear of the Cr cap)"
    assert si.charge_states["Si++"]["counts"] == core["Si++"]
    assert si.charge_states["Si+"]["counts"] == core["Si+"]
    r = si.charge_states["Si++"]["net"] / si.charge_states["Si+"]["net"]
    assert si.field.ratio == pytest.approx(r, rel=1e-6)
    assert r == pytest.approx(106.3, rel=0.05)
    assert si.value_v_nm is None and "outside 0.01 to 100" in si.why_missing()
    assert "C" not in kf.elements                        # a non-metal is not read
    assert "only Cu+ ranged" in kf.elements["Cu"].why_missing()   # a metal gets a reason


def test_the_study_column_group(coated):
    """``kingham_field_cr_v_nm`` of a coated run is kingham_fields' value; an uncoated run gets
    None with its reason."""
    from types import SimpleNamespace

    from liprobe.study.analysis import GROUPS, RunContext

    run, table, _, _ = coated
    group = next(g for g in GROUPS if g.name == "kingham")
    ctx = RunContext(SimpleNamespace(coating="Cr", coated=True), None, run, run, run, table, {})
    values, reasons = group.func(ctx)
    want = kingham_fields(run, table).elements["Cr"]
    assert values == {"kingham_field_cr_v_nm": want.value_v_nm,
                      "kingham_field_cr_v_nm_err": want.error_v_nm}
    assert reasons == {}
    ctx = RunContext(SimpleNamespace(coating="none", coated=False), None, run, run, run, table,
                     {})
    values, reasons = group.func(ctx)
    assert values == {"kingham_field_cr_v_nm": None, "kingham_field_cr_v_nm_err": None}
    assert "not coated" in reasons["kingham_field_cr_v_nm"]
