"""Multiple hits: multiplicity statistics, single/multiple-hit selections, Saxey correlation.

In an ``.epos`` each detector event (the ions of one pulse) is written as
consecutive records; the first carries the event's size in ``multiplicity``
(CAMECA's "ipp": ions per pulse) and the following ones carry 0. Events
are rebuilt from that column alone (``pulse_delta`` is not needed).

The correlation histogram (Saxey, Ultramicroscopy 111 (2011) 473) counts,
for every pair of ions of one event, the point ``(m1, m2)`` with ``m1 <=
m2``. Molecular ions that dissociate in flight draw curved tracks on it:
a parent of mass M and charge n that splits into fragments (M1, n1) and
(M2, n2) after being accelerated through a fraction f of the voltage
reaches the detector at apparent m/n ``M_i / (n_i + f (n M_i / M - n_i))``
for each fragment (energy conservation, short acceleration region: f = 0
gives the fragments' own m/n, f = 1 the parent's). Neutral fragments (O
lost from an oxide) leave no partner: they show as the single-hit tail and
as a deficit of O, which is the study's argument.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

from ..errors import AnalysisError

__all__ = ["MultiplicityStats", "event_sizes", "multiplicity_stats", "hit_mask",
           "ion_pairs", "CorrelationHistogram", "correlation_histogram", "dissociation_track",
           "require_multiplicity", "correlation_histogram_run", "hit_mask_run"]


def require_multiplicity(run):
    """The run's ``multiplicity`` column, or a one-line error for a file without it."""
    _check_multiplicity(run)
    return run["multiplicity"]


def _check_multiplicity(run) -> None:
    if "multiplicity" not in run:
        fmt = run.format or "this"
        from ..errors import ColumnError

        raise ColumnError(f"multiple-hit analysis needs the multiplicity column of an .epos "
                          f"(or .apt); this {fmt} file has none", run.path)


def event_sizes(multiplicity, offset: int = 0, at_end: bool = True) -> np.ndarray:
    """For every ion, the number of ions in its event (1 for a single hit).

    Parameters
    ----------
    multiplicity : ndarray of int, shape (n,)
        The ``.epos`` column: event size on an event's first ion, 0 on the others.
    offset : int
        Index in the run of the first ion (for the messages, when a part is checked).
    at_end : bool
        Whether the part ends where the run does (else it ends before an event's
        first ion, and an event running past it has fewer ions than it claims).

    Raises
    ------
    AnalysisError
        If the column does not describe whole events (a later ion before any
        first ion, or an event running past the end).
    """
    mult = np.asarray(multiplicity).astype(np.int64)
    n = len(mult)
    if n == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(mult > 0)
    if len(starts) == 0 or starts[0] != 0:
        raise AnalysisError("the multiplicity column does not start with an event's first ion")
    sizes = mult[starts]
    ends = starts + sizes
    if ends[-1] > n and at_end:
        raise AnalysisError(f"the last event claims {sizes[-1]} ions but the run ends first")
    lengths = np.diff(np.append(starts, n))
    if not np.array_equal(lengths, sizes):
        bad = int(np.flatnonzero(lengths != sizes)[0])
        raise AnalysisError(f"event at ion {offset + int(starts[bad])} claims "
                            f"{int(sizes[bad])} ions but {int(lengths[bad])} follow it")
    return np.repeat(sizes, sizes)


@dataclass(frozen=True)
class MultiplicityStats:
    """How many events had 1, 2, 3, ... ions."""

    events_by_size: dict       # size -> events
    ions: int
    events: int

    @property
    def multiple_fraction_of_ions(self) -> float:
        single = self.events_by_size.get(1, 0)
        return 1.0 - single / self.ions if self.ions else 0.0

    def to_dict(self) -> dict:
        return {"ions": self.ions, "events": self.events,
                "events_by_size": {str(k): int(v) for k, v in sorted(self.events_by_size.items())},
                "ions_by_size": {str(k): int(k * v)
                                 for k, v in sorted(self.events_by_size.items())},
                "multiple_hit_fraction_of_ions": self.multiple_fraction_of_ions,
                "multiple_hit_fraction_of_events":
                    1.0 - self.events_by_size.get(1, 0) / self.events if self.events else 0.0,
                "mean_ions_per_event": self.ions / self.events if self.events else None}


def multiplicity_stats(multiplicity, offset: int = 0, at_end: bool = True) -> MultiplicityStats:
    """Events by size from the ``.epos`` multiplicity column (``offset``, ``at_end``: see
    :func:`event_sizes`)."""
    sizes = event_sizes(multiplicity, offset, at_end)
    first = np.asarray(multiplicity) > 0
    u, c = np.unique(sizes[first], return_counts=True)
    return MultiplicityStats({int(a): int(b) for a, b in zip(u, c)}, int(len(sizes)),
                             int(first.sum()))


