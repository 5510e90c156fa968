"""Reading and writing .pos and .epos, checked against plain numpy, the
provenance values and ifes-apt-tc-data-modeling's readers."""

import os

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import liprobe
from liprobe.errors import FormatError
from liprobe.io.pos import EPOS_DTYPE, POS_DTYPE

SI_POS_N = 945_211


def raw(path, fields):
    """Independent reader: the file as big-endian records, in plain numpy."""
    return np.fromfile(path, dtype=np.dtype([(f, ">f4") for f in fields]))


def test_si_pos_counts_and_first_last_records(real):
    run = liprobe.read(real / "apav_si" / "Si.pos")
    assert run.format == "pos" and run.n_ions == SI_POS_N
    assert run.columns == ("x", "y", "z", "mass")
    first = [run[c][0] for c in ("x", "y", "z", "mass")]
    last = [run[c][-1] for c in ("x", "y", "z", "mass")]
    np.testing.assert_array_equal(np.float32(first),
                                  np.float32([-4.9054155, 5.7244563, -1.7161659, 6.554053]))
    np.testing.assert_array_equal(np.float32(last),
                                  np.float32([7.650087, -7.860504, -71.53192, 14.035252]))
    assert int((run["mass"] == 0).sum()) == 569
    assert run["mass"].mean(dtype=np.float64) == pytest.approx(22.4804, abs=1e-4)
    assert run["z"].min() == pytest.approx(-75.0807, abs=1e-4)


def test_si_pos_equals_plain_numpy_bit_for_bit(real):
    path = real / "apav_si" / "Si.pos"
    ref = raw(path, "xyzm")
    run = liprobe.read(path)
    for ours, theirs in (("x", "x"), ("y", "y"), ("z", "z"), ("mass", "m")):
        a = run[ours]
        assert a.dtype == np.float32 and a.dtype.isnative
        np.testing.assert_array_equal(a.view(np.uint32), ref[theirs].astype("<f4").view(np.uint32))


def test_si_epos_prefix_matches_pos_and_provenance(real):
    run = liprobe.read(real / "apav_si" / "Si_first100000.epos")
    pos = liprobe.read(real / "apav_si" / "Si.pos")
    assert run.format == "epos" and run.n_ions == 100_000
    for c in ("x", "y", "z", "mass"):
        np.testing.assert_array_equal(run[c], pos[c][:100_000])
    values, counts = np.unique(run["multiplicity"], return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist())) == {
        0: 2088, 1: 95966, 2: 1821, 3: 112, 4: 11, 5: 1, 7: 1}
    assert int(run["multiplicity"].sum()) == 100_000
    for c in ("tof", "v_dc", "v_pulse", "pulse_delta"):
        assert not run[c].any()
    assert run["det_x"].min() == pytest.approx(-13.57, abs=0.01)
    assert run["det_y"].max() == pytest.approx(12.96, abs=0.01)


def test_pos_and_epos_agree_with_ifes_reader(real):
    from ifes_apt_tc_data_modeling.epos.epos_reader import ReadEposFileFormat
    from ifes_apt_tc_data_modeling.pos.pos_reader import ReadPosFileFormat

    pos_path = str(real / "apav_si" / "Si.pos")
    ref = ReadPosFileFormat(pos_path)
    run = liprobe.read(pos_path)
    xyz = np.asarray(ref.get_reconstructed_positions().magnitude)
    m = np.asarray(ref.get_mass_to_charge_state_ratio().magnitude).ravel()
    assert len(m) == run.n_ions
    np.testing.assert_array_equal(np.stack([run["x"], run["y"], run["z"]], axis=1), xyz)
    np.testing.assert_array_equal(run["mass"], m)

    epos_path = str(real / "apav_si" / "Si_first100000.epos")
    ref = ReadEposFileFormat(epos_path)
    run = liprobe.read(epos_path)
    det = np.asarray(ref.get_hit_positions().magnitude)
    np.testing.assert_array_equal(np.stack([run["det_x"], run["det_y"]], axis=1), det)
    ipp = np.asarray(ref.get_ions_per_pulse().magnitude).ravel()
    np.testing.assert_array_equal(run["multiplicity"], ipp)


