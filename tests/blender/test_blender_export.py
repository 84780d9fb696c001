"""FBX and glTF export presets keep shape keys / morph targets and their animation.

Each preset's file is re-imported into a fresh scene: the same number of shape keys and the same
animation length must come back. Blender's FBX importer shifts animation by ``anim_offset`` (1 frame by
default); re-importing with ``anim_offset=0`` must give back the exact frame range.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
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
    # Blender's glTF importer adds a sphere as the display shape of imported bones: not a head.
    shapes = {b.custom_shape for o in bpy.data.objects if o.type == "ARMATURE" for b in o.pose.bones}
    meshes = [o for o in bpy.data.objects if o.type == "MESH" and o not in shapes]
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


# ---- assets that travel: PBR through FBX, the frame rate and subject names through glTF ---------------------


def _principled_image(material, socket: str):
    from bpy_extras.node_shader_utils import PrincipledBSDFWrapper

    texture = getattr(PrincipledBSDFWrapper(material, is_readonly=True), socket)
    return texture.image if texture is not None else None


@pytest.mark.parametrize("preset", [key for key, p in PRESETS.items() if p.format == "FBX"])
def test_fbx_keeps_roughness_and_metalness_maps(preset: str, sequence_dir: Path, tmp_path: Path) -> None:
    from blender_addon.blender.exporter import export_head
    from blender_addon.blender.fbx_material import image_rgba

    head = _import_head(sequence_dir)
    material = head.data.materials[0]
    result = export_head(bpy.context, head, tmp_path / "head", preset)
    assert "occlusion has no FBX slot" in result.notes
    assert head.data.materials[0] == material and material.name == "head_material"  # the user's material is back
    assert not any(m.name.endswith(".001") for m in bpy.data.materials)
    names = {p.name for p in result.extra_files}
    assert names == ({"head_ORM.png"} if preset == "UNREAL_FBX" else
                     {"head_MetallicSmoothness.png", "head_Occlusion.png", "head_MaskMap.png"})

    _fresh_scene(25)
    bpy.ops.import_scene.fbx(filepath=str(result.path), anim_offset=0.0)
    back = _reimported_head().data.materials[0]
    roughness, metallic = _principled_image(back, "roughness_texture"), _principled_image(back, "metallic_texture")
    base = _principled_image(back, "base_color_texture")
    assert roughness is not None and metallic is not None and base is not None
    assert roughness.packed_file is not None  # embedded in the FBX, not found beside it
    assert Path(roughness.filepath).name == "head_roughness.png" and Path(base.filepath).name == "head_base_color.png"
    # The test ORM is (255, 128, 0): roughness 128/255 everywhere, metalness 0.
    roughness.colorspace_settings.name = metallic.colorspace_settings.name = "Non-Color"
    assert np.allclose(image_rgba(roughness)[..., :3], 128 / 255, atol=1e-3)
    assert np.allclose(image_rgba(metallic)[..., :3], 0.0, atol=1e-3)


def test_engine_maps_follow_each_engines_packing(sequence_dir: Path, tmp_path: Path) -> None:
    from blender_addon.blender.exporter import export_head

    head = _import_head(sequence_dir)
    unreal = export_head(bpy.context, head, tmp_path / "u" / "head", "UNREAL_FBX").extra_files
    unity = {p.name: p for p in export_head(bpy.context, head, tmp_path / "y" / "head", "UNITY_FBX").extra_files}

    def pixel(path: Path) -> np.ndarray:
        image = bpy.data.images.load(str(path))
        image.colorspace_settings.name = "Non-Color"
        value = np.empty(image.size[0] * image.size[1] * 4, np.float32)
        image.pixels.foreach_get(value)
        bpy.data.images.remove(image)
        return value.reshape(-1, 4).mean(axis=0)

    r = 128 / 255  # test ORM: occlusion 1, roughness 128/255, metalness 0
    assert np.allclose(pixel(unreal[0]), [1.0, r, 0.0, 1.0], atol=2e-3)
    assert np.allclose(pixel(unity["head_MetallicSmoothness.png"]), [0.0, 0.0, 0.0, 1 - r], atol=2e-3)
    assert np.allclose(pixel(unity["head_Occlusion.png"]), [1.0, 1.0, 1.0, 1.0], atol=2e-3)
    assert np.allclose(pixel(unity["head_MaskMap.png"]), [0.0, 1.0, 1.0, 1 - r], atol=2e-3)


def test_fbx_reimport_keeps_the_frame_rate(sequence_dir: Path, tmp_path: Path) -> None:
    head = _import_head(sequence_dir)  # the sequence is 25 fps
    path = export_object(bpy.context, head, tmp_path / "head", "UNITY_FBX")
    _fresh_scene(24)
    bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0.0)
    assert bpy.context.scene.render.fps / bpy.context.scene.render.fps_base == pytest.approx(25.0)


def _one_hot_frames(obj) -> list[int]:
    """Which per-frame key is fully on at each whole frame of the object's range."""
    scene = bpy.context.scene
    first, last = animation_range(obj)
    keys = obj.data.shape_keys.key_blocks
    shown = []
    for frame in range(first, last + 1):
        scene.frame_set(frame)
        on = [i for i, k in enumerate(keys[1:]) if abs(k.value - 1.0) < 1e-4]
        shown.append(on[0] if len(on) == 1 else -1)
    return shown


