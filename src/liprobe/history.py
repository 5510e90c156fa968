"""The course of a run: voltage, mass and multiplicity against ion index.

What an analyst looks at before reconstructing: the standing voltage (rises
as the tip blunts; a step marks a change of laser energy, where a radius from
the voltage becomes wrong), the mass spectrum along the run (a change of
conditions or a new phase shows as new or shifted lines), the share of
multiple hits, and how the run ended.

Numbers, not judgement calls hidden in a plot:

- **voltage jumps**: the run is cut into ``n_bins`` bins of consecutive ions;
  at each bin boundary the step between the median voltage of the ``window``
  bins after and before it is compared with the steps' robust spread (1.4826
  x median absolute deviation). A step that is at least ``jump_sigma`` times
  that spread *and* at least ``jump_relative`` of the voltage, and the
  largest within ``window`` bins, is a jump. Its ion index is then refined
  on the raw voltages around it (the split that best separates two levels).
- **abrupt end** (fracture): in the last ``max(1 %, 1000 ions)`` of the run
  (at most 10 %), the share of ions in multiple hits against the same share
  pooled over the rest of the run (before that end window), and, where the
  file counts pulses, the ions per pulse against the run's median per bin.
  A specimen that fractures sends a burst of ions in few pulses; either
  ratio of ``end_ratio`` (3) or more flags it.
  Heuristics, reported with the numbers behind them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import AnalysisError
from .run import DEFAULT_CHUNK_IONS
from .stats import check_bin_cells

__all__ = ["VoltageJump", "RunHistory", "run_history", "voltage_jumps", "binned_voltage"]


@dataclass(frozen=True)
class VoltageJump:
    """A step in the standing voltage (e.g. a change of laser energy)."""

    ion_index: int
    voltage_before_V: float
    voltage_after_V: float

    @property
    def relative_change(self) -> float:
        return (self.voltage_after_V - self.voltage_before_V) / self.voltage_before_V

    def to_dict(self) -> dict:
        return {"ion_index": self.ion_index, "voltage_before_V": self.voltage_before_V,
                "voltage_after_V": self.voltage_after_V, "relative_change": self.relative_change}


@dataclass(frozen=True, eq=False)
class RunHistory:
    """Voltage, mass and multiplicity along a run, and what they say.

    Attributes
    ----------
    n_ions : int
    index_edges : ndarray of int64, shape (n_bins + 1,)
        Ion-index bins (consecutive ions).
    voltage_V : ndarray or None
        Median standing voltage per bin; None when the run has none.
    voltage_reason : str or None
        Why there is no voltage.
    mass_edges_Da : ndarray
    mass_counts : ndarray of int64, shape (n_bins, n_mass_bins)
        Ions per (index bin, mass bin).
    multiplicity_counts : dict of int to int or None
        Ions per value of the multiplicity column (0: later ions of a multiple
        hit, as in ``.epos``).
    multi_hit_fraction : float or None
        Share of ions detected in multiple hits.
    multi_hit_event_fraction : float or None
        Share of detection events (pulses with ions) that were multiple hits.
    multi_hit_fraction_per_bin : ndarray or None
    jumps : tuple of VoltageJump
    abrupt_end : bool or None
    end : dict
        Numbers behind ``abrupt_end`` (and ``reason`` when it cannot be told).
    """

    n_ions: int
    index_edges: np.ndarray
    voltage_V: np.ndarray | None
    voltage_reason: str | None
    mass_edges_Da: np.ndarray
    mass_counts: np.ndarray
    multiplicity_counts: dict | None
    multi_hit_fraction: float | None
    multi_hit_event_fraction: float | None
    multi_hit_fraction_per_bin: np.ndarray | None
    jumps: tuple[VoltageJump, ...]
    abrupt_end: bool | None
    end: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {
            "ions": self.n_ions,
            "voltage": None if self.voltage_V is None else {
                "start_V": float(self.voltage_V[0]), "end_V": float(self.voltage_V[-1]),
                "min_V": float(np.min(self.voltage_V)), "max_V": float(np.max(self.voltage_V)),
            },
            "voltage_jumps": [j.to_dict() for j in self.jumps] if self.voltage_V is not None
            else None,
            "multiplicity": None if self.multiplicity_counts is None else {
                "counts": {str(k): v for k, v in self.multiplicity_counts.items()},
                "multi_hit_fraction": self.multi_hit_fraction,
                "multi_hit_event_fraction": self.multi_hit_event_fraction,
            },
            "abrupt_end": self.abrupt_end,
            "end": dict(self.end),
        }
        if self.voltage_V is None:
            d["voltage_reason"] = self.voltage_reason
        if self.multiplicity_counts is None:
            d["multiplicity_reason"] = "the file has no multiplicity column"
        return d


def _refine_step(v: np.ndarray) -> int:
    """Index in v where a split into two levels leaves the least squared error."""
    v = v.astype(np.float64)
    n = len(v)
    if n < 2:
        return 0
    c = np.cumsum(v)
    k = np.arange(1, n)
    left = c[:-1] / k
    right = (c[-1] - c[:-1]) / (n - k)
    score = (left - right) ** 2 * k * (n - k)
    return int(np.argmax(score)) + 1


def voltage_jumps(voltage_V, index_edges, raw_voltage=None, *, window: int = 3,
                  jump_sigma: float = 8.0, jump_relative: float = 0.01) -> tuple[VoltageJump, ...]:
    """Steps in a binned voltage curve (see the module notes).

    Parameters
    ----------
    voltage_V : ndarray, shape (n_bins,)
        Median voltage per bin of consecutive ions, V.
    index_edges : ndarray, shape (n_bins + 1,)
        Ion-index bin edges.
    raw_voltage : ndarray, optional
        Per-ion voltages, to place each jump on the ion rather than the bin edge.
    window : int
        Bins on each side compared.
    jump_sigma, jump_relative : float
        Thresholds on the step: multiples of the steps' robust spread, and
        fraction of the voltage (1 %: a laser energy step of a few pJ moves
        the standing voltage by a few %; the robust-spread test is the one
        that keeps noise out).

    Returns
    -------
    tuple of VoltageJump
    """
    V = np.asarray(voltage_V, dtype=np.float64)
    nb = len(V)
    if nb < 2 * window + 1:
        return ()
    steps = np.full(nb + 1, 0.0)
    before = np.full(nb + 1, np.nan)
    after = np.full(nb + 1, np.nan)
    for b in range(window, nb - window + 1):
        before[b] = np.median(V[b - window:b])
        after[b] = np.median(V[b:b + window])
        steps[b] = after[b] - before[b]
    inner = steps[window:nb - window + 1]
    spread = 1.4826 * np.median(np.abs(inner - np.median(inner)))
    level = np.abs(before)
    ok = (np.abs(steps) >= jump_sigma * spread) & (np.abs(steps) >= jump_relative * level)
    jumps = []
    for b in np.flatnonzero(ok):
        lo, hi = max(0, b - window), min(nb + 1, b + window + 1)
        if np.abs(steps[b]) < np.max(np.abs(steps[lo:hi])):
            continue
        if jumps and b - jumps[-1] <= window:
            continue
        jumps.append(int(b))
    out = []
    for b in jumps:
        idx = int(index_edges[b])
        if raw_voltage is not None:
            a = int(index_edges[max(0, b - 1)])
            e = int(index_edges[min(nb, b + 1)])
            idx = a + _refine_step(np.asarray(raw_voltage[a:e]))
        out.append(VoltageJump(idx, float(before[b]), float(after[b])))
    return tuple(out)


def _index_edges(n: int, n_bins: int) -> np.ndarray:
    nb = int(max(1, min(n_bins, n // 10 if n >= 10 else 1)))
    return np.linspace(0, n, nb + 1).round().astype(np.int64)


def binned_voltage(v_V, n_bins: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Median voltage (V) per bin of consecutive ions, and the bins' ion-index edges.

    Returns
    -------
    voltage_V : ndarray, shape (n_bins,)
    index_edges : ndarray of int64, shape (n_bins + 1,)
    """
    edges = _index_edges(len(v_V), n_bins)
    med = np.array([float(np.median(v_V[a:b])) for a, b in zip(edges[:-1], edges[1:])])
    return med, edges


