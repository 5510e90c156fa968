"""liprobe: atom probe tomography of battery materials.

A flat public API for notebooks::

    import liprobe
    run = liprobe.read("run.epos")          # memory-mapped Run of named columns
    ranges = liprobe.read_ranges("run.rrng")  # RangeTable of Ions
    c = liprobe.composition(run, ranges)    # Composition: counts, at.%, ratios
    c.to_dataframe()                         # pandas, as every table-like result

``liprobe.composition`` is also the module :mod:`liprobe.composition`, which
is callable as its function.
"""

from ._version import __version__ as __version__
from .chemistry import Ion, parse_ion, parse_species
from .errors import AnalysisError, ColumnError, FormatError, LiprobeError, RangeError
from .io import detect_format, read, read_ranges, write, write_ranges
from .io.pos import write_epos, write_pos
from .rangetable import Range, RangeTable
from .run import Run

# Analyses are imported on first use (they load numba, scipy, matplotlib), so
# that ``import liprobe`` and ``liprobe info`` stay fast: liprobe.select(...)
_LAZY = {
    "assign": "liprobe.ranging:assign",
    "count_windows": "liprobe.ranging:count_windows",
    "composition": "liprobe.composition:composition",
    "mass_histogram": "liprobe.spectrum:mass_histogram",
    "select": "liprobe.spatial.roi:select",
    "cylinder_mask": "liprobe.spatial.roi:cylinder_mask",
    "field_proxies": "liprobe.field:field_proxies",
    "kingham_curves": "liprobe.kingham:kingham_curves",
    "kingham_fields": "liprobe.study.kingham:kingham_fields",
    "frequency_distribution": "liprobe.fda:frequency_distribution",
    "detector_map": "liprobe.spatial.detector:detector_map",
    "coating_profile": "liprobe.spatial.coating:coating_profile",
    "core_mask": "liprobe.spatial.coating:core_mask",
    "composition_profile": "liprobe.spatial.profile:composition_profile",
    "voxelise": "liprobe.spatial.voxels:voxelise",
    "isosurface": "liprobe.spatial.isosurface:isosurface",
    "proxigram": "liprobe.spatial.proxigram:proxigram",
    "radial_proxigram": "liprobe.spatial.proxigram:radial_proxigram",
    "nearest_neighbours": "liprobe.spatial.neighbours:nearest_neighbours",
    "neighbour_composition": "liprobe.spatial.neighbours:neighbour_composition",
    "find_clusters": "liprobe.spatial.clusters:find_clusters",
    "pair_correlation": "liprobe.spatial.rdf:pair_correlation",
    "composition_map": "liprobe.spatial.map2d:composition_map",
}


def __getattr__(name):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'liprobe' has no attribute '{name}'")
    import importlib

    module, func = target.split(":")
    mod = importlib.import_module(module)
    # a submodule named as its function (liprobe.composition) is set here by its
    # import, and is itself callable as the function: one object under one name
    return globals().get(name) or getattr(mod, func)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


# the eager names, then the lazy ones (every key of _LAZY, sorted)
__all__ = [
    "AnalysisError", "ColumnError", "FormatError", "Ion", "LiprobeError", "Range",
    "RangeError", "RangeTable", "Run", "detect_format", "parse_ion", "parse_species",
    "read", "read_ranges", "write", "write_epos", "write_pos", "write_ranges",
    "assign", "coating_profile", "composition", "composition_map", "composition_profile",
    "core_mask",
    "count_windows", "cylinder_mask", "detector_map", "field_proxies", "find_clusters",
    "frequency_distribution", "isosurface", "kingham_curves", "kingham_fields",
    "mass_histogram", "nearest_neighbours", "neighbour_composition", "pair_correlation",
    "proxigram", "radial_proxigram", "select", "voxelise",
]
