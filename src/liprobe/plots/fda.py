"""Figure of a :class:`~liprobe.fda.FrequencyDistribution` (the paper's Figure 4b/c style)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_frequency_distribution", "draw_frequency_distribution"]


def _visible_k(fd) -> tuple[int, int]:
    """The k range where either curve is more than 1e-3 of its peak (at least 0..2)."""
    o = np.asarray(fd.observed, dtype=np.float64)
    e = np.asarray(fd.expected, dtype=np.float64)
    top = max(o.max(), e.max())
    ks = np.flatnonzero((o > 0) | (e > 1e-3 * top))
    lo, hi = int(ks.min()), int(ks.max())
    return max(lo - 1, 0), min(max(hi + 1, lo + 2), fd.block_size)


def draw_frequency_distribution(ax, fd) -> None:
    """Draw ``fd`` into a matplotlib Axes.

    x: species per block in percent (``100 k / n``); y: number of blocks.
    Observed solid, binomial expectation dashed; ``mu`` (with its ``N``) and
    the shuffled-label baseline in the legend.
    """
    lo, hi = _visible_k(fd)
    x = fd.composition_percent[lo:hi + 1]
    mu = "n/a" if fd.mu is None else f"{fd.mu:.3f}"
    base = "" if fd.mu_shuffled is None else f", shuffled {fd.mu_shuffled:.3f}"
    ax.plot(x, fd.observed[lo:hi + 1], "-", marker="o", ms=3, lw=1.4, color="C0",
            label=f"observed, \u03bc = {mu}{base}")
    ax.plot(x, fd.expected[lo:hi + 1], "--", lw=1.4, color="C3",
            label=f"binomial, p = {100 * fd.fraction:.2f} %")
    ax.set_xlabel(f"{fd.species} per block (%)")
    ax.set_ylabel("frequency (blocks)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, frameon=False,
              title=f"N = {fd.normalization} ({fd.normalization_n:,})", title_fontsize=7)


def plot_frequency_distribution(fd, path, title: str | None = None, dpi: int = 150) -> str:
    """Write the frequency distribution of ``fd`` to ``path`` (.png or .svg, atomically).

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ValueError
        If the extension is neither .png nor .svg (checked before drawing).
    """
    from . import figure_format, new_figure, save_figure

    figure_format(path)
    fig = new_figure(figsize=(5.6, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    draw_frequency_distribution(ax, fd)
    ax.set_title(title or f"{fd.species}: {fd.n_blocks:,} {fd.blocking} blocks of "
                 f"{fd.block_size} ions", fontsize=9)
    return save_figure(fig, path, dpi=dpi)
