"""Figure of a :class:`~liprobe.spatial.profile.Profile`: composition with binomial error bars."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_profile", "profile_caption"]


def profile_caption(profile) -> str:
    """One line: the ROI, its size, the binning (what the figure and the CSV state)."""
    h = profile.header()
    parts = []
    if h["roi"]:
        size = []
        if h["roi_diameter_nm"] is not None:
            size.append(f"diameter {h['roi_diameter_nm']:g} nm")
        if h["roi"].startswith("cylinder"):
            size.append(f"length {h['roi_length_nm']:g} nm" if h["roi_length_nm"] is not None
                        else "length: whole data")
        parts.append(f"ROI {h['roi']}" + (f" ({', '.join(size)})" if size else ""))
    else:
        parts.append("all ions")
    parts.append(f"{h['length_nm']:.1f} nm profiled")
    parts.append(f"bins of {h['bin_nm']:g} nm" if h["mode"] == "fixed_width"
                 else f"bins of {h['ions_per_bin']:,} ions")
    return ", ".join(parts)


def plot_profile(profile, path, title: str | None = None, dpi: int = 150) -> str:
    """Plot at.% of each element against depth (z), position or radius, with 1-sigma bars."""
    from . import figure_format, new_figure, save_figure

    figure_format(path)
    if profile.depth is not None:
        xs, xlabel = profile.depth, "depth (nm)"
    elif profile.coordinate == "r":
        xs, xlabel = profile.position, "distance from the axis (nm)"
    else:
        xs, xlabel = profile.position, f"{profile.coordinate} (nm)"
    fig = new_figure(figsize=(7.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    for el in profile.elements:
        y = profile.percent[el]
        ok = np.isfinite(y)
        ax.errorbar(xs[ok], y[ok], yerr=profile.error[el][ok], marker="o", ms=2.5, lw=1.0,
                    capsize=1.5, label=el)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("composition (at.%)")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title or profile_caption(profile), fontsize=9)
    return save_figure(fig, path, dpi=dpi)
