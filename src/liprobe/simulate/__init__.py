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

The parameters are plain frozen data (:mod:`liprobe.simulate.parameters`),
so that a later layer can vary them per run. The physics and its sources are
in each module's docstring: :mod:`.specimen` (needle geometry, evaporation
order), :mod:`.species` (atoms to ions), :mod:`.detection` (projection,
efficiency, pulses), :mod:`.spectrum` (time of flight, peak shape, windows),
:mod:`.engine` (the chunked loop, the truth).
"""

from .engine import (CHUNK_EVENTS, SimulatedRun, output_paths, prepare, simulate,
                     simulate_to_files, summary, write_simulation)
from .materials import Phase, resolve_material
from .parameters import (COATINGS, DEFAULT_GEOMETRY, DEFAULT_MULTIHIT, DEFAULT_SPECIES,
                         MultiHitModel, PeakShape, PhaseSpec, SimulationConfig, SpecimenGeometry,
                         SpeciesModel, default_peak_shape)
from .species import NEUTRAL_O2

__all__ = [
    "CHUNK_EVENTS", "COATINGS", "DEFAULT_GEOMETRY", "DEFAULT_MULTIHIT", "DEFAULT_SPECIES",
    "MultiHitModel", "NEUTRAL_O2", "PeakShape", "Phase", "PhaseSpec", "SimulatedRun",
    "SimulationConfig", "SpecimenGeometry", "SpeciesModel", "default_peak_shape",
    "output_paths", "prepare", "resolve_material", "simulate", "simulate_to_files", "summary",
    "write_simulation",
]
