"""What every peer script shares: arguments, timing of one step, JSON output.

A peer script runs inside the peer's own virtual environment (bench/.envs/NAME),
so it may import only the peer, numpy and bench/_common.py (numpy-only).
It prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import numpy as np
from _common import PeakRssAnon, copy_mass_baseline, median_time, rss_anon_bytes


def parse_args(doc: str):
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--pos", required=True)
    ap.add_argument("--rrng", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    return ap.parse_args()


class Report:
    """Collects the steps of one peer and prints them as JSON."""

    def __init__(self, peer: str, dist: str, repeats: int):
        from importlib import metadata

        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "unknown"
        self.repeats = repeats
        self.out = {"peer": peer, "version": version, "python": platform.python_version(),
                    "numpy": np.__version__, "n_ions": None, "copy_mass": None, "steps": []}

    def time(self, step: str, call: str, fn, note: str = "", repeats: int | None = None):
        """Median of ``repeats`` runs of ``fn()`` after one warm-up, with peak RssAnon.

        Returns the last result of ``fn`` (None if it raised; the error is recorded).
        """
        box = {}

        def run():
            box["r"] = fn()

        before = rss_anon_bytes()
        try:
            with PeakRssAnon() as p:
                t, times = median_time(run, repeats or self.repeats, warmup=1)
        except Exception as e:  # noqa: BLE001  a peer failing a step is a result, not a crash
            self.out["steps"].append({"step": step, "call": call, "error":
                                      f"{type(e).__name__}: {e}".splitlines()[0][:300]})
            traceback.print_exc(file=sys.stderr)
            return None
        self.out["steps"].append({"step": step, "call": call, "seconds": t, "times": times,
                                  "rss_before": before, "rss_peak": p.peak, "note": note})
        return box.get("r")

    def na(self, step: str, reason: str):
        self.out["steps"].append({"step": step, "na": reason})

    def copy_mass(self, mass):
        """copy-mass of this peer's own mass column, in this process."""
        self.out["n_ions"] = int(len(mass))
        self.out["copy_mass"] = copy_mass_baseline(np.asarray(mass), self.repeats)

    def emit(self):
        print(json.dumps(self.out))
