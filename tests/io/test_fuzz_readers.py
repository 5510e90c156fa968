"""Fuzzing the readers with mutated bytes of the real files (issue 27).

Every call on a mutated ``.pos``, ``.epos``, ``.rrng`` or ``.rng`` either returns a
valid object or raises :class:`liprobe.errors.LiprobeError`; none runs past the
per-test time limit (pytest-timeout). Each test has a fixed budget of examples so the
file runs in well under 30 s on 2 cores.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import liprobe
from liprobe.errors import LiprobeError
from liprobe.rangetable import RangeTable
from liprobe.run import Run

# a fixed budget, derandomised: the same examples every run
BUDGET = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])

#: Bytes of the ion files mutated: their start (headers and first records); the
#: readers memory-map, so the rest of a large file would only cost time.
ION_BYTES = 64 * 1024

RANGE_FILES = ["apav_si/Si.RRNG", "apav_si/Si.RNG", "apt_tools/rangefile.rrng",
               "rapt/example-rrng.rrng", "ifes_apt_tc/R18_53705-v03.rng",
               "ifes_apt_tc/Mo_range.rrng"]


def _mutations(n_bytes: int):
    """Lists of (offset, new byte) edits, plus an optional truncation length."""
    edit = st.tuples(st.integers(0, n_bytes - 1), st.integers(0, 255))
    return st.tuples(st.lists(edit, min_size=1, max_size=12),
                     st.one_of(st.none(), st.integers(0, n_bytes)))


def _mutate(data: bytes, mutation) -> bytes:
    edits, cut = mutation
    b = bytearray(data)
    for i, v in edits:
        if i < len(b):
            b[i] = v
    return bytes(b if cut is None else b[:cut])


def _check_run(run) -> None:
    assert isinstance(run, Run)
    assert run.n_ions >= 0
    for c in run.columns:
        assert len(run[c]) == run.n_ions


def _check_table(table) -> None:
    assert isinstance(table, RangeTable)
    for r in table.ranges:
        assert r.lo < r.hi


def _call(fn, path, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = fn(path)
            # columns are converted lazily: a non-finite position raises FormatError
            # when it is first read, which is our error too
            check(out)
        except LiprobeError as e:
            assert "\n" not in str(e)
            return


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name, reader", [
    ("Si_first100000.epos", "read_epos"), ("Si.pos", "read_pos"),
    ("Si_first100000.epos", "read"), ("Si.pos", "read")])
def test_mutated_ion_files_read_or_raise_our_error(real, tmp_path, name, reader):
    from liprobe.io import pos

    fn = liprobe.read if reader == "read" else getattr(pos, reader)
    with open(real / "apav_si" / name, "rb") as f:
        original = f.read(ION_BYTES)
    path = tmp_path / ("m" + name[name.rindex("."):])

    @BUDGET
    @given(mutation=_mutations(len(original)))
    def one(mutation):
        path.write_bytes(_mutate(original, mutation))
        _call(fn, path, _check_run)

    one()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", RANGE_FILES)
def test_mutated_range_files_read_or_raise_our_error(real, tmp_path, name):
    src = real / name
    if not src.exists():
        pytest.skip(f"{name} is not in the shared data")
    original = src.read_bytes()
    path = tmp_path / ("m" + src.suffix)

    @BUDGET
    @given(mutation=_mutations(len(original)))
    def one(mutation):
        path.write_bytes(_mutate(original, mutation))
        _call(liprobe.read_ranges, path, _check_table)

    one()


@pytest.mark.timeout(60)
@given(data=st.binary(min_size=0, max_size=2048),
       ext=st.sampled_from([".pos", ".epos", ".rrng", ".rng", ".dat"]))
@BUDGET
def test_random_bytes_read_or_raise_our_error(tmp_path_factory, data, ext):
    path = tmp_path_factory.mktemp("fuzz") / ("r" + ext)
    path.write_bytes(data)
    fn = liprobe.read_ranges if ext in (".rrng", ".rng") else liprobe.read
    _call(fn, path, _check_table if fn is liprobe.read_ranges else _check_run)


def test_mutation_helper():
    assert _mutate(b"abcd", ([(1, 0)], None)) == b"a\0cd"
    assert _mutate(b"abcd", ([(9, 0)], 2)) == b"ab"
    assert np.frombuffer(b"\0" * 4, np.uint8).sum() == 0
