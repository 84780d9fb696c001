"""Importing a sequence folder into Blender: geometry per frame, animation, material, world, audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_addon.blender import importer as importer_mod  # noqa: E402
from blender_addon.blender.animation import curves_of  # noqa: E402
from blender_addon.blender.importer import ImportOptions, import_sequence  # noqa: E402
from dyntet_formats.sequence import SequenceFormatError, read_sequence  # noqa: E402

TOLERANCE_M = 1e-5


def evaluated_coords(obj) -> tuple[np.ndarray, np.ndarray]:
    """float64 [V, 3] evaluated vertices of ``obj`` in object space at the current frame, and its world matrix."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        coords = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", coords)
    finally:
        evaluated.to_mesh_clear()
    return coords.reshape(-1, 3).astype(np.float64), np.array(evaluated.matrix_world, dtype=np.float64)


def world_vertices(obj) -> np.ndarray:
    """float64 [V, 3] evaluated vertices of ``obj`` in world space (Blender axes) at the current frame."""
    coords, matrix = evaluated_coords(obj)
    return coords @ matrix[:3, :3].T + matrix[:3, 3]


def expected_world(vertices: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Head-space vertices [V, 3] moved by a head-space pose, then converted to Blender axes."""
    moved = vertices.astype(np.float64) @ pose[:3, :3].T.astype(np.float64) + pose[:3, 3]
    return np.stack([moved[:, 0], -moved[:, 2], moved[:, 1]], axis=1)


def test_every_frame_matches_the_sequence(scene, sequence_dir: Path) -> None:
    result = import_sequence(scene, sequence_dir, ImportOptions(frame_start=1))
    seq = read_sequence(sequence_dir)
    assert result.num_frames == 12 and result.num_shape_keys == 13
    errors = []
    for n in range(seq.num_frames):
        scene.frame_set(1 + n)
        errors.append(np.abs(world_vertices(result.object) - expected_world(seq.frame(n), seq.head_pose[n])).max())
    assert max(errors) <= TOLERANCE_M, errors


def test_shape_keys_switch_between_frames(scene, sequence_dir: Path) -> None:
    """CONSTANT interpolation: half-way between frames the head still shows the earlier frame."""
    result = import_sequence(scene, sequence_dir, ImportOptions(frame_start=1, head_motion=False))
    seq = read_sequence(sequence_dir)
    scene.frame_set(4, subframe=0.5)
    local = world_vertices(result.object)
    frame_3 = expected_world(seq.frame(3), np.eye(4))
    frame_4 = expected_world(seq.frame(4), np.eye(4))
    assert np.abs(frame_4 - frame_3).max() > 1e-3  # the test sequence really moves between these frames
    assert np.abs(local - frame_3).max() <= TOLERANCE_M


def test_keys_and_curves_are_built_as_specified(scene, sequence_dir: Path) -> None:
    result = import_sequence(scene, sequence_dir, ImportOptions(frame_start=10))
    key = result.object.data.shape_keys
    blocks = key.key_blocks
    assert blocks[0].name == "Basis" and blocks[1].name == "frame_0000" and blocks[-1].name == "frame_0011"
    assert all(block.value == 0.0 for block in blocks[1:])  # inactive until the animation says otherwise
    curves = {curve.data_path: curve for curve in curves_of(key)}
    assert len(curves) == 12
    first = curves['key_blocks["frame_0000"].value']
    assert [tuple(k.co) for k in first.keyframe_points] == [(10.0, 1.0), (11.0, 0.0)]
    middle = curves['key_blocks["frame_0005"].value']
    assert [tuple(k.co) for k in middle.keyframe_points] == [(14.0, 0.0), (15.0, 1.0), (16.0, 0.0)]
    assert {k.interpolation for curve in curves.values() for k in curve.keyframe_points} == {"CONSTANT"}
    # One take: the object's transform and the shape keys share an action (one clip for exporters).
    assert result.object.animation_data.action == key.animation_data.action
    transform = {(c.data_path, c.array_index) for c in curves_of(result.object)}
    assert ("rotation_quaternion", 3) in transform and ("location", 0) in transform
    assert result.object.rotation_mode == "QUATERNION"


def test_scene_timing(scene, sequence_dir: Path) -> None:
    scene.render.fps = 60
    import_sequence(scene, sequence_dir, ImportOptions(frame_start=5))
    assert (scene.render.fps, scene.render.fps_base) == (25, 1.0)
    assert (scene.frame_start, scene.frame_end) == (5, 16)


def test_material_world_and_audio(scene, sequence_dir: Path) -> None:
    result = import_sequence(scene, sequence_dir)
    material = result.object.data.materials[0]
    assert material == result.material
    nodes = material.node_tree.nodes
    base, orm = nodes["Base Color"], nodes["ORM"]
    assert base.image.colorspace_settings.name == "sRGB"
    assert orm.image.colorspace_settings.name == "Non-Color"
    bsdf = next(n for n in nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    links = {(l.from_node.name, l.from_socket.name, l.to_node.name, l.to_socket.name) for l in material.node_tree.links}
    assert ("Base Color", "Color", bsdf.name, "Base Color") in links
    assert ("Separate Color", "Green", bsdf.name, "Roughness") in links
    assert ("Separate Color", "Blue", bsdf.name, "Metallic") in links
    assert ("Separate Color", "Red", "glTF Material Output", "Occlusion") in links
    assert result.object.data.uv_layers.active is not None

    assert scene.world == result.world
    env = next(n for n in scene.world.node_tree.nodes if n.bl_idname == "ShaderNodeTexEnvironment")
    assert env.image.colorspace_settings.name == "Linear Rec.709"
    assert env.image.filepath.endswith("environment.hdr")

    strips = list(scene.sequence_editor.strips)
    assert len(strips) == 1 and strips[0].type == "SOUND" and strips[0].frame_start == 1
    assert Path(bpy.path.abspath(strips[0].sound.filepath)).name == "audio.wav"
    assert scene.use_audio_scrub


def test_options_leave_out_parts(scene, sequence_dir: Path) -> None:
    options = ImportOptions(textures=False, world=False, audio=False, head_motion=False, scene_timing=False)
    end = scene.frame_end
    result = import_sequence(scene, sequence_dir, options)
    assert result.material is None and result.world is None and result.sound is None
    assert scene.world is None and scene.frame_end == end
    assert result.object.animation_data is None  # no head motion: the object itself is not animated
    assert curves_of(result.object.data.shape_keys)


def test_frame_range_import(scene, sequence_dir: Path) -> None:
    result = import_sequence(scene, sequence_dir, ImportOptions(frames=(4, 8), frame_start=1))
    seq = read_sequence(sequence_dir)
    blocks = result.object.data.shape_keys.key_blocks
    assert [b.name for b in blocks[1:]] == ["frame_0004", "frame_0005", "frame_0006", "frame_0007"]
    scene.frame_set(2)
    assert np.abs(world_vertices(result.object) - expected_world(seq.frame(5), seq.head_pose[5])).max() <= TOLERANCE_M


def test_pca_rig_import(scene, sequence_dir: Path) -> None:
    result = import_sequence(scene, sequence_dir, ImportOptions(rig="pca", head_motion=False))
    seq = read_sequence(sequence_dir, load_rig=True)
    rig = seq.rig
    blocks = result.object.data.shape_keys.key_blocks
    assert len(blocks) == 1 + rig.num_targets
    for n in (0, 6, 11):
        scene.frame_set(1 + n)
        expected = rig.mean + np.einsum("k,kvc->vc", rig.weights[n], rig.targets)
        assert np.abs(world_vertices(result.object) - expected_world(expected, np.eye(4))).max() <= TOLERANCE_M


def test_invalid_folder_creates_nothing(scene, tmp_path: Path) -> None:
    before = (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.actions))
    with pytest.raises(SequenceFormatError):
        import_sequence(scene, tmp_path)
    assert (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.actions)) == before


def test_failure_midway_rolls_everything_back(scene, sequence_dir: Path, monkeypatch) -> None:
    """A failure after the mesh, keys and material exist must leave the file exactly as it was."""
    import_sequence(scene, sequence_dir, ImportOptions(audio=False))  # something of the user's to keep
    collections = ("objects", "meshes", "actions", "materials", "images", "worlds", "node_groups", "sounds")
    before = {name: set(getattr(bpy.data, name).keys()) for name in collections}
    scene.render.fps = 48
    settings_before = (48, scene.frame_start, scene.frame_end, scene.world)

    def broken_world(*args, **kwargs):
        raise RuntimeError("disk vanished while loading the HDR")

    monkeypatch.setattr(importer_mod, "build_world", broken_world)
    with pytest.raises(RuntimeError, match="disk vanished"):
        import_sequence(scene, sequence_dir, ImportOptions(frame_start=100))
    after = {name: set(getattr(bpy.data, name).keys()) for name in collections}
    assert after == before
    assert (scene.render.fps, scene.frame_start, scene.frame_end, scene.world) == settings_before
    assert len(scene.sequence_editor.strips) == 0 if scene.sequence_editor else True


def test_material_failure_leaves_no_images_behind(scene, sequence_dir: Path, monkeypatch) -> None:
    """The material build fails after both textures were loaded: the images go too."""
    from blender_addon.blender import material as material_mod

    def broken_group():
        raise RuntimeError("node group creation failed")

    monkeypatch.setattr(material_mod, "gltf_output_group", broken_group)
    with pytest.raises(RuntimeError, match="node group"):
        import_sequence(scene, sequence_dir)
    assert len(bpy.data.images) == 0 and len(bpy.data.materials) == 0 and len(bpy.data.meshes) == 0


def test_failure_after_linking_rolls_back(scene, sequence_dir: Path, monkeypatch) -> None:
    """The last step (the sound strip) failing still unlinks the object and restores world and timing."""
    objects_before = set(bpy.data.objects.keys())
    timing_before = (scene.render.fps, scene.render.fps_base, scene.frame_start, scene.frame_end)

    def broken_strip(*args, **kwargs):
        raise RuntimeError("sound system unavailable")

    monkeypatch.setattr(importer_mod.scene_mod, "add_sound_strip", broken_strip)
    with pytest.raises(RuntimeError, match="sound system"):
        import_sequence(scene, sequence_dir)
    assert set(bpy.data.objects.keys()) == objects_before
    assert len(scene.collection.objects) == 0
    assert scene.world is None and len(bpy.data.worlds) == 0
    assert (scene.render.fps, scene.render.fps_base, scene.frame_start, scene.frame_end) == timing_before


def test_import_is_fast_enough_for_the_ui(scene, tmp_path: Path) -> None:
    """200 frames × 5k vertices: well under a second (the benchmark covers 1000 × 30k)."""
    from blender_helpers import make_sequence
    from dyntet.formats.sequence import write_sequence

    seq = make_sequence(frames=200)
    reps = int(np.ceil(5000 / seq.num_vertices))
    vertices = np.concatenate([seq.vertices + 0.3 * i for i in range(reps)], axis=1)
    faces = np.concatenate([seq.faces + i * seq.num_vertices for i in range(reps)])
    seq.vertices, seq.faces = vertices.astype(np.float32), faces.astype(np.int32)
    seq.uv_faces = np.concatenate([seq.uv_faces + i * len(seq.uv) for i in range(reps)]).astype(np.int32)
    seq.uv = np.concatenate([seq.uv] * reps)
    seq.rig = None
    folder = write_sequence(tmp_path / "big", seq)
    result = import_sequence(scene, folder, ImportOptions(textures=False, world=False, audio=False))
    assert result.num_shape_keys == 201
    assert result.seconds < 3.0, result.seconds
