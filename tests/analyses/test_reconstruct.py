"""Reconstruction: the reference's worked example, round trips, an independent forward
model with a planted layer, the real Si files, and the run history."""

import math

import numpy as np
import pytest

import liprobe
from liprobe.chemistry import Ion, parse_ion
from liprobe.errors import AnalysisError, ColumnError
from liprobe.history import binned_voltage, run_history, voltage_jumps
from liprobe.instruments import INSTRUMENTS, MATERIALS, instrument, material
from liprobe.rangetable import Range, RangeTable
from liprobe.spatial.compare import compare_to_file_positions
from liprobe.spatial.reconstruct import (
    ReconstructionParameters,
    cap_positions,
    field_of_view_factor,
    launch_angles,
    project_angles_to_detector,
    project_to_detector,
    radius_from_shank,
    radius_from_voltage,
    reconstruct,
    reconstruct_run,
    window_volumes,
)

# reconstruction.md s5: the worked example
EX = dict(flight_path_mm=100.0, efficiency=0.80, atomic_volume_nm3=0.00845,
          evaporation_field_V_per_nm=35.0, k_factor=3.3, icf=1.65, detector_radius_mm=40.0)


def params(**kw):
    return ReconstructionParameters(**{**EX, **kw})


# ---------------------------------------------------------------------------
# presets
# ---------------------------------------------------------------------------

def test_presets_hold_the_reference_values():
    assert instrument("LEAP 5000 XS").efficiency == 0.80
    assert instrument("leap 5000xr").efficiency == 0.52
    assert instrument("LEAP 5000 XS").flight_path_mm == 100.0
    assert material("NMC811").atomic_volume_nm3 == 0.00845
    assert material("LiMn2O4").atomic_volume_nm3 == 0.01001
    assert material("Cr").atomic_volume_nm3 == 0.01200
    assert material("Cr").evaporation_field_V_per_nm == 29.0
    for table in (INSTRUMENTS, MATERIALS):
        assert all(entry.source for entry in table.values())
    with pytest.raises(KeyError, match="LEAP 5000 XS"):
        instrument("LEAP 9000")


def test_preset_parameters_and_overrides():
    p = ReconstructionParameters.preset("LEAP 5000 XR", "LiMn2O4", icf=1.4, k_factor=None)
    assert (p.efficiency, p.flight_path_mm, p.atomic_volume_nm3, p.icf, p.k_factor) == \
        (0.52, 382.0, 0.01001, 1.4, 3.3)
    assert p.instrument == "LEAP 5000 XR" and p.material == "LiMn2O4"
    with pytest.raises(ValueError, match="efficiency"):
        params(efficiency=1.5)
    with pytest.raises(ValueError, match="shank"):
        params(radius="shank")
    with pytest.raises(ValueError, match="protocol"):
        params(protocol="felfer")


# ---------------------------------------------------------------------------
# the worked example (reconstruction.md s5)
# ---------------------------------------------------------------------------

def test_worked_example_radius_magnification_and_positions():
    R = radius_from_voltage(5000.0, 3.3, 35.0)
    assert R == pytest.approx(43.2900, abs=1e-4)
    assert 100e6 / (1.65 * R) == pytest.approx(1.4000e6, rel=1e-4)      # M = L / (xi R), L in nm
    th_b, _ = launch_angles([20.0], [0.0], 100.0, 1.65, "bas")
    xb, _, sag_b = (float(a[0]) for a in cap_positions(th_b, 0.0, R))
    assert xb == pytest.approx(14.2857, abs=1e-4)
    assert sag_b == pytest.approx(2.4251, abs=1e-4)
    assert math.atan(20 / 100) == pytest.approx(0.19740, abs=1e-5)
    th_g, _ = launch_angles([20.0], [0.0], 100.0, 1.65, "geiser")
    assert th_g[0] == pytest.approx(0.32522, abs=1e-5)
    xg, _, sag_g = (float(a[0]) for a in cap_positions(th_g, 0.0, R))
    assert xg == pytest.approx(13.8319, abs=1e-4)
    assert sag_g == pytest.approx(2.2692, abs=1e-4)


@pytest.mark.parametrize("protocol, x, sag", [("bas", 14.2857, 2.4251),
                                              ("geiser", 13.8319, 2.2692)])
