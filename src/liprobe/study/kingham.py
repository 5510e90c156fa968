"""Kingham-equivalent fields of a run: each element's charge-state ratio, read through its curves.

For every element ranged as a single-atom ion in two neighbouring charge
states, :func:`kingham_fields`

1. chooses the element's region (``shared/reference/field-evaporation.md``
   section 1): the coating's ions for the coating element (the ions beyond
   the inner radius of its shell, :mod:`liprobe.spatial.coating`; the whole
   selection when no shell is found, as for a cap or an uncoated run), and the
   oxide's ions for every other element (the core, ``margin_nm`` inside the
   shell; the whole selection without a shell);
2. counts each charge state there (all isotopes: the ion's windows) and
   subtracts the background under its windows (uniform in time of flight,
   fitted in the region's peak-free windows, :func:`liprobe.spectrum.peaks.analyse_peaks`);
   the variance of a net count is ``N + sigma_B^2``, the background's error
   added linearly over the ion's windows (one fitted amplitude);
3. reads the ratio of the best-measured neighbouring pair (smallest relative
   error) through :func:`liprobe.kingham.field_from_ratio`.

Labels are honest. The coating element's value, and that of any element of a
run that is not an oxide, is a "Kingham-equivalent field (metal
assumption)". An oxide cation's value (Ni, Co, Mn... of a run whose ranged
atoms are at least :data:`OXIDE_O_FRACTION` O)
is a relative indicator, not a field: oxide charge states do not follow
post-ionisation alone (Schreiber et al., Appl. Phys. Lett. 105 (2014)
244106), and Mn++/Mn+ even rises with laser energy in these oxides (Singh
et al., arXiv:2309.07842). Such values are computed only on request
(``all_elements``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import AnalysisError
from ..kingham import ELEMENTS, KinghamField, KinghamModel, field_from_ratio
from ..rangetable import RangeTable
from ..run import Run

__all__ = ["ElementField", "KinghamFields", "kingham_fields", "METAL_LABEL", "OXIDE_LABEL",
           "field_key"]

METAL_LABEL = "Kingham-equivalent field (metal assumption)"
OXIDE_LABEL = "relative indicator (oxide cation), not a field"


def field_key(element: str) -> str:
    """The table column of an element's Kingham field: ``kingham_field_cr_v_nm``."""
    return f"kingham_field_{element.lower()}_v_nm"


@dataclass(frozen=True)
class ElementField:
    """One element's Kingham field, with what it was read from.

    Attributes
    ----------
    element : str
    kind : str
        ``"coating"``, ``"metal"`` (a run without O ranged) or ``"oxide cation"``.
    label : str
        What the value is (:data:`METAL_LABEL` or :data:`OXIDE_LABEL`).
    region : str
        Which ions were counted.
    ions_in_region : int
    charge_states : dict
        Ion name -> ``{"counts", "background", "net", "error"}`` (net counts
        after background subtraction and their standard error).
    field : KinghamField or None
        The inversion of the chosen pair (None when no pair could be formed).
    reason : str or None
        Why there is no value.
    """

    element: str
    kind: str
    label: str
    region: str
    ions_in_region: int
    charge_states: dict
    field: KinghamField | None
    reason: str | None = None

    @property
    def value_v_nm(self) -> float | None:
        return None if self.field is None else self.field.value_v_nm

    @property
    def error_v_nm(self) -> float | None:
        return None if self.field is None else self.field.error_v_nm

    def why_missing(self) -> str | None:
        if self.value_v_nm is not None:
            return None
        return self.reason or (self.field.reason if self.field is not None else None) \
            or "not computable"

    def to_dict(self) -> dict:
        return {"element": self.element, "kind": self.kind, "label": self.label,
                "region": self.region, "ions_in_region": self.ions_in_region,
                "charge_states": self.charge_states,
                "pair": None if self.field is None else self.field.pair,
                "ratio": None if self.field is None else self.field.ratio,
                "ratio_error": None if self.field is None else self.field.ratio_error,
                "value_v_nm": self.value_v_nm, "error_v_nm": self.error_v_nm,
                "reason": self.why_missing()}


