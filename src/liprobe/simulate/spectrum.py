"""Time of flight, peak shapes and the range windows of a simulated run.

Time of flight to mass-to-charge (``mass-spectrum.md`` s1):
``m/n = c V t^2 / L^2`` with ``c = 2e/u = 1.929707e-4`` in Da, V, ns, mm.

Peak shape, in time of flight (s2, s3): ``t = t0 + g + e`` with ``g`` Gaussian
(the instrument's timing resolution sigma_t) and, for a fraction p of the
ions, ``e`` exponential with mean tau (thermal tail, toward high m/n); the
others have ``e = 0``. In mass, near a peak, ``dm/m = 2 dt/t``: the Gaussian
width is ``sigma_m = 2 m sigma_t / t0`` and the tail constant
``tau_m = 2 m tau / t0``, so the mass resolving power ``t0 / (2 FWHM_t)``
grows as sqrt(m) and falls as sqrt(V), as in a real instrument.

Background (s4): time of flight uniform over the acquisition window
``[t(m_lo), t(m_hi)]``, so its density in m/n goes as ``1/sqrt(m)`` and the
fraction landing in ``[lo, hi)`` is ``(sqrt(hi) - sqrt(lo)) / (sqrt(m_hi) -
sqrt(m_lo))`` at any voltage.

Range windows: ``[mu - a sigma_m, mu + a sigma_m + b tau_m)`` per isotope
peak (at the run's highest voltage, where peaks are widest). Sorted by
position, a window whose core overlaps the previous window's core (peaks
too close to separate: ``64Ni++`` under ``O2+``, ``Co2O+`` on ``58Ni60NiO+``)
is merged with it and the merged window named after the ion expected to
dominate it; otherwise a previous window's tail allowance is cut where the
next window begins (the tail then runs into the next window, which the truth
records). Windows of the same ion may touch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy.special import log_ndtr, ndtr

from .._jit import njit
from ..chemistry import Ion
from ..rangetable import Range, RangeTable
from .parameters import PeakShape

__all__ = ["TOF_CONSTANT", "flight_time_ns", "mass_to_charge", "peak_cdf", "peak_pdf",
           "sample_spectrum",
           "Window", "design_windows", "range_table", "window_fractions", "fwhm_da",
           "background_fraction_in", "ion_color"]

#: 2e/u in Da per (V ns^2 / mm^2): m/n = TOF_CONSTANT * V * t^2 / L^2 (mass-spectrum.md s1).
TOF_CONSTANT = 1.929707e-4


def flight_time_ns(mz_da, v_V, flight_path_mm):
    """Ideal time of flight (ns) of m/n (Da) accelerated through V (V) over L (mm)."""
    return flight_path_mm * np.sqrt(np.asarray(mz_da, np.float64) /
                                    (TOF_CONSTANT * np.asarray(v_V, np.float64)))


def mass_to_charge(t_ns, v_V, flight_path_mm):
    """m/n (Da) from time of flight (ns), voltage (V) and flight path (mm)."""
    t = np.asarray(t_ns, np.float64)
    return TOF_CONSTANT * np.asarray(v_V, np.float64) * t * t / (flight_path_mm ** 2)


class ShapeArgs(NamedTuple):
    """The peak shape for :func:`_spectrum_kernel` (ns; background per ns of window)."""

    sigma_t: float
    p_tail: float
    tau: float
    bg_per_ns: float


class SpectrumOut(NamedTuple):
    """Outputs of :func:`_spectrum_kernel`: per ion, and the window tallies."""

    mass: np.ndarray
    tof: np.ndarray
    mz_true: np.ndarray
    background: np.ndarray
    window: np.ndarray
    counts: np.ndarray
    counts_bg: np.ndarray


@njit(cache=True, nogil=True, error_model="numpy")
def _spectrum_kernel(species, volt, L, u, normal, expo, peak_start, alias_p, alias_i, peak_mz,
                     shape, m_lo, m_hi, edges, forced, out):
    """Isotope, time of flight, m/n and window of each ion (see :func:`sample_spectrum`).

    ``shape``: a :class:`ShapeArgs`; ``forced``: ions that left between pulses (a
    background time of flight whatever the draw); ``out``: a :class:`SpectrumOut`.
    """
    sigma_t, p_tail, tau, bg_per_ns = shape.sigma_t, shape.p_tail, shape.tau, shape.bg_per_ns
    mass, tof, mz_true, background = out.mass, out.tof, out.mz_true, out.background
    window, counts, counts_bg = out.window, out.counts, out.counts_bg
    n_w = edges.shape[0] // 2
    sq_lo = math.sqrt(m_lo)
    sq_hi = math.sqrt(m_hi)
    c_over_l2 = TOF_CONSTANT / (L * L)
    for i in range(species.shape[0]):
        s = species[i]
        a = peak_start[s]
        n_pk = peak_start[s + 1] - a
        ui = np.float64(u[0, i]) * n_pk                    # isotope by the species' alias table
        k = min(int(ui), n_pk - 1)
        pk = a + (k if ui - k < alias_p[s, k] else alias_i[s, k])
        m0 = peak_mz[pk]
        scale = L / math.sqrt(TOF_CONSTANT * volt[i])      # t = scale * sqrt(m/n)
        t = scale * math.sqrt(m0) + sigma_t * np.float64(normal[i])
        if u[1, i] < p_tail:
            t += tau * np.float64(expo[i])
        t_lo = scale * sq_lo
        t_hi = scale * sq_hi
        bg = forced[i] or u[2, i] < bg_per_ns * (t_hi - t_lo)
        if bg:
            t = t_lo + (t_hi - t_lo) * np.float64(u[3, i])
        m32 = np.float32(c_over_l2 * volt[i] * t * t)
        mass[i] = m32
        tof[i] = t
        mz_true[i] = m0
        background[i] = bg
        k = np.searchsorted(edges, np.float64(m32), side="right")
        w = (k - 1) // 2 if k % 2 == 1 else n_w
        window[i] = w
        if bg:
            counts_bg[w, s] += 1
        else:
            counts[w, pk] += 1


def sample_spectrum(species, volt, flight_path_mm, shape: PeakShape, catalogue, edges, rng, out,
                    forced_background=None):
    """Isotope, time of flight and m/n of detected ions; the window each lands in.

    Parameters
    ----------
    species : ndarray of int
        Species index of each ion (into ``catalogue``).
    volt : ndarray of float64
        Voltage when each ion left (V).
    flight_path_mm : float
    shape : PeakShape
    catalogue : Catalogue
        Isotope tables (``peak_start``, ``isotope_alias_*``, ``peak_mz``).
    edges : ndarray of float64
        Interleaved window bounds ``[lo0, hi0, lo1, ...]``.
    rng : numpy.random.Generator
        Draws, in this order (float32): uniforms (4, n) (isotope, tail,
        background, background time), standard normals (n), standard
        exponentials (n).
    out : dict of ndarray
        ``mass`` (float32), ``tof`` (float32), ``mz_true`` (float32),
        ``background`` (bool), ``window`` (int64; ``len(edges) // 2`` for
        unranged), each of length n, written in place; ``counts`` (int64,
        windows + 1 by isotope peak of the catalogue) and
        ``counts_background`` (windows + 1 by species), incremented by the
        ions landing in each window (last row: unranged).
    forced_background : ndarray of bool, optional
        Ions that left between pulses: their time of flight is uniform over the
        window whatever the draw (Li lost between pulses, :mod:`.lithium`).
    """
    n = len(species)
    u = rng.random((4, n), dtype=np.float32)
    normal = rng.standard_normal(n, dtype=np.float32)
    expo = rng.standard_exponential(n, dtype=np.float32)
    m_lo, m_hi = shape.mass_window_da
    forced = (np.zeros(n, np.bool_) if forced_background is None
              else np.ascontiguousarray(forced_background, np.bool_))
    _spectrum_kernel(np.ascontiguousarray(species), np.ascontiguousarray(volt, np.float64),
                     float(flight_path_mm), u, normal, expo, catalogue.peak_start,
                     catalogue.isotope_alias_probability, catalogue.isotope_alias_index,
                     catalogue.peak_mz,
                     ShapeArgs(float(shape.timing_sigma_ns), float(shape.tail_fraction),
                               float(shape.tail_tau_ns),
                               float(shape.background_ppm_per_ns * 1e-6)),
                     m_lo, m_hi, edges, forced,
                     SpectrumOut(out["mass"], out["tof"], out["mz_true"], out["background"],
                                 out["window"], out["counts"], out["counts_background"]))


def peak_cdf(dt_ns, shape: PeakShape):
    """P(t - t0 < dt) of the peak shape (Gaussian core plus exponential tail)."""
    s, p, tau = shape.timing_sigma_ns, shape.tail_fraction, shape.tail_tau_ns
    x = np.asarray(dt_ns, np.float64)
    z = x / s
    gauss = ndtr(z)
    with np.errstate(over="ignore", under="ignore"):
        emg = gauss - np.exp(-x / tau + 0.5 * (s / tau) ** 2 + log_ndtr(z - s / tau))
    return (1.0 - p) * gauss + p * emg


def peak_pdf(dt_ns, shape: PeakShape):
    """Density per ns of the peak shape at t - t0 = dt."""
    s, p, tau = shape.timing_sigma_ns, shape.tail_fraction, shape.tail_tau_ns
    x = np.asarray(dt_ns, np.float64)
    z = x / s
    gauss = np.exp(-0.5 * z * z) / (s * math.sqrt(2 * math.pi))
    with np.errstate(over="ignore", under="ignore"):
        emg = np.exp(-x / tau + 0.5 * (s / tau) ** 2 + log_ndtr(z - s / tau)) / tau
    return (1.0 - p) * gauss + p * emg


def background_fraction_in(lo_da, hi_da, shape: PeakShape):
    """Fraction of background ions in ``[lo, hi)`` Da (1/sqrt(m) density over the window)."""
    m_lo, m_hi = shape.mass_window_da
    a = np.sqrt(np.clip(lo_da, m_lo, m_hi))
    b = np.sqrt(np.clip(hi_da, m_lo, m_hi))
    return (b - a) / (math.sqrt(m_hi) - math.sqrt(m_lo))


# ---------------------------------------------------------------------------
# colours
# ---------------------------------------------------------------------------

_ELEMENT_COLORS = {"Li": (0xCC, 0x66, 0xFF), "O": (0x00, 0xB0, 0x00), "Ni": (0x33, 0x33, 0xFF),
                   "Co": (0xFF, 0x99, 0x00), "Mn": (0xE0, 0x20, 0x80), "Cr": (0x80, 0x80, 0x80),
                   "Fe": (0xB0, 0x40, 0x20), "Al": (0x20, 0xA0, 0xA0)}


def ion_color(ion: Ion) -> str:
    """A colour for an ion: its metal's (or O's) colour, darker with more O and charge."""
    metals = [el for el in ion.elements if el != "O"]
    base = metals[0] if metals else "O"
    rgb = _ELEMENT_COLORS.get(base)
    if rgb is None:
        h = sum(ord(ch) * 37 ** k for k, ch in enumerate(base)) % 0xFFFFFF
        rgb = ((h >> 16) & 0xFF, (h >> 8) & 0xFF, h & 0xFF)
    shade = 1.0 - 0.15 * min(ion.count("O") if metals else ion.count("O") - 1, 3) \
        - 0.1 * ((ion.charge or 1) - 1)
    return "#" + "".join(f"{max(0, min(255, int(c * shade))):02X}" for c in rgb)


# ---------------------------------------------------------------------------
# windows
# ---------------------------------------------------------------------------

@dataclass
class Window:
    """A range window being designed: ``[lo, hi)`` Da, named after ``ion``."""

    lo: float
    hi: float
    core_hi: float
    ion: str
    weights: dict = field(default_factory=dict)     # species -> expected weight of its peaks
    peaks: list = field(default_factory=list)       # (species, m/n) of the peaks designed in

    def to_dict(self) -> dict:
        return {"lo": self.lo, "hi": self.hi, "ion": self.ion,
                "designed_for": [{"species": s, "mz": m} for s, m in self.peaks]}


def design_windows(peaks, shape: PeakShape, v_design_V: float, flight_path_mm: float):
    """Non-overlapping windows for isotope peaks.

    Parameters
    ----------
    peaks : iterable of (species_name, mz_Da, weight)
        One entry per isotope peak to range; ``weight`` is the expected share
        of counts (species share times isotope abundance).
    shape : PeakShape
    v_design_V : float
        Voltage at which widths are taken (the run's highest).
    flight_path_mm : float

    Returns
    -------
    list of Window, sorted by ``lo``.
    """
    a, b = shape.window_sigmas, shape.window_tail_taus
    cand = []
    for name, mz, w in peaks:
        t0 = float(flight_time_ns(mz, v_design_V, flight_path_mm))
        sig = 2.0 * mz * shape.timing_sigma_ns / t0
        tau = 2.0 * mz * shape.tail_tau_ns / t0
        cand.append(Window(mz - a * sig, mz + a * sig + b * tau, mz + a * sig, name,
                           {name: w}, [(name, mz)]))
    cand.sort(key=lambda c: (c.lo, c.core_hi))
    out: list[Window] = []
    for c in cand:
        if out and c.lo < out[-1].hi:
            prev = out[-1]
            if c.lo < prev.core_hi:       # cores overlap: one window, named by the larger
                prev.hi = max(prev.hi, c.hi)
                prev.core_hi = max(prev.core_hi, c.core_hi)
                for k, v in c.weights.items():
                    prev.weights[k] = prev.weights.get(k, 0.0) + v
                prev.peaks += c.peaks
                prev.ion = max(prev.weights, key=lambda k: (prev.weights[k], k))
                continue
            prev.hi = c.lo                # the tail allowance stops where the next begins
        out.append(c)
    return out


def range_table(windows, volumes: dict, colors: dict | None = None) -> RangeTable:
    """The RangeTable of designed windows; ``volumes[ion]`` in nm^3 per ion."""
    from ..chemistry import parse_ion

    ranges = []
    for w in windows:
        ion = parse_ion(w.ion)
        color = (colors or {}).get(w.ion) or ion_color(ion)
        ranges.append(Range(float(w.lo), float(w.hi), ion, float(volumes[w.ion]), color))
    return RangeTable.from_ranges(ranges)


def window_fractions(mz, lo_da, hi_da, v_samples_V, shape: PeakShape, flight_path_mm):
    """Expected fraction of a peak at ``mz`` in each window, averaged over voltages.

    Parameters
    ----------
    mz : float
        Peak position (Da).
    lo_da, hi_da : ndarray
        Window bounds.
    v_samples_V : ndarray
        Voltages the run's ions saw (equally weighted samples).

    Returns
    -------
    ndarray, shape (len(lo_da),)
    """
    v = np.asarray(v_samples_V, np.float64)[:, None]
    t0 = flight_time_ns(mz, v, flight_path_mm)
    t_lo = flight_time_ns(np.asarray(lo_da)[None, :], v, flight_path_mm)
    t_hi = flight_time_ns(np.asarray(hi_da)[None, :], v, flight_path_mm)
    f = peak_cdf(t_hi - t0, shape) - peak_cdf(t_lo - t0, shape)
    return f.mean(axis=0)


def fwhm_da(mz, v_samples_V, shape: PeakShape, flight_path_mm, points: int = 4001):
    """FWHM (Da) of the peak at ``mz`` summed over the run's voltages, by the model density.

    Returns
    -------
    fwhm : float
    sigma_da, tau_da : float
        Gaussian width and tail constant in Da at the median voltage.
    """
    v = np.asarray(v_samples_V, np.float64)
    vm = float(np.median(v))
    t_med = float(flight_time_ns(mz, vm, flight_path_mm))
    sig = 2 * mz * shape.timing_sigma_ns / t_med
    tau = 2 * mz * shape.tail_tau_ns / t_med
    x = np.linspace(mz - 8 * sig, mz + 8 * sig + 3 * tau, points)
    dens = np.zeros_like(x)
    for vv in v:
        t = flight_time_ns(x, vv, flight_path_mm)
        t0 = flight_time_ns(mz, vv, flight_path_mm)
        dens += peak_pdf(t - t0, shape) * t / (2 * x)   # dt/dm = t / (2m)
    half = dens.max() / 2
    above = np.flatnonzero(dens >= half)
    i, j = above[0], above[-1]
    left = np.interp(half, [dens[i - 1], dens[i]], [x[i - 1], x[i]])
    right = np.interp(half, [dens[j + 1], dens[j]], [x[j + 1], x[j]])
    return float(right - left), float(sig), float(tau)
