"""FBX and glTF export presets that keep shape keys / morph targets and their animation.

Facts these presets rest on (checked in Blender 5.0.1, see ``../shared/design.md`` §3):

* FBX with default options writes *no* shape-key animation, because the action sits on the Key
  datablock; ``bake_anim_use_all_actions=False, bake_anim_use_nla_strips=False`` exports it.
  Blender's own FBX importer then adds one frame (``anim_offset=1`` by default): re-import with
  ``anim_offset=0`` to get the frames back where they were.
* glTF morph normals double the file for a per-frame rig (1000 targets × 30k vertices); the web preset
  leaves them out (``export_morph_normal=False``), engines recompute them well enough for a face.
* Modifiers are never applied on export: applying them drops shape keys.
* Both exporters bake over the scene's frame range, so export sets it to the object's animation range
  for the duration of the export and restores it afterwards.
* FBX materials are Phong: the head wears a stand-in material for the export so roughness and metalness
  are embedded, and the engine's packed map goes beside the file (:mod:`.fbx_material`).
* glTF has no frame rate: the written file gets ``extras.dyntet_fps`` (scene and asset) and its images
  the subject's name (:mod:`..io.glb`); :mod:`.gltf_import` reads the rate back.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import bpy

from ..io.glb import amend_glb, stamp
from .animation import curves_of
from .fbx_material import FBX_LIMITS, Engine, fbx_ready_material
from .scene import gltf_seconds
from .skin import one_bone_skin

Format = Literal["FBX", "GLB"]

_FBX_COMMON: dict[str, Any] = {
    "use_selection": True,
    "object_types": {"MESH"},
    "use_mesh_modifiers": False,
    "add_leaf_bones": False,
    "bake_anim": True,
    "bake_anim_use_all_actions": False,
    "bake_anim_use_nla_strips": False,
    "bake_anim_force_startend_keying": True,
    "bake_anim_step": 1.0,
    "bake_anim_simplify_factor": 0.0,
    "path_mode": "COPY",
    "embed_textures": True,
}

_GLTF_COMMON: dict[str, Any] = {
    "export_format": "GLB",
    "use_selection": True,
    "export_yup": True,
    "export_apply": False,
    "export_animations": True,
    "export_animation_mode": "ACTIONS",
    "export_frame_range": True,
    "export_anim_slide_to_zero": True,
    "export_force_sampling": True,
    "export_morph": True,
    "export_morph_animation": True,
    "export_cameras": False,
    "export_lights": False,
}


@dataclass(frozen=True)
class ExportPreset:
    """Exporter settings for one target engine and file format."""

    key: str
    label: str
    description: str
    format: Format
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``bpy.ops.export_scene.fbx`` / ``.gltf``."""
    engine: Engine | None = None
    """Whose conventions the extra files follow (FBX: the packed PBR map written beside the file)."""
    limits: str = ""
    """What the format cannot carry, said in the panel and the export report."""
    skinned: bool = False
    """Bind the head to a one-bone skin for the export, head motion on the bone (:mod:`.skin`)."""

    @property
    def extension(self) -> str:
        return ".fbx" if self.format == "FBX" else ".glb"


PRESETS: dict[str, ExportPreset] = {
    preset.key: preset
    for preset in (
        ExportPreset(
            "UNREAL_FBX", "Unreal (FBX)", "FBX for Unreal Engine: per-face smoothing info, morph targets baked",
            "FBX", {**_FBX_COMMON, "mesh_smooth_type": "FACE", "apply_scale_options": "FBX_SCALE_NONE"},
            "UNREAL", FBX_LIMITS + " (<subject>_ORM.png)",
        ),
        ExportPreset(
            "UNITY_FBX", "Unity (FBX)", "FBX for Unity: unit scale applied so the head imports at 1:1",
            "FBX", {**_FBX_COMMON, "mesh_smooth_type": "OFF", "apply_scale_options": "FBX_SCALE_ALL"},
            "UNITY", FBX_LIMITS + " (<subject>_MetallicSmoothness.png, _Occlusion.png, HDRP _MaskMap.png)",
        ),
        ExportPreset(
            "UNREAL_GLB", "Unreal (glTF)", "glTF binary for Unreal: a one-bone skin so it imports as a Skeletal "
            "Mesh (Unreal keeps morph targets only there), head motion on the bone, morph normals",
            "GLB", {**_GLTF_COMMON, "export_morph_normal": True, "export_skins": True,
                    "export_armature_object_remove": False}, skinned=True,
        ),
        ExportPreset(
            "UNITY_GLB", "Unity (glTF)", "glTF binary for Unity (glTFast): blend shapes on the mesh itself, head "
            "motion on its node, morph normals",
            "GLB", {**_GLTF_COMMON, "export_morph_normal": True},
        ),
        ExportPreset(
            "WEB_GLB", "Web (glTF)", "Small glTF binary for three.js / Babylon.js: no morph normals",
            "GLB", {**_GLTF_COMMON, "export_morph_normal": False},
        ),
    )
}


