"""Instrument presets and material parameters for reconstruction, one table each.

Every number here has its source next to it; nothing else in liprobe writes
these numbers as literals. Sources (full references in
``shared/reference/reconstruction.md``):

- [B95] Bas, Bostel, Deconihout, Blavette, Appl. Surf. Sci. 87/88 (1995) 298.
- [G11] Gault, Haley, de Geuser, Moody, Marquis, Larson, Geiser,
  Ultramicroscopy 111 (2011) 448.
- [T78] Tsong, Surf. Sci. 70 (1978) 211 (evaporation fields), as reproduced
  in Gault, Moody, Cairney, Ringer, *Atom Probe Microscopy*, Springer (2012)
  and Larson et al., *Local Electrode Atom Probe Tomography*, Springer (2013).
- [REF] ``reconstruction.md`` sections 6 and 7: manufacturer's nominal
  detection efficiencies (the presets of the Felfer Atom-Probe-Toolbox),
  commonly quoted flight paths, and atomic volumes computed there from
  typical lattice parameters.

Flagged in the reference (not confirmed from a primary source): the flight
paths, the detector radii (left as ``None``: the reconstruction then takes
the largest hit radius of the data, as [REF] section 6 recommends) and the
[T78] field values. Oxides have no tabulated evaporation field; their
``evaporation_field_V_per_nm`` is a calibration default, to be replaced by a
value that makes a known feature come out right.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

__all__ = [
    "Instrument", "Material", "INSTRUMENTS", "MATERIALS", "ELEMENT_EVAPORATION_FIELDS",
    "DEFAULT_INSTRUMENT", "DEFAULT_K_FACTOR", "DEFAULT_ICF",
    "instrument", "material", "material_for", "material_values", "MaterialValues",
]


@dataclass(frozen=True)
class Instrument:
    """An atom probe model's reconstruction parameters.

    Attributes
    ----------
    name : str
    flight_path_mm : float
        Tip-detector distance in mm (straight flight path); for a reflectron
        instrument the nominal path, which is *not* the effective projection
        length (see ``note``).
    efficiency : float
        Detection efficiency eta (fraction of evaporated atoms detected).
    detector_radius_mm : float or None
        None: not known; the reconstruction uses the largest hit radius.
    reflectron : bool
    source : str
    note : str
    """

    name: str
    flight_path_mm: float
    efficiency: float
    detector_radius_mm: float | None
    reflectron: bool
    source: str
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Material:
    """A phase's atomic volume and evaporation field.

    Attributes
    ----------
    name : str
    formula : str
    atomic_volume_nm3 : float
        Omega = cell volume / atoms per cell, nm^3.
    evaporation_field_V_per_nm : float
        F_e in V/nm (a calibration default for oxides, see ``source``).
    source : str
    """

    name: str
    formula: str
    atomic_volume_nm3: float
    evaporation_field_V_per_nm: float
    source: str

    def to_dict(self) -> dict:
        return asdict(self)


#: Instrument presets [REF section 6].
INSTRUMENTS: dict[str, Instrument] = {
    "LEAP 5000 XS": Instrument(
        "LEAP 5000 XS", flight_path_mm=100.0, efficiency=0.80, detector_radius_mm=None,
        reflectron=False,
        source="reconstruction.md s6: eta 0.80 nominal (manufacturer; Felfer Atom-Probe-Toolbox "
               "preset); flight path ~100 mm commonly quoted (not confirmed from a primary "
               "source)",
        note="straight flight path, wide field of view"),
    "LEAP 5000 XR": Instrument(
        "LEAP 5000 XR", flight_path_mm=382.0, efficiency=0.52, detector_radius_mm=None,
        reflectron=True,
        source="reconstruction.md s6: eta 0.52 nominal (manufacturer; Felfer Atom-Probe-Toolbox "
               "preset); flight path ~382 mm nominal (not confirmed from a primary source)",
        note="reflectron: detector coordinates do not follow a straight-line projection; use "
             "the flight path/ICF of the vendor reconstruction or calibrate the ICF on a known "
             "feature rather than 382 mm"),
    "LEAP 4000X HR": Instrument(
        "LEAP 4000X HR", flight_path_mm=382.0, efficiency=0.36, detector_radius_mm=None,
        reflectron=True,
        source="reconstruction.md s6: eta ~0.36-0.37, flight path ~382 mm (for comparison)",
        note="reflectron, see LEAP 5000 XR"),
}

#: Phases of the study [REF section 7; F_e: T78 for Cr, calibration default for oxides].
MATERIALS: dict[str, Material] = {
    "NMC811": Material(
        "NMC811", "LiNi0.8Co0.1Mn0.1O2", atomic_volume_nm3=0.00845,
        evaporation_field_V_per_nm=35.0,
        source="Omega: R-3m, a = 2.872 A, c = 14.20 A, 101.44 A^3 / 12 atoms (reconstruction.md "
               "s7); F_e: no tabulated value for oxides, 35 V/nm is the calibration default of "
               "the reference's worked example (typical oxide choices 20-40 V/nm)"),
    "LiMn2O4": Material(
        "LiMn2O4", "LiMn2O4", atomic_volume_nm3=0.01001,
        evaporation_field_V_per_nm=35.0,
        source="Omega: Fd-3m, a = 8.245 A, 560.50 A^3 / 56 atoms (reconstruction.md s7); F_e: "
               "calibration default as for NMC811 (typical oxide choices 20-40 V/nm)"),
    "Cr": Material(
        "Cr", "Cr", atomic_volume_nm3=0.01200,
        evaporation_field_V_per_nm=29.0,
        source="Omega: bcc, a = 2.8846 A, 24.00 A^3 / 2 atoms (reconstruction.md s7); F_e: "
               "29 V/nm (Cr2+), Tsong 1978"),
}

#: Evaporation fields of the elements in V/nm and the charge state they refer to [T78].
#: O has no elemental value (a gas).
ELEMENT_EVAPORATION_FIELDS: dict[str, tuple[float, int]] = {
    "Li": (14.0, 1),
    "Cr": (29.0, 2),
    "Mn": (30.0, 2),
    "Ni": (35.0, 2),
    "Co": (37.0, 2),
    "Fe": (33.0, 2),
    "Cu": (30.0, 1),
    "Ga": (15.0, 1),
    "Al": (19.0, 1),
}

#: Field factor k: "typically 3-8; default in many tools 3.3" [REF section 1]; it
#: depends on the specimen's shape, not on the instrument.
DEFAULT_K_FACTOR = 3.3
#: Image compression factor xi: "typically 1.2-2 (default often 1.65)" [REF section 1].
DEFAULT_ICF = 1.65
#: Instrument assumed when none is named (flight path and efficiency). No material is
#: assumed anywhere outside the battery study: a reconstruction is told its atomic volume
#: (a material, a value, or a range file's ``Vol:``).
DEFAULT_INSTRUMENT = "LEAP 5000 XS"


def _lookup(table: dict, name: str, what: str):
    key = {k.lower().replace(" ", ""): k for k in table}.get(name.lower().replace(" ", ""))
    if key is None:
        raise KeyError(f"unknown {what} '{name}' (known: {', '.join(table)})")
    return table[key]


def instrument(name: str) -> Instrument:
    """The preset named ``name`` (case and spaces ignored: ``"leap 5000xs"`` works).

    Raises
    ------
    KeyError
        Naming the known instruments.
    """
    return _lookup(INSTRUMENTS, name, "instrument")


def material(name: str) -> Material:
    """The material named ``name`` (case and spaces ignored)."""
    return _lookup(MATERIALS, name, "material")


#: Avogadro's number (1/mol), SI 2019 exact.
_AVOGADRO = 6.02214076e23


class MaterialValues(NamedTuple):
    """A material's values for a reconstruction, the field possibly unknown
    (:func:`material_values`)."""

    name: str
    formula: str
    atomic_volume_nm3: float
    evaporation_field_V_per_nm: float | None
    source: str


def material_for(name: str, atomic_volume_nm3: float | None = None,
                 evaporation_field_V_per_nm: float | None = None) -> Material:
    """A material for a reconstruction: a preset of :data:`MATERIALS`, any element, or any
    formula, with the given values taking precedence.

    - A preset (case and spaces ignored): its values.
    - An element symbol (``W``, ``Al``): the atomic volume of the solid element from its
      molar mass and density, ``Omega = M / (rho N_A)`` (``periodictable``'s values, the
      density at room temperature), and its evaporation field from
      :data:`ELEMENT_EVAPORATION_FIELDS` (Tsong 1978).
    - A formula (``Al2O3``, ``LiFePO4``): its values must be given (no density is known).

    Raises
    ------
    KeyError
        Naming what is missing (an element without a tabulated field, a formula without
        its atomic volume or field) and the presets.
    """
    v = material_values(name, atomic_volume_nm3, evaporation_field_V_per_nm)
    assert v.evaporation_field_V_per_nm is not None
    return Material(v.name, v.formula, v.atomic_volume_nm3, v.evaporation_field_V_per_nm,
                    v.source)


def material_values(name: str, atomic_volume_nm3: float | None = None,
                    evaporation_field_V_per_nm: float | None = None, *,
                    need_field: bool = True) -> MaterialValues:
    """:func:`material_for`, but the evaporation field may stay unknown (None) when
    ``need_field`` is False (a radius from the shank angle does not use it).

    Raises
    ------
    KeyError
        As :func:`material_for`; without ``need_field``, only for a missing atomic volume.
    """
    try:
        base = material(name)
    except KeyError:
        base = None
    if base is not None:
        return MaterialValues(base.name, base.formula,
                              float(atomic_volume_nm3 or base.atomic_volume_nm3),
                              float(evaporation_field_V_per_nm
                                    or base.evaporation_field_V_per_nm),
                              base.source)
    import periodictable

    text = str(name).strip()
    el = getattr(periodictable.elements, "symbol", None)
    element = None
    try:
        element = el(text) if el and text[:1].isupper() else None
    except ValueError:
        element = None
    omega, field_v, source = atomic_volume_nm3, evaporation_field_V_per_nm, []
    if element is not None and element.number > 0:
        if omega is None:
            if not element.density or not element.mass:
                raise KeyError(f"no density of {text} known: give its atomic volume "
                               "(--atomic-volume)")
            omega = element.mass / (element.density * _AVOGADRO) * 1e21
            source.append(f"Omega = M / (rho N_A) = {element.mass:g} g/mol / "
                          f"({element.density:g} g/cm^3 N_A) (periodictable)")
        if field_v is None:
            if text in ELEMENT_EVAPORATION_FIELDS:
                field_v = ELEMENT_EVAPORATION_FIELDS[text][0]
                source.append(f"F_e {field_v:g} V/nm (Tsong 1978)")
            elif need_field:
                raise KeyError(f"no evaporation field of {text} tabulated (known: "
                               f"{', '.join(ELEMENT_EVAPORATION_FIELDS)}): give it "
                               "(--evaporation-field)")
        return MaterialValues(text, text, float(omega),
                              None if field_v is None else float(field_v), "; ".join(source))
    missing = [what for what, v in (("its atomic volume (--atomic-volume)", omega),
                                    ("its evaporation field (--evaporation-field)", field_v))
               if v is None and (need_field or what.startswith("its atomic"))]
    if missing or omega is None:
        raise KeyError(f"material '{text}' is not a preset ({', '.join(MATERIALS)}) nor an "
                       f"element: give {' and '.join(missing)}")
    return MaterialValues(text, text, float(omega), None if field_v is None else float(field_v),
                          "given")
