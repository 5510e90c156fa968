"""Fuzzing the NeXus NXapm reader by mutating the structure of real files (issue "Reliability").

Mutating the bytes of an HDF5 file can crash the HDF5 C library, so the fuzzing here
edits the STRUCTURE of ``.nxs`` files liprobe wrote (the ``.epos`` of the shared data,
with and without the ``.RRNG`` ranges) with h5py: one to three mutations per example
(fields and groups deleted, replaced by others of another type or shape or by a huge
declared length with no data, turned from fields into groups and back, junk
``NX_class``/``units``/``depends_on`` attributes, soft link loops and external links to
missing files, ``liprobe`` JSON that is junk, ranging definitions that overlap, are
reversed or name absurd ions). Every call of :func:`~liprobe.io.nexus.read_nexus`,
:func:`liprobe.read` and :func:`liprobe.read_ranges` either returns a valid object (each
column reads, chunk by chunk; the windows are finite, sorted and disjoint) or raises
:class:`liprobe.errors.LiprobeError`. Each example has a deadline and each test a time
limit (pytest-timeout); the examples are derandomised: the same ones every run. The
whole file takes about 20 s on 2 cores.

The tests at the end are the defects the fuzzing found, one explicit mutation each.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import warnings
from datetime import timedelta

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import liprobe
from liprobe.errors import FormatError, LiprobeError
from liprobe.io.nexus import COLUMN_PATHS, ENTRY, read_nexus, read_nexus_ranges, write_nexus
from liprobe.rangetable import RangeTable
from liprobe.run import Run

# a fixed budget, derandomised: the same examples every run; an example slower than the
# deadline fails (a reader that allocates a declared length or loops is far slower)
BUDGET = settings(max_examples=600, deadline=timedelta(seconds=5), derandomize=True,
                  database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])

HUGE = 2 ** 40          # a declared length no file of these tests holds
_PID = "atom_probe/ranging/peak_identification"
_JSON_FIELDS = ("liprobe/column_map", "liprobe/metadata", "liprobe/run_meta",
                "liprobe/ranges", "liprobe/range_warnings")


# -- the files: written by liprobe from the real .epos, with and without ranges ---------

@pytest.fixture(scope="module")
def nexus_files(real, tmp_path_factory):
    """``{"ranged": path, "plain": path}``: what ``liprobe export`` writes of the shared
    .epos, with the .RRNG's ranges and without."""
    folder = tmp_path_factory.mktemp("nexus-fuzz")
    run = liprobe.read(real / "apav_si" / "Si_first100000.epos")
    ranges = liprobe.read_ranges(real / "apav_si" / "Si.RRNG")
    out = {"ranged": folder / "ranged.nxs", "plain": folder / "plain.nxs"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_nexus(out["ranged"], run, ranges)
        write_nexus(out["plain"], run)
    return out


def _targets(path) -> dict[str, list[str]]:
    """The paths (below the entry) the readers use, by kind: ``datasets``, ``groups``,
    ``ions`` (the ``ionN`` groups) and ``json`` (liprobe's JSON fields)."""
    used: set[str] = {"definition", "liprobe", *_JSON_FIELDS, "atom_probe", "measurement"}
    for rel, _, _, _ in COLUMN_PATHS.values():
        parts = rel.split("/")
        used.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    ions: list[str] = []
    with h5py.File(path, "r") as f:
        e = f[ENTRY]
        if _PID in e:
            used.update(("atom_probe/ranging", _PID, f"{_PID}/iontypes"))
            for k in e[_PID]:
                if k.startswith("ion") and k[3:].isdigit():
                    ions.append(f"{_PID}/{k}")
                    used.update(f"{_PID}/{k}/{v}" for v in e[f"{_PID}/{k}"])
        used = {u for u in used if u in e}
        datasets = sorted(u for u in used if isinstance(e[u], h5py.Dataset))
        groups = sorted(u for u in used if isinstance(e[u], h5py.Group))
    return {"datasets": datasets, "groups": ["", *groups], "ions": sorted(ions),
            "json": [j for j in _JSON_FIELDS if j in datasets]}


# -- the mutations --------------------------------------------------------------------

#: What replaces a dataset (see _replacement).
REPLACEMENTS = ("text", "long_text", "bytes", "bool", "complex", "vlen_text", "vlen_float",
                "int64_extremes", "uint64_max", "scalar", "2d", "3d", "empty", "one_more",
                "one_less", "huge_chunked", "huge_contiguous", "nan", "inf", "compressed",
                "float_of_ints", "big_endian", "null")

#: Junk for NX_class, units and depends_on (None: deleted).
ATTR_JUNK = (None, 3, b"\xff\xfe junk", np.arange(5), "x" * 70000, np.float64("nan"),
             np.array(["a", "b"], dtype=h5py.string_dtype()), "/entry1/nowhere", "")

#: Junk text for the JSON fields of the ``liprobe`` collection, by name (the name is
#: what a failing example prints).
JSON_JUNK = {
    "empty": "", "unclosed": "[", "null": "null", "number": "3", "string": '"text"',
    "list": "[]", "dict": "{}", "deep_list": "[" * 100_000 + "]" * 100_000,
    "deep_dict": '{"a": ' * 20_000 + "1" + "}" * 20_000, "nan": "NaN", "inf": "[1e999]",
    "long_int": "1" * 10_000, "window_list_lo": '[{"lo": [1], "hi": 2}]',
    "window_dict_lo": '[{"lo": {}, "hi": 2}]', "window_and_int": '[{"lo": 1, "hi": 2}, 5]',
    "junk_reconstruction": '{"reconstruction": {"method": [1]}}',
    "lone_surrogate": '["\\ud800"]'}

#: Junk values for one key of one entry of ``liprobe/column_map``.
COLUMN_MAP_JUNK = {
    "name": ("", 3, None, "mass", "x" * 10_000, "pulse_delta"),
    "path": ("", ".", "/", "definition", "liprobe", "../x", "a\x00b", 3, None,
             f"{_PID}/iontypes", "/entry1/atom_probe/hit_finding/hit_multiplicity",
             "atom_probe/reconstruction"),
    "component": (-1, 2, 3, 5, 10 ** 30, True, 1.5, "0", None),
    "dtype": ("f2", "b1", "u1", "i8", "<u8", ">f8", "c8", "M8", "O", "V8", "S5", "U3", 3,
              ["a", "f4"], [["a", "f4"]], {"x": 1}, {"names": ["a"], "formats": ["f4"]},
              {"names": ["a"]}, {"a": ["f4", 0]}, {"names": ["a"], "formats": ["f4"],
                                                   "offsets": [2 ** 70]},
              "", "float128", "i4,i4", "(2,)f4", "(99999999999999999999,)f4", "M8[xyz]"),
    "unit": (3, None, ["nm"], "x" * 10_000),
}

#: Junk for the fields of an ``ionN`` (NXatom) group.
ION_JUNK = {
    "charge_state": (np.int8(0), np.int8(-1), np.int8(127), np.int32(2 ** 31 - 1),
                     np.int64(2 ** 63 - 1), np.uint64(2 ** 64 - 1), np.float64("nan"),
                     np.float64("inf"), np.float64(-np.inf), np.float64(1.5), "2", b"x",
                     np.complex64(1 + 1j), np.array([1, 2], np.int8), np.bool_(True)),
    "nuclide_hash": (np.uint16([0, 0, 0]), np.uint16([65535]), np.uint16([255]),
                     np.uint16([65280 + 119]), np.int64([-1]), np.int64([2 ** 62]),
                     np.float64([np.nan]), np.float64([np.inf]), np.uint16(65294),
                     np.uint16([65294] * 200_000), np.array(["Si"], dtype=h5py.string_dtype()),
                     np.complex64([65294])),
    "nuclide_list": (np.uint16([[65535, 14]]), np.int64([[2 ** 62, 200]]), np.uint16([[0]]),
                     np.float64([[np.nan, np.inf]]), np.uint16([[1, 14], [1, 14], [1, 14]])),
    "name": ("", "Si" * 5000 + "+", "(" * 500 + "Si" + ")" * 500 + "+", "Si" + "+" * 300,
             "?", "+", "Si?", "Xx+", "Si", b"\xff\xfe", 5, np.float64(1.5),
             np.array(["Si+", "O+"], dtype=h5py.string_dtype()), "Si2+" * 1000, "C" * 10_000 + "+"),
    "mass_to_charge_range": (np.float64([[30.0, 29.0]]), np.float64([[1.0, 1.0]]),
                             np.float64([[np.nan, 2.0]]), np.float64([[-np.inf, np.inf]]),
                             np.float64([[0.0, 1e308]]), np.float64([]),
                             np.float64([[[1.0, 2.0]]]), np.float64(3.0), np.int64([[1, 2]]),
                             np.float64([[1.0, 2.0, 3.0]]), np.float64([[-5.0, -1.0]]),
                             np.float64([[1.0, 2.0]] * 100_000)),
}

#: Whole-ranging mutations of one ion (relative to another).
ION_RELATIONS = ("overlap", "shift", "reverse", "duplicate", "swap_windows")

LINKS = ("loop", "parent", "external", "dangling", "entry")


def _mutation(t: dict[str, list[str]]):
    """One mutation: a tuple naming it (hypothesis prints it when an example fails)."""
    used = t["datasets"] + t["groups"]
    options = [
        st.tuples(st.just("delete"), st.sampled_from(used)),
        st.tuples(st.just("replace"), st.sampled_from(t["datasets"]),
                  st.sampled_from(REPLACEMENTS)),
        st.tuples(st.just("swap"), st.sampled_from(used)),
        st.tuples(st.just("attr"), st.sampled_from(used),
                  st.sampled_from(("NX_class", "units", "depends_on")),
                  st.integers(0, len(ATTR_JUNK) - 1)),
        st.tuples(st.just("link"), st.sampled_from(used), st.sampled_from(LINKS)),
    ]
    if t["json"]:
        options.append(st.tuples(st.just("json"), st.sampled_from(t["json"]),
                                 st.sampled_from(sorted(JSON_JUNK))))
    if "liprobe/column_map" in t["json"]:
        options.append(st.tuples(st.just("column_map"), st.integers(0, 11),
                                 st.sampled_from(sorted(COLUMN_MAP_JUNK)),
                                 st.integers(0, 20)))
    if t["ions"]:
        options.append(st.tuples(st.just("ion"), st.sampled_from(t["ions"]),
                                 st.sampled_from(sorted(ION_JUNK)), st.integers(0, 20)))
        options.append(st.tuples(st.just("ions"), st.sampled_from(t["ions"]),
                                 st.sampled_from(t["ions"]), st.sampled_from(ION_RELATIONS)))
        # a few times as likely: the ranging definitions are most of the file's structure
        options += options[-2:] * 2
    return st.one_of(options)


def _mutations(t):
    return st.lists(_mutation(t), min_size=1, max_size=3)


def _replacement(parent, name: str, old: dict, variant: str) -> None:
    """Replace the dataset ``parent[name]`` (already deleted; ``old`` its data) by
    ``variant``."""
    shape, dtype = old["shape"], old["dtype"]
    n = shape[0] if shape else 3
    rest = shape[1:]
    if variant == "text":
        parent[name] = "junk"
    elif variant == "long_text":
        parent[name] = "x" * 100_000
    elif variant == "bytes":
        parent[name] = np.array([b"a", b"bc"] * max(1, n // 2))
    elif variant == "bool":
        parent[name] = np.zeros(shape, bool)
    elif variant == "complex":
        parent[name] = np.zeros(shape, np.complex64)
    elif variant == "vlen_text":
        parent.create_dataset(name, data=np.array(["a"] * n, dtype=object),
                              dtype=h5py.string_dtype())
    elif variant == "vlen_float":
        ds = parent.create_dataset(name, (n,), dtype=h5py.vlen_dtype(np.float32))
        ds[0] = np.float32([1, 2])
    elif variant == "int64_extremes":
        a = np.zeros(shape, np.int64)
        a.flat[::2] = np.iinfo(np.int64).min
        a.flat[1::2] = np.iinfo(np.int64).max
        parent[name] = a
    elif variant == "uint64_max":
        parent[name] = np.full(shape, np.iinfo(np.uint64).max, np.uint64)
    elif variant == "scalar":
        parent[name] = np.float32(1)
    elif variant == "2d":
        parent[name] = np.zeros((n, 2), np.float32)
    elif variant == "3d":
        parent[name] = np.zeros((2, 2, 2), np.float32)
    elif variant == "empty":
        parent[name] = np.zeros((0, *rest), dtype)
    elif variant in ("one_more", "one_less"):
        m = n + 1 if variant == "one_more" else max(n - 1, 0)
        parent[name] = np.resize(old["data"], (m, *rest)).astype(dtype)
    elif variant == "huge_chunked":
        parent.create_dataset(name, shape=(HUGE, *rest), maxshape=(None, *rest),
                              dtype=dtype if dtype.kind in "biuf" else np.float32,
                              chunks=(1024, *rest))
    elif variant == "huge_contiguous":
        parent.create_dataset(name, shape=(HUGE, *rest),
                              dtype=dtype if dtype.kind in "biuf" else np.float32)
    elif variant in ("nan", "inf"):
        a = np.array(old["data"], dtype=np.float64 if dtype.kind not in "f" else dtype)
        if a.size:
            a.flat[a.size // 2] = np.nan if variant == "nan" else np.inf
            a.flat[0] = -np.inf if variant == "inf" else a.flat[0]
        parent[name] = a
    elif variant == "compressed":          # valid: the same data, chunked and compressed
        if shape:
            parent.create_dataset(name, data=old["data"], compression="gzip",
                                  chunks=(min(n, 4096), *rest) if n else None)
        else:
            parent[name] = old["data"]
    elif variant == "float_of_ints":       # another program's float column of integers
        parent[name] = np.asarray(old["data"]).astype(np.float64)
    elif variant == "big_endian":
        parent[name] = np.asarray(old["data"]).astype(dtype.newbyteorder(">"))
    elif variant == "null":                # HDF5's null dataspace: no shape at all
        parent.create_dataset(name, data=h5py.Empty(dtype if dtype.kind in "biuf" else "f4"))
    else:
        raise AssertionError(variant)


def _split(rel: str) -> tuple[str, str]:
    parent, _, name = f"/{ENTRY}/{rel}".rstrip("/").rpartition("/")
    return parent or "/", name


def _hard(f: h5py.File, path: str):
    """The object at ``path`` when every link to it is a hard link (None otherwise: gone,
    or behind a soft or external link that an earlier mutation made)."""
    obj = f["/"]
    for part in path.strip("/").split("/") if path.strip("/") else ():
        if not isinstance(obj, h5py.Group) \
                or not isinstance(obj.get(part, getlink=True), h5py.HardLink):
            return None
        obj = obj[part]
    return obj


def _apply(f: h5py.File, m: tuple) -> None:
    """Apply mutation ``m`` to the open file (a no-op when its target is gone)."""
    kind, rel = m[0], m[1]
    full = f"/{ENTRY}/{rel}".rstrip("/")
    parent_path, name = _split(rel)
    parent = _hard(f, parent_path)
    if not isinstance(parent, h5py.Group) or parent.get(name, getlink=True) is None:
        return
    obj = _hard(f, full)
    if kind == "delete":
        del parent[name]
    elif kind == "replace":
        if not isinstance(obj, h5py.Dataset) or (obj.size or 0) > 10 ** 7:  # not a huge one
            return
        old = {"shape": obj.shape or (), "dtype": obj.dtype,
               "data": obj[()] if obj.dtype.kind != "O" and obj.shape is not None else None}
        if old["data"] is None and m[2] in ("one_more", "one_less", "compressed") \
                or obj.dtype.kind not in "biuf" and m[2] in ("nan", "inf", "float_of_ints",
                                                            "big_endian"):
            return
        del parent[name]
        _replacement(parent, name, old, m[2])
    elif kind == "swap":
        del parent[name]
        if isinstance(obj, h5py.Group):
            parent[name] = np.arange(3)
        else:
            parent.create_group(name).attrs["NX_class"] = "NXcollection"
    elif kind == "attr":
        if obj is None:
            return
        junk = ATTR_JUNK[m[3]]
        if junk is None:
            obj.attrs.pop(m[2], None)
        else:
            obj.attrs[m[2]] = junk
    elif kind == "link":
        del parent[name]
        parent[name] = {"loop": h5py.SoftLink(full), "parent": h5py.SoftLink(parent_path),
                        "external": h5py.ExternalLink("no-such-file.h5", "/x"),
                        "dangling": h5py.SoftLink(f"/{ENTRY}/nowhere"),
                        "entry": h5py.SoftLink(f"/{ENTRY}")}[m[2]]
    elif kind == "json":
        del parent[name]
        parent.create_dataset(name, data=JSON_JUNK[m[2]], dtype=h5py.string_dtype())
    elif kind == "ion":
        _apply_ion(obj, m[2], m[3])


def _apply_column_map(f: h5py.File, m: tuple) -> None:
    _, index, key, choice = m
    lp = _hard(f, f"/{ENTRY}/liprobe")
    if not isinstance(lp, h5py.Group) \
            or not isinstance(_hard(f, f"/{ENTRY}/liprobe/column_map"), h5py.Dataset):
        return
    try:
        columns = json.loads(lp["column_map"][()])
    except (TypeError, ValueError, RecursionError):
        return
    if not isinstance(columns, list) or not columns \
            or not isinstance(columns[index % len(columns)], dict):
        return
    junk = COLUMN_MAP_JUNK[key]
    columns[index % len(columns)][key] = junk[choice % len(junk)]
    del lp["column_map"]
    lp.create_dataset("column_map", data=json.dumps(columns), dtype=h5py.string_dtype())


def _apply_ion(g, field: str, choice: int) -> None:
    if not isinstance(g, h5py.Group):
        return
    junk = ION_JUNK[field]
    value = junk[choice % len(junk)]
    if g.get(field, getlink=True) is not None:
        del g[field]
    g[field] = value


def _windows(f: h5py.File, g):
    w = _hard(f, f"{g.name}/mass_to_charge_range") if isinstance(g, h5py.Group) else None
    return np.asarray(w[()], np.float64) if isinstance(w, h5py.Dataset) \
        and w.dtype.kind in "iuf" and w.ndim == 2 and w.size < 10 ** 6 else None


def _apply_ions(f: h5py.File, m: tuple) -> None:
    _, a, b, how = m
    ga, gb = _hard(f, f"/{ENTRY}/{a}"), _hard(f, f"/{ENTRY}/{b}")
    wa, wb = _windows(f, ga), _windows(f, gb)
    if wa is None or wb is None or not len(wa):
        return
    if how == "overlap":        # b's windows are a's (different ions: RangeError)
        new = wa
    elif how == "shift":        # b's first window overlaps the end of a's first one
        lo, hi = wa[0]
        new = np.array([[lo + (hi - lo) / 2, hi + (hi - lo)]])
    elif how == "reverse":      # b's windows upside down
        new = wb[:, ::-1]
    elif how == "duplicate":    # b's windows twice
        new = np.concatenate([wb, wb])
    else:                       # swap_windows: a's and b's windows exchanged
        new = wa
        del ga["mass_to_charge_range"]
        ga["mass_to_charge_range"] = wb
    del gb["mass_to_charge_range"]
    gb["mass_to_charge_range"] = new


def mutate(src, dst, mutations) -> None:
    """Copy ``src`` to ``dst`` and apply ``mutations`` to the copy with h5py."""
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        for m in mutations:
            if m[0] == "column_map":
                _apply_column_map(f, m)
            elif m[0] == "ions":
                _apply_ions(f, m)
            else:
                _apply(f, m)


# -- what a reader must give back -------------------------------------------------------

def _check_run(run) -> None:
    assert isinstance(run, Run)
    assert run.n_ions >= 0
    for c in run.columns:
        n = 0
        for start, chunk in run.chunks(c, 1 << 16):
            assert start == n and chunk.ndim == 1
            n += len(chunk)
        assert n == run.n_ions


def _check_table(table) -> None:
    assert isinstance(table, RangeTable)
    last = -math.inf
    for r in table.ranges:
        assert math.isfinite(r.lo) and math.isfinite(r.hi) and last <= r.lo < r.hi
        last = r.hi
        assert r.volume is None or isinstance(r.volume, (int, float))
        assert r.color is None or isinstance(r.color, str)
        assert isinstance(r.ion.name, str)
    assert all(isinstance(w, str) for w in table.warnings)


def _call(fn, path, check) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # columns are converted lazily: a non-finite position raises FormatError
            # when it is first read, which is our error too
            check(fn(path))
        except LiprobeError as e:
            assert "\n" not in str(e)


def _read_all(path) -> None:
    _call(read_nexus, path, _check_run)
    _call(liprobe.read, path, _check_run)
    _call(liprobe.read_ranges, path, _check_table)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("which", ["ranged", "plain"])
def test_mutated_nexus_files_read_or_raise_our_error(nexus_files, tmp_path, which):
    src = nexus_files[which]
    path = tmp_path / "m.nxs"
    _read_all(src)                    # the file as written reads

    @BUDGET
    @given(mutations=_mutations(_targets(src)))
    def one(mutations):
        mutate(src, path, mutations)
        _read_all(path)

    one()


# -- the defects the fuzzing found: one explicit mutation each --------------------------

_ION1 = f"{_PID}/ion1"


def _swap_to_field(rel):
    def do(e):
        del e[rel]
        e[rel] = np.int64(3)
    return do


def _set(rel, value, **kw):
    def do(e):
        if rel in e:
            del e[rel]
        e.create_dataset(rel, data=value, **kw)
    return do


def _link(rel, link):
    def do(e):
        del e[rel]
        e[rel] = link
    return do


def _ranges_json(entry):
    def do(e):
        ranges = json.loads(e["liprobe/ranges"][()])
        ranges[0].update(entry)
        _set("liprobe/ranges", json.dumps(ranges), dtype=h5py.string_dtype())(e)
    return do


def _column_map(**entry):
    def do(e):
        columns = json.loads(e["liprobe/column_map"][()])
        columns[0].update(entry)
        _set("liprobe/column_map", json.dumps(columns), dtype=h5py.string_dtype())(e)
    return do


def _named_ion(charge, name):
    def do(e):
        del e[f"{_ION1}/nuclide_hash"]
        _set(f"{_ION1}/charge_state", np.int64(charge))(e)
        _set(f"{_ION1}/name", name, dtype=h5py.string_dtype())(e)
    return do


_MTC = "atom_probe/mass_to_charge_conversion/mass_to_charge"

#: case: (mutation of the entry, reader, the message expected). Before the fixes all but
#: one raised something else than FormatError, or returned junk (in the comment).
DEFECTS = {
    # RuntimeError: Special link traversal failed (too many links)
    "field_is_a_soft_link_loop": (
        _link(_MTC, h5py.SoftLink(f"/{ENTRY}/{_MTC}")), "read",
        rf"/{ENTRY}/{_MTC} is a soft link to /{ENTRY}/{_MTC} that cannot be opened "
        r"\(Special link traversal failed"),
    # RuntimeError, while looking for the NXapm entry (the only entry: a loop)
    "entry_is_a_soft_link_loop": (
        lambda e: (e.file.__delitem__(f"/{ENTRY}"),
                   e.file.__setitem__(f"/{ENTRY}", h5py.SoftLink(f"/{ENTRY}"))),
        "read", rf"without an NXapm entry .*; /{ENTRY} is a soft link to /{ENTRY} that "
                r"cannot be opened \(Special link traversal failed"),
    # KeyError: Unable to synchronously open object (can't open file)
    "json_field_is_an_external_link_to_a_missing_file": (
        _link("liprobe/run_meta", h5py.ExternalLink("no-such-file.h5", "/x")), "read",
        rf"/{ENTRY}/liprobe/run_meta is an external link to /x in no-such-file.h5 that "
        r"cannot be opened \(.*can't open file"),
    # KeyError: Unable to synchronously open object (component not found)
    "ion_field_is_a_dangling_soft_link": (
        _link(f"{_ION1}/charge_state", h5py.SoftLink(f"/{ENTRY}/nowhere")), "read_ranges",
        rf"/{ENTRY}/{_ION1}/charge_state is a soft link to /{ENTRY}/nowhere that cannot be "
        "opened"),
    # MemoryError: Unable to allocate 4.00 TiB (the declared length, read whole)
    "per_ion_field_declared_huge_never_written": (
        lambda e: (e.__delitem__(_MTC),
                   e.create_dataset(_MTC, shape=(HUGE,), maxshape=(None,), dtype="f4",
                                    chunks=(1024,))),
        "read", rf"field /{ENTRY}/{_MTC} holds {HUGE} ions but .* holds 100000: the "
                "per-ion fields"),
    "ion_name_declared_huge_never_written": (
        lambda e: (e.__delitem__(f"{_ION1}/name"),
                   e.create_dataset(f"{_ION1}/name", shape=(HUGE,), dtype="f4")),
        "read_ranges", rf"field /{ENTRY}/{_ION1}/name declares shape"),
    # TypeError: Accessing a group is done with bytes or str, not <class 'tuple'>
    "ion_name_is_a_group": (
        lambda e: (e.__delitem__(f"{_ION1}/name"), e.create_group(f"{_ION1}/name")),
        "read_ranges", rf"/{ENTRY}/{_ION1}/name is a group, not a field"),
    # TypeError: Can't iterate over a scalar dataset (`name in group` on a field)
    "liprobe_collection_is_a_field": (
        _swap_to_field("liprobe"), "read", rf"/{ENTRY}/liprobe is a field, not a group"),
    # TypeError: Can't iterate over a scalar dataset
    "peak_identification_is_a_field": (
        _swap_to_field(_PID), "read_ranges", rf"/{ENTRY}/{_PID} is a field, not a group"),
    # a FormatError for the wrong reason: "charge_state or nuclide_hash is not integers"
    "ion_is_a_field": (
        _swap_to_field(_ION1), "read_ranges", rf"/{ENTRY}/{_ION1} is a field, not a group"),
    # RecursionError: maximum recursion depth exceeded while decoding a JSON array
    "json_nested_too_deep": (
        _set("liprobe/metadata", JSON_JUNK["deep_list"], dtype=h5py.string_dtype()), "read",
        rf"/{ENTRY}/liprobe/metadata is not JSON text \(maximum recursion depth"),
    # OverflowError: cannot convert float infinity to integer
    "nuclide_hash_infinite": (
        _set(f"{_ION1}/nuclide_hash", np.float64([np.inf])), "read_ranges",
        rf"/{ENTRY}/{_ION1}: charge_state or nuclide_hash is not integers \(cannot convert"),
    # MemoryError (a string of 2**63 - 1 '+' built to compare with the name)
    "charge_state_huge_named_ion": (
        _named_ion(2 ** 63 - 1, "Xx+"), "read_ranges",
        rf"/{ENTRY}/{_ION1}/charge_state 9223372036854775807 is above the limit of 10"),
    # ValueError: an ion needs atoms or a label
    "named_ion_of_charges_alone": (
        _named_ion(2, "++"), "read_ranges",
        rf"/{ENTRY}/{_ION1}/name '\+\+': an ion needs atoms or a label"),
    # TypeError: unhashable type: 'list'
    "ranges_json_window_bound_a_list": (
        _ranges_json({"lo": [1]}), "read_ranges",
        rf"/{ENTRY}/liprobe/ranges: .* is not a window \(lo, hi, ion, volume, color\)"),
    # no error: the window came back with volume "big" (a float or None everywhere else)
    "ranges_json_volume_text": (
        _ranges_json({"volume": "big"}), "read_ranges",
        rf"/{ENTRY}/liprobe/ranges: .*\"big\".* is not a window"),
    # ValueError: entry not a 2- or 3- tuple
    "column_map_dtype_a_dict": (
        _column_map(dtype={"names": ["a"]}), "read",
        rf"/{ENTRY}/liprobe/column_map: .* is not a column"),
    # OverflowError: Python int too large to convert to C long
    "column_map_dtype_offset_huge": (
        _column_map(dtype={"names": ["a"], "formats": ["f4"], "offsets": [2 ** 70]}), "read",
        rf"/{ENTRY}/liprobe/column_map: .* is not a column"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(DEFECTS))
def test_each_defect_found_is_one_format_error_naming_the_field(nexus_files, tmp_path, case):
    mutation, reader, message = DEFECTS[case]
    path = tmp_path / "m.nxs"
    shutil.copyfile(nexus_files["ranged"], path)
    with h5py.File(path, "r+") as f:
        mutation(f[ENTRY])
    fn = {"read": liprobe.read, "read_ranges": liprobe.read_ranges}[reader]
    with pytest.raises(FormatError, match=message) as e:
        fn(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)
    if reader == "read":
        with pytest.raises(FormatError, match=message):
            read_nexus(path)
    else:
        with pytest.raises(FormatError, match=message):
            read_nexus_ranges(path)


def test_a_non_finite_value_of_a_compressed_column_is_refused_like_a_mapped_one(
        nexus_files, tmp_path):
    """A compressed (so read into memory) mass column holding NaN: a FormatError naming
    the field and the ion, as a memory-mapped column's NaN is when read."""
    p = tmp_path / "nan.nxs"
    shutil.copy(nexus_files["plain"], p)
    with h5py.File(p, "r+") as f:
        name = f"/{ENTRY}/{COLUMN_PATHS['mass'][0]}"
        data = f[name][()]
        data[7] = np.nan
        del f[name]
        f.create_dataset(name, data=data, compression="gzip")
    with pytest.raises(FormatError, match=r"mass_to_charge: mass of ion 7 is not a finite "
                                          r"number \(nan\)"):
        liprobe.read(p)


def test_a_broken_link_beside_the_entry_does_not_hide_it(nexus_files, tmp_path):
    """A top-level link elsewhere in the file (to raw data not copied along, or a loop)
    does not stop the NXapm entry being found: the run reads as without it."""
    p = tmp_path / "linked.nxs"
    shutil.copy(nexus_files["ranged"], p)
    with h5py.File(p, "r+") as f:
        f["aaa_raw"] = h5py.ExternalLink("raw-not-copied.h5", "/data")
        f["aab_loop"] = h5py.SoftLink("/aab_loop")
    a, b = liprobe.read(nexus_files["ranged"]), liprobe.read(p)
    assert a.columns == b.columns
    for c in a.columns:
        assert np.array_equal(a[c], b[c]), c
    assert len(liprobe.read_ranges(p)) == len(liprobe.read_ranges(nexus_files["ranged"]))


def test_a_field_behind_an_external_link_is_read_from_its_own_file(nexus_files, tmp_path):
    """A plain (contiguous) field reached through an external link that resolves: its
    values come from the linked file, not from the same offset in the main file."""
    p = tmp_path / "main.nxs"
    shutil.copy(nexus_files["plain"], p)
    name = f"/{ENTRY}/{COLUMN_PATHS['mass'][0]}"
    with h5py.File(p, "r+") as f:
        data = f[name][()]
        del f[name]
        with h5py.File(tmp_path / "masses.h5", "w") as g:
            g.create_dataset("m", data=data)           # contiguous, uncompressed
        f[name] = h5py.ExternalLink("masses.h5", "/m")
    run = liprobe.read(p)
    assert np.array_equal(run["mass"], data)


def test_a_value_that_does_not_fit_the_columns_type_is_said(nexus_files, tmp_path):
    """A float64 field whose column is float32 (the column map says so) holding 1e300:
    not 'not a finite number' (it is finite), but that it does not fit."""
    p = tmp_path / "big.nxs"
    shutil.copy(nexus_files["plain"], p)
    name = f"/{ENTRY}/{COLUMN_PATHS['mass'][0]}"
    with h5py.File(p, "r+") as f:
        data = f[name][()].astype("f8")
        data[3] = 1e300
        del f[name]
        f.create_dataset(name, data=data)
    with pytest.raises(FormatError, match=r"mass of ion 3 \(1e\+300\) does not fit float32"):
        liprobe.read(p)


def _copy(nexus_files, tmp_path, which="plain", name="t.nxs"):
    p = tmp_path / name
    shutil.copy(nexus_files[which], p)
    return p


_MASS = f"/{ENTRY}/{COLUMN_PATHS['mass'][0]}"


@pytest.mark.parametrize("case", ["source dataset missing", "half mapped", "whole, same file"])
def test_a_virtual_field_is_read_only_when_its_sources_give_every_value(nexus_files,
                                                                        tmp_path, case):
    """HDF5 gives a virtual field's fill value where a source is missing or unmapped:
    liprobe refuses such a field (naming what is missing) instead of reading zeros."""
    p = _copy(nexus_files, tmp_path)
    with h5py.File(p, "r+") as f:
        data = f[_MASS][()]
        n = len(data)
        del f[_MASS]
        f.create_dataset("/raw_mass", data=data)
        layout = h5py.VirtualLayout(shape=(n,), dtype=data.dtype)
        if case == "source dataset missing":
            with h5py.File(tmp_path / "src.h5", "w") as g:
                g.create_dataset("other", data=data)
            layout[:] = h5py.VirtualSource(str(tmp_path / "src.h5"), "nope", shape=(n,))
        elif case == "half mapped":
            layout[: n // 2] = h5py.VirtualSource(".", "/raw_mass", shape=(n,))[: n // 2]
        else:
            layout[:] = h5py.VirtualSource(".", "/raw_mass", shape=(n,))
        f.create_virtual_dataset(_MASS, layout, fillvalue=0)
    if case == "whole, same file":
        assert np.array_equal(liprobe.read(p)["mass"], data)
        return
    want = ("source nope in .*src.h5 is missing" if case == "source dataset missing"
            else f"sources give {n // 2:,} of its {n:,} values")
    with pytest.raises(FormatError, match=want):
        liprobe.read(p)


def test_a_field_in_external_raw_files_is_refused_naming_them(nexus_files, tmp_path):
    """External raw storage: HDF5 looks for the raw file in the working folder and pads a
    short one with zeros, so liprobe does not read it, and says so."""
    p = _copy(nexus_files, tmp_path)
    with h5py.File(p, "r+") as f:
        data = f[_MASS][()]
        del f[_MASS]
        data.tofile(tmp_path / "raw.bin")
        f.create_dataset(_MASS, shape=data.shape, dtype=data.dtype,
                         external=[(str(tmp_path / "raw.bin"), 0, h5py.h5f.UNLIMITED)])
    with pytest.raises(FormatError, match=r"stored outside the HDF5 file, in external raw "
                                          r"file\(s\) .*raw.bin, which liprobe does not read"):
        liprobe.read(p)


@pytest.mark.parametrize("stored, value, target", [("u4", 300, "<u1"), ("f8", 1e20, "<i4"),
                                                   ("f8", 1.7, "<i4"), ("u4", 2**31, "<i4")])
def test_a_value_the_columns_integer_type_cannot_hold_is_said(nexus_files, tmp_path, stored,
                                                              value, target):
    """The column map asks for an integer type the stored values do not fit: no wrap (300
    as uint8 is 44), no truncation (1.7 is 1), no overflow; one line naming the ion."""
    p = _copy(nexus_files, tmp_path)
    name = f"/{ENTRY}/{COLUMN_PATHS['multiplicity'][0]}"
    with h5py.File(p, "r+") as f:
        data = f[name][()].astype(stored)
        data[4] = value
        del f[name]
        f.create_dataset(name, data=data)
        columns = json.loads(f[f"{ENTRY}/liprobe/column_map"][()])
        (col,) = [c for c in columns if c.get("name") == "multiplicity"]
        col["dtype"] = target
        del f[f"{ENTRY}/liprobe/column_map"]
        f[f"{ENTRY}/liprobe/column_map"] = json.dumps(columns)
    shown = re.escape(str(np.asarray(data[4])))
    with pytest.raises(FormatError, match=rf"multiplicity of ion 4 \({shown}\) is not a "
                                          rf"whole number that {np.dtype(target).name} holds"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            liprobe.read(p)


def test_a_broken_group_beside_the_entry_does_not_hide_it(nexus_files, tmp_path):
    """Another top-level group whose definition is declared but never written."""
    p = _copy(nexus_files, tmp_path, "ranged")
    with h5py.File(p, "r+") as f:
        f.create_group("aaa").create_dataset("definition", shape=(3,), dtype="S5",
                                             chunks=(1,))
    assert liprobe.read(p).n_ions == liprobe.read(nexus_files["ranged"]).n_ions


@pytest.mark.parametrize("volume", [float("nan"), float("inf"), -1.0, 10**400, "0.02", True])
def test_a_windows_volume_must_be_none_or_a_finite_number_at_least_zero(nexus_files,
                                                                         tmp_path, volume):
    p = _copy(nexus_files, tmp_path, "ranged")
    with h5py.File(p, "r+") as f:
        key = f"{ENTRY}/liprobe/ranges"
        ranges = json.loads(f[key][()])
        ranges[0]["volume"] = volume
        del f[key]
        f[key] = json.dumps(ranges)
    with pytest.raises(FormatError, match="is not a window"):
        liprobe.read_ranges(p)
