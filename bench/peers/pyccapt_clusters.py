"""pyccapt's maximum-separation clustering for bench/clusters.py.

    bench/.envs/pyccapt/bin/python bench/peers/pyccapt_clusters.py \
        --points solute.npy --dmax 0.5 --nmin 10 --repeats 1

``pyccapt.calibration.clustering.clustering.maximum_separation_clustering(points,
d_max=, n_min=)``: ``cKDTree.query_pairs``, a union-find in Python over the pairs,
then the points' labels and centres. No envelope, erosion or composition. The
module imports plotly at the top (for its figure helpers), so the peer's
environment needs plotly. Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", required=True)
    ap.add_argument("--dmax", type=float, required=True)
    ap.add_argument("--nmin", type=int, required=True)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    from importlib import metadata

    from pyccapt.calibration.clustering.clustering import maximum_separation_clustering

    pts = np.load(args.points)
    times, out = [], None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = maximum_separation_clustering(pts, d_max=args.dmax, n_min=args.nmin)
        times.append(time.perf_counter() - t0)
    labels, centres = out
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, int)
    print(json.dumps({"peer": "pyccapt", "version": metadata.version("pyccapt"),
                      "seconds": float(np.median(times)), "times": times,
                      "clusters": int(len(centres)), "sizes": sorted(sizes.tolist())}))


if __name__ == "__main__":
    main()
