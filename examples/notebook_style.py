"""A study from Python, cell by cell, as in a notebook.

    python examples/notebook_style.py STUDY.toml OUT/ [WORKERS]

STUDY.toml is a manifest as documented in ``examples/study.toml`` (whose runs
``liprobe simulate --preset paper`` writes). WORKERS: processes of the local
Dask cluster (default: one per core); 0 runs everything in this process.
"""

import os
import sys

import liprobe
from liprobe.composition import composition
from liprobe.spatial.roi import select
from liprobe.study import analyse_run, load_manifest, run_study


def main(manifest="examples/study.toml", out="out/study", workers=None):
    # %% the manifest: study-wide parameters and one spec per run (or segment)
    study = load_manifest(manifest)
    print(f"{study.name}: {len(study.runs)} rows; ratios {', '.join(study.params.ratios)}")

    # %% one run, exactly as a worker analyses it: plain numbers, errors in *_err
    first = study.runs[0]
    one = analyse_run(first, study.params)
    print(first.label, one["status"], one["error"] or "",
          {k: one["values"].get(k) for k in ("ions_roi", "O2+/O+", "fda_mu_Li+")})

    # %% the whole study: a local Dask cluster (workers=0: this process); cached under out/
    result = run_study(study, out, workers=None if workers is None else int(workers))
    df = result.table                           # = out/runs.parquet
    cols = [c for c in ("run", "segment", "coating", "laser_pj", "O2+/O+",
                        "Li/(Li+Ni+Co+Mn)", "Li/(Li+Ni+Co+Mn)_err", "fda_mu_Li+",
                        "best_phase", "flags") if c in df.columns]
    print(df[cols].to_string(index=False))
    print(f"{len(result.computed)} analysed, {len(result.cached)} from the cache, "
          f"{len(result.failed)} failed")
    for y in result.yields:
        print(f"coating {y['coating']}: {y['complete']} complete, {y['fractured']} fractured")

    # %% a closer look at one run with the single-run functions
    if first.ranges and os.path.exists(first.data):
        run, table = liprobe.read(first.data), liprobe.read_ranges(first.ranges)
        seg = None if first.segment is None else slice(first.start, first.stop)
        sel, info = select(run, first.roi, seg, table)
        comp = composition(sel.chunks("mass"), table, exclude=study.params.exclude,
                           ratios=study.params.ratios)
        for text, r in comp.ratios.items():
            print(f"{first.label}: {text} = {r.value:.4f} +/- {r.error:.4f}"
                  if r.value is not None else f"{first.label}: {text} n/a ({r.reason})")

    # %% the paper's Figure 5: a ratio against the field proxy, coated runs
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = df[(df["status"] == "ok") & (df["coating"] != "none")]
    ratio = study.params.ratios[0] if study.params.ratios else None
    if ratio and "O2+/O+" in ok.columns and len(ok):
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.errorbar(ok["O2+/O+"], ok[ratio], yerr=ok[f"{ratio}_err"], fmt="o")
        ax.set_xlabel("O2+/O+")
        ax.set_ylabel(ratio)
        fig.tight_layout()
        path = os.path.join(out, "ratio_vs_field.png")
        fig.savefig(path)
        print(f"wrote {path}")
    return result


if __name__ == "__main__":   # needed: the local cluster's worker processes import this file
    main(*sys.argv[1:])
