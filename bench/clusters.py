"""Benchmark of nearest neighbours and cluster search (issue 22) on 10 M ions.

    python bench/clusters.py [--ions 1e7] [--repeats 3] [--no-peers] [--no-install]
                             [--out bench/results/clusters.md]

Data, drawn in memory with numpy (seeded): a 60 x 60 nm block, as long as
``--ions`` ions at 12 ions/nm^3 need, of Ni+ and O+ with Cr+ as a tenth of the
ions (1 M of 10 M), part of it in 400 spherical clusters (radius 1.5 to 3 nm,
80 at.% Cr); the ions in evaporation order (z decreasing), as a run's are. In
this process, median of ``--repeats`` after one warm-up, each step beside a
plain scipy reference doing the same job on the same data:

- neighbours: ``nearest_neighbours(run, table, "Cr", k=10)`` from the run
  (ranging, the counted ions, a k-d tree of all 10 M, the 1st to 10th
  neighbours of the 1 M Cr ions, and the same for one random relabelling,
  histograms; the relabelling measures 200,000 centres), against
  ``cKDTree(all positions).query(Cr positions, k=11,
  workers=-1)`` on positions already in memory (measured only, no comparator);
- clusters: ``find_clusters(run, table, "Cr", dmax_nm=0.5, nmin=20)`` from the
  run (ranging, maximum separation, envelope and erosion of 0.5 nm,
  per-cluster composition, radius of gyration, 5 random relabellings for the
  baseline), against ``cKDTree(Cr).query_pairs(0.5)``,
  ``scipy.sparse.csgraph.connected_components`` and the groups of at least 20
  (no envelope, erosion, composition or baseline);
- the same search without its baseline (``shuffles=1`` is the least it runs;
  the row times it with one relabelling).

Peer: pyccapt's ``maximum_separation_clustering(Cr positions, d_max=0.5,
n_min=20)`` in its own environment (bench/.envs/pyccapt, created by
bench/core.py; this script adds plotly, which its clustering module imports),
on the same Cr positions, once. Writes bench/results/clusters.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import PeakRssAnon, machine_line, markdown_table, rss_anon_bytes  # noqa: E402
from core import cpu_busy_elsewhere, ensure_env  # noqa: E402
from surfaces import git_line  # noqa: E402

import liprobe  # noqa: E402
from liprobe import Range, RangeTable, parse_ion  # noqa: E402

MB = 1e6
DENSITY = 12.0
WIDTH = 60.0
N_CLUSTERS = 400
DMAX, NMIN = 0.5, 20
TABLE = RangeTable.from_ranges([
    Range(15.5, 16.5, parse_ion("O+")), Range(51.5, 52.5, parse_ion("Cr+")),
    Range(57.5, 58.5, parse_ion("Ni+"))])


def make_run(n: int, seed: int = 22):
    """The block of ``n`` ions, a tenth of them Cr, with its clusters."""
    rng = np.random.default_rng(seed)
    length = n / (DENSITY * WIDTH * WIDTH)
    p = rng.random((n, 3), dtype=np.float32)
    p *= np.array([WIDTH, WIDTH, length], np.float32)
    p = p[np.argsort(p[:, 2], kind="stable")]       # evaporation order: z decreasing
    p[:, 2] *= -1
    centres = rng.uniform((4, 4, -length + 4), (WIDTH - 4, WIDTH - 4, -4), (N_CLUSTERS, 3))
    radii = rng.uniform(1.5, 3.0, N_CLUSTERS)
    inside = np.zeros(n, bool)
    for c, r in zip(centres, radii):
        lo, hi = np.searchsorted(-p[:, 2], [-(c[2] + r), -(c[2] - r)])
        d2 = ((p[lo:hi] - c.astype(np.float32)) ** 2).sum(axis=1)
        inside[lo:hi][d2 < r * r] = True
    # Cr: 80 % inside the clusters, and as much outside as makes a tenth of all ions
    n_in = int(inside.sum())
    p_out = (0.1 * n - 0.8 * n_in) / (n - n_in)
    u = rng.random(n)
    cr = u < np.where(inside, 0.8, p_out)
    mass = np.where(cr, 52.0, np.where(rng.random(n) < 0.5, 16.0, 58.0)).astype(np.float32)
    run = liprobe.Run.from_arrays(x=p[:, 0].copy(), y=p[:, 1].copy(), z=p[:, 2].copy(),
                                  mass=mass)
    return run, centres, radii


def timed(fn, repeats: int) -> dict:
    before = rss_anon_bytes()
    with PeakRssAnon() as peak:
        out = fn()
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"seconds": statistics.median(times), "min": min(times), "times": times,
            "cpu": statistics.median(cpu), "rss_increase": peak.peak - before,
            "result": out}


def reference_steps(run):
    """Plain scipy closures: the 10 neighbours of Cr among all, and the max-sep groups."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    xyz = np.stack([run["x"], run["y"], run["z"]], axis=1).astype(np.float64)
    cr = xyz[run["mass"] == 52.0]

    def knn():
        tree = cKDTree(xyz)
        return tree.query(cr, k=11, workers=-1)[0][:, 1:]

    def maxsep():
        pairs = cKDTree(cr).query_pairs(DMAX, output_type="ndarray")
        g = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])),
                       shape=(len(cr), len(cr)))
        lab = connected_components(g, directed=False)[1]
        sizes = np.bincount(lab)
        return int((sizes >= NMIN).sum())

    return knn, maxsep, cr


