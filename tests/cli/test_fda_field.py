"""``liprobe fda`` and ``liprobe field``: real data against plain numpy, JSON, exit codes."""

import re

import numpy as np
import pytest

import liprobe
from liprobe.chemistry import parse_ion
from liprobe.rangetable import Range, RangeTable

from ..analyses.test_fda import independent_fda
from ._run import run_cli, strict_json


def si_windows(real):
    """(lo, hi, atoms) of Si.RRNG read with a regex, sorted by lo."""
    text = (real / "apav_si" / "Si.RRNG").read_text()
    rows = []
    for lo, hi, rest in re.findall(r"Range\d+=([\d.]+) ([\d.]+) Vol:[\d.]+ (.*?) Color", text):
        rows.append((float(lo), float(hi), dict((el, int(n)) for el, n in
                                                re.findall(r"([A-Z][a-z]?):(\d+)", rest))))
    return sorted(rows)


def si_labels(real):
    mass = np.fromfile(real / "apav_si" / "Si.pos", dtype=">f4").reshape(-1, 4)[:, 3]
    wins = si_windows(real)
    edges = np.array([[lo, hi] for lo, hi, _ in wins]).ravel()
    j = np.searchsorted(edges, mass.astype(np.float64), side="right")
    return np.where(j % 2 == 1, (j - 1) // 2, -1), wins


@pytest.mark.parametrize("species,exclude,norm", [("Si++", None, "solute"), ("O+", "Cr", "blocks")])
def test_fda_on_real_si_equals_plain_numpy(real, species, exclude, norm):
    label, wins = si_labels(real)
    # by hand: Si below 20 Da is Si++ (14, 14.5, 15 Da); both O windows (16, 18 Da) are O+
    is_species = np.array([("Si" in a and hi < 20) if species == "Si++" else a == {"O": 1}
                           for _, hi, a in wins] + [False])
    keep_w = np.array([exclude not in a for _, _, a in wins] + [False])
    keep = keep_w[label]
    flags = is_species[label][keep]
    nb = len(flags) // 100
    k = flags[:nb * 100].reshape(nb, 100).sum(axis=1)
    args = ["fda", real / "apav_si" / "Si.pos", "-r", real / "apav_si" / "Si.RRNG",
            "--species", species, "--block", "100", "--normalization", norm, "--json"]
    if exclude:
        args += ["--exclude", exclude]
    code, out, err = run_cli(*args)
    assert code == 0, err
    d = strict_json(out)
    assert d["species"] == species and d["block"] == 100 and d["blocks"] == nb
    assert d["ions_selected"] == len(label) and d["ions_kept"] == int(keep.sum())
    assert d["fraction"] == pytest.approx(k.sum() / (100 * nb), rel=1e-12)
    assert d["observed"] == np.bincount(k, minlength=101).tolist()
    chi2, dof, pval, mu = independent_fda(k, 100, norm)
    assert d["chi2"] == pytest.approx(chi2, rel=1e-9) and d["dof"] == dof
    assert d["p_value"] == pytest.approx(pval, rel=1e-6, abs=1e-300)
    assert d["mu"] == pytest.approx(mu, rel=1e-9)
    assert d["normalization"] == norm and 0 <= d["mu_shuffled"] < d["mu"]
    assert len(d["expected"]) == 101


def test_field_on_real_si_equals_plain_numpy(real):
    label, wins = si_labels(real)
    counts = np.bincount(label + 1, minlength=len(wins) + 1)[1:]

    def n(pred):
        return int(sum(c for c, (lo, hi, a) in zip(counts, wins) if pred(lo, hi, a)))
    si2 = n(lambda lo, hi, a: a == {"Si": 1} and hi < 20)
    si1 = n(lambda lo, hi, a: a == {"Si": 1} and lo > 20)
    cr2 = n(lambda lo, hi, a: a == {"Cr": 1} and hi < 30)
    cr1 = n(lambda lo, hi, a: a == {"Cr": 1} and lo > 30)
    code, out, err = run_cli("field", real / "apav_si" / "Si.pos",
                             "-r", real / "apav_si" / "Si.RRNG",
                             "--ratio", "CrO++/CrO+", "--json")
    assert code == 0, err
    d = strict_json(out)
    csr = d["charge_state_ratios"]
    assert (csr["Si++/Si+"]["numerator"], csr["Si++/Si+"]["denominator"]) == (si2, si1)
    assert csr["Si++/Si+"]["value"] == pytest.approx(si2 / si1)
    assert csr["Si++/Si+"]["error"] == pytest.approx(si2 / si1 * np.sqrt(1 / si2 + 1 / si1))
    assert csr["Cr++/Cr+"]["value"] == pytest.approx(cr2 / cr1)
    assert set(csr) == {"Si++/Si+", "Cr++/Cr+", "C++/C+"}
    o = d["ratios"]["O2+/O+"]
    assert o["value"] is None and o["error"] is None and "not ranged" in o["reason"]
    assert d["ratios"]["CrO++/CrO+"]["value"] == pytest.approx(
        n(lambda lo, hi, a: a == {"Cr": 1, "O": 1} and hi < 40)
        / n(lambda lo, hi, a: a == {"Cr": 1, "O": 1} and lo > 40))


# -- a small synthetic file -----------------------------------------------------------

@pytest.fixture(scope="module")
def small_pos(tmp_path_factory):
    """20,000 ions of Li+, O+, O2+, Mn++, Mn+, Cr+ in a 30 nm needle, and its range table."""
    d = tmp_path_factory.mktemp("fda")
    ions = ["Li+", "O+", "O2+", "Mn++", "Mn+", "Cr+"]
    ranges = []
    peaks = {}
    for name in ions:
        ion = parse_ion(name)
        m = max(ion.peaks(), key=lambda p: p[1])[0]
        peaks[name] = m
        ranges.append(Range(m - 0.05, m + 0.05, ion))
    table = RangeTable.from_ranges(ranges)
    rng = np.random.default_rng(0)
    n = 20_000
    pick = rng.choice(len(ions), n, p=[0.3, 0.2, 0.3, 0.05, 0.1, 0.05])
    mass = np.array([peaks[i] for i in ions])[pick] + rng.uniform(-0.02, 0.02, n)
    r = 15 * np.sqrt(rng.random(n))
    t = rng.uniform(0, 2 * np.pi, n)
    run = liprobe.Run.from_arrays(x=r * np.cos(t), y=r * np.sin(t), z=-np.linspace(0, 30, n),
                                  mass=mass.astype(np.float32))
    liprobe.write(d / "s.pos", run)
    liprobe.write_ranges(d / "s.rrng", table)
    return d / "s.pos", d / "s.rrng"


def test_fda_roi_segment_and_figure(small_pos, tmp_path):
    pos, rrng = small_pos
    png = tmp_path / "fda.png"
    code, out, err = run_cli("fda", pos, "-r", rrng, "--species", "Li+", "--roi", "cylinder:20",
                             "--segment", "2000:18000", "--exclude", "Cr", "-o", png, "--json")
    assert code == 0, err
    d = strict_json(out)
    assert d["selection"]["segment"] == [2000, 18000] and d["selection"]["kind"] == "cylinder"
    assert d["ions_selected"] == d["selection"]["ions_selected"] < 16000
    for key in ("species", "block", "blocks", "fraction", "observed", "expected", "chi2", "dof",
                "p_value", "mu", "mu_shuffled", "normalization"):
        assert key in d
    assert d["figure"] == str(png) and png.read_bytes()[:4] == b"\x89PNG"
    assert d["mu"] < 0.2 and abs(d["mu"] - d["mu_shuffled"]) < 0.1   # random labels


def test_fda_text_output_and_element_species(small_pos):
    pos, rrng = small_pos
    code, out, err = run_cli("fda", pos, "-r", rrng, "--species", "Mn", "--block", "50")
    assert code == 0, err
    assert "Mn in " in out and "mu_shuffled" in out and "N = solute" in out


def test_fda_voxel_blocks(small_pos):
    pos, rrng = small_pos
    code, out, err = run_cli("fda", pos, "-r", rrng, "--species", "O2+", "--blocks", "voxel",
                             "--json")
    assert code == 0, err
    d = strict_json(out)
    assert d["blocking"] == "voxel" and d["voxel_nm"] > 0 and d["blocks"] > 100


def test_field_on_a_small_file(small_pos):
    pos, rrng = small_pos
    code, out, err = run_cli("field", pos, "-r", rrng, "--roi", "cylinder:20", "--json")
    assert code == 0, err
    d = strict_json(out)
    assert set(d["charge_state_ratios"]) == {"Mn++/Mn+"}
    o = d["ratios"]["O2+/O+"]
    assert o["value"] == pytest.approx(d["ion_counts"]["O2+"] / d["ion_counts"]["O+"])
    assert d["ratios"]["O+/(O+ + O2+)"]["value"] == pytest.approx(1 / (1 + o["value"]))
    assert any("54CrH+" in w for w in d["warnings"])
    code, out, err = run_cli("field", pos, "-r", rrng)
    assert code == 0 and "O2+/O+" in out and "Mn++/Mn+" in out


@pytest.mark.parametrize("args,code,text", [
    (["fda", "--species", "Xx+"], 2, "not a chemical element"),
    (["fda", "--species", "Li+", "--block", "0"], 2, "at least 1"),
    (["fda", "--species", "Li+", "--exclude", "Qq"], 2, "not a chemical element"),
    (["fda", "--species", "Li+", "-o", "fda.pdf"], 2, ".png or .svg"),
    (["fda", "--species", "Li+", "--normalization", "atoms"], 2, "atoms"),
    (["fda", "--species", "Co+"], 1, "Co+ is not ranged"),
    (["fda", "--species", "Li+", "--block", "1e6"], 1, "larger than the ions"),
    (["fda", "--species", "Cr+", "--exclude", "Cr"], 1, "dropped"),
    (["field", "--ratio", "Li/(Li+Mn)"], 2, "element"),
    (["field", "--ratio", "Mn++/"], 2, "--ratio"),
])
def test_errors_and_exit_codes(small_pos, args, code, text):
    pos, rrng = small_pos
    got, out, err = run_cli(args[0], pos, "-r", rrng, *args[1:])
    assert got == code, (out, err)
    assert text in err and out == ""
    if code == 1:
        assert len(err.strip().splitlines()) == 1 and err.startswith("liprobe: error:")


def test_missing_file_exits_1(small_pos, tmp_path):
    _pos, rrng = small_pos
    for cmd in (["fda", "--species", "Li+"], ["field"]):
        code, out, err = run_cli(cmd[0], tmp_path / "nope.pos", "-r", rrng, *cmd[1:])
        assert code == 1 and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [
    ["composition", "--ratio", "Si2+/Si+"],
    ["field", "--ratio", "Si2+/Si+"],
    ["fda", "--species", "Si2+", "--block", "100"],
])
def test_an_ion_that_looks_alike_is_one_line_naming_the_likely_ion(real, args):
    """Si2+ (the Si2 molecule) where Si++ is ranged: every command says so, exit 1."""
    cmd, *rest = args
    code, out, err = run_cli(cmd, real / "apav_si" / "Si.pos", "-r",
                             real / "apav_si" / "Si.RRNG", *rest)
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert "Si2+ is the Si2 molecule (singly charged)" in err
    assert "did you mean Si++ (doubly charged Si)?" in err
