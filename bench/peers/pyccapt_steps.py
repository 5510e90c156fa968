"""pyccapt's steps for bench/core.py: read, histogram, range labels, composition.

    bench/.envs/pyccapt/bin/python bench/peers/pyccapt_steps.py \
        --pos F.pos --rrng F.rrng --repeats 5

Public functions of pyccapt's analysis part (``pyccapt.calibration``; the
package needs ``vispy`` to import ``leap_tools``):

- read: ``leap_tools.read_pos`` (memory-mapped ``LazyTable`` materialised as a
  pandas DataFrame, float32 columns);
- ranges: ``leap_tools.read_rrng(path, return_tables=True)`` (the raw IVAS
  tables that ``label_ions`` takes);
- histogram: ``lazy_io.chunked_histogram(LazyColumn(mass), 20000,
  value_range=(0, 200))``, the compute part of its mass-spectrum plots
  (``np.histogram`` per 1 M-ion chunk with explicit edges);
- per-ion range assignment: ``leap_tools.label_ions(df, ranges)`` (a 'comp' and
  a 'colour' string column, one pandas ``.loc`` pass per range, windows
  ``[lo, hi]``);
- counts only: no function of its own (counts are ``value_counts`` of the
  labels): n/a;
- composition: ``label_ions`` then ``leap_tools.deconvolve`` (one row per atom of
  each ranged ion), then a groupby-sum of its 'n' column per element;
- ROI: no cylinder; ``concentration_profile.calculate_roi_concentration_profile``
  takes an axis-aligned rectangular prism and computes a profile: n/a.
"""

from __future__ import annotations

from _peer import Report, parse_args


def main():
    args = parse_args(__doc__)
    rep = Report("pyccapt", "pyccapt", args.repeats)
    from pyccapt.calibration.data_tools import lazy_io
    from pyccapt.calibration.leap_tools import leap_tools

    df = rep.time("read", "leap_tools.read_pos(pos)", lambda: leap_tools.read_pos(args.pos),
                  note="pandas DataFrame of the 4 columns")
    if df is None:
        rep.emit()
        return
    tables = rep.time("read ranges", "leap_tools.read_rrng(rrng, return_tables=True)",
                      lambda: leap_tools.read_rrng(args.rrng, return_tables=True))
    mass = df["m/n (Da)"].to_numpy()
    rep.copy_mass(mass)
    checks = {}
    h = rep.time("histogram", "lazy_io.chunked_histogram(LazyColumn(mass), 20000, "
                 "value_range=(0, 200))",
                 lambda: lazy_io.chunked_histogram(lazy_io.LazyColumn(mass, name="m/n (Da)"),
                                                   20000, value_range=(0.0, 200.0)),
                 note="np.histogram with explicit edges, 1 M-ion chunks")
    if h is not None:
        checks["histogram_total"] = int(h[0].sum())
    if tables is not None:
        rrngs = tables[1]
        lab = rep.time("assign", "leap_tools.label_ions(df, rrngs)",
                       lambda: leap_tools.label_ions(df, rrngs),
                       note="string label column per ion, one .loc pass per range")
        if lab is not None:
            checks["ranged"] = int((lab["comp"] != "").sum())
        rep.na("count", "no counts-only function (counts are value_counts of label_ions' labels)")

        def comp():
            d = leap_tools.deconvolve(leap_tools.label_ions(df, rrngs))
            return d["n"].astype(int).groupby(d["element"]).sum()

        atoms = rep.time("composition", "leap_tools.deconvolve(leap_tools.label_ions(df, rrngs)) "
                         "+ groupby-sum of 'n' per element", comp,
                         note="labels + deconvolution into one row per atom")
        if atoms is not None:
            checks["atoms"] = {str(k): int(v) for k, v in atoms.items()}
    rep.na("roi", "no cylinder ROI (calculate_roi_concentration_profile is an axis-aligned "
                  "rectangular prism that also computes a profile)")
    rep.out["checks"] = checks
    rep.emit()


if __name__ == "__main__":
    main()
