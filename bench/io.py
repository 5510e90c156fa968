"""Benchmark of the readers: opening and materialising the mass column.

    python bench/io.py [--ions 5e7] [--repeats 5] [--keep]

Writes a synthetic .pos and .epos of ``--ions`` ions under bench/data/ (its own
files), then times, median of ``--repeats`` in one process with a warm page
cache: opening the file (``liprobe.read``), and materialising the mass column
(native float32 from the big-endian memory map). Each is reported in seconds,
million ions per second, and as a ratio to copy-record (``np.copyto`` of the
whole record array already in memory, same process). Also times the whole
command ``liprobe info`` on a small real file. Writes bench/results/io.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    copy_bytes_baseline,
    copy_record_baseline,
    machine_line,
    markdown_table,
    median_time,
    warm_page_cache,
)

import liprobe
from liprobe.io.pos import EPOS_DTYPE, POS_DTYPE

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "data" / "real"


def synthetic_file(path: Path, dtype: np.dtype, n: int, chunk: int = 1 << 22) -> None:
    """Write ``n`` records of an NMC-like run (masses at a few peaks) to ``path`` once."""
    if path.exists() and path.stat().st_size == n * dtype.itemsize:
        return
    rng = np.random.default_rng(1)
    peaks = np.array([7.016, 15.995, 31.99, 28.97, 57.94, 29.47, 27.47, 73.93])
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            rec = np.zeros(m, dtype)
            rec["x"] = rng.normal(0, 15, m)
            rec["y"] = rng.normal(0, 15, m)
            rec["z"] = -np.linspace(start, start + m, m) * 1e-5
            rec["mass"] = peaks[rng.integers(0, len(peaks), m)] + rng.normal(0, 0.02, m)
            if "multiplicity" in dtype.names:
                rec["tof"] = np.sqrt(rec["mass"]) * 300
                rec["v_dc"] = 5000
                rec["multiplicity"] = 1
                rec["pulse_delta"] = rng.integers(0, 50, m)
                rec["det_x"] = rec["x"] / 3
                rec["det_y"] = rec["y"] / 3
            f.write(rec.tobytes())
    os.replace(tmp, path)


def bench_format(path: Path, dtype: np.dtype, repeats: int) -> list[list]:
    n = path.stat().st_size // dtype.itemsize
    warm_page_cache(path)
    records = np.memmap(path, dtype=dtype, mode="r")
    t_rec = copy_record_baseline(records, repeats)
    t_bytes = copy_bytes_baseline(records, repeats)
    del records
    t_open, _ = median_time(lambda: liprobe.read(path), repeats)
    t_mass, _ = median_time(lambda: liprobe.read(path)["mass"], repeats)
    fmt = path.suffix.lstrip(".")
    rows = []
    for name, t in (("copy-record (baseline)", t_rec), ("copy-bytes (memory bandwidth)", t_bytes),
                    ("open (liprobe.read)", t_open), ("mass column (read + materialise)", t_mass)):
        rows.append([fmt, name, f"{t:.4f}", f"{n / t / 1e6:,.0f}", f"{t / t_rec:.3f}",
                     f"{t / t_bytes:.2f}"])
    return rows


def bench_info_command(repeats: int) -> list[list]:
    exe = Path(sys.executable).with_name("liprobe")
    target = REAL / "apav_si" / "Si_first100000.epos"
    if not target.exists():
        return []
    cmd = [str(exe), "info", str(target), "--json"]
    t, _ = median_time(lambda: subprocess.run(cmd, check=True, capture_output=True), repeats)
    return [["epos (100,000 ions)", "whole command `liprobe info --json`", f"{t:.3f}", "",
             "target < 0.5 s", ""]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ions", type=float, default=5e7)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the synthetic files")
    args = ap.parse_args(argv)
    n = int(args.ions)
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    rows = []
    for dtype, ext in ((POS_DTYPE, "pos"), (EPOS_DTYPE, "epos")):
        path = data / f"synthetic_{n}.{ext}"
        synthetic_file(path, dtype, n)
        rows += bench_format(path, dtype, args.repeats)
        if not args.keep:
            path.unlink()
    rows += bench_info_command(args.repeats)
    table = markdown_table(["file", "step", "seconds (median)", "M ions/s", "ratio to copy-record",
                            "ratio to copy-bytes"], rows)
    text = (f"# bench/io.py: {n:,} ions, median of {args.repeats}\n\n"
            f"{machine_line()}\n\n{table}\n\n"
            "Targets (issue 2): mass column at most 1.5x copy-record; `liprobe info` on a small "
            "file under 0.5 s whole-command.\n"
            "copy-record is numpy's copy of the structured record array, which numpy does "
            "field by field; copy-bytes is the same buffer copied as raw bytes, the memory "
            "bandwidth floor. Both are reported so that the ratio is not flattered.\n")
    out = HERE / "results" / "io.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
