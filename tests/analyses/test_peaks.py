"""Peak widths, tails and background measured on spectra drawn from known shapes."""

import math

import numpy as np
import pytest

from liprobe.errors import AnalysisError
from liprobe.spectrum.peaks import Background, TimeScale, analyse_peaks, measure_peak, time_scale


def _draw(rng, peaks, n_bg=0, lo=0.5, hi=200.0):
    """peaks: (mass, n, sigma_da, tail_weight, tau_da); background uniform in sqrt(m)."""
    out = []
    for m, n, s, w, tau in peaks:
        x = m + s * rng.standard_normal(n)
        t = rng.random(n) < w
        x[t] += rng.exponential(tau, int(t.sum()))
        out.append(x)
    if n_bg:
        u = rng.uniform(math.sqrt(lo), math.sqrt(hi), n_bg)
        out.append(u * u)
    return np.concatenate(out).astype(np.float32)


def test_gaussian_widths_at_50_10_1_percent():
    rng = np.random.default_rng(3)
    s = 0.01
    m = _draw(rng, [(27.0, 400_000, s, 0.0, 0.1)], n_bg=2000)
    pa = analyse_peaks(m, mass_range=(20, 35))
    p = pa.nearest(27.0)
    # full widths of a Gaussian: 2 sigma sqrt(2 ln(1/f))
    for key, f in (("fwhm", 0.5), ("fw10", 0.1), ("fw1", 0.01)):
        assert getattr(p, key) == pytest.approx(2 * s * math.sqrt(2 * math.log(1 / f)), rel=0.04)
    assert p.mrp("fwhm") == pytest.approx(27.0 / (2.3548 * s), rel=0.04)
    assert abs(p.mass - 27.0) < 1e-3
    # no tail in a Gaussian: nothing 0.1-0.5 Da above it
    assert abs(p.tail_fraction) < 0.002


def test_tail_constant_in_ns_and_tail_fraction():
    rng = np.random.default_rng(4)
    k = 150.0   # ns per sqrt(Da): t = k sqrt(m)
    tau_ns, w = 6.0, 0.3
    peaks = []
    for m in (16.0, 40.0):
        tau_da = tau_ns * 2 * math.sqrt(m) / k       # dm = dt 2m/t
        peaks.append((m, 300_000, 0.0004 * m, w, tau_da))
    mass = _draw(rng, peaks, n_bg=20_000)
    tof = k * np.sqrt(mass.astype(np.float64))
    pa = analyse_peaks(mass, tof, mass_range=(10, 60))
    for m, _n, _s, _w, tau_da in peaks:
        p = pa.nearest(m)
        assert p.tail_ns == pytest.approx(tau_ns, rel=0.1)
        assert p.tail_da == pytest.approx(tau_da, rel=0.1)
        # analytic: tail counts in [0.1, 0.5) over counts in [m - 2 FWHM, m + 0.1)
        e1, e5 = math.exp(-0.1 / tau_da), math.exp(-0.5 / tau_da)
        expect = w * (e1 - e5) / (1 - w * e1)
        assert p.tail_fraction == pytest.approx(expect, rel=0.1)
    assert pa.background.time_scale.ns_per_sqrt_da == pytest.approx(k, rel=1e-3)


def test_background_uniform_in_time_of_flight_and_ppm_per_ns():
    rng = np.random.default_rng(5)
    n_bg = 300_000
    mass = _draw(rng, [(7.0, 100_000, 0.003, 0.2, 0.05), (16.0, 100_000, 0.006, 0.2, 0.07),
                       (58.0, 50_000, 0.02, 0.2, 0.14)], n_bg=n_bg)
    k = 140.0
    tof = k * np.sqrt(mass.astype(np.float64))
    pa = analyse_peaks(mass, tof)
    a_true = n_bg / (2 * (math.sqrt(200) - math.sqrt(0.5)))
    bg = pa.background
    assert abs(bg.a - a_true) < 4 * bg.a_error + 0.02 * a_true
    # counts per ns: uniform in t over [k sqrt(0.5), k sqrt(200)]
    ppm_true = n_bg / (k * (math.sqrt(200) - math.sqrt(0.5))) / len(mass) * 1e6
    assert bg.ppm_per_ns == pytest.approx(ppm_true, rel=0.05)
    d = bg.to_dict()
    assert d["per_da"][1]["counts_per_da"] == pytest.approx(bg.a / 4.0)
    assert any(w["used"] for w in d["windows"])
    # a .pos has no time scale: ppm/ns is null with the reason
    pa2 = analyse_peaks(mass)
    d2 = pa2.background.to_dict()
    assert d2["ppm_per_ns"] is None and "time-of-flight" in d2["reasons"]["ppm_per_ns"]


