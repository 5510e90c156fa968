"""The per-run task and its registry of column groups; the cache's atomic records."""

from __future__ import annotations

import json
import os
import pickle

import pytest

import liprobe
from liprobe.io._files import atomic_write
from liprobe.study import GROUPS, analyse_run, column_group, parse_manifest, registry_signature
from liprobe.study.cache import Cache

from .conftest import STUDY_HEAD


def spec_for(study_dir, entry):
    text = STUDY_HEAD + "\n[[runs]]\n" + entry
    m = parse_manifest(text, str(study_dir / "study.toml"))
    return m.runs[0], m.params


def test_a_pos_file_gives_none_with_reasons_where_columns_are_missing(study_dir, tmp_path):
    run = liprobe.read(study_dir / "runs" / "cr-5.epos")
    liprobe.write(tmp_path / "cr-5.pos", run)
    spec, params = spec_for(study_dir, f'data = "{tmp_path / "cr-5.pos"}"\n'
                                       'ranges = "runs/cr-5.rrng"\ncoating = "Cr"\n')
    res = analyse_run(spec, params)
    assert res["status"] == "ok" and res["error"] is None
    v, why = res["values"], res["reasons"]
    assert v["format"] == "pos" and v["at_pct_Li"] > 0 and v["fda_mu_Li+"] is not None
    assert "detector_heterogeneity" not in v and "det_x" in why["detector"]
    assert v["abrupt_end"] is None and "multiplicity" in why["abrupt_end"]
    assert "tail_ns_O2+" in v                     # no tof: the peak is there, its tail is not
    # plain JSON, no NaN
    json.dumps(res, allow_nan=False)
    assert set(res["timings_s"]) >= {"read_select", "composition", "fda", "total"}


def test_the_task_and_its_arguments_pickle(study_dir):
    spec, params = spec_for(study_dir, 'data = "runs/cr-5.epos"\nranges = "runs/cr-5.rrng"\n')
    f, s, p = pickle.loads(pickle.dumps((analyse_run, spec, params)))
    assert f is analyse_run and s == spec and p == params


def test_autorange_ranges_as_the_autorange_command_does(study_dir, tmp_path):
    pytest.importorskip("liprobe.spectrum.autorange")
    from click.testing import CliRunner

    from liprobe.cli import cli

    f = study_dir / "runs" / "cr-5.epos"
    spec, params = spec_for(study_dir, f'data = "{f}"\n'
                                       'autorange = ["Li", "Ni", "Co", "Mn", "O", "Cr"]\n')
    res = analyse_run(spec, params)
    assert res["status"] == "ok", res["error"]
    rrng = tmp_path / "auto.rrng"
    r = CliRunner().invoke(cli, ["autorange", str(f), "--elements", "Li,Ni,Co,Mn,O,Cr",
                                 "-o", str(rrng)])
    assert r.exit_code == 0, r.stderr
    r = CliRunner().invoke(cli, ["composition", str(f), "-r", str(rrng), "--roi", "cylinder:25",
                                 "--exclude", "Cr", "--json"])
    comp = json.loads(r.stdout)
    for el, v in comp["atomic_percent"].items():
        assert res["values"][f"at_pct_{el}"] == v


def test_a_new_group_adds_columns_and_changes_the_cache_key(study_dir):
    before = registry_signature()

    @column_group("probe_test", version="7")
    def _probe(ctx):
        return {"probe_ions": ctx.roi.n_ions}, {}

    try:
        assert registry_signature() == dict(before, probe_test="7")
        spec, params = spec_for(study_dir, 'data = "runs/cr-5.epos"\nranges = "runs/cr-5.rrng"\n')
        res = analyse_run(spec, params)
        assert res["values"]["probe_ions"] == res["values"]["ions_roi"]
    finally:
        GROUPS[:] = [g for g in GROUPS if g.name != "probe_test"]
    assert registry_signature() == before


def test_a_bug_in_one_group_fails_the_run_but_keeps_the_others(study_dir):
    @column_group("broken_test")
    def _broken(ctx):
        raise ZeroDivisionError("oops")

    try:
        spec, params = spec_for(study_dir, 'data = "runs/cr-5.epos"\nranges = "runs/cr-5.rrng"\n')
        res = analyse_run(spec, params)
    finally:
        GROUPS[:] = [g for g in GROUPS if g.name != "broken_test"]
    assert res["status"] == "failed"
    assert res["error"] == "broken_test: ZeroDivisionError: oops"
    assert res["values"]["at_pct_Li"] > 0


def test_an_interrupted_atomic_write_leaves_the_old_file_and_no_temp(tmp_path):
    c = Cache(str(tmp_path))
    inputs = {"data": "ab" * 32}
    key = c.key(inputs, {})
    result = {"status": "ok", "error": None, "values": {"ions": 1}}
    p = c.store({"key": key, "run": "r", "inputs": {"data": {"path": "d", "blake2b": "ab" * 32}},
                 "params": {}, "finished": "2026-01-01", "result": result})
    old = open(p).read()

    with pytest.raises(KeyboardInterrupt):
        with atomic_write(p, "w") as f:
            f.write(f'{{"key": "{key}", "res')           # half-written
            raise KeyboardInterrupt
    assert open(p).read() == old
    assert sorted(os.listdir(tmp_path / "cache")) == [f"{key}.json"]
    assert c.load(key)["result"] == result
    assert c.load("k2") is None


def test_file_hashes_are_remembered_until_the_file_changes(tmp_path):
    import hashlib

    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    c = Cache(str(tmp_path / "out"))
    d1 = c.digest(str(f))
    assert d1 == hashlib.blake2b(b"abc", digest_size=32).hexdigest()
    assert c.digest(str(f)) == d1
    f.write_bytes(b"abd")
    assert c.digest(str(f)) != d1


def test_fda_of_a_segment_with_too_few_blocks_is_null_with_a_reason(study_dir):
    # 1,500 ions: after the ROI and the excluded Cr, too few blocks of 100 for the
    # chi-square classes to leave a degree of freedom (mu was 0 or 2e-17 before)
    spec, params = spec_for(study_dir, 'data = "runs/cr-5.epos"\nranges = "runs/cr-5.rrng"\n'
                                       'coating = "Cr"\n'
                                       'segments = [{ start = 0, stop = 1500 }]\n')
    res = analyse_run(spec, params)
    assert res["status"] == "ok", res["error"]
    v, why = res["values"], res["reasons"]
    assert v["fda_mu_Li+"] is None and v["fda_mu_shuffled_Li+"] is None
    assert "blocks" in why["fda_mu_Li+"] and "degree of freedom" in why["fda_mu_Li+"]