def test_worked_example_through_reconstruct(protocol, x, sag):
    r = reconstruct(np.array([20.0]), np.array([0.0]), np.array([5000.0]),
                    params(protocol=protocol))
    assert r.x_nm[0] == pytest.approx(x, abs=1e-4) and r.y_nm[0] == 0
    # CAMECA sign: z = -(Z + curvature term)
    assert r.z_nm[0] == pytest.approx(-sag, abs=1e-4)
    assert r.radius_start_nm == pytest.approx(43.2900, abs=1e-4)


def test_worked_example_depth_increment_per_atom_count():
    # ions on the axis (no curvature term), 1-, 2- and 3-atom ions: Li+, O2+, NiO2+
    table = RangeTable.from_ranges([Range(6.9, 7.1, parse_ion("Li+")),
                                    Range(31.9, 32.1, parse_ion("O2+")),
                                    Range(89.9, 90.1, parse_ion("NiO2+"))])
    vol = window_volumes(table, 0.00845)
    np.testing.assert_allclose(vol, [0.00845, 0.0169, 0.02535])
    labels = np.array([0, 1, 2, 0], np.int16)
    n = len(labels)
    r = reconstruct(np.zeros(n), np.zeros(n), np.full(n, 5000.0), params(protocol="bas"),
                    labels=labels, window_volume_nm3=vol)
    dz = -np.diff(np.concatenate(([0.0], r.z_nm.astype(np.float64))))
    np.testing.assert_allclose(dz, [4.1186e-6, 8.2372e-6, 1.23558e-5, 4.1186e-6], rtol=2e-4)
    assert 1 / dz[0] == pytest.approx(2.43e5, rel=1e-3)   # one-atom ions per nm of depth


def test_geiser_depth_uses_the_wide_angle_area():
    # S_A = pi (R sin theta_max)^2, theta_max the launch angle of the 40 mm edge
    R = 5000 / (3.3 * 35)
    tp = math.atan(40 / 100)
    th = tp + math.asin(0.65 * math.sin(tp))
    expected = 0.00845 / 0.8 / (math.pi * (R * math.sin(th)) ** 2)
    r = reconstruct(np.zeros(1), np.zeros(1), np.array([5000.0]), params(protocol="geiser"))
    assert -r.z_nm[0] == pytest.approx(expected, rel=1e-5)
    assert field_of_view_factor(40.0, 100.0, 1.65, "bas") == pytest.approx(0.66)
    # the Bas area is S_D / M^2 [B95]
    r_b = reconstruct(np.zeros(1), np.zeros(1), np.array([5000.0]), params(protocol="bas"))
    M = 100e6 / (1.65 * R)
    assert -r_b.z_nm[0] == pytest.approx(0.00845 / 0.8 / (math.pi * 40e6 ** 2 / M ** 2), rel=1e-5)


def test_unranged_ions_take_the_count_weighted_mean_volume():
    table = RangeTable.from_ranges([Range(6.9, 7.1, parse_ion("Li+")),
                                    Range(31.9, 32.1, parse_ion("O2+"))])
    vol = window_volumes(table, 0.01)
    # three Li+ (1 atom) and one O2+ (2 atoms): mean 1.25 atoms
    labels = np.array([0, 0, 0, 1, -1], np.int16)
    r = reconstruct(np.zeros(5), np.zeros(5), np.full(5, 5000.0), params(protocol="bas"),
                    labels=labels, window_volume_nm3=vol)
    dz = -np.diff(np.concatenate(([0.0], r.z_nm.astype(np.float64))))
    assert dz[4] / dz[0] == pytest.approx(1.25, rel=1e-4)
    assert r.mean_ion_volume_nm3 == pytest.approx(0.0125)


