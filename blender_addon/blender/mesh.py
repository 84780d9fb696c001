"""A Blender mesh from vertices, triangles and per-corner UVs, written with ``foreach_set``."""

from __future__ import annotations

import bpy
import numpy as np


def build_mesh(
    name: str,
    vertices: np.ndarray,
    faces: np.ndarray,
    uv: np.ndarray | None = None,
    uv_faces: np.ndarray | None = None,
) -> bpy.types.Mesh:
    """Create a triangle mesh.

    Args:
        name: datablock name.
        vertices: float32 [V, 3] in Blender axes (Z up), metres.
        faces: int32 [F, 3] vertex indices, counter-clockwise from outside.
        uv: float32 [U, 2] UV coordinates (origin bottom-left), or None.
        uv_faces: int32 [F, 3] per-corner indices into ``uv``; given together with ``uv``.

    Returns:
        The new mesh, smooth shaded, validated.
    """
    vertices = np.ascontiguousarray(vertices, dtype=np.float32)
    faces = np.ascontiguousarray(faces, dtype=np.int32)
    num_faces = faces.shape[0]
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(vertices.shape[0])
    mesh.vertices.foreach_set("co", vertices.ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(num_faces)
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * num_faces, 3, dtype=np.int32))
    if uv is not None and uv_faces is not None:
        layer = mesh.uv_layers.new(name="UVMap")
        corners = np.asarray(uv, dtype=np.float32)[np.asarray(uv_faces).ravel()]
        layer.data.foreach_set("uv", np.ascontiguousarray(corners).ravel())
    mesh.update()
    mesh.validate(clean_customdata=False)
    if hasattr(mesh, "shade_smooth"):  # 4.1+: smoothness is the absence of the sharp_face attribute
        mesh.shade_smooth()
    else:
        mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), dtype=bool))
    return mesh
