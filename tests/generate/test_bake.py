"""UV atlas, UV-space rasterisation, padding, and the baked asset against the neural rendering."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dyntet.generate.bake import (BakeConfig, UvAtlas, bake_textures, fill_from_nearest, laplacian_smooth,
                                  rasterize_attribute, uv_atlas, uv_clip_positions)
from dyntet.generate.textured import TexturedMesh, render_textured
from dyntet.model.dyntet import expression_windows
from dyntet.render.pbr import linear_to_srgb
from dyntet.render.texture import sample_texture
from dyntet.train.frames import FrameStore


def _cube() -> tuple[np.ndarray, np.ndarray]:
    """A closed unit cube: 8 vertices, 12 triangles, counter-clockwise from outside."""
    v = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], np.float32)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [[a, b, c] for a, b, c, d in quads] + [[a, c, d] for a, b, c, d in quads]
    return v, np.array(faces, np.int64)


def test_atlas_keeps_the_vertex_indexing_and_splits_only_corners():
    vertices, faces = _cube()
    atlas = uv_atlas(vertices, faces, size=64)
    assert atlas.uv.dtype == np.float32 and atlas.uv_faces.dtype == np.int32
    assert atlas.uv_faces.shape == faces.shape
    np.testing.assert_array_equal(atlas.vertex_of_uv[atlas.uv_faces], faces)
    assert len(atlas.uv) > len(vertices), "a closed cube cannot be unfolded without seams"
    assert atlas.uv.min() >= 0 and atlas.uv.max() <= 1


def test_laplacian_smoothing_flattens_a_spike_and_keeps_the_plane():
    # A fan of 6 triangles around a centre raised by 1 above the ring's plane.
    ring = [[np.cos(a), np.sin(a), 0.0] for a in np.linspace(0, 2 * np.pi, 7)[:-1]]
    vertices = np.array([[0.0, 0.0, 1.0], *ring], np.float32)
    faces = np.array([[0, 1 + i, 1 + (i + 1) % 6] for i in range(6)])
    once = laplacian_smooth(vertices, faces, 1)
    assert abs(once[0, 2] - 0.5) < 1e-6                      # ½·1 + ½·mean(ring z = 0)
    np.testing.assert_array_equal(laplacian_smooth(vertices, faces, 0), vertices)
    flat = vertices * [1, 1, 0]
    np.testing.assert_allclose(laplacian_smooth(flat, faces, 5)[:, 2], 0.0)


def test_uv_raster_rows_match_texture_sampling():
    """A texel rasterised at UV (u, v) is read back by sample_texture at (u, v): row 0 is v = 1."""
    uv = np.array([[0.05, 0.60], [0.95, 0.60], [0.05, 0.98]], np.float32)              # near the top edge
    atlas = UvAtlas(uv=uv, uv_faces=np.array([[0, 1, 2]], np.int32), vertex_of_uv=np.arange(3))
    attribute = torch.from_numpy(uv)                                                    # store UV itself
    size = 32
    image, covered = rasterize_attribute(atlas, attribute, size)
    rows = covered.any(1).nonzero().squeeze(1)
    assert rows.max() < size // 2, "a triangle at the top of UV space belongs in the top rows of the image"
    inside = torch.tensor([[0.2, 0.65], [0.3, 0.7], [0.1, 0.9]])
    np.testing.assert_allclose(sample_texture(image, inside, filter="nearest").numpy(), inside.numpy(),
                               atol=1.0 / size)
    clip = uv_clip_positions(attribute)
    np.testing.assert_allclose(clip[:, :2].numpy(), np.stack([2 * uv[:, 0] - 1, 1 - 2 * uv[:, 1]], 1))


def test_fill_from_nearest_pads_without_touching_charts():
    image = torch.zeros(5, 6, 2)
    covered = torch.zeros(5, 6, dtype=torch.bool)
    image[1, 1] = torch.tensor([1.0, 2.0])
    image[3, 4] = torch.tensor([5.0, 6.0])
    covered[1, 1] = covered[3, 4] = True
    out = fill_from_nearest(image, covered)
    assert torch.equal(out[1, 1], image[1, 1]) and torch.equal(out[3, 4], image[3, 4])
    assert torch.equal(out[0, 0], image[1, 1])       # nearest is (1, 1)
    assert torch.equal(out[4, 5], image[3, 4])       # nearest is (3, 4)
    assert torch.equal(fill_from_nearest(image, torch.zeros_like(covered)), torch.zeros_like(image))


def test_bake_config_validates():
    with pytest.raises(ValueError, match="texture size"):
        BakeConfig(size=10)
    with pytest.raises(ValueError, match="atlas_padding"):
        BakeConfig(atlas_padding=-1)
    with pytest.raises(ValueError, match="atlas_smoothing"):
        BakeConfig(atlas_smoothing=-2)


@pytest.fixture(scope="module")
def baked(loaded, geometry):
    atlas = uv_atlas(geometry.canonical.numpy(), geometry.faces_int32(), size=512)
    textures = bake_textures(loaded.model, geometry.canonical, atlas, BakeConfig(size=512))
    return atlas, textures


def test_baked_textures_are_complete_and_plausible(baked):
    atlas, textures = baked
    assert textures.base_color.shape == (512, 512, 3) and textures.base_color.dtype == np.uint8
    assert textures.orm.shape == (512, 512, 3) and textures.orm.dtype == np.uint8
    assert 0.2 < textures.coverage.mean() < 0.95
    # Padding reached every texel: no texel is left at the zero of an empty background.
    assert (textures.base_color.reshape(-1, 3).max(1) > 0).all()


def test_baked_asset_renders_like_the_neural_avatar(loaded, geometry, baked):
    """Head-region PSNR of (baked mesh: rasterizer + sample_texture + the same shading) vs the neural
    rendering (G queried per pixel), at 128² on train frames with their own expressions: >= 30 dB."""
    atlas, textures = baked
    model = loaded.model
    size = 128
    store = FrameStore(loaded.dataset, "train", size, torch.device("cpu"))
    mesh = TexturedMesh.from_arrays(geometry.faces, atlas.uv, atlas.uv_faces, textures.base_color, textures.orm)
    with torch.inference_mode():
        model.light.build()
        for position in (0, 11, 25):
            batch = store.batch(torch.tensor([position]))
            windows = expression_windows(store.expression, batch.frames, loaded.config.model.geometry.expression_window)
            meshes = geometry.meshes(windows)
            neural = model.render(meshes, windows, batch.poses, batch.intrinsics, size, batch.background)
            rgb, alpha = render_textured(mesh, meshes.vertices, model.light, batch.poses, batch.intrinsics, size,
                                         batch.background)
            region = ((neural.alpha[0] > 0.5) | (alpha[0] > 0.5))[..., 0]
            assert region.sum() > 500, "the head should cover a good part of the image"
            kd = neural.kd[0][neural.alpha[0, ..., 0] > 0.5]
            assert kd.std(0).min() > 0.05, "a flat albedo would make this comparison meaningless"
            a, b = linear_to_srgb(neural.rgb)[0][region], linear_to_srgb(rgb)[0][region]
            psnr = 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))
            assert psnr >= 30.0, f"frame {position}: baked vs neural head PSNR {psnr:.1f} dB"
