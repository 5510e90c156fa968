"""Benchmark of the core analyses: histogram, ranging, composition, ROI, and the peers.

    python bench/core.py [--ions 5e7] [--cmd-ions 2e7] [--peer-ions 1e7] [--repeats 5]
                         [--peers apav,pyccapt,ifes | --no-peers] [--no-install]

Writes once, and keeps under bench/data/, a synthetic NMC811-like run of
``--ions`` ions as ``.pos`` and ``.epos`` (Li+, O+, O2+, Ni++, Ni+, Co++, Co+,
Mn++, Mn+, NiO+ peaks of 0.02-0.05 Da on a flat background; x/y in a 40 nm
wide needle, z decreasing) and its ``.rrng``. Then, in this process, median
of ``--repeats`` after one warm-up, on the native float32 columns in memory:

(a) ``spectrum.mass_histogram`` at 0.01 Da over 0-200 Da,
(b) ``ranging.assign`` (labels + per-window counts), once into a preallocated
    ``out`` and once allocating the labels,
(c) ``ranging.count_windows`` (counts only),
(d) ``composition.composition`` (counts + decomposition into atoms),
(e) ``roi.cylinder_mask`` of a 25 nm cylinder along z (preallocated ``out``),

each in seconds, million ions per second, as a ratio to copy-mass
(``np.copyto`` of the native float32 mass column, same process) and with the
peak anonymous memory (RssAnon sampled by a thread) above the level before
the step and absolute. Then, each in a fresh child process:

(f) ``composition(liprobe.read(pos).chunks("mass"), table)`` end to end on the
    ``--ions`` .pos file, with the child's peak RssAnon (target < 450 MB);
(g) the whole command ``liprobe composition FILE.pos -r FILE.rrng --json`` on a
    ``--cmd-ions`` .pos against a plain numpy script (bench/peers/plain_numpy_counts.py),
    subprocess wall time, median of ``--repeats`` after one warm-up each.

Peers (apav, pyccapt, ifes-apt-tc-data-modeling) run in virtual environments
that this script creates under bench/.envs/ (python3 -m venv + pip), each
through its script bench/peers/<peer>_steps.py on a ``--peer-ions`` file,
reported against their own copy-mass. Writes bench/results/core.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    PeakRssAnon,
    copy_mass_baseline,
    machine_line,
    markdown_table,
    rss_anon_bytes,
    warm_page_cache,
)

import liprobe
from liprobe.io.pos import EPOS_DTYPE, POS_DTYPE

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
ENVS = HERE / ".envs"
PEERS_DIR = HERE / "peers"
MB = 1e6

# --------------------------------------------------------------------------
# synthetic NMC811-like run
# --------------------------------------------------------------------------

#: (ion, peak mass in Da, relative abundance) of the synthetic spectrum.
PEAKS = [
    ("Li+", 6.01512, 0.016), ("Li+", 7.01600, 0.200),
    ("O+", 15.99491, 0.100), ("O2+", 31.98983, 0.120),
    ("Mn++", 27.46902, 0.020), ("Ni++", 28.96767, 0.140), ("Co++", 29.46660, 0.020),
    ("Ni++", 29.96540, 0.055),
    ("Mn+", 54.93804, 0.012), ("Ni+", 57.93534, 0.070), ("Co+", 58.93319, 0.012),
    ("Ni+", 59.93079, 0.027),
    ("NiO+", 73.93025, 0.030), ("NiO+", 75.92570, 0.012),
]
BACKGROUND = 0.05          # fraction of ions spread flat over 0-200 Da
NEEDLE_RADIUS_NM = 20.0    # a 40 nm wide needle
ATOMS_PER_NM3 = 40.0       # detected ions per nm^3 (sets how fast z decreases)
CHUNK = 1 << 22            # ions per generated chunk (each chunk has its own seed)
VOLUMES = {"Li": 0.0216, "O": 0.0159, "Ni": 0.01094, "Co": 0.01107, "Mn": 0.01222}
COLORS = {"Li+": "#CC66FF", "O+": "#00CC00", "O2+": "#009900", "Ni++": "#3333FF",
          "Ni+": "#0000CC", "Co++": "#FF9900", "Co+": "#CC6600", "Mn++": "#FF3399",
          "Mn+": "#CC0066", "NiO+": "#66CCCC"}


def peak_sigma(m: np.ndarray) -> np.ndarray:
    """Gaussian width of a peak at mass m: 0.02 Da at low mass to 0.05 Da above 75 Da."""
    return np.clip(0.02 + 0.0004 * np.asarray(m, dtype=np.float64), 0.02, 0.05)


def range_table() -> liprobe.RangeTable:
    """Windows of +-4 sigma (at least 0.12 Da) around every peak of :data:`PEAKS`."""
    ranges = []
    for name, m, _w in PEAKS:
        ion = liprobe.parse_ion(name)
        half = max(0.12, 4 * float(peak_sigma(m)))
        vol = sum(VOLUMES[el] * n for el, n in ion.atoms)
        ranges.append(liprobe.Range(round(m - half, 4), round(m + half, 4), ion,
                                    volume=round(vol, 5), color=COLORS[name]))
    return liprobe.RangeTable.from_ranges(ranges)


def write_rrng(path: Path, table: liprobe.RangeTable) -> None:
    """The .rrng of the synthetic run (liprobe's writer, or plain text if it is missing).

    Written on every run (it is tiny), so that it always matches :data:`PEAKS`.
    """
    try:
        liprobe.write_ranges(path, table)
        return
    except (AttributeError, NotImplementedError, ImportError):
        pass
    formulas = list(dict.fromkeys(ion.formula for ion in table.ions))
    lines = ["[Ions]", f"Number={len(formulas)}"] + \
        [f"Ion{i}={f}" for i, f in enumerate(formulas, 1)] + \
        ["[Ranges]", f"Number={len(table)}"]
    for i, r in enumerate(table.ranges, 1):
        atoms = " ".join(f"{el}:{n}" for el, n in r.ion.atoms)
        lines.append(f"Range{i}={r.lo:.4f} {r.hi:.4f} Vol:{r.volume:.5f} {atoms} "
                     f"Color:{r.color[1:]}")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\r\n".join(lines) + "\r\n")
    os.replace(tmp, path)


def _chunk(start: int, m: int) -> dict:
    """Columns of ions ``start .. start+m`` (deterministic: smaller files are prefixes)."""
    rng = np.random.default_rng([20240611, start // CHUNK])
    centers = np.array([p[1] for p in PEAKS] + [np.nan])
    weights = np.array([p[2] for p in PEAKS] + [BACKGROUND])
    comp = rng.choice(len(weights), size=m, p=weights / weights.sum())
    bg = comp == len(PEAKS)
    c = centers[comp]
    mass = c + peak_sigma(np.nan_to_num(c)) * rng.standard_normal(m)
    mass[bg] = rng.uniform(0.5, 200.0, int(bg.sum()))
    r = NEEDLE_RADIUS_NM * np.sqrt(rng.random(m))
    theta = rng.uniform(0, 2 * np.pi, m)
    dz = 1.0 / (np.pi * NEEDLE_RADIUS_NM ** 2 * ATOMS_PER_NM3)
    z = -(np.arange(start, start + m, dtype=np.float64) * dz) + rng.normal(0, 0.05, m)
    return {"x": r * np.cos(theta), "y": r * np.sin(theta), "z": z, "mass": mass, "rng": rng}


def synthetic_run(n: int, formats=("pos", "epos")) -> dict:
    """Paths of the cached synthetic ``.pos``/``.epos`` of ``n`` ions and their ``.rrng``."""
    DATA.mkdir(exist_ok=True)
    stem = DATA / f"nmc811_{n}"
    paths = {fmt: stem.with_suffix("." + fmt) for fmt in formats}
    paths["rrng"] = DATA / "nmc811.rrng"
    write_rrng(paths["rrng"], range_table())
    dtypes = {"pos": POS_DTYPE, "epos": EPOS_DTYPE}
    todo = [f for f in formats if not (paths[f].exists()
                                       and paths[f].stat().st_size == n * dtypes[f].itemsize)]
    if not todo:
        return paths
    print(f"writing {', '.join(str(paths[f].name) for f in todo)} ...", file=sys.stderr)
    tmps = {f: paths[f].with_suffix(paths[f].suffix + ".tmp") for f in todo}
    files = {f: open(tmps[f], "wb") for f in todo}
    try:
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            cols = _chunk(start, m)
            for f in todo:
                rec = np.zeros(m, dtypes[f])
                for k in ("x", "y", "z", "mass"):
                    rec[k] = cols[k]
                if f == "epos":
                    v = 4000.0 + 6000.0 * np.arange(start, start + m) / max(n, 1)
                    rec["v_dc"] = v
                    rec["v_pulse"] = 0.0
                    rec["tof"] = 1.0e3 * np.sqrt(cols["mass"] / v) * 110.0
                    rec["det_x"] = cols["x"] / 1.1
                    rec["det_y"] = cols["y"] / 1.1
                    rec["pulse_delta"] = cols["rng"].geometric(0.02, m)
                    rec["multiplicity"] = 1
                files[f].write(rec.tobytes())
    finally:
        for fh in files.values():
            fh.close()
    for f in todo:
        os.replace(tmps[f], paths[f])
    return paths


# --------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------

def measure(fn, repeats: int, baseline=None) -> dict:
    """Median time of ``fn()`` and RssAnon before it and at its peak.

    Memory is sampled during the warm-up run and one more run; the timed
    repeats run without the sampling thread, which would otherwise take CPU
    time from numba's threads on a 2-core machine. With ``baseline`` (the
    copy-mass closure), each timed repeat is preceded by one timed baseline
    run, so that the ratio compares the two under the same conditions.
    """
    before = rss_anon_bytes()
    with PeakRssAnon() as p:
        fn()
        fn()
    times, base = [], []
    for _ in range(repeats):
        if baseline is not None:
            t0 = time.perf_counter()
            baseline()
            base.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    out = {"seconds": statistics.median(times), "times": times, "rss_before": before,
           "rss_peak": p.peak}
    if base:
        out["copy_seconds"] = statistics.median(base)
    return out


def bench_in_memory(paths: dict, n: int, repeats: int) -> tuple[list[dict], float, dict]:
    """Steps (a)-(e) on the native columns in memory: rows, copy-mass seconds, checks."""
    from liprobe.composition import composition
    from liprobe.ranging import assign, count_windows, label_dtype
    from liprobe.spatial.roi import cylinder_mask
    from liprobe.spectrum import mass_histogram

    table = liprobe.read_ranges(paths["rrng"])
    warm_page_cache(paths["pos"])
    rows = [dict(key="read", step="read .pos + materialise mass (in-memory float32)",
                 call='liprobe.read(pos)["mass"]', n=n,
                 **measure(lambda: liprobe.read(paths["pos"])["mass"], repeats))]
    run = liprobe.read(paths["pos"])
    mass, x, y = run["mass"], run["x"], run["y"]
    assert mass.dtype == np.float32 and mass.dtype.isnative and not isinstance(mass, np.memmap)
    before = rss_anon_bytes()
    with PeakRssAnon() as p:
        t_copy = copy_mass_baseline(mass, repeats)
    rows.append(dict(key="copy", step="copy-mass (baseline)", call="np.copyto(dst, mass)", n=n,
                     seconds=t_copy, times=[], rss_before=before, rss_peak=p.peak,
                     note="_common.copy_mass_baseline; its memory includes its own src and dst"))
    labels = np.empty(n, label_dtype(len(table)))
    mask = np.empty(n, np.bool_)
    copy_dst = np.empty_like(mass)
    copy = lambda: np.copyto(copy_dst, mass)  # noqa: E731  copy-mass, timed beside each step
    steps = [
        ("hist", "(a) mass histogram, 0.01 Da bins over 0-200 Da",
         "spectrum.mass_histogram(mass, 0.01, (0, 200))",
         lambda: mass_histogram(mass, 0.01, (0, 200)), ""),
        ("assign", "(b) range assignment + per-window counts, `out` preallocated",
         "ranging.assign(mass, table, out=labels)",
         lambda: assign(mass, table, out=labels), "labels array allocated before the step"),
        ("assign_alloc", "(b) range assignment + per-window counts, allocating the labels",
         "ranging.assign(mass, table)", lambda: assign(mass, table),
         "a new int16 labels array every call"),
        ("count", "(c) counts only", "ranging.count_windows(mass, table)",
         lambda: count_windows(mass, table), ""),
        ("composition", "(d) composition (counts + decomposition into atoms)",
         "composition.composition(mass, table)", lambda: composition(mass, table), ""),
        ("roi", "(e) cylinder ROI, 25 nm diameter along z, `out` preallocated",
         "roi.cylinder_mask(x, y, 25.0, out=mask)", lambda: cylinder_mask(x, y, 25.0, out=mask),
         "reads x and y (2 columns) against copy-mass's 1"),
    ]
    for key, step, call, fn, note in steps:
        print(f"  {step} ...", file=sys.stderr)
        rows.append(dict(key=key, step=step, call=call, n=n, note=note,
                         **measure(fn, repeats, copy)))
    rows.append(bench_fda(mass, table, repeats, copy))
    rows.append(bench_reconstruct(paths, labels, table, repeats, copy))
    copy_dst = None  # free copy-mass's buffer (`copy` is not called again)
    rows.append(bench_autorange(mass, repeats))
    # correctness of what was timed, against plain numpy (not timed)
    edges = np.empty(2 * len(table))
    edges[0::2], edges[1::2] = table.lo, table.hi
    idx = np.searchsorted(edges, mass, side="right")
    ref = np.bincount(idx, minlength=len(edges) + 1)[1::2]
    c, _u = count_windows(mass, table)
    lab, c2 = assign(mass, table)
    h = mass_histogram(mass, 0.01, (0, 200))
    checks = {
        "count_windows equals np.searchsorted + np.bincount": bool(np.array_equal(c, ref)),
        "assign counts equal count_windows": bool(np.array_equal(c2, c)),
        "assign labels equal np.searchsorted": bool(np.array_equal(
            lab, np.where(idx % 2 == 1, (idx - 1) // 2, -1))),
        "histogram total equals ions in [0, 200)": int(h.counts.sum()) == int(
            np.count_nonzero((mass >= 0) & (mass < 200))),
        "cylinder_mask equals numpy": bool(np.array_equal(
            cylinder_mask(x, y, 25.0), x.astype(np.float64) ** 2 + y.astype(np.float64) ** 2
            <= 12.5 ** 2)),
    }
    del lab, idx
    return rows, t_copy, checks


def child_end_to_end(pos: str, rrng: str, repeats: int) -> None:
    """(f), run in a fresh process: composition of a file through ``run.chunks("mass")``."""
    from liprobe.composition import composition

    table = liprobe.read_ranges(rrng)
    warm_page_cache(pos)
    start = rss_anon_bytes()
    res = measure(lambda: composition(liprobe.read(pos).chunks("mass"), table), repeats)
    res["rss_start"] = start
    res["ions_total"] = composition(liprobe.read(pos).chunks("mass"), table).ions_total
    print(json.dumps(res))


def bench_end_to_end(paths: dict, n: int, repeats: int, fmt: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-end-to-end",
           str(paths[fmt]), str(paths["rrng"]), "--repeats", str(repeats)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["ions_total"] == n
    return dict(key=f"e2e_{fmt}", n=n,
                step=f"(f) composition of the .{fmt} file end to end (fresh process)",
                call='composition(liprobe.read(f).chunks("mass"), table)',
                note="RssAnon of a fresh python process (interpreter, numba and all) from "
                     f"{res['rss_start'] / MB:.0f} MB after imports; page cache warm", **res)


def bench_command(paths: dict, n: int, repeats: int) -> dict:
    """(g) ``liprobe composition --json`` against a plain numpy script, subprocess wall time."""
    exe = Path(sys.executable).with_name("liprobe")
    pos, rrng = str(paths["pos"]), str(paths["rrng"])
    cmds = {"liprobe": [str(exe), "composition", pos, "-r", rrng, "--json"],
            "numpy": [sys.executable, str(PEERS_DIR / "plain_numpy_counts.py"), pos, rrng]}
    warm_page_cache(pos)
    outs = {k: subprocess.run(c, check=True, capture_output=True, text=True).stdout  # warm-up
            for k, c in cmds.items()}
    times = {k: [] for k in cmds}
    for _ in range(repeats):          # interleaved, so that load from colleagues hits both
        for k, c in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(c, check=True, capture_output=True)
            times[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    # the two must agree: ion counts of liprobe = window counts of numpy summed per ion
    table = liprobe.read_ranges(rrng)
    lp = json.loads(outs["liprobe"])
    npc = json.loads(outs["numpy"])
    per_ion = np.bincount(table.ion_index, weights=npc["windows"], minlength=len(table.ions))
    agree = all(int(lp["ion_counts"][ion.name]) == int(c) for ion, c in zip(table.ions, per_ion)) \
        and lp["ions_total"] == npc["total"] == n
    return {"n": n, "seconds": med, "times": times, "agree": agree,
            "ratio": med["liprobe"] / med["numpy"]}


# --------------------------------------------------------------------------
# peers
# --------------------------------------------------------------------------

#: name -> pip requirements, distribution, import name, script
PEERS = {
    "apav": (["apav", "numpy<2"], "apav", "apav", "apav_steps.py"),
    "pyccapt": (["pyccapt", "vispy"], "pyccapt", "pyccapt.calibration.leap_tools.leap_tools",
                "pyccapt_steps.py"),
    "ifes": (["ifes-apt-tc-data-modeling"], "ifes-apt-tc-data-modeling",
             "ifes_apt_tc_data_modeling.pos.pos_reader", "ifes_steps.py"),
}


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errs = [ln for ln in lines if "error" in ln.lower()]
    return (errs[-1] if errs else (lines[-1] if lines else "no output"))[:300]


def ensure_env(name: str, python: str, install: bool) -> tuple[Path | None, str | None]:
    """The peer's virtual environment under bench/.envs/ (created with venv + pip once)."""
    reqs, _dist, module, _script = PEERS[name]
    env = ENVS / name
    py = env / "bin" / "python"
    marker = env / ".bench-core-requirements"
    log = ENVS / f"{name}.install.log"
    ENVS.mkdir(exist_ok=True)
    if not (marker.exists() and marker.read_text() == json.dumps(reqs) and py.exists()):
        if not install:
            return None, "not installed (--no-install)"
        print(f"creating {env} with pip install {' '.join(reqs)} ...", file=sys.stderr)
        with open(log, "w") as f:
            if not py.exists():
                r = subprocess.run([python, "-m", "venv", str(env)], stdout=f,
                                   stderr=subprocess.STDOUT)
                if r.returncode:
                    return None, f"python3 -m venv failed (see {log.relative_to(HERE)})"
            r = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check",
                                *reqs], stdout=f, stderr=subprocess.STDOUT)
        if r.returncode:
            return None, f"pip install {' '.join(reqs)} failed: {_last_error_line(log.read_text())}"
        marker.write_text(json.dumps(reqs))
    r = subprocess.run([str(py), "-c", f"import {module}"], capture_output=True, text=True)
    if r.returncode:
        return None, f"import {module} failed: {_last_error_line(r.stderr)}"
    return py, None


