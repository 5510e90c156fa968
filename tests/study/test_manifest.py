"""The study manifest: keys, defaults, paths, and errors that name the line and the key."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from liprobe.study import ManifestError, load_manifest, parse_manifest
from liprobe.study._tomlpos import key_lines

REPO = Path(__file__).resolve().parents[2]


def test_key_lines_finds_headers_keys_inline_tables_and_array_elements():
    text = (
        '# comment with = and [brackets]\n'            # 1
        '[study]\n'                                     # 2
        'name = "a # not a comment"\n'                  # 3
        "fda = { species = ['Li+', \"O2+\"], block = 100 }\n"  # 4
        '\n'                                            # 5
        'flags.delithiated_z = 4\n'                     # 6
        '\n'                                            # 7
        '[[runs]]\n'                                    # 8
        'data = """multi\n'                             # 9
        'line = 3"""\n'                                 # 10
        '[[runs]]\n'                                    # 11
        '"quoted key" = 1\n'                            # 12
        'segments = [\n'                                # 13
        '  { start = 0, stop = 10 },\n'                 # 14
        '  { start = 10 },  # tail\n'                   # 15
        ']\n'                                           # 16
        '[runs.tags]\n'                                 # 17
        'outcome = "complete"\n'                        # 18
    )
    lines = key_lines(text)
    assert lines[("study",)] == 2
    assert lines[("study", "name")] == 3
    assert lines[("study", "fda", "species", 1)] == 4
    assert lines[("study", "fda", "block")] == 4
    assert lines[("study", "flags", "delithiated_z")] == 6
    assert lines[("runs", 0)] == 8 and lines[("runs", 0, "data")] == 9
    assert ("runs", 0, "line") not in lines        # inside a string
    assert lines[("runs", 1)] == 11
    assert lines[("runs", 1, "quoted key")] == 12
    assert lines[("runs", 1, "segments", 0, "stop")] == 14
    assert lines[("runs", 1, "segments", 1, "start")] == 15
    assert lines[("runs", 1, "tags", "outcome")] == 18


def test_the_example_manifest_documents_a_valid_study():
    m = load_manifest(REPO / "examples" / "study.toml")
    assert m.name == "NMC811, in-situ Cr coating"
    assert m.params.roi == "cylinder:25" and m.params.exclude == ("Cr",)
    assert m.params.fda.species == ("Li+", "O2+") and m.params.fda.block == 100
    assert m.params.detector.species == "Li+"
    assert m.params.reference_peaks == ("Li+", "O+", "O2+", "Ni++")
    assert m.rules.delithiated_z == 5.0
    assert [r.label for r in m.runs] == ["nmc811-cr-p1-10pj", "nmc811-cr-p1-segments[0]",
                                         "nmc811-cr-p1-segments[1]", "nmc811-none-p2-5pj",
                                         "mn-rich-p3-20pj"]
    assert all(r.problem is None for r in m.runs)
    seg = m.runs[1]
    assert (seg.start, seg.stop, seg.roi) == (0, 400000, "core:3")
    assert seg.meta()["laser_pj"] == 5.0 and seg.meta()["segment_name"] == "5 pJ"
    assert m.runs[2].stop is None and m.runs[2].meta()["laser_pj"] == 10.0
    assert m.runs[3].autorange == ("Li", "Ni", "Co", "Mn", "O") and m.runs[3].ranges is None
    assert m.runs[3].meta()["tag_outcome"] == "fractured"
    # paths are relative to the manifest
    assert m.runs[0].data == os.path.join(REPO, "examples", "runs", "nmc811-cr-p1-10pj.epos")
    # every documented key is parsed: the [study] section names each one
    text = (REPO / "examples" / "study.toml").read_text()
    from dataclasses import fields

    from liprobe.study.manifest import (
        _RUN_KEYS,
        _SEGMENT_KEYS,
        _STUDY_KEYS,
        CoatingProfileConfig,
        DetectorConfig,
        FdaConfig,
        FlagRules,
    )
    nested = tuple(f.name for c in (FlagRules, FdaConfig, DetectorConfig, CoatingProfileConfig)
                   for f in fields(c))
    for k in _STUDY_KEYS + _RUN_KEYS + _SEGMENT_KEYS + nested:
        assert f"{k} =" in text or f"[study.{k}]" in text, k
    assert m.params.detector.core == 0.4


