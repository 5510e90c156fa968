"""Fuzzing the readers with mutated bytes of the real files (issue 27).

Every call on a mutated ``.pos``, ``.epos``, ``.apt``, ``.rrng`` or ``.rng`` either
returns a valid object (whose columns read) or raises
:class:`liprobe.errors.LiprobeError`; no example runs past its deadline and no test
past its time limit (pytest-timeout), so a hang fails instead of stalling CI. Each test
has a fixed, derandomised budget of examples: the whole file takes about 15 s on 2 cores
(budget: 60 s).
"""

import shutil
import struct
import warnings
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import liprobe
from liprobe.errors import LiprobeError
from liprobe.rangetable import RangeTable
from liprobe.run import Run

# a fixed budget, derandomised: the same examples every run; an example slower than the
# deadline fails (a generous one: a reader that loops or reads a whole file is far slower)
BUDGET = settings(max_examples=100, deadline=timedelta(seconds=5), derandomize=True,
                  database=None,
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


# -- AP Suite .apt: the header fields of a real file -----------------------------------

#: Examples of each .apt test: about 15 ms each when the whole 38 MB file reads.
APT_EXAMPLES = 1000

#: The integer fields of the 540-byte file header: (offset, width in bytes).
_APT_FILE_FIELDS = ((4, 4), (8, 4), (524, 8), (532, 8))
#: The integer fields of a section header, from its start: header size, header version,
#: section version, relationship type, record type, record data type, data type size,
#: record size, record count, byte count.
_APT_SECTION_FIELDS = ((4, 4), (8, 4), (76, 4), (80, 4), (84, 4), (88, 4), (92, 4), (96, 4),
                       (132, 8), (140, 8))


def _apt_layout(path):
    """``(regions, fields, first data byte)`` of an .apt file, walked with :mod:`struct`
    (not liprobe's reader): the byte ranges of its file header and of each section
    header (with the Position bounding box), and its integer header fields."""
    with open(path, "rb") as f:
        data = f.read(540)
        regions, fields = [(0, 540)], list(_APT_FILE_FIELDS)
        size = f.seek(0, 2)
        offset, first_data = 540, None
        while offset + 148 <= size:
            f.seek(offset)
            head = f.read(148)
            assert head[:4] == b"SEC\0", offset
            header_size, = struct.unpack_from("<i", head, 4)
            byte_count, = struct.unpack_from("<Q", head, 140)
            regions.append((offset, header_size))
            fields += [(offset + o, w) for o, w in _APT_SECTION_FIELDS]
            first_data = first_data or offset + header_size
            offset += header_size + byte_count
    assert data[:4] == b"APT\0" and offset == size
    return regions, fields, first_data


#: Values an integer header field is set to: the limits of its width, small sizes, and
#: the sizes of a real file's fields, off by one.
_BOUNDARY = (0, 1, 2, 3, 4, 8, 12, 16, 24, 32, 64, 147, 148, 149, 171, 172, 540, 945_210,
             945_211, 945_212, 3_780_844, 2**31 - 1, 2**31, 2**32 - 1, 2**63 - 1, 2**63,
             2**64 - 1)


def _apt_mutations(n_header_bytes: int, n_fields: int, head: int):
    """(byte edits in the header regions, field edits, truncation length or None)."""
    byte_edit = st.tuples(st.integers(0, n_header_bytes - 1), st.integers(0, 255))
    field_edit = st.tuples(st.integers(0, n_fields - 1),
                           st.one_of(st.sampled_from(_BOUNDARY), st.integers(0, 2**64 - 1)))
    return st.tuples(st.lists(byte_edit, max_size=12), st.lists(field_edit, max_size=3),
                     st.one_of(st.none(), st.none(), st.integers(0, head)))


@pytest.fixture
def apt_copy(real, tmp_path):
    """A writable copy of the real Si.apt, its layout, and its original header bytes."""
    src = real / "apav_si" / "Si.apt"
    if not src.exists():
        pytest.skip("apav_si/Si.apt is not in the shared data")
    path = tmp_path / "m.apt"
    shutil.copyfile(src, path)
    return path, _apt_layout(path)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("reader", ["read_apt", "read"])
def test_mutated_apt_headers_read_or_raise_our_error(apt_copy, tmp_path, reader):
    """Edits of the file header and the section headers of the real Si.apt (bytes, and
    whole integer fields set to boundary values), in place on a copy of the whole file
    (the sections' data stay real), or the start of the file cut anywhere before the
    first section's data ends."""
    from liprobe.io import apt

    path, (regions, fields, first_data) = apt_copy
    fn = liprobe.read if reader == "read" else apt.read_apt
    header_bytes = [o + i for o, n in regions for i in range(n)]
    head = first_data + 4096
    with open(path, "rb") as f:
        start = f.read(head)
        original = {}
        for o, n in regions:
            f.seek(o)
            original.update(zip(range(o, o + n), f.read(n)))
    cut_path = tmp_path / "cut.apt"

    @settings(BUDGET, max_examples=APT_EXAMPLES)
    @given(mutation=_apt_mutations(len(header_bytes), len(fields), head))
    def one(mutation):
        byte_edits, field_edits, cut = mutation
        edits = {header_bytes[i]: v for i, v in byte_edits}
        for k, value in field_edits:
            offset, width = fields[k]
            raw = (value % 2 ** (8 * width)).to_bytes(width, "little")
            edits.update({offset + j: b for j, b in enumerate(raw)})
        if cut is not None:
            b = bytearray(start)
            for offset, v in edits.items():
                if offset < len(b):
                    b[offset] = v
            cut_path.write_bytes(bytes(b[:cut]))
            _call(fn, cut_path, _check_run)
            return
        with open(path, "r+b") as f:
            try:
                for offset, v in edits.items():
                    f.seek(offset)
                    f.write(bytes([v]))
                f.flush()
                _call(fn, path, _check_run)
            finally:
                for offset in edits:
                    f.seek(offset)
                    f.write(bytes([original[offset]]))
                f.flush()

    one()
    # every edit was undone: the copy is the real file again
    with open(path, "rb") as f:
        assert all(f.seek(o) == o and f.read(n) == bytes(original[o + i] for i in range(n))
                   for o, n in regions)


def test_apt_layout_of_the_real_file(apt_copy):
    _, (regions, fields, first_data) = apt_copy
    assert regions[0] == (0, 540) and len(regions) == 8      # 7 sections
    assert regions[-1][1] == 172                            # Position, with its box
    assert first_data == 540 + 148 and len(fields) == 4 + 7 * 10


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
