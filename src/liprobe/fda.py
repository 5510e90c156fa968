"""Frequency distribution analysis (FDA): is a species randomly distributed?

Blocks of ``n`` ions are formed from the ranged ions of the analysed phase; the
histogram of the number ``k`` of species ions per block is compared with the
binomial law ``B(n, p)`` at the measured fraction ``p`` by a chi-square test,
and the deviation is summarised by the normalised Pearson coefficient
``mu = sqrt(chi2 / (N + chi2))`` (M.P. Moody, L.T. Stephenson, A.V. Ceguerra,
S.P. Ringer, "Quantitative binomial distribution analyses of nanoscale
like-solute atom clustering and segregation in atom probe tomography data",
Microsc. Res. Tech. 71 (2008) 542-550). Conventions, pitfalls and a worked
example: ``shared/reference/frequency-distribution.md``.

Choices made here
-----------------
- The sequence: ranged ions only, in evaporation order; every ion that
  contains an excluded element, H or Ga (:data:`ALWAYS_DROPPED`: chamber
  hydrogen and FIB gallium are never part of the phase), and every unranged
  (background) ion is dropped *before* blocking. Named ions (no atoms) are
  kept as non-species trials.
- The species is an ion (``Li+``: that ion only) or an element (``Li``: every
  ion containing Li). Ions are counted, not atoms: a block of ``n`` ions is a
  binomial of ``n`` trials.
- The last incomplete block is discarded; ``p = sum k / (n N_b)``.
- Tail classes are pooled until every expected count is >= 5; ``dof =
  classes - 2`` (the sum of the counts and the fitted ``p``); see
  :func:`liprobe.stats.binomial_fda_chi2`.
- ``N`` of ``mu`` is selectable: ``"solute"`` (default, the total species count,
  as 3Depict does), ``"blocks"`` (``N_b``) or ``"ions"`` (``n N_b``). It is
  reported with every ``mu``.
- Always next to ``mu``: ``mu_shuffled``, the median ``mu`` of the same blocks
  with the species labels randomly permuted over their ions (seeded). The
  histogram of a permutation is drawn exactly without permuting the ions
  (:func:`liprobe.stats.permuted_histogram`), at a cost independent of the
  number of ions. Random labels give ``mu ~ sqrt(dof / (N + dof))``, far
  below the ~0.5 of the seed paper under any ``N``: ``mu`` means something only
  against this baseline.

Sequential blocks take one parallel pass over the masses (numba): each ion's
window by ranging's lookup-table kernel (the one behind
:func:`liprobe.ranging.assign`, inlined, so no label array is written), its
code (dropped / other / species) from a table of one byte per window, the
kept ions' species flags compacted, and block sums; the open block is carried
from chunk to chunk, so memory stays bounded by the chunk. Spatial blocks
(``blocks="voxel"``) are columns of a square grid along z walked in z order,
closing a block every ``n`` ions (as 3Depict does).

Periodicity of the sequence
---------------------------
Blocks see clustering at their own scale only. :func:`sequence_periodicity`
looks for any order along the sequence itself: the autocorrelation of the
species indicator ``x_t`` (1 for a species ion, 0 otherwise; the kept ions
in evaporation order, :func:`species_sequence`) at lags ``l`` in a range,
``r(l) = [S(l) / (n - l)] / [S(0) / n]`` with ``S(l) = sum_t (x_t - m)(x_{t+l}
- m)`` (:func:`indicator_autocorrelation`, by FFT in blocks: O(n log n),
memory bounded by the largest lag). For i.i.d. labels ``r(l)`` is about
normal with standard deviation ``1 / sqrt(n - l)``; a period ``P`` gives a
peak at ``l = P``, clumps of mean length ``L`` a positive ``r`` decaying over
``L`` ions. It reports ``max |r|`` over the range, its lag, the 95 % band of
one lag and the 95 % point of the maximum over the range for i.i.d. labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._jit import njit, prange
from .chemistry import Ion, is_element, parse_species
from .errors import AnalysisError
from .rangetable import RangeTable
from .ranging import WindowLookup, _as_mass, assign, window_of
from .run import Run, column_chunks
from .stats import (
    MU_NORMALIZATIONS,
    binomial_fda_chi2,
    mu_normalization_n,
    pearson_mu,
    permuted_histogram,
)

__all__ = ["FrequencyDistribution", "frequency_distribution", "frequency_distribution_from_blocks",
           "species_codes", "sequential_block_counts", "voxel_block_counts", "ALWAYS_DROPPED",
           "BLOCKINGS", "DROP", "OTHER", "SPECIES", "SequencePeriodicity", "species_sequence",
           "indicator_autocorrelation", "sequence_periodicity"]

#: Elements whose ions never enter the sequence: chamber hydrogen, FIB gallium.
ALWAYS_DROPPED = ("H", "Ga")

#: How blocks can be formed.
BLOCKINGS = ("sequential", "voxel")

#: Codes of :func:`species_codes`, one per window.
DROP, OTHER, SPECIES = 0, 1, 2

_CHUNK = 1 << 20


# --------------------------------------------------------------------------
# the result
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class FrequencyDistribution:
    """Result of a frequency distribution analysis.

    Attributes
    ----------
    species : str
        The ion (``Li+``) or element (``Li``) tested.
    block_size : int
        Ions per block, ``n``.
    n_blocks : int
        Blocks used, ``N_b``.
    fraction : float
        ``p``, species ions per ion in the blocks.
    observed : ndarray of int64, shape (n + 1,)
        Blocks with ``k`` species ions, ``k = 0..n``.
    expected : ndarray of float64, shape (n + 1,)
        Binomial expectation ``N_b * binom.pmf(k, n, p)``.
    classes : tuple of (int, int)
        The chi-square classes (inclusive ``k`` ranges) after pooling.
    chi2 : float or None
    dof : int
        ``classes - 2``.
    p_value : float or None
        ``P(X >= chi2)``, ``X ~ chi2(dof)``; None (see ``reasons``) when ``dof < 1``.
    mu : float or None
        ``sqrt(chi2 / (N + chi2))`` with ``N`` named by ``normalization``; None
        (see ``reasons``) when ``dof < 1``: too few blocks for classes of >= 5
        expected blocks to leave a degree of freedom.
    mu_shuffled : float or None
        Median ``mu`` over ``shuffles`` random permutations of the labels (None
        with ``mu``).
    mu_shuffled_interval : (float, float) or None
        5th and 95th percentiles of those ``mu``.
    normalization : str
        ``"solute"``, ``"blocks"`` or ``"ions"``.
    normalization_n : int
        The ``N`` used.
    dispersion : float or None
        Observed variance of ``k`` over the binomial ``n p (1 - p)``: above 1
        for clustering or segregation, below 1 for ordering. Unlike ``mu``,
        its expectation does not grow with the number of blocks.
    dispersion_err : float or None
        Its standard error from the blocks' own fourth moment (no normality
        assumed; blocks taken as independent, so an underestimate when the
        clustering lasts many blocks); None with fewer than 4 blocks.
    blocking : str
        ``"sequential"`` or ``"voxel"``.
    voxel_nm : float or None
        Side of the grid's square columns (voxel blocks only).
    ions_selected, ions_kept, ions_in_blocks : int
        Ions given, ions left after dropping, ions in the complete blocks.
    shuffles, seed : int
    reasons : dict
        Why a quantity is None.
    warnings : tuple of str
    """

    species: str
    block_size: int
    n_blocks: int
    fraction: float
    observed: np.ndarray
    expected: np.ndarray
    classes: tuple
    chi2: float | None
    dof: int
    p_value: float | None
    mu: float | None
    mu_shuffled: float | None
    mu_shuffled_interval: tuple | None
    normalization: str
    normalization_n: int
    dispersion: float | None = None
    dispersion_err: float | None = None
    blocking: str = "sequential"
    voxel_nm: float | None = None
    ions_selected: int | None = None
    ions_kept: int | None = None
    ions_in_blocks: int = 0
    shuffles: int = 0
    seed: int = 0
    reasons: dict = field(default_factory=dict)
    warnings: tuple = ()

    @property
    def composition_percent(self) -> np.ndarray:
        """Species per block in percent, ``100 k / n`` for ``k = 0..n``."""
        return 100.0 * np.arange(self.block_size + 1) / self.block_size

    def to_dict(self) -> dict:
        oc = [int(self.observed[a:b + 1].sum()) for a, b in self.classes]
        ec = [float(self.expected[a:b + 1].sum()) for a, b in self.classes]
        return {
            "species": self.species,
            "block": self.block_size,
            "blocks": self.n_blocks,
            "blocking": self.blocking,
            "fraction": self.fraction,
            "observed": [int(v) for v in self.observed],
            "expected": [float(v) for v in self.expected],
            "classes": [{"k": [a, b], "observed": o, "expected": e}
                        for (a, b), o, e in zip(self.classes, oc, ec)],
            "chi2": self.chi2,
            "dof": self.dof,
            "p_value": self.p_value,
            "mu": self.mu,
            "mu_shuffled": self.mu_shuffled,
            "mu_shuffled_interval": (list(self.mu_shuffled_interval)
                                     if self.mu_shuffled_interval else None),
            "shuffles": self.shuffles,
            "seed": self.seed,
            "normalization": self.normalization,
            "normalization_n": self.normalization_n,
            "dispersion": self.dispersion,
            "dispersion_err": self.dispersion_err,
            "voxel_nm": self.voxel_nm,
            "ions_selected": self.ions_selected,
            "ions_kept": self.ions_kept,
            "ions_in_blocks": self.ions_in_blocks,
            "reasons": dict(self.reasons),
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        def num(v):
            return "None" if v is None else f"{v:.3g}"

        return (f"<FrequencyDistribution of {self.species}: {self.n_blocks:,} blocks of "
                f"{self.block_size} ions, fraction {self.fraction:.3g}, chi2 {num(self.chi2)} "
                f"({self.dof} dof), p {num(self.p_value)}, mu {num(self.mu)}>")

    def to_dataframe(self):
        """Blocks by species count as a pandas DataFrame: ``observed`` and ``expected``.

        One row per ``k = 0 .. block_size`` (index ``k``, species ions in a
        block): blocks observed with ``k`` and the binomial expectation, and
        ``chi2_class``, the index of the pooled chi-square class holding ``k``.

        Examples
        --------
        >>> import numpy as np
        >>> fd = frequency_distribution_from_blocks(np.array([0, 1, 1, 2, 1, 0, 1, 1]), 2,
        ...                                         "Li+")
        >>> fd.to_dataframe()["observed"].tolist()
        [2, 5, 1]
        """
        import pandas as pd

        k = np.arange(len(self.observed))
        cls = np.full(len(k), -1, dtype=np.int64)
        for j, (a, b) in enumerate(self.classes):
            cls[a:b + 1] = j
        return pd.DataFrame({"observed": np.asarray(self.observed, dtype=np.int64),
                             "expected": np.asarray(self.expected, dtype=np.float64),
                             "chi2_class": cls}, index=pd.Index(k, name="k"))


# --------------------------------------------------------------------------
# which ions: one code per window
# --------------------------------------------------------------------------

def _species_name(species) -> str:
    return species.name if isinstance(species, Ion) else str(species)


def species_codes(table: RangeTable, species, exclude=(),
                  drop=ALWAYS_DROPPED) -> np.ndarray:
    """One code per window of ``table``: :data:`DROP`, :data:`OTHER` or :data:`SPECIES`.

    Parameters
    ----------
    table : RangeTable
    species : Ion or str
        An ion (``Li+``: windows of that ion) or an element (``Li``: windows of
        every ion containing it); a string is parsed with
        :func:`liprobe.chemistry.parse_species`.
    exclude : iterable of str
        Elements whose ions are dropped (e.g. ``("Cr",)`` for the coating).
    drop : iterable of str
        Elements always dropped (default H and Ga).

    Returns
    -------
    ndarray of uint8, shape (len(table),)

    Raises
    ------
    ValueError
        ``species`` is not an ion or an element, or ``exclude`` names no element.
    AnalysisError
        The species is not ranged, or every one of its ions is dropped.
    """
    if isinstance(species, str):
        species = parse_species(species)
    for el in exclude:
        if not is_element(el):
            raise ValueError(f"cannot exclude '{el}': not a chemical element")
    dropped_els = tuple(dict.fromkeys(tuple(drop) + tuple(exclude)))
    name = _species_name(species)
    codes = np.empty(len(table), dtype=np.uint8)
    n_species = n_species_dropped = 0
    why = set()
    for w, r in enumerate(table.ranges):
        ion = r.ion
        hit = ion == species if isinstance(species, Ion) else ion.count(species) > 0
        bad = [el for el in dropped_els if ion.count(el)]
        codes[w] = DROP if bad else (SPECIES if hit else OTHER)
        if hit:
            n_species += 1
            if bad:
                n_species_dropped += 1
                why.update(bad)
    where = f" in {table.path}" if table.path else ""
    if n_species == 0:
        from .rangetable import unranged_reason

        what = "ranged" if isinstance(species, Ion) else "in any ranged ion"
        ranged = ", ".join(ion.name for ion in table.ions) or "none"
        hint = unranged_reason(species, table) if isinstance(species, Ion) else None
        if hint is not None and "did you mean" in hint:
            raise AnalysisError(f"species {hint}", table.path)
        raise AnalysisError(f"species {name} is not {what}{where} (ranged ions: {ranged})")
    if n_species_dropped == n_species:
        raise AnalysisError(f"species {name} is dropped from the sequence: it contains "
                            f"{', '.join(sorted(why))} (H and Ga are always dropped; "
                            "--exclude drops the others)")
    return codes


# --------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------

_PART = 1 << 16  # ions per parallel work item of the block kernel


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)
def _sequential_kernel(mass, edges, inv_w, top_bin, label, start, codes, block_size, state,
                       flags, out):
    """Species ions per block of ``block_size`` kept ions, in one parallel pass and a cheap one.

    Pass 1, per part of ``_PART`` ions: each ion's window (ranging's
    ``window_of``, the kernel of :func:`liprobe.ranging.assign`), its code
    (``codes[window]``, ``codes[n_windows] = DROP`` for unranged ions), and
    the kept ions' species flags compacted to the front of the part's slice
    of ``flags``. Pass 2, per part: the blocks lying wholly in the part are
    summed into ``out``; the partial first and last blocks are added serially.
    ``state`` = [kept ions in the open block, species in it, kept ions in
    total] carries the open block from call to call. ``out`` needs
    ``(state[0] + len(mass)) // block_size + 1`` entries. Returns the number
    of complete blocks.
    """
    m = mass.shape[0]
    n = block_size
    n_windows = codes.shape[0] - 1
    n_parts = (m + _PART - 1) // _PART
    kept = np.zeros(n_parts, np.int64)
    for p in prange(n_parts):
        lo = p * _PART
        hi = min(lo + _PART, m)
        j = lo
        for i in range(lo, hi):
            code = codes[window_of(np.float64(mass[i]), edges, inv_w, top_bin, label, start,
                                   n_windows)]
            if code != 0:
                flags[j] = code - 1
                j += 1
        kept[p] = j - lo
    off = np.empty(n_parts + 1, np.int64)   # kept index of each part's first kept ion
    off[0] = state[0]
    for p in range(n_parts):
        off[p + 1] = off[p] + kept[p]
    head = np.zeros(n_parts, np.int64)
    tail = np.zeros(n_parts, np.int64)
    out[:] = 0
    for p in prange(n_parts):
        k = kept[p]
        if k == 0:
            continue
        g0 = off[p]
        b0 = g0 // n
        b1 = (g0 + k - 1) // n
        base = p * _PART - g0            # flags index of kept index g is base + g
        h = 0
        for g in range(g0, min((b0 + 1) * n, g0 + k)):
            h += flags[base + g]
        head[p] = h
        if b1 > b0:
            for b in range(b0 + 1, b1):  # blocks wholly in this part: no other part touches them
                s = 0
                for g in range(b * n, b * n + n):
                    s += flags[base + g]
                out[b] = s
            t = 0
            for g in range(b1 * n, g0 + k):
                t += flags[base + g]
            tail[p] = t
    out[0] += state[1]
    for p in range(n_parts):
        k = kept[p]
        if k == 0:
            continue
        b0 = off[p] // n
        b1 = (off[p] + k - 1) // n
        out[b0] += head[p]
        if b1 > b0:
            out[b1] += tail[p]
    total = off[n_parts]
    nb = total // n
    state[2] += total - state[0]
    state[0] = total - nb * n
    state[1] = out[nb] if state[0] > 0 else 0
    return nb



def sequential_block_counts(mass, table: RangeTable, codes, block_size: int,
                            chunk_ions: int = _CHUNK) -> tuple[np.ndarray, int, int]:
    """Species ions per block of ``block_size`` kept ions in evaporation order.

    Parameters
    ----------
    mass : ndarray of float (Da), Run, or iterable of mass chunks
        In evaporation order (``run.chunks("mass")`` keeps memory bounded).
    table : RangeTable
    codes : ndarray of uint8, shape (len(table),)
        From :func:`species_codes`.
    block_size : int
    chunk_ions : int
        Ions labelled at a time.

    Returns
    -------
    k : ndarray of int64, shape (n_blocks,)
        Species ions in each complete block, in order.
    ions : int
        Ions read.
    kept : int
        Ions kept (ranged, not dropped), the incomplete last block included.
    """
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.shape != (len(table),):
        raise ValueError(f"codes has shape {codes.shape}, table has {len(table)} windows")
    if block_size < 1:
        raise ValueError("block_size must be at least 1")
    codes = np.append(codes, np.uint8(DROP))           # unranged ions: window n_windows
    lut = WindowLookup.of(table)
    state = np.zeros(3, dtype=np.int64)
    flags = np.empty(0, dtype=np.uint8)
    parts = []
    ions = 0
    for chunk in column_chunks(mass, chunk_ions=chunk_ions):
        chunk = _as_mass(chunk)
        m = len(chunk)
        if m == 0:
            continue
        if len(flags) < m:
            flags = np.empty(m, dtype=np.uint8)
        out = np.empty((int(state[0]) + m) // block_size + 1, dtype=np.int64)
        nb = _sequential_kernel(chunk, lut.edges, lut.inv_width, lut.top_bin, lut.label,
                                lut.start, codes, np.int64(block_size), state, flags, out)
        parts.append(out[:nb])
        ions += m
    k = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return k, ions, int(state[2])


def voxel_block_counts(x_nm, y_nm, z_nm, is_species, block_size: int,
                       max_aspect: float = 3.0) -> tuple[np.ndarray, float]:
    """Species ions per spatial block of ``block_size`` ions.

    The x-y plane is cut into square columns of side ``s`` such that a cube of
    side ``s`` holds ``block_size`` ions on average (the density is that of the
    occupied columns); each column is walked along z from the top (evaporation
    order) and a block closed every ``block_size`` ions, the column's
    incomplete rest discarded (3Depict's extruded grid). Blocks longer along
    z than ``max_aspect * s`` (sparse columns at the specimen's edge) are
    discarded.

    Parameters
    ----------
    x_nm, y_nm, z_nm : ndarray of float, shape (n,)
        Positions of the kept ions, nm.
    is_species : ndarray of bool, shape (n,)
    block_size : int
    max_aspect : float
        Longest block along z, in units of ``s``.

    Returns
    -------
    k : ndarray of int64, shape (n_blocks,)
    side_nm : float
        ``s``.
    """
    x = np.asarray(x_nm, dtype=np.float64)
    y = np.asarray(y_nm, dtype=np.float64)
    z = np.asarray(z_nm, dtype=np.float64)
    spec = np.asarray(is_species, dtype=bool)
    n = len(x)
    if n < block_size:
        return np.zeros(0, np.int64), float("nan")
    x0, y0 = x.min(), y.min()
    lx, ly, lz = (max(float(a.max()) - float(a.min()), 1e-9) for a in (x, y, z))

    def grid(side):
        nx = int(lx // side) + 1
        ny = int(ly // side) + 1
        ix = np.minimum(((x - x0) / side).astype(np.int64), nx - 1)
        iy = np.minimum(((y - y0) / side).astype(np.int64), ny - 1)
        return ix * ny + iy, nx * ny

    s0 = (block_size * lx * ly * lz / n) ** (1.0 / 3.0)   # bounding box density
    col, ncol = grid(s0)
    per_col = np.bincount(col, minlength=ncol)
    filled = per_col[per_col > 0]
    occupied = np.count_nonzero(filled >= 0.5 * np.median(filled))
    density = n / (occupied * s0 * s0 * lz)
    side = float((block_size / density) ** (1.0 / 3.0))
    col, _ = grid(side)
    order = np.lexsort((-z, col))
    col = col[order]
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)
    keep = rank < np.repeat(counts // block_size * block_size, counts)
    idx = order[keep]                       # kept ions, column by column, top down
    nb = len(idx) // block_size
    k = spec[idx].reshape(nb, block_size).sum(axis=1, dtype=np.int64)
    zb = z[idx].reshape(nb, block_size)
    length = zb[:, 0] - zb[:, -1]
    return k[length <= max_aspect * side], side


# --------------------------------------------------------------------------
# the analysis
# --------------------------------------------------------------------------

#: The most label permutations for ``mu_shuffled``: the median of 10,000 is stable to
#: far better than its own scatter, and more only costs time.
MAX_SHUFFLES = 10_000


def frequency_distribution_from_blocks(k, block_size: int, species: str = "", *,
                                       normalization: str = "solute", shuffles: int = 20,
                                       seed: int = 0, **extra) -> FrequencyDistribution:
    """FDA of given block counts.

    Parameters
    ----------
    k : array of int, shape (n_blocks,)
        Species ions in each block of ``block_size`` ions (order does not matter).
    block_size : int
    species : str
        Name to report.
    normalization : {"solute", "blocks", "ions"}
        ``N`` of ``mu`` (see :func:`liprobe.stats.mu_normalization_n`).
    shuffles : int
        Label permutations for ``mu_shuffled`` (0: not computed, with a reason), at most
        :data:`MAX_SHUFFLES`.
    seed : int
        Seed of the permutations.
    **extra
        Further fields of :class:`FrequencyDistribution` (``blocking``,
        ``ions_selected``, ...).

    Raises
    ------
    ValueError
        Bad arguments (negative counts, ``k > block_size``, unknown normalization).
    AnalysisError
        No blocks, no species ion in the blocks, or only species ions.
    """
    if normalization not in MU_NORMALIZATIONS:
        raise ValueError(f"unknown normalization '{normalization}' "
                         f"(one of {', '.join(MU_NORMALIZATIONS)})")
    if block_size < 1:
        raise ValueError("block_size must be at least 1")
    if not 0 <= shuffles <= MAX_SHUFFLES:
        raise ValueError(f"shuffles must lie in 0..{MAX_SHUFFLES:,} (got {shuffles})")
    k = np.asarray(k, dtype=np.int64)
    if k.ndim != 1:
        raise ValueError("k must be one-dimensional")
    if len(k) and (k.min() < 0 or k.max() > block_size):
        raise ValueError(f"block counts must lie in 0..{block_size}")
    nb = len(k)
    if nb == 0:
        kept = extra.get("ions_kept")
        have = f" (the selection keeps {kept:,} ions)" if kept is not None else ""
        raise AnalysisError(f"no complete block of {block_size} ions{have}: the block is "
                            "larger than the ions of the selection")
    solute = int(k.sum())
    name = species or "the species"
    if solute == 0:
        raise AnalysisError(f"{name} is absent: no {name} ion in the {nb:,} blocks of "
                            f"{block_size} ions")
    if solute == nb * block_size:
        raise AnalysisError(f"every ion in the {nb:,} blocks is {name}: nothing to compare "
                            "with a binomial")
    observed = np.bincount(k, minlength=block_size + 1).astype(np.int64)
    test = binomial_fda_chi2(observed, block_size)
    p = test.fraction
    n_norm = mu_normalization_n(normalization, nb, block_size, solute)
    reasons = {}
    if test.p_value is None:
        reasons["p_value"] = test.reason
    mu = mu_sh = interval = None
    if test.dof < 1:
        # every block pooled into too few classes: chi2 is 0 up to rounding, and a mu of 0
        # (or 2e-17) would read as "random" when nothing was tested
        why = (f"only {nb:,} blocks: too few for the chi-square test, which needs classes of "
               f">= 5 expected blocks that leave at least 1 degree of freedom (here "
               f"{len(test.classes)} class(es), {test.dof} dof); use smaller blocks or a "
               "larger selection")
        reasons["mu"] = reasons["mu_shuffled"] = why
    else:
        mu = pearson_mu(test.chi2, n_norm)
    if mu is not None and shuffles > 0:
        rng = np.random.default_rng(seed)
        e = test.expected_classes
        lo = np.array([a for a, _ in test.classes])
        mus = []
        for _ in range(int(shuffles)):
            oc = np.add.reduceat(permuted_histogram(observed, block_size, rng), lo)
            mus.append(pearson_mu(float(((oc - e) ** 2 / e).sum()), n_norm))
        mu_sh = float(np.median(mus))
        interval = (float(np.percentile(mus, 5)), float(np.percentile(mus, 95)))
    elif mu is not None:
        reasons["mu_shuffled"] = "not computed (shuffles = 0)"
    var_binom = block_size * p * (1.0 - p)
    dispersion = float(k.var() / var_binom) if var_binom > 0 else None
    dispersion_err = None
    if dispersion is not None and nb > 3:
        # the sample variance's standard error from the blocks' own fourth moment
        # (Var(s^2) ~ (m4 - s^4 (N - 3) / (N - 1)) / N; Cramer, Mathematical Methods of
        # Statistics, 1946, s27.4): no normality assumed, blocks taken as independent
        d = k - k.mean()
        m2, m4 = float(np.mean(d * d)), float(np.mean(d ** 4))
        v = (m4 - m2 * m2 * (nb - 3) / (nb - 1)) / nb
        dispersion_err = float(math.sqrt(max(v, 0.0)) / var_binom)
    warnings = list(extra.pop("warnings", ()))
    if nb < 50:
        warnings.append(f"only {nb} blocks: the chi-square test has little power")
    return FrequencyDistribution(
        species=species, block_size=int(block_size), n_blocks=nb, fraction=float(p),
        observed=observed, expected=test.expected, classes=test.classes,
        chi2=test.chi2, dof=test.dof, p_value=test.p_value, mu=mu, mu_shuffled=mu_sh,
        mu_shuffled_interval=interval, normalization=normalization, normalization_n=n_norm,
        dispersion=dispersion, dispersion_err=dispersion_err,
        ions_in_blocks=nb * int(block_size), shuffles=int(shuffles),
        seed=int(seed), reasons=reasons, warnings=tuple(warnings), **extra)


def frequency_distribution(data, table: RangeTable, species, block_size: int = 100, *,
                           exclude=(), normalization: str = "solute",
                           blocks: str = "sequential", shuffles: int = 20, seed: int = 0,
                           drop=ALWAYS_DROPPED, max_aspect: float = 3.0,
                           chunk_ions: int = _CHUNK) -> FrequencyDistribution:
    """Frequency distribution analysis of ``species`` in a run or a mass column.

    Parameters
    ----------
    data : Run, ndarray of float (mass, Da), or iterable of mass chunks
        The selected ions (ROI and segment applied) in evaporation order. Voxel
        blocks need a :class:`~liprobe.Run` with ``x y z``.
    table : RangeTable
    species : str or Ion
        ``"Li+"`` (an ion) or ``"Li"`` (ions containing the element).
    block_size : int
        Ions per block (the study uses 100).
    exclude : iterable of str
        Elements whose ions are dropped before blocking (e.g. ``("Cr",)``).
    normalization : {"solute", "blocks", "ions"}
        ``N`` of ``mu``; default the total species count, as 3Depict.
    blocks : {"sequential", "voxel"}
        Consecutive ions in evaporation order, or spatial blocks
        (:func:`voxel_block_counts`).
    shuffles, seed : int
        Permutations for ``mu_shuffled`` and their seed.
    drop : iterable of str
        Elements always dropped (H, Ga).
    max_aspect : float
        Voxel blocks only (see :func:`voxel_block_counts`).
    chunk_ions : int
        Ions labelled at a time (sequential blocks).

    Returns
    -------
    FrequencyDistribution

    Raises
    ------
    ValueError
        A bad species, normalization, blocking or block size.
    AnalysisError
        The species is not ranged or is absent from the blocks, or there are
        fewer kept ions than one block.

    Notes
    -----
    The test and ``mu = sqrt(chi2 / (N + chi2))`` are those of Moody et al.
    [1]_; ``N`` is by default the total species count, as in 3Depict [2]_
    (see the module docstring for the choices made).

    References
    ----------
    .. [1] M.P. Moody, L.T. Stephenson, A.V. Ceguerra, S.P. Ringer, "Quantitative
       binomial distribution analyses of nanoscale like-solute atom clustering and
       segregation in atom probe tomography data", Microsc. Res. Tech. 71 (2008)
       542-550.
    .. [2] D. Haley, 3Depict, source file ``binomial.cpp`` (GPL-3, 2015).

    Examples
    --------
    Li+ fully segregated: blocks of 10 ions are all Li+ or all O+.

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> table = RangeTable.from_ranges([Range(6.9, 7.2, parse_ion("Li+")),
    ...                                 Range(15.9, 16.2, parse_ion("O+"))])
    >>> mass = np.repeat(np.tile([7.0, 16.0], 50), 10)   # 10 Li+, 10 O+, 10 Li+, ...
    >>> fd = liprobe.frequency_distribution(mass, table, "Li+", block_size=10)
    >>> fd.n_blocks, fd.fraction, int(fd.observed[0]), int(fd.observed[10])
    (100, 0.5, 50, 50)
    >>> fd.classes[0], fd.classes[-1], fd.dof    # tails pooled to >= 5 expected blocks
    ((0, 2), (8, 10), 5)

    Against ``100 binom.pmf(k, 10, 0.5)``, the pooled tails expect
    ``100 * 56 / 1024 = 5.46875`` blocks each and hold 50; the classes between
    expect 89.0625 blocks and hold none. ``N`` is the 500 Li+ ions.

    >>> print(f"chi2 {fd.chi2:.2f}, N {fd.normalization_n}, mu {fd.mu:.3f}")
    chi2 814.29, N 500, mu 0.787
    >>> chi2 = 2 * (50 - 5.46875) ** 2 / 5.46875 + 89.0625
    >>> print(f"{chi2:.2f} {np.sqrt(chi2 / (500 + chi2)):.3f}")
    814.29 0.787
    >>> fd.mu_shuffled < 0.2        # the same blocks with the labels shuffled
    True
    """
    if blocks not in BLOCKINGS:
        raise ValueError(f"unknown blocking '{blocks}' (sequential or voxel)")
    if normalization not in MU_NORMALIZATIONS:
        raise ValueError(f"unknown normalization '{normalization}' "
                         f"(one of {', '.join(MU_NORMALIZATIONS)})")
    if int(block_size) != block_size or block_size < 1:
        raise ValueError(f"block size must be a positive whole number, got {block_size}")
    block_size = int(block_size)
    if isinstance(species, str):
        species = parse_species(species)
    codes = species_codes(table, species, exclude, drop)
    name = _species_name(species)
    extra: dict = {"blocking": blocks}
    if blocks == "sequential":
        k, ions, kept = sequential_block_counts(data, table, codes, block_size, chunk_ions)
    else:
        if not isinstance(data, Run):
            raise ValueError("voxel blocks need a Run with reconstructed positions")
        for c in ("x", "y", "z"):
            if c not in data:
                raise AnalysisError(f"voxel blocks need reconstructed positions; this "
                                    f"{data.format or ''} data has no '{c}' column", data.path)
        labels, _ = assign(data["mass"], table)
        code = np.append(codes, np.uint8(DROP))[labels]     # label -1 -> the appended DROP
        keep = code != DROP
        kept = int(keep.sum())
        ions = data.n_ions
        k, side = voxel_block_counts(data["x"][keep], data["y"][keep], data["z"][keep],
                                     code[keep] == SPECIES, block_size, max_aspect)
        extra["voxel_nm"] = None if math.isnan(side) else side
    extra.update(ions_selected=int(ions), ions_kept=int(kept))
    return frequency_distribution_from_blocks(k, block_size, name, normalization=normalization,
                                              shuffles=shuffles, seed=seed, **extra)


# --------------------------------------------------------------------------
# periodicity of the sequence: the autocorrelation of the species indicator
# --------------------------------------------------------------------------

def species_sequence(data, table: RangeTable, species, *, exclude=(), drop=ALWAYS_DROPPED,
                     chunk_ions: int = _CHUNK) -> np.ndarray:
    """The species indicator of the kept ions, in evaporation order: the FDA's sequence.

    The ions kept are those :func:`frequency_distribution` blocks (ranged, no
    ion of an ``exclude`` or ``drop`` element); an ion is 1 when it is the
    species (an ion, or an element: every ion containing it, counted once).

    Parameters
    ----------
    data : Run, ndarray of float (mass, Da), or iterable of mass chunks
    table : RangeTable
    species : str or Ion
    exclude, drop : iterable of str
        As :func:`species_codes`.
    chunk_ions : int
        Ions labelled at a time.

    Returns
    -------
    ndarray of bool, shape (kept ions,)
        One byte per kept ion.

    Raises
    ------
    AnalysisError, ValueError
        As :func:`species_codes`.
    """
    codes = np.append(species_codes(table, species, exclude, drop), np.uint8(DROP))
    parts = []
    for chunk in column_chunks(data, chunk_ions=chunk_ions):
        labels, _ = assign(_as_mass(chunk), table)
        code = codes[labels]                       # label -1: the appended DROP
        parts.append(code[code != DROP] == SPECIES)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def _centred_lag_products(x: np.ndarray, max_lag: int) -> np.ndarray:
    """``S(l) = sum_t (x_t - m)(x_{t+l} - m)`` for ``l = 0..max_lag``, ``m`` the mean of ``x``.

    Overlap-save by blocks: each block of ``B`` values is correlated with
    itself and the ``max_lag`` values after it by one real FFT of length
    ``>= B + max_lag`` (no wrap-around for lags up to ``max_lag``), so the
    cost is O(n log B) and the memory O(B), whatever ``n``.
    """
    from scipy import fft as sfft

    n = len(x)
    mean = float(np.count_nonzero(x)) / n if x.dtype == bool else float(np.mean(x))
    block = max(1 << 16, 8 * max_lag)
    size = sfft.next_fast_len(block + max_lag, real=True)
    block = size - max_lag                       # use the whole transform
    out = np.zeros(max_lag + 1, dtype=np.float64)
    for s in range(0, n, block):
        b = np.asarray(x[s:min(s + block + max_lag, n)], dtype=np.float64) - mean
        a = b[:min(block, n - s)]
        fa = sfft.rfft(a, size)
        fb = sfft.rfft(b, size)
        out += sfft.irfft(np.conj(fa) * fb, size)[:max_lag + 1]
    return out


def indicator_autocorrelation(is_solute, lags) -> np.ndarray:
    """Autocorrelation of a 0/1 sequence (a solute indicator in evaporation order) at ``lags``.

    ``r(l) = [S(l) / (n - l)] / [S(0) / n]``, ``S(l) = sum_{t < n - l} (x_t -
    m)(x_{t+l} - m)``, ``m`` the mean of ``x``: the covariance at lag ``l``
    averaged over the ``n - l`` pairs, over the variance. Under i.i.d. labels
    it is about normal with mean ~0 and standard deviation ``1 / sqrt(n - l)``.

    Computed by FFT in blocks (O(n log n), memory O(max lag) beside the input
    itself, one byte per ion for a bool array: 10^7 ions take a few tenths of
    a second and a few MB).

    Parameters
    ----------
    is_solute : array of bool (or 0/1 numbers), shape (n,)
    lags : int or array of int
        Each in ``0 .. n - 1``.

    Returns
    -------
    ndarray of float64, the shape of ``lags``
        NaN everywhere when the sequence is constant (no variance).

    Raises
    ------
    ValueError
        A lag outside ``0 .. n - 1``, or a sequence that is not one-dimensional.

    Examples
    --------
    A period of 4 (1, 0, 0, 0, 1, 0, 0, 0, ...): ``r = 1`` at multiples of 4, ``-1/3``
    elsewhere.

    >>> import numpy as np
    >>> x = np.tile([True, False, False, False], 25_000)
    >>> np.round(indicator_autocorrelation(x, [1, 2, 3, 4, 8]), 3)
    array([-0.333, -0.333, -0.333,  1.   ,  1.   ])
    """
    x = np.asarray(is_solute)
    if x.ndim != 1:
        raise ValueError("the sequence must be one-dimensional")
    lag = np.asarray(lags)
    if lag.size and not np.issubdtype(lag.dtype, np.integer):
        if not np.all(lag == np.round(lag)):
            raise ValueError("lags must be whole numbers")
        lag = lag.astype(np.int64)
    n = len(x)
    if lag.size and (lag.min() < 0 or lag.max() >= n):
        raise ValueError(f"lags must lie in 0..{n - 1} for a sequence of {n:,}")
    if lag.size == 0:
        return np.zeros(lag.shape, dtype=np.float64)
    s = _centred_lag_products(x, int(lag.max()))
    if not s[0] > 1e-12 * n:
        return np.full(lag.shape, np.nan)
    return (s[lag] / (n - lag)) / (s[0] / n)


@dataclass(frozen=True)
class SequencePeriodicity:
    """The largest autocorrelation of a solute indicator over a range of lags.

    Attributes
    ----------
    n : int
        Ions in the sequence.
    solute : int
        Solute ions among them.
    fraction : float
        ``solute / n`` (NaN without ions).
    lag_min, lag_max : int
        The range of lags, ions.
    max_abs_acf : float
        ``max |r(l)|`` over ``lag_min <= l <= lag_max`` (see
        :func:`indicator_autocorrelation`); NaN with ``reason``.
    lag_at_max : int or None
        The lag of that maximum, the smallest of equal maxima (the period, not
        its multiples); None with ``reason``.
    acf_at_max : float
        ``r`` there, with its sign.
    band : float
        The 95 % white-noise band of one lag, ``1.96 / sqrt(n - lag_max)``
        (the widest over the range; ~``1.96 / sqrt(n)`` for ``n >> lag_max``).
    max_band : float
        The 95 % point of ``max |r|`` over the whole range for i.i.d. labels,
        ``z / sqrt(n - lag_max)`` with ``P(|Z| < z)^k = 0.95`` for ``k`` lags
        taken as independent: a ``max_abs_acf`` above it is a periodicity or
        a correlation, not noise.
    acf : ndarray of float64, shape (lag_max - lag_min + 1,)
        ``r(l)`` at every lag of the range (empty with ``reason``).
    reason : str or None
        Why the values are NaN (too few ions, no solute, only solute).
    """

    n: int
    solute: int
    fraction: float
    lag_min: int
    lag_max: int
    max_abs_acf: float
    lag_at_max: int | None
    acf_at_max: float
    band: float
    max_band: float
    acf: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    reason: str | None = None

    @property
    def lags(self) -> np.ndarray:
        """The lags of ``acf``."""
        return np.arange(self.lag_min, self.lag_min + len(self.acf))

    def to_dict(self) -> dict:
        def num(v):
            return None if v is None or not math.isfinite(v) else float(v)

        d = {"n": self.n, "solute": self.solute, "fraction": num(self.fraction),
             "lag_min": self.lag_min, "lag_max": self.lag_max,
             "max_abs_acf": num(self.max_abs_acf), "lag_at_max": self.lag_at_max,
             "acf_at_max": num(self.acf_at_max), "band": num(self.band),
             "max_band": num(self.max_band)}
        if self.reason:
            d["reason"] = self.reason
        return d


def sequence_periodicity(is_solute, lag_min: int = 50,
                         lag_max: int = 10_000) -> SequencePeriodicity:
    """Is there a periodicity in a solute sequence? The largest ``|r(l)|`` over a range of lags.

    Parameters
    ----------
    is_solute : array of bool, shape (n,)
        The indicator in evaporation order (e.g. :func:`species_sequence`).
    lag_min, lag_max : int
        The lags looked at, ions (``1 <= lag_min <= lag_max``).

    Returns
    -------
    SequencePeriodicity
        NaN values with a ``reason`` when ``n < 2 lag_max`` or the sequence
        holds no solute or only solute (never an exception for the data).

    Raises
    ------
    ValueError
        Bad lags, or a sequence that is not one-dimensional.

    Examples
    --------
    A Li ion every 100th ion: ``r(100) = 1``.

    >>> import numpy as np
    >>> x = np.zeros(50_000, bool)
    >>> x[::100] = True
    >>> p = sequence_periodicity(x, 50, 1000)
    >>> p.lag_at_max, round(p.max_abs_acf, 6), p.max_abs_acf > p.max_band
    (100, 1.0, True)
    """
    from scipy.stats import norm

    lag_min, lag_max = int(lag_min), int(lag_max)
    if not 1 <= lag_min <= lag_max:
        raise ValueError(f"1 <= lag_min <= lag_max is required (got {lag_min}, {lag_max})")
    x = np.asarray(is_solute)
    if x.ndim != 1:
        raise ValueError("the sequence must be one-dimensional")
    if x.dtype != bool:
        x = x.astype(bool)
    n = len(x)
    solute = int(np.count_nonzero(x))
    nan = float("nan")
    k = lag_max - lag_min + 1
    band = max_band = nan
    if n > lag_max:
        band = float(1.96 / math.sqrt(n - lag_max))
        z = float(norm.ppf(0.5 + 0.5 * 0.95 ** (1.0 / k)))
        max_band = z / math.sqrt(n - lag_max)
    base = dict(n=n, solute=solute, fraction=solute / n if n else nan, lag_min=lag_min,
                lag_max=lag_max, band=band, max_band=max_band)
    why = None
    if n < 2 * lag_max:
        why = (f"{n:,} ions in the sequence: too few for lags up to {lag_max:,} (at least "
               f"{2 * lag_max:,} are needed)")
    elif solute == 0:
        why = f"no solute ion among the {n:,} ions: no sequence to correlate"
    elif solute == n:
        why = f"every one of the {n:,} ions is solute: no sequence to correlate"
    if why is not None:
        return SequencePeriodicity(**base, max_abs_acf=nan, lag_at_max=None, acf_at_max=nan,
                                   reason=why)
    acf = indicator_autocorrelation(x, np.arange(lag_min, lag_max + 1))
    a = np.abs(acf)
    i = int(np.argmax(a >= a.max() - 1e-9))      # ties (multiples of a period): the first
    return SequencePeriodicity(**base, max_abs_acf=float(abs(acf[i])), lag_at_max=lag_min + i,
                               acf_at_max=float(acf[i]), acf=acf)
