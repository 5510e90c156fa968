"""Peak memory of every command on files larger than RAM would allow to copy.

    python bench/memory.py [--pos-ions 1e8] [--epos-ions 5e7] [--only NAME,...] [--keep]
                           [--out bench/results/memory.md]

Two synthetic coated NMC811-like runs are written under ``bench/data/memory/``:
a ``--pos-ions`` ``.pos`` (100 M ions: 1.6 GB) and a ``--epos-ions`` ``.epos``
(50 M ions: 2.2 GB), ions in evaporation order on a 20 nm needle with a 3 nm
Cr shell (Cr+, CrO+) beyond r = 17 nm, the peaks of ``bench/core.py`` and a
flat background. Each command of :data:`COMMANDS` runs as its own ``liprobe``
process (stdout discarded); a thread samples, every 10 ms, the sum over the
process and all its descendants of ``RssAnon + RssShmem`` (``/proc/PID/status``):
the memory the command itself holds, not the page cache of the memory-mapped
file. The table gives that peak, the wall time, and the wall time as a ratio
to copy-mass (``np.copyto`` of the file's native float32 mass column, in this
process, warm page cache), beside the issue's target of 400 MB.

A measurement, not a test: run it on a quiet machine. The files are deleted
afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine_line, markdown_table, warm_page_cache, write_report  # noqa: E402

DATA = HERE / "data" / "memory"
CHUNK = 1 << 22
TARGET_MB = 400.0
SHELL_R_NM, NEEDLE_R_NM, ATOMS_PER_NM3 = 17.0, 20.0, 40.0

#: (name, arguments after ``liprobe``; {f} the file, {r} the range file, {o} an output
#: folder, {n} the file's ion count). Every analysis command of the memory issue.
COMMANDS = [
    ("info", "info {f}"),
    ("composition", "composition {f} -r {r} --json"),
    ("composition --roi cylinder:25", "composition {f} -r {r} --roi cylinder:25 --json"),
    ("composition --roi sphere", "composition {f} -r {r} --roi sphere:20@0,0,-15 --json"),
    ("composition --roi box", "composition {f} -r {r} --roi box:-5:5:-5:5:-200:0 --json"),
    ("composition --roi core", "composition {f} -r {r} --roi core --json"),
    ("composition --segment --exclude", "composition {f} -r {r} --segment 0:{half} "
                                       "--exclude Cr --json"),
    ("composition --deconvolve --background", "composition {f} -r {r} --deconvolve "
                                              "--background --json"),
    ("field", "field {f} -r {r} --json"),
    ("fda", "fda {f} -r {r} --species Li+ --json"),
    ("spectrum (peaks, MRP)", "spectrum {f} -r {r} --json"),
    ("autorange", "autorange {f} --elements Li,O,Ni,Co,Mn,Cr -o {o}/auto.rrng"),
    ("profile z", "profile {f} -r {r} --json"),
    ("profile radial", "profile {f} -r {r} --radial --json"),
    ("slice", "slice {f} -r {r} -o {o}/slice.png"),
    ("detector-map", "detector-map {f} -r {r} --species Li+ --json"),
    ("coating", "coating {f} -r {r} --json"),
    ("history", "history {f} --json"),
    ("correlation", "correlation {f} --json"),
    ("reconstruct", "reconstruct {f} -r {r} --material NMC811 -o {o}/rec.pos"),
    ("isosurface", "isosurface {f} -r {r} --species Cr --threshold 20 -o {o}/iso.ply"),
    ("map2d", "map2d {f} -r {r} --species Li --json"),
    ("study row (--workers 0)", "study {o}/study.toml -o {o}/study --workers 0 -q"),
]

#: The manifest of the study row: the run as an NMC811 with its Cr coating, the study's
#: default analyses (ROI cylinder:25, field proxies, FDA, Li neighbours, peaks, coating,
#: grain, history).
STUDY = """[study]
name = "memory"
exclude = ["Cr"]

