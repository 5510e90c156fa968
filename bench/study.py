"""Study overhead: what `liprobe study` costs beyond the analyses themselves.

    python bench/study.py [--runs 20] [--ions 2e4] [--workers 0,1,2] [--out bench/results/study.md]

A study of N tiny runs (synthetic NMC811, coated, ``tests/study/synth.py``,
written once under ``bench/data/study/``) is run from an empty output folder
in each execution mode, and once more with every run cached:

- ``workers=0``: in this process, no Dask;
- ``workers=W``: a local Dask cluster of W processes (started and stopped
  by the study, so its start-up is part of the overhead).

Overhead per run = (wall time - sum of the runs' analysis times / W) / N,
the analysis time of a run being the ``total`` its task measured around
reading, selection and every column group (cache look-ups, hashing, task
submission, result transfer, cache records, flags and the table are
overhead). The cached row is the wall time of a second study over the same
output folder, per run. Target: under 0.5 s per run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, ROOT)

from _common import machine_line, markdown_table  # noqa: E402


def make_study(folder: str, n_runs: int, ions: int) -> str:
    from pathlib import Path

    from tests.study.synth import write_run

    d = Path(folder)
    manifest = d / "study.toml"
    head = ('[study]\nroi = "cylinder:25"\nexclude = ["Cr"]\n'
            'ratios = ["Li/(Li+Ni+Co+Mn)", "Ni/(Ni+Co+Mn)", "O/(Li+O+Ni+Co+Mn)"]\n'
            'field_proxies = ["O2+/O+", "Mn++/Mn+"]\n'
            'fda = { species = ["Li+"], block = 100 }\nreference_peaks = ["O2+"]\n')
    body = []
    for i in range(n_runs):
        name = f"run{i:03d}"
        if not (d / "runs" / f"{name}.epos").exists():
            write_run(d / "runs", name, n=ions, coated=True, o2_ratio=2.0 + 0.1 * i, seed=i)
        body.append(f'\n[[runs]]\nname = "{name}"\ndata = "runs/{name}.epos"\n'
                    f'ranges = "runs/{name}.rrng"\nmaterial = "NMC811"\ncoating = "Cr"\n'
                    f'laser_pj = {5 + i}\n')
    text = head + "".join(body)
    if not manifest.exists() or manifest.read_text() != text:
        manifest.write_text(text)
    return str(manifest)


def measure(manifest: str, workers: int) -> dict:
    from liprobe.study import run_study

    out = tempfile.mkdtemp(prefix="liprobe-bench-study-")
    try:
        t0 = time.perf_counter()
        res = run_study(manifest, out, workers=workers)
        wall = time.perf_counter() - t0
        assert not res.failed, res.summary()["failed_rows"]
        t0 = time.perf_counter()
        cached = run_study(manifest, out, workers=workers)
        wall_cached = time.perf_counter() - t0
        assert len(cached.cached) == len(cached.rows)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    n = len(res.rows)
    w = max(workers, 1)
    return {"workers": workers, "n": n, "wall": wall, "analysis": res.analysis_s,
            "overhead": (wall - res.analysis_s / w) / n, "cached": wall_cached / n}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=lambda s: int(float(s)), default=20)
    ap.add_argument("--ions", type=lambda s: int(float(s)), default=20_000)
    ap.add_argument("--workers", default="0,1,2",
                    help="comma-separated execution modes (0: in-process)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "study.md"))
    a = ap.parse_args(argv)
    folder = os.path.join(ROOT, "bench", "data", "study", f"{a.runs}x{a.ions}")
    os.makedirs(folder, exist_ok=True)
    manifest = make_study(folder, a.runs, a.ions)
    # warm the numba cache of this process and of the disk (not measured)
    from liprobe.study import analyse_run, load_manifest

    m = load_manifest(manifest)
    analyse_run(m.runs[0], m.params)
    rows = []
    for w in (int(x) for x in a.workers.split(",")):
        r = measure(manifest, w)
        mode = "in-process (workers=0)" if w == 0 else f"local cluster, {w} worker(s)"
        rows.append([mode, r["n"], f"{r['wall']:.2f}", f"{r['analysis']:.2f}",
                     f"{r['overhead']:.3f}", "yes" if r["overhead"] < 0.5 else "NO",
                     f"{r['cached']:.3f}"])
        print(f"{mode}: wall {r['wall']:.2f} s, analyses {r['analysis']:.2f} s, overhead "
              f"{r['overhead']:.3f} s/run, all cached {r['cached']:.3f} s/run", file=sys.stderr)
    report = "\n".join([
        "# liprobe study: overhead per run",
        "",
        machine_line(),
        "",
        f"{a.runs} runs of {a.ions:,} ions (synthetic coated NMC811, .epos); every column "
        "group of the default registry. Overhead per run = (wall - analysis time / workers) "
        "/ runs, from an empty output folder (cluster start-up included); 'all cached' = wall "
        "time per run of the same study started again. Target: overhead < 0.5 s per run.",
        "",
        markdown_table(["mode", "runs", "wall (s)", "sum of analyses (s)",
                        "overhead (s/run)", "< 0.5 s", "all cached (s/run)"], rows),
        "",
    ])
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
