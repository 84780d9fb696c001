"""The tracked camera as a Blender camera object, and the render size and pixel aspect it was filmed at."""

from __future__ import annotations

import bpy
from mathutils import Matrix

from ..io.camera import CameraSettings


def build_camera(name: str, settings: CameraSettings) -> bpy.types.Object:
    """A camera object (not linked to any collection yet) with the tracked lens, sensor fit and shift."""
    data = bpy.data.cameras.new(name)
    data.type = "PERSP"
    data.sensor_fit = settings.sensor_fit
    data.sensor_width = settings.sensor_width_mm
    data.lens = settings.lens_mm
    data.shift_x, data.shift_y = settings.shift_x, settings.shift_y
    data.clip_start, data.clip_end = 0.01, 100.0
    obj = bpy.data.objects.new(name, data)
    obj.matrix_world = Matrix(settings.matrix_world.tolist())
    return obj


def apply_render_settings(scene: bpy.types.Scene, settings: CameraSettings) -> None:
    """Render at the crop's resolution and pixel aspect, so the camera frames exactly what was tracked."""
    render = scene.render
    render.resolution_x, render.resolution_y = settings.resolution
    render.resolution_percentage = 100
    render.pixel_aspect_x, render.pixel_aspect_y = settings.pixel_aspect
