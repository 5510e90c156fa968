"""Statistics shared by the distribution analyses (scipy.stats underneath).

The binomial frequency-distribution test (Moody et al., Microsc. Res. Tech. 71
(2008) 542; ``shared/reference/frequency-distribution.md``): blocks of
``n_trials`` ions, ``observed[k]`` blocks holding ``k`` solute ions, compared
with the binomial expectation ``n_blocks * binom.pmf(k, n_trials, p)``.
scipy.stats is imported inside the functions that need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["pearson_mu", "BinomialChi2", "binomial_expected", "pool_tail_classes",
           "binomial_fda_chi2", "mu_normalization_n", "permuted_histogram",
           "MU_NORMALIZATIONS", "EXPECTED_MIN", "MAX_BIN_CELLS", "check_bin_cells"]

#: The most cells (bins, or bins times classes) a histogram of an analysis may allocate:
#: 10^8 int64 counts are 800 MB. A bin width that asks for more is refused before
#: anything is allocated (a bin of 1e-9 nm over a 100 nm profile would be 1 TB).
MAX_BIN_CELLS = 100_000_000


def check_bin_cells(cells: float, what: str, hint: str = "give wider bins") -> int:
    """``cells`` as an int if it is at most :data:`MAX_BIN_CELLS`, else AnalysisError.

    ``cells`` may be a float computed before rounding (an infinite or NaN count
    is refused too); ``what`` describes the request in the message.

    >>> check_bin_cells(1e3, "profile")
    1000
    """
    from .errors import AnalysisError

    if not (math.isfinite(cells) and cells <= MAX_BIN_CELLS):
        n = f"{cells:,.0f}" if math.isfinite(cells) else "infinitely many"
        raise AnalysisError(f"{what} needs {n} bins, above the limit of {MAX_BIN_CELLS:,}: "
                            f"{hint}")
    return int(cells)

#: Smallest expected count of a class of the chi-square test (standard practice;
#: 3Depict applies the same threshold to observed counts).
EXPECTED_MIN = 5.0

#: What ``N`` in ``mu = sqrt(chi2 / (N + chi2))`` counts, by name (see
#: :func:`mu_normalization_n`).
MU_NORMALIZATIONS = ("solute", "blocks", "ions")


def pearson_mu(chi2: float, n: float) -> float:
    """Normalised Pearson coefficient ``mu = sqrt(chi2 / (n + chi2))``.

    0 for a random distribution, towards 1 for complete segregation (Moody et
    al., Microsc. Res. Tech. 71 (2008) 542 [1]_; 3Depict normalises with ``n`` the
    total solute count). See ``shared/reference/frequency-distribution.md``.

    Raises
    ------
    ValueError
        If ``n + chi2`` is not positive.

    References
    ----------
    .. [1] M.P. Moody et al., Microsc. Res. Tech. 71 (2008) 542-550 (full
       reference: :func:`liprobe.fda.frequency_distribution`).

    Examples
    --------
    >>> from liprobe.stats import pearson_mu
    >>> print(f"{pearson_mu(0.0, 500):.3f} {pearson_mu(500.0, 500):.3f}")   # sqrt(1/2)
    0.000 0.707
    """
    if not (n + chi2 > 0):
        raise ValueError("mu needs n + chi2 > 0")
    return math.sqrt(chi2 / (n + chi2))


def mu_normalization_n(normalization: str, n_blocks: int, n_trials: int, solute: int) -> int:
    """The ``N`` of :func:`pearson_mu` for a named normalisation.

    Parameters
    ----------
    normalization : {"solute", "blocks", "ions"}
        ``"solute"``: the total solute count ``sum_i k_i`` (3Depict's choice,
        liprobe's default); ``"blocks"``: the number of blocks ``N_b``;
        ``"ions"``: the ions in the blocks, ``n_trials * N_b``.
    n_blocks, n_trials, solute : int

    Raises
    ------
    ValueError
        For another name.
    """
    if normalization == "solute":
        return int(solute)
    if normalization == "blocks":
        return int(n_blocks)
    if normalization == "ions":
        return int(n_blocks) * int(n_trials)
    raise ValueError(f"unknown normalization '{normalization}' "
                     f"(one of {', '.join(MU_NORMALIZATIONS)})")


def binomial_expected(n_blocks: int, n_trials: int, p: float) -> np.ndarray:
    """Expected number of blocks with ``k = 0..n_trials`` successes, ``N_b * B(k; n, p)``.

    Returns
    -------
    ndarray of float64, shape (n_trials + 1,)
    """
    from scipy.stats import binom

    return n_blocks * binom.pmf(np.arange(n_trials + 1), n_trials, p)


def pool_tail_classes(expected, emin: float = EXPECTED_MIN) -> tuple[tuple[int, int], ...]:
    """Classes ``(k_lo, k_hi)`` (inclusive) pooling the tails until every
    expected count >= ``emin``.

    The cells of each tail whose expected count is below ``emin`` are pooled
    into one class; a pooled tail that still falls short joins its inner
    neighbour. For a unimodal expectation (a binomial) this leaves every
    class at ``emin`` or more and reproduces the pooling of
    ``frequency-distribution.md`` section 3(a). Should an inner class still
    fall short (not for a binomial), it is merged with its smaller neighbour
    until none does. If the whole expectation sums below ``emin``, one class.

    Parameters
    ----------
    expected : array of float, shape (n_cells,)
    emin : float

    Returns
    -------
    tuple of (int, int)
        Consecutive, covering ``0 .. n_cells - 1``.
    """
    e = np.asarray(expected, dtype=np.float64)
    m = len(e)
    if m == 0:
        return ()
    big = np.flatnonzero(e >= emin)
    if len(big) == 0:
        return ((0, m - 1),)
    lo, hi = int(big[0]), int(big[-1])
    bounds = [[k, k] for k in range(lo, hi + 1)]
    if lo > 0:                      # low tail 0 .. lo-1
        if e[:lo].sum() >= emin:
            bounds.insert(0, [0, lo - 1])
        else:
            bounds[0][0] = 0
    if hi < m - 1:                  # high tail hi+1 .. m-1
        if e[hi + 1:].sum() >= emin:
            bounds.append([hi + 1, m - 1])
        else:
            bounds[-1][1] = m - 1
    sums = [e[a:b + 1].sum() for a, b in bounds]
    while len(bounds) > 1 and min(sums) < emin:   # never for a binomial
        i = int(np.argmin(sums))
        j = i - 1 if i == len(bounds) - 1 or (i > 0 and sums[i - 1] <= sums[i + 1]) else i + 1
        a, b = min(i, j), max(i, j)
        bounds[a] = [bounds[a][0], bounds[b][1]]
        sums[a] += sums[b]
        del bounds[b], sums[b]
    return tuple((int(a), int(b)) for a, b in bounds)


@dataclass(frozen=True)
class BinomialChi2:
    """Chi-square of an observed frequency distribution against a binomial.

    Attributes
    ----------
    chi2 : float
        ``sum (O - E)**2 / E`` over the classes used.
    dof : int
        Degrees of freedom (see :func:`binomial_fda_chi2`); may be < 1, then
        ``p_value`` is None.
    p_value : float or None
        ``P(X >= chi2)`` for ``X ~ chi2(dof)``; None when ``dof < 1``.
    fraction : float
        The binomial ``p`` used (estimated or given).
    n_blocks : int
    solute : int
        ``sum_k k * observed[k]``, the solute count.
    expected : ndarray of float, shape (n_trials + 1,)
        ``N_b * binom.pmf(k, n_trials, p)`` for every ``k``.
    classes : tuple of (int, int)
        The classes used, as inclusive ``(k_lo, k_hi)``.
    observed_classes, expected_classes : ndarray
        Observed and expected counts of those classes.
    reason : str or None
        Why ``p_value`` is None.
    """

    chi2: float
    dof: int
    p_value: float | None
    fraction: float
    n_blocks: int
    solute: int
    expected: np.ndarray
    classes: tuple
    observed_classes: np.ndarray
    expected_classes: np.ndarray
    reason: str | None = None


def binomial_fda_chi2(observed, n_trials: int, p: float | None = None, *,
                      emin: float = EXPECTED_MIN, cells: str = "pooled") -> BinomialChi2:
    """Chi-square test of a block-count histogram against the binomial law.

    Moody et al., Microsc. Res. Tech. 71 (2008) 542; conventions as in
    ``shared/reference/frequency-distribution.md`` sections 2-3.

    Parameters
    ----------
    observed : array of int, shape (n_trials + 1,)
        ``observed[k]``: number of blocks holding ``k`` solute ions.
    n_trials : int
        Ions per block.
    p : float, optional
        Binomial probability. By default it is estimated from the blocks,
        ``p = sum_k k O_k / (n_trials N_b)``, and costs one degree of freedom.
    emin : float
        Threshold of the small-cell rule.
    cells : {"pooled", "3depict", "all"}
        ``"pooled"`` (default): tail classes pooled until every expected count
        is at least ``emin`` (:func:`pool_tail_classes`); ``dof = classes - 1
        - (1 if p is estimated)``. ``"3depict"``: cells with an observed count
        below ``emin`` (or an expected count of 0) are dropped, ``dof = cells -
        1`` (3Depict's ``binomial.cpp``; use it to compare with 3Depict).
        ``"all"``: every cell with a non-zero expectation, ``dof`` as for
        ``"pooled"`` (inflated by tiny tails: not for inference).

    Returns
    -------
    BinomialChi2

    Raises
    ------
    ValueError
        An empty histogram, a negative count, a length other than
        ``n_trials + 1``, ``p`` outside [0, 1], or an unknown ``cells``.
    """
    from scipy.stats import chi2 as chi2_dist

    o = np.asarray(observed)
    if o.ndim != 1 or len(o) != n_trials + 1:
        raise ValueError(f"observed must have n_trials + 1 = {n_trials + 1} entries, "
                         f"got shape {o.shape}")
    if (o < 0).any():
        raise ValueError("observed counts must not be negative")
    o = o.astype(np.float64)
    n_blocks = int(round(o.sum()))
    if n_blocks == 0:
        raise ValueError("no blocks: the histogram is empty")
    k = np.arange(n_trials + 1)
    solute = int(round(float((k * o).sum())))
    fitted = p is None
    if p is None:
        p = solute / (n_trials * n_blocks)
    elif not 0.0 <= p <= 1.0:
        raise ValueError(f"p = {p} is not a probability")
    e = binomial_expected(n_blocks, n_trials, p)
    if cells == "pooled":
        classes = pool_tail_classes(e, emin)
        dof = len(classes) - 1 - int(fitted)
    elif cells == "3depict":
        keep = np.flatnonzero((o >= emin) & (e > 0))
        classes = tuple((int(c), int(c)) for c in keep)
        dof = len(classes) - 1
    elif cells == "all":
        classes = tuple((int(c), int(c)) for c in np.flatnonzero(e > 0))
        dof = len(classes) - 1 - int(fitted)
    else:
        raise ValueError(f"unknown cells rule '{cells}' (pooled, 3depict or all)")
    oc = np.array([o[a:b + 1].sum() for a, b in classes])
    ec = np.array([e[a:b + 1].sum() for a, b in classes])
    chi2 = float(((oc - ec) ** 2 / ec).sum()) if len(classes) else 0.0
    reason = None
    p_value = None
    if dof >= 1:
        p_value = float(chi2_dist.sf(chi2, dof))
    else:
        reason = (f"{len(classes)} class(es) with expected count >= {emin:g} leave {dof} "
                  "degrees of freedom (too few blocks, or a fraction near 0 or 1)")
    return BinomialChi2(chi2, int(dof), p_value, float(p), n_blocks, solute, e, classes,
                        oc, ec, reason)


@dataclass(frozen=True)
class FractionHomogeneity:
    """Chi-square test that a species fraction is the same in every bin.

    The ``2 x K`` contingency table (species / other ions in each of ``K``
    bins) against the pooled fraction ``p``; only bins where both expected
    counts, ``n_i p`` and ``n_i (1 - p)``, are at least ``emin`` enter.

    Attributes
    ----------
    chi2 : float
        ``sum_i (k_i - n_i p)**2 / (n_i p (1 - p))`` over the bins used.
    dof : int
        Bins used minus one.
    p_value : float or None
        ``P(X >= chi2)``, ``X ~ chi2(dof)``; None (see ``reason``) if ``dof < 1``.
    fraction : float or None
        Pooled fraction ``p`` over the bins used.
    bins_used : int
    species : int
        Species ions in the bins used (the ``N`` of :func:`pearson_mu`).
    ions : int
        All ions in the bins used.
    reason : str or None
    """

    chi2: float
    dof: int
    p_value: float | None
    fraction: float | None
    bins_used: int
    species: int
    ions: int
    reason: str | None = None


def fraction_homogeneity(k, n, emin: float = EXPECTED_MIN) -> FractionHomogeneity:
    """Chi-square test of homogeneity of a fraction ``k_i / n_i`` over bins.

    Parameters
    ----------
    k : array of int, shape (K,)
        Species ions per bin.
    n : array of int, shape (K,)
        All (counted) ions per bin, ``n >= k``.
    emin : float
        Smallest expected count of either kind for a bin to enter. The pooled
        fraction is taken over all bins with ions, the bins are chosen with it,
        and the fraction is then re-taken over the bins chosen.

    Returns
    -------
    FractionHomogeneity
    """
    from scipy.stats import chi2 as chi2_dist

    k = np.asarray(k, dtype=np.float64).ravel()
    n = np.asarray(n, dtype=np.float64).ravel()
    if k.shape != n.shape or (k > n).any() or (k < 0).any():
        raise ValueError("k and n must have the same shape with 0 <= k <= n")
    if n.sum() == 0:
        return FractionHomogeneity(0.0, 0, None, None, 0, 0, 0, "no ions in any bin")
    p0 = k.sum() / n.sum()
    use = (n * p0 >= emin) & (n * (1.0 - p0) >= emin)
    ku, nu = k[use], n[use]
    bins = int(use.sum())
    if bins == 0 or nu.sum() == 0:
        return FractionHomogeneity(0.0, 0, None, float(p0), 0, 0, 0,
                                   f"no bin has expected counts >= {emin:g} of both kinds")
    p = ku.sum() / nu.sum()
    if p <= 0.0 or p >= 1.0:
        return FractionHomogeneity(0.0, bins - 1, None, float(p), bins, int(ku.sum()),
                                   int(nu.sum()), "the fraction is 0 or 1 in the bins used")
    chi2 = float(((ku - nu * p) ** 2 / (nu * p * (1.0 - p))).sum())
    dof = bins - 1
    if dof < 1:
        return FractionHomogeneity(chi2, dof, None, float(p), bins, int(ku.sum()),
                                   int(nu.sum()), "one bin only: nothing to compare")
    return FractionHomogeneity(chi2, dof, float(chi2_dist.sf(chi2, dof)), float(p), bins,
                               int(ku.sum()), int(nu.sum()))


__all__ += ["FractionHomogeneity", "fraction_homogeneity"]


def _move_labels_py(hist, n_trials, add, u):
    """Move ``len(u)`` species labels into (``add``) or out of blocks, one at a time.

    A label taken from (or put on) a uniformly chosen ion: a block of class
    ``k`` is hit with weight ``k * hist[k]`` (remove) or ``(n - k) * hist[k]``
    (add). ``u``: uniforms in [0, 1).
    """
    n = n_trials
    for j in range(u.shape[0]):
        total = 0
        for k in range(n + 1):
            total += ((n - k) if add else k) * hist[k]
        target = u[j] * total
        acc = 0.0
        chosen = -1
        for k in range(n + 1):
            w = ((n - k) if add else k) * hist[k]
            if w > 0:
                chosen = k
                acc += w
                if target < acc:
                    break
        hist[chosen] -= 1
        hist[chosen + 1 if add else chosen - 1] += 1
    return hist


_move_labels = None


def permuted_histogram(observed, n_trials: int, rng) -> np.ndarray:
    """Block-count histogram of the same blocks after a random permutation of the labels.

    Exact in distribution, and at a cost independent of the number of ions:
    an i.i.d. Bernoulli(p) relabelling (``p = K / M``) conditioned on its total
    ``K'`` is a uniform ``K'``-subset of the ``M`` ions; removing ``K' - K``
    labels chosen uniformly among the labelled ions (or adding ``K - K'``
    among the others) leaves a uniform ``K``-subset, i.e. a uniform
    permutation of the original labels. Only the histogram is tracked: its
    i.i.d. part is a multinomial of the binomial pmf, and each move hits a
    class ``k`` with probability proportional to ``k * hist[k]`` (remove) or
    ``(n - k) * hist[k]`` (add).

    Parameters
    ----------
    observed : array of int, shape (n_trials + 1,)
        ``observed[k]``: blocks with ``k`` species ions.
    n_trials : int
        Ions per block.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int64, shape (n_trials + 1,)
        Same number of blocks and same species total as ``observed``.
    """
    global _move_labels
    from scipy.stats import binom

    o = np.asarray(observed, dtype=np.int64)
    if o.shape != (n_trials + 1,):
        raise ValueError(f"observed must have n_trials + 1 = {n_trials + 1} entries")
    k = np.arange(n_trials + 1)
    n_blocks = int(o.sum())
    solute = int((k * o).sum())
    p = solute / (n_trials * n_blocks) if n_blocks else 0.0
    if p in (0.0, 1.0):
        return o.copy()
    pmf = binom.pmf(k, n_trials, p)
    hist = rng.multinomial(n_blocks, pmf / pmf.sum()).astype(np.int64)
    d = solute - int((k * hist).sum())
    if d:
        if _move_labels is None:
            from ._jit import njit

            _move_labels = njit(cache=True, nogil=True)(_move_labels_py)
        _move_labels(hist, np.int64(n_trials), d > 0, rng.random(abs(d)))
    return hist
