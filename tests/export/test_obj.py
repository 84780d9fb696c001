"""Per-frame OBJ export: parse the files back; Blender reads the PBR material."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dyntet.export.obj import ObjConfig, write_obj_sequence
from dyntet.formats.sequence import Sequence


def parse_obj(path: Path) -> dict[str, np.ndarray | list[str]]:
    rows: dict[str, list] = {"v": [], "vt": [], "vn": [], "f": [], "mtllib": [], "usemtl": []}
    for line in path.read_text().splitlines():
        tag, _, rest = line.partition(" ")
        if tag in ("v", "vt", "vn"):
            rows[tag].append([float(x) for x in rest.split()])
        elif tag == "f":
            rows["f"].append([[int(i) for i in corner.split("/")] for corner in rest.split()])
        elif tag in ("mtllib", "usemtl"):
            rows[tag].append(rest)
    return {k: (np.array(v) if k in ("v", "vt", "vn", "f") else v) for k, v in rows.items()}


def posed(seq: Sequence, t: int) -> np.ndarray:
    pose = seq.head_pose[t].astype(np.float64)
    return seq.vertices[t].astype(np.float64) @ pose[:3, :3].T + pose[:3, 3]


def test_frames_parse_back(tmp_path: Path, seq: Sequence) -> None:
    paths = write_obj_sequence(tmp_path / "obj", seq)
    assert [p.name for p in paths] == [f"frame_{t:06d}.obj" for t in range(seq.num_frames)]
    for t in (0, seq.num_frames - 1):
        obj = parse_obj(paths[t])
        assert obj["mtllib"] == ["head.mtl"] and obj["usemtl"] == ["DynTetHead"]
        np.testing.assert_allclose(obj["v"], posed(seq, t), atol=6e-7)   # 6 decimals
        np.testing.assert_allclose(obj["vt"], seq.uv, atol=6e-7)
        np.testing.assert_allclose(np.linalg.norm(obj["vn"], axis=1), 1, atol=1e-5)
        faces = obj["f"] - 1  # [F, 3 corners, (v, vt, vn)]
        np.testing.assert_array_equal(faces[..., 0], seq.faces)
        np.testing.assert_array_equal(faces[..., 1], seq.uv_faces)
        np.testing.assert_array_equal(faces[..., 2], seq.faces)
    mtl = (tmp_path / "obj" / "head.mtl").read_text()
    for line in mtl.splitlines():
        if line.startswith("map_"):
            assert (tmp_path / "obj" / line.split()[1]).is_file(), line
    assert "map_Pr textures/roughness.png" in mtl and "map_Pm textures/metallic.png" in mtl
    from PIL import Image
    rough = np.asarray(Image.open(tmp_path / "obj" / "textures" / "roughness.png"))
    np.testing.assert_array_equal(rough, seq.orm[..., 1])


def test_head_space_option_and_no_textures(tmp_path: Path, seq: Sequence) -> None:
    paths = write_obj_sequence(tmp_path / "obj", seq,
                               ObjConfig(apply_head_pose=False, normals=False, textures=False))
    obj = parse_obj(paths[2])
    np.testing.assert_allclose(obj["v"], seq.vertices[2], atol=6e-7)
    assert len(obj["vn"]) == 0 and obj["f"].shape == (seq.num_faces, 3, 2)
    assert not (tmp_path / "obj" / "textures").exists()
    assert "map_" not in (tmp_path / "obj" / "head.mtl").read_text()


def test_refuses_a_non_empty_folder(tmp_path: Path, seq: Sequence) -> None:
    (tmp_path / "obj").mkdir()
    (tmp_path / "obj" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        write_obj_sequence(tmp_path / "obj", seq)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obj"]


def test_nan_frame_fails_and_leaves_nothing(tmp_path: Path, seq: Sequence) -> None:
    seq.vertices[4, 0, 1] = np.inf
    with pytest.raises(ValueError, match="frame 4 of the sequence"):
        write_obj_sequence(tmp_path / "obj", seq)
    assert not list(tmp_path.iterdir())


def test_blender_reads_the_pbr_material(tmp_path: Path, make_seq, blender) -> None:
    bpy = blender
    seq = make_seq(num_frames=1)
    path = write_obj_sequence(tmp_path / "obj", seq)[0]
    existing = set(bpy.data.objects)
    assert bpy.ops.wm.obj_import(filepath=str(path)) == {"FINISHED"}
    (obj,) = set(bpy.data.objects) - existing
    assert len(obj.data.polygons) == seq.num_faces and len(obj.data.vertices) == seq.num_vertices
    bsdf = next(n for n in obj.active_material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    linked = {i.name: i.links[0].from_node.image.name for i in bsdf.inputs if i.is_linked}
    assert linked == {"Base Color": "base_color.png", "Metallic": "metallic.png", "Roughness": "roughness.png"}
