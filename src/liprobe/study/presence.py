"""Which ranged ions are really there: a peak above its local background.

A range file drawn for NMC811 and applied to another phase still counts a
few ions in the Ni and Co windows: background and the tails of neighbouring
peaks. An ion is *present* when the counts in its windows exceed the local
background by ``sigma`` standard deviations and by at least ``min_net`` ions.

The local background of a window is a flat level taken from two side bands
of width ``max(1 Da, 3 x window width)`` just below and just above it, with
every ranged window cut out of them. When the two levels agree within their
Poisson errors (3 sigma) they are pooled (counts over width of both); when
they differ (the thermal tail of a strong neighbour runs through, toward
higher m/n), the level under the window is interpolated between them,
linearly in its logarithm (an exponential tail) from each band's centre to
the window's, and kept between the two levels. (Taking the lower of the two,
as this module did, read a window on a tail as a peak, and, with two
agreeing but noisy levels, biased the background low: a few counts per Da
over an NMC811 range file's many Ni windows read as "NiO2+ present" in a
LiMn2O4 run.) Where neither band keeps any width, the level is that of all
unranged ions over the unranged part of the spectrum. The significance of a
net count takes the background's own error into account:
``(N - B) / sqrt(B + var(B) + 1)``, ``var(B) = B^2 / n_band`` for a level
measured on ``n_band`` counts.

This is a presence test, not a background model: the quantified background
(``1/sqrt(m)`` fits, ppm/ns) belongs to :mod:`liprobe.spectrum.peaks`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..rangetable import RangeTable

__all__ = ["IonPresence", "ion_presence"]

_BIN_DA = 0.01


@dataclass(frozen=True)
class IonPresence:
    """Counts, background estimate and verdict per ranged ion."""

    ions: tuple
    counts: tuple
    background: tuple
    present: tuple

    def present_ions(self) -> tuple:
        return tuple(n for n, p in zip(self.ions, self.present) if p)

    def absent_ions(self) -> tuple:
        return tuple(n for n, p in zip(self.ions, self.present) if not p)

    def to_dict(self) -> dict:
        return {n: {"counts": c, "background": b, "present": p}
                for n, c, b, p in zip(self.ions, self.counts, self.background, self.present)}


def _band_counts(hist, lo_da, hi_da, ranged):
    """``(counts, width in Da, centre in Da)`` over [lo, hi) of the histogram, ranged bins
    left out (the centre: of the free bins); None if less than five bins are free."""
    a = max(int(math.floor(lo_da / _BIN_DA)), 0)
    b = min(int(math.ceil(hi_da / _BIN_DA)), len(hist))
    if b <= a:
        return None
    free = ~ranged[a:b]
    width = free.sum() * _BIN_DA
    if width < 5 * _BIN_DA:
        return None
    centre = float(np.mean((np.arange(a, b)[free] + 0.5) * _BIN_DA))
    return float(hist[a:b][free].sum()), float(width), centre


def _level(bands, at_da, global_level):
    """Background level (counts per Da) at ``at_da`` and the counts it rests on, from the
    side bands (module docstring): pooled when they agree, interpolated in log between
    them when they do not."""
    bands = [b for b in bands if b is not None]
    if not bands:
        return global_level
    if len(bands) == 2:
        (n1, w1, c1), (n2, w2, c2) = bands
        d1, d2 = n1 / w1, n2 / w2
        var = (max(n1, 1.0) / w1 ** 2) + (max(n2, 1.0) / w2 ** 2)
        if abs(d1 - d2) <= 3.0 * math.sqrt(var) or c2 <= c1:
            return (n1 + n2) / (w1 + w2), n1 + n2
        l1, l2 = math.log(max(d1, 1e-12)), math.log(max(d2, 1e-12))
        t = min(max((at_da - c1) / (c2 - c1), 0.0), 1.0)
        return math.exp(l1 + t * (l2 - l1)), min(n1, n2)
    n, w, _ = bands[0]
    return n / w, n


def ion_presence(mass, table: RangeTable, sigma: float = 5.0, min_net: int = 10) -> IonPresence:
    """Which ions of ``table`` rise above their local background in ``mass``.

    Parameters
    ----------
    mass : Run, ndarray of float (Da), or iterable of mass chunks
        One pass over the chunks; memory stays bounded by a chunk.
    table : RangeTable
    sigma : float
        Required significance of the net count, ``(N - B) / sqrt(B + 1)``.
    min_net : int
        Required net count.

    Returns
    -------
    IonPresence
    """
    from ..ranging import count_windows
    from ..run import column_chunks
    from ..spectrum import mass_histogram

    if len(table) == 0:
        return IonPresence((), (), (), ())
    top = float(table.hi.max())
    hi_da = math.ceil(top + max(1.0, 3 * float((table.hi - table.lo).max())) + 1)
    window_counts = np.zeros(len(table), np.int64)
    hist = np.zeros(int(round(hi_da / _BIN_DA)), np.int64)
    for c in column_chunks(mass):
        window_counts += count_windows(c, table)[0]
        hist += mass_histogram(c, bin_da=_BIN_DA, mass_range=(0.0, hi_da)).counts
    centers = (np.arange(len(hist)) + 0.5) * _BIN_DA
    ranged = np.zeros(len(hist), bool)
    for r in table.ranges:
        ranged |= (centers >= r.lo - _BIN_DA) & (centers < r.hi + _BIN_DA)
    free_total = float(hist[~ranged].sum())
    free_width = float((~ranged).sum()) * _BIN_DA
    global_level = (free_total / free_width if free_width > 0 else 0.0, free_total)
    per_ion: dict = {}
    for w, r in enumerate(table.ranges):
        width = r.hi - r.lo
        band = max(1.0, 3.0 * width)
        density, n_band = _level((_band_counts(hist, r.lo - band, r.lo, ranged),
                                  _band_counts(hist, r.hi, r.hi + band, ranged)),
                                 0.5 * (r.lo + r.hi), global_level)
        b_w = density * width
        n, b, var = per_ion.get(r.ion, (0, 0.0, 0.0))
        per_ion[r.ion] = (n + int(window_counts[w]), b + b_w,
                          var + (b_w * b_w / n_band if n_band > 0 else b_w))
    ions, counts, bg, present = [], [], [], []
    for ion in table.ions:
        n, b, var = per_ion.get(ion, (0, 0.0, 0.0))
        net = n - b
        ions.append(ion.name)
        counts.append(int(n))
        bg.append(float(b))
        present.append(bool(net >= min_net and net >= sigma * math.sqrt(b + var + 1.0)))
    return IonPresence(tuple(ions), tuple(counts), tuple(bg), tuple(present))