def test_opening_reads_nothing_until_a_column_is_asked_for(tmp_path):
    path = tmp_path / "a.pos"
    np.zeros(1000, POS_DTYPE).tofile(path)
    run = liprobe.read(path)
    src = run.source("mass")
    assert isinstance(src.base, np.memmap) or isinstance(src, np.memmap)
    assert not src.dtype.isnative  # still the file's big-endian bytes
    assert run["mass"].dtype.isnative
    assert not run["mass"].flags.writeable


def test_columns_a_format_lacks_raise_a_clear_error(real):
    run = liprobe.read(real / "apav_si" / "Si.pos")
    with pytest.raises(liprobe.ColumnError,
                       match=r"Si\.pos: column 'v_dc' is not in this pos file"):
        run["v_dc"]


def test_format_is_recognised_from_content_when_the_extension_lies(real, tmp_path):
    epos_as_pos = tmp_path / "really_epos.pos"
    epos_as_pos.write_bytes((real / "apav_si" / "Si_first100000.epos").read_bytes()[: 44 * 400])
    assert liprobe.detect_format(epos_as_pos) == "epos"
    no_ext = tmp_path / "si_data"
    no_ext.write_bytes((real / "apav_si" / "Si.pos").read_bytes()[: 16 * 1000])
    assert liprobe.detect_format(no_ext) == "pos"
    rrng_as_txt = tmp_path / "ranges.txt"
    rrng_as_txt.write_bytes((real / "apav_si" / "Si.RRNG").read_bytes())
    assert liprobe.detect_format(rrng_as_txt) == "rrng"
    assert liprobe.detect_format(real / "apav_si" / "Si.apt") == "apt"


finite_f32 = hnp.from_dtype(np.dtype(np.float32), allow_nan=False, allow_infinity=False)


