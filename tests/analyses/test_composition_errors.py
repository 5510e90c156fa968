"""At.% and ratio errors that include what was corrected (issue 26): after a background
subtraction or a deconvolution the ion counts are estimates with a covariance, and the
errors are propagated from it, checked against the `uncertainties` package (an
independent implementation of first-order propagation with correlations) and, for
counting statistics alone, against the binomial formula."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from uncertainties import correlated_values

import liprobe
from liprobe import Range, RangeTable, parse_ion
from liprobe.cli import cli
from liprobe.composition import COUNTING_ERRORS, composition_from_counts

TABLE = RangeTable.from_ranges([
    Range(6.9, 7.2, parse_ion("Li+")), Range(15.9, 16.2, parse_ion("O+")),
    Range(31.9, 32.2, parse_ion("O2+")), Range(57.5, 58.5, parse_ion("Ni+")),
    Range(73.5, 74.5, parse_ion("NiO+"))])
COUNTS = np.array([1000, 2000, 500, 800, 300])


def test_poisson_covariance_of_single_atom_ions_gives_the_binomial_error():
    t = RangeTable.from_ranges([Range(6.9, 7.2, parse_ion("Li+")),
                                Range(15.9, 16.2, parse_ion("O+")),
                                Range(57.5, 58.5, parse_ion("Ni+"))])
    n = np.array([1200, 3100, 700])
    plain = composition_from_counts(n, t, 5000)
    prop = composition_from_counts(n, t, 5000, ion_covariance=np.diag(n.astype(float)))
    for el, k in zip(("Li", "O", "Ni"), n):
        c = k / n.sum()
        assert plain.atomic_percent_error[el] == pytest.approx(100 * np.sqrt(c * (1 - c) / n.sum()))
        assert prop.atomic_percent_error[el] == pytest.approx(plain.atomic_percent_error[el],
                                                             rel=1e-12)
    assert plain.errors == COUNTING_ERRORS
    assert prop.errors == "propagated from the ion counts' covariance"


def test_correlated_counts_propagate_as_the_uncertainties_package_does():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(5, 5))
    cov = np.diag(COUNTS.astype(float)) + 40.0 * (m @ m.T)          # positive definite
    c = composition_from_counts(COUNTS, TABLE, 5000, ratios=["Li/(Li+Ni)", "O2+/O+",
                                                              "Ni/(Ni+O)"],
                                ion_covariance=cov, errors="what the test says")
    li, o, o2, ni, nio = correlated_values(COUNTS.astype(float), cov)
    total = li + o + 2 * o2 + ni + 2 * nio
    want = {"Li": li / total, "O": (o + 2 * o2 + nio) / total, "Ni": (ni + nio) / total}
    for el, f in want.items():
        assert c.atomic_percent[el] == pytest.approx(100 * f.nominal_value, rel=1e-12)
        assert c.atomic_percent_error[el] == pytest.approx(100 * f.std_dev, rel=1e-9)
    ratios = {"Li/(Li+Ni)": li / (li + ni + nio), "O2+/O+": o2 / o,
              "Ni/(Ni+O)": (ni + nio) / (ni + nio + o + 2 * o2 + nio)}
    for text, r in ratios.items():
        assert c.ratios[text].value == pytest.approx(r.nominal_value, rel=1e-12)
        assert c.ratios[text].error == pytest.approx(r.std_dev, rel=1e-9)
    assert c.to_dict()["errors"] == "what the test says"


def test_an_excluded_element_leaves_the_propagation_and_a_bad_matrix_is_refused():
    cov = np.diag(COUNTS.astype(float))
    c = composition_from_counts(COUNTS, TABLE, 5000, exclude=["Ni"], ion_covariance=cov)
    li, o, o2 = correlated_values(COUNTS[:3].astype(float), cov[:3, :3])
    assert c.atomic_percent_error["Li"] == pytest.approx(100 * (li / (li + o + 2 * o2)).std_dev,
                                                         rel=1e-9)
    with pytest.raises(ValueError, match="5 x 5 matrix"):
        composition_from_counts(COUNTS, TABLE, 5000, ion_covariance=np.eye(3))
    with pytest.raises(ValueError, match="finite"):
        composition_from_counts(COUNTS, TABLE, 5000, ion_covariance=np.full((5, 5), np.nan))


def test_background_covariance_is_the_gross_counts_plus_one_shared_amplitude(real):
    from liprobe.spectrum.deconvolve import corrected_counts

    run = liprobe.read(real / "apav_si" / "Si_first100000.epos")
    t = liprobe.read_ranges(real / "apav_si" / "Si.RRNG")
    counts, details, cov = corrected_counts(run, t, background=True, with_covariance=True)
    bg = details["background"]
    wc = np.asarray(_window_counts(run, t), float)
    bgc = np.asarray(bg["window_counts"])
    live = wc - bgc >= 0                          # a window clipped at 0 adds no variance
    gross = np.bincount(t.ion_index, weights=np.where(live, wc, 0), minlength=len(t.ions))
    rel = bg["a_error"] / bg["a_counts_per_sqrt_da"]
    shared = np.bincount(t.ion_index, weights=np.where(live, bgc * rel, 0),
                         minlength=len(t.ions))
    assert details["errors_included"] == ["counting statistics",
                                          "the background's fitted amplitude"]
    assert np.allclose(np.diag(cov), gross + shared ** 2, rtol=1e-12)
    i, j = 2, 5                                   # Si++ and Si+: correlated by the background
    assert cov[i, j] == pytest.approx(shared[i] * shared[j], rel=1e-12) and cov[i, j] > 0


def _window_counts(run, table):
    from liprobe.ranging import count_windows

    return count_windows(np.asarray(run["mass"]), table)[0]


def test_the_composition_command_says_which_errors_it_includes(real):
    f, r = real / "apav_si" / "Si.pos", real / "apav_si" / "Si.RRNG"
    plain = json.loads(CliRunner().invoke(cli, ["composition", str(f), "-r", str(r),
                                                "--json"]).stdout)
    res = CliRunner().invoke(cli, ["composition", str(f), "-r", str(r), "--deconvolve",
                                   "--background", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert plain["errors"] == COUNTING_ERRORS
    assert d["errors"].startswith("counting statistics, the background's fitted amplitude "
                                  "and the deconvolution's fit, propagated")
    # C comes from C++ and C+, whose deconvolved counts are uncertain beyond Poisson:
    # its at.% error is larger than the counting error of the same counts
    ions = d["deconvolution"]["ions"]
    rel = ions["C++"]["error"] / ions["C++"]["count"]
    assert rel > 1 / np.sqrt(ions["C++"]["count"])
    binomial = composition_from_counts(
        np.array([d["ion_counts"].get(i.name, 0) for i in liprobe.read_ranges(r).ions]),
        liprobe.read_ranges(r), d["ions_total"]).atomic_percent_error["C"]
    assert d["atomic_percent_error"]["C"] > 1.1 * binomial
    text = CliRunner().invoke(cli, ["composition", str(f), "-r", str(r), "--deconvolve"])
    assert ("errors: counting statistics and the deconvolution's fit, propagated to first "
            "order") in text.stdout


def test_a_shared_background_error_enters_the_deconvolution_covariance():
    """With background errors, the deconvolution's covariance is the sandwich
    H (diag(c) + s s^T) H^T of its weighted least-squares estimator (computed here with
    numpy's lstsq on the same weighted system), not the inverse Fisher matrix alone."""
    from liprobe.spectrum.deconvolve import deconvolve, pattern_matrix

    t = RangeTable.from_ranges([Range(57.5, 58.5, parse_ion("Ni+")),
                                Range(59.5, 60.5, parse_ion("Ni+")),
                                Range(61.5, 62.5, parse_ion("Ni+")),
                                Range(27.5, 28.5, parse_ion("Si+")),
                                Range(28.5, 29.5, parse_ion("Si+"))])
    ions = list(t.ions)
    a = pattern_matrix(ions, t.lo, t.hi)
    c = a @ np.array([5000.0, 3000.0]) + 40.0
    bg = np.full(len(c), 40.0)
    s = np.full(len(c), 6.0)
    dec = deconvolve(c, t.lo, t.hi, ions, bg, s)
    sigma2 = np.maximum(c, 1) + s ** 2
    w = a / sigma2[:, None]
    h = np.linalg.solve(a.T @ w, w.T)              # n = H y
    want = h @ (np.diag(c) + np.outer(s, s)) @ h.T
    assert np.allclose(dec.covariance, want, rtol=1e-10)
    assert dec.errors[0] == pytest.approx(np.sqrt(want[0, 0]), rel=1e-10)
    no_shared = np.linalg.inv(a.T @ w)
    assert want[0, 0] > no_shared[0, 0]           # the shared error adds variance