def run_peer(name: str, py: Path, paths: dict, repeats: int, timeout: float) -> dict:
    script = PEERS_DIR / PEERS[name][3]
    cmd = [str(py), str(script), "--pos", str(paths["pos"]), "--rrng", str(paths["rrng"]),
           "--repeats", str(repeats)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"peer": name, "error": f"timed out after {timeout:.0f} s"}
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"peer": name, "error": f"exit {r.returncode}: {_last_error_line(r.stderr)}"}


def liprobe_checks(paths: dict) -> dict:
    """liprobe's numbers on the peers' file, to compare with what each peer found."""
    from liprobe.composition import composition
    from liprobe.spatial.roi import cylinder_mask
    from liprobe.spectrum import mass_histogram

    run = liprobe.read(paths["pos"])
    table = liprobe.read_ranges(paths["rrng"])
    c = composition(run["mass"], table)
    return {"ranged": c.ions_ranged, "atoms": c.atom_counts,
            "roi": int(cylinder_mask(run["x"], run["y"], 25.0).sum()),
            "histogram_total": int(mass_histogram(run["mass"], 0.01, (0, 200)).counts.sum()),
            "ranges": len(table)}


def compare_checks(peer: dict, ours: dict) -> str:
    got = peer.get("checks") or {}
    out = []
    for k, v in got.items():
        if k not in ours:
            continue
        if v == ours[k]:
            out.append(f"{k} agrees")
        elif k == "atoms":
            diff = {el: v.get(el, 0) - ours[k].get(el, 0) for el in set(v) | set(ours[k])}
            out.append("atoms differ by "
                       + ", ".join(f"{el} {d:+d}" for el, d in diff.items() if d))
        else:
            out.append(f"{k} {v:,} vs liprobe {ours[k]:,}")
    return "; ".join(out) or "no checks"


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

