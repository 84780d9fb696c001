"""Bring a sequence folder into a scene: one object, shape keys, head motion, material, world, audio.

All-or-nothing: the folder is fully validated before any datablock is created, and if anything fails
while building, every datablock created so far is removed and the scene's settings are restored, so a
failed import never leaves a half-built head behind.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Literal

import bpy
import numpy as np

from ..io.convert import points_to_blender
from dyntet_formats.sequence import Sequence, normalise_rig, read_sequence
from ..io.camera import CameraSettings, camera_settings
from . import material as material_mod
from . import replace as replace_mod
from . import scene as scene_mod
from .camera import apply_render_settings, build_camera
from .animation import Performance
from .mesh import build_mesh
from ..io.controls import read_controls
from .control_rig import add_control_keys, animate_controls
from .shape_keys import add_shape_keys, animate_one_hot, animate_weights, frame_key_name
from .transform import animate_head_pose
from .world import build_world

Rig = Literal["frames", "pca", "controls"]


@dataclass
class ImportOptions:
    """What to bring in. Built from the operator's or panel's properties at the boundary."""

    rig: Rig = "frames"
    """``"frames"``: one shape key per frame, one-hot animated. ``"pca"``: K blend shapes with weight curves.
    ``"controls"``: Basis + one key per named control (jawOpen, …) with F-curves (``controls.npz``)."""
    corrective: bool = True
    """With ``rig="controls"``: also the exact corrective layer (one key per frame), so frames stay exact."""
    frame_start: int = 1
    """Blender frame of the sequence's first imported frame."""
    frames: tuple[int, int] | None = None
    """Half-open range of sequence frames to import; None imports all."""
    head_motion: bool = True
    """Animate the object's transform from ``head_pose.npy``."""
    textures: bool = True
    """Build the PBR material from the baked textures."""
    world: bool = True
    """Make a World from ``environment.hdr`` and assign it to the scene."""
    audio: bool = True
    """Add the driver's audio as a sound strip."""
    scene_timing: bool = True
    """Set the scene's fps and frame range to the sequence."""
    camera: bool = True
    """Add the tracked camera (manifest ``camera``) as the scene camera and set the render size to its crop."""
    pack_textures: bool = False
    """Pack the textures and the light into the .blend (named ``<subject>_base_color.png``, …)."""
    replace: bool = False
    """Replace what an earlier import of the same sequence folder made (object, mesh, material, images,
    World, action, camera, sound strip) instead of adding a second copy beside it."""
    name: str = ""
    """Object name; empty uses the folder's name. Also the subject that textures are named after."""

    def __post_init__(self) -> None:
        if self.rig not in ("frames", "pca", "controls"):
            raise ValueError(f"rig must be 'frames', 'pca' or 'controls', got {self.rig!r}")
        if not -1_000_000 < self.frame_start < 1_000_000:
            raise ValueError(f"frame_start {self.frame_start} is outside Blender's frame range")


@dataclass
class ImportResult:
    """What :func:`import_sequence` created."""

    object: bpy.types.Object
    material: bpy.types.Material | None
    world: bpy.types.World | None
    sound: bpy.types.Strip | None
    camera: bpy.types.Object | None
    num_frames: int
    num_shape_keys: int
    seconds: float
    replaced: int = 0
    """Datablocks of an earlier import of the same folder that were removed (``replace``)."""


