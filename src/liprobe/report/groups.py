"""Which rows of a study's table play which part in its figures.

A study of coated and uncoated specimens of one material, with runs of
another phase among them and a reference material, as Singh et al.,
arXiv:2309.07842 (2023): NMC811 with and without a Cr coating, a Mn-rich
particle inside the NMC811 powder, and commercial LiMn2O4. The parts are
read from the table's own columns, never from run names:

``main``
    The material most rows are listed as (``material``).
``uncoated``
    Rows of the main material with ``coating = "none"`` (not of another phase).
``coated``
    Coated rows of the main material, neither ``other_phase`` nor
    ``delithiated``: the rows whose ratios the study reports.
``other_phase``
    Rows flagged ``other_phase`` whose best fit is not their listed material (e.g.
    a Mn-rich particle listed as NMC811); ``best_phase`` names what they fit. A
    run flagged for a grain of another phase inside it keeps its own fit and
    stays in its group.
``reference``
    Rows listed as another material (e.g. LiMn2O4), not flagged ``other_phase``.

Only rows whose analysis finished (``status = "ok"``) take part.
"""

from __future__ import annotations

import math
import re

__all__ = ["StudyGroups", "study_groups", "flag_set", "CSR_PATTERN", "number", "is_missing",
           "plain_records"]

#: A charge-state ratio column: ``Ni++/Ni+`` (an element's 2+ over its 1+ ions).
CSR_PATTERN = re.compile(r"^([A-Z][a-z]?)\+\+/\1\+$")


def flag_set(value) -> set:
    """The flags of a ``flags`` cell (``;``-separated; empty, None or NA: none)."""
    if not isinstance(value, str):
        return set()
    return {f for f in value.split(";") if f}


def number(v) -> float | None:
    """A finite float, or None (NaN, NA, None, text)."""
    if v is None or isinstance(v, (str, bool)):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def is_missing(v) -> bool:
    """None, NaN or pandas' NA."""
    if v is None:
        return True
    if isinstance(v, float):
        return math.isnan(v)
    try:
        import pandas as pd

        return v is pd.NA or v is pd.NaT
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False


def plain_records(table) -> list:
    """The table's rows as dicts with missing cells None (as the study's rows are)."""
    return [{k: (None if is_missing(v) else v) for k, v in r.items()}
            for r in table.to_dict("records")]


class StudyGroups:
    """The parts of a study's table (pandas DataFrames, table order kept): ``uncoated``
    and ``coated`` rows of the main material (flagged delithiated or not: a coated run
    whose Li moved is still one of the coated runs the paper's figures show; its flag is
    in the flags table), ``other_phase`` (flagged other_phase), ``reference`` (other
    materials)."""

    def __init__(self, table):
        import pandas as pd

        self.table = table
        ok = table[table["status"].astype("string").fillna("") == "ok"] \
            if "status" in table else table
        self.ok = ok
        mats = ok["material"].dropna() if "material" in ok else pd.Series([], dtype=object)
        self.main = str(mats.mode().iloc[0]) if len(mats) else None
        flags = ok["flags"] if "flags" in ok else pd.Series([None] * len(ok), index=ok.index)
        fl = flags.map(flag_set)
        other = fl.map(lambda f: "other_phase" in f).astype(bool)
        if "best_phase" in ok and "material" in ok:
            # a run that is another phase (its best fit is not its listed material), not a
            # run holding a grain of one (flagged other_phase for the grain, its own fit kept)
            same = (ok["best_phase"].astype("string") == ok["material"].astype("string"))
            other &= ~same.fillna(False).astype(bool)
        delith = fl.map(lambda f: "delithiated" in f).astype(bool)
        coating = ok["coating"].astype("string").fillna("none").str.lower() \
            if "coating" in ok else pd.Series(["none"] * len(ok), index=ok.index)
        coated = coating != "none"
        is_main = (ok["material"].astype("string") == self.main).fillna(False).astype(bool) \
            if self.main is not None else pd.Series(False, index=ok.index)
        self.uncoated = ok[~coated & ~other & is_main]
        self.coated = ok[coated & ~other & is_main]
        #: the coated rows flagged delithiated
        self.coated_delithiated = ok[coated & ~other & delith & is_main]
        self.other_phase = ok[other]
        self.reference = ok[~other & ~is_main]

    @staticmethod
    def particle_labels(frame):
        """Each row's particle (``"(no particle)"`` where none is given), as a Series."""
        import pandas as pd

        if "particle" not in frame:
            return pd.Series(["(no particle)"] * len(frame), index=frame.index, dtype="string")
        return frame["particle"].astype("string").fillna("(no particle)")

    def particles(self, frame) -> list:
        """The particles of ``frame``, the one with most rows first (table order on ties)."""
        parts = self.particle_labels(frame)
        order = list(dict.fromkeys(parts))
        counts = parts.value_counts()
        return sorted(order, key=lambda p: (-int(counts[p]), order.index(p)))

    @property
    def coated_particles(self) -> list:
        """Particles of the coated rows, the one with most rows first (table order on ties)."""
        return self.particles(self.coated)

    @property
    def ratio_rows(self):
        """The rows whose ratios the field-proxy figures plot: the coated rows, or the
        uncoated ones where no run of the main material is coated (a study of bare
        specimens across laser energies)."""
        return self.coated if len(self.coated) else self.uncoated

    @property
    def ratio_state(self) -> str:
        """``"coated"`` or ``"uncoated"``: which rows :attr:`ratio_rows` holds."""
        return "coated" if len(self.coated) else "uncoated"

    def rows_of_particle(self, frame, particle):
        return frame[self.particle_labels(frame) == particle]

    def csr_columns(self) -> list:
        """Charge-state ratio columns of the table (``Ni++/Ni+``, ``Mn++/Mn+`` ...)."""
        return [c for c in self.table.columns if CSR_PATTERN.match(str(c))]


def study_groups(table) -> StudyGroups:
    return StudyGroups(table)