def run_pyccapt(cr: np.ndarray, install: bool) -> dict:
    py, why = ensure_env("pyccapt", sys.executable, install)
    if py is None:
        return {"error": why}
    probe = [str(py), "-c", "import pyccapt.calibration.clustering.clustering"]
    if subprocess.run(probe, capture_output=True).returncode:
        if not install:
            return {"error": "pyccapt's clustering module needs plotly (--no-install)"}
        subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check",
                        "plotly"], capture_output=True)
        if subprocess.run(probe, capture_output=True).returncode:
            return {"error": "import pyccapt.calibration.clustering.clustering failed"}
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "cr.npy"
        np.save(f, cr)
        r = subprocess.run([str(py), str(HERE / "peers" / "pyccapt_clusters.py"), "--points",
                            str(f), "--dmax", str(DMAX), "--nmin", str(NMIN)],
                           capture_output=True, text=True, timeout=3600)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": f"exit {r.returncode}: {r.stderr.strip().splitlines()[-1:]}"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ions", type=float, default=1e7)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "clusters.md"))
    args = ap.parse_args(argv)
    from liprobe._jit import get_num_threads
    from liprobe.spatial import find_clusters, nearest_neighbours

    n = int(args.ions)
    print(f"drawing {n:,} ions ...", file=sys.stderr)
    run, centres, radii = make_run(n)
    n_cr = int((run["mass"] == 52.0).sum())
    busy0 = cpu_busy_elsewhere()
    ref_knn, ref_maxsep, cr = reference_steps(run)
    steps = [
        ("neighbours", '`nearest_neighbours(run, table, "Cr", k=10)`',
         lambda: nearest_neighbours(run, TABLE, "Cr", k=10),
         "cKDTree(all).query(Cr, k=11, workers=-1)", ref_knn),
        ("clusters", f'`find_clusters(run, table, "Cr", dmax_nm={DMAX}, nmin={NMIN})`',
         lambda: find_clusters(run, TABLE, "Cr", dmax_nm=DMAX, nmin=NMIN),
         "cKDTree(Cr).query_pairs + connected_components", ref_maxsep),
        ("clusters, 1 relabelling", "the same, `shuffles=1`",
         lambda: find_clusters(run, TABLE, "Cr", dmax_nm=DMAX, nmin=NMIN, shuffles=1),
         "(as above)", ref_maxsep),
    ]
    rows, res = [], {}
    for key, call, fn, ref_call, ref in steps:
        print(f"  {key} ...", file=sys.stderr)
        a = timed(fn, args.repeats)
        b = res["clusters"][1] if key.startswith("clusters,") else timed(ref, args.repeats)
        res[key] = (a, b)
        rows.append([key, call, f"{a['seconds']:.2f}", f"{a['min']:.2f}", f"{a['cpu']:.2f}",
                     f"{a['rss_increase'] / MB:,.0f}", ref_call, f"{b['seconds']:.2f}",
                     f"{b['cpu']:.2f}", f"{a['seconds'] / b['seconds']:.2f}"])
    busy1 = cpu_busy_elsewhere()
    peer = {"error": "not run (--no-peers)"} if args.no_peers else \
        run_pyccapt(cr, not args.no_install)
    nd = res["neighbours"][0]["result"]
    cs = res["clusters"][0]["result"]
    ref_n = res["clusters"][1]["result"]
    ref_d = res["neighbours"][1]["result"]
    agree_nn = bool(np.allclose(nd.mean_nm, ref_d.mean(axis=0), rtol=1e-9))
    nn_s = res["neighbours"][0]["seconds"]
    cl_s = res["clusters"][0]["seconds"]
    one_s = res["clusters, 1 relabelling"][0]["seconds"]
    busy = max(busy0, busy1)
    table = markdown_table(["step", "liprobe call", "seconds (median)", "min", "CPU s",
                            "RssAnon increase (MB)", "plain scipy reference",
                            "reference seconds", "reference CPU s", "x reference"], rows)
    if "error" in peer:
        peer_text = f"pyccapt: not measured ({peer['error']})."
    else:
        same = peer["clusters"] == ref_n
        peer_text = (f"pyccapt {peer['version']}, `maximum_separation_clustering(Cr, "
                     f"d_max={DMAX}, n_min={NMIN})` on the same {n_cr:,} Cr positions, in its "
                     f"own process, once: {peer['seconds']:.1f} s, {peer['clusters']} "
                     f"clusters ({'the same number as' if same else 'not the number of'} the "
                     f"scipy reference, {ref_n}); liprobe's whole search "
                     f"(with envelope, erosion, compositions and 5 relabellings) took "
                     f"{cl_s / peer['seconds']:.2f} x pyccapt's time, and with one "
                     f"relabelling {one_s / peer['seconds']:.2f} x.")
    text = (
        f"# bench/clusters.py: {n:,} ions, median of {args.repeats}\n\n"
        f"{machine_line()}; {git_line()}; numba {get_num_threads()} threads; CPUs busy with "
        f"other processes: {100 * busy0:.0f} % before the run, {100 * busy1:.0f} % after."
        + (f"\n\n**Warning: other processes kept {100 * busy:.0f} % of the CPUs busy; the "
           "times are longer than on a quiet machine.**" if busy > 0.1 else "")
        + f"\n\nA {WIDTH:g} x {WIDTH:g} x {n / (DENSITY * WIDTH ** 2):.0f} nm block at "
        f"{DENSITY:g} ions/nm^3, {n_cr:,} of them Cr+, with {N_CLUSTERS} clusters of 80 at.% "
        "Cr (radius 1.5 to 3 nm) (bench/clusters.py). Each row is a median after one "
        "warm-up, wall time and CPU time of the process (all its threads); x reference is "
        "the ratio of wall times. liprobe's calls start from the Run (ranging and the counted "
        "ions' positions included) and compute more than the reference (see the script's "
        "docstring: the random comparator, histograms, envelope, erosion, compositions, "
        "baseline); the reference starts from positions in memory.\n\n"
        f"{table}\n\n"
        f"Neighbours: mean 1st to 10th distances equal the reference's to 1e-9: "
        f"{'yes' if agree_nn else 'NO'}; 1st neighbour {nd.mean_nm[0]:.4f} nm (random "
        f"{nd.random_mean_nm[0]:.4f} nm). Clusters: {cs.n_clusters} found (the scipy "
        f"reference, without envelope and erosion, finds {ref_n} groups of at least {NMIN}), "
        f"{N_CLUSTERS} planted (some overlap or are cut by the edges); random baseline "
        f"{cs.random_baseline.clusters:g}.\n\n{peer_text}\n\n"
        f"Targets (issue 22), on 2 cores: 1st-10th neighbours of a 1 M-ion species among "
        f"10 M under 10 s: {'PASS' if nn_s < 10 else 'FAIL'} ({nn_s:.2f} s, with the random "
        f"comparator); maximum-separation clustering of a 1 M-ion species under 20 s: "
        f"{'PASS' if cl_s < 20 else 'FAIL'} ({cl_s:.2f} s, with the baseline)"
        + (f" for {n:,} ions" if n != 10_000_000 else "") + ".\n")
    out = Path(args.out)
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
