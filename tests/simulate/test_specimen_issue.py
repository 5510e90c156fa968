"""Specimens as real ones: poles and zone lines on the detector, Li gathered on poles (not a
lattice), a grain of another phase with local magnification at its interface, its truth,
the shell's thickness in the truth, and the simulator's functions kept small."""

import ast
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from liprobe.simulate import SimulationConfig, simulate
from liprobe.simulate.config import PhaseSpec
from liprobe.simulate.evaporation import (
    DEFAULT_EVAPORATION as M,
    field_map,
    phase_field_ratio,
    pole_positions,
)
from liprobe.simulate.materials import resolve_material

SIMULATE = Path(__file__).parents[2] / "src" / "liprobe" / "simulate"


def _displaced_density(fm, u, v):
    """Density of uniform points on the cap after the map's displacement, in 64 x 64 bins,
    over the mean density (1 on average inside the cap)."""
    n = fm.grid.shape[0]
    iu = np.clip(((u + 1) / 2 * n).astype(int), 0, n - 1)
    iv = np.clip(((v + 1) / 2 * n).astype(int), 0, n - 1)
    h, _, _ = np.histogram2d(v + fm.shift_v[iv, iu], u + fm.shift_u[iv, iu], bins=64,
                             range=[[-1, 1], [-1, 1]])
    return h / (len(u) / (math.pi * 32 * 32))


def test_local_magnification_depletes_the_poles_and_zone_lines_and_nothing_else():
    rng = np.random.default_rng(0)
    r = np.sqrt(rng.random(4_000_000))
    a = 2 * math.pi * rng.random(4_000_000)
    u, v = r * np.cos(a), r * np.sin(a)
    fm = field_map(M, 0.7, 0.0)
    d = _displaced_density(fm, u, v)
    # the central pole: about 40 % fewer hits (the declared choice of pole_deflection)
    assert d[31:33, 31:33].mean() == pytest.approx(0.6, abs=0.1)
    # a zone line (the u axis at u = 0.3) depleted, the area between lines near 1
    assert d[31:33, 41].mean() < 0.93
    assert d[38, 44] == pytest.approx(1.0, abs=0.08)
    # no deflection at all with pole_deflection 0: uniform within counting noise
    flat = _displaced_density(field_map(replace(M, pole_deflection=0.0), 0.7), u, v)
    inner = np.hypot(*np.meshgrid(np.arange(64) - 31.5, np.arange(64) - 31.5)) < 28
    assert np.abs(flat[inner] - 1).max() < 0.2 and abs(flat[inner].mean() - 1) < 0.01
    # the poles turn with the map
    p0, p1 = pole_positions(0.0), pole_positions(math.pi / 2)
    assert np.allclose(p1[1], [0.0, 0.55], atol=1e-12) and np.allclose(p0[1], [0.55, 0.0])


def test_a_grain_evaporates_at_its_cations_field_and_focuses_trajectories_at_its_interface():
    nmc, lmo = resolve_material("NMC811"), resolve_material("LiMn2O4")
    # Tsong's Mn 30 V/nm over NMC811's cations (0.8 Ni 35 + 0.1 Co 37 + 0.1 Mn 30)
    assert phase_field_ratio(M, lmo, "phase", nmc) == pytest.approx(30 / 34.7, rel=1e-9)
    assert phase_field_ratio(M, lmo, "material", lmo) == 1.0
    # (the central pole's own local magnification switched off: it pushes launch points
    # away from the axis, where this grain sits)
    cfg = SimulationConfig("NMC811", coating="Cr", ions=800_000, seed=4, fracture=None,
                           mobility=None, evaporation=replace(M, pole_deflection=0.0),
                           phases=(PhaseSpec.parse("LiMn2O4=sphere:8@0,0,-4.3"),))
    sim = simulate(cfg)
    g = sim.truth["grain"]
    amp = g["interface_shift_nm"]
    w = M.interface_deflection_width_nm
    assert amp == pytest.approx(M.interface_deflection * (30 / 34.7 - 1) * w, rel=1e-9)
    assert g["volume_nm3_total"] == pytest.approx(4 / 3 * math.pi * 64, rel=1e-12)
    tx, ty, tz = sim.true_x, sim.true_y, sim.true_z
    r3 = np.sqrt(tx ** 2 + ty ** 2 + (tz + 4.3) ** 2)
    dist = r3 - 4
    rho_true = np.hypot(tx, ty)
    # launch points within 0.4 nm of the surface, where the surface is near vertical (its
    # normal's lateral part above 0.9), move toward the low-field grain's axis by about
    # the declared amplitude; far from it, by nothing but the blur's small bias
    near = (np.abs(dist) < 0.4) & (rho_true > 0.9 * r3)
    far = (np.abs(dist) > 5) & (rho_true > 2) & (rho_true < 20)
    shift = np.hypot(sim.run["x"], sim.run["y"]) - rho_true
    assert near.sum() > 300
    assert np.median(shift[near]) == pytest.approx(0.97 * amp, abs=0.05)
    # at the grain's top the normal is vertical: no lateral shift, no kink at the axis (the
    # lateral displacement there is what it is without the interface's deflection, the
    # same run with interface_deflection 0; a shift of |A| = 0.41 nm across the axis
    # would add about that much)
    top = (np.abs(dist) < 0.4) & (rho_true < 0.2 * r3)
    moved = np.hypot(sim.run["x"] - tx, sim.run["y"] - ty)
    plain = simulate(cfg.replace(evaporation=replace(M, pole_deflection=0.0,
                                                     interface_deflection=0.0)))
    assert np.array_equal(plain.true_x, tx)
    moved0 = np.hypot(plain.run["x"] - tx, plain.run["y"] - ty)
    assert top.sum() > 30
    assert np.median(moved[top]) == pytest.approx(np.median(moved0[top]), abs=0.05)
    assert abs(np.median(shift[far])) < 0.1


