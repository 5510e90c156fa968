"""Figure of a :class:`~liprobe.history.RunHistory`: voltage, mass and multiplicity along a run."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_history"]


def plot_history(history, path, title: str | None = None, dpi: int = 150) -> str:
    """Four panels: voltage and mass (2D histogram, log colour) against ion index,
    multi-hit share against ion index, and the multiplicity histogram.

    Voltage jumps are drawn as dashed lines; a run without voltage says so in
    its panel.
    """
    from matplotlib.colors import LogNorm

    from . import figure_format, new_figure, save_figure

    figure_format(path)
    h = history
    fig = new_figure(figsize=(10, 9))
    gs = fig.add_gridspec(3, 2, height_ratios=[1.0, 1.4, 1.0], hspace=0.45, wspace=0.3)
    centres = 0.5 * (h.index_edges[:-1] + h.index_edges[1:])

    ax_v = fig.add_subplot(gs[0, :])
    if h.voltage_V is None:
        ax_v.text(0.5, 0.5, f"no voltage: {h.voltage_reason}", ha="center", va="center",
                  transform=ax_v.transAxes, fontsize=10, color="0.3")
        ax_v.set_yticks([])
    else:
        ax_v.plot(centres, h.voltage_V, lw=1.2, color="C0")
        for j in h.jumps:
            ax_v.axvline(j.ion_index, ls="--", lw=0.9, color="C3")
            ax_v.annotate(f"{100 * j.relative_change:+.1f} %", (j.ion_index, h.voltage_V.max()),
                          fontsize=8, color="C3", ha="left", va="top")
        ax_v.set_ylabel("standing voltage (V)")
    ax_v.set_xlim(0, h.n_ions)
    ax_v.set_xlabel("ion index")
    ax_v.set_title("voltage" + (f": {len(h.jumps)} jump(s)" if h.voltage_V is not None else ""),
                   fontsize=9)

    ax_m = fig.add_subplot(gs[1, :], sharex=ax_v)
    counts = np.asarray(h.mass_counts, dtype=np.float64).T
    if counts.max() > 0:
        img = np.ma.masked_less_equal(counts, 0)
        mesh = ax_m.pcolormesh(h.index_edges, h.mass_edges_Da, img,
                               norm=LogNorm(vmin=1, vmax=counts.max()), cmap="viridis",
                               shading="flat", rasterized=True)
        fig.colorbar(mesh, ax=ax_m, label="ions per bin", pad=0.01)
    for j in h.jumps:
        ax_m.axvline(j.ion_index, ls="--", lw=0.9, color="C3")
    ax_m.set_ylabel("mass-to-charge (Da)")
    ax_m.set_xlabel("ion index")
    ax_m.set_title("mass against ion index", fontsize=9)

    ax_f = fig.add_subplot(gs[2, 0])
    ax_h = fig.add_subplot(gs[2, 1])
    if h.multiplicity_counts is None:
        for ax in (ax_f, ax_h):
            ax.text(0.5, 0.5, "no multiplicity column", ha="center", va="center",
                    transform=ax.transAxes, color="0.3")
    else:
        ax_f.plot(centres, 100 * h.multi_hit_fraction_per_bin, lw=1.0, color="C1")
        ax_f.set_xlim(0, h.n_ions)
        ax_f.set_xlabel("ion index")
        ax_f.set_ylabel("ions in multiple hits (%)")
        ax_f.set_title(f"multi-hit share: {100 * h.multi_hit_fraction:.2f} % of ions", fontsize=9)
        ks = sorted(h.multiplicity_counts)
        ax_h.bar([str(k) for k in ks], [h.multiplicity_counts[k] for k in ks], color="C2")
        ax_h.set_yscale("log")
        ax_h.set_xlabel("multiplicity column (0: later ions of a multiple hit)")
        ax_h.set_ylabel("ions")
        ev = h.multi_hit_event_fraction
        ax_h.set_title("multiplicity" + ("" if ev is None else
                                         f": {100 * ev:.2f} % of events are multiple"), fontsize=9)
    end = ("abrupt end: " + ("yes" if h.abrupt_end else "no")) if h.abrupt_end is not None \
        else "abrupt end: cannot tell"
    fig.suptitle(title or f"{h.n_ions:,} ions; {end}", fontsize=11)
    return save_figure(fig, path, dpi=dpi)
