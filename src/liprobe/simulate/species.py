"""From a phase's atoms to the ions (and neutrals) that carry them away.

:func:`emission` turns a :class:`~liprobe.simulate.materials.Phase` and a
:class:`~liprobe.simulate.parameters.SpeciesModel` into the probability of
each evaporation event being each species, so that the atoms carried by
all events are exactly the phase's composition (the neutral O2 included).
:func:`coating_phase` builds the coating's phase from the coating element's
shares (its O content is what its oxide ions carry).

:class:`Catalogue` holds the species of all phases of a run in one order,
their isotope peaks (:meth:`liprobe.chemistry.Ion.peaks`: periodictable
masses and abundances, liprobe's Li override, electron masses removed), and
the alias tables the sampling kernels draw from in constant time (species
per phase, isotopes per species).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..chemistry import Ion, parse_ion
from .materials import Phase, format_amounts, resolve_material
from .parameters import SpeciesModel

__all__ = ["NEUTRAL_O2", "NEUTRAL_O", "Species", "Emission", "emission", "coating_phase",
           "Catalogue", "neutral_name", "with_hydrogen"]


#: Name of the undetected neutral O2 molecule.
NEUTRAL_O2 = "O2 (neutral)"
#: Name of an undetected O atom split off a molecular ion in flight.
NEUTRAL_O = "O (neutral)"
_NEUTRAL_SUFFIX = " (neutral)"


def neutral_name(formula: str) -> str:
    """``"MnO"`` -> ``"MnO (neutral)"``: the name of an undetected neutral."""
    return formula + _NEUTRAL_SUFFIX


@dataclass(frozen=True)
class Species:
    """An ion species, or the neutral O2 (``charge`` 0, never detected)."""

    name: str
    atoms: tuple[tuple[str, int], ...]
    charge: int

    @property
    def ion(self) -> Ion | None:
        return Ion(self.atoms, self.charge) if self.charge > 0 else None

    @property
    def n_atoms(self) -> int:
        return sum(n for _, n in self.atoms)

    def count(self, element: str) -> int:
        return dict(self.atoms).get(element, 0)

    @classmethod
    def from_name(cls, name: str) -> Species:
        if name.endswith(_NEUTRAL_SUFFIX):
            ion = parse_ion(name[:-len(_NEUTRAL_SUFFIX)] + "+")
            return cls(name, ion.atoms, 0)
        ion = parse_ion(name)
        return cls(ion.name, ion.atoms, ion.charge)


@dataclass(frozen=True)
class Emission:
    """What the events of one phase are.

    ``per_formula_unit[name]`` is the number of events of each species per
    formula unit of the phase; ``probabilities`` the same normalised;
    ``atoms_per_event`` the mean number of atoms an event carries (so the
    events' number density is ``1 / (Omega * atoms_per_event)``).
    """

    phase: Phase
    per_formula_unit: dict
    notes: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.per_formula_unit)

    @property
    def probabilities(self) -> dict:
        total = sum(self.per_formula_unit.values())
        return {k: v / total for k, v in self.per_formula_unit.items()}

    @property
    def atoms_per_event(self) -> float:
        atoms = sum(n for _, n in self.phase.amounts)
        return atoms / sum(self.per_formula_unit.values())

    @property
    def event_density_per_nm3(self) -> float:
        return 1.0 / (self.phase.atomic_volume_nm3 * self.atoms_per_event)

    def to_dict(self) -> dict:
        return {"events_per_formula_unit": dict(self.per_formula_unit),
                "probabilities": self.probabilities,
                "atoms_per_event": self.atoms_per_event, "notes": list(self.notes)}


def _metal_ions(model: SpeciesModel, element: str, has_oxygen: bool):
    """[(Ion, share)] of ``element``, oxide ions dropped (and shares renormalised) without O."""
    out = []
    for name, f in model.partition(element):
        ion = parse_ion(name)
        others = set(ion.elements) - {element, "O"}
        if others or ion.count(element) == 0:
            raise ValueError(f"species model: {name} is not an ion of {element} and O")
        if f > 0:
            out.append((ion, f))
    if not has_oxygen:
        out = [(ion, f) for ion, f in out if ion.count("O") == 0]
        if not out:
            out = [(Ion(((element, 1),), 1), 1.0)]
        total = sum(f for _, f in out)
        out = [(ion, f / total) for ion, f in out]
    return out


def emission(phase: Phase, model: SpeciesModel, neutral_o_fraction: float | None = None,
             free_oxygen: bool = True) -> Emission:
    """Events per formula unit of ``phase`` for each species.

    Parameters
    ----------
    phase : Phase
    model : SpeciesModel
    neutral_o_fraction : float, optional
        Override of ``model.neutral_o_fraction``.
    free_oxygen : bool
        Whether O not carried by metal ions leaves as O+ / O2+ / neutral O2
        (False for the coating, whose O is only what its oxide ions carry).
    """
    amounts = dict(phase.amounts)
    a_o = amounts.get("O", 0.0)
    f_n = model.neutral_o_fraction if neutral_o_fraction is None else neutral_o_fraction
    if not free_oxygen:
        f_n = 0.0
    notes = []
    parts = {el: _metal_ions(model, el, a_o > 0) for el in amounts if el != "O"}
    # neutral monoxides (undetected): a share of a metal's atoms, with one O each
    neutral_metal: dict[str, float] = {}
    for el, f in model.neutral_losses:
        if f > 0 and el in parts:
            lost = amounts[el] * f
            neutral_metal[neutral_name(f"{el}O" if a_o > 0 else el)] = lost
            amounts[el] -= lost
    o_in_neutral_metal = sum(n * Species.from_name(k).count("O")
                             for k, n in neutral_metal.items())
    # O atoms split off molecular ions in flight (neutral O, undetected)
    o_dissociated = sum(dict(phase.amounts).get(el, 0.0) * v
                        for el, v in model.dissociated_o if a_o > 0)

    def tally(scale: float):
        ions: dict[Ion, float] = {}
        for el, part in parts.items():
            oxide = sum(f for ion, f in part if ion.count("O"))
            atomic = 1.0 - oxide
            if atomic <= 0 and scale < 1:      # all-oxide shares: the rest leaves as M+
                part = list(part) + [(Ion(((el, 1),), 1), 0.0)]
            for ion, f in part:
                if ion.count("O"):
                    share = f * scale
                elif atomic > 0:
                    share = f * (1.0 + oxide * (1.0 - scale) / atomic)
                else:
                    share = oxide * (1.0 - scale)
                ions[ion] = ions.get(ion, 0.0) + amounts[el] * share / ion.count(el)
        carried = sum(n * ion.count("O") for ion, n in ions.items())
        return ions, carried

    ions, carried = tally(1.0)
    sinks = a_o * f_n + o_dissociated
    room = max(a_o - o_in_neutral_metal, 0.0)
    if free_oxygen and sinks > room > 0:       # the neutral O cannot exceed the phase's O
        k = room / sinks
        f_n *= k
        o_dissociated *= k
        notes.append(f"neutral O2 and split-off O would carry more O than {phase.name} has: "
                     f"scaled by {k:.4f}")
    available = max(a_o * (1.0 - f_n) - o_in_neutral_metal - o_dissociated, 0.0)
    if free_oxygen and carried > available * (1 + 1e-12):
        scale = available / carried
        ions, carried = tally(scale)
        notes.append(f"metal oxide ions would carry more O than {phase.name} has: their "
                     f"shares were scaled by {scale:.4f}")
    out: dict[str, float] = {}
    for ion, n in ions.items():
        if n > 0:
            out[ion.name] = out.get(ion.name, 0.0) + n
    if free_oxygen and a_o > 0:
        free = max(available - carried, 0.0)
        r = model.o2_to_o_ratio
        n_o = free / (1.0 + 2.0 * r)
        if n_o > 0:
            out["O+"] = n_o
            if r > 0:
                out["O2+"] = r * n_o
        if f_n > 0:
            out[NEUTRAL_O2] = a_o * f_n / 2.0
    out.update({k: v for k, v in neutral_metal.items() if v > 0})
    if o_dissociated > 0:
        out[NEUTRAL_O] = o_dissociated
    return Emission(phase, out, tuple(notes))


def with_hydrogen(em: Emission, model) -> Emission:
    """``em`` with the H events of a :class:`~liprobe.simulate.parameters.HydrogenModel`.

    ``H+`` and ``H2+`` are added as shares ``h_fraction`` and ``h2_fraction`` of
    all events; with ``hydrides``, ``hydride_fraction`` of ``Cr+`` becomes
    ``CrH+`` and of ``NiO+`` becomes ``NiOH+``. None: ``em`` unchanged.
    """
    if model is None:
        return em
    out = dict(em.per_formula_unit)
    if model.hydrides and model.hydride_fraction > 0:
        for src, dst in (("Cr+", "CrH+"), ("NiO+", "NiOH+")):
            if out.get(src, 0.0) > 0:
                moved = out[src] * model.hydride_fraction
                out[src] -= moved
                out[dst] = out.get(dst, 0.0) + moved
    total = sum(out.values())
    h = model.h_fraction + model.h2_fraction
    if h > 0 and total > 0:
        scale = total / (1.0 - h)
        if model.h_fraction > 0:
            out["H+"] = model.h_fraction * scale
        if model.h2_fraction > 0:
            out["H2+"] = model.h2_fraction * scale
    return Emission(em.phase, out, em.notes)


def coating_phase(element: str, model: SpeciesModel) -> Phase:
    """The coating as a phase: the metal with the O its oxide ions carry.

    Atomic volume and field are the metal's (:data:`liprobe.instruments.MATERIALS`);
    the O of the oxidised surface is given the metal's atomic volume
    (an approximation: the O content is small).
    """
    metal = resolve_material(element)
    carried = 0.0
    for ion, f in _metal_ions(model, element, True):
        carried += f * ion.count("O") / ion.count(element)
    amounts = ((element, 1.0),) + ((("O", carried),) if carried > 0 else ())
    return Phase(f"{element} coating", amounts, metal.atomic_volume_nm3,
                 metal.evaporation_field_V_per_nm,
                 f"{metal.source}; O content {format_amounts(amounts)} from the species "
                 "model's Cr oxide ions (coating oxidised in air)")


class Catalogue:
    """The species of a run in one order, with isotope peaks and sampling tables.

    Parameters
    ----------
    emissions : sequence of Emission
        One per phase, in phase-index order.
    min_abundance : float
        Smallest isotopologue fraction kept (peaks are renormalised to sum to 1).
    """

    def __init__(self, emissions, min_abundance: float = 1e-4):
        names: list[str] = []
        neutrals: list[str] = []
        for em in emissions:
            for n in em.names:
                if Species.from_name(n).charge == 0:
                    if n not in neutrals:
                        neutrals.append(n)
                elif n not in names:
                    names.append(n)
        names.sort(key=lambda n: _species_sort_key(Species.from_name(n)))
        neutrals.sort(key=lambda n: (n != NEUTRAL_O2, n))
        names += neutrals
        self.species = tuple(Species.from_name(n) for n in names)
        self.names = tuple(names)
        self.index = {n: i for i, n in enumerate(names)}
        self.emissions = tuple(emissions)
        n_s = len(names)
        #: True for the undetected neutrals (charge 0)
        self.neutral_mask = np.array([sp.charge == 0 for sp in self.species], dtype=np.bool_)
        self.neutral_index = self.index.get(NEUTRAL_O2, -1)
        #: index of the mobile Li+ (-1 if no phase emits it)
        self.li_index = self.index.get("Li+", -1)
        # per phase: probability of each species, and the flat cumulative table
        self.probabilities = np.zeros((len(emissions), n_s))
        for p, em in enumerate(emissions):
            for name, pr in em.probabilities.items():
                self.probabilities[p, self.index[name]] = pr
        # for sampling: per phase, an alias table (Walker 1977; Vose 1991): a uniform u
        # picks column k = floor(u n) and stays there if the rest u n - k is below
        # alias_probability[k], else goes to alias_index[k]; O(1) per event
        self.alias_probability = np.empty((len(emissions), n_s))
        self.alias_index = np.empty((len(emissions), n_s), np.int64)
        for p in range(len(emissions)):
            self.alias_probability[p], self.alias_index[p] = alias_table(self.probabilities[p])
        # isotope peaks
        peak_mz, peak_ab, peak_species = [], [], []
        self.peaks = []
        for i, sp in enumerate(self.species):
            pk = sp.ion.peaks(min_abundance) if sp.charge > 0 else [(0.0, 1.0)]
            total = sum(p for _, p in pk)
            pk = [(m, p / total) for m, p in pk]
            self.peaks.append(tuple(pk))
            for m, p in pk:
                peak_mz.append(m)
                peak_ab.append(p)
                peak_species.append(i)
        self.peak_mz = np.array(peak_mz, dtype=np.float64)
        self.peak_abundance = np.array(peak_ab, dtype=np.float64)
        self.peak_species = np.array(peak_species, dtype=np.int64)
        # isotope alias tables, one row per species (padded), columns into its peaks
        self.peak_start = np.zeros(n_s + 1, np.int64)
        width = max(len(pk) for pk in self.peaks)
        self.isotope_alias_probability = np.ones((n_s, width))
        self.isotope_alias_index = np.zeros((n_s, width), np.int64)
        for i in range(n_s):
            sel = np.flatnonzero(self.peak_species == i)
            self.peak_start[i + 1] = sel[-1] + 1
            prob, alias = alias_table(self.peak_abundance[sel])
            self.isotope_alias_probability[i, :len(sel)] = prob
            self.isotope_alias_index[i, :len(sel)] = alias
        self.atoms = {sp.name: dict(sp.atoms) for sp in self.species}
        self.elements = tuple(dict.fromkeys(el for sp in self.species for el, _ in sp.atoms))
        self.atom_matrix = np.array([[sp.count(el) for el in self.elements]
                                     for sp in self.species], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.species)


def alias_table(probabilities):
    """Vose's alias table of a discrete distribution.

    Returns ``(prob, alias)`` such that drawing ``k`` uniformly in 0..n-1 and
    keeping it with probability ``prob[k]`` (else taking ``alias[k]``) draws
    index ``i`` with probability ``probabilities[i]`` (M.D. Vose, IEEE Trans.
    Softw. Eng. 17 (1991) 972; A.J. Walker, ACM Trans. Math. Softw. 3 (1977) 253).
    """
    p = np.asarray(probabilities, np.float64)
    n = len(p)
    scaled = p / p.sum() * n
    prob = np.ones(n)
    alias = np.arange(n)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s = small.pop()
        g = large[-1]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] -= 1.0 - scaled[s]
        if scaled[g] < 1.0:
            large.pop()
            small.append(g)
    for i in small + large:      # rounding leftovers keep their own column
        prob[i] = 1.0
    return prob, alias


def _species_sort_key(sp: Species):
    """H, Li, O, then by metal; within a metal by charge (high first), oxygen, atoms."""
    order = {"H": -1, "Li": 0, "O": 1, "Mn": 2, "Ni": 3, "Co": 4, "Cr": 6}
    metals = [el for el, _ in sp.atoms if el != "O"] or ["O"]
    return (order.get(metals[0], 5), metals[0], -sp.charge, sp.count("O"), sp.n_atoms, sp.name)
