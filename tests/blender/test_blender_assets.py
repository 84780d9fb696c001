"""Assets that travel: replace on re-import, packed subject-named textures, the tracked camera."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_addon.blender.importer import ImportOptions, import_sequence  # noqa: E402
from blender_addon.io.camera import camera_settings, project  # noqa: E402
from blender_helpers import make_sequence  # noqa: E402
from dyntet.formats.sequence import write_sequence  # noqa: E402
from dyntet_formats.errors import FormatError  # noqa: E402

CAMERA_TO_SCENE = [[0.9950042, 0.0, 0.0998334, 0.06], [0.0, 1.0, 0.0, 0.01], [-0.0998334, 0.0, 0.9950042, 0.6],
                   [0.0, 0.0, 0.0, 1.0]]
"""0.6 m in front of the head (+Z), turned 0.1 rad about Y, a little off to the side and up."""
INTRINSICS = [420.0, 400.0, 120.0, 141.0]
SIZE = 256


def _write(path: Path, seed: int = 0) -> Path:
    camera = {"intrinsics": INTRINSICS, "size": SIZE, "camera_to_scene": CAMERA_TO_SCENE}
    return write_sequence(path, dataclasses.replace(make_sequence(seed=seed), camera=camera))


@pytest.fixture(scope="module")
def subjects(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("subjects")
    return _write(root / "alice", 0), _write(root / "bob", 1)


def _counts() -> dict[str, int]:
    return {name: len(getattr(bpy.data, name))
            for name in ("objects", "meshes", "materials", "worlds", "actions", "images", "cameras", "sounds")}


def test_second_import_duplicates_without_replace(scene, subjects) -> None:
    alice, _ = subjects
    import_sequence(scene, alice)
    once = _counts()
    import_sequence(scene, alice)
    assert _counts()["objects"] == 2 * once["objects"] and _counts()["materials"] == 2


def test_replace_leaves_one_of_each(scene, subjects) -> None:
    alice, _ = subjects
    first = import_sequence(scene, alice, ImportOptions(pack_textures=True))
    once = _counts()
    names = sorted(o.name for o in bpy.data.objects)
    second = import_sequence(scene, alice, ImportOptions(pack_textures=True, replace=True))
    assert second.replaced > 0
    assert _counts() == once, (once, _counts())
    assert sorted(o.name for o in bpy.data.objects) == names == ["alice", "alice_camera"]
    assert [m.name for m in bpy.data.materials] == ["alice_material"]
    assert [w.name for w in bpy.data.worlds] == ["alice_light"] and scene.world == second.world
    assert [a.name for a in bpy.data.actions] == ["alice_performance"]
    assert len(scene.sequence_editor.strips) == 1 and scene.camera == second.camera
    with pytest.raises(ReferenceError):
        first.object.name  # noqa: B018  (the earlier head is gone, not renamed)


def test_replace_keeps_other_subjects_and_a_failed_import_keeps_the_old_head(scene, subjects, monkeypatch) -> None:
    alice, bob = subjects
    import_sequence(scene, alice)
    import_sequence(scene, bob)
    import_sequence(scene, alice, ImportOptions(replace=True))
    assert sorted(o.name for o in bpy.data.objects if o.type == "MESH") == ["alice", "bob"]

    from blender_addon.blender import importer

    def broken(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(importer, "build_world", broken)
    before = _counts()
    with pytest.raises(RuntimeError, match="simulated"):
        import_sequence(scene, alice, ImportOptions(replace=True))
    assert _counts() == before and bpy.data.objects.get("alice") is not None


def test_textures_are_named_after_the_subject_and_packed_on_request(scene, subjects, tmp_path: Path) -> None:
    alice, bob = subjects
    import_sequence(scene, alice, ImportOptions(pack_textures=True))
    import_sequence(scene, bob)
    images = {image.name: image for image in bpy.data.images}
    assert {"alice_base_color.png", "alice_orm.png", "alice_environment.hdr",
            "bob_base_color.png", "bob_orm.png", "bob_environment.hdr"} <= set(images)
    for name in ("alice_base_color.png", "alice_orm.png", "alice_environment.hdr"):
        assert images[name].packed_file is not None and images[name].filepath == f"//textures/{name}"
    assert images["bob_base_color.png"].packed_file is None  # not asked: still read from the sequence folder
    assert images["alice_orm.png"].colorspace_settings.name == "Non-Color"

    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    orm = bpy.data.images["alice_orm.png"]
    assert orm.packed_file is not None and orm.size[:] == (16, 16)
    pixels = np.empty(16 * 16 * 4, np.float32)
    orm.pixels.foreach_get(pixels)
    assert np.allclose(pixels.reshape(-1, 4)[:, :3].mean(axis=0), [1.0, 128 / 255, 0.0], atol=1e-3)
    bpy.ops.file.unpack_all(method="WRITE_LOCAL")
    assert (tmp_path / "textures" / "alice_base_color.png").is_file()
    assert (tmp_path / "textures" / "bob_base_color.png").exists() is False


def test_camera_settings_match_the_intrinsics() -> None:
    settings = camera_settings({"intrinsics": INTRINSICS, "size": SIZE, "camera_to_scene": CAMERA_TO_SCENE})
    fx, fy, cx, cy = INTRINSICS
    assert settings.sensor_fit == "HORIZONTAL" and settings.resolution == (SIZE, SIZE)
    assert settings.lens_mm == pytest.approx(fx / SIZE * 36.0)  # 59.0625 mm on a 36 mm sensor
    assert settings.pixel_aspect == pytest.approx((1.0, fx / fy))
    # Blender measures the vertical shift in x pixels; a y pixel is fx/fy of one here.
    assert (settings.shift_x, settings.shift_y) == pytest.approx(((SIZE / 2 - cx) / SIZE, (cy - SIZE / 2) / SIZE * fx / fy))
    with pytest.raises(FormatError, match="positive"):
        camera_settings({"intrinsics": [0, 1, 0, 0], "size": SIZE, "camera_to_scene": CAMERA_TO_SCENE})


def _pinhole(points_scene_yup: np.ndarray, intrinsics: list[float]) -> np.ndarray:
    """Pixels of head-space points through the manifest camera, straight from the intrinsics."""
    fx, fy, cx, cy = intrinsics
    to_camera = np.linalg.inv(np.asarray(CAMERA_TO_SCENE))
    local = (to_camera @ np.c_[points_scene_yup, np.ones(len(points_scene_yup))].T).T
    depth = -local[:, 2]
    return np.stack([cx + fx * local[:, 0] / depth, cy - fy * local[:, 1] / depth], axis=1)


@pytest.mark.parametrize("intrinsics", [INTRINSICS, [380.0, 410.0, 140.0, 110.0]], ids=["fx>fy", "fy>fx"])
def test_tracked_camera_sees_what_the_intrinsics_see(scene, tmp_path: Path, intrinsics: list[float]) -> None:
    """Blender's own projection (``world_to_camera_view``) of the imported camera against the pinhole model."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    camera = {"intrinsics": intrinsics, "size": SIZE, "camera_to_scene": CAMERA_TO_SCENE}
    folder = write_sequence(tmp_path / "cam", dataclasses.replace(make_sequence(frames=2), camera=camera))
    result = import_sequence(scene, folder)
    assert scene.camera == result.camera and result.camera.type == "CAMERA"
    assert (scene.render.resolution_x, scene.render.resolution_y) == (SIZE, SIZE)
    assert result.camera.data.sensor_fit == "HORIZONTAL"
    assert result.camera.data.lens == pytest.approx(intrinsics[0] / SIZE * result.camera.data.sensor_width, rel=1e-6)

    points = np.random.default_rng(3).uniform(-0.1, 0.1, (20, 3))  # around the head, head space (+Y up)
    expected = _pinhole(points, intrinsics)
    blender_points = np.stack([points[:, 0], -points[:, 2], points[:, 1]], axis=1)
    seen = np.array([world_to_camera_view(scene, result.camera, Vector(p))[:2] for p in blender_points])
    pixels = np.stack([seen[:, 0] * SIZE, (1.0 - seen[:, 1]) * SIZE], axis=1)  # Blender's origin is bottom-left
    assert np.abs(pixels - expected).max() < 1e-3, np.abs(pixels - expected).max()
    assert np.abs(project(camera_settings(camera), blender_points) - expected).max() < 1e-6


def test_camera_option_off_leaves_the_render_settings(scene, subjects) -> None:
    alice, _ = subjects
    scene.render.resolution_x = 1920
    result = import_sequence(scene, alice, ImportOptions(camera=False))
    assert result.camera is None and scene.camera is None and scene.render.resolution_x == 1920
