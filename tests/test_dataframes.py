"""pandas at the API boundary, short reprs, AP Suite aliases, and ``liprobe.composition``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import liprobe
from liprobe import Range, RangeTable, parse_ion
from liprobe.errors import ColumnError


@pytest.fixture(scope="module")
def si_apt(real):
    return liprobe.read(real / "apav_si" / "Si.apt")


@pytest.fixture(scope="module")
def si_pos_numpy(real):
    return np.fromfile(real / "apav_si" / "Si.pos", dtype=">f4").reshape(-1, 4)


def test_ap_suite_section_names_are_aliases_except_colliding_ones(si_apt):
    assert si_apt["Mass"] is si_apt["mass"]
    assert si_apt["XDet_mm"] is si_apt["det_x"] and si_apt["YDet_mm"] is si_apt["det_y"]
    assert si_apt["Multiplicity"] is si_apt["multiplicity"]
    assert "Mass" in si_apt and "Voltage" not in si_apt
    assert si_apt.source("Mass") is si_apt.source("mass")
    assert next(si_apt.chunks("Mass", 10))[1].tolist() == si_apt["mass"][:10].tolist()
    # the error names what was typed, and the column it stands for
    for call in (lambda: si_apt["Voltage"], lambda: si_apt.source("Voltage"),
                 lambda: next(si_apt.chunks("Voltage")),
                 lambda: si_apt.to_dataframe(columns=["Voltage"])):
        with pytest.raises(ColumnError, match=r"column 'Voltage' \(AP Suite's name of 'v_dc'\) "
                                              "is not in this apt file"):
            call()
    # a real column of that name wins over the alias; "z" is the coordinate
    run = liprobe.Run.from_arrays(mass=[1.0], Mass=[2.0], z=[-3.0], apt_z=np.int64([7]))
    assert run["Mass"].tolist() == [2.0] and run["z"].tolist() == [-3.0]


def test_run_repr_is_short_with_units(si_apt):
    text = repr(si_apt)
    assert text == ("<Run from Si.apt: 945,211 ions; tofc (ns), mass (Da), det_x (mm), "
                    "det_y (mm), multiplicity, x (nm), y (nm), z (nm)>")


def test_run_to_dataframe_whole_roi_and_sample(real, si_pos_numpy):
    run = liprobe.read(real / "apav_si" / "Si.pos")
    df = run.to_dataframe()
    assert list(df.columns) == ["x", "y", "z", "mass"] and len(df) == 945_211
    np.testing.assert_array_equal(df["mass"].to_numpy(), si_pos_numpy[:, 3])
    assert df.attrs["units"] == {"x": "nm", "y": "nm", "z": "nm", "mass": "Da"}

    mask = (si_pos_numpy[:, 3] > 27.5) & (si_pos_numpy[:, 3] < 28.5)
    sub = run.to_dataframe(columns=["Mass", "z"], roi=mask, chunk_ions=50_000)
    assert list(sub.columns) == ["mass", "z"]
    np.testing.assert_array_equal(sub.index.to_numpy(), np.flatnonzero(mask))
    np.testing.assert_array_equal(sub["z"].to_numpy(), si_pos_numpy[mask, 2])

    seg = run.to_dataframe(columns=["x"], roi=slice(10, 20, 3))
    assert seg.index.tolist() == [10, 13, 16, 19]
    np.testing.assert_array_equal(seg["x"].to_numpy(), si_pos_numpy[10:20:3, 0])

    s1 = run.to_dataframe(sample=1000, seed=4, chunk_ions=65_536)
    s2 = run.to_dataframe(sample=1000, seed=4)
    assert len(s1) == 1000 and s1.index.is_monotonic_increasing and s1.index.is_unique
    pd.testing.assert_frame_equal(s1, s2)
    np.testing.assert_array_equal(s1.to_numpy(), si_pos_numpy[s1.index.to_numpy()])
    part = run.to_dataframe(roi=mask, sample=10, seed=1)
    assert mask[part.index.to_numpy()].all() and len(part) == 10
    assert len(run.to_dataframe(roi=[5, 2], columns=["mass"])) == 2
    with pytest.raises(ColumnError):
        run.to_dataframe(columns=["tof"])


def test_range_table_repr_and_dataframe(real):
    table = liprobe.read_ranges(real / "apav_si" / "Si.RRNG")
    assert repr(table) == ("<RangeTable from Si.RRNG: 25 windows, 5.896 to 86.555 Da; ions C++, "
                           "C+, Si++, O+, Cr++, Si+, ... (13 ions)>")
    df = table.to_dataframe()
    assert len(df) == 25 and df["lo_Da"].is_monotonic_increasing
    row = df[df["ion"] == "CrO2+"].iloc[0]
    assert (row["charge"], row["atoms"], row["formula"]) == (1, 3, "CrO2")
    assert df["volume_nm3"].notna().all()
    assert df["color"].tolist() == [r.color for r in table]


def test_composition_is_a_function_at_the_package_root_and_a_module(real, si_pos_numpy):
    import importlib

    import liprobe.composition as module
    from liprobe.composition import composition

    assert callable(liprobe.composition) and liprobe.composition is module
    assert importlib.import_module("liprobe.composition") is module
    table = liprobe.read_ranges(real / "apav_si" / "Si.RRNG")
    c = liprobe.composition(liprobe.read(real / "apav_si" / "Si.pos"), table, ratios=["Si++/Si+"])
    assert c.to_dict() == composition(si_pos_numpy[:, 3].astype(np.float32), table,
                                      ratios=["Si++/Si+"]).to_dict()
    # counted by hand: ions in each window, atoms per element
    mass = si_pos_numpy[:, 3].astype(np.float64)
    atoms = {}
    for r in table:
        k = int(((mass >= r.lo) & (mass < r.hi)).sum())
        for el, n in r.ion.atoms:
            atoms[el] = atoms.get(el, 0) + n * k
    df = c.to_dataframe()
    assert df["atoms"].to_dict() == atoms
    total = sum(atoms.values())
    np.testing.assert_allclose(df["at_pct"].to_numpy(),
                               [100 * atoms[el] / total for el in df.index])
    assert repr(c).startswith("<Composition: 877,010 of 945,211 ions ranged; at.% Si 74.7, ")
    assert repr(c).endswith("; ratios Si++/Si+>")


def test_frequency_distribution_dataframe_and_repr():
    table = RangeTable.from_ranges([Range(6.9, 7.2, parse_ion("Li+")),
                                    Range(15.9, 16.2, parse_ion("O+"))])
    rng = np.random.default_rng(0)
    mass = np.where(rng.random(20_000) < 0.3, 7.0, 16.0).astype(np.float32)
    fd = liprobe.frequency_distribution(mass, table, "Li+", 50, shuffles=0)
    df = fd.to_dataframe()
    assert df.index.tolist() == list(range(51))
    k = (mass == 7.0).reshape(-1, 50).sum(axis=1)
    assert df["observed"].tolist() == np.bincount(k, minlength=51).tolist()
    assert df["expected"].sum() == pytest.approx(400)
    assert (df["chi2_class"] >= 0).all()
    assert repr(fd).startswith("<FrequencyDistribution of Li+: 400 blocks of 50 ions")
    assert len(repr(fd)) < 200


_COMPOSITION_PICKLE = """
import pickle, sys
import numpy as np
{first}
import liprobe
from liprobe import Range, RangeTable, parse_ion
f = liprobe.composition
import liprobe.composition as module
from liprobe.composition import composition
assert f is module and liprobe.composition is module, (f, module)
back = pickle.loads(pickle.dumps(liprobe.composition))
assert back is module
table = RangeTable.from_ranges([Range(6.9, 7.2, parse_ion("Li+")),
                                Range(15.9, 16.2, parse_ion("O+"))])
