"""Benchmark helpers: repeated timing, the numpy baselines, memory sampling, tables.

Benchmarks are not tests: they measure, print and write a Markdown table under
``bench/results/``. Every row is reported as a ratio to a plain numpy pass over
the same data, timed in the same process.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import numpy as np


def median_time(fn, repeats: int = 5, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def copy_record_baseline(records: np.ndarray, repeats: int = 5) -> float:
    """``np.copyto`` of a whole record array already in memory (DESIGN.md's copy-record)."""
    src = np.array(records)          # in memory, not a memory map
    dst = np.empty_like(src)
    return median_time(lambda: np.copyto(dst, src), repeats)[0]


def copy_bytes_baseline(records: np.ndarray, repeats: int = 5) -> float:
    """The same bytes copied as a flat uint8 buffer (memory bandwidth, no dtype logic)."""
    src = np.array(records).view(np.uint8)
    dst = np.empty_like(src)
    return median_time(lambda: np.copyto(dst, src), repeats)[0]


def copy_mass_baseline(mass: np.ndarray, repeats: int = 5) -> float:
    """``np.copyto`` of a native float32 mass column (DESIGN.md's copy-mass)."""
    src = np.ascontiguousarray(mass, dtype=np.float32)
    dst = np.empty_like(src)
    return median_time(lambda: np.copyto(dst, src), repeats)[0]


def rss_anon_bytes() -> int:
    """Anonymous resident memory of this process (RssAnon from /proc/self/status)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRssAnon:
    """Sample RssAnon in a thread while a block runs; ``.peak`` is the maximum in bytes."""

    def __init__(self, interval_s: float = 0.005):
        self.interval = interval_s
        self.peak = 0
        self._stop = threading.Event()

    def _loop(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_anon_bytes())
            time.sleep(self.interval)

    def __enter__(self):
        self.peak = rss_anon_bytes()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_anon_bytes())


def warm_page_cache(path) -> None:
    """Read a file once so that later timings see a warm page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def markdown_table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def machine_line() -> str:
    import platform

    return (f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {np.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def write_report(path, text: str) -> None:
    """Write a benchmark's Markdown report atomically (a temporary file, then a rename)."""
    path = str(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