def animation_range(obj: bpy.types.Object) -> tuple[int, int] | None:
    """First and last keyed frame of the object and its shape keys, or None when nothing is animated."""
    curves = curves_of(obj)
    if obj.type == "MESH" and obj.data.shape_keys is not None:
        curves += curves_of(obj.data.shape_keys)
    ranges = [curve.range() for curve in curves if len(curve.keyframe_points)]
    if not ranges:
        return None
    return int(round(min(r[0] for r in ranges))), int(round(max(r[1] for r in ranges)))


@dataclass
class ExportResult:
    """What :func:`export_head` wrote."""

    path: Path
    extra_files: list[Path]
    """Files written beside it (the engine's packed PBR maps of an FBX preset)."""
    notes: str
    """What the format could not carry (empty when nothing was lost)."""


def export_object(
    context: bpy.types.Context, obj: bpy.types.Object, filepath: str | Path, preset: str | ExportPreset
) -> Path:
    """:func:`export_head`, returning only the file written."""
    return export_head(context, obj, filepath, preset).path


def export_head(
    context: bpy.types.Context, obj: bpy.types.Object, filepath: str | Path, preset: str | ExportPreset
) -> ExportResult:
    """Export ``obj`` alone with a preset.

    Args:
        context: the current context (its scene's fps sets glTF times).
        obj: a mesh object, typically an imported DynTet head.
        filepath: destination; the preset's extension is added when missing.
        preset: a key of :data:`PRESETS` or a preset.

    Returns:
        The file written, the files beside it and what the format could not carry.

    Raises:
        ValueError: unknown preset or not a mesh object.
        RuntimeError: the exporter reported a failure.
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown export preset {preset!r}; choose one of {', '.join(PRESETS)}")
        preset = PRESETS[preset]
    if obj is None or obj.type != "MESH":
        raise ValueError("select the imported head (a mesh object) to export")
    path = Path(filepath)
    if path.suffix.lower() != preset.extension:
        path = path.with_name(path.name + preset.extension)
    path.parent.mkdir(parents=True, exist_ok=True)

    scene = context.scene
    view_layer = context.view_layer
    selected = [o for o in view_layer.objects if o.select_get()]
    active = view_layer.objects.active
    saved_range = (scene.frame_start, scene.frame_end)
    keyed = animation_range(obj)
    subject = str(obj.get("dyntet_subject") or bpy.path.clean_name(obj.name))
    fps = scene.render.fps / scene.render.fps_base
    extra: list[Path] = []
    try:
        for other in selected:
            other.select_set(False)
        obj.select_set(True)
        view_layer.objects.active = obj
        if keyed is not None:
            scene.frame_start, scene.frame_end = keyed
        with ExitStack() as stack:
            chosen = [obj]
            if preset.skinned:
                rig = stack.enter_context(one_bone_skin(context, obj))
                rig.select_set(True)
                chosen.append(rig)
            stack.enter_context(context.temp_override(selected_objects=chosen, active_object=obj, object=obj))
            if preset.format == "FBX":
                extra = stack.enter_context(fbx_ready_material(obj, subject, preset.engine or "UNREAL", path.parent))
                result = bpy.ops.export_scene.fbx(filepath=str(path), **preset.options)
            else:
                stack.enter_context(gltf_seconds(scene, fps))
                result = bpy.ops.export_scene.gltf(filepath=str(path), **preset.options)
    finally:
        scene.frame_start, scene.frame_end = saved_range
        obj.select_set(False)
        for other in selected:
            other.select_set(True)
        view_layer.objects.active = active
    if "FINISHED" not in result or not path.is_file():
        raise RuntimeError(f"the {preset.label} exporter did not write {path}")
    if preset.format == "GLB":
        amend_glb(path, lambda document: stamp(document, fps, subject))
    return ExportResult(path, extra, preset.limits)