@given(data=hnp.arrays(np.float32, st.tuples(st.integers(0, 300), st.just(4)), elements=finite_f32))
def test_pos_round_trip_is_bit_exact(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("rt") / "r.pos"
    run = liprobe.Run.from_arrays(x=data[:, 0], y=data[:, 1], z=data[:, 2], mass=data[:, 3])
    liprobe.write(path, run)
    assert os.path.getsize(path) == 16 * len(data)
    back = raw(path, "xyzm")
    for i, f in enumerate("xyzm"):
        np.testing.assert_array_equal(back[f].astype("<f4").view(np.uint32),
                                      data[:, i].view(np.uint32))
    if len(data):
        again = liprobe.read(path, format="pos")
        np.testing.assert_array_equal(again["mass"].view(np.uint32), data[:, 3].view(np.uint32))


@given(n=st.integers(1, 200), seed=st.integers(0, 2**32 - 1))
def test_epos_round_trip_is_bit_exact(tmp_path_factory, n, seed):
    rng = np.random.default_rng(seed)
    cols = {name: (rng.integers(-2**31, 2**31, n).astype(np.int32) if EPOS_DTYPE[name].kind == "i"
                   else rng.normal(0, 100, n).astype(np.float32)) for name in EPOS_DTYPE.names}
    cols["multiplicity"] = rng.integers(0, 5, n).astype(np.int32)
    cols["pulse_delta"] = rng.integers(0, 10**6, n).astype(np.int32)
    cols["mass"] = np.abs(cols["mass"])
    path = tmp_path_factory.mktemp("rt") / "r.epos"
    liprobe.write(path, liprobe.Run.from_arrays(**cols))
    back = liprobe.read(path)
    assert back.format == "epos" and back.n_ions == n
    for name, a in cols.items():
        np.testing.assert_array_equal(back[name].view(np.uint32), a.view(np.uint32))
    # and through a second write from the memory-mapped run
    path2 = path.with_name("r2.epos")
    liprobe.write(path2, back)
    assert path2.read_bytes() == path.read_bytes()


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "a.epos"
    path.write_bytes(b"old")
    run = liprobe.Run.from_arrays(x=np.zeros(3, np.float32), y=np.zeros(3, np.float32),
                                  z=np.zeros(3, np.float32), mass=np.ones(3, np.float32))
    with pytest.raises(FormatError,
                       match=r"a\.epos: cannot write \.epos: the run has no column 'tof'"):
        liprobe.write(path, run)
    assert path.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["a.epos"]


# -- bad input --------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(FormatError, match=r"nope\.pos: no such file"):
        liprobe.read(tmp_path / "nope.pos")


def test_empty_file(tmp_path):
    (tmp_path / "e.pos").write_bytes(b"")
    with pytest.raises(FormatError, match=r"e\.pos: file is empty"):
        liprobe.read(tmp_path / "e.pos")


@pytest.mark.parametrize("ext,rec", [("pos", 16), ("epos", 44)])
def test_truncated_file_names_the_byte_offset(real, tmp_path, ext, rec):
    src = real / "apav_si" / ("Si.pos" if ext == "pos" else "Si_first100000.epos")
    path = tmp_path / f"cut.{ext}"
    path.write_bytes(src.read_bytes()[: rec * 50 + 7])
    with pytest.raises(FormatError) as e:
        liprobe.read(path)
    msg = str(e.value)
    article = "an" if ext == "epos" else "a"
    assert f"cut.{ext}: byte {rec * 50}: truncated or not {article} {ext} file" in msg
    assert f"{rec * 50 + 7} bytes is not a whole number of {rec}-byte records" in msg
    assert "\n" not in msg


def test_non_finite_mass_names_ion_and_byte(tmp_path):
    rec = np.zeros(10, POS_DTYPE)
    rec["mass"] = 1.0
    rec["mass"][7] = np.nan
    path = tmp_path / "nan.pos"
    rec.tofile(path)
    run = liprobe.read(path, format="pos")
    with pytest.raises(FormatError, match=r"nan\.pos: ion 7 \(byte 124\): "
                                          r"mass of ion 7 is not a finite number"):
        run["mass"]
    with pytest.raises(FormatError, match=r"byte 124"):
        list(run.chunks("mass", 4))


def test_text_file_named_pos(tmp_path):
    path = tmp_path / "notes.pos"
    path.write_text("this is not atom probe data\n" * 10)
    with pytest.raises(FormatError,
                       match=r"notes\.pos: byte 0: is a text file, not a binary \.pos file"):
        liprobe.read(path)


def test_range_file_given_as_ion_file(real):
    with pytest.raises(FormatError, match=r"Si\.RRNG: is a \.rrng range file, not an ion file"):
        liprobe.read(real / "apav_si" / "Si.RRNG")


def test_unrecognised_binary_without_extension(tmp_path):
    path = tmp_path / "junk"
    rng = np.random.default_rng(0)
    path.write_bytes(rng.integers(0, 256, 16 * 64 + 3, dtype=np.uint8).tobytes())
    with pytest.raises(FormatError, match=r"junk: unrecognised format: not \.pos, \.epos, \.apt"):
        liprobe.read(path)


def test_inputs_are_never_modified(real):
    run = liprobe.read(real / "apav_si" / "Si_first100000.epos")
    with pytest.raises(ValueError):
        run["mass"][0] = 1.0
    with pytest.raises(ValueError):
        run.source("mass")[0] = 1.0


def test_column_chunks_give_the_column_in_order_whatever_its_form(real):
    """A Run, an array, a list of arrays and Run.chunks pairs give the same ions, in order,
    against an independent read of the file."""
    from liprobe.run import column_chunks

    path = real / "apav_si" / "Si_first100000.epos"
    ref = np.fromfile(path, dtype=">f4").reshape(-1, 11)[:, 3].astype(np.float32)
    run = liprobe.read(path)
    forms = {
        "run": list(column_chunks(run, chunk_ions=30_000)),
        "run, default chunks": list(column_chunks(run)),
        "array": list(column_chunks(ref)),
        "array sliced": list(column_chunks(ref, chunk_ions=7_777)),
        "list": list(column_chunks([ref[:10], ref[10:]])),
        "pairs": list(column_chunks(run.chunks("mass", 4_096))),
    }
    for name, chunks in forms.items():
        np.testing.assert_array_equal(np.concatenate(chunks), ref, err_msg=name)
    assert [len(c) for c in forms["run"]] == [30_000, 30_000, 30_000, 10_000]
    assert len(forms["array"]) == 1 and forms["array"][0] is ref
    tof = list(column_chunks(run, "tof", chunk_ions=60_000))
    assert [len(c) for c in tof] == [60_000, 40_000]
    empty = list(column_chunks(np.zeros(0, np.float32)))
    assert len(empty) == 1 and len(empty[0]) == 0
    with pytest.raises(ValueError, match="chunk_ions must be at least 1"):
        list(column_chunks(ref, chunk_ions=0))
