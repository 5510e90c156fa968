"""Everything the simulator depends on, as plain frozen data.

Each table here is a default a run may replace with ``dataclasses.replace``
(or ``SimulationConfig.replace``, :mod:`liprobe.simulate.config`); nothing in
the simulator reads a number that is not in one of these objects, in the
evaporation physics' constants (:mod:`liprobe.simulate.evaporation`), the
Li transport's constants (:mod:`liprobe.simulate.lithium`) or in
:mod:`liprobe.instruments`. The species shares here say which ions each
element leaves in; the evaporation physics splits the atomic ions into
charge states and breaks molecular ions up at each run's field and
temperature.

Sources (full references in ``shared/reference/``):

- [SI24] Singh, Woods, Kim, Jung, Aota, Gault, arXiv:2309.07842 (2023): the
  study simulated. Supplementary Figure 1 lists the ions observed in coated
  NMC811 at 5 pJ; O2+/O+ ~ 2.61 at 5 pJ (coated and uncoated); 0.5 % detection
  rate at 100 kHz; in-situ Cr coating transferred through air (so partly
  oxidised: CrO+, CrO2+, CrO3+ are observed); thermal tails shorter with the
  coating (their Figure 4a).
- [MS] ``mass-spectrum.md``: t -> m/n (s1), MRP at FWHM "a few hundred to
  ~1000 on straight-flight-path instruments in laser mode and ~1000 or more
  with a reflectron" (s8), exponential thermal tails towards high m/n (s3),
  background flat in time of flight quoted in ppm/ns (s4; the worked example
  uses 10 ppm/ns).
- [REC] ``reconstruction.md``: shank-angle radius evolution, k ~ 3.3, point
  projection (Bas 1995; Geiser 2009 / Gault 2011).
- [FE] ``field-evaporation.md`` s5: neutral O2 loss in laser-pulsed oxides
  (Devaraj 2013, Karahka 2015, Gault 2016); Li is never 2+ (I2 = 75.6 eV).
- [BOOK-G] Gault, Moody, Cairney, Ringer, *Atom Probe Microscopy*, Springer
  (2012): specimen shapes (apex radii of tens of nm, shank half-angles of a
  few to ~15 degrees after annular FIB milling).

Values marked *assumption* have no primary source here; they are chosen to
be typical and are recorded in every run's truth file.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from ..instruments import DEFAULT_K_FACTOR

__all__ = [
    "SpecimenGeometry", "PeakShape", "MultiHitModel", "SpeciesModel", "DEFAULT_SPECIES",
    "DEFAULT_GEOMETRY", "DEFAULT_MULTIHIT",
    "TIMING_SIGMA_NS", "COATINGS", "peak_shape_at",
    "HydrogenModel", "DEFAULT_HYDROGEN",
]

#: Coatings the simulator knows: name -> coating element.
COATINGS = {"none": None, "Cr": "Cr"}


@dataclass(frozen=True)
class SpecimenGeometry:
    """The needle and its projection onto the detector.

    Attributes
    ----------
    apex_radius_nm : float
        Radius of the apex (coating included) when the acquisition starts.
        30 nm: FIB-sharpened specimens end in apices of tens of nm [BOOK-G];
        with k = 3.3 and the oxide's ~26 V/nm at 5 pJ (:mod:`.evaporation`) it gives
        a starting voltage of ~2.6 kV.
    shank_angle_deg : float
        Shank half-angle alpha; the radius grows as
        ``R = R0 + Z sin(a) / (1 - sin(a))`` [REC s2]. 10 degrees [BOOK-G].
    start_depth_nm : float or None
        How much of the original needle (measured from its apex) was
        evaporated before recording started. None: the coating thickness plus
        2 nm for a coated specimen (the record starts once the coating on the
        apex is gone, as in the paper's Figure 3, where the oxide fills the
        centre of every slice), 0 otherwise.
    k_factor : float
        Field factor k of ``V = k F R`` [REC s2].
    icf : float or None
        Image compression factor xi of the Geiser projection. None: derived
        so that the edge of the cap (polar angle 90 deg - alpha) lands at
        ``fov_fill`` of the detector radius, i.e. the whole cross-section is
        imaged and the coating shows at the periphery of every XY slice
        ([SI24] Figure 3). With 100 mm and 40 mm this is xi ~ 3.4.
    detector_radius_mm : float
        Active detector radius. *Assumption* (40 mm): the reference does not
        pin it down (``reconstruction.md`` s6); hits beyond it are lost.
    fov_fill : float
        Where the cap's edge lands, as a fraction of the detector radius.
    blur_nm : float
        Standard deviation of the lateral trajectory aberration per
        coordinate, in nm (*assumption*: sub-nm, so that a reconstruction with
        the true parameters stays within 0.5 nm of the truth).
    interface_blur_nm, interface_width_nm : float
        Extra lateral blur at the coating/oxide interface (local
        magnification where two evaporation fields meet [REC s7]):
        ``interface_blur_nm * exp(-d^2 / (2 w^2))`` added to ``blur_nm``,
        ``d`` the distance to the interface. *Assumption*: 1.5 nm, w = 1 nm.
    """

    apex_radius_nm: float = 30.0
    shank_angle_deg: float = 10.0
    start_depth_nm: float | None = None
    k_factor: float = DEFAULT_K_FACTOR
    icf: float | None = None
    detector_radius_mm: float = 40.0
    fov_fill: float = 0.95
    blur_nm: float = 0.2
    interface_blur_nm: float = 1.5
    interface_width_nm: float = 1.0

    def __post_init__(self):
        for name in ("apex_radius_nm", "k_factor", "detector_radius_mm", "interface_width_nm"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        for name in ("blur_nm", "interface_blur_nm"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must not be negative, got {v!r}")
        if not 0 <= self.shank_angle_deg < 60:
            raise ValueError(f"shank_angle_deg must be in [0, 60), got {self.shank_angle_deg}")
        if self.start_depth_nm is not None and not self.start_depth_nm >= 0:
            raise ValueError(f"start_depth_nm must not be negative, got {self.start_depth_nm}")
        if self.icf is not None and not self.icf >= 1:
            raise ValueError(f"icf must be at least 1, got {self.icf}")
        if not 0 < self.fov_fill <= 1:
            raise ValueError(f"fov_fill must be in (0, 1], got {self.fov_fill}")

    def to_dict(self) -> dict:
        return asdict(self)


#: Timing resolution (one standard deviation of the time of flight, ns) per
#: instrument. *Assumption*, set so that the MRP at FWHM of a 28 Da peak at
#: 3.5 kV is ~900 on the straight-flight-path XS (100 mm) and ~2100 on the
#: reflectron instruments (382 mm), the orders of magnitude of [MS] s8.
#: MRP = t / (2 FWHM_t) then grows as sqrt(m) and falls as sqrt(V) over a run
#: (the evaporation model's fields give ~2.5 kV at 5 pJ, where it is ~1.2 times
#: higher).
TIMING_SIGMA_NS = {"LEAP 5000 XS": 0.15, "LEAP 5000 XR": 0.25, "LEAP 4000X HR": 0.25}


@dataclass(frozen=True)
class PeakShape:
    """Peak shape and background of the mass spectrum, in time of flight.

    Every ion's time of flight is its ideal ``t0 = L sqrt(m / (c V))`` plus a
    Gaussian of ``timing_sigma_ns`` and, for a fraction ``tail_fraction`` of
    ions (late, thermally activated evaporation [MS] s3), an exponential
    delay of mean ``tail_tau_ns``. A fraction ``b * 1e-6 * W`` of detected
    ions are background, ``b = background_ppm_per_ns`` and ``W`` the width in
    ns of the acquisition window (``mass_window_da`` at the ion's voltage);
    their time of flight is uniform over the window [MS] s4 (DC evaporation
    between pulses: real atoms of the specimen, at random times).

    ``window_sigmas`` and ``window_tail_taus`` set the range file's windows:
    ``[mu - a sigma_m, mu + a sigma_m + b tau_m)``, sigma_m and tau_m the
    Gaussian width and tail constant in Da at the highest voltage of the run.
    ``window_min_abundance``: isotope peaks below this fraction of their ion
    get no window.
    """

    timing_sigma_ns: float
    tail_fraction: float
    tail_tau_ns: float
    background_ppm_per_ns: float = 10.0
    mass_window_da: tuple[float, float] = (0.5, 250.0)
    window_sigmas: float = 4.0
    window_tail_taus: float = 4.0
    window_min_abundance: float = 0.005

    def __post_init__(self):
        if not (math.isfinite(self.timing_sigma_ns) and self.timing_sigma_ns > 0):
            raise ValueError(f"timing_sigma_ns must be positive, got {self.timing_sigma_ns}")
        if not 0 <= self.tail_fraction < 1:
            raise ValueError(f"tail_fraction must be in [0, 1), got {self.tail_fraction}")
        if not (math.isfinite(self.tail_tau_ns) and self.tail_tau_ns > 0):
            raise ValueError(f"tail_tau_ns must be positive, got {self.tail_tau_ns}")
        if not (math.isfinite(self.background_ppm_per_ns) and self.background_ppm_per_ns >= 0):
            raise ValueError("background_ppm_per_ns must not be negative")
        lo, hi = self.mass_window_da
        if not 0 < lo < hi:
            raise ValueError(f"mass_window_da must be (lo, hi) with 0 < lo < hi, got {lo, hi}")
        object.__setattr__(self, "mass_window_da", (float(lo), float(hi)))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mass_window_da"] = list(self.mass_window_da)
        return d


def peak_shape_at(instrument: str, tail_fraction: float, tail_tau_ns: float) -> PeakShape:
    """The peak shape of ``instrument`` (a name of :data:`TIMING_SIGMA_NS`) with a thermal tail
    (its share and time constant come from the apex's cooling,
    :func:`liprobe.simulate.evaporation.operating_point`)."""
    return PeakShape(timing_sigma_ns=TIMING_SIGMA_NS[instrument], tail_fraction=tail_fraction,
                     tail_tau_ns=tail_tau_ns)


@dataclass(frozen=True)
class MultiHitModel:
    """Pulses and multiple hits.

    ``detection_rate`` is detected ions per pulse (0.5 % in [SI24]);
    ``multiplicity_probabilities`` are the probabilities that a pulse with
    ions carries 1, 2, 3, ... of them. *Assumption*: 6 % of such pulses carry
    two or more ions (correlated evaporation and molecular dissociation make
    multiples common in oxides; the real Si run in shared/data has ~2 %).
    """

    detection_rate: float = 0.005
    multiplicity_probabilities: tuple[float, ...] = (0.94, 0.05, 0.008, 0.002)

    def __post_init__(self):
        p = tuple(float(v) for v in self.multiplicity_probabilities)
        if not p or any(v < 0 for v in p) or abs(sum(p) - 1) > 1e-9:
            raise ValueError("multiplicity_probabilities must be non-negative and sum to 1")
        object.__setattr__(self, "multiplicity_probabilities", p)
        if not 0 < self.detection_rate < 1:
            raise ValueError(f"detection_rate must be in (0, 1), got {self.detection_rate}")

    @property
    def mean_multiplicity(self) -> float:
        return sum((k + 1) * p for k, p in enumerate(self.multiplicity_probabilities))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["multiplicity_probabilities"] = list(self.multiplicity_probabilities)
        return d


@dataclass(frozen=True)
class SpeciesModel:
    """How the atoms of each element leave the surface: which ions, in what share.

    ``partitions`` gives, per element, the fraction of its atoms that leave
    in each ion (ions of that element and O only). Oxygen is what is left:
    a fraction ``neutral_o_fraction`` of a phase's O atoms leaves as neutral
    O2 (undetected [FE] s5); the O not carried by metal ions leaves as O+
    and O2+ (the molecule) with ``N(O2+) / N(O+) = o2_to_o_ratio``. If the
    metal ions would carry more O than the phase has, their oxide shares are
    scaled down together (the rest goes to the atomic ions) so that atoms are
    conserved. Elements without an entry use ``generic``, or
    ``singly_charged`` (alkali metals, H: 1+ only) [FE] s1.
    ``neutral_losses`` gives, per element, the fraction of its atoms that
    leaves as an undetected neutral monoxide (``MnO (neutral)``; the metal
    alone in an O-free phase), e.g. from in-flight dissociation of molecular
    ions [FE] s5; ``dissociated_o`` per element the O atoms (per atom of the
    element) split off its molecular ions in flight and lost as neutral O.
    The evaporation physics (:func:`liprobe.simulate.evaporation.species_at`)
    sets both, the charge states and ``o2_to_o_ratio`` and
    ``neutral_o_fraction`` from the field and temperature.

    Defaults: the ion list of [SI24] Supplementary Figure 1 (coated NMC811,
    5 pJ) with shares chosen here (*assumption*): the share of each metal's
    atoms leaving in each molecular ion before any break-up, and in atomic
    ions together (the split between the charge states of the default
    shares is not used: the evaporation physics makes it). The Cr shares
    make the coating an oxidised Cr (the coated specimens went through air
    [SI24]); its O content follows from them (O/Cr = 0.29).
    """

    partitions: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]
    o2_to_o_ratio: float = 2.61
    neutral_o_fraction: float = 0.02
    generic: tuple[tuple[str, float], ...] = (("{M}+", 0.4), ("{M}++", 0.4), ("{M}O+", 0.2))
    singly_charged: tuple[str, ...] = ("H", "Li", "Na", "K", "Rb", "Cs")
    laser_pj: float = 5.0
    neutral_losses: tuple[tuple[str, float], ...] = ()
    dissociated_o: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        if not (math.isfinite(self.o2_to_o_ratio) and self.o2_to_o_ratio >= 0):
            raise ValueError("o2_to_o_ratio must not be negative")
        if not 0 <= self.neutral_o_fraction < 1:
            raise ValueError("neutral_o_fraction must be in [0, 1)")
        for el, f in self.neutral_losses:
            if not 0 <= f < 1:
                raise ValueError(f"the neutral loss of {el} must be in [0, 1), got {f}")
        for el, part in self.partitions:
            total = sum(f for _, f in part)
            if abs(total - 1) > 1e-9 or any(f < 0 for _, f in part):
                raise ValueError(f"the shares of {el} must be non-negative and sum to 1 "
                                 f"(they sum to {total})")

    def partition(self, element: str) -> tuple[tuple[str, float], ...]:
        """Ion names and atom shares of ``element`` (``{M}`` filled in for generic ones)."""
        for el, part in self.partitions:
            if el == element:
                return part
        if element in self.singly_charged:
            return ((f"{element}+", 1.0),)
        return tuple((name.replace("{M}", element), f) for name, f in self.generic)

    def with_partition(self, element: str, part) -> SpeciesModel:
        """A copy with ``element``'s shares replaced."""
        parts = [(el, p) for el, p in self.partitions if el != element]
        parts.append((element, tuple((str(n), float(f)) for n, f in part)))
        return replace(self, partitions=tuple(parts))

    def to_dict(self) -> dict:
        return {
            "partitions": {el: dict(part) for el, part in self.partitions},
            "o2_to_o_ratio": self.o2_to_o_ratio,
            "neutral_o_fraction": self.neutral_o_fraction,
            "generic": dict(self.generic),
            "singly_charged": list(self.singly_charged),
            "laser_pj": self.laser_pj,
            "neutral_losses": dict(self.neutral_losses),
            "dissociated_o": dict(self.dissociated_o),
        }


#: Defaults at 5 pJ (see :class:`SpeciesModel`).
DEFAULT_SPECIES = SpeciesModel(partitions=(
    ("Li", (("Li+", 1.0),)),
    ("Ni", (("Ni++", 0.50), ("Ni+", 0.22), ("NiO+", 0.14), ("Ni2O+", 0.04),
            ("NiO2+", 0.06), ("NiO3+", 0.04))),
    ("Co", (("Co++", 0.48), ("Co+", 0.24), ("CoO+", 0.14), ("Co2O+", 0.04),
            ("CoO2+", 0.06), ("CoO3+", 0.04))),
    ("Mn", (("Mn++", 0.40), ("Mn+", 0.30), ("MnO+", 0.16), ("Mn2O+", 0.04),
            ("MnO2+", 0.06), ("MnO4+", 0.04))),
    ("Cr", (("Cr++", 0.60), ("Cr+", 0.22), ("CrO+", 0.10), ("CrO2+", 0.05),
            ("CrO3+", 0.03))),
))

DEFAULT_GEOMETRY = SpecimenGeometry()
DEFAULT_MULTIHIT = MultiHitModel()


@dataclass(frozen=True)
class HydrogenModel:
    """Hydrogen: residual gas of the analysis chamber, and hydride ions (opt-in:
    ``SimulationConfig(hydrogen=DEFAULT_HYDROGEN)``).

    ``h_fraction`` and ``h2_fraction`` are the shares of evaporation events
    that are ``H+`` and ``H2+`` (H adsorbed from the chamber's residual gas and
    field-evaporated with the specimen; ``mass-spectrum.md``: H+, H2+ at 1 and
    2 Da in most runs). *Assumption*: 0.3 % and 0.1 %, a clean UHV chamber.
    With ``hydrides``, a share ``hydride_fraction`` of the ``Cr+`` ions leave
    as ``CrH+`` and of the ``NiO+`` ions as ``NiOH+`` (overlaps of 52CrH+ on
    53Cr+, 54CrH+ on Mn+, NiOH+ on CoO+: ``field-evaporation.md`` s1).
    The H atoms come on top of the phase's atoms (adsorbed, no volume) and
    are counted in the truth's compositions.
    """

    h_fraction: float = 0.003
    h2_fraction: float = 0.001
    hydrides: bool = False
    hydride_fraction: float = 0.02

    def __post_init__(self):
        for name in ("h_fraction", "h2_fraction", "hydride_fraction"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 <= v < 1):
                raise ValueError(f"{name} must be in [0, 1), got {v!r}")
        if self.h_fraction + self.h2_fraction >= 0.5:
            raise ValueError("h_fraction + h2_fraction must stay below 0.5")

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_HYDROGEN = HydrogenModel()