[[runs]]
name = "run"
data = "{f}"
ranges = "{r}"
material = "NMC811"
coating = "Cr"
"""

#: What grows with something other than the file's size (docs/architecture.md).
LIMITS = ("Stated limits: `spectrum`, `autorange` and `--deconvolve`/`--background` sort a "
          "file's masses into an unlinked scratch file in TMPDIR (4 bytes per ion, "
          "file-backed pages, not counted above); `isosurface` holds a voxel grid that grows "
          "with the analysed volume (about 64 bytes per voxel; here 4.8 M voxels of 1 nm for "
          "the 100 M-ion needle, 2.4 M for the 50 M-ion one), refused before binning when it "
          "needs more than the available memory; in the study row, `li_neighbours` measures "
          "at most 2 M consecutive ions of the ROI's middle and the grain search at most "
          "2^21 voxels.")

#: Commands that need the .epos's extra columns (detector, voltage, multiplicity).
EPOS_ONLY = {"detector-map", "history", "correlation", "reconstruct"}


# --------------------------------------------------------------------------
# the data
# --------------------------------------------------------------------------

def _table():
    from core import range_table

    import liprobe

    t = range_table()
    extra = [liprobe.Range(51.5, 52.5, liprobe.parse_ion("Cr+"), volume=0.012),
             liprobe.Range(67.5, 68.5, liprobe.parse_ion("CrO+"), volume=0.024)]
    return liprobe.RangeTable.from_ranges(list(t.ranges) + extra)


def _chunk(start: int, m: int, n: int, epos: bool) -> np.ndarray:
    from core import _chunk as core_chunk

    from liprobe.io.pos import EPOS_DTYPE, POS_DTYPE

    cols = core_chunk(start, m)
    rng = cols["rng"]
    r = np.hypot(cols["x"], cols["y"])
    shell = r > SHELL_R_NM
    cr = rng.random(m) < 0.7
    mass = np.where(shell, np.where(cr, 52.0, 68.0) + 0.05 * rng.standard_normal(m),
                    cols["mass"])
    rec = np.zeros(m, EPOS_DTYPE if epos else POS_DTYPE)
    for k in ("x", "y", "z"):
        rec[k] = cols[k]
    rec["mass"] = mass
    if epos:
        v = 4000.0 + 6000.0 * np.arange(start, start + m) / max(n, 1)
        rec["v_dc"] = v
        rec["tof"] = 1.0e3 * np.sqrt(np.maximum(mass, 0.1) / v) * 110.0
        rec["det_x"] = cols["x"] / 1.1
        rec["det_y"] = cols["y"] / 1.1
        rec["pulse_delta"] = rng.geometric(0.02, m)
        rec["multiplicity"] = 1
    return rec


def write_run(path: Path, n: int) -> None:
    """The synthetic run of ``n`` ions (skipped when a file of the right size is there)."""
    from liprobe.io.pos import EPOS_DTYPE, POS_DTYPE

    epos = path.suffix == ".epos"
    size = n * (EPOS_DTYPE if epos else POS_DTYPE).itemsize
    if path.exists() and path.stat().st_size == size:
        return
    print(f"writing {path.name} ({size / 1e9:.1f} GB) ...", file=sys.stderr)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        for start in range(0, n, CHUNK):
            f.write(_chunk(start, min(CHUNK, n - start), n, epos).tobytes())
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------

def _tree_memory(pid: int) -> int:
    """RssAnon + RssShmem (bytes) of ``pid`` and its descendants."""
    import psutil

    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            with open(f"/proc/{p.pid}/status") as fh:
                for line in fh:
                    if line.startswith(("RssAnon:", "RssShmem:")):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def run_measured(args: list[str]) -> dict:
    """Run ``liprobe ARGS``; its wall time, exit code, last stderr line and peak memory."""
    exe = os.path.join(os.path.dirname(sys.executable), "liprobe")
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen([exe] + args, stdout=subprocess.DEVNULL, stderr=err)
        peak = 0
        stop = threading.Event()

        def sample():
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _tree_memory(p.pid))
                time.sleep(0.01)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        code = p.wait()
        stop.set()
        th.join()
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    return {"seconds": time.perf_counter() - t0, "code": code, "peak": peak,
            "error": lines[-1] if code and lines else ""}


def copy_mass_seconds(path: Path) -> float:
    """Seconds of ``np.copyto`` of the file's mass column to native float32 (warm cache)."""
    import liprobe

    run = liprobe.read(path)
    src = run.source("mass")
    dst = np.empty(len(src), np.float32)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        np.copyto(dst, src, casting="unsafe")
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pos-ions", type=float, default=1e8)
    ap.add_argument("--epos-ions", type=float, default=5e7)
    ap.add_argument("--only", default=None,
                    help="commands whose names start with one of these (separated by ';')")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "memory.md"))
    a = ap.parse_args(argv)
    import liprobe

    DATA.mkdir(parents=True, exist_ok=True)
    files = {"pos": (DATA / f"run_{int(a.pos_ions)}.pos", int(a.pos_ions)),
             "epos": (DATA / f"run_{int(a.epos_ions)}.epos", int(a.epos_ions))}
    rrng = DATA / "run.rrng"
    liprobe.write_ranges(rrng, _table())
    only = None if a.only is None else [w.strip() for w in a.only.split(";")]
    rows = []
    out_dir = Path(tempfile.mkdtemp(prefix="liprobe-memory-"))
    try:
        for fmt, (path, n) in files.items():
            write_run(path, n)
            warm_page_cache(path)
            t_copy = copy_mass_seconds(path)
            size_mb = path.stat().st_size / 1e6
            for name, template in COMMANDS:
                if only is not None and not any(name.startswith(w) for w in only):
                    continue
                if fmt == "pos" and name in EPOS_ONLY:
                    continue
                if name.startswith("study"):
                    (out_dir / "study.toml").write_text(STUDY.format(f=path, r=rrng))
                args = template.format(f=path, r=rrng, o=out_dir, n=n, half=n // 2).split()
                res = run_measured(args)
                peak_mb = res["peak"] / 1e6
                rows.append([f"{fmt} ({n / 1e6:.0f} M ions, {size_mb:,.0f} MB)", name,
                             f"{peak_mb:,.0f}", "yes" if peak_mb <= TARGET_MB else "**no**",
                             f"{res['seconds']:.1f}", f"{res['seconds'] / t_copy:,.0f}",
                             f"exit {res['code']}: {res['error'][:80]}" if res["code"] else ""])
                print(" | ".join(rows[-1]), file=sys.stderr)
                for p in out_dir.iterdir():
                    p.unlink() if p.is_file() else shutil.rmtree(p, ignore_errors=True)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
        if not a.keep:
            for path, _n in files.values():
                path.unlink(missing_ok=True)
    text = "\n".join([
        "# Peak memory per command", "", machine_line(), "",
        f"`python bench/memory.py --pos-ions {a.pos_ions:g} --epos-ions {a.epos_ions:g}`: "
        "peak RssAnon + RssShmem of the command's process tree (sampled every 10 ms); "
        f"target {TARGET_MB:.0f} MB whatever the file's size. Time as a ratio to copy-mass "
        "(the file's float32 mass column copied once, warm page cache).", "",
        markdown_table(["file", "command", "peak MB", f"<= {TARGET_MB:.0f} MB", "wall s",
                        "x copy-mass", "note"], rows), "", LIMITS, ""])
    write_report(a.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
