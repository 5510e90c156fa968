"""Voxels, isosurfaces and proxigrams against planted structures and independent sums.

Every data set is drawn here with plain numpy: a spherical precipitate, flat
interfaces (one along z, one inclined), a grain cut by the edge of the data,
a shell around an axis. The oracles are the planted geometry, numpy
histograms along the interface's normal, a brute-force point-to-triangle
distance written here, a PLY parser written here and ``composition_profile``.
"""

import math

import numpy as np
import pytest

from liprobe import AnalysisError, Range, RangeTable, Run, parse_ion
from liprobe.io.ply import write_ply
from liprobe.spatial import (
    isosurface,
    proxigram,
    radial_proxigram,
    signed_distances,
    voxelise,
)
from liprobe.spatial.profile import composition_profile

TABLE = RangeTable.from_ranges([
    Range(15.5, 16.5, parse_ion("O+")), Range(51.5, 52.5, parse_ion("Cr+")),
    Range(57.5, 58.5, parse_ion("Ni+")), Range(67.5, 68.5, parse_ion("CrO+"))])
MASS = {"O+": 16.0, "Cr+": 52.0, "Ni+": 58.0, "CrO+": 68.0}
DENSITY = 12.0          # ions per nm^3
R = 10.0                # planted sphere radius, nm


def make_run(p, is_cr, extra=None):
    """A run of Cr+ (where ``is_cr``) and Ni+ ions at positions ``p`` (n x 3, nm)."""
    mass = np.where(is_cr, MASS["Cr+"], MASS["Ni+"]) if extra is None else extra
    return Run.from_arrays(x=p[:, 0].astype(np.float32), y=p[:, 1].astype(np.float32),
                           z=p[:, 2].astype(np.float32), mass=np.asarray(mass, np.float32))


def uniform_box(lo, hi, seed, density=DENSITY):
    rng = np.random.default_rng(seed)
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    n = int(density * np.prod(hi - lo))
    return rng.uniform(lo, hi, (n, 3)), rng


@pytest.fixture(scope="module")
def sphere():
    """A 40 nm cube at 12 ions/nm^3 with a sphere of radius 10 nm at its centre: 50 at.% Cr
    inside, 0.5 at.% outside."""
    p, rng = uniform_box((-20, -20, -20), (20, 20, 20), seed=1)
    inside = np.linalg.norm(p, axis=1) < R
    is_cr = rng.random(len(p)) < np.where(inside, 0.5, 0.005)
    run = make_run(p, is_cr)
    surf = isosurface(voxelise(run, TABLE, "Cr", voxel_nm=1.0), 20.0)
    return p, is_cr, run, surf


# -- voxels ---------------------------------------------------------------------------

def test_voxel_counts_conserve_atoms_and_decompose_molecular_ions():
    p, rng = uniform_box((0, 0, 0), (10, 10, 10), seed=2, density=5)
    ions = rng.choice(["Cr+", "CrO+", "Ni+", "O+"], size=len(p), p=[0.1, 0.2, 0.3, 0.4])
    run = make_run(p, None, extra=[MASS[i] for i in ions])
    n_cr = int(np.isin(ions, ["Cr+", "CrO+"]).sum())
    n_atoms = len(ions) + int((ions == "CrO+").sum())         # CrO+ is two atoms
    for deloc in ("gauss", "cic"):
        g = voxelise(run, TABLE, "Cr", voxel_nm=1.0, delocalisation=deloc)
        assert g.raw_atoms.sum() == n_atoms and g.raw_solute.sum() == n_cr
        assert float(g.atoms.sum()) == pytest.approx(n_atoms, rel=1e-5)
        assert float(g.solute.sum()) == pytest.approx(n_cr, rel=1e-5)
    # excluding O drops O+ and CrO+ whole: Cr+ over Cr+ and Ni+
    g = voxelise(run, TABLE, "Cr", exclude=["O"])
    keep = np.isin(ions, ["Cr+", "Ni+"])
    assert g.raw_atoms.sum() == keep.sum() and g.raw_solute.sum() == (ions == "Cr+").sum()


