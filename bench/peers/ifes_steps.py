"""ifes-apt-tc-data-modeling's steps for bench/core.py: reading only.

    bench/.envs/ifes/bin/python bench/peers/ifes_steps.py --pos F.pos --rrng F.rrng --repeats 5

ifes-apt-tc-data-modeling (NOMAD's readers for APT files) reads files into its
data model; it has no mass histogram, range assignment, composition or ROI.
Public API used:

- read: ``ReadPosFileFormat(pos).get_mass_to_charge_state_ratio()`` (a strided
  memory-map copy, then a copy to native float32, as a pint Quantity);
- ranges: ``ReadRrngFileFormat(rrng)``.
"""

from __future__ import annotations

import numpy as np
from _peer import Report, parse_args

NA = "ifes-apt-tc-data-modeling reads files into a data model; it has no {} function"


def main():
    args = parse_args(__doc__)
    rep = Report("ifes-apt-tc-data-modeling", "ifes-apt-tc-data-modeling", args.repeats)
    from ifes_apt_tc_data_modeling.pos.pos_reader import ReadPosFileFormat
    from ifes_apt_tc_data_modeling.rrng.rrng_reader import ReadRrngFileFormat

    q = rep.time("read", "ReadPosFileFormat(pos).get_mass_to_charge_state_ratio()",
                 lambda: ReadPosFileFormat(args.pos).get_mass_to_charge_state_ratio(),
                 note="mass column only")
    r = rep.time("read ranges", "ReadRrngFileFormat(rrng)", lambda: ReadRrngFileFormat(args.rrng))
    if q is not None:
        rep.copy_mass(np.asarray(q.magnitude))
    checks = {}
    if r is not None:
        checks["ranges"] = len(r.rrng["molecular_ions"])
    for step, what in (("histogram", "histogram"), ("assign", "range-assignment"),
                       ("count", "range-counting"), ("composition", "composition"),
                       ("roi", "region-of-interest")):
        rep.na(step, NA.format(what))
    rep.out["checks"] = checks
    rep.emit()


if __name__ == "__main__":
    main()