@pytest.mark.parametrize("radius", ["voltage", "shank"])
def test_a_named_window_without_volume_counts_like_unranged_ions(radius):
    """A named ion with no atoms and no Vol: (AP Suite's "noise") takes the mean volume:
    its ions reconstruct exactly as if they were unranged, and no position is NaN."""
    table = RangeTable.from_ranges([Range(6.9, 7.1, parse_ion("Li+")),
                                    Range(20.0, 21.0, Ion((), 1, label="noise")),
                                    Range(31.9, 32.1, parse_ion("O2+"))])
    vol = window_volumes(table, 0.01)
    assert math.isnan(vol[1])
    rng = np.random.default_rng(3)
    n = 40_000
    dx, dy = rng.uniform(-30, 30, (2, n))
    v = np.linspace(4000.0, 6000.0, n)
    labels = rng.choice(np.array([-1, 0, 1, 2], np.int16), n)
    p = params(protocol="geiser") if radius == "voltage" else \
        params(protocol="geiser", radius="shank", shank_angle_deg=10.0, initial_radius_nm=30.0)
    named = reconstruct(dx, dy, v, p, labels=labels, window_volume_nm3=vol)
    unranged = reconstruct(dx, dy, v, p, labels=np.where(labels == 1, -1, labels).astype(np.int16),
                           window_volume_nm3=vol)
    assert np.isfinite(named.z_nm).all()
    np.testing.assert_array_equal(named.z_nm, unranged.z_nm)
    np.testing.assert_array_equal(named.x_nm, unranged.x_nm)


def test_range_file_volumes_are_used_where_given():
    table = RangeTable.from_ranges([Range(6.9, 7.1, parse_ion("Li+"), volume=0.05),
                                    Range(31.9, 32.1, parse_ion("O2+"))])
    np.testing.assert_allclose(window_volumes(table, 0.01), [0.05, 0.02])
    np.testing.assert_allclose(window_volumes(table, 0.01, use_range_volumes=False), [0.01, 0.02])


# ---------------------------------------------------------------------------
# inverse projection
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["bas", "geiser"])
def test_project_to_detector_inverts_launch_angles(protocol):
    rng = np.random.default_rng(1)
    theta = rng.uniform(0, 0.6, 1000)
    phi = rng.uniform(-math.pi, math.pi, 1000)
    dx, dy = project_angles_to_detector(theta, phi, flight_path_mm=100.0, icf=1.65,
                                        protocol=protocol, detector_center_mm=(1.0, -2.0))
    th2, ph2 = launch_angles(dx, dy, 100.0, 1.65, protocol, detector_center_mm=(1.0, -2.0))
    np.testing.assert_allclose(th2, theta, atol=1e-12)
    np.testing.assert_allclose(np.angle(np.exp(1j * (ph2 - phi))), 0, atol=1e-9)


def test_project_to_detector_small_angles_follow_the_magnification():
    # x = X_D / M with M = L / (xi R): a 1 nm offset on a 43.29 nm cap hits 1.4 mm out
    for protocol in ("bas", "geiser"):
        dx, dy = project_to_detector([1e-3], [0.0], 43.29004329, flight_path_mm=100.0, icf=1.65,
                                     protocol=protocol)
        assert dx[0] == pytest.approx(1.4e-3, rel=1e-6) and dy[0] == 0


def test_project_to_detector_rejects_points_off_the_cap():
    with pytest.raises(ValueError, match="outside the cap"):
        project_to_detector([11.0], [0.0], 10.0, flight_path_mm=100.0, icf=1.65)


# ---------------------------------------------------------------------------
# round trips: random atoms -> evaporation order -> detector -> reconstruction
# ---------------------------------------------------------------------------

def evaporate_cylinder(radius_nm, fov_nm, depth_nm, omega_nm3, efficiency, seed):
    """Atoms at random in a cylinder under a cap of fixed radius, in evaporation order.

    An atom at distance d from the axis and depth w along it is reached when the
    apex is at Z = w - R (1 - sqrt(1 - d^2 / R^2)); the run goes from Z = 0 (atoms
    above the first cap were never there) to Z = depth_nm. Only atoms within fov_nm
    of the axis are imaged; each is detected with probability ``efficiency``.
    Returns x, y (nm), the apex depth Z at evaporation and the atom's true z (CAMECA sign).
    """
    rng = np.random.default_rng(seed)
    sag_max = radius_nm * (1 - math.sqrt(1 - (fov_nm / radius_nm) ** 2))
    n = rng.poisson(math.pi * fov_nm ** 2 * (depth_nm + sag_max) / omega_nm3)
    d = fov_nm * np.sqrt(rng.uniform(0, 1, n))
    phi = rng.uniform(-math.pi, math.pi, n)
    w = rng.uniform(0, depth_nm + sag_max, n)
    sag = radius_nm * (1 - np.sqrt(1 - (d / radius_nm) ** 2))
    Z = w - sag
    keep = (Z > 0) & (Z <= depth_nm) & (rng.uniform(0, 1, n) < efficiency)
    order = np.argsort(Z[keep])
    x = (d * np.cos(phi))[keep][order]
    y = (d * np.sin(phi))[keep][order]
    return x, y, Z[keep][order], -w[keep][order]