def test_voxels_outside_the_data_are_nan_not_zero():
    p, rng = uniform_box((0, 0, 0), (12, 12, 12), seed=3)
    g = voxelise(make_run(p, rng.random(len(p)) < 0.2), TABLE, "Cr", voxel_nm=1.0)
    c = g.percent
    x, y, z = (g.centres(a) for a in range(3))
    inside = ((x[:, None, None] > 0) & (x[:, None, None] < 12) & (y[None, :, None] > 0)
              & (y[None, :, None] < 12) & (z[None, None, :] > 0) & (z[None, None, :] < 12))
    assert np.isfinite(c[inside]).all()
    assert np.isnan(c[0]).all() and np.isnan(c[-1]).all()      # the grid's outer layers
    assert np.isnan(c).sum() > 0 and not (c[~np.isnan(c)] < 0).any()
    assert np.isnan(g.density[0]).all()


def test_voxel_error_predicts_the_scatter_of_voxel_compositions():
    """In a uniform 10 at.% region the composition of voxels scatters as the binomial error
    of their weighted atoms says."""
    p, rng = uniform_box((0, 0, 0), (40, 40, 40), seed=4)
    g = voxelise(make_run(p, rng.random(len(p)) < 0.1), TABLE, "Cr", voxel_nm=1.0)
    core = (slice(8, -8),) * 3                                  # away from the edges
    c, e = g.percent[core], g.percent_error[core]
    assert np.nanmean(c) == pytest.approx(10.0, abs=0.1)
    assert np.nanstd(c) == pytest.approx(np.nanmean(e), rel=0.1)
    cic = voxelise(make_run(p, rng.random(len(p)) < 0.1), TABLE, "Cr", voxel_nm=1.0,
                   delocalisation="cic")
    c, e = cic.percent[core], cic.percent_error[core]
    assert np.nanstd(c) == pytest.approx(np.nanmean(e), rel=0.1)


def test_a_grid_above_the_limit_and_bad_parameters_are_clear_errors():
    p, rng = uniform_box((0, 0, 0), (10, 10, 10), seed=5, density=2)
    run = make_run(p, rng.random(len(p)) < 0.1)
    with pytest.raises(AnalysisError, match=r"voxels of 0.01 nm .* above the limit"):
        voxelise(run, TABLE, "Cr", voxel_nm=0.01)
    with pytest.raises(AnalysisError, match="no ranged ion carries Li"):
        voxelise(run, TABLE, "Li")
    with pytest.raises(AnalysisError, match="voxel edge must be a positive"):
        voxelise(run, TABLE, "Cr", voxel_nm=0)
    with pytest.raises(AnalysisError, match="cloud-in-cell .* no Gaussian sigma"):
        voxelise(run, TABLE, "Cr", sigma_nm=1.0, delocalisation="cic")
    unranged = make_run(p, None, extra=np.full(len(p), 3.3))
    with pytest.raises(AnalysisError, match="no ranged"):
        voxelise(unranged, TABLE, "Cr")
    g = voxelise(run, TABLE, "Cr")
    with pytest.raises(AnalysisError, match="not between 0 and 100"):
        isosurface(g, 120.0)
    with pytest.raises(AnalysisError, match="needs a species"):
        isosurface(voxelise(run, TABLE), 20.0)


# -- isosurface of the sphere ----------------------------------------------------------

def test_sphere_isosurface_has_the_sphere_area_and_volume_within_7_percent(sphere):
    _p, _cr, _run, surf = sphere
    assert len(surf.components) == 1 and surf.dropped_components == 0
    comp = surf.components[0]
    assert comp.closed and comp.encloses == "above" and comp.volume_method == "mesh"
    area, volume = 4 * math.pi * R ** 2, 4 / 3 * math.pi * R ** 3
    assert abs(surf.area_nm2 / area - 1) < 0.07
    assert abs(surf.volume_nm3 / volume - 1) < 0.07
    assert np.allclose(comp.centroid_nm, 0, atol=0.3)
    # the mesh's own numbers, recomputed here from its triangles
    v, f = surf.vertices, surf.faces
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    assert 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum() == \
        pytest.approx(surf.area_nm2)
    assert np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6 == pytest.approx(surf.volume_nm3)
    # every vertex close to the sphere
    assert np.abs(np.linalg.norm(v, axis=1) - R).max() < 1.0


