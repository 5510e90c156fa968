"""Mass spectrum figures: log-scaled histograms with ranged windows, overlays, Saxey plots."""

from __future__ import annotations

import numpy as np

__all__ = ["draw_spectrum", "plot_spectrum", "plot_correlation"]


def draw_spectrum(ax, hist, table=None, label=None, scale: float = 1.0, color="k",
                  shade: bool = True, label_windows: bool = True, lw: float = 0.7) -> None:
    """Draw a :class:`~liprobe.spectrum.MassHistogram` as a log-scaled step line.

    Ranged windows of ``table`` are shaded in their colours and labelled in
    liprobe's ion grammar (each ion once, over its largest window).
    """
    y = hist.counts / scale
    ax.step(hist.edges[:-1], np.where(y > 0, y, np.nan), where="post", color=color, lw=lw,
            label=label)
    ax.set_yscale("log")
    ax.set_xlim(hist.edges[0], hist.edges[-1])
    if table is None or not shade:
        return
    lo_x, hi_x = hist.edges[0], hist.edges[-1]
    best: dict = {}
    for r in table.ranges:
        if r.hi <= lo_x or r.lo >= hi_x:
            continue
        ax.axvspan(r.lo, r.hi, color=r.color or "#CCCCCC", alpha=0.3, lw=0)
        a, b = np.searchsorted(hist.edges, [r.lo, r.hi])
        top = float(y[a:max(b, a + 1)].max()) if b > a else 0.0
        if top > best.get(r.ion.name, (0.0, 0.0))[1]:
            best[r.ion.name] = (0.5 * (r.lo + r.hi), top)
    if label_windows:
        for name, (x, top) in best.items():
            if top > 0:
                ax.annotate(name, (x, top), xytext=(0, 3), textcoords="offset points",
                            ha="center", va="bottom", fontsize=6, rotation=90)


def plot_spectrum(hist, path, table=None, other=None, scale: float = 1.0,
                  other_scale: float = 1.0, labels=("run", "other"), title: str | None = None,
                  ylabel: str = "counts per bin", dpi: int = 150) -> str:
    """Write a log-scaled mass spectrum (and an overlaid second one) to .png/.svg, atomically.

    Parameters
    ----------
    hist : MassHistogram
    path : str
    table : RangeTable, optional
        Windows to shade and label.
    other : MassHistogram, optional
        A second run on the same bins, overlaid (the study's Figure 4a).
    scale, other_scale : float
        Each histogram is divided by its scale (normalisation).
    """
    from . import figure_format, new_figure, save_figure

    figure_format(path)
    fig = new_figure(figsize=(9.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    draw_spectrum(ax, hist, table, label=labels[0] if other is not None else None,
                  scale=scale, color="C0" if other is not None else "k")
    if other is not None:
        draw_spectrum(ax, other, None, label=labels[1], scale=other_scale, color="C3")
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel("mass-to-charge (Da)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path, dpi=dpi)


def plot_correlation(ch, path, tracks=(), title: str | None = None, dpi: int = 150) -> str:
    """Write a Saxey correlation histogram (log colour scale) to .png/.svg, atomically.

    ``tracks``: iterable of ``(label, array of shape (k, 2))`` from
    :func:`liprobe.spectrum.multihit.dissociation_track`, drawn as lines.
    """
    from matplotlib.colors import LogNorm

    from . import figure_format, new_figure, save_figure

    figure_format(path)
    fig = new_figure(figsize=(6.0, 5.2))
    ax = fig.add_subplot(1, 1, 1)
    h = ch.counts.astype(float)
    h[h <= 0] = np.nan
    vmax = np.nanmax(h) if np.isfinite(h).any() else 1.0
    im = ax.pcolormesh(ch.edges, ch.edges, h.T, norm=LogNorm(vmin=1, vmax=max(vmax, 1.0)),
                       cmap="viridis", shading="flat")
    fig.colorbar(im, ax=ax, label="ion pairs per bin")
    for label, tr in tracks:
        tr = np.asarray(tr)
        lo, hi = np.minimum(tr[:, 0], tr[:, 1]), np.maximum(tr[:, 0], tr[:, 1])
        ax.plot(lo, hi, "-", lw=0.8, color="w", alpha=0.8)
        ax.annotate(label, (lo[len(lo) // 2], hi[len(hi) // 2]), fontsize=6, color="w")
    ax.set_xlabel("mass-to-charge of ion 1 (Da)")
    ax.set_ylabel("mass-to-charge of ion 2 (Da)")
    ax.set_title(title or f"correlation histogram: {ch.pairs:,} pairs from multiple hits",
                 fontsize=9)
    return save_figure(fig, path, dpi=dpi)
