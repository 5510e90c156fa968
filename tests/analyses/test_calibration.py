"""Mass calibration check and drift on masses with a known error."""

import numpy as np
import pytest

import liprobe
from liprobe.spectrum.calibration import calibration_check, calibration_from_pairs, peak_drift


def _peaks(rng, centers, n=20_000, rel=4e-4):
    return np.concatenate([c + rel * c * rng.standard_normal(n) for c in centers])


def test_sqrt_fit_recovers_a_time_offset_and_scale():
    rng = np.random.default_rng(21)
    true = [7.016, 15.995, 31.99, 57.935]
    a, b = 0.004, 1.001                    # sqrt(m_true) = a + b sqrt(m_obs)
    obs_c = [((np.sqrt(t) - a) / b) ** 2 for t in true]
    m = _peaks(rng, obs_c)
    fit = calibration_check(m, ["Li+", "O+", "O2+", "Ni+"])
    assert fit.a == pytest.approx(a, abs=1e-3)
    assert fit.b == pytest.approx(b, abs=2e-4)
    d = fit.to_dict()
    assert d["rms_after_fit_da"] < 2e-3
    assert all(abs(r["offset_after_fit_da"]) < 3e-3 for r in d["peaks"])
    assert calibration_from_pairs([("O+", 16, 16.01)]).a is None


def test_drift_of_a_peak_along_the_run():
    rng = np.random.default_rng(22)
    n = 200_000
    shift = np.linspace(0.0, 0.04, n)          # 0.04 Da over 0.2 M ions
    m = 28.967 + shift + 0.01 * rng.standard_normal(n)
    dr = peak_drift(m, ["Ni++"], blocks=5)
    slope = dr.slope_da_per_mion["Ni++"]
    assert slope == pytest.approx(0.2, rel=0.1)        # Da per million ions
    assert dr.to_dict()["peaks"]["Ni++"]["range_da"] == pytest.approx(0.032, abs=0.006)


def test_real_si_spectrum_scale(real):
    """The real Si.pos: 28Si++ sits 0.05 Da high (14.04) while H+ and 58Ni+ sit right."""
    run = liprobe.read(real / "apav_si" / "Si.pos")
    fit = calibration_check(run["mass"], ["H+", "Si++", "Ni+"])
    off = {r["ion"]: r["offset_da"] for r in fit.to_dict()["peaks"]}
    assert abs(off["H+"]) < 0.01 and abs(off["Ni+"]) < 0.01
    assert 0.035 < off["Si++"] < 0.065
