"""Figure of :class:`~liprobe.kingham.KinghamCurves`: charge-state fractions against field."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_kingham"]


def plot_kingham(curves, path, dpi: int = 150) -> str:
    """Plot each charge state's fraction (log scale) against the surface field (V/nm).

    The crossovers within the plotted fields are marked with dotted lines.
    """
    from . import figure_format, new_figure, save_figure

    figure_format(path)
    fig = new_figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    f = np.asarray(curves.fields_v_nm)
    for q, frac in sorted(curves.fractions.items()):
        y = np.where(frac > 0, frac, np.nan)
        ax.plot(f, y, lw=1.8, label=f"{curves.element}{'+' * q}")
    for pair, x in curves.crossover_v_nm.items():
        if x is not None and f.min() <= x <= f.max():
            ax.axvline(x, ls=":", color="0.4", lw=0.8)
            ax.annotate(f"{pair}: {x:.1f}", (x, 1.3e-4), rotation=90, fontsize=7,
                        ha="right", va="bottom", color="0.3")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 1.5)
    ax.set_xlim(f.min(), f.max())
    ax.set_xlabel("surface field (V/nm)")
    ax.set_ylabel("fraction of ions")
    ax.set_title(f"Kingham curves of {curves.element} (post-ionisation model, "
                 f"{curves.model.barrier} barrier)", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    return save_figure(fig, path, dpi=dpi)
