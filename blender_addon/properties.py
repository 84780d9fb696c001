"""Per-scene settings of the DynTet panel, as PropertyGroups under ``Scene.dyntet``.

Runtime facts (connection, job progress) are not stored here: they live in ``runtime.STATE`` and are
never saved into .blend files.
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from .blender.exporter import PRESETS
from .blender.importer import ImportOptions


class ImportOptionProps:
    """How a sequence comes into the scene. A mixin: the panel's settings and the File ▸ Import operator
    share these annotations, so both offer the same options with the same defaults."""

    rig: EnumProperty(
        name="Rig",
        description="How the animation is stored on the mesh",
        items=(
            ("frames", "Per-Frame Shape Keys", "One shape key per frame, switched on one at a time (exact)"),
            ("pca", "PCA Rig", "A few blend shapes with weight curves (small; the rig.npz every `dyntet generate` writes)"),
            ("controls", "Named Controls", "jawOpen, eyeBlinkLeft, … keys with editable curves plus an exact "
             "corrective layer (needs `dyntet rig RUN` before generating)"),
        ),
        default="frames",
    )
    frame_start: IntProperty(
        name="Start Frame", description="Scene frame of the first sequence frame", default=1,
        min=-1_000_000 + 1, max=1_000_000 - 1,
    )
    head_motion: BoolProperty(name="Head Motion", description="Animate the object with the head pose", default=True)
    textures: BoolProperty(name="Textures", description="Build the PBR material from the baked textures", default=True)
    world: BoolProperty(name="World Light", description="Use the learned light as the scene's World", default=True)
    audio: BoolProperty(name="Audio", description="Add the driver's audio as a sound strip", default=True)
    scene_timing: BoolProperty(
        name="Set Scene Frame Rate and Range", description="Match the scene's fps and frame range", default=True
    )
    camera: BoolProperty(
        name="Tracked Camera", description="Add the camera the footage was tracked with (focal length and "
        "principal point from the intrinsics) as the scene camera, and set the render size to its crop",
        default=True,
    )
    pack_textures: BoolProperty(
        name="Pack Textures", description="Pack the textures and the light into the .blend, named after the "
        "subject (<subject>_base_color.png, …)", default=False,
    )
    replace: BoolProperty(
        name="Replace Existing", description="Replace the object, material, World, action and camera of an "
        "earlier import of the same sequence instead of adding a second copy", default=False,
    )

    def to_options(self) -> ImportOptions:
        """The settings as the importer's plain options object."""
        return ImportOptions(
            rig=self.rig,
            frame_start=self.frame_start,
            head_motion=self.head_motion,
            textures=self.textures,
            world=self.world,
            audio=self.audio,
            scene_timing=self.scene_timing,
            camera=self.camera,
            pack_textures=self.pack_textures,
            replace=self.replace,
        )


class DynTetImportSettings(ImportOptionProps, bpy.types.PropertyGroup):
    """Import options of the sidebar's Generate & Import."""


class DynTetSettings(bpy.types.PropertyGroup):
    """Everything the sidebar panel edits, per scene."""

    footage: StringProperty(
        name="Video",
        description="The talking-head video to learn from (a remote backend receives a copy in its workspace; "
        "a path that is not a file here names a file inside the remote workspace)",
        subtype="FILE_PATH",
    )
    name: StringProperty(
        name="Name", description="Name of the dataset and run made from this footage", default="subject"
    )
    preset: EnumProperty(
        name="Preset",
        items=(
            ("preview", "Preview", "Small model that trains on a CPU in minutes"),
            ("full", "Full", "The paper's settings; needs a GPU"),
        ),
        default="preview",
    )
    iterations: IntProperty(
        name="Iterations", description="Training iterations; 0 uses the preset's", default=0, min=0, max=1_000_000
    )
    minutes: FloatProperty(
        name="Minutes", description="Time budget of the training run in minutes (the learning-rate schedule is "
        "laid out over it); 0 uses the preset's", default=0.0, min=0.0, max=100_000.0
    )
    device: EnumProperty(
        name="Device",
        items=(("auto", "Auto", "GPU when the backend has one"), ("cpu", "CPU", ""), ("cuda", "GPU (CUDA)", "")),
        default="auto",
    )
    drive: EnumProperty(
        name="Drive",
        description="What drives the avatar",
        items=(
            ("train", "Training Clip", "Replay the training frames"),
            ("test", "Test Split", "The held-out last part of the clip"),
            ("video", "Another Video", "Transfer the expressions of another video"),
            ("audio", "Drive from Audio", "A voice recording (WAV, FLAC, MP3, M4A, or a video's sound track) "
             "drives the mouth; the head moves as in the training clip"),
        ),
        default="test",
    )
    drive_video: StringProperty(name="Driver Video", subtype="FILE_PATH")
    drive_audio: StringProperty(name="Voice Recording", subtype="FILE_PATH",
                                description="The speech that drives the avatar (uploaded to a remote backend)")
    first_frame: IntProperty(name="First", description="First driver frame", default=0, min=0)
    last_frame: IntProperty(name="Last", description="Last driver frame; 0 means to the end", default=0, min=0)
    import_settings: PointerProperty(type=DynTetImportSettings)
    export_preset: EnumProperty(
        name="Preset",
        items=tuple((key, preset.label, preset.description) for key, preset in PRESETS.items()),
        default="WEB_GLB",
    )


CLASSES = (DynTetImportSettings, DynTetSettings)


def attach() -> None:
    bpy.types.Scene.dyntet = PointerProperty(type=DynTetSettings)


def detach() -> None:
    del bpy.types.Scene.dyntet
