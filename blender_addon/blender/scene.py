"""Scene timing and the sound strip that lets scrubbing play the driver's speech."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import bpy

from ..io.convert import fps_to_blender


def set_timing(scene: bpy.types.Scene, fps: float, frame_start: int, num_frames: int) -> None:
    """Set the scene's frame rate and frame range to cover ``num_frames`` frames from ``frame_start``."""
    scene.render.fps, scene.render.fps_base = fps_to_blender(fps)
    scene.frame_start = frame_start
    scene.frame_end = frame_start + num_frames - 1


@contextmanager
def gltf_seconds(scene: bpy.types.Scene, fps: float) -> Iterator[None]:
    """While Blender's glTF add-on converts frames ⇄ seconds, make its factor the true ``fps``.

    Why: in 5.0.1 both its exporter and importer convert with ``render.fps * render.fps_base`` where the
    scene's rate is ``fps / fps_base``; the two agree only when ``fps_base`` is 1 (at 30 / 1.001 the times
    would be 0.2 % off). Inside the block the pair is ``(round(fps), fps / round(fps))``; afterwards the
    scene's own pair is back.
    """
    render = scene.render
    saved = (render.fps, render.fps_base)
    whole = max(1, int(round(fps)))
    render.fps, render.fps_base = whole, fps / whole
    try:
        yield
    finally:
        render.fps, render.fps_base = saved


def _strips(editor: bpy.types.SequenceEditor):
    """The top-level strip collection: ``strips`` (Blender 4.4+/5.0) or ``sequences`` (4.2/4.3)."""
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def add_sound_strip(scene: bpy.types.Scene, path: Path, frame_start: int, name: str) -> bpy.types.Strip:
    """Add ``path`` as a sound strip starting at ``frame_start`` on the first free channel.

    Audio scrubbing and audio sync are turned on so the speech follows the timeline.
    """
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = _strips(editor)
    used = {strip.channel for strip in strips}
    channel = next(c for c in range(1, 129) if c not in used)
    strip = strips.new_sound(name, str(path), channel, frame_start)
    scene.use_audio_scrub = True
    scene.sync_mode = "AUDIO_SYNC"
    return strip


def remove_strip(scene: bpy.types.Scene, strip: bpy.types.Strip) -> None:
    """Remove a strip added by :func:`add_sound_strip` (import rollback)."""
    if scene.sequence_editor is not None:
        _strips(scene.sequence_editor).remove(strip)