@dataclass
class _Created:
    """Datablocks made so far, removed in reverse order on failure; scene settings to restore."""

    scene: bpy.types.Scene
    ids: list[tuple[object, bpy.types.ID]] = field(default_factory=list)
    strip: object | None = None
    saved: dict[str, object] = field(default_factory=dict)

    def add(self, collection: object, block: bpy.types.ID) -> bpy.types.ID:
        self.ids.append((collection, block))
        return block

    @contextmanager
    def new_in(self, *collections: object) -> Iterator[None]:
        """Record every datablock that appears in ``collections`` inside the block, even if it raises
        (a material build that fails after loading its images must not leave the images behind)."""
        before = [set(collection) for collection in collections]
        try:
            yield
        finally:
            for collection, known in zip(collections, before):
                for block in set(collection) - known:
                    self.add(collection, block)

    def remember_scene(self) -> None:
        scene, render = self.scene, self.scene.render
        self.saved = {
            "fps": render.fps,
            "fps_base": render.fps_base,
            "frame_start": scene.frame_start,
            "frame_end": scene.frame_end,
            "world": scene.world,
            "camera": scene.camera,
            "resolution": (render.resolution_x, render.resolution_y, render.resolution_percentage),
            "pixel_aspect": (render.pixel_aspect_x, render.pixel_aspect_y),
        }

    def rollback(self) -> None:
        if self.strip is not None:
            scene_mod.remove_strip(self.scene, self.strip)
        for collection, block in reversed(self.ids):
            try:
                collection.remove(block)
            except ReferenceError:  # already freed with its owner
                pass
        if self.saved:
            render = self.scene.render
            render.fps, render.fps_base = self.saved["fps"], self.saved["fps_base"]
            self.scene.frame_start, self.scene.frame_end = self.saved["frame_start"], self.saved["frame_end"]
            self.scene.world = self.saved["world"]
            self.scene.camera = self.saved["camera"]
            render.resolution_x, render.resolution_y, render.resolution_percentage = self.saved["resolution"]
            render.pixel_aspect_x, render.pixel_aspect_y = self.saved["pixel_aspect"]


