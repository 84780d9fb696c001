"""FBX and glTF export presets keep shape keys / morph targets and their animation.

Each preset's file is re-imported into a fresh scene: the same number of shape keys and the same
animation length must come back. Blender's FBX importer shifts animation by ``anim_offset`` (1 frame by
default); re-importing with ``anim_offset=0`` must give back the exact frame range.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

from blender_addon.blender.animation import curves_of  # noqa: E402
from blender_addon.blender.exporter import PRESETS, animation_range, export_object  # noqa: E402
from blender_addon.blender.importer import ImportOptions, import_sequence  # noqa: E402

FRAME_START = 1
FRAMES = 12


def _import_head(sequence_dir: Path):
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    result = import_sequence(bpy.context.scene, sequence_dir, ImportOptions(frame_start=FRAME_START))
    return result.object


def _fresh_scene(fps: int) -> None:
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    bpy.context.scene.render.fps = fps
    bpy.context.scene.render.fps_base = 1.0


def _glb_json(path: Path) -> dict:
    data = path.read_bytes()
    assert data[:4] == b"glTF"
    length = struct.unpack("<I", data[12:16])[0]
    return json.loads(data[20:20 + length])


def _reimported_head():
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    assert len(meshes) == 1, [o.name for o in bpy.data.objects]
    return meshes[0]


@pytest.mark.parametrize("preset", [key for key, p in PRESETS.items() if p.format == "FBX"])
def test_fbx_round_trip(preset: str, sequence_dir: Path, tmp_path: Path) -> None:
    head = _import_head(sequence_dir)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 50, 60  # export must use the head's own range, then restore
    path = export_object(bpy.context, head, tmp_path / "head", preset)
    assert path.suffix == ".fbx" and (scene.frame_start, scene.frame_end) == (50, 60)

    _fresh_scene(25)
    bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0.0)
    back = _reimported_head()
    keys = back.data.shape_keys
    assert keys is not None and len(keys.key_blocks) == FRAMES + 1
    assert animation_range(back) == (FRAME_START, FRAME_START + FRAMES - 1)
    assert {c.data_path for c in curves_of(keys)} >= {f'key_blocks["frame_{i:04d}"].value' for i in range(FRAMES)}


def test_fbx_default_import_shifts_by_one_frame(sequence_dir: Path, tmp_path: Path) -> None:
    """The documented shift: with Blender's default ``anim_offset`` the animation starts one frame late."""
    head = _import_head(sequence_dir)
    path = export_object(bpy.context, head, tmp_path / "head.fbx", "UNITY_FBX")
    _fresh_scene(25)
    bpy.ops.import_scene.fbx(filepath=str(path))
    assert animation_range(_reimported_head()) == (FRAME_START + 1, FRAME_START + FRAMES)


@pytest.mark.parametrize("preset", [key for key, p in PRESETS.items() if p.format == "GLB"])
def test_gltf_round_trip(preset: str, sequence_dir: Path, tmp_path: Path, gltf_validator) -> None:
    head = _import_head(sequence_dir)
    path = export_object(bpy.context, head, tmp_path / "head", preset)
    assert path.suffix == ".glb"

    document = _glb_json(path)
    (primitive,) = document["meshes"][0]["primitives"]
    assert len(primitive["targets"]) == FRAMES
    has_normals = all("NORMAL" in target for target in primitive["targets"])
    assert has_normals == PRESETS[preset].options["export_morph_normal"]
    assert len(document["animations"]) == 1  # one take: head motion and weights in one clip
    paths = {channel["target"]["path"] for channel in document["animations"][0]["channels"]}
    assert {"weights", "translation", "rotation"} <= paths
    assert document["materials"][0].get("occlusionTexture") is not None

    if gltf_validator is not None:
        report = gltf_validator(path)
        assert report.num_errors == 0, report.summary()

    _fresh_scene(25)  # glTF stores seconds: same fps, same frames
    bpy.ops.import_scene.gltf(filepath=str(path))
    back = _reimported_head()
    assert len(back.data.shape_keys.key_blocks) == FRAMES + 1
    first, last = animation_range(back)
    assert (first, last - first) == (0, FRAMES - 1)  # slid to time 0, same length


def test_web_preset_is_smaller_than_engine_presets(sequence_dir: Path, tmp_path: Path) -> None:
    head = _import_head(sequence_dir)
    web = export_object(bpy.context, head, tmp_path / "web", "WEB_GLB")
    unreal = export_object(bpy.context, head, tmp_path / "unreal", "UNREAL_GLB")
    assert web.stat().st_size < 0.8 * unreal.stat().st_size


def test_export_refuses_what_it_cannot_do(sequence_dir: Path, tmp_path: Path) -> None:
    head = _import_head(sequence_dir)
    with pytest.raises(ValueError, match="unknown export preset"):
        export_object(bpy.context, head, tmp_path / "x", "BLENDER_GAME_ENGINE")
    empty = bpy.data.objects.new("empty", None)
    bpy.context.scene.collection.objects.link(empty)
    with pytest.raises(ValueError, match="mesh object"):
        export_object(bpy.context, empty, tmp_path / "x", "WEB_GLB")


def test_export_keeps_the_users_selection(sequence_dir: Path, tmp_path: Path) -> None:
    head = _import_head(sequence_dir)
    other = bpy.data.objects.new("other", bpy.data.meshes.new("other"))
    bpy.context.scene.collection.objects.link(other)
    other.select_set(True)
    bpy.context.view_layer.objects.active = other
    head.select_set(False)
    path = export_object(bpy.context, head, tmp_path / "only_head.glb", "WEB_GLB")
    assert [node["name"] for node in _glb_json(path)["nodes"]] == [head.name]
    assert other.select_get() and not head.select_get()
    assert bpy.context.view_layer.objects.active == other
