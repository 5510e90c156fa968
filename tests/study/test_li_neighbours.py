"""The study's Li clustering columns: what ``liprobe neighbours --composition`` prints,
and an excess where Li is bunched, none where it is random."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

import liprobe
from liprobe.cli import cli
from liprobe.study import analyse_run
from liprobe.study.analysis import LI_NEIGHBOURS

from .test_analysis import spec_for


def test_li_columns_equal_the_neighbours_command(study_dir):
    f, r = study_dir / "runs" / "cr-5.epos", study_dir / "runs" / "cr-5.rrng"
    spec, params = spec_for(study_dir, f'data = "{f}"\nranges = "{r}"\ncoating = "Cr"\n')
    res = analyse_run(spec, params)
    assert res["status"] == "ok", res["error"]
    v = res["values"]
    args = ["neighbours", str(f), "-r", str(r), "--from", "Li", "--k", "10", "--composition",
            "--roi", "cylinder:25", "--exclude", "Cr", "--json"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.stderr
    c = json.loads(out.stdout)["composition"]
    assert c["k"] == LI_NEIGHBOURS["k"] and c["slab_nm"] == LI_NEIGHBOURS["slab_nm"]
    assert c["max_centres"] == LI_NEIGHBOURS["max_centres"]
    assert v["li_knn_excess_pct"] == c["excess_pct"]
    assert v["li_knn_excess_pct_err"] == c["excess_err_pct"] > 0
    # the synthetic runs place Li at random in space: no excess over the slab shuffles
    assert abs(v["li_knn_excess_pct"]) < 4 * v["li_knn_excess_pct_err"]


def test_li_bunched_in_space_gives_an_excess_and_a_run_without_li_a_reason(study_dir, tmp_path):
    rng = np.random.default_rng(0)
    p = rng.uniform((-15, -15, -30), (15, 15, 0), (80_000, 3)).astype(np.float32)
    near = (np.hypot(p[:, 0] % 6 - 3, p[:, 1] % 6 - 3) < 1.5)       # Li-rich columns
    li = rng.random(len(p)) < np.where(near, 0.6, 0.2)
    mass = np.where(li, 7.016, 15.995).astype(np.float32)
    liprobe.write(tmp_path / "li.pos", liprobe.Run.from_arrays(x=p[:, 0], y=p[:, 1],
                                                                z=p[:, 2], mass=mass))
    r = study_dir / "runs" / "cr-5.rrng"
    spec, params = spec_for(study_dir, f'data = "{tmp_path / "li.pos"}"\nranges = "{r}"\n')
    v = analyse_run(spec, params)["values"]
    assert v["li_knn_excess_pct"] > 10 * v["li_knn_excess_pct_err"]
    liprobe.write(tmp_path / "o.pos", liprobe.Run.from_arrays(
        x=p[:, 0], y=p[:, 1], z=p[:, 2], mass=np.full(len(p), 15.995, np.float32)))
    spec, params = spec_for(study_dir, f'data = "{tmp_path / "o.pos"}"\nranges = "{r}"\n')
    res = analyse_run(spec, params)
    assert res["values"]["li_knn_excess_pct"] is None
    assert "Li" in res["reasons"]["li_knn_excess_pct"]


def test_a_roi_above_the_bound_is_measured_on_its_middle(study_dir, monkeypatch):
    """Above LI_NEIGHBOURS_MAX_IONS ROI ions the group measures the ROI's middle that many
    consecutive ions (bounded memory): the same numbers as the neighbours analysis of
    exactly those ions."""
    from liprobe.spatial.neighbours import neighbour_composition
    from liprobe.spatial.roi import select
    from liprobe.study import analysis

    f, r = study_dir / "runs" / "cr-5.epos", study_dir / "runs" / "cr-5.rrng"
    spec, params = spec_for(study_dir, f'data = "{f}"\nranges = "{r}"\ncoating = "Cr"\n')
    cap = 8_000
    monkeypatch.setattr(analysis, "LI_NEIGHBOURS_MAX_IONS", cap)
    res = analyse_run(spec, params)
    assert res["status"] == "ok", res["error"]
    run, table = liprobe.read(f), liprobe.read_ranges(r)
    roi, _ = select(run, "cylinder:25", None, table)
    assert roi.n_ions > cap
    start = (roi.n_ions - cap) // 2
    mid = roi.select(slice(start, start + cap))
    want = neighbour_composition(mid, table, exclude=params.exclude, **LI_NEIGHBOURS)
    assert res["values"]["li_knn_excess_pct"] == want.excess_pct
    assert res["values"]["li_knn_excess_pct_err"] == want.excess_err_pct
    assert want.ions_counted <= cap