def _mb(b) -> str:
    return f"{b / MB:,.0f}"


def _status(ok) -> str:
    return "not measured" if ok is None else ("PASS" if ok else "FAIL")


def cpu_busy_elsewhere(seconds: float = 1.0) -> float:
    """Fraction of all CPUs busy over ``seconds`` while this process sleeps (others' load)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]          # total, idle + iowait
    try:
        t0, i0 = snap()
        time.sleep(seconds)
        t1, i1 = snap()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


def git_line() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, text=True,
                             capture_output=True).stdout.strip() or "no commit"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=HERE, text=True,
                               capture_output=True).stdout.strip()
    except OSError:
        return "git: unknown"
    dirty_note = " (src/ has uncommitted changes)" if dirty else ""
    return f"liprobe {liprobe.__version__}, git {rev}{dirty_note}"


PEER_STEPS = [("read", "read"), ("histogram", "hist"), ("assign", "assign_alloc"),
              ("count", "count"), ("composition", "composition"), ("roi", "roi")]


def our_table(rows: list[dict], t_copy: float) -> str:
    out = []
    for r in rows:
        t = r["seconds"]
        spread = f"{min(r['times']):.4f}" if r["times"] else ""
        tc = r.get("copy_seconds", t_copy)
        out.append([r["step"], f"`{r['call']}`", f"{r['n']:,}", f"{t:.4f}", spread,
                    f"{r['n'] / t / 1e6:,.0f}", f"{tc:.4f}", f"{t / tc:.2f}",
                    _mb(r["rss_peak"] - r["rss_before"]), _mb(r["rss_peak"]),
                    r.get("note", "")])
    return markdown_table(["step", "call", "ions", "seconds (median)", "min", "M ions/s",
                           "copy-mass (s)", "x copy-mass", "RssAnon increase (MB)",
                           "RssAnon peak (MB)", "note"], out)


def peer_table(peers: list[dict], checks: dict) -> str:
    out = []
    for p in peers:
        name = p.get("peer")
        if "error" in p and "steps" not in p:
            out.append([name, "", "all", "", "", "", "", "", "", f"error: {p['error']}"])
            continue
        n, tc = p["n_ions"], p["copy_mass"]
        ver = f"{p['version']} (numpy {p['numpy']})"
        if tc:
            out.append([name, ver, "copy-mass (its own baseline)", "`np.copyto(dst, mass)`",
                        f"{n:,}", f"{tc:.4f}", f"{n / tc / 1e6:,.0f}", "1.00", "", ""])
        for s in p["steps"]:
            if "na" in s:
                out.append([name, ver, s["step"], "", "", "", "", "", "", f"n/a: {s['na']}"])
            elif "error" in s:
                out.append([name, ver, s["step"], f"`{s['call']}`", "", "", "", "", "",
                            f"error: {s['error']}"])
            else:
                t = s["seconds"]
                per_ion = s["step"] != "read ranges"   # a range file has no ions
                ratio = f"{t / tc:,.1f}" if tc and per_ion else ""
                out.append([name, ver, s["step"], f"`{s['call']}`", f"{n:,}" if per_ion else "",
                            f"{t:.4f}", f"{n / t / 1e6:,.1f}" if per_ion else "", ratio,
                            f"{_mb(s['rss_peak'] - s['rss_before'])} / {_mb(s['rss_peak'])}",
                            s.get("note", "")])
        if checks.get(name):
            out.append([name, ver, "results vs liprobe (same file)", "", "", "", "", "", "",
                        checks[name]])
    return markdown_table(["peer", "version", "step", "call", "ions", "seconds (median)",
                           "M ions/s", "x its copy-mass", "RssAnon increase / peak (MB)",
                           "note"], out)


def fastest_peer(peers: list[dict], steps) -> tuple[str, str, float] | None:
    """(peer, step, M ions/s) of the fastest measured peer row among ``steps``."""
    best = None
    for p in peers:
        for s in p.get("steps", []):
            if s["step"] in steps and "seconds" in s:
                rate = p["n_ions"] / s["seconds"] / 1e6
                if best is None or rate > best[2]:
                    best = (p["peer"], s["step"], rate)
    return best


def comparison_table(rows: list[dict], peers: list[dict]) -> str:
    by = {r["key"]: r for r in rows}
    out = []
    for step, key in PEER_STEPS:
        r = by.get(key)
        if r is None:
            continue
        ours = r["n"] / r["seconds"] / 1e6
        best = fastest_peer(peers, (step,))
        if best is None:
            out.append([step, f"`{r['call']}`", f"{ours:,.0f}", "none can", ""])
        else:
            out.append([step, f"`{r['call']}`", f"{ours:,.0f}", f"{best[0]}: {best[2]:,.1f}",
                        f"{ours / best[2]:,.1f}x"])
    return markdown_table(["step", "liprobe call", "liprobe M ions/s", "fastest peer, M ions/s",
                           "liprobe / fastest peer"], out)


def targets(rows: list[dict], t_copy: float, peers: list[dict] | None, e2e: dict | None,
            cmd: dict | None) -> list[str]:
    by = {r["key"]: r for r in rows}
    rate = lambda r: r["n"] / r["seconds"] / 1e6  # noqa: E731
    ratio = lambda k: by[k]["seconds"] / by[k].get("copy_seconds", t_copy)  # noqa: E731
    lines = []
    a, a2 = ratio("assign"), ratio("assign_alloc")
    lines.append(f"- range assignment with counts <= 6x copy-mass: **{_status(a <= 6)}** "
                 f"({a:.2f}x with `out` preallocated, the like of copy-mass which copies into a "
                 f"preallocated array; allocating the labels: {a2:.2f}x, "
                 f"{_status(a2 <= 6)})")
    c = ratio("count")
    lines.append(f"- counts alone <= 3x copy-mass: **{_status(c <= 3)}** ({c:.2f}x)")
    best = fastest_peer(peers or [], ("assign", "count"))
    if best is None:
        lines.append("- range assignment >= 5x faster than the fastest peer: **not measured** "
                     "(no peer ranged)")
    else:
        sp = rate(by["assign_alloc"]) / best[2]
        lines.append(f"- range assignment >= 5x faster than the fastest peer: "
                     f"**{_status(sp >= 5)}** ({sp:,.1f}x: liprobe `assign` allocating its "
                     f"labels, {rate(by['assign_alloc']):,.0f} M ions/s, against the fastest peer "
                     f"ranging step, {best[0]} {best[1]}, {best[2]:,.1f} M ions/s)")
    h = ratio("hist")
    hb = fastest_peer(peers or [], ("histogram",))
    ok_h = h <= 3 and (hb is None or rate(by["hist"]) > hb[2])
    peer_txt = (f"fastest peer {hb[0]} {hb[2]:,.0f} M ions/s against liprobe "
                f"{rate(by['hist']):,.0f}" if hb else "no peer histogram measured")
    lines.append(f"- histogram <= 3x copy-mass and faster than the fastest peer: "
                 f"**{_status(ok_h if hb else (None if h <= 3 else False))}** "
                 f"({h:.2f}x copy-mass; {peer_txt})")
    if e2e is None:
        lines.append("- composition of the .pos with peak RssAnon < 450 MB: **not measured**")
    else:
        lines.append(f"- composition of the {e2e['n']:,}-ion .pos with peak RssAnon < 450 MB: "
                     f"**{_status(e2e['rss_peak'] < 450 * MB)}** ({_mb(e2e['rss_peak'])} MB, "
                     f"whole fresh process)")
    if cmd is None:
        lines.append("- `liprobe composition` within 2.5x of the plain numpy script: "
                     "**not measured**")
    else:
        lines.append(f"- `liprobe composition` on {cmd['n']:,} ions within 2.5x of the plain "
                     f"numpy script: **{_status(cmd['ratio'] <= 2.5)}** ({cmd['ratio']:.2f}x)")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ions", type=float, default=5e7, help="ions of the main file (default 5e7)")
    ap.add_argument("--cmd-ions", type=float, default=None,
                    help="ions of the file for step (g) (default: 2e7, or --ions if smaller)")
    ap.add_argument("--peer-ions", type=float, default=1e7,
                    help="ions of the peers' file (default 1e7)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--peer-repeats", type=int, default=None, help="default: --repeats")
    ap.add_argument("--peers", default="apav,pyccapt,ifes", help="comma-separated, of: "
                    + ", ".join(PEERS))
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-install", action="store_true",
                    help="do not create missing peer environments (report them as not installed)")
    ap.add_argument("--python", default="python3", help="interpreter for the peers' venvs")
    ap.add_argument("--peer-timeout", type=float, default=3600.0)
    ap.add_argument("--out", default=str(HERE / "results" / "core.md"))
    ap.add_argument("--child-end-to-end", nargs=2, metavar=("FILE", "RRNG"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_end_to_end:
        child_end_to_end(*args.child_end_to_end, args.repeats)
        return
    if args.repeats < 5:
        print("note: the targets are judged on medians of at least 5 repeats", file=sys.stderr)
    n = int(args.ions)
    n_cmd = int(args.cmd_ions) if args.cmd_ions else min(int(2e7), n)
    n_peer = int(args.peer_ions)
    busy0 = cpu_busy_elsewhere()

    print(f"[1/4] data: {n:,} ions (.pos, .epos), {n_cmd:,} and {n_peer:,} (.pos)", file=sys.stderr)
    paths = synthetic_run(n)
    print(f"[2/4] in-memory steps on {n:,} ions", file=sys.stderr)
    rows, t_copy, checks = bench_in_memory(paths, n, args.repeats)
    print("[3/4] end to end (fresh processes) and the command", file=sys.stderr)
    e2e = bench_end_to_end(paths, n, args.repeats, "pos")
    e2e_epos = bench_end_to_end(paths, n, args.repeats, "epos")
    cmd_paths = synthetic_run(n_cmd, ("pos",))
    cmd = bench_command(cmd_paths, n_cmd, args.repeats)

    peers, peer_checks = [], {}
    if not args.no_peers:
        peer_paths = synthetic_run(n_peer, ("pos",))
        ours = liprobe_checks(peer_paths)
        for name in [p.strip() for p in args.peers.split(",") if p.strip()]:
            if name not in PEERS:
                raise SystemExit(f"unknown peer '{name}' (known: {', '.join(PEERS)})")
            print(f"[4/4] peer {name} on {n_peer:,} ions", file=sys.stderr)
            py, err = ensure_env(name, args.python, not args.no_install)
            if err:
                peers.append({"peer": name, "error": err})
                continue
            res = run_peer(name, py, peer_paths, args.peer_repeats or args.repeats,
                           args.peer_timeout)
            peers.append(res)
            if "steps" in res:
                peer_checks[name] = compare_checks(res, ours)
    busy1 = cpu_busy_elsewhere()
    busy_note = ""
    if max(busy0, busy1) > 0.1:
        busy_note = (f"\n\n**Warning: other processes kept {100 * max(busy0, busy1):.0f} % of the "
                     "CPUs busy; liprobe's kernels use every core (numba threads), so they lose "
                     "more to that than the single-threaded copy-mass. Ratios are pessimistic; "
                     "rerun on a quiet machine.**")

    e2e_rows = []
    for r in (e2e, e2e_epos):
        e2e_rows.append([r["step"], f"`{r['call']}`", f"{r['n']:,}", f"{r['seconds']:.4f}",
                         f"{min(r['times']):.4f}",
                         f"{r['n'] / r['seconds'] / 1e6:,.0f}", f"{r['seconds'] / t_copy:.2f}",
                         _mb(r["rss_peak"] - r["rss_start"]), _mb(r["rss_peak"]), r["note"]])
    cmd_rows = [["(g) `liprobe composition FILE.pos -r FILE.rrng --json`", f"{cmd['n']:,}",
                 f"{cmd['seconds']['liprobe']:.3f}",
                 f"{cmd['n'] / cmd['seconds']['liprobe'] / 1e6:,.0f}", f"{cmd['ratio']:.2f}"],
                ["(g) plain numpy script (bench/peers/plain_numpy_counts.py)", f"{cmd['n']:,}",
                 f"{cmd['seconds']['numpy']:.3f}",
                 f"{cmd['n'] / cmd['seconds']['numpy'] / 1e6:,.0f}", "1.00"]]
    from liprobe._jit import get_num_threads

    text = "\n".join([
        f"# bench/core.py: {n:,} ions, median of {args.repeats}",
        "",
        f"{machine_line()}; {git_line()}; numba {get_num_threads()} threads; CPUs busy with "
        f"other processes: {100 * busy0:.0f} % before the run, {100 * busy1:.0f} % after."
        + busy_note,
        "",
        "Synthetic NMC811-like run (bench/core.py: 14 Gaussian peaks of 0.02-0.05 Da on a 5 % "
        "flat background, 14 windows of 7 ions; x/y in a 40 nm needle). Seconds are medians "
        "after one warm-up; M ions/s = ions / seconds; x copy-mass = seconds / copy-mass "
        "seconds, where copy-mass (`np.copyto` of the native float32 mass column into a "
        "preallocated array, in the same process) is timed once before each repeat of the "
        "step, its median given in the row (alone, before the steps: "
        f"{t_copy:.4f} s for {n:,} ions; rows without interleaved copies use that). "
        "RssAnon is sampled every 5 ms by a thread during the warm-up and one more run, not "
        "during the timed repeats: increase above the level before the step, and absolute.",
        "",
        "## liprobe, columns in memory",
        "",
        our_table(rows, t_copy),
        "",
        "Checked (not timed): " + "; ".join(f"{k}: {'yes' if v else 'NO'}"
                                            for k, v in checks.items()) + ".",
        "",
        "## liprobe, from the file",
        "",
        markdown_table(["step", "call", "ions", "seconds (median)", "min", "M ions/s",
                        "x copy-mass", "RssAnon increase (MB)", "RssAnon peak (MB)", "note"],
                       e2e_rows),
        "",
        markdown_table(["whole command, subprocess wall time", "ions", "seconds (median)",
                        "M ions/s", "x plain numpy"], cmd_rows),
        "",
        f"Both after one warm-up run each (numba cache warm, page cache warm), interleaved. "
        f"liprobe's ion counts equal the script's window counts summed per ion: "
        f"{'yes' if cmd['agree'] else 'NO'}.",
        "",
        "## Peers",
        "",
        (f"Each in its own venv under bench/.envs/, on a {n_peer:,}-ion .pos of the same run, "
         "through bench/peers/<peer>_steps.py, median of "
         f"{args.peer_repeats or args.repeats} after one warm-up; 'x its copy-mass' is against "
         "`np.copyto` of that peer's own mass column in its own process."
         if not args.no_peers else "Not run (--no-peers)."),
        "",
        peer_table(peers, peer_checks) if peers else "",
        "",
        "### liprobe against the fastest peer (M ions/s; sizes differ, so rates are compared)",
        "",
        comparison_table(rows, peers) if peers else "not run",
        "",
        "## Targets (issue)",
        "",
        *targets(rows, t_copy, peers if not args.no_peers else None, e2e, cmd),
        "",
    ])
    out = Path(args.out)
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)


# --------------------------------------------------------------------------
# (h) frequency distribution analysis (issue 5)
# --------------------------------------------------------------------------

def bench_fda(mass: np.ndarray, table: liprobe.RangeTable, repeats: int, copy=None) -> dict:
    """(h) FDA of Li+ in sequential blocks of 100 ions, with its 20-permutation baseline.

    Target (issue 5): at most 8x copy-mass. Checked, not timed: the block counts
    equal plain numpy (np.searchsorted labels, kept ions compacted, reshape + sum).
    """
    from liprobe.fda import frequency_distribution, sequential_block_counts, species_codes

    print("  (h) frequency distribution analysis ...", file=sys.stderr)
    res = measure(lambda: frequency_distribution(mass, table, "Li+", 100), repeats, copy)
    codes = species_codes(table, "Li+")
    k, _, _ = sequential_block_counts(mass, table, codes, 100)
    edges = np.empty(2 * len(table))
    edges[0::2], edges[1::2] = table.lo, table.hi
    idx = np.searchsorted(edges, mass, side="right")
    code = np.append(codes, 0)[np.where(idx % 2 == 1, (idx - 1) // 2, -1)]
    del idx
    flags = code[code > 0] == 2
    nb = len(flags) // 100
    same = bool(np.array_equal(k, flags[:nb * 100].reshape(nb, 100).sum(axis=1)))
    fd = frequency_distribution(mass, table, "Li+", 100)
    return dict(key="fda", step="(h) FDA: Li+ in blocks of 100 ions, chi2, mu + 20 permutations",
                call='fda.frequency_distribution(mass, table, "Li+", 100)', n=len(mass),
                note=f"target <= 8x copy-mass; {fd.n_blocks:,} blocks, mu {fd.mu:.4f}, "
                     f"mu_shuffled {fd.mu_shuffled:.4f}; blocks equal plain numpy: "
                     f"{'yes' if same else 'NO'}", **res)


# --------------------------------------------------------------------------
# (j) reconstruction (issue 4)
# --------------------------------------------------------------------------

def bench_reconstruct(paths: dict, labels: np.ndarray, table: liprobe.RangeTable, repeats: int,
                      copy=None) -> dict:
    """(j) Reconstruction of every ion from the ``.epos`` hits and voltage, in memory.

    Geiser projection, radius from the voltage, each ion's volume from its range
    window (``labels`` of step (b)), x y z written into preallocated float32
    arrays. Target (issue 4): at most 25x copy-mass. Checked, not timed: every
    position is finite and the run's last tenth lies deeper than its first.
    """
    from liprobe.spatial.reconstruct import ReconstructionParameters, reconstruct, window_volumes

    print("  (j) reconstruction ...", file=sys.stderr)
    epos = liprobe.read(paths["epos"])
    det_x, det_y, v_dc = epos["det_x"], epos["det_y"], epos["v_dc"]
    p = ReconstructionParameters.preset(material="NMC811")
    vol = window_volumes(table, p.atomic_volume_nm3)
    out = tuple(np.empty(len(det_x), np.float32) for _ in range(3))

    def run():
        return reconstruct(det_x, det_y, v_dc, p, labels=labels, window_volume_nm3=vol, out=out)

    res = measure(run, repeats, copy)
    r = run()
    tenth = len(det_x) // 10
    ok = all(bool(np.isfinite(a).all()) for a in out) and \
        float(np.mean(out[2][-tenth:])) < float(np.mean(out[2][:tenth]))
    return dict(key="reconstruct", step="(j) reconstruction from detector hits (Geiser, voltage)",
                call="reconstruct(det_x, det_y, v_dc, params, labels=labels, "
                     "window_volume_nm3=vol, out=xyz)", n=len(det_x),
                note=f"target <= 25x copy-mass; reads 3 columns and labels, writes 3; depth "
                     f"{r.depth_nm:.0f} nm; finite and deeper at the end: "
                     f"{'yes' if ok else 'NO'}", **res)


# --------------------------------------------------------------------------
# (i) automatic ranging (issue 8)
# --------------------------------------------------------------------------


def bench_autorange(mass: np.ndarray, repeats: int, n: int = 10_000_000) -> dict:
    """(i) ``autorange`` of the first ``n`` ions (elements Li, Ni, Co, Mn, O), end to end.

    Target (issue 8): under 10 s for 10 million ions. Sorting the masses, peak
    finding and shapes, candidates, the NNLS explanation and the windows are
    all in the time; repeats are capped at 3 (each run is seconds). Checked,
    not timed: every peak of :data:`PEAKS` lies in a window.
    """
    from liprobe.spectrum.autorange import autorange

    print("  (i) automatic ranging ...", file=sys.stderr)
    m = mass[:n]
    elements = ["Li", "Ni", "Co", "Mn", "O"]
    res = measure(lambda: autorange(m, elements), min(repeats, 3))
    ar = autorange(m, elements)
    # Ni+ and Ni++ of PEAKS have only their 58 and 60 isotopes (no 61/62/64Ni), which the
    # pattern test rejects as Ni: a window must still cover every peak
    missing = sorted({f"{name} {mz:.2f}" for name, mz, _w in PEAKS
                      if not any(r.lo <= mz < r.hi for r in ar.table.ranges)})
    return dict(key="autorange", step=f"(i) autorange {len(m):,} ions (Li, Ni, Co, Mn, O)",
                call='autorange.autorange(mass[:n], ["Li", "Ni", "Co", "Mn", "O"])', n=len(m),
                note=f"target < 10 s; {len(ar.peaks.peaks)} peaks, {len(ar.table)} windows, "
                     f"{len(ar.ions)} ions; every synthetic peak in a window: "
                     f"{'yes' if not missing else 'NO (' + ', '.join(missing) + ')'}", **res)


if __name__ == "__main__":
    main()
