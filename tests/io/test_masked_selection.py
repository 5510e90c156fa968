"""Selections in bounded memory (issue 23): packed masks, lazily read selections, and ROIs
computed a chunk at a time, each checked against the plain numpy selection of the same
ions (identical values, counts and compositions)."""

import numpy as np
import pytest

import liprobe
from liprobe.composition import composition
from liprobe.run import MaskedSource, PackedMask, Run
from liprobe.spatial.roi import column_median, parse_roi, select

N = 200_003                       # not a multiple of 8, nor of the chunk


@pytest.fixture(scope="module")
def big_endian_run(tmp_path_factory):
    """A .pos written to disk and read back (big-endian memory-mapped columns)."""
    rng = np.random.default_rng(11)
    x, y = rng.normal(0, 8, N), rng.normal(1, 8, N)
    z = -np.linspace(0, 60, N) + rng.normal(0, 0.2, N)
    mass = rng.choice([7.0, 16.0, 29.0, 52.0], N) + rng.normal(0, 0.02, N)
    path = tmp_path_factory.mktemp("masked") / "r.pos"
    liprobe.write(path, Run.from_arrays(x=x.astype(np.float32), y=y.astype(np.float32),
                                        z=z.astype(np.float32), mass=mass.astype(np.float32)))
    return liprobe.read(path)


def test_packed_mask_round_trips_and_counts():
    rng = np.random.default_rng(0)
    m = rng.random(1003) < 0.3
    pm = PackedMask.from_bool(m)
    assert pm.count() == m.sum() and len(pm.bits) == 126
    assert np.array_equal(pm.to_bool(), m)
    assert np.array_equal(pm.to_bool(5, 777), m[5:777])
    chunks = PackedMask.from_chunks((m[i:i + 64] for i in range(0, 1003, 64)), 1003)
    assert np.array_equal(chunks.bits, pm.bits)
    with pytest.raises(ValueError, match="multiple of 8"):
        PackedMask.from_chunks([m[:5], m[5:]], 1003)
    inv = ~pm                                          # 1003 ions: 5 bits of padding
    assert np.array_equal(inv.to_bool(), ~m) and inv.count() == 1003 - m.sum()
    assert inv.bits[-1] & 0b00011111 == 0              # the padding stays clear
    assert np.array_equal((~PackedMask.from_bool(m[:1000])).to_bool(), ~m[:1000])


def test_masked_source_reads_what_numpy_selects(big_endian_run):
    x = big_endian_run.source("x")                      # big-endian memory map
    rng = np.random.default_rng(1)
    m = rng.random(N) < 0.41
    src = MaskedSource(x, PackedMask.from_bool(m))
    want = np.asarray(x)[m]
    assert len(src) == m.sum() and src.shape == (m.sum(),)
    assert np.array_equal(src[:], want)
    assert np.array_equal(src[70_000:70_017], want[70_000:70_017])   # across block edges
    assert np.array_equal(src[10:50_000:7], want[10:50_000:7])
    idx = rng.choice(len(want), 3000, replace=False)
    assert np.array_equal(src[idx], want[idx])                       # unsorted indices
    assert src[-1] == want[-1]
    assert np.array_equal(src.native(chunk=4096), want)
    assert src.native().dtype.isnative


def test_selections_of_selections_equal_numpy(big_endian_run):
    run = big_endian_run
    x = np.asarray(run["x"])
    rng = np.random.default_rng(2)
    m1 = rng.random(N) < 0.5
    sel = run.select(m1)
    assert all(isinstance(sel.source(c), MaskedSource) for c in sel.columns)
    assert sel.n_ions == m1.sum() and np.array_equal(sel["x"], x[m1])
    part = sel.select(slice(1234, 77_777))
    assert np.array_equal(part["x"], x[m1][1234:77_777])
    m2 = rng.random(sel.n_ions) < 0.3
    assert np.array_equal(sel.select(m2)["x"], x[m1][m2])
    ii = np.sort(rng.choice(sel.n_ions, 999, replace=False))
    assert np.array_equal(sel.select(ii)["x"], x[m1][ii])
    chunks = np.concatenate([c for _s, c in sel.chunks("x", 10_000)])
    assert np.array_equal(chunks, x[m1])
    starts = [s for s, _c in sel.chunks("x", 10_000)]
    assert starts == list(range(0, sel.n_ions, 10_000))