def test_glb_records_the_frame_rate_and_reimports_on_it(sequence_dir: Path, tmp_path: Path) -> None:
    from blender_addon.blender.gltf_import import import_glb

    head = _import_head(sequence_dir)  # 25 fps
    path = export_object(bpy.context, head, tmp_path / "head", "UNITY_GLB")
    document = _glb_json(path)
    assert document["scenes"][0]["extras"]["dyntet_fps"] == 25.0 and document["asset"]["extras"]["dyntet_fps"] == 25.0
    assert {image["name"] for image in document["images"]} <= {"head_base_color", "head_orm"}

    _fresh_scene(24)  # Blender's own importer puts 25 fps keys on a 24 fps timeline: frames land in between
    bpy.ops.import_scene.gltf(filepath=str(path))
    assert _one_hot_frames(_reimported_head()) != list(range(FRAMES))

    _fresh_scene(24)
    result = import_glb(bpy.context, path)
    scene = bpy.context.scene
    assert result.fps == 25.0 and (scene.render.fps, scene.render.fps_base) == (25, 1.0)
    assert (scene.frame_start, scene.frame_end) == result.frame_range == (0, FRAMES - 1)
    assert _one_hot_frames(_reimported_head()) == list(range(FRAMES))


def test_ntsc_rate_round_trips_through_glb(sequence_dir: Path, tmp_path: Path) -> None:
    """30000/1001 fps: Blender's glTF add-on alone would write times 0.2 % off; export and import agree."""
    from blender_addon.blender.gltf_import import import_glb

    head = _import_head(sequence_dir)
    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = 30, 1.001
    path = export_object(bpy.context, head, tmp_path / "ntsc", "WEB_GLB")
    assert _glb_json(path)["scenes"][0]["extras"]["dyntet_fps"] == pytest.approx(30 / 1.001)
    _fresh_scene(24)
    import_glb(bpy.context, path)
    assert bpy.context.scene.render.fps == 30 and bpy.context.scene.render.fps_base == pytest.approx(1.001)
    assert _one_hot_frames(_reimported_head()) == list(range(FRAMES))


def test_unreal_and_unity_glb_differ_as_intended(sequence_dir: Path, tmp_path: Path) -> None:
    """Unreal: a one-joint skin (a Skeletal Mesh there) with the head motion on the joint; Unity: no skin,
    the motion on the mesh's node. Both re-import to the sequence's world-space vertices on every frame."""
    from blender_addon.blender.gltf_import import import_glb
    from dyntet_formats.sequence import read_sequence
    from test_blender_import import expected_world, world_vertices

    head = _import_head(sequence_dir)
    files = {key: export_object(bpy.context, head, tmp_path / key, key) for key in ("UNREAL_GLB", "UNITY_GLB")}
    assert [o.name for o in bpy.data.objects] == ["head"] and not head.modifiers and not head.vertex_groups
    assert len(bpy.data.actions) == 1 and head.parent is None

    unreal, unity = (_glb_json(files[key]) for key in ("UNREAL_GLB", "UNITY_GLB"))
    (skin,) = unreal["skins"]
    (joint,) = skin["joints"]
    mesh_node = next(i for i, n in enumerate(unreal["nodes"]) if "mesh" in n)
    assert unreal["nodes"][mesh_node]["skin"] == 0 and unreal["nodes"][joint]["name"] == "head"
    targets = {(c["target"]["node"], c["target"]["path"]) for c in unreal["animations"][0]["channels"]}
    assert {(joint, "translation"), (joint, "rotation"), (mesh_node, "weights")} <= targets
    assert (mesh_node, "translation") not in targets
    assert "skins" not in unity
    targets = {(c["target"]["node"], c["target"]["path"]) for c in unity["animations"][0]["channels"]}
    assert {(0, "translation"), (0, "rotation"), (0, "weights")} <= targets

    seq = read_sequence(sequence_dir)
    for key, path in files.items():
        _fresh_scene(25)
        import_glb(bpy.context, path)
        back = _reimported_head()
        errors = []
        for n in range(FRAMES):
            bpy.context.scene.frame_set(n)
            errors.append(np.abs(world_vertices(back) - expected_world(seq.frame(n), seq.head_pose[n])).max())
        assert max(errors) < 1e-4, (key, max(errors))