@dataclass(frozen=True)
class KinghamFields:
    """Kingham fields of a run's elements.

    Attributes
    ----------
    elements : dict of str to ElementField
    coating : str
        The coating element (always reported, with a reason when absent).
    notes : tuple of str
        What was left out and why (e.g. oxide cations without ``all_elements``).
    """

    elements: dict
    coating: str
    notes: tuple = field(default=())

    def keys(self) -> dict:
        """``{"kingham_field_cr_v_nm": value, "kingham_field_cr_v_nm_err": error, ...}``."""
        out: dict = {}
        for el, f in self.elements.items():
            out[field_key(el)] = f.value_v_nm
            out[field_key(el) + "_err"] = f.error_v_nm
        return out

    def reasons(self) -> dict:
        """``{"kingham_field_cr_v_nm": why}`` for every missing value."""
        return {field_key(el): f.why_missing() for el, f in self.elements.items()
                if f.value_v_nm is None}

    def to_dict(self) -> dict:
        d = self.keys()
        d["kingham"] = {el: f.to_dict() for el, f in self.elements.items()}
        d["kingham_notes"] = list(self.notes)
        return d


#: A charge state's net count must be at least this many standard errors above zero ...
MIN_SIGNIFICANCE = 3.0
#: ... and the ratio's relative error at most this, for a field to be read.
MAX_RELATIVE_ERROR = 0.5
#: A coating element making at least this fraction of the ranged atoms is a coating that
#: must be kept out of the oxide cations' ratios.
COATING_MIN_FRACTION = 0.01
#: Elements that are never read through Kingham curves (no metal, no data).
NON_METALS = frozenset({"H", "He", "B", "C", "N", "O", "F", "Ne", "P", "S", "Cl", "Ar", "Se",
                        "Br", "Kr", "I", "Xe", "Rn"})

#: A run whose ranged atoms are at least this fraction O is an oxide: its
#: cations' charge-state ratios are relative indicators, not fields.
OXIDE_O_FRACTION = 0.10


def _element_fraction(table: RangeTable, ion_counts: np.ndarray, element: str) -> float:
    """Atomic fraction of ``element`` among the ranged atoms (0 when it is not ranged)."""
    if element not in table.elements:
        return 0.0
    els, m = table.decomposition()
    atoms = np.asarray(ion_counts, dtype=float) @ m.astype(float)
    total = atoms.sum()
    return float(atoms[els.index(element)] / total) if total > 0 else 0.0


def _charge_states(table: RangeTable) -> dict:
    """``{element: {charge: ion index}}`` of the single-atom ions of ``table``."""
    out: dict = {}
    for k, ion in enumerate(table.ions):
        if ion.n_atoms == 1 and ion.charge and not ion.is_named:
            out.setdefault(ion.elements[0], {})[ion.charge] = k
    return out


def _net_counts(run: Run, table: RangeTable, background: bool):
    """Per ion of ``table``: counts, background, net and its standard error; and a note.
    The masses of ``run`` are read a chunk at a time."""
    from ..ranging import count_windows

    wc = np.zeros(len(table), np.int64)
    for _s, chunk in run.chunks("mass"):
        wc += count_windows(chunk, table)[0]
    bgc = np.zeros(len(table))
    bge = np.zeros(len(table))
    note = None
    if background and run.n_ions:
        from ..spectrum.peaks import analyse_peaks

        hi = float(max(table.hi.max() + 1.0, 10.0)) if len(table) else 200.0
        tof = run.source("tof") if "tof" in run else None      # read only where sampled
        try:
            bg = analyse_peaks(run, tof, (0.5, hi)).background
        except AnalysisError as e:
            bg, note = None, f"background not subtracted: {e}"
        if bg is not None and bg.a is not None:
            bgc = np.asarray(bg.counts(table.lo, table.hi), dtype=float)
            bge = np.asarray(bg.counts_error(table.lo, table.hi), dtype=float)
        elif bg is not None:
            note = f"background not subtracted: {bg.reason or 'no background fit'}"
    n_ions = len(table.ions)
    counts = np.bincount(table.ion_index, weights=wc, minlength=n_ions)
    bsum = np.bincount(table.ion_index, weights=bgc, minlength=n_ions)
    esum = np.bincount(table.ion_index, weights=bge, minlength=n_ions)
    net = counts - bsum
    err = np.sqrt(np.maximum(counts, 0.0) + esum * esum)
    return counts, bsum, net, err, note