@pytest.mark.parametrize("protocol", ["bas", "geiser"])
def test_round_trip_positions(protocol):
    R, eta, omega, kF = 12.0, 0.8, 0.02, 3.3 * 35.0
    fov = 0.55 * R
    x, y, Z, z_true = evaporate_cylinder(R, fov, 12.0, omega, eta, seed=2)
    dx, dy = project_to_detector(x, y, R, flight_path_mm=100.0, icf=1.65, protocol=protocol)
    # the detector edge: where the field of view ends
    edge_x, _ = project_to_detector([fov], [0.0], R, flight_path_mm=100.0, icf=1.65,
                                    protocol=protocol)
    r_det = float(edge_x[0])
    p = params(protocol=protocol, atomic_volume_nm3=omega, efficiency=eta,
               detector_radius_mm=r_det)
    rec = reconstruct(dx, dy, np.full(len(x), R * kF), p)
    assert np.max(np.abs(rec.x_nm - x)) < 1e-3
    assert np.max(np.abs(rec.y_nm - y)) < 1e-3
    # depth: the count of detected atoms above an atom is Poisson; its depth
    # error is Z / sqrt(count) (plus one ion's share of a layer)
    count = np.arange(1, len(x) + 1)
    tolerance = 4 * Z / np.sqrt(count) + 1e-3
    assert np.all(np.abs(rec.z_nm - z_true) < tolerance)
    assert np.all(rec.z_nm <= 0)
    assert rec.depth_nm == pytest.approx(Z[-1], rel=0.02)


def test_round_trip_with_the_data_s_own_detector_radius():
    R, eta, omega = 12.0, 0.8, 0.02
    x, y, Z, z_true = evaporate_cylinder(R, 0.5 * R, 8.0, omega, eta, seed=3)
    dx, dy = project_to_detector(x, y, R, flight_path_mm=100.0, icf=1.65)
    rec = reconstruct(dx, dy, np.full(len(x), R * 3.3 * 35.0),
                      params(atomic_volume_nm3=omega, efficiency=eta, detector_radius_mm=None))
    assert rec.parameters.detector_radius_mm == pytest.approx(float(np.hypot(dx, dy).max()))
    assert np.max(np.abs(rec.x_nm - x)) < 1e-3
    assert rec.depth_nm == pytest.approx(Z[-1], rel=0.02)


def test_shank_radius_grows_with_the_reconstructed_depth():
    # radius R(Z) = R0 + Z sin a / (1 - sin a); the hits are projected from caps of
    # exactly that radius, so the reconstruction gives the positions back
    n, r0, angle = 20000, 15.0, 12.0
    p = params(radius="shank", shank_angle_deg=angle, initial_radius_nm=r0, protocol="geiser")
    rng = np.random.default_rng(4)
    theta = np.arcsin(np.sqrt(rng.uniform(0, 1, n)) * 0.55)
    phi = rng.uniform(-math.pi, math.pi, n)
    dx, dy = project_angles_to_detector(theta, phi, flight_path_mm=100.0, icf=1.65)
    r_det = float(np.hypot(dx, dy).max())
    rec = reconstruct(dx, dy, None, p.replace(detector_radius_mm=r_det))
    # the same depth by hand: dZ = v / (eta pi g^2 R^2), integrated as R^3 = R0^3 + 3 c V
    g = field_of_view_factor(r_det, 100.0, 1.65)
    c = math.sin(math.radians(angle)) / (1 - math.sin(math.radians(angle)))
    V = np.arange(1, n + 1) * 0.00845 / (0.8 * math.pi * g * g)
    R = np.cbrt(r0 ** 3 + 3 * c * V)
    Z = (R - r0) / c
    np.testing.assert_allclose(radius_from_shank(Z, r0, angle), R)
    x, y, sag = cap_positions(theta, phi, R)
    np.testing.assert_allclose(rec.x_nm, x, atol=1e-4)
    np.testing.assert_allclose(rec.y_nm, y, atol=1e-4)
    np.testing.assert_allclose(rec.z_nm, -(Z + sag), atol=1e-4)
    assert rec.implied_shank_angle_deg == pytest.approx(angle, abs=1e-6)
    assert rec.radius_start_nm == r0 and rec.radius_end_nm == pytest.approx(R[-1])


