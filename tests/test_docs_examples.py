"""The ``Examples`` sections of the docstrings, run as doctests (``make test`` runs them).

Only the modules listed in :data:`MODULES` are searched, and in them only the
docstrings of objects defined there (not re-exported names): every ``>>>`` in
those docstrings runs and must print what it says. Other modules keep
illustrative snippets that are not meant to run (``liprobe.simulate``'s
package docstring, for one), so they are not listed. Each example runs in a
temporary working directory, so a stray relative path cannot write into the
checkout.

The API reference (``make docs``) renders the same sections.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

#: Modules whose docstrings hold runnable Examples sections.
MODULES = (
    "liprobe.io",
    "liprobe.io.nexus",
    "liprobe.io.rng",
    "liprobe.run",
    "liprobe.chemistry.ions",
    "liprobe.rangetable",
    "liprobe.chemistry.elements",
    "liprobe.composition",
    "liprobe.stats",
    "liprobe.field",
    "liprobe.kingham",
    "liprobe.fda",
    "liprobe.spectrum.histogram",
    "liprobe.spectrum.peaks",
    "liprobe.spectrum.autorange",
    "liprobe.spatial.roi",
    "liprobe.spatial.reconstruct",
    "liprobe.spatial.detector",
    "liprobe.spatial.profile",
    "liprobe.spatial.voxels",
    "liprobe.spatial.isosurface",
    "liprobe.spatial.proxigram",
    "liprobe.spatial.neighbours",
    "liprobe.spatial.clusters",
    "liprobe.spatial.rdf",
    "liprobe.spatial.map2d",
    "liprobe.io.ply",
    "liprobe.simulate.engine",
    "liprobe.simulate.evaporation",
    "liprobe.simulate.fracture",
    "liprobe.simulate.analyst_ranges",
    "liprobe.study.engine",
    "liprobe.study.kingham",
    "liprobe.study.grain",
    "liprobe.study.columns",
)

#: The main entry points: each must keep an Examples section.
ENTRY_POINTS = (
    "liprobe.io:read", "liprobe.io:read_ranges", "liprobe.io:write",
    "liprobe.io.nexus:write_nexus", "liprobe.io.rng:write_rng",
    "liprobe.chemistry.ions:parse_ion", "liprobe.composition:composition",
    "liprobe.field:field_proxies", "liprobe.fda:frequency_distribution",
    "liprobe.kingham:kingham_curves", "liprobe.kingham:field_from_ratio",
    "liprobe.study.kingham:kingham_fields", "liprobe.study.grain:find_grain",
    "liprobe.spectrum.histogram:mass_histogram", "liprobe.spectrum.peaks:analyse_peaks",
    "liprobe.spectrum.autorange:autorange", "liprobe.spatial.roi:select",
    "liprobe.spatial.reconstruct:reconstruct", "liprobe.spatial.detector:detector_map",
    "liprobe.spatial.profile:composition_profile", "liprobe.spatial.voxels:voxelise",
    "liprobe.spatial.isosurface:isosurface", "liprobe.spatial.proxigram:proxigram",
    "liprobe.spatial.proxigram:radial_proxigram",
    "liprobe.spatial.neighbours:nearest_neighbours",
    "liprobe.spatial.neighbours:neighbour_composition",
    "liprobe.spatial.clusters:find_clusters", "liprobe.spatial.rdf:pair_correlation",
    "liprobe.spatial.map2d:composition_map", "liprobe.simulate.engine:simulate",
    "liprobe.study.engine:run_study",
)

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for name in MODULES:
        module = importlib.import_module(name)
        tests.extend(t for t in finder.find(module, name) if t.examples)
    return sorted(tests, key=lambda t: t.name)


DOCTESTS = _doctests()


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_examples(test, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    runner.run(test, out=report.append, clear_globs=True)
    assert runner.failures == 0, "".join(report)


@pytest.mark.parametrize("target", ENTRY_POINTS)
def test_entry_points_have_examples(target):
    module, name = target.split(":")
    doc = getattr(importlib.import_module(module), name).__doc__ or ""
    assert "\n    Examples\n    --------\n" in doc and ">>> " in doc, \
        f"{target} has no Examples section"


@pytest.mark.parametrize("module", MODULES)
def test_listed_modules_have_examples(module):
    assert any(t.name.startswith(module + ".") for t in DOCTESTS), \
        f"{module} is listed but none of its docstrings has an example"
