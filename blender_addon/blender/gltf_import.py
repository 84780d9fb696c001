"""Re-import a DynTet glTF binary on its own frame rate (``extras.dyntet_fps``, written by our export).

glTF stores seconds; Blender's glTF importer turns them into frames with the *scene's* rate, so a 25 fps
performance imported into a 24 fps scene lands between frames (a head up to a millimetre off on every
whole frame). With the rate known, the import runs on it and the scene is set to it, so frame n of the
scene is frame n of the performance again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy

from ..io.convert import fps_to_blender
from ..io.glb import glb_fps, read_glb_json
from .exporter import animation_range
from .scene import gltf_seconds


@dataclass
class GlbImport:
    """What :func:`import_glb` brought in."""

    objects: list[bpy.types.Object]
    fps: float | None
    """The file's recorded frame rate (None: not a DynTet export; the scene's rate was used)."""
    frame_range: tuple[int, int] | None


def import_glb(context: bpy.types.Context, path: str | Path, match_fps: bool = True) -> GlbImport:
    """Import ``path`` with Blender's glTF importer, on the file's frame rate when it records one.

    Args:
        context: its scene receives the objects (and, with ``match_fps``, the rate and frame range).
        path: a ``.glb``.
        match_fps: set the scene's frame rate to the file's; False keeps the scene's (keys then land
            wherever the scene's rate puts the file's seconds).

    Raises:
        GlbError: not a glTF binary. RuntimeError: Blender's importer failed.
    """
    path = Path(path)
    fps = glb_fps(read_glb_json(path))
    scene = context.scene
    before = {o.as_pointer() for o in bpy.data.objects}
    if fps is not None and match_fps:
        with gltf_seconds(scene, fps):
            result = bpy.ops.import_scene.gltf(filepath=str(path))
        scene.render.fps, scene.render.fps_base = fps_to_blender(fps)
    else:
        result = bpy.ops.import_scene.gltf(filepath=str(path))
    if "FINISHED" not in result:
        raise RuntimeError(f"Blender's glTF importer could not read {path}")
    objects = [o for o in bpy.data.objects if o.as_pointer() not in before]
    ranges = [r for r in (animation_range(o) for o in objects) if r is not None]
    frame_range = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None
    if frame_range is not None and match_fps and fps is not None:
        scene.frame_start, scene.frame_end = frame_range
    return GlbImport(objects, fps, frame_range)