def _regions(run: Run, table: RangeTable, coating: str, margin_nm: float):
    """(coating-region mask or None, core mask or None, description of each, note)."""
    if coating not in table.elements:
        return None, None, "the whole selection", "the whole selection", None
    if not all(c in run for c in ("x", "y", "z")):
        return (None, None, "the whole selection (no positions)",
                "the whole selection (no positions)", None)
    from ..spatial.coating import coating_profile, core_mask

    try:
        profile = coating_profile(run, table, element=coating)
    except AnalysisError as e:
        return (None, None, "the whole selection", "the whole selection",
                f"no {coating} shell found ({e})")
    if profile.geometry == "none":
        why = profile.no_shell_message().split(": the data has no coating")[0]
        return (None, None, f"the whole selection (no {coating} shell or cap found)",
                "the whole selection (no coating found)", why)
    inner, _ = core_mask(run, table, 0.0, element=coating, profile=profile, packed=True)
    core, _ = core_mask(run, table, margin_nm, element=coating, profile=profile, packed=True)
    where = ("shell (beyond its foot)" if profile.geometry == "shell"
             else "cap (above its interface)")
    return (~inner, core, f"the {coating} {where}",
            f"the core ({margin_nm:g} nm clear of the {coating} {profile.geometry})", None)


def _element_field(element, charges, counts, bsum, net, err, table, model):
    names = {q: table.ions[k].name for q, k in charges.items()}
    states = {names[q]: {"counts": int(round(counts[k])), "background": round(float(bsum[k]), 3),
                         "net": round(float(net[k]), 3), "error": round(float(err[k]), 3)}
              for q, k in sorted(charges.items())}
    pairs = [(q + 1, q) for q in sorted(charges) if q + 1 in charges]
    if not pairs:
        only = ", ".join(names[q] for q in sorted(charges))
        return states, None, (f"only {only} ranged: no two neighbouring charge states of "
                              f"{element}")
    best = None
    for hi, lo in pairs:
        a, b = net[charges[hi]], net[charges[lo]]
        if not (a >= MIN_SIGNIFICANCE * err[charges[hi]] > 0
                and b >= MIN_SIGNIFICANCE * err[charges[lo]] > 0):
            continue
        r = a / b
        rel = math.sqrt((err[charges[hi]] / a) ** 2 + (err[charges[lo]] / b) ** 2)
        if rel > MAX_RELATIVE_ERROR:
            continue
        if best is None or rel < best[0]:
            best = (rel, hi, lo, r)
    if best is None:
        hi, lo = pairs[0]
        weak = [names[q] for q in (hi, lo)
                if not net[charges[q]] >= MIN_SIGNIFICANCE * err[charges[q]]]
        if not weak:
            return states, None, (f"{names[hi]}/{names[lo]} is too uncertain to read (relative "
                                  f"error above {MAX_RELATIVE_ERROR:g})")
        detail = ", ".join(f"{n}: {states[n]['counts']} counted, "
                           f"{states[n]['background']:.1f} background, net "
                           f"{states[n]['net']:.1f} +/- {states[n]['error']:.1f}" for n in weak)
        return states, None, (f"no {' or '.join(weak)} ions significantly above background "
                              f"({MIN_SIGNIFICANCE:g} sigma; {detail})")
    rel, hi, lo, r = best
    return states, field_from_ratio(element, hi, lo, float(r), float(r * rel), model), None


