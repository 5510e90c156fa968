"""What ``liprobe isosurface`` and ``liprobe proxigram`` share: the surface's options."""

from __future__ import annotations

import os

import click

from ._common import Number, element_list

#: extension -> what -o writes
ISOSURFACE_OUTPUTS = (".ply", ".png", ".svg")


def surface_options(f):
    """``--species``, ``--threshold``, ``--density``, ``--voxel``, ``--smooth``,
    ``--delocalisation``, ``--min-volume`` and ``--exclude``."""
    opts = [
        click.option("--species", multiple=True, callback=element_list, metavar="EL,...",
                     help="Element(s) of the field (summed): the surface is at --threshold "
                          "at.% of them."),
        click.option("--threshold", type=Number(), metavar="AT_PCT",
                     help="Isoconcentration threshold in at.% of --species."),
        click.option("--density", type=Number(), metavar="PER_NM3",
                     help="Isodensity threshold instead, in atoms/nm^3 (of --species, or of "
                          "every counted atom)."),
        click.option("--voxel", "voxel_nm", type=Number(), default=1.0, show_default=True,
                     metavar="NM", help="Voxel edge."),
        click.option("--smooth", "smooth_nm", type=Number(), metavar="NM",
                     help="Gaussian delocalisation sigma (default: one voxel; 0: none)."),
        click.option("--delocalisation", type=click.Choice(["gauss", "cic"]), default="gauss",
                     show_default=True, help="Gaussian kernel or cloud in cell."),
        click.option("--min-volume", "min_volume", type=Number(), metavar="NM3",
                     help="Drop surface components enclosing less (default: 10 voxels)."),
        click.option("--exclude", multiple=True, callback=element_list, metavar="EL,...",
                     help="Drop every ion containing these elements (e.g. Cr), with all its "
                          "atoms."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def check_surface_options(species, threshold, density, voxel_nm, smooth_nm, delocalisation,
                          min_volume) -> None:
    """Usage errors (exit 2) before any file is read."""
    if threshold is None and density is None:
        raise click.UsageError("give --threshold AT_PCT (with --species) or --density PER_NM3")
    if threshold is not None and density is not None:
        raise click.UsageError("give --threshold or --density, not both")
    if threshold is not None:
        if not species:
            raise click.UsageError("--threshold needs --species (the element(s) of the field)")
        if not 0 < threshold < 100:
            raise click.BadParameter("must be between 0 and 100 at.%", param_hint="--threshold")
    if density is not None and not density > 0:
        raise click.BadParameter("must be positive", param_hint="--density")
    if not voxel_nm > 0:
        raise click.BadParameter("must be positive", param_hint="--voxel")
    if smooth_nm is not None:
        if smooth_nm < 0:
            raise click.BadParameter("must be 0 or more", param_hint="--smooth")
        if delocalisation == "cic" and smooth_nm:
            raise click.UsageError("--smooth is the Gaussian's sigma: not with "
                                   "--delocalisation cic")
    if min_volume is not None and min_volume < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--min-volume")


def check_outputs(outputs, allowed) -> None:
    for out in outputs:
        if os.path.splitext(out)[1].lower() not in allowed:
            raise click.BadParameter(f"'{out}': give a {', '.join(allowed)} file name",
                                     param_hint="-o")


def build_surface(run, table, species, threshold, density, voxel_nm, smooth_nm, delocalisation,
                  min_volume, exclude, selection):
    """The voxel grid and the isosurface, as the options ask."""
    from ..spatial.isosurface import isosurface
    from ..spatial.voxels import voxelise

    grid = voxelise(run, table, species=species, voxel_nm=voxel_nm, sigma_nm=smooth_nm,
                    delocalisation=delocalisation, exclude=exclude, selection=selection)
    if threshold is not None:
        return isosurface(grid, threshold, "concentration", min_volume_nm3=min_volume)
    return isosurface(grid, density, "density", min_volume_nm3=min_volume)


def write_surface_outputs(surface, outputs) -> None:
    """The mesh (.ply) and the figure (.png, .svg) named by ``-o``."""
    for out in outputs:
        if os.path.splitext(out)[1].lower() == ".ply":
            surface.write_ply(out)
        elif os.path.splitext(out)[1].lower() in (".png", ".svg"):
            from ..plots.surfaces import plot_isosurface

            plot_isosurface(surface, out)
