"""Mass spectra made here, independently of liprobe's simulator and chemistry code.

Each ion event draws the isotope of every atom from periodictable's natural
abundances and sums the atoms' masses; the peak shape is a Gaussian core of
a given resolving power plus an exponential thermal tail; a calibration
offset (0.05 Da below 16 Da, falling linearly to 0 at 60 Da, as the real
Si run shows) and a background flat in time of flight (density ~ 1/sqrt(m))
can be added. The truth is the ions drawn, by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

ELECTRON_DA = 0.000548579909

#: name -> fraction of the ions (before background), per spectrum kind
KINDS = {
    "nmc811": {
        "Li+": 0.20, "O+": 0.11, "O2+": 0.185, "Ni+": 0.055, "Ni++": 0.13, "Co+": 0.012,
        "Co++": 0.016, "Mn+": 0.011, "Mn++": 0.013, "NiO+": 0.045, "NiO++": 0.012,
        "CoO+": 0.006, "MnO+": 0.006, "LiO+": 0.012, "Li2O+": 0.004, "Cr+": 0.03,
        "Cr++": 0.03, "CrO+": 0.015, "H+": 0.01, "O++": 0.003,
    },
    "limn2o4": {
        "Li+": 0.11, "O+": 0.16, "O2+": 0.17, "Mn+": 0.11, "Mn++": 0.17, "MnO+": 0.09,
        "MnO++": 0.02, "LiO+": 0.02, "Mn2O2++": 0.01, "MnO2+": 0.02, "H+": 0.008,
    },
    "steel": {
        "Fe++": 0.55, "Fe+": 0.05, "Cr++": 0.13, "Cr+": 0.015, "Ni++": 0.08, "Ni+": 0.01,
        "Mo+++": 0.008, "Mo++": 0.008, "C+": 0.004, "C++": 0.005, "FeH++": 0.004,
        "Mn++": 0.012, "Si++": 0.01,
    },
    "al_alloy": {
        "Al+": 0.70, "Al++": 0.10, "AlH+": 0.02, "AlH2+": 0.004, "Mg+": 0.02, "Mg++": 0.03,
        "Cu+": 0.01, "Cu++": 0.012, "Si+": 0.006, "Si++": 0.006, "H+": 0.01, "H2+": 0.006,
        "Zn+": 0.008, "Zn++": 0.008,
    },
}

#: the elements an analyst would name for each kind
ELEMENTS = {"nmc811": ("Li", "O", "Ni", "Co", "Mn", "Cr"), "limn2o4": ("Li", "O", "Mn"),
            "steel": ("Fe", "Cr", "Ni", "Mo", "C", "Mn", "Si"),
            "al_alloy": ("Al", "Mg", "Cu", "Si", "Zn")}


def parse_name(name: str):
    """``"Mn2O2++"`` -> ({"Mn": 2, "O": 2}, 2)."""
    charge = len(name) - len(name.rstrip("+"))
    atoms: dict = {}
    for el, n in re.findall(r"([A-Z][a-z]?)(\d*)", name.rstrip("+")):
        atoms[el] = atoms.get(el, 0) + (int(n) if n else 1)
    return atoms, charge


#: Li: the IUPAC representative composition (7.59 % 6Li), which APT of cathodes sees;
#: periodictable gives the middle of the CIAAW interval (4.85 %) instead.
LI = (np.array([6.0151228874, 7.0160034366]), np.array([0.0759, 0.9241]))


def _isotopes(el):
    import periodictable

    if el == "Li":
        return LI
    e = getattr(periodictable, el)
    iso = [(i.mass, i.abundance / 100.0) for i in e if i.abundance > 0]
    m = np.array([a for a, _ in iso])
    p = np.array([b for _, b in iso])
    return m, p / p.sum()


def calibration_offset(m):
    """Da added to the true mass: 0.05 below 16 Da, linearly down to 0 at 60 Da."""
    return 0.05 * np.clip((60.0 - m) / 44.0, 0.0, 1.0)


@dataclass
class Spectrum:
    mass: np.ndarray          # Da, shuffled (evaporation order has no meaning here)
    counts: dict              # ion name -> ions drawn
    background: int
    kind: str

    def atoms(self) -> dict:
        out: dict = {}
        for name, n in self.counts.items():
            for el, k in parse_name(name)[0].items():
                out[el] = out.get(el, 0) + k * n
        return out

    def ratio(self, num, den) -> float:
        a = self.atoms()
        return sum(a.get(e, 0) for e in num) / sum(a.get(e, 0) for e in den)


def make_spectrum(kind: str, n_ions: int = 200_000, offset: bool = False,
                  background: float = 0.0, mrp: float = 1100.0, tail_fraction: float = 0.15,
                  tail_da: float = 0.03, seed: int = 1) -> Spectrum:
    """A spectrum of ``kind`` (see :data:`KINDS`), ``background`` a fraction of all ions."""
    rng = np.random.default_rng(seed)
    fr = KINDS[kind]
    names = list(fr)
    p = np.array([fr[k] for k in names])
    n_signal = int(round(n_ions * (1 - background)))
    counts = rng.multinomial(n_signal, p / p.sum())
    parts = []
    for name, n in zip(names, counts):
        if n == 0:
            continue
        atoms, q = parse_name(name)
        total = np.zeros(n)
        for el, k in atoms.items():
            m, pr = _isotopes(el)
            for _ in range(k):
                total += rng.choice(m, size=n, p=pr)
        mq = (total - q * ELECTRON_DA) / q
        sigma = mq / (mrp * 2.3548)
        obs = mq + rng.normal(0.0, 1.0, n) * sigma
        tail = rng.random(n) < tail_fraction
        obs[tail] += rng.exponential(tail_da, int(tail.sum()))
        if offset:
            obs += calibration_offset(mq)
        parts.append(obs)
    nb = n_ions - n_signal
    if nb:
        parts.append(rng.uniform(1.0, np.sqrt(150.0), nb) ** 2)
    mass = np.concatenate(parts)
    rng.shuffle(mass)
    return Spectrum(mass, {k: int(n) for k, n in zip(names, counts)}, nb, kind)
