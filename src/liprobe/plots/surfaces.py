"""Figures of an :class:`~liprobe.spatial.isosurface.Isosurface` and a
:class:`~liprobe.spatial.proxigram.Proxigram`."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_isosurface", "plot_proxigram", "surface_caption"]

#: Most triangles drawn in the 3-D view (the largest components first).
MAX_FACES = 40_000


def surface_caption(surface) -> str:
    """One line: what was contoured, at what threshold, and what was found."""
    g = surface.grid
    what = "+".join(surface.species) or "all atoms"
    smooth = (f"Gaussian sigma {g.sigma_nm:g} nm" if g.delocalisation == "gauss"
              else "cloud in cell")
    return (f"{surface.kind} of {what} at {surface.threshold:g} {surface.unit}; voxels of "
            f"{g.voxel_nm:g} nm, {smooth}; {len(surface.components)} component(s), "
            f"{surface.area_nm2:,.0f} nm^2, {surface.volume_nm3:,.0f} nm^3"
            + (f"; {surface.dropped_components} small one(s) dropped"
               if surface.dropped_components else ""))


def plot_isosurface(surface, path, title: str | None = None, dpi: int = 150) -> str:
    """The mesh in 3-D (coloured by component) and a slice of the field through the
    largest component, with the threshold's contour; axes in nm."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    from . import figure_format, new_figure, save_figure

    figure_format(path)
    fig = new_figure(figsize=(11.0, 4.8))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    v, f, comp = surface.vertices, surface.faces, surface.face_component
    shown = len(f)
    if len(f):
        if len(f) > MAX_FACES:              # components are sorted, the largest first
            order = np.argsort(comp, kind="stable")[:MAX_FACES]
            f, comp = f[order], comp[order]
            shown = len(f)
        tri = v[f]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        n /= np.maximum(np.linalg.norm(n, axis=1), 1e-12)[:, None]
        light = np.array([0.4, -0.5, 0.77])
        shade = 0.35 + 0.65 * np.abs(n @ (light / np.linalg.norm(light)))   # both sides lit
        import matplotlib

        cmap = matplotlib.colormaps["tab10"]
        colours = np.array([cmap(c % 10) for c in comp])[:, :3] * shade[:, None]
        ax.add_collection3d(Poly3DCollection(tri, facecolors=colours, edgecolors="none"))
        lo, hi = v.min(axis=0), v.max(axis=0)
        mid, half = 0.5 * (lo + hi), 0.5 * float((hi - lo).max()) + 1e-9
        ax.set_xlim(mid[0] - half, mid[0] + half)
        ax.set_ylim(mid[1] - half, mid[1] + half)
        ax.set_zlim(mid[2] - half, mid[2] + half)
    else:
        ax.text2D(0.5, 0.5, "no surface at this threshold", ha="center",
                  transform=ax.transAxes)
    ax.set_box_aspect((1, 1, 1))
    ax.locator_params(nbins=4)
    ax.tick_params(labelsize=7, pad=0)
    ax.set_xlabel("x (nm)", fontsize=8)
    ax.set_ylabel("y (nm)", fontsize=8)
    ax.set_zlabel("z (nm)", fontsize=8)
    ax.set_title(f"{len(surface.components)} component(s)"
                 + (f" ({shown:,} of {len(surface.faces):,} triangles drawn)"
                    if shown < len(surface.faces) else ""), fontsize=9)

    g = surface.grid
    field = g.percent if surface.kind == "concentration" else (
        g.solute_density if surface.species else g.density)
    field = np.where(g.valid, field, np.nan)
    if surface.components:
        cy = surface.components[0].centroid_nm[1]
    else:
        cy = float(g.centres(1).mean())
    j = int(np.clip(round((cy - g.origin_nm[1]) / g.voxel_nm), 0, g.shape[1] - 1))
    sl = field[:, j, :].T                                   # rows z, columns x
    xs, zs = g.centres(0), g.centres(2)
    h = g.voxel_nm
    ax2 = fig.add_subplot(1, 2, 2)
    im = ax2.imshow(np.ma.masked_invalid(sl), origin="lower", cmap="viridis",
                    extent=(xs[0] - h / 2, xs[-1] + h / 2, zs[0] - h / 2, zs[-1] + h / 2),
                    interpolation="nearest")
    if np.isfinite(sl).any() and np.nanmin(sl) < surface.threshold < np.nanmax(sl):
        ax2.contour(xs, zs, np.where(np.isfinite(sl), sl, np.nan), levels=[surface.threshold],
                    colors="white", linewidths=1.0)
    ax2.set_aspect("equal")
    ax2.set_xlabel("x (nm)")
    ax2.set_ylabel("z (nm)")
    ax2.set_title(f"slice at y = {g.centres(1)[j]:.1f} nm; contour at {surface.threshold:g} "
                  f"{surface.unit}", fontsize=9)
    fig.colorbar(im, ax=ax2, shrink=0.8,
                 label=f"{'+'.join(surface.species) or 'atoms'} ({surface.unit})")
    fig.subplots_adjust(wspace=0.35)
    fig.suptitle(title or surface_caption(surface), fontsize=9)
    return save_figure(fig, path, dpi=dpi)


def plot_proxigram(prox, path, elements=None, title: str | None = None, dpi: int = 150) -> str:
    """At.% of each element against the distance, with 1-sigma binomial error bars."""
    from . import figure_format, new_figure, save_figure

    figure_format(path)
    fig = new_figure(figsize=(7.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    for el in elements or prox.elements:
        y = prox.percent[el]
        ok = np.isfinite(y)
        ax.errorbar(prox.distance[ok], y[ok], yerr=prox.error[el][ok], marker="o", ms=2.5,
                    lw=1.0, capsize=1.5, label=el)
    if prox.kind == "isosurface":
        ax.axvline(0.0, color="0.4", lw=0.8, ls="--")
        ax.set_xlabel("distance from the isosurface (nm; negative inside)")
        s = prox.surface
        caption = (f"proxigram of the {s.get('kind')} surface of "
                   f"{'+'.join(s.get('species') or []) or 'all atoms'} at "
                   f"{s.get('threshold'):g} {s.get('unit')}; bins of {prox.bin_nm:g} nm")
    else:
        ax.set_xlabel("distance from the specimen axis (nm)")
        caption = f"radial proxigram, bins of {prox.bin_nm:g} nm"
    ax.set_ylabel("composition (at.%)")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title or f"{caption}; {int(prox.ions.sum()):,} ions", fontsize=9)
    return save_figure(fig, path, dpi=dpi)
