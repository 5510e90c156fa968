"""The demo's series is ranged as an analyst would (issue 19), and what that costs.

The session's small demo (conftest: the paper preset at 3e4 ions per coated
run, seed 0) is analysed with range files autoranged on spectra pooled per
listed material (``liprobe.simulate.analyst_ranges``), never with the
simulator's truth-derived ones. Here each run's composition ratios under its
pooled ranges are compared with those under its truth-derived ranges
(``runs/NAME.truth.rrng``), on the same ions: the differences are the ranging's
bias, not counting noise.

Measured on this demo (seed 0; the runs' ions are the same in both tables):

- coated NMC811 (21 runs) and LiMn2O4 (6 runs): |bias| at most 0.0019 on
  Li/(Li+Ni+Co+Mn), 0.0013 on Ni/(Ni+Co+Mn), 0.0012 on O/(Li+O+Ni+Co+Mn),
  0.9 % of O2+/O+;
- uncoated NMC811 (5 runs): Li +0.0065 to +0.0082, Ni/(Ni+Co+Mn) +0.026 to
  +0.030 (the autorange ends the Co+ window at 59.4 Da, where the truth's runs
  on to the 60Ni+ peak: a fifth of Co's counts, in the long tail of uncoated
  runs, are left unranged), O +0.0018 to +0.0049, O2+/O+ at most 0.7 %;
- the Mn-rich particle (4 runs under the NMC811 ranges): Li -0.002 to -0.004;
  its Ni/(Ni+Co+Mn), 0 under its own truth, is 0.009 to 0.017 (background in
  the Ni and Co windows).

The bounds below are 2.5 times these (the simulator's physics is tuned issue
by issue, and each change moves them a little); they stay a tenth of the
story's own tolerances (a coated run's Li ratio within 0.05 of 0.5, O within
0.03: tests/report/test_story.py), so the story holds whichever ranges.
"""

from __future__ import annotations

import os
import tomllib

import pytest

from liprobe.simulate.analyst_ranges import preset_ranging_bias

LI, NI, OX, R = "Li/(Li+Ni+Co+Mn)", "Ni/(Ni+Co+Mn)", "O/(Li+O+Ni+Co+Mn)", "O2+/O+"


@pytest.fixture(scope="module")
def series(demo):
    return os.path.dirname(demo.manifest)


@pytest.fixture(scope="module")
def bias(series):
    return preset_ranging_bias(series)


def test_the_demo_analyses_no_run_with_truth_derived_ranges(series):
    with open(os.path.join(series, "study.toml"), "rb") as f:
        runs = tomllib.load(f)["runs"]
    for r in runs:
        assert r["ranges"].startswith("ranges/") and ".truth" not in r["ranges"], r
        assert os.path.isfile(os.path.join(series, r["ranges"]))
        assert os.path.isfile(os.path.join(series, "runs", r["name"] + ".truth.rrng"))


def _kind(name):
    if name.startswith("nmc811-none"):
        return "uncoated"
    if name.startswith("mnrich"):
        return "mn-rich"
    return "coated"                  # coated NMC811 (with the grain run) and LiMn2O4


def test_pooled_ranges_give_the_truth_ranges_compositions_within_the_measured_bias(bias):
    kinds = {}
    for name, b in bias.items():
        kind = _kind(name)
        kinds[kind] = kinds.get(kind, 0) + 1
        d, rel = b.bias, b.bias[R] / b.truth[R]
        assert abs(rel) < 0.025, (name, rel)
        if kind == "coated":
            assert abs(d[LI]) < 0.005 and abs(d[NI]) < 0.004 and abs(d[OX]) < 0.003, (name, d)
        elif kind == "uncoated":
            # the cut Co+ tail: Co undercounted, so Ni's and Li's shares rise
            assert 0 < d[LI] < 0.02 and 0 < d[NI] < 0.075 and abs(d[OX]) < 0.012, (name, d)
        else:
            assert b.truth[NI] == 0 and 0 <= b.analyst[NI] < 0.045, (name, b.analyst)
            assert abs(d[LI]) < 0.01 and abs(d[OX]) < 0.005, (name, d)
        # the pooled windows range about as many ions as the truth's (98 %)
        assert abs(b.ranged_fraction["analyst"] - b.ranged_fraction["truth"]) < 0.02, name
    assert kinds["uncoated"] >= 4 and kinds["mn-rich"] == 4 and kinds["coated"] >= 20
