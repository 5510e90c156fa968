"""Figures: matplotlib (Agg backend) imported inside each plotting function.

Plotting functions take analysis results or arrays and a path; nothing here
computes a number that an analysis should. Images are PNG or SVG, chosen by
the file extension, and written atomically (a temporary file in the same
folder, then a rename).
"""

from __future__ import annotations

import os

__all__ = ["FIGURE_FORMATS", "figure_format", "new_figure", "save_figure"]

#: extension -> matplotlib format name
FIGURE_FORMATS = {".png": "png", ".svg": "svg"}


def figure_format(path) -> str:
    """``"png"`` or ``"svg"`` from the extension of ``path``.

    Raises
    ------
    ValueError
        For any other extension (a usage error on the command line).
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    try:
        return FIGURE_FORMATS[ext]
    except KeyError:
        raise ValueError(f"cannot tell the image format of '{os.fspath(path)}': "
                         "give a .png or .svg file name") from None


def new_figure(**kwargs):
    """A matplotlib Figure, not registered with pyplot (no global state, no GUI backend)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save_figure(fig, path, dpi: int = 150) -> str:
    """Write ``fig`` to ``path`` (PNG or SVG by extension) atomically; return the path."""
    from ..io._files import atomic_write

    fmt = figure_format(path)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format=fmt, dpi=dpi, bbox_inches="tight")
    return os.fspath(path)
