"""apav's steps for bench/core.py: read, histogram, counts per range, composition, cylinder ROI.

    bench/.envs/apav/bin/python bench/peers/apav_steps.py --pos F.pos --rrng F.rrng --repeats 5

Public API only (apav 1.4):

- read: ``apav.load_pos`` (``Roi.from_pos``: ``np.fromfile`` of the whole file, then a
  native-byte-order copy; everything in memory);
- ranges: ``apav.load_rrng``;
- histogram: ``Roi.mass_histogram(0.01, 0, 200)`` (fast-histogram). The method is
  ``functools.lru_cache``-d, so its cache is cleared before every call, else
  repeats would time a dictionary look-up;
- counts per range: ``RangedMassSpectrum.counts_in_range(r)`` for every range of
  the collection (what ``RangedMassSpectrum`` itself calls; windows ``[lo, hi)``);
- per-ion range assignment: none in apav (n/a);
- composition: ``RangedMassSpectrum(roi, ranges, bin_width=0.01, decompose=True)``
  (counts per range, decomposition into atoms; its constructor also builds the
  0.01 Da histogram, which is part of the call);
- ROI: ``RoiCylinder(roi, center, radius=12.5, height, axis="z")`` with a height
  covering the whole run, i.e. an unbounded 25 nm cylinder along z.
"""

from __future__ import annotations

import numpy as np
from _peer import Report, parse_args


def main():
    args = parse_args(__doc__)
    rep = Report("apav", "apav", args.repeats)
    import apav
    from apav import RoiCylinder
    from apav.analysis.massspectrum import RangedMassSpectrum
    from apav.core.roi import Roi

    roi = rep.time("read", "apav.load_pos(pos)", lambda: apav.load_pos(args.pos),
                   note="np.fromfile + native copy, whole file in memory")
    if roi is None:
        rep.emit()
        return
    rc = rep.time("read ranges", "apav.load_rrng(rrng)", lambda: apav.load_rrng(args.rrng))
    rep.copy_mass(roi.mass)

    def hist():
        Roi.mass_histogram.cache_clear()
        return roi.mass_histogram(0.01, 0, 200)

    h = rep.time("histogram", "Roi.mass_histogram(0.01, 0, 200)", hist,
                 note="lru_cache cleared before each call")
    rep.na("assign", "no per-ion range assignment in apav's API (RangeCollection.find_by_mass "
                     "takes one mass at a time)")
    checks = {}
    if rc is not None:
        Roi.mass_histogram.cache_clear()
        ms = RangedMassSpectrum(roi, rc, bin_width=0.01)
        counts = rep.time("count", "[RangedMassSpectrum.counts_in_range(r) for r in ranges]",
                          lambda: [ms.counts_in_range(r) for r in rc],
                          note="one boolean pass per range")
        if counts is not None:
            checks["ranged"] = int(sum(counts))

        def comp():
            Roi.mass_histogram.cache_clear()
            return RangedMassSpectrum(roi, rc, bin_width=0.01, decompose=True).quant_dict

        q = rep.time("composition", "RangedMassSpectrum(roi, ranges, decompose=True).quant_dict",
                     comp, note="includes the 0.01 Da histogram its constructor builds")
        if q is not None:
            checks["atoms"] = {k: int(v[1]) for k, v in q.items()}
    z = roi.xyz[:, 2]
    z0, z1 = float(z.min()), float(z.max())
    cyl = rep.time("roi", "RoiCylinder(roi, (0, 0, zmid), 12.5, height, 'z')",
                   lambda: RoiCylinder(roi, (0.0, 0.0, 0.5 * (z0 + z1)), 12.5,
                                       (z1 - z0) * 1.01 + 1.0, "z"),
                   note="index array of the ions inside (r < 12.5 nm)")
    if cyl is not None:
        checks["roi"] = int(cyl.counts)
    if h is not None:
        checks["histogram_total"] = int(np.asarray(h[1]).sum())
    rep.out["checks"] = checks
    rep.emit()


if __name__ == "__main__":
    main()
