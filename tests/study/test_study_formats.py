"""The study's table in pandas and Parquet (units, descriptions), and ``liprobe study --nexus``."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import liprobe
from liprobe.cli import cli
from liprobe.study.columns import column_info
from liprobe.study.manifest import ManifestError, load_manifest

from .conftest import RUNS


def test_parquet_schema_keeps_each_columns_unit_and_description(inprocess_result):
    schema = pq.read_schema(inprocess_result.paths["runs_parquet"])
    assert schema.names == inprocess_result.columns
    fields = {f.name: f.metadata for f in schema}
    assert fields["at_pct_Li"][b"unit"] == b"at.%"
    assert fields["laser_pj"][b"unit"] == b"pJ"
    assert fields["coating_thickness_nm"][b"unit"] == b"nm"
    assert fields["Li/(Li+Ni+Co+Mn)_err"][b"description"].startswith(
        b"one standard deviation of Li/(Li+Ni+Co+Mn): ratio")
    assert fields["fda_mu_Li+"][b"description"] == b"frequency distribution mu of Li+ (ROI)"
    every = json.loads(schema.metadata[b"liprobe.columns"])
    assert list(every) == inprocess_result.columns
    undescribed = [c for c in every if not every[c]["description"]]
    assert undescribed == [], f"describe {undescribed} in liprobe/study/columns.py"
    # pandas still reads the table as before
    df = inprocess_result.to_dataframe()
    assert df.equals(inprocess_result.table)
    assert df.attrs["units"]["at_pct_O"] == "at.%"
    assert df.attrs["descriptions"]["ions"] == column_info("ions")[1]


def test_study_nexus_writes_one_file_per_run_beside_the_table(study_dir, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["study", str(study_dir / "study.toml"), "-o", str(out),
                                   "--workers", "0", "--nexus", "--json", "-q"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert sorted(summary["nexus"]) == sorted(RUNS)       # cr-10's two segments: one file
    for name in RUNS:
        path = out / f"{name}.nxs"
        assert summary["nexus"][name]["path"] == str(path)
        run = liprobe.read(study_dir / "runs" / f"{name}.epos")
        back = liprobe.read(path)
        for c in run.columns:
            np.testing.assert_array_equal(back[c], run[c], err_msg=f"{name} {c}")
        table = liprobe.read_ranges(study_dir / "runs" / f"{name}.rrng")
        assert [(r.lo, r.hi, r.ion) for r in liprobe.read_ranges(path)] == \
            [(r.lo, r.hi, r.ion) for r in table]
    with h5py.File(out / "mn-20.nxs", "r") as f:
        e = f["entry1"]
        assert e["experiment_alias"][()] == b"mn-20"
        assert e["sample/alias"][()] == b"NMC811"
        assert e["measurement/instrument/type"][()] == b"LEAP 5000 XS"
        assert e["measurement/event1/instrument/pulser/source1/pulse_energy"][()] == 20
        assert json.loads(e["liprobe/metadata"][()])["outcome"] == "complete"
    missing = [m["path"] for m in summary["nexus"]["mn-20"]["missing"]]
    assert "/entry1/start_time" in missing and "/entry1/specimen/is_simulation" in missing


def _si_manifest(tmp_path, real, runs: str):
    si = real / "apav_si"
    text = ('[study]\nname = "si"\n' + runs.format(epos=si / "Si_first100000.epos",
                                                    rrng=si / "Si.RRNG"))
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_study_nexus_exits_3_naming_the_runs_whose_file_was_not_written(real, tmp_path):
    # both runs are analysed; one's start_time has no time zone, so its NeXus file fails
    manifest = _si_manifest(tmp_path, real, (
        '[[runs]]\nname = "good"\ndata = "{epos}"\nranges = "{rrng}"\n'
        '[[runs]]\nname = "bad-time"\ndata = "{epos}"\nranges = "{rrng}"\n'
        'tags = {{ start_time = "2024-01-01T10:00" }}\n'))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["study", str(manifest), "-o", str(out), "--workers", "0",
                                   "--nexus", "--json", "-q"])
    assert res.exit_code == 3, res.output
    summary = json.loads(res.stdout)
    assert summary["failed"] == 0 and summary["exit_code"] == 3 and summary["partial"] is True
    assert "has no time zone" in summary["nexus"]["bad-time"]["error"]
    assert (out / "good.nxs").exists() and not (out / "bad-time.nxs").exists()
    assert "study: nexus bad-time:" in res.stderr
    assert res.stderr.strip().splitlines()[-1] == (
        "liprobe: study partial: 1 of 2 NeXus files not written (bad-time: see 'study: nexus' "
        "above) (exit code 3)")


@pytest.mark.parametrize("name", ["../escaped", "sub/run", "a\\\\b", ".."])
def test_a_run_name_that_is_a_path_is_refused_by_the_manifest(name, real, tmp_path):
    manifest = _si_manifest(tmp_path, real, (
        f'[[runs]]\nname = "{name}"\ndata = "{{epos}}"\nranges = "{{rrng}}"\n'))
    with pytest.raises(ManifestError, match=r"line 4: key runs\[0\]\.name: run name '.*' "):
        load_manifest(manifest)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["study", str(manifest), "-o", str(out), "--workers", "0",
                                   "--nexus"])
    assert res.exit_code == 1 and res.stdout == "" and res.stderr.count("\n") == 1
    assert not (tmp_path / "escaped.nxs").exists() and not out.exists()


def test_the_nexus_export_itself_writes_nothing_outside_the_output_folder(real, tmp_path):
    from dataclasses import replace

    from liprobe.study.nexus import export_nexus

    manifest = load_manifest(_si_manifest(tmp_path, real, (
        '[[runs]]\nname = "ok"\ndata = "{epos}"\nranges = "{rrng}"\n')))
    bad = replace(manifest, runs=(replace(manifest.runs[0], run="../escaped"),))
    (tmp_path / "out").mkdir()
    result = export_nexus(bad, tmp_path / "out")
    assert "run name '../escaped' has a path separator" in result["../escaped"]["error"]
    assert sorted(os.listdir(tmp_path)) == ["out", "study.toml"]
    assert os.listdir(tmp_path / "out") == []