def test_specs_and_params_pickle():
    m = load_manifest(REPO / "examples" / "study.toml")
    assert pickle.loads(pickle.dumps(m.runs[1])) == m.runs[1]
    assert pickle.loads(pickle.dumps(m.params)) == m.params


def test_defaults():
    m = parse_manifest('[[runs]]\ndata = "r/a.epos"\nranges = "r/a.rrng"\n', "/x/s.toml")
    r = m.runs[0]
    assert r.run == "a" and r.coating == "none" and r.roi == "cylinder:25"
    assert r.data == "/x/r/a.epos" and m.name == "s"
    assert m.params.field_proxies == ("O2+/O+",) and m.params.fda.species == ()
    assert set(m.materials) >= {"NMC811", "LiMn2O4"}       # built in


@pytest.mark.parametrize("entry,line,message", [
    ('data = "a.epos"\nranges = "a.rrng"\nlazer_pj = 5', 5, "key runs[0].lazer_pj: unknown key"),
    ('data = "a.epos"', 2, "needs exactly one of ranges"),
    ('data = "a.epos"\nranges = "a.rrng"\nlaser_pj = "ten"', 5,
     "key runs[0].laser_pj: must be a number, not a string"),
    ('data = "a.epos"\nranges = "a.rrng"\nmaterial = "NMC622"', 5,
     "unknown material 'NMC622' (declare it as [materials.NMC622]"),
    ('data = "a.epos"\nranges = "a.rrng"\ncoating = "Xx"', 5, "'Xx' is not a chemical element"),
    ('data = "a.epos"\nranges = "a.rrng"\nroi = "cube:3"', 5, "unknown ROI kind 'cube'"),
    ('data = "a.epos"\nranges = "a.rrng"\nsegments = [{ start = 5, stop = 2 }]', 5,
     "key runs[0].segments[0].stop: must be greater than start (5)"),
    ('data = "a.epos"\nranges = "a.rrng"\nsegments = [{ start = 0 },\n  { begin = 2 }]', 6,
     "key runs[0].segments[1].begin: unknown key"),
    ('data = "a.epos"\nranges = "a.rrng"\ntags = { outcome = "exploded" }', 5,
     "'exploded' is not an outcome"),
    ('data = "a.epos"\nranges = "a.rrng"\nautorange = ["Li"]', 2, "needs exactly one of"),
])
def test_a_bad_run_entry_fails_that_run_naming_line_and_key(entry, line, message):
    text = (f'[study]\n[[runs]]\n{entry}\n[[runs]]\nname = "good"\ndata = "b.epos"\n'
            'ranges = "b.rrng"\n')
    m = parse_manifest(text, "/x/study.toml")
    bad, good = m.runs
    assert good.problem is None and good.run == "good"
    assert bad.problem is not None and bad.problem.startswith(f"line {line}: "), bad.problem
    assert message in bad.problem, bad.problem


def test_toml_syntax_error_names_the_line(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[study]\nname = "x"\n\nratios = ["a",\n"b" "c"]\n')
    with pytest.raises(ManifestError) as e:
        load_manifest(p)
    assert str(e.value).startswith(f"{p}: line 5: not valid TOML")


def test_a_missing_manifest_is_a_manifest_error(tmp_path):
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        load_manifest(tmp_path / "nope.toml")


@given(st.text(alphabet='[]{}=,."\'#\n abc1', max_size=60))
def test_key_lines_always_terminates(text):
    assert isinstance(key_lines(text), dict)
