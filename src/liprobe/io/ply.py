"""PLY (Stanford polygon file) meshes: triangles, written for mesh viewers.

:func:`write_ply` writes ``format binary_little_endian 1.0``: a text header
naming the elements and their properties, then the vertices (``float x, y, z``
and optionally ``float nx, ny, nz``) and the faces (``uchar`` vertex count 3,
then three ``int`` vertex indices), as MeshLab, ParaView, Blender and
CloudCompare read them. The file is written atomically.

Reference: G. Turk, "The PLY polygon file format" (1994).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from ._files import atomic_write

__all__ = ["write_ply"]


def write_ply(path, vertices, faces, normals=None, comments: Iterable[str] = ()) -> str:
    """Write a triangle mesh as a binary little-endian PLY file.

    Parameters
    ----------
    path : str or Path
    vertices : array of float, shape (n, 3)
        Vertex positions (written as float32).
    faces : array of int, shape (m, 3)
        Triangles as vertex indices (written as int32).
    normals : array of float, shape (n, 3), optional
        Vertex normals.
    comments : iterable of str
        ``comment`` lines of the header (one line each).

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ValueError
        Arrays of the wrong shape, or a face naming a vertex that does not exist.

    Examples
    --------
    >>> import numpy as np
    >>> from liprobe.io.ply import write_ply
    >>> v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float)
    >>> write_ply("tri.ply", v, [[0, 1, 2]])
    'tri.ply'
    >>> open("tri.ply", "rb").read(50)
    b'ply\\nformat binary_little_endian 1.0\\nelement vertex'
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must have shape (n, 3), not {v.shape}")
    if f.size == 0:
        f = f.reshape(0, 3)
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces must have shape (m, 3), not {f.shape}")
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError(f"a face names a vertex outside 0..{len(v) - 1}")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if normals is not None:
        nrm = np.asarray(normals, dtype=np.float64)
        if nrm.shape != v.shape:
            raise ValueError(f"normals must have the vertices' shape {v.shape}, not "
                             f"{nrm.shape}")
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    vrec = np.empty(len(v), dtype=fields)
    for i, name in enumerate("xyz"):
        vrec[name] = v[:, i]
    if normals is not None:
        for i, name in enumerate(("nx", "ny", "nz")):
            vrec[name] = nrm[:, i]
    frec = np.empty(len(f), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    frec["n"] = 3
    frec["v"] = f
    lines = ["ply", "format binary_little_endian 1.0"]
    lines += [f"comment {' '.join(str(c).split())}" for c in comments]
    lines += [f"element vertex {len(v)}"] + [f"property float {name}" for name, _ in fields]
    lines += [f"element face {len(f)}", "property list uchar int vertex_indices",
              "end_header"]
    with atomic_write(path, "wb") as out:
        out.write(("\n".join(lines) + "\n").encode("ascii", "replace"))
        out.write(vrec.tobytes())
        out.write(frec.tobytes())
    return os.fspath(path)