def test_chunks_threads_and_byte_order_do_not_change_the_result():
    rng = np.random.default_rng(5)
    n = 200_000
    dx = rng.uniform(-30, 30, n).astype(">f4")
    dy = rng.uniform(-30, 30, n).astype(">f4")
    v = np.linspace(4000, 6000, n).astype(">f4")
    labels = rng.integers(-1, 3, n).astype(np.int16)
    vol = np.array([0.01, 0.02, np.nan])
    a = reconstruct(dx, dy, v, params(), labels=labels, window_volume_nm3=vol)
    b = reconstruct(dx.astype(np.float32), dy.astype(np.float32), v.astype(np.float32), params(),
                    labels=labels, window_volume_nm3=vol, chunk_ions=1 << 15)
    np.testing.assert_array_equal(a.z_nm, b.z_nm)
    np.testing.assert_array_equal(a.x_nm, b.x_nm)
    assert a.depth_nm == b.depth_nm


def test_missing_or_zero_voltage_says_what_to_do():
    with pytest.raises(AnalysisError, match="shank"):
        reconstruct(np.zeros(3), np.zeros(3), None, params())
    with pytest.raises(AnalysisError, match="zero for every ion.*shank"):
        reconstruct(np.zeros(3), np.zeros(3), np.zeros(3), params())
    with pytest.raises(AnalysisError, match="not a positive number at ion 1 "):
        reconstruct(np.zeros(3), np.zeros(3), np.array([5000.0, -1.0, 5000.0]), params())
    with pytest.raises(AnalysisError, match="at ion 2 "):
        reconstruct(np.zeros(3), np.zeros(3), np.array([5000.0, 5000.0, np.nan]), params())


def test_a_non_finite_hit_is_named():
    dx = np.zeros(100_000)
    dx[70_001] = np.inf
    with pytest.raises(AnalysisError, match="hit of ion 70001 is not a finite number"):
        reconstruct(dx, np.zeros(100_000), np.full(100_000, 5000.0), params(), chunk_ions=1 << 15)


def test_reconstruct_run_needs_detector_coordinates(real):
    run = liprobe.read(real / "apav_si" / "Si.pos")
    with pytest.raises(ColumnError, match=r"no detector coordinates \(det_x, det_y\).*\.epos"):
        reconstruct_run(run, params())


# ---------------------------------------------------------------------------
# no material assumed: params are required, F_e only for the voltage radius
# ---------------------------------------------------------------------------

def test_params_are_required_no_material_is_assumed():
    with pytest.raises(TypeError, match="needs params.*no material is assumed"):
        reconstruct(np.zeros(3), np.zeros(3), np.full(3, 5000.0))
    with pytest.raises(TypeError, match="reconstruct_run needs params"):
        reconstruct_run(liprobe.Run.from_arrays(det_x=np.zeros(3), det_y=np.zeros(3)), None)
    with pytest.raises(ValueError, match="no atomic volume: name a material"):
        ReconstructionParameters.preset()
    with pytest.raises(ValueError, match="no atomic volume"):
        ReconstructionParameters.preset("LEAP 5000 XS", radius="shank", shank_angle_deg=10,
                                        initial_radius_nm=20)


def test_the_evaporation_field_is_optional_only_for_the_shank_radius():
    with pytest.raises(ValueError, match="radius from the voltage .* needs the evaporation "
                                         "field"):
        params(evaporation_field_V_per_nm=None)
    with pytest.raises(ValueError, match="needs the evaporation field"):
        ReconstructionParameters.preset(atomic_volume_nm3=0.02)
    with pytest.raises(ValueError, match="evaporation_field_V_per_nm must be a positive"):
        params(evaporation_field_V_per_nm=-3.0)
    p = ReconstructionParameters.preset(atomic_volume_nm3=0.02, radius="shank",
                                        shank_angle_deg=10, initial_radius_nm=20)
    assert (p.evaporation_field_V_per_nm, p.material, p.atomic_volume_nm3) == (None, None, 0.02)
    assert p.to_dict()["evaporation_field_V_per_nm"] is None
    # an element without a tabulated field is fine with the shank radius, not the voltage's
    si = ReconstructionParameters.preset("LEAP 5000 XS", "Si", radius="shank",
                                         shank_angle_deg=10, initial_radius_nm=20)
    assert si.evaporation_field_V_per_nm is None and si.material == "Si"
    with pytest.raises(KeyError, match="no evaporation field of Si tabulated"):
        ReconstructionParameters.preset("LEAP 5000 XS", "Si")