def test_sphere_plateaus_and_the_relative_threshold(sphere):
    _p, _cr, _run, surf = sphere
    p_in, p_out = surf.plateaus["inside"], surf.plateaus["outside"]
    assert abs(p_in["value"] - 50.0) < 3 * p_in["error"]
    assert abs(p_out["value"] - 0.5) < 3 * p_out["error"]
    rel, why = surf.threshold_relative
    assert why is None
    assert rel == pytest.approx((20 - p_out["value"]) / (p_in["value"] - p_out["value"]))
    assert rel == pytest.approx((20 - 0.5) / (50 - 0.5), abs=0.02)
    d = surf.to_dict()
    assert d["area_nm2"] == surf.area_nm2 and d["threshold_relative"] == rel
    assert d["components"][0]["closed"] is True and d["n_components"] == 1


def test_small_components_below_the_stated_volume_are_dropped_and_counted():
    p, rng = uniform_box((-15, -15, -15), (15, 15, 15), seed=6)
    big = np.linalg.norm(p, axis=1) < 6
    small = [np.linalg.norm(p - c, axis=1) < 1.6 for c in ((10, 10, 10), (-10, 10, -10))]
    rich = big | small[0] | small[1]
    run = make_run(p, rng.random(len(p)) < np.where(rich, 0.6, 0.005))
    grid = voxelise(run, TABLE, "Cr")
    every = isosurface(grid, 20.0, min_volume_nm3=0)
    assert len(every.components) == 3 and every.dropped_components == 0
    kept = isosurface(grid, 20.0, min_volume_nm3=100.0)
    assert len(kept.components) == 1 and kept.dropped_components == 2
    assert kept.components[0].volume_nm3 == pytest.approx(every.components[0].volume_nm3)
    assert kept.faces.max() < len(kept.vertices) and (kept.face_component == 0).all()


def test_isodensity_surface_of_a_dense_sphere():
    p, rng = uniform_box((-15, -15, -15), (15, 15, 15), seed=7)
    extra, _ = uniform_box((-8, -8, -8), (8, 8, 8), seed=8)
    extra = extra[np.linalg.norm(extra, axis=1) < 8]          # twice the density inside r=8
    q = np.vstack([p, extra])
    run = make_run(q, np.zeros(len(q), bool))
    surf = isosurface(voxelise(run, TABLE), 18.0, kind="density")
    assert len(surf.components) == 1 and surf.components[0].closed
    assert abs(surf.volume_nm3 / (4 / 3 * math.pi * 8 ** 3) - 1) < 0.1
    assert surf.plateaus["inside"]["value"] == pytest.approx(24.0, rel=0.05)
    assert surf.plateaus["outside"]["value"] == pytest.approx(12.0, rel=0.05)


def test_no_surface_is_a_warning_and_its_proxigram_an_error():
    p, rng = uniform_box((0, 0, 0), (10, 10, 10), seed=9)
    run = make_run(p, rng.random(len(p)) < 0.05)
    surf = isosurface(voxelise(run, TABLE, "Cr"), 30.0)
    assert surf.components == () and surf.area_nm2 == 0 and len(surf.faces) == 0
    assert "below 30 at.% everywhere" in surf.warnings[0]
    assert surf.to_dict()["threshold_relative"] is None
    with pytest.raises(AnalysisError, match="no isosurface at 30 at.% of Cr"):
        proxigram(run, TABLE, surf)


# -- a grain cut by the edge of the data ----------------------------------------------------