mass = np.array([7.0, 7.1, 16.0, 30.0])
assert back(mass, table).to_dict() == composition(mass, table).to_dict()
print("ok")
"""


@pytest.mark.parametrize("first", ["", "import liprobe.composition"])
def test_composition_pickles_by_name_whichever_is_imported_first(first):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", _COMPOSITION_PICKLE.format(first=first)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


@pytest.mark.slow
def test_composition_runs_in_worker_processes():
    import multiprocessing
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    import cloudpickle

    table = RangeTable.from_ranges([Range(6.9, 7.2, parse_ion("Li+")),
                                    Range(15.9, 16.2, parse_ion("O+"))])
    mass = np.array([7.0, 7.1, 16.0, 30.0])
    assert cloudpickle.loads(cloudpickle.dumps(liprobe.composition)) is liprobe.composition
    assert pickle.loads(pickle.dumps(liprobe.composition)) is liprobe.composition
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        c = pool.submit(liprobe.composition, mass, table).result(timeout=120)
    # 2 Li+, 1 O+ and 1 unranged ion, counted by hand
    assert c.ion_counts == {"Li+": 2, "O+": 1} and c.ions_total == 4


def test_to_dataframe_refuses_float_rois_and_a_column_given_twice(real):
    run = liprobe.read(real / "apav_si" / "Si.pos")
    with pytest.raises(ValueError, match="integer ion indices, not float64 values"):
        run.to_dataframe(roi=np.array([0.7, 2.9]))       # was silently ions 0 and 2
    with pytest.raises(ValueError, match="columns 'mass' and 'Mass' are the same column 'mass'"):
        run.to_dataframe(columns=["mass", "Mass"])
    assert run.to_dataframe(columns=["x"], roi=np.array([], dtype=float)).empty


def test_whole_run_to_dataframe_is_not_also_kept_in_the_runs_cache(real, si_pos_numpy):
    run = liprobe.read(real / "apav_si" / "Si.pos")
    df = run.to_dataframe()
    assert run._cache == {}               # each column once, in the DataFrame
    np.testing.assert_array_equal(df["z"].to_numpy(), si_pos_numpy[:, 2])
    df.loc[0, "x"] = 1e6                  # the DataFrame is the user's, the run unchanged
    assert run["x"][0] == si_pos_numpy[0, 0]
    mass = np.array([7.0, 16.0])
    mine = liprobe.Run.from_arrays(mass=mass).to_dataframe()
    mine.loc[0, "mass"] = 1.0
    assert mass.tolist() == [7.0, 16.0]