def test_the_shank_radius_without_a_field_equals_the_one_with_it():
    """F_e does not enter the shank-angle reconstruction: None gives the same positions
    as any value (and no 1 / (k F_e) is computed)."""
    rng = np.random.default_rng(8)
    n = 50_000
    dx, dy = rng.uniform(-25, 25, n), rng.uniform(-25, 25, n)
    shank = dict(radius="shank", shank_angle_deg=8.0, initial_radius_nm=25.0)
    a = reconstruct(dx, dy, None, params(**shank, evaporation_field_V_per_nm=None))
    b = reconstruct(dx, dy, None, params(**shank))
    for c in ("x_nm", "y_nm", "z_nm"):
        np.testing.assert_array_equal(getattr(a, c), getattr(b, c))
    assert a.to_dict()["parameters"]["evaporation_field_V_per_nm"] is None
    assert a.depth_nm == b.depth_nm and a.radius_end_nm == b.radius_end_nm


# ---------------------------------------------------------------------------
# an independent forward model: cone, angle-dependent compression, planted layer
# ---------------------------------------------------------------------------

def forward_cone(seed=7, beta=0.03, alpha=5.0):
    """A cone-shaped specimen with a layer of B atoms, evaporated and imaged.

    Written apart from liprobe's projection: the ion's detector angle follows
    theta' = theta / xi(theta) with a compression that falls off with angle,
    xi(theta) = XI0 / (1 + beta theta^2); a flat detector of 40 mm radius at 100 mm;
    a cone of half angle alpha whose cap radius grows as R0 + Z sin a / (1 - sin a);
    atoms reached by the receding cap in order (bisection for the apex depth);
    V = k F R with 0.3 % noise. The reconstruction differs from it by the
    compression law (about 1 % of field-of-view area) and by ignoring the cone's
    shrinking of the swept volume (about 1 %): its depths come out ~2 % short.
    """
    R0, L, r_det, kF, omega, eta = 10.0, 100.0, 40.0, 3.3 * 35.0, 0.03, 0.6
    XI0 = 1.65
    c = math.sin(math.radians(alpha)) / (1 - math.sin(math.radians(alpha)))
    depth, w1, w2 = 34.0, 16.0, 20.0
    rng = np.random.default_rng(seed)
    R_end = R0 + c * depth
    r_gen = 0.75 * R_end
    n = rng.poisson(math.pi * r_gen ** 2 * depth / omega)
    d = r_gen * np.sqrt(rng.uniform(0, 1, n))
    phi = rng.uniform(-math.pi, math.pi, n)
    w = rng.uniform(0, depth, n)
    layer = (w >= w1) & (w < w2)

    def reach(Z):  # depth along the axis reached by the cap at apex depth Z, at distance d
        R = R0 + c * Z
        return Z + R - np.sqrt(np.maximum(R * R - d * d, 0.0))

    lo, hi = np.full(n, -R_end), np.full(n, depth)
    for _ in range(45):                      # bisection for the apex depth at evaporation
        mid = 0.5 * (lo + hi)
        below = reach(mid) < w
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    Z = 0.5 * (lo + hi)
    R = R0 + c * Z
    ok = (Z > 0) & (d < R)
    theta = np.arcsin(np.minimum(d / np.where(ok, R, 1.0), 1.0))
    tp = theta * (1 + beta * theta ** 2) / XI0
    r_hit = L * np.tan(tp)
    detected = ok & (r_hit <= r_det) & (rng.uniform(0, 1, n) < eta)
    order = np.argsort(Z[detected])
    sel = np.flatnonzero(detected)[order]
    det_x = r_hit[sel] * np.cos(phi[sel])
    det_y = r_hit[sel] * np.sin(phi[sel])
    v = kF * R[sel] * (1 + 0.003 * rng.standard_normal(len(sel)))
    truth = dict(depth=(w1 + w2) / 2, thickness=w2 - w1, kF=kF, XI0=XI0, omega=omega, eta=eta,
                 L=L, n_layer=int(layer[sel].sum()))
    return det_x, det_y, v, layer[sel], truth


