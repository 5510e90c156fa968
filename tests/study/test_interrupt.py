"""Ctrl-C during a study (issue 26): SIGINT sent to the study's whole process group, as a
terminal sends it, stops `liprobe study` within 5 s with one line and exit code 130, no
traceback from the Dask workers and no process left behind; the rows finished are in the
cache and the same command resumes from them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .._terminal import LIPROBE, ctrl_c, group, on_a_terminal


@pytest.mark.timeout(240)
@pytest.mark.skipif(sys.platform != "linux", reason="process groups and pgrep: Linux")
def test_ctrl_c_stops_the_study_cleanly_and_a_rerun_resumes(study_dir, tmp_path):
    out = tmp_path / "out"
    err = tmp_path / "stderr.txt"
    rc, took, left, text = ctrl_c(                 # once a row is done
        ["study", study_dir / "study.toml", "-o", out, "--workers", "2"], err,
        lambda p: "study: [1/" in err.read_text())
    assert rc == 130, text
    assert took < 5.0, f"{took:.1f} s"
    assert left == [], f"processes outlived the study: {left}"
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    last = text.strip().splitlines()[-1]
    assert last.startswith("liprobe: study interrupted: ") and "resumes" in last
    done = int(last.split(": ")[2].split()[0])
    assert done >= 1
    records = list((out / "cache").glob("*.json"))
    assert len(records) >= done
    # the same command resumes: the finished rows come from the cache
    res = subprocess.run([str(LIPROBE), "study", str(study_dir / "study.toml"), "-o", str(out),
                          "--workers", "0", "-q"], capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    cached = int(res.stdout.split(" from the cache")[0].rsplit(", ", 1)[1])
    assert cached >= done


@pytest.mark.timeout(240)
@pytest.mark.skipif(sys.platform != "linux", reason="a pseudo-terminal: Linux")
def test_on_a_terminal_the_study_shows_a_progress_bar_with_an_eta(study_dir, tmp_path):
    """stderr a terminal: a tqdm bar (percent, rows, elapsed<remaining) instead of one line
    per row; not a terminal: the lines, and no bar."""
    import re

    rc, text = on_a_terminal(["study", study_dir / "study.toml", "-o", tmp_path / "tty",
                              "--workers", "0"])
    assert rc == 0, text

    n = int(re.search(r"\| 0/(\d+) ", text).group(1))
    assert "study: 100%|" in text and f"{n}/{n}" in text and " rows" in text and n >= 7
    assert "<" in text.split("study: ")[1]                  # elapsed<remaining: the ETA
    assert "study: [1/" not in text                         # no per-row lines on a terminal
    plain = subprocess.run([str(LIPROBE), "study", str(study_dir / "study.toml"), "-o",
                            str(tmp_path / "pipe"), "--workers", "0"], capture_output=True,
                           text=True, timeout=180)
    assert f"study: [1/{n}]" in plain.stderr and "%|" not in plain.stderr


@pytest.mark.timeout(120)
@pytest.mark.skipif(sys.platform != "linux", reason="process groups and pgrep: Linux")
@pytest.mark.parametrize("when", ["workers starting", "runs under way"])
def test_ctrl_c_stops_the_series_simulation_at_once_and_leaves_no_scratch(tmp_path, when):
    """`simulate --preset` (the demo's first step) with two worker processes: Ctrl-C stops
    the runs under way instead of waiting for them, and their scratch folders and
    temporary files are gone with them. A Ctrl-C while the workers are still starting
    (importing liprobe) prints no traceback from them either."""
    out = tmp_path / "series"

    def ready(p):
        # the main process, the resource tracker and the two workers; then, for "runs
        # under way", a run's scratch folder
        return len(group(p.pid)) >= 4 and (when == "workers starting" or any(
            (out / "runs").glob(".liprobe-simulate-*")))

    rc, took, left, text = ctrl_c(["simulate", "--preset", "paper", "-o", out, "--ions",
                                   "2e6", "--workers", "2"], tmp_path / "stderr.txt", ready,
                                  ready_timeout=60)
    assert rc == 130, text
    assert took < 5.0, f"{took:.1f} s (a 2e6-ion run takes about a minute)"
    assert left == []
    assert "Traceback" not in text and text.strip().splitlines()[-1] == "liprobe: interrupted"
    leftovers = [q.name for q in (out / "runs").iterdir() if q.name.startswith(".")]
    assert leftovers == [], leftovers
    assert not (out / "study.toml").exists()