def test_every_peak_found_and_no_false_peak_in_background():
    rng = np.random.default_rng(6)
    centers = [6.015, 7.016, 15.995, 27.47, 28.97, 29.47, 31.99, 58.93, 73.93]
    mass = _draw(rng, [(m, 5000, 0.0004 * m, 0.2, 0.01 * math.sqrt(m)) for m in centers],
                 n_bg=200_000)
    pa = analyse_peaks(mass)
    found = [p.mass for p in pa.peaks]
    for m in centers:
        assert min(abs(f - m) for f in found) < 0.01, m
    # pure background: no peak at 5 sigma (a few % chance per run would be a bug)
    pa_bg = analyse_peaks(_draw(rng, [], n_bg=500_000))
    assert len(pa_bg.peaks) == 0


def test_unmeasurable_widths_are_null_with_a_reason():
    rng = np.random.default_rng(7)
    # peak-to-background well below 100: fw1 cannot be measured
    mass = _draw(rng, [(30.0, 3000, 0.012, 0.0, 0.1)], n_bg=3_000_000)
    p = analyse_peaks(mass, mass_range=(25, 35)).nearest(30.0)
    d = p.to_dict()
    assert d["fw1"] is None and d["mrp_fw1"] is None
    assert "below 100" in d["reasons"]["fw1"]
    assert d["fwhm"] is not None
    # the JSON has every key of the issue
    for key in ("mass", "height", "background", "fwhm", "fw10", "fw1", "mrp_fwhm", "mrp_fw10",
                "mrp_fw1", "tail_ns", "tail_fraction"):
        assert key in d
    assert "tail_ns" in d["reasons"]   # a .pos-like run has no time scale


def test_a_peak_with_no_counts_above_the_background_says_why_in_reasons():
    rng = np.random.default_rng(0)
    sm = np.sort(rng.uniform(9, 11, 200).astype(np.float32))
    flat = Background(a=1e6, a_error=None, n_ions=200, time_scale=TimeScale(None, "none"))
    p = measure_peak(sm, 10.0, 0.05, flat)
    assert p.height is None and p.tail_weight is None and p.edges == {}
    assert p.to_dict()["reasons"] == {"height": "no counts above the background"}


def test_a_run_or_chunks_with_tof_give_the_time_scale_of_the_array(tmp_path):
    """The time scale pairs each ion's mass with its own tof, whatever form the masses take."""
    import liprobe

    rng = np.random.default_rng(4)
    mass = np.concatenate([rng.normal(7.016, 0.01, 20_000), rng.normal(15.995, 0.02, 20_000),
                           rng.uniform(1, 40, 4000)])
    rng.shuffle(mass)
    v = np.linspace(4000.0, 7000.0, len(mass))          # the voltage rises: k = tof/sqrt(m)
    tof = (1.0e3 * np.sqrt(np.abs(mass) / v) * 110.0).astype(np.float32)   # changes along
    path = tmp_path / "run.pos"
    liprobe.write(path, liprobe.Run.from_arrays(x=np.zeros(len(mass)), y=np.zeros(len(mass)),
                                                z=-np.arange(len(mass), dtype=float),
                                                mass=mass))
    run = liprobe.read(path)
    m32 = run["mass"]
    ref = analyse_peaks(m32, tof, mass_range=(1, 40)).to_dict()
    k_direct = float(np.mean(tof / np.sqrt(m32.astype(np.float64))))
    assert ref["background"]["ns_per_sqrt_da"] == pytest.approx(k_direct, rel=1e-9)
    for other in (run, [m32[:15_000], m32[15_000:]], list(run.chunks("mass", 10_000))):
        assert analyse_peaks(other, tof, mass_range=(1, 40)).to_dict() == ref
    with pytest.raises(AnalysisError, match="tof has 10 ions, mass has 44000"):
        analyse_peaks(m32, tof[:10])


def test_time_scale_from_tof_ignores_empty_columns():
    m = np.array([1.0, 4.0, 9.0] * 100)
    assert time_scale(m, np.zeros_like(m)).ns_per_sqrt_da is None
    assert time_scale(m, 2.0 * np.sqrt(m)).ns_per_sqrt_da == pytest.approx(2.0)