@pytest.fixture(scope="module")
def cone():
    return forward_cone()


def layer_on_axis(rec, layer):
    near = np.hypot(rec.x_nm, rec.y_nm) < 3.0
    depth = -rec.z_nm[layer & near].astype(np.float64)
    lo, mid, hi = np.percentile(depth, [2.5, 50, 97.5])
    return mid, (hi - lo) / 0.95


def test_planted_layer_depth_and_thickness_within_5_percent(cone):
    det_x, det_y, v, layer, t = cone
    p = ReconstructionParameters(flight_path_mm=t["L"], efficiency=t["eta"],
                                 atomic_volume_nm3=t["omega"], evaporation_field_V_per_nm=35.0,
                                 k_factor=3.3, icf=t["XI0"])
    rec = reconstruct(det_x, det_y, v, p)
    depth, thickness = layer_on_axis(rec, layer)
    assert depth == pytest.approx(t["depth"], rel=0.05)
    assert thickness == pytest.approx(t["thickness"], rel=0.05)
    assert rec.radius_end_nm > rec.radius_start_nm
    assert rec.implied_shank_angle_deg == pytest.approx(5.0, abs=1.0)


@pytest.mark.parametrize("name, factor", [("k_factor", 1.15), ("k_factor", 1 / 1.15),
                                          ("icf", 1.15), ("icf", 1 / 1.15)])
def test_wrong_parameters_move_the_layer_the_right_way(cone, name, factor):
    # R = V / (k F): a k F too high makes the radius, hence the imaged area, too small and
    # every depth increment too large (deeper, thicker); an ICF too high widens the field
    # of view, so the area is too large (shallower, thinner)
    det_x, det_y, v, layer, t = cone
    base = ReconstructionParameters(flight_path_mm=t["L"], efficiency=t["eta"],
                                    atomic_volume_nm3=t["omega"],
                                    evaporation_field_V_per_nm=35.0, k_factor=3.3, icf=t["XI0"])
    good = layer_on_axis(reconstruct(det_x, det_y, v, base), layer)
    bad = layer_on_axis(reconstruct(det_x, det_y, v,
                                    base.replace(**{name: getattr(base, name) * factor})), layer)
    deeper = (factor > 1) == (name == "k_factor")
    if deeper:
        assert bad[0] > good[0] + 0.05 * t["depth"] and bad[1] > good[1]
    else:
        assert bad[0] < good[0] - 0.05 * t["depth"] and bad[1] < good[1]


# ---------------------------------------------------------------------------
# the real Si files: fit the projection onto AP Suite's own reconstruction
# ---------------------------------------------------------------------------

def test_compare_to_file_positions_on_real_si(real):
    run = liprobe.read(real / "apav_si" / "Si_first100000.epos")
    res = compare_to_file_positions(run["x"], run["y"], run["z"], run["det_x"], run["det_y"],
                                    flight_path_mm=100.0, n_slabs=5)
    d = res.to_dict()
    # measured: lateral median 0.03 nm, p95 0.08 nm; z median 0.006 nm, p95 0.02 nm
    assert d["residual_nm"]["lateral"]["median"] < 0.05
    assert d["residual_nm"]["lateral"]["p95"] < 0.15
    assert d["residual_nm"]["z"]["median"] < 0.02
    assert not res.z_flipped
    # AP Suite used one ICF for the whole run; the radius grows as the tip blunts
    assert np.std(res.icf) / np.mean(res.icf) < 0.01
    assert np.all(np.diff(res.radius_nm) > 0)
    assert np.all(np.diff(res.z_mean_nm) < 0)
    # the hits need the (reflectron-like) distortion map: without it the fit is far worse
    raw = compare_to_file_positions(run["x"], run["y"], run["z"], run["det_x"], run["det_y"],
                                    flight_path_mm=100.0, n_slabs=5, detector_correction="center")
    assert raw.lateral_residual_nm["median"] > 5 * d["residual_nm"]["lateral"]["median"]