def hit_mask(multiplicity, which: str = "all") -> np.ndarray:
    """Ions of single-hit events (``"single"``), of multiple-hit ones, or all."""
    if which not in ("single", "multiple", "all"):
        raise ValueError(f"unknown selection '{which}' (single, multiple or all)")
    sizes = event_sizes(multiplicity)
    if which == "all":
        return np.ones(len(sizes), bool)
    return sizes == 1 if which == "single" else sizes > 1


def hit_mask_run(run, which: str = "all", chunk_ions: int | None = None):
    """:func:`hit_mask` of a :class:`~liprobe.run.Run`'s ``multiplicity``, read a chunk at
    a time (each chunk cut at its last event's first ion, the rest carried into the next),
    as a :class:`~liprobe.run.PackedMask`: 1 bit per ion, for ``run.select``.

    Raises
    ------
    ColumnError
        The run has no multiplicity column.
    AnalysisError
        The column does not describe whole events (see :func:`event_sizes`).
    """
    from ..run import PackedMask, _set_bits

    if which not in ("single", "multiple", "all"):
        raise ValueError(f"unknown selection '{which}' (single, multiple or all)")
    _check_multiplicity(run)
    bits = np.zeros((run.n_ions + 7) // 8, np.uint8)
    with _naming(run):
        for offset, last, (part,) in _event_parts(run, (), chunk_ions):
            sizes = event_sizes(part, offset, last)
            keep = np.ones(len(sizes), bool) if which == "all" else \
                (sizes == 1 if which == "single" else sizes > 1)
            _set_bits(bits, offset + np.flatnonzero(keep))
    return PackedMask(bits, run.n_ions)


@contextlib.contextmanager
def _naming(run):
    """An AnalysisError raised inside (a multiplicity column that does not describe whole
    events) names the run's file."""
    try:
        yield
    except AnalysisError as e:
        if e.path is None and getattr(run, "path", None):
            raise AnalysisError(e.problem, run.path, e.where) from None
        raise


def _event_parts(run, columns, chunk_ions: int | None):
    """A run read a chunk at a time in whole events: ``(offset, at_end, arrays)`` per part,
    ``arrays`` the part's ``columns`` and its multiplicity (int64) last. Each chunk is cut
    at its last event's first ion and the rest carried into the next; ``offset`` is the
    run's index of the part's first ion, ``at_end`` whether the part ends the run. An
    event running past the end of the run is an AnalysisError (:func:`event_sizes`)."""
    from ..run import DEFAULT_CHUNK_IONS

    size = chunk_ions or DEFAULT_CHUNK_IONS
    n = run.n_ions
    names = (*columns, "multiplicity")
    carry = [np.zeros(0, np.float32) for _ in columns] + [np.zeros(0, np.int64)]
    for chunks in zip(*(run.chunks(c, size) for c in names)):
        start = chunks[0][0]
        offset = start - len(carry[-1])
        cols = [c for _s, c in chunks]
        cols[-1] = cols[-1].astype(np.int64)
        cols = [np.concatenate([a, b]) if len(a) else b for a, b in zip(carry, cols)]
        last = start + size >= n
        cut = len(cols[-1])
        if not last:
            firsts = np.flatnonzero(cols[-1] > 0)
            cut = int(firsts[-1]) if len(firsts) else 0
        carry = [c[cut:] for c in cols]
        if cut:
            yield offset, last, tuple(c[:cut] for c in cols)
    if len(carry[-1]):
        event_sizes(carry[-1], n - len(carry[-1]))   # an event running past the end: an error


def ion_pairs(mass, multiplicity, max_size: int = 8, offset: int = 0,
              at_end: bool = True) -> np.ndarray:
    """Every pair of ions of one event, as ``(m_low, m_high)`` rows (Da).

    Events larger than ``max_size`` are left out (they are rare and dominated
    by noise). Returns an array of shape (pairs, 2), float64. ``offset``,
    ``at_end``: see :func:`event_sizes`.
    """
    m = np.asarray(mass, np.float64)
    sizes = event_sizes(multiplicity, offset, at_end)
    first = np.flatnonzero(np.asarray(multiplicity) > 0)
    out = []
    for k in range(2, max_size + 1):
        st = first[sizes[first] == k]
        if len(st) == 0:
            continue
        for i in range(k):
            for j in range(i + 1, k):
                a, b = m[st + i], m[st + j]
                out.append(np.column_stack([np.minimum(a, b), np.maximum(a, b)]))
    return np.concatenate(out) if out else np.zeros((0, 2))


@dataclass(frozen=True)
class CorrelationHistogram:
    """2-D histogram of ion pairs from one event (Saxey plot)."""

    edges: np.ndarray          # Da, shared by both axes
    counts: np.ndarray         # (bins, bins), counts[i, j]: m_low in bin i, m_high in bin j
    pairs: int
    stats: MultiplicityStats
    top_pairs: tuple = ()      # ((m_low, m_high, count), ...) brightest cells

    def to_dict(self) -> dict:
        return {"pairs": self.pairs, "bin_da": float(self.edges[1] - self.edges[0]),
                "mass_range": [float(self.edges[0]), float(self.edges[-1])],
                "multiplicity": self.stats.to_dict(),
                "top_pairs": [{"mass_low": a, "mass_high": b, "count": int(c)}
                              for a, b, c in self.top_pairs]}


def _correlation_edges(bin_da: float, mass_range) -> np.ndarray:
    lo, hi = float(mass_range[0]), float(mass_range[1])
    if not (bin_da > 0 and hi > lo):
        raise AnalysisError(f"bad correlation histogram: bin {bin_da} Da over [{lo}, {hi}) Da")
    n = (hi - lo) / bin_da
    n = int(round(n)) if math.isfinite(n) else 10**9
    if n > 5000:
        raise AnalysisError(f"{n} x {n} bins is too many: use a coarser --bin")
    return lo + bin_da * np.arange(n + 1)


def correlation_histogram(mass, multiplicity, bin_da: float = 0.1, mass_range=(0.0, 120.0),
                          top: int = 20) -> CorrelationHistogram:
    """The Saxey correlation histogram of ``mass`` (Da) over the events of ``multiplicity``."""
    edges = _correlation_edges(bin_da, mass_range)
    pairs = ion_pairs(mass, multiplicity)
    h, _, _ = np.histogram2d(pairs[:, 0], pairs[:, 1], bins=[edges, edges])
    return _correlation_result(edges, h.astype(np.int64), int(len(pairs)),
                               multiplicity_stats(multiplicity), top)


def correlation_histogram_run(run, bin_da: float = 0.1, mass_range=(0.0, 120.0), top: int = 20,
                              chunk_ions: int | None = None) -> CorrelationHistogram:
    """:func:`correlation_histogram` of a :class:`~liprobe.run.Run`'s ``mass`` and
    ``multiplicity``, read a chunk at a time (each chunk cut at its last event's first ion,
    the rest carried into the next): memory stays bounded by a chunk and the histogram."""
    edges = _correlation_edges(bin_da, mass_range)
    h = np.zeros((len(edges) - 1,) * 2, np.int64)
    n_pairs = n_ions = events = 0
    tally: dict[int, int] = {}
    with _naming(run):
        for offset, last, (part_m, part_k) in _event_parts(run, ("mass",), chunk_ions):
            pairs = ion_pairs(part_m, part_k, offset=offset, at_end=last)
            hh, _, _ = np.histogram2d(pairs[:, 0], pairs[:, 1], bins=[edges, edges])
            h += hh.astype(np.int64)
            n_pairs += len(pairs)
            st = multiplicity_stats(part_k, offset, last)
            n_ions += st.ions
            events += st.events
            for a, b in st.events_by_size.items():
                tally[a] = tally.get(a, 0) + b
    stats = MultiplicityStats(dict(sorted(tally.items())), n_ions, events)
    return _correlation_result(edges, h, n_pairs, stats, top)


def _correlation_result(edges, h, n_pairs, stats, top) -> CorrelationHistogram:
    centers = 0.5 * (edges[:-1] + edges[1:])
    flat = np.argsort(h, axis=None)[::-1][:top]
    tops = tuple((round(float(centers[i]), 3), round(float(centers[j]), 3), int(h[i, j]))
                 for i, j in zip(*np.unravel_index(flat, h.shape)) if h[i, j] > 0)
    return CorrelationHistogram(edges, h, n_pairs, stats, tops)


def dissociation_track(parent, fragment1, fragment2, points: int = 200) -> np.ndarray:
    """Apparent ``(m/n of fragment 1, m/n of fragment 2)`` of an in-flight dissociation.

    Parameters
    ----------
    parent, fragment1, fragment2 : Ion or str
        E.g. ``"NiO2++"`` -> ``"NiO+"`` + ``"O+"``; charges and atoms must add up.
    points : int
        Samples of the fraction f of the voltage the parent was accelerated
        through before splitting, from 0 to 1.

    Returns
    -------
    ndarray, shape (points, 2), Da.
    """
    from ..chemistry import parse_ion

    p, a, b = (parse_ion(x) if isinstance(x, str) else x for x in (parent, fragment1, fragment2))
    atoms: dict[str, int] = {}
    for ion, sgn in ((a, 1), (b, 1), (p, -1)):
        for el, k in ion.atoms:
            atoms[el] = atoms.get(el, 0) + sgn * k
    qa, qb, qp = a.charge, b.charge, p.charge
    if any(atoms.values()) or qa is None or qb is None or qp is None or qa + qb != qp:
        raise AnalysisError(f"{p.name} cannot split into {a.name} + {b.name} "
                            "(atoms and charges must add up)")

    def mono(ion):
        return max(ion.peaks(), key=lambda q: q[1])[0] * ion.charge  # neutral-ish mass

    big_m = mono(p)
    f = np.linspace(0.0, 1.0, points)
    out = []
    for ion in (a, b):
        mi, ni = mono(ion), ion.charge
        out.append(mi / (ni + f * (p.charge * mi / big_m - ni)))
    return np.column_stack(out)
