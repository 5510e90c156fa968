"""The plain numpy baseline of bench/core.py step (g): ion counts per window of a .pos.

    python bench/peers/plain_numpy_counts.py FILE.pos FILE.rrng

What anyone would write in a few lines without liprobe: the window bounds from
the ``RangeN=lo hi ...`` lines of the .rrng, ``np.memmap`` of the .pos, the mass
column converted to native float32 (``astype``), ``np.searchsorted`` of every
mass on the interleaved bounds ``[lo0, hi0, lo1, hi1, ...]`` (an odd index
means inside window ``(index - 1) // 2``) and ``np.bincount``. Prints
``{"windows": [counts per window in mass order], "total": ions}``. No
validation, no names, no atoms: the floor for ``liprobe composition``.
"""

import json
import re
import sys

import numpy as np

pos, rrng = sys.argv[1], sys.argv[2]
bounds = []
with open(rrng) as f:
    for line in f:
        m = re.match(r"\s*Range\d+\s*=\s*(\S+)\s+(\S+)", line, re.IGNORECASE)
        if m:
            bounds.append((float(m[1].replace(",", ".")), float(m[2].replace(",", "."))))
edges = np.array(sorted(bounds), dtype=np.float64).ravel()
mass = np.memmap(pos, dtype=">f4", mode="r").reshape(-1, 4)[:, 3].astype(np.float32)
idx = np.searchsorted(edges, mass, side="right")
counts = np.bincount(idx, minlength=len(edges) + 1)[1::2]
print(json.dumps({"windows": counts.tolist(), "total": int(mass.size)}))