def test_compare_recovers_a_known_projection():
    # hits made by liprobe's own projection with a known radius history and ICF
    rng = np.random.default_rng(8)
    n = 40_000
    theta = np.arcsin(np.sqrt(rng.uniform(0, 1, n)) * 0.5)
    phi = rng.uniform(-math.pi, math.pi, n)
    dx, dy = project_angles_to_detector(theta, phi, flight_path_mm=100.0, icf=1.5)
    R = np.linspace(20.0, 30.0, n)
    x, y, sag = cap_positions(theta, phi, R)
    z = -(np.linspace(0, 25, n) + sag)
    res = compare_to_file_positions(x, y, z, dx, dy, flight_path_mm=100.0, n_slabs=4,
                                    detector_correction="none")
    np.testing.assert_allclose(res.icf, 1.5, rtol=1e-6)
    mid = np.array([R[0], R[9999], R[10000], R[19999], R[20000], R[29999], R[30000], R[-1]])
    np.testing.assert_allclose(res.radius_nm, 0.5 * (mid[0::2] + mid[1::2]), rtol=1e-6)
    assert res.lateral_residual_nm["p95"] <= 1e-6 and res.z_residual_nm["p95"] <= 1e-6
    # the distortion map, fitted where there is none, stays close to the identity
    q = compare_to_file_positions(x, y, z, dx, dy, flight_path_mm=100.0, n_slabs=4)
    np.testing.assert_allclose(q.icf, 1.5, rtol=0.01)
    assert q.lateral_residual_nm["p95"] < 0.01


# ---------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------

def test_history_finds_a_laser_energy_step():
    rng = np.random.default_rng(9)
    n, step = 200_000, 123_457
    v = np.linspace(4000, 6000, n) * (1 + 0.002 * rng.standard_normal(n))
    v[step:] *= 0.85
    mass = rng.uniform(1, 60, n).astype(np.float32)
    run = liprobe.Run.from_arrays(mass=mass, v_dc=v.astype(np.float32),
                                  multiplicity=np.ones(n, np.int32))
    h = run_history(run)
    assert len(h.jumps) == 1
    j = h.jumps[0]
    assert abs(j.ion_index - step) < 50
    assert j.relative_change == pytest.approx(-0.15, abs=0.02)
    assert h.abrupt_end is False
    # a smooth rise with noise has none
    curve, edges = binned_voltage(np.linspace(4000, 6000, n) * (1 + 0.002 * rng.standard_normal(n)))
    assert voltage_jumps(curve, edges) == ()


def test_history_flags_a_burst_of_multiple_hits_at_the_end():
    n = 100_000
    mult = np.ones(n, np.int32)
    mult[-1500::3] = 3      # the last 1500 ions arrive three per pulse
    mult[-1499::3] = 0
    mult[-1498::3] = 0
    run = liprobe.Run.from_arrays(mass=np.full(n, 10.0, np.float32), multiplicity=mult,
                                  pulse_delta=np.where(mult == 0, 0, 100).astype(np.int32))
    h = run_history(run)
    assert h.abrupt_end is True
    assert h.end["multi_hit_fraction_end"] > 0.9
    assert h.end["ions_per_pulse_ratio"] > 2.5
    assert h.voltage_V is None and "no voltage" in h.voltage_reason


def test_history_on_real_si(real):
    h = run_history(liprobe.read(real / "apav_si" / "Si_first100000.epos"))
    # PROVENANCE.md: ipp histogram {0: 2088, 1: 95966, 2: 1821, 3: 112, 4: 11, 5: 1, 7: 1}
    assert h.multiplicity_counts == {0: 2088, 1: 95966, 2: 1821, 3: 112, 4: 11, 5: 1, 7: 1}
    assert h.multi_hit_fraction == pytest.approx((100_000 - 95_966) / 100_000)
    assert h.multi_hit_event_fraction == pytest.approx(1946 / 97912)
    assert h.voltage_V is None and "zero for every ion" in h.voltage_reason
    assert h.mass_counts.sum() <= 100_000 and h.mass_counts.sum() > 99_000
    d = h.to_dict()
    assert d["voltage"] is None and d["voltage_jumps"] is None
    assert d["end"]["ions_per_pulse_ratio"] is None   # pulse_delta not recorded
