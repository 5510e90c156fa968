"""Figures of the neighbour, cluster, pair-correlation and 2D-map results of
:mod:`liprobe.spatial.neighbours`, :mod:`~liprobe.spatial.clusters`,
:mod:`~liprobe.spatial.rdf` and :mod:`~liprobe.spatial.map2d`."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_neighbours", "plot_clusters", "plot_pair_correlation",
           "plot_composition_map", "MAX_POINTS"]

#: Most clustered ions drawn in the cluster map.
MAX_POINTS = 200_000


def plot_neighbours(nd, path, title: str | None = None, dpi: int = 150) -> str:
    """The k-th neighbour distance distributions (density per nm), measured (solid) and
    randomly relabelled (dashed), one colour per order."""
    import matplotlib

    from . import figure_format, new_figure, save_figure

    figure_format(path)
    fig = new_figure(figsize=(7.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    x = nd.centres_nm
    norm = nd.centres * nd.bin_nm
    cmap = matplotlib.colormaps["viridis"]
    for j in range(nd.k):
        colour = cmap(j / max(nd.k - 1, 1))
        ax.plot(x, nd.counts[j] / norm, color=colour, lw=1.2,
                label=f"{j + 1}{_ordinal(j + 1)}" if nd.k <= 10 or j in (0, nd.k - 1) else None)
        ax.plot(x, nd.random_counts[j] / norm, color=colour, lw=0.9, ls="--")
    ax.plot([], [], color="0.3", ls="--", lw=0.9, label="random labels")
    ax.set_xlabel("distance (nm)")
    ax.set_ylabel("probability density (1/nm)")
    ax.legend(fontsize=7, frameon=False, ncol=2)
    ax.set_title(title or f"nearest neighbours of {nd.species_from} among {nd.species_to}; "
                 f"{nd.centres:,} centres", fontsize=9)
    return save_figure(fig, path, dpi=dpi)


def _ordinal(n: int) -> str:
    return {1: "st", 2: "nd", 3: "rd"}.get(n if n < 20 else n % 10, "th")


def plot_clusters(cs, path, title: str | None = None, dpi: int = 150) -> str:
    """Left: the clustered ions projected on x-z, coloured by cluster. Right: the number of
    groups against their size (solute ions), measured and in relabelled data, with
    ``N_min``."""
    import matplotlib

    from . import figure_format, new_figure, save_figure

    figure_format(path)
    fig = new_figure(figsize=(11.0, 4.6))
    ax = fig.add_subplot(1, 2, 1)
    inside = np.flatnonzero(cs.labels >= 0)
    shown = len(inside)
    if shown:
        if shown > MAX_POINTS:
            inside = np.sort(np.random.default_rng(0).choice(inside, MAX_POINTS, replace=False))
        p = cs.xyz_nm[inside]
        cmap = matplotlib.colormaps["tab20"]
        ax.scatter(p[:, 0], p[:, 2], s=1.0, c=cmap((cs.labels[inside] % 20) / 19.0),
                   linewidths=0)
        ax.set_aspect("equal", adjustable="datalim")
    else:
        ax.text(0.5, 0.5, "no cluster", ha="center", transform=ax.transAxes)
    ax.set_xlabel("x (nm)")
    ax.set_ylabel("z (nm)")
    ax.set_title(f"{cs.n_clusters} cluster(s), {len(inside):,} of "
                 f"{int((cs.labels >= 0).sum()):,} ions drawn", fontsize=9)
    ax2 = fig.add_subplot(1, 2, 2)
    sizes = sorted(set(cs.group_sizes) | set(cs.random_baseline.group_sizes))
    if sizes:
        s = np.array(sizes)
        for counts, style, label in (
                ([cs.group_sizes.get(v, 0) for v in sizes], dict(marker="o", ms=3.5),
                 "measured"),
                ([cs.random_baseline.group_sizes.get(v, 0.0) for v in sizes],
                 dict(marker="x", ms=4.0), f"random labels (mean of "
                 f"{cs.random_baseline.shuffles})")):
            c = np.asarray(counts, float)
            ax2.plot(s[c > 0], c[c > 0], ls="none", label=label, **style)
        ax2.set_xscale("log")
        ax2.set_yscale("log")
    ax2.axvline(cs.nmin, color="0.4", lw=0.8, ls=":", label=f"N_min = {cs.nmin}")
    ax2.set_xlabel(f"group size ({cs.species} ions)")
    ax2.set_ylabel("groups")
    ax2.legend(fontsize=8, frameon=False)
    fig.suptitle(title or f"{cs.method} clusters of {cs.species}: d_max {cs.dmax_nm:g} nm, "
                 f"N_min {cs.nmin}, L {cs.envelope_nm:g} nm, d_erosion {cs.erosion_nm:g} nm; "
                 f"random baseline {cs.random_baseline.clusters:g} cluster(s)", fontsize=9)
    fig.subplots_adjust(wspace=0.3)
    return save_figure(fig, path, dpi=dpi)


def plot_pair_correlation(pc, path, title: str | None = None, dpi: int = 150) -> str:
    """g(r) with the random labels' g and its band (the relabellings' mean and scatter),
    and the line g = 1."""
    from . import figure_format, new_figure, save_figure

    figure_format(path)
    fig = new_figure(figsize=(7.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    r, g, e, g0 = pc.r_nm, pc.g, pc.g_error, pc.g_random
    ok = np.isfinite(g)
    ax.plot(r[ok], g[ok], marker="o", ms=2.5, lw=1.2, label="measured")
    band = ok & np.isfinite(e) & np.isfinite(g0)
    if band.any():
        ax.fill_between(r[band], g0[band] - e[band], g0[band] + e[band], color="0.8",
                        label=f"random labels, mean and 1 sigma ({pc.shuffles})")
    ax.axhline(1.0, color="0.4", lw=0.8, ls="--")
    ax.set_xlabel("r (nm)")
    ax.set_ylabel(f"g(r): {pc.species_to} around {pc.species_from} / bulk")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title or f"pair correlation of {pc.species_to} around {pc.species_from}; "
                 f"{pc.centres:,} centres, bulk {pc.bulk_pct:.2f} %", fontsize=9)
    return save_figure(fig, path, dpi=dpi)


def plot_composition_map(m, path, title: str | None = None, dpi: int = 150) -> str:
    """The map (pixels with fewer than ``min_atoms`` atoms blank) and the atoms per pixel."""
    from . import figure_format, new_figure, save_figure

    figure_format(path)
    fig = new_figure(figsize=(11.0, 4.6))
    u, v, w = m.axes
    extent = (m.origin_nm[0], m.origin_nm[0] + m.pixel_nm * m.shape[0],
              m.origin_nm[1], m.origin_nm[1] + m.pixel_nm * m.shape[1])
    pc = np.where(m.atoms >= max(m.min_atoms, 1), m.percent, np.nan)
    ax = fig.add_subplot(1, 2, 1)
    im = ax.imshow(np.ma.masked_invalid(pc.T), origin="lower", extent=extent, cmap="viridis",
                   interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8, label=f"{'+'.join(m.species)} (at.%)")
    ax.set_xlabel(f"{u} (nm)")
    ax.set_ylabel(f"{v} (nm)")
    ax.set_title(f"{'+'.join(m.species)} at.%", fontsize=9)
    ax2 = fig.add_subplot(1, 2, 2)
    im2 = ax2.imshow(np.ma.masked_equal(m.atoms.T, 0), origin="lower", extent=extent,
                     cmap="magma", interpolation="nearest")
    fig.colorbar(im2, ax=ax2, shrink=0.8, label="atoms per pixel")
    ax2.set_xlabel(f"{u} (nm)")
    ax2.set_ylabel(f"{v} (nm)")
    ax2.set_title("counts", fontsize=9)
    for a in (ax, ax2):
        a.set_aspect("equal")
    fig.suptitle(title or f"{m.plane} map, {w} = {m.at_nm:.2f} nm, {m.thickness_nm:g} nm thick,"
                 f" pixels of {m.pixel_nm:g} nm (blank: fewer than {m.min_atoms} atoms)",
                 fontsize=9)
    return save_figure(fig, path, dpi=dpi)
