"""2D composition maps against numpy's histogram2d and hand counts."""

import numpy as np
import pytest

from liprobe import AnalysisError, Range, RangeTable, Run, parse_ion
from liprobe.spatial.map2d import composition_map

TABLE = RangeTable.from_ranges([
    Range(15.5, 16.5, parse_ion("O+")), Range(51.5, 52.5, parse_ion("Cr+")),
    Range(57.5, 58.5, parse_ion("Ni+")), Range(67.5, 68.5, parse_ion("CrO+"))])


def test_map_counts_equal_histogram2d_of_the_slab_with_molecular_ions_decomposed():
    rng = np.random.default_rng(0)
    p = rng.uniform((-10, -10, -30), (10, 10, 0), (60_000, 3)).astype(np.float32)
    mass = rng.choice([16.0, 52.0, 58.0, 68.0, 3.3], size=len(p),
                      p=[0.3, 0.1, 0.4, 0.1, 0.1]).astype(np.float32)
    run = Run.from_arrays(x=p[:, 0], y=p[:, 1], z=p[:, 2], mass=mass)
    m = composition_map(run, TABLE, "Cr", plane="xz", at_nm=2.0, thickness_nm=4.0,
                        pixel_nm=2.0)
    q = p.astype(np.float64)
    slab = (np.abs(q[:, 1] - 2.0) <= 2.0) & (mass != 3.3)
    atoms_w = np.where(mass == 68.0, 2, 1)
    cr_w = np.isin(mass, [52.0, 68.0]).astype(int)
    ex = m.origin_nm[0] + 2.0 * np.arange(m.shape[0] + 1)
    ez = m.origin_nm[1] + 2.0 * np.arange(m.shape[1] + 1)
    h_atoms = np.histogram2d(q[slab, 0], q[slab, 2], bins=(ex, ez), weights=atoms_w[slab])[0]
    h_cr = np.histogram2d(q[slab, 0], q[slab, 2], bins=(ex, ez), weights=cr_w[slab])[0]
    assert m.axes == ("x", "z", "y") and m.ions_in_slab == slab.sum()
    assert m.atoms.tolist() == h_atoms.astype(int).tolist()
    assert m.solute.tolist() == h_cr.astype(int).tolist()
    c = h_cr / h_atoms
    np.testing.assert_allclose(m.percent, 100 * c, rtol=1e-12)
    np.testing.assert_allclose(m.error, 100 * np.sqrt(c * (1 - c) / h_atoms), rtol=1e-12)
    d = m.to_dict()
    assert d["counts"]["atoms"] == h_atoms.astype(int).tolist()
    assert d["at_pct_slab"] == pytest.approx(100 * h_cr.sum() / h_atoms.sum())
    assert len(m.rows()) == (h_atoms > 0).sum()


def test_empty_pixels_have_no_composition_and_the_default_slab_is_the_median():
    p = np.array([[0.5, 0.5, 0.0], [3.5, 0.5, 0.0], [0.5, 0.5, 10.0]], np.float32)
    run = Run.from_arrays(x=p[:, 0], y=p[:, 1], z=p[:, 2],
                          mass=np.array([52.0, 58.0, 52.0], np.float32))
    m = composition_map(run, TABLE, "Cr", pixel_nm=1.0, thickness_nm=1.0)
    assert m.at_nm == 0.0 and m.ions_in_slab == 2 and m.shape == (4, 1)
    assert m.percent[0, 0] == 100.0 and m.percent[3, 0] == 0.0
    assert np.isnan(m.percent[1, 0]) and np.isnan(m.error[2, 0])
    assert m.to_dict()["pixels_with_atoms"] == 2


def test_bad_parameters_are_clear_errors():
    p = np.zeros((5, 3), np.float32)
    run = Run.from_arrays(x=p[:, 0], y=p[:, 1], z=p[:, 2], mass=np.full(5, 52.0, np.float32))
    with pytest.raises(AnalysisError, match="unknown plane"):
        composition_map(run, TABLE, "Cr", plane="xx")
    with pytest.raises(AnalysisError, match="no ranged ion carries Li"):
        composition_map(run, TABLE, "Li")
    with pytest.raises(AnalysisError, match="no counted ion in the 1 nm slab"):
        composition_map(run, TABLE, "Cr", at_nm=50.0, thickness_nm=1.0)
    with pytest.raises(AnalysisError, match="mapped and excluded"):
        composition_map(run, TABLE, "Cr", exclude=["Cr"])


def test_a_repeated_species_counts_once_and_an_infinite_slab_holds_every_ion():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 10, (5000, 3)).astype(np.float32)
    mass = rng.choice([52.0, 58.0, 68.0], size=len(p)).astype(np.float32)
    run = Run.from_arrays(x=p[:, 0], y=p[:, 1], z=p[:, 2], mass=mass)
    once = composition_map(run, TABLE, "Cr", pixel_nm=5.0, thickness_nm=4.0)
    twice = composition_map(run, TABLE, ["Cr", "Cr"], pixel_nm=5.0, thickness_nm=4.0)
    assert twice.species == ("Cr",)
    assert twice.solute.tolist() == once.solute.tolist()
    assert np.nanmax(twice.percent) <= 100.0
    every = composition_map(run, TABLE, "Cr", pixel_nm=5.0, thickness_nm=float("inf"))
    assert every.ions_in_slab == len(p)
    assert every.solute.sum() == np.isin(mass, [52.0, 68.0]).sum()
