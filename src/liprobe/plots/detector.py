"""Figure of a :class:`~liprobe.spatial.detector.DetectorMap` (Figure 1 style detector
event map)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_detector_map"]


def plot_detector_map(dmap, path, title: str | None = None, dpi: int = 150) -> str:
    """Hit density (and, with a species, its hits and fraction) on the detector, mm axes.

    The core disc used for the heterogeneity is drawn dashed.
    """
    from matplotlib.patches import Circle

    from . import figure_format, new_figure, save_figure

    figure_format(path)
    panels = [("hits per bin", dmap.counts, "viridis")]
    if dmap.species_counts is not None:
        panels.append((f"{dmap.species} hits per bin", dmap.species_counts, "viridis"))
        panels.append((f"{dmap.species} fraction of ranged hits", dmap.fraction(), "magma"))
    fig = new_figure(figsize=(4.6 * len(panels), 4.4))
    x0, x1, y0, y1 = dmap.extent_mm
    for i, (label, data, cmap) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        img = np.ma.masked_invalid(np.asarray(data, dtype=np.float64))
        im = ax.imshow(img, origin="lower", extent=(x0, x1, y0, y1), cmap=cmap,
                       interpolation="nearest")
        ax.add_patch(Circle(dmap.center_mm, dmap.core_radius_mm, fill=False, ls="--",
                            lw=0.8, color="white"))
        ax.set_aspect("equal")
        ax.set_xlabel("det_x (mm)")
        ax.set_ylabel("det_y (mm)")
        ax.set_title(label, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    h = dmap.heterogeneity
    fig.suptitle(title or f"{dmap.n_ions:,} ions; heterogeneity {h.heterogeneity:.4f} "
                          f"(+/- {h.heterogeneity_noise:.4f}) in the core disc (dashed)",
                 fontsize=9)
    return save_figure(fig, path, dpi=dpi)
