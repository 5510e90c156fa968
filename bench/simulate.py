"""Benchmark of the simulator: generating and writing a run.

    python bench/simulate.py [--ions 2e6] [--repeats 5] [--threads 1] [--memory-ions 1e7]

Times ``liprobe.simulate.simulate_to_files`` (generation, reconstruction of
the .epos positions, range file, truth and true positions written) for a
coated and an uncoated NMC811 run of ``--ions`` detected ions on
``--threads`` numba threads (default one core, the target of issue 6: at
least 2 million detected ions per second generated and written), median of
``--repeats`` after one warm-up run, in wall time and in CPU time of the
process (the one-core cost; its best run is the least disturbed by other
processes sharing the cores). Also times
``simulate()`` in memory without files, and the peak anonymous memory of a
``--memory-ions`` run (default 1e7) built in memory-mapped temporary files,
to show memory stays bounded. Writes bench/results/simulate.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(fn, repeats: int):
    """Median wall, median CPU and min CPU (process) seconds of ``fn()`` after one warm-up."""
    import statistics
    import time

    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu), min(cpu)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ions", type=float, default=2e6)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--memory-ions", type=float, default=1e7,
                    help="size of the bounded-memory check (0: skip)")
    args = ap.parse_args(argv)
    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    sys.path.insert(0, str(HERE))
    from _common import PeakRssAnon, machine_line, markdown_table

    from liprobe.simulate import SimulationConfig, simulate, simulate_to_files

    n = int(args.ions)
    rows = []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=HERE) as tmp:
        out = Path(tmp) / "run.epos"
        for coating in ("Cr", "none"):
            cfg = SimulationConfig("NMC811", coating=coating, ions=n, seed=1)
            wall, cpu, cpu_min = timed(lambda cfg=cfg: simulate_to_files(cfg, out),
                                       args.repeats)
            size = out.stat().st_size
            got = size // 44                  # .epos: 44 bytes per ion (a fracture cuts the run)
            rows.append([f"NMC811, coating {coating}" + (
                f" ({got:,} ions: fractured)" if got < n else ""),
                "generate + reconstruct + write (epos, rrng, truth.json, truth.pos)",
                f"{wall:.3f}", f"{got / wall / 1e6:.2f}", f"{cpu:.3f}", f"{got / cpu / 1e6:.2f}",
                f"{got / cpu_min / 1e6:.2f}", f"{size / 1e6:.0f} MB"])
        cfg = SimulationConfig("NMC811", coating="Cr", ions=n, seed=1)
        wall, cpu, cpu_min = timed(lambda: simulate(cfg), args.repeats)
        rows.append(["NMC811, coating Cr", "simulate() in memory (no files)", f"{wall:.3f}",
                     f"{n / wall / 1e6:.2f}", f"{cpu:.3f}", f"{n / cpu / 1e6:.2f}",
                     f"{n / cpu_min / 1e6:.2f}", ""])
        mem_line = ""
        if args.memory_ions > 0:
            big = int(args.memory_ions)
            cfg = SimulationConfig("NMC811", coating="Cr", ions=big, seed=1)
            import time

            with PeakRssAnon() as peak:
                w0, c0 = time.perf_counter(), time.process_time()
                simulate_to_files(cfg, out)
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            mem_line = (f"Bounded memory: a {big:,}-ion run written through memory-mapped "
                        f"temporary files (epos {out.stat().st_size / 1e6:.0f} MB, "
                        f"{n_per_s(big, wall)} M ions/s wall, {n_per_s(big, cpu)} CPU) peaked "
                        f"at {peak.peak / 1e6:.0f} MB anonymous memory (RssAnon; file pages "
                        "belong to the page cache).\n")
    load1 = os.getloadavg()[0]
    table = markdown_table(["run", "what", "wall s (median)", "M ions/s (wall)",
                            "CPU s (median)", "M ions/s (CPU)", "M ions/s (best CPU)",
                            "epos size"], rows)
    text = (f"# bench/simulate.py: {n:,} detected ions, median of {args.repeats}, "
            f"{args.threads} numba thread(s)\n\n{machine_line()}; load average "
            f"{load0:.1f} before, {load1:.1f} after (2 cores shared)\n\n{table}\n\n{mem_line}\n"
            "Target (issue 6): at least 2 M detected ions per second generated and written on "
            "one core. With one numba thread the process uses one core, so its CPU time is the "
            "one-core cost whatever the neighbours do; wall time includes waiting for the CPU "
            "when other processes share it (see the load average).\n")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "simulate.md").write_text(text)
    print(text)


def n_per_s(n: int, seconds: float) -> str:
    return f"{n / seconds / 1e6:.2f}"


if __name__ == "__main__":
    main()
