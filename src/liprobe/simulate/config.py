"""One simulated run's configuration: every input, fixed before it runs.

:class:`SimulationConfig` gathers the material, the coating, the run size, the
seed, the instrument and laser energy, second phases (:class:`PhaseSpec`), and
the model tables: geometry, species, peak shape and multiple hits
(:mod:`liprobe.simulate.parameters`), the evaporation physics
(:mod:`liprobe.simulate.evaporation`) and Li transport (:mod:`liprobe.simulate.lithium`).
It checks them when it is made, and its :meth:`~SimulationConfig.to_dict` is
recorded in every run's truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ..instruments import instrument as _instrument
from ..spatial.roi import Roi, parse_roi
from .evaporation import DEFAULT_EVAPORATION, FIXED_FIELD_RANGE_V_NM, EvaporationModel
from .lithium import DEFAULT_LITHIUM, LithiumModel
from .materials import resolve_material
from .parameters import (
    COATINGS,
    DEFAULT_GEOMETRY,
    DEFAULT_MULTIHIT,
    DEFAULT_SPECIES,
    TIMING_SIGMA_NS,
    HydrogenModel,
    MultiHitModel,
    PeakShape,
    SpeciesModel,
    SpecimenGeometry,
)

__all__ = ["PhaseSpec", "SimulationConfig", "MAX_IONS"]

#: The most ions one simulated run may hold (a 2e9-ion .epos is 80 GB).
MAX_IONS = 2_000_000_000


@dataclass(frozen=True)
class PhaseSpec:
    """A second phase inside the specimen: a material filling a shape.

    ``shape`` is a :class:`liprobe.spatial.roi.Roi` of kind ``sphere`` or ``box`` in
    the truth frame (nm; origin at the apex when the acquisition starts,
    z <= 0 into the specimen, the frame of the reconstruction). Parse one with
    :meth:`parse` from ``MATERIAL=sphere:D@X,Y,Z`` or
    ``MATERIAL=box:X0:X1:Y0:Y1:Z0:Z1``.
    """

    material: str
    shape: Roi

    def __post_init__(self):
        if getattr(self.shape, "kind", None) not in ("sphere", "box"):
            raise ValueError("a phase's shape must be a sphere or a box "
                             "(sphere:D@X,Y,Z or box:X0:X1:Y0:Y1:Z0:Z1)")

    @classmethod
    def parse(cls, text: str) -> PhaseSpec:
        """``"LiMn2O4=sphere:20@0,0,-30"`` -> PhaseSpec (ValueError saying what is wrong)."""
        material, sep, spec = text.partition("=")
        if not sep or not material.strip() or not spec.strip():
            raise ValueError(f"bad phase '{text}' (write MATERIAL=sphere:D@X,Y,Z or "
                             "MATERIAL=box:X0:X1:Y0:Y1:Z0:Z1, nm)")
        return cls(material.strip(), parse_roi(spec.strip()))

    @property
    def spec(self) -> str:
        return f"{self.material}={self.shape.spec}"

    def to_dict(self) -> dict:
        d = {"material": self.material, "spec": self.spec}
        d.update(self.shape.describe())
        return d


@dataclass(frozen=True)
class SimulationConfig:
    """One simulated run: every input, fixed before it runs.

    Attributes
    ----------
    material : str
        ``NMC811``, ``LiMn2O4``, another name of :data:`liprobe.instruments.MATERIALS`,
        or a formula such as ``LiNi0.6Co0.2Mn0.2O2``.
    coating : {"none", "Cr"}
    coating_thickness_nm : float
        Thickness of the conformal shell (ignored without a coating).
        *Assumption*: 5 nm ("thin" in [SI24]; no thickness is given there).
    ions : int
        Detected ions to write.
    seed : int
    instrument : str
        A name of :data:`liprobe.instruments.INSTRUMENTS`.
    laser_pj : float
        Laser pulse energy (pJ): sets the apex's peak temperature, and through
        it the field, the charge states and molecular ions, the O loss and
        the thermal tail (:mod:`liprobe.simulate.evaporation`), and Li's
        transport (:mod:`liprobe.simulate.lithium`). With a ``schedule``, the
        first segment's energy.
    phases : tuple of PhaseSpec
    geometry : SpecimenGeometry
    species : SpeciesModel
        Share of each element's atoms leaving in each molecular ion and,
        together, in atomic ions (the evaporation model splits these into
        charge states and breaks molecules up at the local field).
    peak : PeakShape or None
        None: the instrument's timing with the thermal tail of each
        segment's apex cooling (:func:`.evaporation.operating_point`); a
        PeakShape: that shape in every segment.
    multihit : MultiHitModel
    evaporation : EvaporationModel
        The constants of temperature, field, charge states, molecules, O
        loss and tails (:mod:`liprobe.simulate.evaporation`).
    field_v_nm : float or None
        Fix the oxide's mean field (V/nm) instead of solving it from the
        temperature (a probe of the model: the proxies then follow the field,
        not the laser energy). None: solved.
    schedule : tuple of (int, float)
        Laser energy changes within the run: ``((0, 5), (100000, 10))`` runs
        ions 0-99,999 (detected) at 5 pJ and the rest at 10 pJ. Empty: the
        whole run at ``laser_pj``.
    mobility : LithiumModel or None
        Li transport (:mod:`liprobe.simulate.lithium`): drift to the surface, loss
        between pulses, supply from the flanks of an uncoated specimen. None: Li
        stays where it is (random labels).
    fracture : "auto", float or None
        ``"auto"``: the fracture model (:mod:`liprobe.simulate.fracture`):
        the Maxwell stress of each segment's field against a drawn population
        of surface flaws decides whether and where the specimen fractures
        (the run ends there, with a final burst of multiple hits) and its
        crack events (voltage steps); uncoated specimens fracture early and
        often, coated ones rarely. A fraction: the specimen fractures after
        that fraction of ``ions``, with no other crack (a fixed point for
        tests). None: no fracture.
    hydrogen : HydrogenModel or None
        H+, H2+ (and optional hydrides), e.g. :data:`DEFAULT_HYDROGEN`; None
        (default): no hydrogen. The paper preset runs with
        :data:`DEFAULT_HYDROGEN`.
    """

    material: str = "NMC811"
    coating: str = "none"
    coating_thickness_nm: float = 5.0
    ions: int = 1_000_000
    seed: int = 0
    instrument: str = "LEAP 5000 XS"
    laser_pj: float = 5.0
    phases: tuple[PhaseSpec, ...] = ()
    geometry: SpecimenGeometry = field(default_factory=lambda: DEFAULT_GEOMETRY)
    species: SpeciesModel = field(default_factory=lambda: DEFAULT_SPECIES)
    peak: PeakShape | None = None
    multihit: MultiHitModel = field(default_factory=lambda: DEFAULT_MULTIHIT)
    evaporation: EvaporationModel = field(default_factory=lambda: DEFAULT_EVAPORATION)
    field_v_nm: float | None = None
    schedule: tuple = ()
    mobility: LithiumModel | None = field(default_factory=lambda: DEFAULT_LITHIUM)
    fracture: str | float | None = "auto"
    hydrogen: HydrogenModel | None = None

    def __post_init__(self):
        coat = {k.lower(): k for k in COATINGS}.get(str(self.coating).lower())
        if coat is None:
            raise ValueError(f"unknown coating '{self.coating}' (none or Cr)")
        object.__setattr__(self, "coating", coat)
        t = self.coating_thickness_nm
        if not (isinstance(t, (int, float)) and math.isfinite(t) and t >= 0):
            raise ValueError(f"coating thickness must be a number >= 0 nm, got {t!r}")
        if coat != "none" and t <= 0:
            raise ValueError("a coating needs a thickness above 0 nm")
        n = self.ions
        if isinstance(n, float) and n.is_integer():
            n = int(n)
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ValueError(f"ions must be a whole number above 0, got {self.ions!r}")
        if n > MAX_IONS:
            raise ValueError(f"ions must be at most {MAX_IONS:,} (2e9), got {n:,}")
        object.__setattr__(self, "ions", n)
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a whole number >= 0, got {self.seed!r}")
        try:
            ins = _instrument(self.instrument)
        except KeyError as e:
            raise ValueError(e.args[0]) from None
        object.__setattr__(self, "instrument", ins.name)
        if self.field_v_nm is not None:
            fv = self.field_v_nm
            lo_f, hi_f = FIXED_FIELD_RANGE_V_NM
            if isinstance(fv, bool) or not isinstance(fv, (int, float)) or not (
                    math.isfinite(fv) and lo_f <= fv <= hi_f):
                raise ValueError(f"field_v_nm must be a field in {lo_f:g}-{hi_f:g} V/nm, "
                                 f"got {fv!r}")
            object.__setattr__(self, "field_v_nm", float(fv))
        if self.peak is None and ins.name not in TIMING_SIGMA_NS:
            raise ValueError(f"no default peak shape for {ins.name}; give one")
        if not (math.isfinite(self.laser_pj) and self.laser_pj > 0):
            raise ValueError(f"laser_pj must be positive, got {self.laser_pj}")
        phases = tuple(PhaseSpec.parse(p) if isinstance(p, str) else p for p in self.phases)
        object.__setattr__(self, "phases", phases)
        resolve_material(self.material)          # ValueError for an unknown formula
        for p in phases:
            resolve_material(p.material)
        object.__setattr__(self, "schedule", _check_schedule(self.schedule, n))
        if self.schedule:
            object.__setattr__(self, "laser_pj", float(self.schedule[0][1]))
        f = self.fracture
        if isinstance(f, str):
            if f != "auto":
                raise ValueError(f"fracture must be 'auto', a fraction in (0, 1] or None, "
                                 f"got {f!r}")
        elif f is not None:
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
                raise ValueError(f"fracture must be 'auto', a fraction in (0, 1] or None, "
                                 f"got {f!r}")
            object.__setattr__(self, "fracture", float(f))

    @property
    def coated(self) -> bool:
        return self.coating != "none"

    @property
    def segments(self) -> tuple:
        """``((start_ion, laser_pj), ...)``: the schedule, or the whole run at ``laser_pj``."""
        return self.schedule or ((0, float(self.laser_pj)),)

    def fracture_fraction(self) -> float | None:
        """The fixed fracture point: the fraction of ``ions`` given as ``fracture``.

        None for ``fracture=None`` and for ``"auto"``, whose point the fracture model
        draws when the run is prepared (:func:`liprobe.simulate.fracture.draw_fracture`
        with the segments' operating points; ``prepare(config).fracture_fraction``, and the
        truth's ``fracture``).
        """
        return None if self.fracture == "auto" else self.fracture

    def replace(self, **changes) -> SimulationConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return {
            "material": self.material,
            "coating": self.coating,
            "coating_thickness_nm": self.coating_thickness_nm if self.coated else 0.0,
            "ions": self.ions,
            "seed": self.seed,
            "instrument": self.instrument,
            "laser_pj": self.laser_pj,
            "phases": [p.to_dict() for p in self.phases],
            "geometry": self.geometry.to_dict(),
            "species": self.species.to_dict(),
            "peak": self.peak.to_dict() if self.peak is not None else None,
            "multihit": self.multihit.to_dict(),
            "evaporation": self.evaporation.to_dict(),
            "field_v_nm": self.field_v_nm,
            "schedule": [{"start_ion": int(a), "laser_pj": float(e)} for a, e in self.schedule],
            "mobility": self.mobility.to_dict() if self.mobility is not None else None,
            "fracture": self.fracture,
            "hydrogen": self.hydrogen.to_dict() if self.hydrogen is not None else None,
        }


def _check_schedule(schedule, ions: int) -> tuple:
    """``((start_ion, laser_pj), ...)`` checked: starts at 0, increasing, energies positive."""
    out = []
    for item in schedule or ():
        try:
            start, pj = item
        except (TypeError, ValueError):
            raise ValueError(f"a schedule entry must be (start_ion, laser_pj), got {item!r}") \
                from None
        if isinstance(start, float) and start.is_integer():
            start = int(start)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"a schedule's start_ion must be a whole number >= 0, got {start!r}")
        if isinstance(pj, bool) or not isinstance(pj, (int, float)) or not (
                math.isfinite(pj) and pj > 0):
            raise ValueError(f"a schedule's laser_pj must be positive, got {pj!r}")
        out.append((int(start), float(pj)))
    if not out:
        return ()
    if out[0][0] != 0:
        raise ValueError("a schedule must start at ion 0")
    for (a, _), (b, _) in zip(out, out[1:]):
        if b <= a:
            raise ValueError("a schedule's start ions must increase")
    if out[-1][0] >= ions:
        raise ValueError(f"the schedule's last segment starts at ion {out[-1][0]}, beyond the "
                         f"{ions} ions of the run")
    return tuple(out)