def _analysed_part_from_true_positions(sim, centre, rad, b=0.5):
    """The part of a sphere the run evaporated, from the true positions alone: a point of
    the sphere was analysed when it lies between the shallowest and the deepest true
    position of its b x b nm column (independent of the truth's Monte Carlo)."""
    x, y, z = (np.asarray(a, np.float64) for a in (sim.true_x, sim.true_y, sim.true_z))
    m = int(2 * (rad + b) / b) + 1

    def column(px, py):
        return (np.floor((px - centre[0] + rad + b) / b).astype(np.int64) * m
                + np.floor((py - centre[1] + rad + b) / b).astype(np.int64))

    near = (np.abs(x - centre[0]) < rad + b) & (np.abs(y - centre[1]) < rad + b)
    lo, hi = np.full(m * m, np.inf), np.full(m * m, -np.inf)
    np.minimum.at(lo, column(x[near], y[near]), z[near])
    np.maximum.at(hi, column(x[near], y[near]), z[near])
    p = np.random.default_rng(1).uniform(-rad, rad, (400_000, 3))
    p = p[(p ** 2).sum(axis=1) < rad ** 2] + centre
    k = column(p[:, 0], p[:, 1])
    return 4 / 3 * math.pi * rad ** 3 * float(((p[:, 2] >= lo[k]) & (p[:, 2] <= hi[k])).mean())


@pytest.mark.parametrize("centre", [(0.0, 0.0, -4.0), (12.0, 0.0, -3.0)])
def test_the_truth_holds_the_part_of_the_grain_inside_the_analysed_volume(centre):
    base = dict(coating="Cr", seed=2, fracture=None, mobility=None)
    spec = f"LiMn2O4=sphere:8@{centre[0]:g},{centre[1]:g},{centre[2]:g}"
    sim = simulate(SimulationConfig("NMC811", ions=300_000, **base,
                                    phases=(PhaseSpec.parse(spec),)))
    g = sim.truth["grain"]
    assert sim.truth["grains"] == [g]
    # 300,000 ions evaporate ~2 nm below the start of the record: the sphere is crossed,
    # only its part between the starting cap and the final one was analysed (off the
    # axis, the starting cap lies below z = 0: the lens above it went before the record)
    assert 1 < sim.truth["depth_profile"]["depth_nm"][-1] < 4
    assert 0 < g["volume_nm3"] < g["volume_nm3_total"]
    expected = _analysed_part_from_true_positions(sim, np.array(centre), 4.0)
    assert g["volume_nm3"] == pytest.approx(expected, rel=0.08)
    # a grain beyond the run's depth: nothing of it analysed
    deep = simulate(SimulationConfig("NMC811", ions=50_000, **base,
                                     phases=(PhaseSpec.parse("LiMn2O4=sphere:6@0,0,-30"),)))
    assert deep.truth["grain"]["volume_nm3"] == 0 and deep.truth["grain"]["depth_max_nm"] is None


def test_the_truth_holds_the_shells_normal_and_lateral_thickness():
    sim = simulate(SimulationConfig("NMC811", coating="Cr", ions=20_000, seed=1,
                                    coating_thickness_nm=4.0))
    c = sim.truth["coating"]
    assert c["thickness_nm"] == 4.0 and c["element"] == "Cr"
    assert c["lateral_thickness_nm"] == pytest.approx(4.0 / math.cos(math.radians(10)))
    assert simulate(SimulationConfig("NMC811", ions=5_000, seed=1)).truth["coating"] is None


#: Parameter tables, exempt from the count: each field is a declared constant with its unit,
#: source and status (``liprobe simulate --list-parameters``), built from defaults or
#: ``with_overrides``, never called with its fields one by one.
PARAMETER_TABLES = {"EvaporationModel"}


def test_the_simulators_functions_take_at_most_20_parameters():
    import dataclasses
    import importlib

    counted = 0
    for path in sorted(SIMULATE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                n = (len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + bool(a.vararg)
                     + bool(a.kwarg))
                assert n <= 20, f"{path.name}:{node.lineno} {node.name} takes {n}"
                counted += 1
    assert counted > 100
    # and the constructors of its dataclasses and named tuples (a class's fields are its
    # constructor's parameters)
    classes = 0
    for mod in sorted(p.stem for p in SIMULATE.glob("*.py") if p.stem != "__init__"):
        m = importlib.import_module(f"liprobe.simulate.{mod}")
        for name, obj in vars(m).items():
            if not isinstance(obj, type) or obj.__module__ != m.__name__:
                continue
            if dataclasses.is_dataclass(obj):
                n = len(dataclasses.fields(obj))
            elif issubclass(obj, tuple) and hasattr(obj, "_fields"):
                n = len(obj._fields)
            else:
                continue
            classes += 1
            if name not in PARAMETER_TABLES:
                assert n <= 20, f"{mod}.{name} has {n} fields"
    assert classes > 20
