"""Progress bars of `liprobe reconstruct` and `liprobe autorange` on large files (issue
"First hour"): a tqdm bar with an ETA on stderr when stderr is a terminal and the file has
at least PROGRESS_MIN_IONS ions; none when stderr is not a terminal, with --quiet, or for
a smaller file. The threshold is lowered for these tests through the environment variable
LIPROBE_PROGRESS_MIN_IONS (read by the command line only), since the commands run in
their own process, on a pseudo-terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import liprobe
from liprobe.cli._common import PROGRESS_MIN_IONS, PROGRESS_MIN_IONS_ENV
from liprobe.io.pos import EPOS_DTYPE

from .._terminal import LIPROBE, on_a_terminal

N = 300_000                      # ions of the generated file
LOW = {PROGRESS_MIN_IONS_ENV: "100000"}                # the threshold below N


@pytest.fixture(scope="module")
def epos(tmp_path_factory):
    """An .epos of N ions: hits on a 35 mm disc, a voltage ramp, Si-like peaks."""
    rng = np.random.default_rng(5)
    raw = np.zeros(N, EPOS_DTYPE)
    r = 35 * np.sqrt(rng.uniform(0, 1, N))
    phi = rng.uniform(-np.pi, np.pi, N)
    raw["det_x"], raw["det_y"] = r * np.cos(phi), r * np.sin(phi)
    raw["v_dc"] = np.linspace(4000, 6000, N)
    peaks = np.array([14.0, 14.5, 15.0, 28.0, 29.0, 30.0, 16.0, 32.0])
    w = np.array([50, 3, 2, 20, 1, 0.7, 5, 3.0])
    m = rng.choice(peaks, N, p=w / w.sum()) + rng.normal(0, 0.01, N)
    m[: N // 50] = rng.uniform(0.5, 100, N // 50)
    raw["mass"] = m
    raw["tof"] = 300 * np.sqrt(m)
    raw["multiplicity"] = 1
    path = tmp_path_factory.mktemp("progress") / "large.epos"
    raw.tofile(path)
    assert liprobe.read(path).n_ions == N
    return path


def plain(args, env_extra):
    """Run liprobe ARGS with stdout and stderr on pipes (not a terminal)."""
    return subprocess.run([str(LIPROBE), *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env_extra})


def reconstruct_args(epos, out):
    return ["reconstruct", epos, "-o", out, "--material", "NMC811"]


def autorange_args(epos, out):
    return ["autorange", epos, "--elements", "Si,O", "-o", out]


def assert_bar(text, desc):
    """A finished tqdm bar: 100 %, N ions of N, elapsed<remaining (the ETA)."""
    assert f"{desc}: 100%|" in text, text
    assert "300k/300k" in text and " ions" in text, text
    tail = text.split(f"{desc}: ")[-1]
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d", tail), text


def test_the_default_threshold_is_five_million_ions():
    assert PROGRESS_MIN_IONS == 5_000_000


pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="a pseudo-terminal: Linux")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("command, desc", [(reconstruct_args, "reconstruct"),
                                           (autorange_args, "autorange")])
def test_on_a_terminal_a_large_file_shows_a_bar_with_an_eta(epos, tmp_path, command, desc):
    out = tmp_path / ("o.pos" if desc == "reconstruct" else "o.rrng")
    rc, text = on_a_terminal(command(epos, out), LOW)
    assert rc == 0, text
    assert_bar(text, desc)
    assert out.exists() and "Traceback" not in text
    # the same terminal and file with --quiet: no bar, the same result
    out_q = tmp_path / ("q.pos" if desc == "reconstruct" else "q.rrng")
    rc, text = on_a_terminal([*command(epos, out_q), "--quiet"], LOW)
    assert rc == 0, text
    assert "%|" not in text and f"{desc}:" not in text.split("\n")[0]
    assert out_q.read_bytes() == out.read_bytes()
    # below the threshold (the default, 5 M ions): no bar
    rc, text = on_a_terminal(command(epos, out_q), {})
    assert rc == 0 and "%|" not in text, text


@pytest.mark.timeout(240)
@pytest.mark.parametrize("command", [reconstruct_args, autorange_args])
def test_no_bar_when_stderr_is_not_a_terminal(epos, tmp_path, command):
    out = tmp_path / ("o.pos" if command is reconstruct_args else "o.rrng")
    res = plain(command(epos, out), LOW)
    assert res.returncode == 0, res.stderr
    assert "%|" not in res.stderr and "ions/s" not in res.stderr, res.stderr
    assert out.exists()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("bad", ["lots", "inf", "nan", "-3", "2.5"])
def test_a_bad_threshold_is_a_usage_error_where_a_bar_could_show(epos, tmp_path, bad):
    """On a terminal the threshold is read: a bad value is one usage line (inf too, not an
    OverflowError); off a terminal no bar can show, and the value is not even read."""
    rc, text = on_a_terminal(reconstruct_args(epos, tmp_path / "o.pos"),
                             {PROGRESS_MIN_IONS_ENV: bad})
    assert rc == 2 and "Traceback" not in text, text
    assert f"{PROGRESS_MIN_IONS_ENV} must be a whole number of ions, got '{bad}'" in text
    res = plain(reconstruct_args(epos, tmp_path / "p.pos"), {PROGRESS_MIN_IONS_ENV: bad})
    assert res.returncode == 0 and (tmp_path / "p.pos").exists(), res.stderr


def test_the_callback_sees_both_passes_of_every_chunk():
    """reconstruct's progress(done, total): per chunk of each pass, total 2 n, ending at
    2 n; the positions do not depend on it."""
    from liprobe.spatial.reconstruct import ReconstructionParameters, reconstruct

    rng = np.random.default_rng(2)
    n = 100_000
    dx, dy = rng.uniform(-20, 20, n), rng.uniform(-20, 20, n)
    v = np.linspace(4000, 5000, n)
    p = ReconstructionParameters.preset(material="NMC811")
    calls = []
    a = reconstruct(dx, dy, v, p, chunk_ions=1 << 15,
                    progress=lambda done, total: calls.append((done, total)))
    b = reconstruct(dx, dy, v, p, chunk_ions=1 << 15)
    chunks = -(-n // (1 << 15))                        # 4 chunks of 32768 ions
    assert len(calls) == 2 * chunks and {t for _, t in calls} == {2 * n}
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[chunks - 1] == n and done[-1] == 2 * n
    assert done[0] == 1 << 15
    assert np.array_equal(a.z_nm, b.z_nm)