def kingham_fields(run: Run, table: RangeTable, coating: str = "Cr", all_elements: bool = False,
                   margin_nm: float = 3.0, background: bool = True,
                   model: KinghamModel | None = None) -> KinghamFields:
    """Kingham-equivalent fields (V/nm) of the elements of a run (see the module docstring).

    Parameters
    ----------
    run : Run
        The selected ions (a segment or ROI already applied); ``x y z`` are
        needed to find the coating's shell, ``tof`` improves the background.
    table : RangeTable
    coating : str
        The coating element: always reported, with a reason when it has no value.
    all_elements : bool
        Also report the oxide cations (relative indicators, not fields).
    margin_nm : float
        How far inside the coating's shell the oxide's ions are taken.
    background : bool
        Subtract the background under each charge state's windows.
    model : KinghamModel, optional

    Returns
    -------
    KinghamFields

    Examples
    --------
    A Cr run (no oxygen, no positions: the whole selection), 600 Cr++ and
    400 Cr+ ions, no background subtraction:

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> table = RangeTable.from_ranges([Range(25.8, 26.2, parse_ion("Cr++")),
    ...                                 Range(51.8, 52.2, parse_ion("Cr+"))])
    >>> run = liprobe.Run.from_arrays(mass=np.array([26.0] * 600 + [52.0] * 400))
    >>> kf = liprobe.kingham_fields(run, table, background=False)
    >>> f = kf.elements["Cr"]
    >>> f.field.pair, round(f.field.ratio, 2), f.label
    ('Cr++/Cr+', 1.5, 'Kingham-equivalent field (metal assumption)')
    >>> 20.0 < kf.keys()["kingham_field_cr_v_nm"] < 22.0
    True
    """
    model = model or KinghamModel()
    by_element = _charge_states(table)
    cache: dict = {}

    def counted(mask):
        """Counts of the ions ``mask`` picks (a lazy selection, read a chunk at a time)."""
        key = id(mask) if mask is not None else None
        if key not in cache:
            sub = run if mask is None else run.select(mask)
            cache[key] = (sub.n_ions, _net_counts(sub, table, background))
        return cache[key]

    whole = counted(None)[1][0]
    o_fraction = _element_fraction(table, whole, "O")
    coating_share = _element_fraction(table, whole, coating)
    coating_present = coating_share >= COATING_MIN_FRACTION
    oxide = o_fraction >= OXIDE_O_FRACTION
    wanted, notes = [], []
    skipped = []
    for el in sorted(set(by_element) | {coating}):
        if el in NON_METALS and el != coating:
            continue
        kind = "coating" if el == coating else ("oxide cation" if oxide else "metal")
        if kind == "oxide cation" and not all_elements:
            if len(by_element.get(el, {})) >= 2:
                skipped.append(el)
            continue
        wanted.append((el, kind))
    if skipped:
        notes.append(f"{', '.join(skipped)}: oxide cations, reported only on request "
                     "(--all-elements; all_elements=True in Python): relative indicators, "
                     "not fields")
    need_regions = any(el in ELEMENTS and len(by_element.get(el, {})) >= 2 for el, _ in wanted)
    coat_mask = core = None
    coat_desc = core_desc = "the whole selection"
    if need_regions:
        coat_mask, core, coat_desc, core_desc, why = _regions(run, table, coating, margin_nm)
        if why:
            notes.append(why)
    out = {}
    for el, kind in wanted:
        label = OXIDE_LABEL if kind == "oxide cation" else METAL_LABEL
        charges = by_element.get(el, {})
        if not charges:
            out[el] = ElementField(el, kind, label, "", 0, {}, None,
                                   f"{el} is not ranged" + (f" in {table.path}" if table.path
                                                            else ""))
            continue
        if el not in ELEMENTS:
            out[el] = ElementField(el, kind, label, "", 0, {}, None,
                                   f"no Kingham data for {el}")
            continue
        if kind == "oxide cation" and core is None and coating_present:
            out[el] = ElementField(el, kind, label, core_desc, 0, {}, None,
                                   f"the {coating} coating could not be kept out (no shell "
                                   f"found, {coating} is {100 * coating_share:.1f} % of the "
                                   "ranged atoms): an oxide cation's ratio needs the core")
            continue
        mask, region = (coat_mask, coat_desc) if kind == "coating" else (core, core_desc)
        n_region, (counts, bsum, net, err, note) = counted(mask)
        if note and note not in notes:
            notes.append(note)
        states, kf, reason = _element_field(el, charges, counts, bsum, net, err, table, model)
        out[el] = ElementField(el, kind, label, region, int(n_region), states, kf, reason)
    return KinghamFields(out, coating, tuple(notes))
