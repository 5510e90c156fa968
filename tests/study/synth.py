"""Small synthetic .epos + .rrng runs with planted properties, for the study tests.

Not a simulator: each property the flags look at is planted directly.

- composition: atoms of the phase (NMC811 or LiMn2O4) split into ions
  (Li+, O+, O2+, Ni++, Ni+, NiO+, Co+, Co++, CoO+, Mn+, Mn++), with O2+/O+ = ``o2_ratio``;
- coating: a 3 nm shell of Cr+, Cr++, CrO+ around a 19 nm oxide core;
- ``delithiated``: Li+ bunched in evaporation order (FDA mu far above random)
  and 40 % of the hits in a blob on the detector (heterogeneity);
- ``fracture``: the last 3 % of ions arrive in bursts of multiple hits with no
  pulses between them;
- 2 % flat background over 1-100 Da; one isotope per ion, 0.02 Da wide peaks.
"""

from __future__ import annotations

import numpy as np

import liprobe
from liprobe import Range, RangeTable, Run, parse_ion

MASSES = {
    "Li+": 7.016, "O+": 15.995, "O2+": 31.990, "Ni++": 28.968, "Ni+": 57.935,
    "NiO+": 73.930, "Co+": 58.933, "Co++": 29.466, "CoO+": 74.928, "Mn+": 54.938,
    "Mn++": 27.469, "Cr+": 51.941, "Cr++": 25.970, "CrO+": 67.936,
}
HALF_WINDOW = 0.15
CORE_NM, SHELL_NM = 19.0, 3.0
PHASES = {"NMC811": {"Li": 1.0, "Ni": 0.8, "Co": 0.1, "Mn": 0.1, "O": 2.0},
          "LiMn2O4": {"Li": 1.0, "Mn": 2.0, "O": 4.0}}


def range_table() -> RangeTable:
    return RangeTable.from_ranges([Range(m - HALF_WINDOW, m + HALF_WINDOW, parse_ion(name))
                                   for name, m in MASSES.items()])


def oxide_ion_weights(phase: str, o2_ratio: float, li_factor: float = 1.0) -> dict:
    """Ions per formula unit of the phase (before sampling)."""
    a = dict(PHASES[phase])
    a["Li"] *= li_factor
    w = {"Li+": a["Li"]}
    ni, co, mn = a.get("Ni", 0.0), a.get("Co", 0.0), a.get("Mn", 0.0)
    w.update({"Ni++": 0.50 * ni, "Ni+": 0.35 * ni, "NiO+": 0.15 * ni,
              "Co+": 0.70 * co, "Co++": 0.20 * co, "CoO+": 0.10 * co,
              "Mn+": 0.60 * mn, "Mn++": 0.40 * mn})
    o_left = a["O"] - w["NiO+"] - w["CoO+"]
    n_o = o_left / (1.0 + 2.0 * o2_ratio)
    w.update({"O+": n_o, "O2+": o2_ratio * n_o})
    return {k: v for k, v in w.items() if v > 0}


def make_run(n: int = 60_000, phase: str = "NMC811", coated: bool = True,
             delithiated: bool = False, fracture: bool = False, o2_ratio: float = 2.6,
             li_factor: float = 1.0, seed: int = 0) -> Run:
    rng = np.random.default_rng(seed)
    # geometry: a cylinder, z decreasing with evaporation order
    r_out = CORE_NM + (SHELL_NM if coated else 0.0)
    r = r_out * np.sqrt(rng.random(n))
    phi = rng.uniform(0, 2 * np.pi, n)
    x, y = r * np.cos(phi), r * np.sin(phi)
    z = -np.linspace(0.0, 80.0, n) + rng.normal(0, 0.2, n)
    # species
    w = oxide_ion_weights(phase, o2_ratio, li_factor)
    names = list(w)
    p = np.array([w[k] for k in names])
    p /= p.sum()
    ion = rng.choice(len(names), n, p=p)
    if delithiated:
        # Li+ bunched in time: Li-rich and Li-poor stretches of 400 ions
        li = names.index("Li+")
        rich = (np.arange(n) // 400) % 2 == 0
        p_li = p[li]
        want_li = np.where(rich, min(0.95, 1.8 * p_li), 0.2 * p_li)
        is_li = rng.random(n) < want_li
        other = rng.choice([k for k in range(len(names)) if k != li], n,
                           p=np.delete(p, li) / np.delete(p, li).sum())
        ion = np.where(is_li, li, other)
    mass = np.array([MASSES[k] for k in names])[ion]
    if coated:
        shell = r > CORE_NM
        cr_names = ["Cr+", "Cr++", "CrO+"]
        cr = rng.choice(3, n, p=[0.5, 0.2, 0.3])
        mass = np.where(shell, np.array([MASSES[k] for k in cr_names])[cr], mass)
    mass = mass + rng.normal(0, 0.02, n)
    bg = rng.random(n) < 0.02
    mass = np.where(bg, rng.uniform(1.0, 100.0, n), mass)
    # detector
    det_x = 1.5 * x + rng.normal(0, 0.3, n)
    det_y = 1.5 * y + rng.normal(0, 0.3, n)
    if delithiated:
        blob = rng.random(n) < 0.4
        det_x = np.where(blob, rng.normal(10.0, 4.0, n), det_x)
        det_y = np.where(blob, rng.normal(5.0, 4.0, n), det_y)
    # acquisition
    v_dc = np.linspace(3000.0, 6000.0, n) + rng.normal(0, 5.0, n)
    pulse_delta = rng.geometric(1 / 200.0, n)
    multiplicity = np.ones(n, np.int64)
    doubles = np.flatnonzero(rng.random(n - 1) < 0.025)
    doubles = doubles[np.diff(np.r_[-2, doubles]) > 1]       # no overlapping pairs
    multiplicity[doubles] = 2
    multiplicity[doubles + 1] = 0
    pulse_delta[doubles + 1] = 0
    if fracture:
        m_end = int(0.03 * n)
        start = n - m_end
        for i in range(start, n - 4, 4):     # bursts of 4 ions on one pulse
            multiplicity[i:i + 4] = [4, 0, 0, 0]
            pulse_delta[i] = 1
            pulse_delta[i + 1:i + 4] = 0
    tof = 400.0 * np.sqrt(np.maximum(mass, 0.5) / 30.0)
    f32 = np.float32
    return Run.from_arrays(
        x=x.astype(f32), y=y.astype(f32), z=z.astype(f32), mass=mass.astype(f32),
        tof=tof.astype(f32), v_dc=v_dc.astype(f32), v_pulse=(0 * v_dc).astype(f32),
        det_x=det_x.astype(f32), det_y=det_y.astype(f32),
        pulse_delta=pulse_delta.astype(np.int32), multiplicity=multiplicity.astype(np.int32))


def write_run(folder, name, **kw) -> tuple[str, str]:
    """Write ``folder/name.epos`` and ``folder/name.rrng``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    epos, rrng = folder / f"{name}.epos", folder / f"{name}.rrng"
    liprobe.write(epos, make_run(**kw))
    liprobe.write_ranges(rrng, range_table())
    return str(epos), str(rrng)