def import_sequence(
    scene: bpy.types.Scene,
    path: str | Path,
    options: ImportOptions | None = None,
    *,
    collection: bpy.types.Collection | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> ImportResult:
    """Import a sequence folder into ``scene``.

    Args:
        scene: target scene.
        path: sequence folder (``docs/dataset-format.md``).
        options: what to import; defaults to everything, per-frame keys from frame 1.
        collection: where to link the object; the scene's master collection by default.
        on_progress: called with a fraction in [0, 1] while shape keys are written.

    Raises:
        SequenceFormatError: the folder is invalid (nothing was created).
        RuntimeError / ValueError from Blender: building failed (everything created was removed).
    """
    options = options or ImportOptions()
    began = time.perf_counter()
    sequence = read_sequence(path, frames=options.frames, load_rig=options.rig == "pca")
    camera = camera_settings(sequence.manifest["camera"]) if options.camera and sequence.manifest.get("camera") \
        else None
    previous = replace_mod.previous_import(sequence.root) if options.replace else None
    created = _Created(scene)
    created.remember_scene()
    try:
        result = _build(scene, sequence, options, collection or scene.collection, created, on_progress, camera)
    except BaseException:
        created.rollback()
        raise
    if previous is not None:  # only once the new head stands: a failed import leaves the old one alone
        result.replaced = replace_mod.remove(scene, previous, keep=replace_mod.blocks_of(result.object))
        replace_mod.take_names(scene, previous, result.object)
    result.seconds = time.perf_counter() - began
    return result


def _build(
    scene: bpy.types.Scene,
    sequence: Sequence,
    options: ImportOptions,
    collection: bpy.types.Collection,
    created: _Created,
    on_progress: Callable[[float], None] | None,
    camera: CameraSettings | None,
) -> ImportResult:
    name = options.name or Path(sequence.root).resolve().name or "DynTet"
    subject = bpy.path.clean_name(name)
    frames = sequence.num_frames

    if options.rig == "pca":
        rig = normalise_rig(sequence.rig)
        basis = points_to_blender(rig.mean)
    elif options.rig == "controls":
        controls = read_controls(sequence.root, _folder_frames(sequence), sequence.num_vertices,
                                 slice(sequence.first_frame, sequence.first_frame + frames))
        basis = points_to_blender(controls.basis)
    else:
        basis = points_to_blender(_mean_frame(sequence))
    mesh = created.add(bpy.data.meshes, build_mesh(name, basis, sequence.faces, sequence.uv, sequence.uv_faces))
    obj = created.add(bpy.data.objects, bpy.data.objects.new(name, mesh))
    obj["dyntet_sequence"] = str(Path(sequence.root).resolve())
    obj["dyntet_first_frame"] = sequence.first_frame
    obj["dyntet_subject"] = subject
    obj["dyntet_fps"] = sequence.fps
    obj["dyntet_frame_start"] = options.frame_start  # the scene frame of imported frame 0 (Bake exact, CSV)
    obj["dyntet_num_frames"] = frames

    take = Performance(f"{name}_performance")
    try:
        if options.rig == "pca":
            names = [f"pca_{k:03d}" for k in range(rig.num_targets)]
            shapes = (points_to_blender(rig.mean + rig.targets[k]) for k in range(rig.num_targets))
            add_shape_keys(obj, shapes, names, on_key=_fraction(on_progress, len(names)))
            channels = take.channels_for(mesh.shape_keys)
            animate_weights(channels, mesh.shape_keys, names, rig.weights, options.frame_start)
        elif options.rig == "controls":
            vertices = sequence.vertices if options.corrective else None
            total = len(controls.names) + (frames if vertices is not None else 0)
            names = add_control_keys(obj, controls, vertices, sequence.first_frame,
                                     on_key=_fraction(on_progress, total))
            obj["dyntet_controls"] = list(controls.names)
            obj["dyntet_run"] = controls.run
            animate_controls(take.channels_for(mesh.shape_keys), controls, options.frame_start,
                             names[len(controls.names):])
        else:
            names = [frame_key_name(sequence.first_frame + t) for t in range(frames)]
            buffer = np.empty((sequence.num_vertices, 3), dtype=np.float32)
            shapes = (points_to_blender(sequence.vertices[t], out=buffer) for t in range(frames))
            add_shape_keys(obj, shapes, names, on_key=_fraction(on_progress, frames))
            animate_one_hot(take.channels_for(mesh.shape_keys), names, options.frame_start)
        if options.head_motion:
            animate_head_pose(take.channels_for(obj), obj, sequence.head_pose, options.frame_start)
    finally:
        for action in take.actions:
            created.add(bpy.data.actions, action)

    material = None
    if options.textures and sequence.textures:
        with created.new_in(bpy.data.materials, bpy.data.images, bpy.data.node_groups):
            material = material_mod.build_material(
                f"{name}_material", sequence.textures.get("base_color"), sequence.textures.get("orm"),
                subject, options.pack_textures,
            )
        mesh.materials.append(material)

    world = None
    if options.world and sequence.environment is not None:
        with created.new_in(bpy.data.worlds, bpy.data.images):
            world = build_world(f"{name}_light", sequence.environment, subject=subject, pack=options.pack_textures)
        obj["dyntet_world"] = world.name

    camera_obj = None
    if camera is not None:
        camera_obj = created.add(bpy.data.objects, build_camera(f"{name}_camera", camera))
        created.add(bpy.data.cameras, camera_obj.data)
        obj["dyntet_camera"] = camera_obj.name

    # Scene changes last: everything above can fail without touching what the user already had.
    collection.objects.link(obj)
    if world is not None:
        scene.world = world
    if camera_obj is not None:
        collection.objects.link(camera_obj)
        scene.camera = camera_obj
        apply_render_settings(scene, camera)
    if options.scene_timing:
        scene_mod.set_timing(scene, sequence.fps, options.frame_start, frames)
    sound = None
    if options.audio and sequence.audio is not None:
        with created.new_in(bpy.data.sounds):
            sound = scene_mod.add_sound_strip(scene, sequence.audio, options.frame_start, f"{name}_audio")
            created.strip = sound
        obj["dyntet_sound"] = sound.name
        if sound.sound is not None:
            sound.sound.name = f"{subject}_audio{sequence.audio.suffix.lower()}"

    return ImportResult(
        object=obj,
        material=material,
        world=world,
        sound=sound,
        camera=camera_obj,
        num_frames=frames,
        num_shape_keys=len(mesh.shape_keys.key_blocks),
        seconds=0.0,
    )


def _folder_frames(sequence: Sequence) -> int:
    """Frames of the whole folder (``controls.npz`` covers all of them, an import may take a range)."""
    import json

    return int(json.loads((Path(sequence.root) / "manifest.json").read_text())["num_frames"])


def _mean_frame(sequence: Sequence) -> np.ndarray:
    """float32 [V, 3] mean of all frames: a rest shape that keeps every key's offset small."""
    total = np.zeros((sequence.num_vertices, 3), dtype=np.float64)
    for t in range(sequence.num_frames):
        total += sequence.vertices[t]
    return (total / sequence.num_frames).astype(np.float32)


def _fraction(on_progress: Callable[[float], None] | None, total: int) -> Callable[[int], None] | None:
    if on_progress is None:
        return None
    step = max(1, total // 100)

    def report(index: int) -> None:
        if index % step == 0 or index == total - 1:
            on_progress((index + 1) / total)

    return report