def test_a_grain_crossing_the_data_edge_gains_no_surface_along_the_edge():
    """A Cr-rich sphere of radius 8 nm centred on the face x = 30 nm of the data: its
    surface is open there, and no triangle lies along the face."""
    p, rng = uniform_box((0, 0, 0), (30, 30, 30), seed=10)
    centre = np.array([30.0, 15.0, 15.0])
    rich = np.linalg.norm(p - centre, axis=1) < 8
    run = make_run(p, rng.random(len(p)) < np.where(rich, 0.5, 0.005))
    grid = voxelise(run, TABLE, "Cr")
    surf = isosurface(grid, 20.0)
    assert len(surf.components) == 1
    comp = surf.components[0]
    assert not comp.closed and comp.volume_method == "voxels"

    def cap_faces(v, f):
        """Triangles near the face x = 30 whose normal points along +x (a cap)."""
        a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
        n = np.cross(b - a, c - a)
        n /= np.linalg.norm(n, axis=1)[:, None]
        cent = (a + b + c) / 3
        return int(((np.abs(n[:, 0]) > 0.9) & (cent[:, 0] > 27)).sum())

    assert cap_faces(surf.vertices, surf.faces) == 0
    # the half sphere inside the data, plus at most the band the kernel reaches beyond it
    assert 2 * math.pi * 8 ** 2 * 0.93 < surf.area_nm2 < 2 * math.pi * 8 * (8 + 3)
    # the volume of the half grain inside the data (voxels above the threshold)
    assert comp.volume_nm3 == pytest.approx(2 / 3 * math.pi * 8 ** 3, rel=0.25)
    # the same field with NaN read as 0 closes the grain along the face: the test can fail
    from skimage.measure import marching_cubes

    v, f, _n, _ = marching_cubes(np.nan_to_num(grid.percent), 20.0)
    v = np.asarray(grid.origin_nm) + grid.voxel_nm * v
    assert cap_faces(v, f) > 50


# -- proxigrams ----------------------------------------------------------------------