@pytest.mark.parametrize("n", [1, 2, 9, 10, 5001, 5002])
def test_median_in_bounded_memory_is_numpys(n):
    rng = np.random.default_rng(n)
    v = np.round(rng.normal(0, 3, n), 1).astype(np.float32)      # many ties
    run = Run.from_arrays(x=v)
    assert column_median(run, "x", 7) == float(np.median(v))


@pytest.mark.parametrize("spec", ["cylinder:12", "cylinder:12:20", "sphere:10@0,1,-30",
                                  "box:-5:5:-4:6:-40:-10"])
def test_roi_in_chunks_equals_the_in_memory_selection(big_endian_run, spec):
    run = big_endian_run
    x, y, z = (np.asarray(run[c], np.float64) for c in "xyz")
    roi = parse_roi(spec)
    if roi.kind == "cylinder":
        cx, cy = float(np.median(run["x"])), float(np.median(run["y"]))
        want = (x - cx) ** 2 + (y - cy) ** 2 <= (roi.params[0] / 2) ** 2
        if len(roi.params) > 1:
            want &= np.abs(z - 0.5 * (z.min() + z.max())) <= roi.params[1] / 2
    elif roi.kind == "sphere":
        c = roi.params[1:]
        want = (x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2 <= (roi.params[0] / 2) ** 2
    else:
        b = roi.params
        want = (x >= b[0]) & (x <= b[1]) & (y >= b[2]) & (y <= b[3]) & (z >= b[4]) & (z <= b[5])
    got, info = select(run, spec, chunk_ions=8_192)
    assert info["ions_selected"] == want.sum() > 100
    assert np.array_equal(got["mass"], np.asarray(run["mass"])[want])
    table = liprobe.RangeTable.from_ranges([
        liprobe.Range(6.9, 7.1, liprobe.parse_ion("Li+")),
        liprobe.Range(15.9, 16.1, liprobe.parse_ion("O+")),
        liprobe.Range(51.9, 52.1, liprobe.parse_ion("Cr+"))])
    a = composition(got, table)
    b = composition(Run.from_arrays(mass=np.asarray(run["mass"])[want]), table)
    assert a.ion_counts == b.ion_counts
    for el in a.atomic_percent:
        assert a.atomic_percent[el] == pytest.approx(b.atomic_percent[el], rel=1e-12)


def test_a_nan_in_a_selection_names_the_files_ion(tmp_path):
    x = np.zeros(100, np.float32)
    x[57] = np.nan
    path = tmp_path / "nan.pos"
    raw = np.zeros((100, 4), ">f4")
    raw[:, 0] = x
    raw[:, 3] = 7.0
    raw.tofile(path)
    run = liprobe.read(path)
    m = np.zeros(100, bool)
    m[50:60] = True
    sel = run.select(m)
    with pytest.raises(liprobe.FormatError, match="ion 7 of the selection") as e:
        sel["x"]
    assert "byte 912" in str(e.value)              # ion 57 of the file, 16 bytes a record


@pytest.mark.parametrize("plane,max_points", [("xy", 500), ("xz", 10**9)])
def test_slice_in_chunks_equals_one_pass(big_endian_run, plane, max_points):
    from liprobe.plots.slices import slice_ions

    table = liprobe.RangeTable.from_ranges([
        liprobe.Range(6.9, 7.1, liprobe.parse_ion("Li+")),
        liprobe.Range(28.9, 29.1, liprobe.parse_ion("Ni++")),
        liprobe.Range(51.9, 52.1, liprobe.parse_ion("Cr+"))])
    one = slice_ions(big_endian_run, table, plane, thickness_nm=2.0, max_points=max_points,
                     chunk_ions=N + 8)
    many = slice_ions(big_endian_run, table, plane, thickness_nm=2.0, max_points=max_points,
                      chunk_ions=4_096)
    assert one.at_nm == many.at_nm and one.counts == many.counts
    assert one.ions_in_slab == many.ions_in_slab > 1000
    assert np.array_equal(one.u, many.u) and np.array_equal(one.v, many.v)
    assert np.array_equal(one.ion, many.ion)
    # against numpy: the slab's counts by a plain mask
    normal = {"xy": "z", "xz": "y"}[plane]
    nv = np.asarray(big_endian_run[normal], np.float64)
    mass = np.asarray(big_endian_run["mass"])
    slab = np.abs(nv - float(np.median(big_endian_run[normal]))) <= 1.0
    li = int((slab & (mass >= 6.9) & (mass < 7.1)).sum())
    assert dict(zip(one.names, one.counts))["Li+"] == li


def test_correlation_in_chunks_equals_the_whole_arrays():
    from liprobe.spectrum.multihit import correlation_histogram, correlation_histogram_run

    rng = np.random.default_rng(5)
    sizes = rng.choice([1, 1, 1, 2, 3, 5], 40_000)
    mult = np.zeros(int(sizes.sum()), np.int32)
    mult[np.r_[0, np.cumsum(sizes)[:-1]]] = sizes
    mass = rng.choice([16.0, 29.0, 32.0, 58.0, 74.0], len(mult)) + rng.normal(0, 0.05, len(mult))
    run = Run.from_arrays(mass=mass.astype(np.float32), multiplicity=mult)
    whole = correlation_histogram(run["mass"], mult, 0.5, (0, 100))
    for chunk in (1000, 4097, 10**6):
        part = correlation_histogram_run(run, 0.5, (0, 100), chunk_ions=chunk)
        assert part.pairs == whole.pairs > 10_000
        assert np.array_equal(part.counts, whole.counts)
        assert part.stats == whole.stats and part.top_pairs == whole.top_pairs
    bad = Run.from_arrays(mass=mass[:-1].astype(np.float32), multiplicity=mult[:-1])
    if mult[-1] == 0 or sizes[-1] > 1:
        with pytest.raises(liprobe.AnalysisError, match="run ends first"):
            correlation_histogram_run(bad, 0.5, (0, 100), chunk_ions=1000)


@pytest.mark.parametrize("n", [1, 2, 9, 10, 5001, 5002])
def test_median_of_filtered_chunks_is_numpys(n):
    from liprobe.spatial.roi import median_of_chunks

    rng = np.random.default_rng(100 + n)
    v = rng.integers(-50, 50, n).astype(np.float32) / 4          # ties, negatives
    parts = np.array_split(v, max(1, n // 3))
    assert median_of_chunks(lambda: iter(parts)) == float(np.median(v))
    with pytest.raises(ValueError):
        median_of_chunks(lambda: iter([np.zeros(0)]))


def test_review_cases_of_selections():
    """Reversed and stepped slices, empty selections, non-integer indices."""
    r = Run.from_arrays(x=np.arange(10.0)).select(np.arange(10) % 2 == 0)
    r = r.with_columns(lab=np.asarray(r["x"]) * 10)
    s = r.select(slice(None, None, -1))
    assert list(s["x"]) == [8, 6, 4, 2, 0] and list(s["lab"]) == [80, 60, 40, 20, 0]
    assert list(r.select(slice(1, None, 2))["x"]) == [2, 6]
    for empty in (np.zeros(5, bool), np.array([], int), slice(0, 0, 2), slice(3, 3)):
        assert r.select(empty).n_ions == 0 and len(r.select(empty)["x"]) == 0
    src = r.source("x")
    assert len(src[np.array([], int)]) == 0 and len(src[np.zeros(5, bool)]) == 0
    with pytest.raises(IndexError, match="integers"):
        Run.from_arrays(x=np.arange(10.0)).select(np.array([0.5, 1.7]))
    with pytest.raises(IndexError, match="integers"):
        r.select(np.array([0.5]))


def test_sparse_selection_reads_in_bounded_memory():
    import tracemalloc

    n = 4_000_000
    m = np.zeros(n, bool)
    m[::1000] = True
    run = Run.from_arrays(x=np.arange(n, dtype=np.float32)).select(m)
    tracemalloc.start()
    part = run.source("x")[100:3_100]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.array_equal(part, np.arange(n, dtype=np.float32)[m][100:3_100])
    assert peak < 1_000_000                     # one block unpacked, not the parent span


def test_median_with_an_outlier_stays_exact_and_bounded():
    import tracemalloc

    from liprobe.spatial.roi import median_of_chunks

    rng = np.random.default_rng(3)
    v = rng.normal(0, 1, 2_000_000).astype(np.float32)
    v[123] = 1e6
    parts = np.array_split(v, 20)
    tracemalloc.start()
    got = median_of_chunks(lambda: iter(parts), max_kept=100_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert got == float(np.median(v))
    assert peak < 8_000_000                      # well under the 8 MB of the data
    for bad in ([1.0, np.nan, 2.0], [1.0, np.inf]):
        with pytest.raises(ValueError, match="not finite"):
            median_of_chunks(lambda b=bad: iter([np.array(b)]))


def test_correlation_errors_name_the_runs_ion():
    from liprobe.spectrum.multihit import correlation_histogram, correlation_histogram_run

    k = np.ones(5000, np.int32)
    k[3000], k[3001], k[3002] = 2, 0, 0
    m = np.full(5000, 16.0, np.float32)
    run = Run.from_arrays(mass=m, multiplicity=k)
    with pytest.raises(liprobe.AnalysisError, match="event at ion 3000 claims 2 ions but 3"):
        correlation_histogram(m, k, 0.5, (0, 120))
    with pytest.raises(liprobe.AnalysisError, match="event at ion 3000 claims 2 ions but 3"):
        correlation_histogram_run(run, 0.5, (0, 120), chunk_ions=1024)
    k2 = np.array([3, 0, 1, 1], np.int32)
    run2 = Run.from_arrays(mass=np.full(4, 16.0, np.float32), multiplicity=k2)
    with pytest.raises(liprobe.AnalysisError, match="event at ion 0 claims 3 ions but 2"):
        correlation_histogram_run(run2, 0.5, (0, 120), chunk_ions=1)


def test_history_checks_every_voltage_chunk(tmp_path):
    from liprobe.history import run_history

    n = 50_000
    rec = np.zeros(n, liprobe.io.pos.EPOS_DTYPE)
    rec["mass"] = 16.0
    rec["v_dc"] = np.linspace(3000, 5000, n)
    rec["v_dc"][40_000] = np.nan
    rec["multiplicity"] = 1
    path = tmp_path / "v.epos"
    rec.tofile(path)
    run = liprobe.read(path)
    with pytest.raises(liprobe.FormatError, match="v_dc of ion 40000"):
        run_history(run, chunk_ions=4096)


def test_reconstruct_into_scratch_equals_in_memory(tmp_path, monkeypatch):
    """Above SCRATCH_ABOVE_IONS the x y z go to an unlinked memory-mapped file (file-backed,
    not anonymous memory) and the masses are ranged a chunk at a time: the same positions,
    and nothing left in the folder."""
    import importlib

    rec = importlib.import_module("liprobe.spatial.reconstruct")   # the module, not the function

    rng = np.random.default_rng(9)
    n = 50_000
    raw = np.zeros(n, liprobe.io.pos.EPOS_DTYPE)
    raw["det_x"], raw["det_y"] = rng.uniform(-30, 30, n), rng.uniform(-30, 30, n)
    raw["v_dc"] = np.linspace(4000, 6000, n)
    raw["mass"] = rng.choice([7.0, 16.0, 29.0], n)
    raw["multiplicity"] = 1
    path = tmp_path / "r.epos"
    raw.tofile(path)
    table = liprobe.RangeTable.from_ranges([
        liprobe.Range(6.9, 7.1, liprobe.parse_ion("Li+")),
        liprobe.Range(15.9, 16.1, liprobe.parse_ion("O+"))])
    run = liprobe.read(path)
    params = rec.ReconstructionParameters.preset(material="NMC811")
    a, ra = rec.reconstruct_run(run, params, table)
    monkeypatch.setattr(rec, "SCRATCH_ABOVE_IONS", 1000)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    b, rb = rec.reconstruct_run(run, params, table, scratch_dir=str(scratch))
    for c in "xyz":
        assert np.array_equal(a[c], b[c])
    assert ra.to_dict() == rb.to_dict() and list(scratch.iterdir()) == []
    # the labels of the chunks are those of the whole column
    lab = rec._LazyLabels(run.source("mass"), table)
    assert np.array_equal(np.concatenate([lab[i:i + 777] for i in range(0, n, 777)]),
                          liprobe.assign(run["mass"], table)[0])
