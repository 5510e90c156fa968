"""Flag stability: the paper's preset analysed at several run sizes, flags compared.

    python bench/flag_stability.py [--sizes 1e5,4e5,1.6e6] [--work DIR] [--keep]
                                   [--out bench/results/flag_stability.md]

For each size N, ``liprobe simulate --preset paper --ions N`` writes the seed
study's series (the coated runs have N ions; the others scale with it, the
flagships are 12 N), and ``liprobe study`` analyses it. The flags of every row
(run and segment) are then compared across the sizes. A flag that fires at
one size and not at another is listed with each of its tests' score and
threshold (``flag_<flag>_<test>_score`` / ``_threshold`` of runs.csv) at every
size, and the ratio ``|score| / threshold`` at the smallest size: near 1, the
effect sits at the threshold and counting noise may tip it either way; far
from 1, the disagreement is a defect of the flag.

Not a test: it simulates and analyses about 73 N ions (117 M at 1.6 M) and
takes ~8 minutes on 2 cores. Scratch goes to ``--work`` (a temporary folder
by default), removed at the end unless ``--keep``; ``--reuse`` takes the
studies already in ``--work``. A flag without test columns (``early_fracture``,
``other_phase`` by fit) is listed with its reason at each size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from _common import machine_line, markdown_table, write_report  # noqa: E402

FLAGS = ("delithiated", "other_phase", "off_stoichiometric", "early_fracture")


def liprobe_cmd() -> str:
    exe = os.path.join(os.path.dirname(sys.executable), "liprobe")
    return exe if os.path.exists(exe) else "liprobe"


def run_size(n: int, work: str, reuse: bool = False) -> tuple[str, float | None]:
    """Simulate and analyse the preset at ``n`` ions; the runs.csv path and the wall time
    (None when ``reuse`` found the study already done)."""
    series = os.path.join(work, f"n{n}", "series")
    out = os.path.join(work, f"n{n}", "out")
    if reuse and os.path.exists(os.path.join(out, "runs.csv")):
        return os.path.join(out, "runs.csv"), None
    t0 = time.perf_counter()
    subprocess.run([liprobe_cmd(), "simulate", "--preset", "paper", "--ions", str(n),
                    "-o", series, "--quiet"], check=True)
    subprocess.run([liprobe_cmd(), "study", os.path.join(series, "study.toml"), "-o", out,
                    "--quiet"], check=True)
    return os.path.join(out, "runs.csv"), time.perf_counter() - t0


def row_key(r) -> str:
    seg = r.get("segment")
    try:
        seg = int(seg)
    except (TypeError, ValueError):
        return str(r["run"])
    return f"{r['run']}[{seg}]"


def flag_set(r) -> set:
    f = r.get("flags")
    return set(f.split(";")) if isinstance(f, str) and f else set()


def tests_of(columns, flag: str) -> list[str]:
    head, tail = f"flag_{flag}_", "_score"
    return [c[len(head):-len(tail)] for c in columns if c.startswith(head) and c.endswith(tail)]


def _reason(r, flag: str) -> str:
    """The flag's part of ``flag_reasons``, or '-'."""
    for part in str(r.get("flag_reasons") or "").split(" | "):
        name, _, text = part.partition(": ")
        if name == flag:
            return text.replace("|", "/")[:160]
    return "-"


def compare(tables: dict) -> tuple[list, list]:
    """(summary rows per flag, disagreement rows)."""
    import math

    sizes = sorted(tables)
    rows = {n: {row_key(r): r for r in t.to_dict("records")} for n, t in tables.items()}
    keys = [k for k in rows[sizes[0]] if all(k in rows[n] for n in sizes)]
    summary, disagree = [], []
    for flag in FLAGS:
        counts = [sum(flag in flag_set(rows[n][k]) for k in keys) for n in sizes]
        bad = [k for k in keys if len({flag in flag_set(rows[n][k]) for n in sizes}) > 1]
        summary.append([flag] + counts + [len(bad)])
        cols = set().union(*(t.columns for t in tables.values()))
        for k in bad:
            on = "".join("x" if flag in flag_set(rows[n][k]) else "." for n in sizes)
            for test in tests_of(cols, flag) or ["(no test columns)"]:
                cells, ratio0 = [], None
                for i, n in enumerate(sizes):
                    r = rows[n][k]
                    s = r.get(f"flag_{flag}_{test}_score")
                    th = r.get(f"flag_{flag}_{test}_threshold")
                    ok = isinstance(s, float) and isinstance(th, float) and math.isfinite(s) \
                        and math.isfinite(th) and th > 0
                    cells.append(f"{s:.3g} / {th:.3g}" if ok else "-")
                    if i == 0 and ok:
                        ratio0 = abs(s) / th
                if all(c == "-" for c in cells):
                    # a flag without test columns: its reason at each size
                    cells = [_reason(rows[n][k], flag) for n in sizes]
                    disagree.append([k, flag, on, "(reason)"] + cells + ["-"])
                    break
                disagree.append([k, flag, on, test] + cells
                                + ["-" if ratio0 is None else f"{ratio0:.2f}"])
    return summary, disagree


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e5,4e5,1.6e6")
    ap.add_argument("--work", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--reuse", action="store_true",
                    help="with --work: take a size's runs.csv from there when it exists")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "flag_stability.md"))
    a = ap.parse_args(argv)
    import pandas as pd

    sizes = sorted(int(float(s)) for s in a.sizes.split(","))
    work = a.work or tempfile.mkdtemp(prefix="liprobe-flags-")
    os.makedirs(work, exist_ok=True)
    tables, times = {}, {}
    try:
        for n in sizes:
            path, dt = run_size(n, work, a.reuse)
            tables[n], times[n] = pd.read_csv(path), dt
            if dt is not None:
                print(f"{n:,} ions per coated run: {dt:.0f} s", file=sys.stderr)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    summary, disagree = compare(tables)
    head = [f"{n:,}" for n in sizes]
    lines = ["# Flag stability across run sizes", "", machine_line(), "",
             "`python bench/flag_stability.py --sizes " + a.sizes + "`: the paper preset at each "
             "size (coated runs of that many ions; the rest scale with it), analysed by "
             "`liprobe study`. Wall time per size (simulate + study): "
             + ", ".join(f"{n:,}: " + ("reused" if times[n] is None else f"{times[n]:.0f} s")
                         for n in sizes) + ".", "",
             "## Rows flagged, per size", "",
             markdown_table(["flag"] + head + ["rows that disagree"], summary), "",
             "## Rows whose flag differs between sizes", "",
             "`x`/`.`: flagged or not at each size (smallest first); each test's score / "
             "threshold at each size; the last column is |score| / threshold at the smallest "
             "size (near 1: at the threshold).", ""]
    if disagree:
        lines.append(markdown_table(["row", "flag", "flagged", "test"] + head
                                    + ["ratio at smallest"], disagree))
    else:
        lines.append("None: every row has the same flags at every size.")
    text = "\n".join(lines) + "\n"
    write_report(a.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
