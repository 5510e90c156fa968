"""Spatial analyses: where the ions are, on the detector and in the reconstruction.

It imports the core (``errors``, ``chemistry``, ``run``, ``rangetable``,
``ranging``, ``composition``, ``stats``, ``instruments``) and ``io``, never
the mass-spectrum subpackage, the study or the command line. New spatial
analyses (voxel compositions, isoconcentration surfaces, proxigrams,
neighbour distributions, cluster search) belong here, one module each.

==========================================  ==============================================
module                                      what it computes
==========================================  ==============================================
:mod:`~liprobe.spatial.reconstruct`         point-projection reconstruction (Bas, Geiser)
                                            and the projection onto the detector
:mod:`~liprobe.spatial.compare`             a reconstruction against a file's positions
:mod:`~liprobe.spatial.roi`                 regions of interest and run segments
:mod:`~liprobe.spatial.coating`             the coating shell and the core inside it
:mod:`~liprobe.spatial.detector`            detector event maps and their heterogeneity,
                                            of the hit density and of a solute fraction
:mod:`~liprobe.spatial.profile`             composition profiles along an axis or radius
:mod:`~liprobe.spatial.voxels`              voxelised composition and count fields
:mod:`~liprobe.spatial.isosurface`          isoconcentration and isodensity surfaces
:mod:`~liprobe.spatial.proxigram`           composition against the distance from a
                                            surface (proxigram) or from the axis
:mod:`~liprobe.spatial.neighbours`          k-th nearest-neighbour distances and the
                                            composition of neighbourhoods, against
                                            randomly relabelled ions
:mod:`~liprobe.spatial.clusters`            maximum-separation and DBSCAN cluster search
:mod:`~liprobe.spatial.rdf`                 pair correlation normalised by the bulk
                                            composition
:mod:`~liprobe.spatial.map2d`               2D composition maps with their counts
==========================================  ==============================================

Every public name of these modules is also importable from here
(``from liprobe.spatial import select, reconstruct_run``).
"""

from .clusters import ClusterSearch, find_clusters
from .coating import CoatingProfile, ShellSlab, coating_profile, core_mask, element_weights
from .compare import PositionComparison, compare_to_file_positions
from .detector import (
    DetectorHeterogeneity,
    DetectorMap,
    FractionHeterogeneity,
    detector_map,
    fraction_heterogeneity,
    hit_heterogeneity,
    species_windows,
)
from .isosurface import Isosurface, SurfaceComponent, isosurface
from .map2d import CompositionMap, composition_map
from .neighbours import (
    NeighbourComposition,
    NeighbourDistances,
    nearest_neighbours,
    neighbour_composition,
)
from .profile import Profile, composition_profile
from .proxigram import Proxigram, proxigram, radial_proxigram, signed_distances
from .rdf import PairCorrelation, pair_correlation
from .reconstruct import (
    PROTOCOLS,
    Reconstruction,
    ReconstructionParameters,
    cap_positions,
    field_of_view_factor,
    launch_angles,
    project_angles_to_detector,
    project_to_detector,
    radius_from_shank,
    radius_from_voltage,
    reconstruct,
    reconstruct_run,
    shank_factor,
    window_volumes,
)
from .roi import Roi, box_mask, cylinder_mask, parse_roi, parse_segment, select, sphere_mask
from .voxels import VoxelGrid, voxelise

__all__ = [
    "ClusterSearch", "CoatingProfile", "CompositionMap", "DetectorHeterogeneity",
    "DetectorMap", "FractionHeterogeneity", "Isosurface", "NeighbourComposition",
    "NeighbourDistances", "PROTOCOLS",
    "PairCorrelation", "PositionComparison", "Profile", "Proxigram", "Reconstruction",
    "ReconstructionParameters", "Roi", "ShellSlab", "SurfaceComponent", "VoxelGrid", "box_mask",
    "cap_positions", "coating_profile", "compare_to_file_positions", "composition_map",
    "composition_profile", "core_mask", "cylinder_mask", "detector_map", "element_weights",
    "field_of_view_factor", "find_clusters", "fraction_heterogeneity",
    "hit_heterogeneity", "isosurface", "launch_angles",
    "nearest_neighbours", "neighbour_composition", "pair_correlation", "parse_roi",
    "parse_segment",
    "project_angles_to_detector",
    "project_to_detector", "proxigram", "radial_proxigram", "radius_from_shank",
    "radius_from_voltage", "reconstruct", "reconstruct_run", "select", "shank_factor",
    "signed_distances", "species_windows", "sphere_mask", "voxelise", "window_volumes",
]
