"""Writing Oak Ridge .rng range files: read back by liprobe and by ifes."""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

import liprobe
from liprobe import Range, RangeTable, parse_ion
from liprobe.chemistry import Ion
from liprobe.errors import FormatError
from liprobe.io.rng import read_rng, write_rng

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from make_ifes_range_fixtures import ifes_windows


def test_si_ranges_written_as_rng_read_back_the_same(real, tmp_path):
    table = liprobe.read_ranges(real / "apav_si" / "Si.RRNG")
    liprobe.write_ranges(tmp_path / "si.rng", table)
    back = read_rng(tmp_path / "si.rng")
    assert [(r.lo, r.hi, r.ion) for r in back] == [(r.lo, r.hi, r.ion) for r in table]
    # colours of single atoms and molecules: the first of each, as Si.RNG itself has them
    given = read_rng(real / "apav_si" / "Si.RNG")
    assert [r.color for r in back] == [r.color for r in given]
    assert back.warnings == ()


def test_ifes_reads_the_written_rng(real, tmp_path):
    table = liprobe.read_ranges(real / "apav_si" / "Si.RRNG")
    path = tmp_path / "si.rng"
    write_rng(path, table)
    logging.disable(logging.WARNING)
    try:
        got = ifes_windows(path)
    finally:
        logging.disable(logging.NOTSET)
    mine = sorted((r.lo, r.hi, tuple(sorted(Counter(dict(r.ion.atoms)).items())))
                  for r in table)
    theirs = sorted((w["lo"], w["hi"], tuple(sorted(w["atoms"].items()))) for w in got)
    assert theirs == mine
    for w in got:      # where ifes finds a charge it is ours
        if w["charge"]:
            r = next(r for r in table if (r.lo, r.hi) == (w["lo"], w["hi"]))
            assert r.ion.charge == w["charge"]


def test_molecules_keep_their_atom_order_and_named_ions_their_label(tmp_path):
    table = RangeTable.from_ranges([
        Range(15.9, 16.2, parse_ion("O+")),
        Range(74.8, 75.2, parse_ion("NiO+"), color="#123456"),
        Range(90.8, 91.2, parse_ion("NiO2+")),
        Range(1.0, 2.0, Ion((), None, label="noise")),
    ])
    write_rng(tmp_path / "t.rng", table)
    text = (tmp_path / "t.rng").read_text()
    assert text.splitlines()[0] == "3 4"
    assert "--- polyatomic extension" in text
    back = read_rng(tmp_path / "t.rng")
    assert [r.ion for r in back] == [r.ion for r in table]
    assert next(r for r in back if r.ion.formula == "NiO").color == "#123456"


def test_what_rng_cannot_hold_is_refused(tmp_path):
    # a charge the window would not give back (Si+ at Si++'s mass)
    odd = RangeTable.from_ranges([Range(13.9, 14.2, Ion((("Si", 1),), 1))])
    with pytest.raises(FormatError, match="another charge.*write .rrng"):
        write_rng(tmp_path / "a.rng", odd)
    formula_like = RangeTable.from_ranges([Range(1.0, 2.0, Ion((), None, label="IFB"))])
    with pytest.raises(FormatError, match="'IFB' would read back as a formula"):
        write_rng(tmp_path / "b.rng", formula_like)
    with pytest.raises(FormatError, match="no window"):
        write_rng(tmp_path / "c.rng", RangeTable.from_ranges([]))
    assert os.listdir(tmp_path) == []
