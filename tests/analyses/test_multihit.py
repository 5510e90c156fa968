"""Multiple hits against a hand-built event column and the real Si .epos prefix."""

import numpy as np
import pytest

import liprobe
from liprobe.errors import AnalysisError, ColumnError
from liprobe.spectrum.multihit import (
    correlation_histogram,
    dissociation_track,
    event_sizes,
    hit_mask,
    ion_pairs,
    multiplicity_stats,
    require_multiplicity,
)


def test_events_from_the_epos_multiplicity_column():
    mult = np.array([1, 2, 0, 1, 3, 0, 0, 1])
    assert event_sizes(mult).tolist() == [1, 2, 2, 1, 3, 3, 3, 1]
    assert hit_mask(mult, "single").tolist() == [1, 0, 0, 1, 0, 0, 0, 1]
    m = np.arange(8, dtype=float)
    pairs = ion_pairs(m, mult)
    assert sorted(map(tuple, pairs.tolist())) == [(1, 2), (4, 5), (4, 6), (5, 6)]
    with pytest.raises(AnalysisError, match="claims 3 ions"):
        event_sizes(np.array([1, 3, 0, 1]))
    with pytest.raises(AnalysisError, match="first ion"):
        event_sizes(np.array([0, 1]))


def test_real_si_epos_statistics_match_its_provenance(real):
    run = liprobe.read(real / "apav_si" / "Si_first100000.epos")
    s = multiplicity_stats(run["multiplicity"])
    # PROVENANCE.md: ipp {0: 2088, 1: 95966, 2: 1821, 3: 112, 4: 11, 5: 1, 7: 1}
    assert s.events_by_size == {1: 95966, 2: 1821, 3: 112, 4: 11, 5: 1, 7: 1}
    assert s.ions == 100_000 and s.events == 100_000 - 2088
    ch = correlation_histogram(run["mass"], run["multiplicity"], 0.1, (0, 120))
    assert ch.pairs == 1821 + 3 * 112 + 6 * 11 + 10 + 21
    assert ch.counts.sum() <= ch.pairs


def test_pos_file_has_no_multiplicity(real):
    run = liprobe.read(real / "apav_si" / "Si.pos")
    with pytest.raises(ColumnError, match="multiplicity column of an .epos"):
        require_multiplicity(run)


def test_dissociation_track_runs_from_fragments_to_parent():
    tr = dissociation_track("NiO2++", "NiO+", "O+", 11)
    assert tr[0, 0] == pytest.approx(73.93, abs=0.01)
    assert tr[0, 1] == pytest.approx(15.995, abs=0.01)
    assert tr[-1, 0] == pytest.approx(tr[-1, 1], rel=1e-6)      # both at the parent's m/n
    assert tr[-1, 0] == pytest.approx(44.96, abs=0.02)
    with pytest.raises(AnalysisError):
        dissociation_track("NiO2++", "NiO+", "O2+")


def test_hit_mask_of_a_file_in_chunks_equals_the_whole_column(real):
    """The real Si .epos prefix (events of up to 7 ions), read in chunks of 997 ions
    (events cut across chunks): the packed mask equals hit_mask of the whole column."""
    from liprobe.spectrum.multihit import hit_mask_run

    run = liprobe.read(real / "apav_si" / "Si_first100000.epos")
    mult = np.asarray(run["multiplicity"])
    for which in ("single", "multiple", "all"):
        want = hit_mask(mult, which)
        for chunk in (997, 8, 1 << 20):
            pm = hit_mask_run(run, which, chunk_ions=chunk)
            assert np.array_equal(pm.to_bool(), want), (which, chunk)
    assert hit_mask_run(run, "multiple").count() == 100_000 - 95_966
    with pytest.raises(ColumnError, match="multiplicity column"):
        hit_mask_run(liprobe.read(real / "apav_si" / "Si.pos"), "single")
    bad = liprobe.Run.from_arrays(mass=np.ones(4), multiplicity=np.array([1, 3, 0, 1]))
    with pytest.raises(AnalysisError, match="claims 3 ions"):
        hit_mask_run(bad, "single", chunk_ions=2)


def test_spectrum_of_single_hits_equals_the_in_memory_selection(real):
    """``liprobe spectrum --multiplicity single`` (a lazy packed selection) gives the peaks
    of the single-hit masses selected in memory."""
    import json

    from click.testing import CliRunner

    from liprobe.cli import cli
    from liprobe.spectrum import analyse_peaks

    f = real / "apav_si" / "Si_first100000.epos"
    res = CliRunner().invoke(cli, ["spectrum", str(f), "--multiplicity", "single", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    run = liprobe.read(f)
    keep = hit_mask(run["multiplicity"], "single")
    pa = analyse_peaks(np.asarray(run["mass"])[keep], np.asarray(run["tof"])[keep],
                       (0.5, 200.0))
    assert d["ions_selected"] == 95_966 == int(keep.sum())
    assert d["peaks"] == pa.to_dict()["peaks"] and len(d["peaks"]) >= 3
