"""Ctrl-C during a study (issue 26): SIGINT sent to the study's whole process group, as a
terminal sends it, stops `liprobe study` within 5 s with one line and exit code 130, no
traceback from the Dask workers and no process left behind; the rows finished are in the
cache and the same command resumes from them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

LIPROBE = Path(sys.executable).with_name("liprobe")


def _group(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.timeout(240)
@pytest.mark.skipif(sys.platform != "linux", reason="process groups and pgrep: Linux")
def test_ctrl_c_stops_the_study_cleanly_and_a_rerun_resumes(study_dir, tmp_path):
    out = tmp_path / "out"
    err = tmp_path / "stderr.txt"
    with open(err, "w") as f:
        p = subprocess.Popen(
            [str(LIPROBE), "study", str(study_dir / "study.toml"), "-o", str(out),
             "--workers", "2"], stdout=subprocess.DEVNULL, stderr=f, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 180
        while "study: [1/" not in err.read_text() and p.poll() is None:   # a row is done
            assert time.time() < deadline, "the study finished no row"
            time.sleep(0.05)
        assert p.poll() is None, "the study ended before it could be interrupted"
        t0 = time.time()
        os.killpg(p.pid, signal.SIGINT)              # what Ctrl-C in a terminal does
        rc = p.wait(timeout=30)
        took = time.time() - t0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    # multiprocessing's resource tracker ends by itself once the study's pipe closes
    deadline = time.time() + 5
    while _group(p.pid) and time.time() < deadline:
        time.sleep(0.1)
    left = _group(p.pid)
    what = [Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ") for pid in left
            if Path(f"/proc/{pid}/cmdline").exists()]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    text = err.read_text()
    assert rc == 130, text
    assert took < 5.0, f"{took:.1f} s"
    assert left == [], f"processes outlived the study: {what}"
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
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    p = subprocess.Popen([str(LIPROBE), "study", str(study_dir / "study.toml"), "-o",
                          str(tmp_path / "tty"), "--workers", "0"],
                         stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    buf = b""
    while True:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
        elif p.poll() is not None:
            break
    assert p.wait(timeout=60) == 0
    text = buf.decode(errors="replace")
    import re

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
    err = tmp_path / "stderr.txt"
    with open(err, "w") as f:
        p = subprocess.Popen(
            [str(LIPROBE), "simulate", "--preset", "paper", "-o", str(out), "--ions", "2e6",
             "--workers", "2"], stdout=subprocess.DEVNULL, stderr=f, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 60
        # the main process, the resource tracker and the two workers
        while len(_group(p.pid)) < 4:
            assert p.poll() is None and time.time() < deadline, err.read_text()
            time.sleep(0.1)
        deadline = time.time() + 30
        while when == "runs under way" and not list((out / "runs").glob(".liprobe-simulate-*")):
            assert p.poll() is None and time.time() < deadline, err.read_text()
            time.sleep(0.1)
        t0 = time.time()
        os.killpg(p.pid, signal.SIGINT)
        rc = p.wait(timeout=30)
        took = time.time() - t0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    deadline = time.time() + 5
    while _group(p.pid) and time.time() < deadline:
        time.sleep(0.1)
    left = _group(p.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    text = err.read_text()
    assert rc == 130, text
    assert took < 5.0, f"{took:.1f} s (a 2e6-ion run takes about a minute)"
    assert left == []
    assert "Traceback" not in text and text.strip().splitlines()[-1] == "liprobe: interrupted"
    leftovers = [q.name for q in (out / "runs").iterdir() if q.name.startswith(".")]
    assert leftovers == [], leftovers
    assert not (out / "study.toml").exists()