def brute_distance(points, v, f):
    """Distance from each point to the nearest triangle, by testing every triangle."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    n = np.cross(b - a, c - a)
    n /= np.linalg.norm(n, axis=1)[:, None]

    def segment(p, s0, s1):
        d = s1 - s0
        t = np.clip(((p - s0) * d).sum(1) / (d * d).sum(1), 0, 1)
        return np.linalg.norm(p - (s0 + t[:, None] * d), axis=1)

    out = np.empty(len(points))
    for i, p in enumerate(points):
        h = ((p - a) * n).sum(1)
        q = p - h[:, None] * n
        inside = ((np.cross(b - a, q - a) * n).sum(1) >= 0) & \
            ((np.cross(c - b, q - b) * n).sum(1) >= 0) & ((np.cross(a - c, q - c) * n).sum(1) >= 0)
        edge = np.minimum(np.minimum(segment(p, a, b), segment(p, b, c)), segment(p, c, a))
        out[i] = np.where(inside, np.abs(h), edge).min()
    return out


def test_signed_distances_match_a_brute_force_search(sphere):
    _p, _cr, _run, surf = sphere
    rng = np.random.default_rng(11)
    q = rng.uniform(-19, 19, (1000, 3))
    d = signed_distances(surf, q[:, 0], q[:, 1], q[:, 2], max_distance_nm=30.0)
    assert np.isfinite(d).all()
    ref = brute_distance(q, surf.vertices, surf.faces)
    near = ref < 3
    assert near.sum() > 100
    assert np.abs(np.abs(d[near]) - ref[near]).max() < 0.05
    assert np.abs(np.abs(d) - ref).max() < 0.25               # a rough mesh, far away
    # the sign: negative inside the precipitate
    r = np.linalg.norm(q, axis=1)
    clear = np.abs(r - R) > 1.0
    assert (np.sign(d[clear]) == np.sign(r[clear] - R)).all()


def test_sphere_proxigram_recovers_both_plateaus_and_the_interface(sphere):
    _p, _cr, run, surf = sphere
    prox = proxigram(run, TABLE, surf, bin_nm=0.5, max_distance_nm=10.0)
    assert prox.kind == "isosurface" and prox.elements == ("O", "Cr", "Ni")
    assert prox.ions_counted == run.n_ions
    assert prox.ions.sum() + prox.ions_beyond == prox.ions_counted
    # binomial errors, recomputed
    c = prox.percent["Cr"] / 100
    assert np.allclose(prox.error["Cr"], 100 * np.sqrt(c * (1 - c) / prox.atoms))

    def plateau(lo, hi):
        sel = (prox.distance > lo) & (prox.distance < hi)
        n = prox.atoms[sel].sum()
        k = (prox.percent["Cr"][sel] / 100 * prox.atoms[sel]).sum()
        return 100 * k / n, 100 * math.sqrt(k / n * (1 - k / n) / n)

    inside, e_in = plateau(-8, -2.5)
    outside, e_out = plateau(2.5, 10)
    assert abs(inside - 50.0) < 3 * e_in
    assert abs(outside - 0.5) < 3 * e_out
    # the interface: where Cr crosses half-way between the plateaus, from the inside out
    half = 0.5 * (inside + outside)
    pct, dist = prox.percent["Cr"], prox.distance
    i = int(np.flatnonzero((dist > -5) & (pct < half))[0])
    cross = dist[i - 1] + (half - pct[i - 1]) * (dist[i] - dist[i - 1]) / (pct[i] - pct[i - 1])
    r_mesh = float(np.linalg.norm(surf.vertices, axis=1).mean())
    assert abs(r_mesh + cross - R) <= 1.0                      # within one voxel edge
    d = prox.to_dict()
    assert set(d["bins"][0]) >= {"distance_nm", "at_pct", "at_pct_err", "ions"}
    assert d["bins"][0]["at_pct"].keys() == {"O", "Cr", "Ni"}
    assert d["bins"][0]["at_pct"]["O"] == 0.0


def flat_run(normal, seed, lattice=False):
    """40 at.% Cr below the plane through the origin with this normal, 5 at.% above."""
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    if lattice:    # sites on a 0.5 nm lattice, every other plane of z below 0 all Cr
        g = np.arange(-10, 10, 0.5) + 0.25
        p = np.stack([a.ravel() for a in np.meshgrid(g, g, g, indexing="ij")], axis=1)
        every_other = np.indices((40, 40, 40))[2].ravel() % 2 == 0
        return p, n, (p @ n < 0) & every_other
    p, rng = uniform_box((-12, -12, -12), (12, 12, 12), seed=seed)
    return p, n, rng.random(len(p)) < np.where(p @ n < 0, 0.4, 0.05)


def test_flat_interface_proxigram_equals_a_histogram_along_its_normal():
    """On a lattice with a flat interface along z, the mesh is flat and the proxigram's bins
    hold exactly the ions of a numpy histogram of z below and above the surface."""
    p, n, is_cr = flat_run((0, 0, 1), 0, lattice=True)
    run = make_run(p, is_cr)
    surf = isosurface(voxelise(run, TABLE, "Cr"), 30.0)
    z_s = surf.vertices[:, 2]
    assert np.ptp(z_s) < 1e-6                                   # flat
    prox = proxigram(run, TABLE, surf, bin_nm=1.0, max_distance_nm=6.0)
    s = p[:, 2] - z_s[0]
    edges = np.arange(-6, 7, 1.0)
    allc, _ = np.histogram(s, edges)
    crc, _ = np.histogram(s[is_cr], edges)
    assert np.array_equal(prox.lo, edges[:-1]) and np.array_equal(prox.ions, allc)
    assert np.allclose(prox.percent["Cr"], 100 * crc / allc)
    # and the same as composition_profile along z over the same slab of ions (its bins
    # start at the slab's lowest plane, which lies in the proxigram's first bin)
    slab = (s >= -6) & (s < 6)
    prof = composition_profile(make_run(p[slab], is_cr[slab]), TABLE, bin_nm=1.0)
    assert prof.n_bins == prox.n_bins == 12
    assert np.array_equal(prof.atoms, prox.atoms)
    assert np.allclose(prof.percent["Cr"], prox.percent["Cr"])
    assert np.allclose(prof.error["Cr"], prox.error["Cr"])


def test_inclined_flat_interface_proxigram_equals_a_histogram_along_its_normal():
    p, n, is_cr = flat_run((1.0, 0.5, 2.0), seed=12)
    run = make_run(p, is_cr)
    surf = isosurface(voxelise(run, TABLE, "Cr"), 20.0)
    in_data = (np.abs(surf.vertices) < 11).all(axis=1)    # beyond, the field is extrapolated
    offset = float((surf.vertices[in_data] @ n).mean())
    assert np.abs(surf.vertices[in_data] @ n - offset).max() < 0.6     # flat, within the noise
    prox = proxigram(run, TABLE, surf, bin_nm=1.0, max_distance_nm=6.0)
    s = p @ n - offset
    edges = np.arange(-6, 7, 1.0)
    allc, _ = np.histogram(s, edges)
    crc, _ = np.histogram(s[is_cr], edges)
    ref = 100 * crc / allc
    err = 100 * np.sqrt(ref / 100 * (1 - ref / 100) / allc)
    assert np.allclose(prox.ions, allc, rtol=0.03)
    assert (np.abs(prox.percent["Cr"] - ref) < 2 * err + 0.3).all()
    assert prox.percent["Cr"][:4] == pytest.approx(40, abs=1.5)
    assert prox.percent["Cr"][-4:] == pytest.approx(5, abs=0.6)


def test_radial_proxigram_equals_the_radial_profile_and_finds_a_tilted_axis():
    rng = np.random.default_rng(13)
    n = 300_000
    r = 15 * np.sqrt(rng.random(n))
    t = rng.uniform(0, 2 * np.pi, n)
    z = -rng.uniform(0, 60, n)
    p = np.stack([r * np.cos(t), r * np.sin(t), z], axis=1)
    p[0] = (0.0, 0.0, -30.0)                      # one ion on the axis: both start at r = 0
    shell = r > 12
    is_cr = rng.random(n) < np.where(shell, 0.7, 0.01)
    run = make_run(p, is_cr)
    prox = radial_proxigram(run, TABLE, bin_nm=1.0, center_nm=(0.0, 0.0))
    prof = composition_profile(run, TABLE, bin_nm=1.0, radial=True, center_nm=(0.0, 0.0))
    assert np.allclose(prox.lo, prof.lo) and np.array_equal(prox.atoms, prof.atoms)
    assert np.allclose(prox.percent["Cr"], prof.percent["Cr"])
    assert prox.percent["Cr"][-1] == pytest.approx(70, abs=2)
    # the same cylinder tilted by 10 degrees about y: the fitted axis follows it
    a = math.radians(10)
    rot = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    tilted = radial_proxigram(make_run(p @ rot.T, is_cr), TABLE, bin_nm=1.0)
    assert tilted.surface["tilt_deg"] == pytest.approx(10, abs=0.5)
    assert np.allclose(tilted.percent["Cr"][2:13], prox.percent["Cr"][2:13], atol=1.0)


# -- the mesh file ------------------------------------------------------------------

def read_ply(path):
    """An independent reader of binary little-endian PLY: header lines, then the records."""
    data = open(path, "rb").read()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    assert header[0] == "ply" and header[1] == "format binary_little_endian 1.0"
    n_v = int(next(h for h in header if h.startswith("element vertex")).split()[2])
    n_f = int(next(h for h in header if h.startswith("element face")).split()[2])
    props = [h.split()[2] for h in header if h.startswith("property float")]
    assert "property list uchar int vertex_indices" in header
    v = np.frombuffer(data, "<f4", n_v * len(props), end).reshape(n_v, len(props))
    f = np.frombuffer(data, np.dtype([("n", "u1"), ("i", "<i4", 3)]), n_f,
                      end + v.nbytes)
    assert end + v.nbytes + f.nbytes == len(data)
    assert (f["n"] == 3).all()
    return header, props, v, f["i"]


def test_ply_mesh_reads_back(sphere, tmp_path):
    _p, _cr, _run, surf = sphere
    out = tmp_path / "mesh.ply"
    surf.write_ply(out)
    header, props, v, f = read_ply(out)
    assert props == ["x", "y", "z", "nx", "ny", "nz"]
    assert any(h.startswith("comment liprobe isosurface") for h in header)
    assert np.allclose(v[:, :3], surf.vertices, atol=1e-5)
    assert np.array_equal(f, surf.faces)
    assert np.allclose(np.linalg.norm(v[:, 3:], axis=1), 1, atol=1e-3)
    # normals point outwards, from the precipitate into the matrix
    assert (np.einsum("ij,ij->i", v[:, 3:], v[:, :3]) > 0).mean() > 0.99
    # a bare triangle
    write_ply(tmp_path / "t.ply", [[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]])
    _h, props, v, f = read_ply(tmp_path / "t.ply")
    assert props == ["x", "y", "z"] and f.tolist() == [[0, 1, 2]]
    with pytest.raises(ValueError, match="outside 0..2"):
        write_ply(tmp_path / "bad.ply", v, [[0, 1, 3]])


# --- bounded memory (issue 23): the same numbers from slab-wise and chunked helpers -----

def test_slab_distance_shells_equal_the_whole_grid_transform():
    from scipy import ndimage

    from liprobe.spatial.isosurface import distance_shells

    rng = np.random.default_rng(0)
    for _ in range(8):
        shape = tuple(int(v) for v in rng.integers(5, 50, 3))
        f = ndimage.gaussian_filter(rng.random(shape), 3)
        high = f > np.quantile(f, rng.uniform(0.2, 0.9))
        off, outer = rng.uniform(0.5, 4), rng.uniform(4, 9)
        d_in = ndimage.distance_transform_edt(high)
        d_out = ndimage.distance_transform_edt(~high)
        inside, outside = distance_shells(high, off, outer, slab=int(rng.integers(1, 9)))
        assert np.array_equal(inside, high & (d_in > off))
        assert np.array_equal(outside, ~high & (d_out > off) & (d_out <= outer))
    # a slab with nothing above the threshold and one with nothing below
    high = np.zeros((6, 6, 40), bool)
    high[:, :, :10] = True
    inside, outside = distance_shells(high, 1.0, 3.0, slab=4)
    assert np.array_equal(inside, high & (ndimage.distance_transform_edt(high) > 1.0))
    d_out = ndimage.distance_transform_edt(~high)
    assert np.array_equal(outside, ~high & (d_out > 1.0) & (d_out <= 3.0))


def test_open_edges_and_per_face_sums_equal_the_plain_computation():
    import importlib

    from scipy import ndimage
    from skimage.measure import marching_cubes

    iso = importlib.import_module("liprobe.spatial.isosurface")   # the module, not the function
    rng = np.random.default_rng(1)
    v = ndimage.gaussian_filter(rng.random((30, 30, 30)), 2)
    verts, faces, _n, _v = marching_cubes(v, float(np.median(v)))
    faces = faces[rng.random(len(faces)) > 0.02].astype(np.int64)    # holes: open edges
    # the plain computation: every edge, sorted, counted with np.unique
    e = np.sort(np.stack([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], axis=1),
                axis=2).reshape(-1, 2)
    key = e[:, 0] * (faces.max() + 1) + e[:, 1]
    _u, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    want = (counts[inv] == 1).reshape(-1, 3).any(axis=1)
    got = iso._boundary_edge_faces(faces)
    assert np.array_equal(got, want) and 0 < got.sum() < len(faces)
    verts = verts.astype(np.float64)
    v0, v1, v2 = (verts[faces[:, i]] for i in range(3))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(iso, "_FACE_CHUNK", 1000)                         # many chunks
        areas = iso.triangle_areas(verts, faces)
        pts, which = rng.normal(size=(7, 3)), rng.integers(0, 7, len(faces))
        vols = iso._signed_volumes(verts, faces, pts, which)
        o = pts[which]
    assert np.array_equal(areas, 0.5 * np.linalg.norm(np.cross(v1 - v0, v2 - v0), axis=1))
    a, b, c = v0 - o, v1 - o, v2 - o
    assert np.array_equal(vols, np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0)


def test_a_grid_larger_than_the_available_memory_is_refused_first(monkeypatch):
    from liprobe.spatial import voxels

    rng = np.random.default_rng(2)
    n = 5000
    run = Run.from_arrays(x=rng.uniform(-20, 20, n), y=rng.uniform(-20, 20, n),
                          z=rng.uniform(-40, 0, n), mass=np.full(n, 52.0))
    table = RangeTable.from_ranges([Range(51.5, 52.5, parse_ion("Cr+"))])
    monkeypatch.setattr(voxels, "_available_memory", lambda: 1_000_000)
    with pytest.raises(AnalysisError, match=r"needs about [\d,]+ MB \(64 bytes per voxel\), "
                                            r"more than the 1 MB this machine has"):
        voxelise(run, table, "Cr", voxel_nm=1.0)
    monkeypatch.setattr(voxels, "_available_memory", lambda: None)     # unknown: no check
    assert voxelise(run, table, "Cr", voxel_nm=1.0).n_voxels > 1_000_000 // 64
