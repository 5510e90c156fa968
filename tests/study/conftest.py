"""A small synthetic study shared by the study tests (written once per session)."""

from __future__ import annotations

import textwrap

import pytest

from .synth import write_run

STUDY_HEAD = """\
[study]
name = "synthetic"
roi = "cylinder:25"
exclude = ["Cr"]
ratios = ["Li/(Li+Ni+Co+Mn)", "Ni/(Ni+Co+Mn)", "O/(Li+O+Ni+Co+Mn)"]
field_proxies = ["O2+/O+", "Mn++/Mn+"]
fda = { species = ["Li+"], block = 100, shuffles = 10 }
detector = { species = "Li+" }
reference_peaks = ["O2+"]

[materials.NMC811]
formula = "LiNi0.8Co0.1Mn0.1O2"

[materials.LiMn2O4]
formula = "LiMn2O4"
"""

#: name -> (synthetic parameters, manifest lines); the truth of the flags is in TRUTH.
RUNS = {
    "cr-5": (dict(coated=True, o2_ratio=2.0, seed=1), 'coating = "Cr"\nlaser_pj = 5'),
    "cr-10": (dict(coated=True, o2_ratio=2.6, seed=2),
              'coating = "Cr"\nlaser_pj = 10\n'
              'segments = [{ start = 0, stop = 30000, laser_pj = 10 },\n'
              '            { start = 30000, laser_pj = 12, name = "late" }]'),
    "cr-15": (dict(coated=True, o2_ratio=3.0, seed=3), 'coating = "Cr"\nlaser_pj = 15'),
    "cr-20": (dict(coated=True, o2_ratio=3.5, seed=4), 'coating = "Cr"\nlaser_pj = 20'),
    "none-5": (dict(coated=False, delithiated=True, seed=5), 'coating = "none"\nlaser_pj = 5'),
    "none-10": (dict(coated=False, delithiated=True, fracture=True, seed=6),
                'coating = "none"\nlaser_pj = 10'),
    "mn-20": (dict(coated=True, phase="LiMn2O4", seed=7),
              'coating = "Cr"\nlaser_pj = 20\ntags = { outcome = "complete" }'),
}

#: Flags each row must carry (and no other) against the planted truth.
TRUTH = {
    "cr-5": set(), "cr-10": set(), "cr-15": set(), "cr-20": set(),
    "none-5": {"delithiated"},
    "none-10": {"delithiated", "early_fracture"},
    "mn-20": {"other_phase", "off_stoichiometric"},
}


def run_entry(name, extra, data=None, ranges=None):
    data = data or f"runs/{name}.epos"
    ranges = ranges or f"runs/{name}.rrng"
    return (f'\n[[runs]]\nname = "{name}"\ndata = "{data}"\nranges = "{ranges}"\n'
            f'material = "NMC811"\ninstrument = "LEAP 5000 XS"\n{extra}\n')


def manifest_text(runs=RUNS, head=STUDY_HEAD, extra_runs=""):
    return head + "".join(run_entry(n, e) for n, (_, e) in runs.items()) + \
        textwrap.dedent(extra_runs)


@pytest.fixture(scope="session")
def study_dir(tmp_path_factory):
    """A folder with runs/*.epos, runs/*.rrng and study.toml."""
    d = tmp_path_factory.mktemp("study")
    for name, (kw, _) in RUNS.items():
        write_run(d / "runs", name, **kw)
    (d / "study.toml").write_text(manifest_text())
    return d


@pytest.fixture(scope="session")
def default_result(study_dir, tmp_path_factory):
    """The study run as `liprobe study` runs it by default (a local Dask cluster)."""
    from liprobe.study import run_study

    return run_study(study_dir / "study.toml", tmp_path_factory.mktemp("out-default"))


@pytest.fixture(scope="session")
def inprocess_result(study_dir, tmp_path_factory):
    from liprobe.study import run_study

    return run_study(study_dir / "study.toml", tmp_path_factory.mktemp("out-inproc"), workers=0)