def run_history(run, *, n_bins: int = 400, mass_bin_Da: float = 0.25,
                mass_max_Da: float | None = None, window: int = 3, jump_sigma: float = 8.0,
                jump_relative: float = 0.01, end_ratio: float = 3.0,
                chunk_ions: int = DEFAULT_CHUNK_IONS) -> RunHistory:
    """Voltage, mass and multiplicity against ion index of a run.

    Parameters
    ----------
    run : Run
        Needs ``mass``; uses ``v_dc``, ``multiplicity``, ``pulse_delta`` when present.
    n_bins : int
        Bins of consecutive ions (fewer if the run is short).
    mass_bin_Da : float
        Mass bin of the mass-against-index histogram, Da.
    mass_max_Da : float, optional
        Upper end of that histogram (default: the 99.9th percentile of the
        masses, rounded up, at most 300 Da).
    window, jump_sigma, jump_relative
        See :func:`voltage_jumps`.
    end_ratio : float
        Ratio (end of run / typical) that flags an abrupt end.
    chunk_ions : int
        Ions read at a time (sums per index bin from chunks, medians from each
        bin's slice of the file): memory stays bounded.

    Returns
    -------
    RunHistory
    """
    n = run.n_ions
    if n == 0:
        raise AnalysisError("the run has no ions", run.path)
    edges = _index_edges(n, n_bins)
    nb = len(edges) - 1

    # columns are read a chunk (or an index bin) at a time: memory stays bounded
    if mass_max_Da is None:
        sample = np.asarray(run.source("mass")[:: max(1, n // 200_000)], np.float64)
        if not np.isfinite(sample).all():
            for _c in run.chunks("mass", chunk_ions):   # the checked read names the ion
                pass
        top = float(np.percentile(sample, 99.9)) if len(sample) else 1.0
        mass_max_Da = float(min(300.0, max(1.0, math.ceil(top * 1.05))))
    check_bin_cells(nb * (mass_max_Da / mass_bin_Da + 1),
                    f"a map of {nb} ion-index bins x {mass_max_Da:g} Da in bins of "
                    f"{mass_bin_Da:g} Da", "give a wider mass bin")
    m_edges = np.arange(0.0, mass_max_Da + mass_bin_Da / 2, mass_bin_Da)
    n_m = len(m_edges) - 1
    counts = np.zeros((nb, n_m), np.int64)
    for start, chunk in run.chunks("mass", chunk_ions):
        idx = np.arange(start, start + len(chunk))
        ib = np.searchsorted(edges, idx, side="right") - 1
        with np.errstate(over="ignore"):             # a mass near float32's max
            q = np.floor(chunk / mass_bin_Da)
        keep = (q >= 0) & (q < n_m)                      # NaN and inf: not kept
        mb = q[keep].astype(np.int64)
        counts += np.bincount(ib[keep] * n_m + mb, minlength=nb * n_m).reshape(nb, n_m)

    # voltage
    voltage = None
    reason = None
    jumps: tuple[VoltageJump, ...] = ()
    if "v_dc" not in run:
        reason = f"the {run.format or ''} file has no voltage column".replace("  ", " ")
    else:
        v = run.source("v_dc")
        # a pass of checked chunks (a non-finite voltage is the file's error)
        nonzero = False
        for _s, c in run.chunks("v_dc", chunk_ions):     # every chunk checked, no shortcut
            nonzero |= bool(np.any(c))
        if not nonzero:
            reason = "the voltage is zero for every ion (the file does not record it)"
        else:
            voltage, _ = binned_voltage(v, n_bins)
            jumps = voltage_jumps(voltage, edges, v, window=window, jump_sigma=jump_sigma,
                                  jump_relative=jump_relative)

    # multiplicity
    mult_counts = frac = ev_frac = per_bin = None
    if "multiplicity" in run:
        mult = run.source("multiplicity")
        tally: dict[int, int] = {}
        singles = np.zeros(nb, np.int64)
        for start, chunk in run.chunks("multiplicity", chunk_ions):
            values, c = np.unique(chunk, return_counts=True)
            for k, x in zip(values, c):
                tally[int(k)] = tally.get(int(k), 0) + int(x)
            ib = np.searchsorted(edges, np.arange(start, start + len(chunk)), side="right") - 1
            singles += np.bincount(ib[chunk == 1], minlength=nb)
        mult_counts = dict(sorted(tally.items()))
        events = sum(x for k, x in mult_counts.items() if k >= 1)
        multi_events = sum(x for k, x in mult_counts.items() if k >= 2)
        in_multi = n - mult_counts.get(1, 0)  # every ion not a single hit
        frac = in_multi / n
        ev_frac = multi_events / events if events else None
        per_bin = 1.0 - singles / np.diff(edges)

    # how the run ended
    end: dict = {}
    abrupt = None
    m_end = int(min(max(n // 100, 1000), max(n // 10, 1)))
    end["ions_at_end"] = m_end
    reasons = []
    if per_bin is not None and n >= 20:
        single_end = int(np.count_nonzero(np.asarray(mult[n - m_end:]) == 1))
        end_frac = 1.0 - single_end / m_end
        # pooled over the run before the end window: a median over bins of a few ions
        # each (a 2,000-ion run has 5 per bin) would be 0 and flag complete runs
        typical = 1.0 - (mult_counts.get(1, 0) - single_end) / (n - m_end)
        end["multi_hit_fraction_end"] = end_frac
        end["multi_hit_fraction_typical"] = typical
        ratio = end_frac / typical if typical > 0 else (math.inf if end_frac > 0 else 1.0)
        end["multi_hit_ratio"] = ratio if math.isfinite(ratio) else None
        if ratio >= end_ratio and end_frac >= 0.05:
            than = (f"{ratio:.1f} x the run's typical {100 * typical:.2f} %" if typical > 0
                    else "against almost none before")
            reasons.append(f"multiple hits make {100 * end_frac:.1f} % of the last {m_end} ions, "
                           + than)
    rate_ratio = None
    if "pulse_delta" in run and n >= 20:
        pdl = run.source("pulse_delta")
        if any(bool(np.any(c)) for _s, c in run.chunks("pulse_delta", chunk_ions)):
            per_ion = [float((b - a) / max(1, int(np.asarray(pdl[a:b]).astype(np.int64).sum())))
                       for a, b in zip(edges[:-1], edges[1:])]
            typical_rate = float(np.median(per_ion))
            end_rate = float(m_end / max(1, int(np.asarray(pdl[n - m_end:]).astype(np.int64)
                                                .sum())))
            rate_ratio = end_rate / typical_rate if typical_rate > 0 else None
            end["ions_per_pulse_end"] = end_rate
            end["ions_per_pulse_typical"] = typical_rate
            if rate_ratio is not None and rate_ratio >= end_ratio:
                reasons.append(f"{end_rate:.4g} ions per pulse in the last {m_end} ions, "
                               f"{rate_ratio:.1f} x the typical {typical_rate:.4g}")
        else:
            end["ions_per_pulse_reason"] = "pulse_delta is zero for every ion (not recorded)"
    end["ions_per_pulse_ratio"] = rate_ratio
    if voltage is not None:
        end["voltage_end_over_max"] = float(voltage[-1] / np.max(voltage))
    if per_bin is None and rate_ratio is None:
        end["reason"] = "needs a multiplicity column or recorded pulse counts"
    else:
        abrupt = bool(reasons)
        end["abrupt_end_reasons"] = reasons
    return RunHistory(
        n_ions=n, index_edges=edges, voltage_V=voltage, voltage_reason=reason,
        mass_edges_Da=m_edges, mass_counts=counts, multiplicity_counts=mult_counts,
        multi_hit_fraction=frac, multi_hit_event_fraction=ev_frac,
        multi_hit_fraction_per_bin=per_bin, jumps=jumps, abrupt_end=abrupt, end=end)
