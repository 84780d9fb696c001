"""glTF binary export: parse our own output back, run the Khronos validator, re-import into Blender."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from dyntet.export.glb import accessor_array, read_glb
from dyntet.export.gltf import GltfConfig, write_glb
from dyntet.export.mesh import split_uv_seams
from dyntet.export.pca import PcaConfig
from dyntet.export.validate import ValidatorUnavailable, ensure_validator, missing_tools, validate_glb
from dyntet.formats.sequence import BlendShapeRig, Sequence


def parse(path: Path) -> tuple[dict, bytes]:
    return read_glb(path.read_bytes())


def frame_from_glb(doc: dict, binary: bytes, t: int) -> np.ndarray:
    """Positions of frame t as a viewer computes them: base + Σ weight(t) · target (split vertices)."""
    prim = doc["meshes"][0]["primitives"][0]
    base = accessor_array(doc, binary, prim["attributes"]["POSITION"]).astype(np.float64)
    anim = doc["animations"][0]
    sampler = next(anim["samplers"][c["sampler"]] for c in anim["channels"] if c["target"]["path"] == "weights")
    weights = accessor_array(doc, binary, sampler["output"]).reshape(-1, len(prim["targets"]))
    for k, target in enumerate(prim["targets"]):
        base += weights[t, k] * accessor_array(doc, binary, target["POSITION"])
    return base


@pytest.mark.parametrize("rig", ["per-frame", "pca"])
def test_structure_round_trip(tmp_path: Path, seq: Sequence, rig: str) -> None:
    report = write_glb(tmp_path / "a.glb", seq, GltfConfig(rig=rig, pca=PcaConfig(num_targets=4)))
    doc, binary = parse(report.path)
    assert report.size_bytes == report.path.stat().st_size
    split = split_uv_seams(seq.faces, seq.uv_faces)
    prim = doc["meshes"][0]["primitives"][0]
    counts = {name: doc["accessors"][i]["count"] for name, i in prim["attributes"].items()}
    assert counts == {"POSITION": split.num_vertices, "NORMAL": split.num_vertices,
                      "TEXCOORD_0": split.num_vertices}
    assert doc["accessors"][prim["indices"]]["count"] == 3 * seq.num_faces
    indices = accessor_array(doc, binary, prim["indices"]).reshape(-1, 3)
    np.testing.assert_array_equal(split.vertex[indices], seq.faces)       # same triangles, same winding
    uv = accessor_array(doc, binary, prim["attributes"]["TEXCOORD_0"])
    np.testing.assert_allclose(uv[:, 1], 1 - seq.uv[split.uv][:, 1], atol=1e-7)  # glTF v runs downwards
    expected_targets = seq.num_frames if rig == "per-frame" else 4
    assert len(prim["targets"]) == expected_targets == report.num_targets
    assert len(doc["meshes"][0]["extras"]["targetNames"]) == expected_targets
    for target in prim["targets"]:   # min/max present and equal to the data, as the spec requires
        acc = doc["accessors"][target["POSITION"]]
        data = accessor_array(doc, binary, target["POSITION"])
        assert acc["min"] == data.min(0).tolist() and acc["max"] == data.max(0).tolist()

    anim = doc["animations"][0]
    paths = sorted(c["target"]["path"] for c in anim["channels"])
    assert paths == ["rotation", "translation", "weights"]
    times = accessor_array(doc, binary, anim["samplers"][0]["input"])[:, 0]
    np.testing.assert_allclose(times, np.arange(seq.num_frames) / seq.fps, rtol=1e-6)
    assert {s["interpolation"] for s in anim["samplers"]} == {"STEP" if rig == "per-frame" else "LINEAR"}
    for t in (0, seq.num_frames - 1):
        expected = seq.vertices[t][split.vertex]
        tol = 1e-6 if rig == "per-frame" else 1e-3  # PCA: K=4 on a small head, sub-millimetre
        np.testing.assert_allclose(frame_from_glb(doc, binary, t), expected, atol=tol)

    rotation_sampler = next(anim["samplers"][c["sampler"]] for c in anim["channels"]
                            if c["target"]["path"] == "rotation")
    quats = accessor_array(doc, binary, rotation_sampler["output"]).astype(np.float64)
    x, y, z, w = quats.T   # rebuild the rotation matrices and compare with the head pose
    rot = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
                    2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                    2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], 1).reshape(-1, 3, 3)
    np.testing.assert_allclose(rot, seq.head_pose[:, :3, :3], atol=1e-5)


def test_material_uses_the_orm_texture_twice(tmp_path: Path, seq: Sequence) -> None:
    doc, binary = parse(write_glb(tmp_path / "a.glb", seq).path)
    material = doc["materials"][0]
    pbr = material["pbrMetallicRoughness"]
    assert material["occlusionTexture"]["index"] == pbr["metallicRoughnessTexture"]["index"]
    image = doc["images"][doc["textures"][pbr["baseColorTexture"]["index"]]["source"]]
    view = doc["bufferViews"][image["bufferView"]]
    png = binary[view["byteOffset"]:view["byteOffset"] + view["byteLength"]]
    from io import BytesIO

    from PIL import Image
    np.testing.assert_array_equal(np.asarray(Image.open(BytesIO(png))), seq.base_color)


def test_camera_node(tmp_path: Path, seq: Sequence) -> None:
    doc, _ = parse(write_glb(tmp_path / "a.glb", seq).path)
    camera = doc["cameras"][0]["perspective"]
    fx, fy, _, _ = seq.camera["intrinsics"]
    assert camera["yfov"] == pytest.approx(2 * np.arctan(seq.camera["size"] / (2 * fy)))
    assert camera["aspectRatio"] == pytest.approx(fy / fx)
    node = next(n for n in doc["nodes"] if "camera" in n)
    assert node["translation"] == pytest.approx(np.asarray(seq.camera["camera_to_scene"])[:3, 3].tolist())
    assert doc["scenes"][0]["extras"]["fps"] == seq.fps


def test_untextured_and_static_options(tmp_path: Path, seq: Sequence) -> None:
    seq.base_color = seq.orm = None
    seq.camera = None
    doc, _ = parse(write_glb(tmp_path / "a.glb", seq, GltfConfig(animate_head_pose=False)).path)
    assert "images" not in doc and "textures" not in doc and "cameras" not in doc
    assert doc["materials"][0]["pbrMetallicRoughness"]["metallicFactor"] == 0.0
    assert [c["target"]["path"] for c in doc["animations"][0]["channels"]] == ["weights"]


@pytest.mark.parametrize("rig", ["per-frame", "pca"])
def test_nan_frames_are_named(tmp_path: Path, seq: Sequence, rig: str) -> None:
    seq.vertices[3, 7] = np.nan  # read_sequence does not scan every value; the exporter must
    with pytest.raises(ValueError, match="frame 3 of the sequence has NaN|NaN or infinite"):
        write_glb(tmp_path / "a.glb", seq, GltfConfig(rig=rig))
    assert not list(tmp_path.iterdir())


def test_stored_rig_is_reused(tmp_path: Path, seq: Sequence) -> None:
    mean = seq.vertices.mean(0)
    targets = (seq.vertices[:2] - mean).astype(np.float32)
    weights = np.zeros((seq.num_frames, 2), np.float32)
    weights[0, 0] = weights[1, 1] = 1
    seq.rig = BlendShapeRig(mean=mean, targets=targets, weights=weights)
    report = write_glb(tmp_path / "a.glb", seq, GltfConfig(rig="pca"))
    assert report.num_targets == 2
    doc, binary = parse(report.path)
    split = split_uv_seams(seq.faces, seq.uv_faces)
    np.testing.assert_allclose(frame_from_glb(doc, binary, 1), seq.vertices[1][split.vertex], atol=1e-6)


@pytest.fixture(scope="module")
def validator() -> None:
    reason = missing_tools()
    if reason:
        pytest.skip(f"Khronos glTF Validator cannot run: {reason}")
    try:
        ensure_validator()
    except ValidatorUnavailable as exc:  # node and npm exist, so this is a real failure (e.g. offline)
        pytest.fail(f"could not install the glTF validator: {exc}")


@pytest.mark.parametrize("rig, morph_normals",
                         [("per-frame", False), ("pca", False), ("per-frame", True), ("pca", True)])
def test_khronos_validator_reports_no_errors(tmp_path: Path, make_seq, validator, rig: str,
                                             morph_normals: bool) -> None:
    seq = make_seq(num_frames=12)
    report = write_glb(tmp_path / "a.glb", seq, GltfConfig(rig=rig, morph_normals=morph_normals))
    result = validate_glb(report.path)
    assert result.num_errors == 0, result.summary()
    assert result.num_warnings == 0, result.summary()
    info = result.raw["info"]
    assert info["hasMorphTargets"] and info["animationCount"] == 1 and info["hasTextures"]


def test_validator_catches_a_broken_file(tmp_path: Path, seq: Sequence, validator) -> None:
    """The validator run is not a rubber stamp: a POSITION min/max that disagrees with the data is an error."""
    doc, binary = parse(write_glb(tmp_path / "a.glb", seq).path)
    position = doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]
    doc["accessors"][position]["min"] = [0.0, 0.0, 0.0]
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    chunks = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(binary), 0x004E4942) + binary
    (tmp_path / "b.glb").write_bytes(struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks)
    result = validate_glb(tmp_path / "b.glb")
    assert result.num_errors > 0
    assert "ACCESSOR_MIN_MISMATCH" in {m["code"] for m in result.of_severity(0)}


def test_blender_reimport_keeps_morph_targets_and_animation(tmp_path: Path, make_seq, blender) -> None:
    bpy = blender
    seq = make_seq(num_frames=5)
    path = write_glb(tmp_path / "a.glb", seq).path
    existing = set(bpy.data.objects)
    bpy.context.scene.render.fps = int(seq.fps)
    assert bpy.ops.import_scene.gltf(filepath=str(path)) == {"FINISHED"}
    obj = next(o for o in set(bpy.data.objects) - existing if o.type == "MESH")
    keys = obj.data.shape_keys.key_blocks
    assert [k.name for k in keys] == ["Basis"] + [f"frame_{t:06d}" for t in range(seq.num_frames)]
    assert len(obj.data.polygons) == seq.num_faces
    from bpy_extras import anim_utils
    anim = obj.data.shape_keys.animation_data
    bag = anim_utils.action_get_channelbag_for_slot(anim.action, anim.action_slot)
    assert len(bag.fcurves) == seq.num_frames
    curve = bag.fcurves.find('key_blocks["frame_000002"].value')
    assert [tuple(np.round(k.co, 4)) for k in curve.keyframe_points][:4] == [(0, 0), (1, 0), (2, 1), (3, 0)]
    assert {k.interpolation for k in curve.keyframe_points} == {"CONSTANT"}
    # Evaluate frame 3 in Blender and compare with the sequence (Blender is Z-up: (x, y, z) → (x, −z, y)).
    bpy.context.scene.frame_set(3)
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
    co = np.empty(len(evaluated.vertices) * 3)
    evaluated.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    head_space = np.stack([co[:, 0], co[:, 2], -co[:, 1]], 1)
    want = seq.vertices[3]
    # Blender may merge or reorder split vertices: compare as point sets (nearest neighbour distance).
    d = np.linalg.norm(head_space[:, None] - want[None], axis=-1).min(1)
    assert d.max() < 1e-5
    assert obj.animation_data is not None and obj.animation_data.action is not None  # head pose


def test_large_mesh_uses_32_bit_indices(tmp_path: Path, validator) -> None:
    from dyntet.export.synthetic import SyntheticHeadConfig, synthetic_sequence

    seq = synthetic_sequence(SyntheticHeadConfig(num_frames=2, rings=200, segments=340, texture_size=0,
                                                 environment_height=0, muscles=0))
    report = write_glb(tmp_path / "big.glb", seq)
    assert report.num_vertices > 0xFFFF
    doc, binary = parse(report.path)
    prim = doc["meshes"][0]["primitives"][0]
    assert doc["accessors"][prim["indices"]]["componentType"] == 5125  # UNSIGNED_INT
    split = split_uv_seams(seq.faces, seq.uv_faces)
    np.testing.assert_array_equal(split.vertex[accessor_array(doc, binary, prim["indices"]).reshape(-1, 3)],
                                  seq.faces)
    result = validate_glb(report.path)
    assert result.num_errors == 0 and result.num_warnings == 0, result.summary()
