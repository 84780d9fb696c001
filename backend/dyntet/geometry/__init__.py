"""Tetrahedral grid and Marching Tetrahedra with a fixed topology.

``tet_grid(r)`` gives the cached BCC grid; ``topology(grid, sdf)`` extracts the sign-only mesh structure
once per SDF; ``decode(topo, vertices, sdf, offsets)`` places the vertices for one or many frames;
``mesh`` holds normals, area, volume and a manifold report; ``shapes`` analytic SDFs with known measures.
"""

from .marching import MarchingTopology, decode, topology
from .mesh import (ManifoldReport, edge_manifold_report, enclosed_volume, face_normals, remove_unreferenced,
                   surface_area, vertex_normals)
from .tetgrid import TetGrid, bcc_counts, build_tet_grid, tet_grid

__all__ = [
    "ManifoldReport", "MarchingTopology", "TetGrid", "bcc_counts", "build_tet_grid", "decode",
    "edge_manifold_report", "enclosed_volume", "face_normals", "remove_unreferenced", "surface_area",
    "tet_grid", "topology", "vertex_normals",
]
