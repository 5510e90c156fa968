"""A forward model of atom probe runs of battery cathodes, with the truth kept.

There is no public NMC811 atom probe data, so liprobe simulates runs like
those of Singh et al., arXiv:2309.07842 (2023): a needle of the material
(NMC811, LiMn2O4 or any formula; optionally a Cr shell and grains of a
second phase), evaporated cap by cap, its ions projected onto the detector
with the reconstruction module's inverse projection, detected with the
instrument's efficiency, given isotopes, times of flight with a Gaussian core
and thermal tail, background and multiple hits. It writes an ``.epos`` (or
``.pos``), a range file covering every species emitted, the true positions
(``.truth.pos``) and everything it knows (``.truth.json``).

>>> from liprobe.simulate import SimulationConfig, simulate, write_simulation
>>> result = simulate(SimulationConfig("NMC811", coating="Cr", ions=200_000, seed=1))
>>> paths = write_simulation(result, "run.epos")          # doctest: +SKIP

The parameters are plain frozen data (:mod:`liprobe.simulate.parameters`,
gathered per run by :mod:`liprobe.simulate.config`).
The physics and its sources are in each module's docstring: :mod:`.specimen`
(needle geometry, evaporation order), :mod:`.species` (atoms to ions),
:mod:`.evaporation` (laser pulse to apex temperature and field, and from
field and temperature the charge states, molecular ions, O loss and thermal
tail, with every constant in one table), :mod:`.lithium` (Li transport in the field:
drift to the surface, loss between pulses, supply from an uncoated specimen's flanks,
with its budget),
:mod:`.fracture` (the Maxwell stress against drawn surface flaws: fracture
and crack events), :mod:`.detection` (projection, efficiency, pulses), :mod:`.spectrum`
(time of flight, peak shape, windows), :mod:`.engine` (the chunked loop,
laser schedules), :mod:`.truth` (what the run's truth file holds),
:mod:`.files` (writing a run and its truth), :mod:`.preset` (the study's whole series:
``liprobe simulate --preset paper``), :mod:`.analyst_ranges` (the series' range files,
autoranged on spectra pooled per listed material, and the bias they bring)::

    from liprobe.simulate import write_preset
    manifest = write_preset("paper", "series/")     # then: liprobe study series/study.toml
"""

from .config import PhaseSpec, SimulationConfig
from .engine import CHUNK_EVENTS, SimulatedRun, prepare, simulate
from .evaporation import (
    DEFAULT_EVAPORATION,
    EvaporationModel,
    operating_point,
    parameter_table,
    species_at,
    with_overrides,
)
from .files import output_paths, simulate_to_files, write_simulation
from .fracture import draw_fracture, maxwell_stress_gpa, oxide_stress
from .lithium import (
    DEFAULT_LITHIUM,
    LithiumModel,
    li_transport_at,
    lithium_parameter_table,
)
from .materials import Phase, resolve_material
from .parameters import (
    COATINGS,
    DEFAULT_GEOMETRY,
    DEFAULT_HYDROGEN,
    DEFAULT_MULTIHIT,
    DEFAULT_SPECIES,
    HydrogenModel,
    MultiHitModel,
    PeakShape,
    SpeciesModel,
    SpecimenGeometry,
    peak_shape_at,
)
from .preset import PRESETS, preset_runs, write_preset
from .species import NEUTRAL_O2
from .truth import summary

__all__ = [
    "CHUNK_EVENTS", "COATINGS", "DEFAULT_GEOMETRY", "DEFAULT_HYDROGEN", "DEFAULT_EVAPORATION",
    "DEFAULT_LITHIUM", "DEFAULT_MULTIHIT", "DEFAULT_SPECIES",
    "HydrogenModel", "EvaporationModel", "LithiumModel", "MultiHitModel",
    "NEUTRAL_O2", "PRESETS", "PeakShape", "Phase", "PhaseSpec", "SimulatedRun",
    "SimulationConfig", "SpecimenGeometry", "SpeciesModel", "operating_point",
    "parameter_table", "species_at", "with_overrides", "draw_fracture", "maxwell_stress_gpa",
    "oxide_stress",
    "peak_shape_at", "li_transport_at", "lithium_parameter_table", "output_paths", "prepare",
    "preset_runs",
    "resolve_material", "simulate", "simulate_to_files", "summary", "write_preset",
    "write_simulation",
]
