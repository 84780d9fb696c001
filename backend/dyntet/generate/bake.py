"""Bake the neural appearance into PBR textures on a UV atlas of the canonical mesh.

DynTet's appearance network G reads the *canonical* position x̄ of a surface point (Eq. 8), so a texture
laid out on the canonical mesh holds it exactly for every frame (at the mean expression ᾱ; G's weak
dependence on α is what an optional per-frame texture would add). Steps:

1. **Atlas**: xatlas cuts the canonical mesh into charts and packs them into the unit square. It splits
   vertices at chart seams; we keep our vertex indexing and store the split only as per-corner
   ``uv_faces`` (the sequence format: UV seams split corners, never vertices).
2. **Rasterise in UV space** with our rasterizer: clip position ``(2u − 1, 1 − 2v, 0, 1)``. The
   rasterizer puts NDC y = −1 on image row 0; with ``1 − 2v`` row 0 is v = 1, so the image comes out as
   a texture file is stored (row 0 = top, v up). Each covered texel gets the canonical position
   interpolated from its triangle's corners.
3. **Query G** at ᾱ on the covered texels → albedo kd (written sRGB) and ORM (linear; R occlusion,
   G roughness, B metalness — glTF's packing).
4. **Pad**: every texel outside the charts takes the value of the nearest chart texel, so bilinear
   filtering and mipmaps at chart borders never read an empty background (which shows as seam lines).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dyntet.model.dyntet import DynTet
from dyntet.progress import Progress, ProgressFn
from dyntet.render import raster
from dyntet.render.pbr import linear_to_srgb


@dataclass
class BakeConfig:
    """Texture baking settings."""

    size: int = 1024
    """Side of the square textures in texels (a power of two is kind to engines; 64..8192)."""
    atlas_padding: int = 2
    """Texels xatlas leaves between charts (at ``size``); bilinear filtering needs at least 1."""
    atlas_smoothing: int = 10
    """Laplacian smoothing passes on the copy of the mesh xatlas charts (see :func:`uv_atlas`); 0: none."""
    chunk: int = 1 << 16
    """Texels queried through G at once (bounds memory)."""

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or not 64 <= self.size <= 8192:
            raise ValueError(f"texture size must be an int in 64..8192 texels, got {self.size!r}")
        if not isinstance(self.atlas_padding, int) or self.atlas_padding < 0:
            raise ValueError(f"atlas_padding must be an int >= 0, got {self.atlas_padding!r}")
        if not isinstance(self.atlas_smoothing, int) or self.atlas_smoothing < 0:
            raise ValueError(f"atlas_smoothing must be an int >= 0, got {self.atlas_smoothing!r}")
        if self.chunk < 1:
            raise ValueError(f"chunk must be positive, got {self.chunk}")


@dataclass
class UvAtlas:
    """Texture coordinates of a mesh whose vertices are shared across seams.

    Attributes:
        uv: float32 [U, 2] coordinates in [0, 1], origin bottom-left (v up).
        uv_faces: int32 [F, 3] per-corner indices into ``uv``, in the order of the mesh's faces.
        vertex_of_uv: int64 [U] the mesh vertex each UV vertex belongs to
            (``vertex_of_uv[uv_faces] == faces``).
    """

    uv: np.ndarray
    uv_faces: np.ndarray
    vertex_of_uv: np.ndarray


@dataclass
class BakedTextures:
    """The baked maps, row 0 = top of the image (v = 1).

    Attributes:
        base_color: uint8 [S, S, 3] sRGB-encoded albedo.
        orm: uint8 [S, S, 3] linear occlusion, roughness, metalness.
        coverage: bool [S, S] texels whose centre lies on a chart (the rest is padding).
    """

    base_color: np.ndarray
    orm: np.ndarray
    coverage: np.ndarray


def uv_atlas(vertices: np.ndarray, faces: np.ndarray, size: int = 1024, padding: int = 2,
             smoothing: int = 10) -> UvAtlas:
    """A UV atlas of a triangle mesh with xatlas, keeping the mesh's vertex indexing.

    Marching-tets meshes carry a fine "staircase" of normals (each face's orientation follows its tet's
    cut), which xatlas reads as creases: on a head at r = 64 it makes ≈ 1900 charts, so only ≈ 30 % of
    the texels lie on the surface. Charting a copy smoothed by a few Laplacian passes (same topology,
    vertices moved about a grid cell) gives ≈ 70 charts and ≈ 55 % coverage (r = 128: 37 % → 43 % with
    10 passes, 52 % with 20); the UVs are a valid layout for the original mesh too (a flattening is
    injective whatever 3-D positions it is attached to), with slightly more stretch.

    Args:
        vertices: float [V, 3] positions (only shape matters to the charts: head space is fine).
        faces: int [F, 3] triangles.
        size: texture side the charts are packed for (xatlas aims the texel density at it).
        padding: texels between charts at that size.
        smoothing: Laplacian passes (uniform weights, step ½) on the charted copy; 0 charts the mesh as is.

    Returns:
        :class:`UvAtlas`; ``uv_faces`` follows the order of ``faces``.

    Raises:
        ValueError: empty or malformed input. RuntimeError: xatlas returned a layout that does not
            map back onto ``faces`` (e.g. it dropped degenerate triangles).
    """
    import xatlas  # only baking needs it

    vertices = np.ascontiguousarray(vertices, dtype=np.float32)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise ValueError(f"uv_atlas needs vertices [V, 3] and faces [F, 3] with F > 0, got "
                         f"{vertices.shape} and {faces.shape}")
    atlas = xatlas.Atlas()
    atlas.add_mesh(laplacian_smooth(vertices, faces, smoothing), np.ascontiguousarray(faces, dtype=np.uint32))
    pack = xatlas.PackOptions()
    pack.resolution = int(size)
    pack.padding = int(padding)
    pack.bilinear = True
    atlas.generate(xatlas.ChartOptions(), pack)
    if atlas.atlas_count != 1:
        raise RuntimeError(f"xatlas packed the charts into {atlas.atlas_count} atlases; expected one")
    vmapping, indices, uv = atlas[0]
    if indices.shape != faces.shape or not np.array_equal(vmapping[indices], faces):
        raise RuntimeError("xatlas changed the faces (degenerate triangles dropped or reordered); "
                           "cannot keep the mesh's vertex indexing")
    return UvAtlas(uv=np.ascontiguousarray(uv, dtype=np.float32),
                   uv_faces=np.ascontiguousarray(indices, dtype=np.int32),
                   vertex_of_uv=vmapping.astype(np.int64))


def laplacian_smooth(vertices: np.ndarray, faces: np.ndarray, passes: int) -> np.ndarray:
    """``passes`` steps of ``v ← ½ v + ½ mean(neighbours)`` (uniform weights): float32 [V, 3] → float32 [V, 3]."""
    out = np.asarray(vertices, np.float64)
    if passes <= 0:
        return np.ascontiguousarray(out, dtype=np.float32)
    from scipy.sparse import coo_matrix

    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).astype(np.int64)
    rows, cols = np.concatenate([edges[:, 0], edges[:, 1]]), np.concatenate([edges[:, 1], edges[:, 0]])
    adjacency = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(out), len(out))).tocsr()
    adjacency.data[:] = 1.0                                             # shared edges counted once
    degree = np.maximum(np.asarray(adjacency.sum(1)).ravel(), 1.0)[:, None]
    for _ in range(passes):
        out = 0.5 * out + 0.5 * (adjacency @ out) / degree
    return np.ascontiguousarray(out, dtype=np.float32)


def uv_clip_positions(uv: torch.Tensor) -> torch.Tensor:
    """Clip positions that rasterise UV space upright: float [U, 2] → float [U, 4] = (2u − 1, 1 − 2v, 0, 1)."""
    return torch.stack([2 * uv[:, 0] - 1, 1 - 2 * uv[:, 1], torch.zeros_like(uv[:, 0]), torch.ones_like(uv[:, 0])], -1)


def rasterize_attribute(atlas: UvAtlas, attribute: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolate a per-mesh-vertex attribute over the texture.

    Args:
        atlas: the UV layout.
        attribute: float [V, C] per mesh vertex.
        size: texture side S.

    Returns:
        ``(values float [S, S, C], covered bool [S, S])`` with row 0 = top (v = 1); values are 0 where
        no chart covers the texel centre.
    """
    device = attribute.device
    uv = torch.from_numpy(atlas.uv).to(device)
    tris = torch.from_numpy(atlas.uv_faces.astype(np.int64)).to(device)
    rast = raster.rasterize(uv_clip_positions(uv)[None], tris, (size, size))
    per_uv = attribute[torch.from_numpy(atlas.vertex_of_uv).to(device)]
    values = raster.interpolate(per_uv, rast, tris)[0]
    return values, rast[0, ..., 3] > 0


def fill_from_nearest(image: torch.Tensor, covered: torch.Tensor) -> torch.Tensor:
    """Give every uncovered texel the value of the nearest covered texel (Euclidean, in texels).

    Padding the whole texture this way (rather than a few rings) keeps bilinear filtering *and* the
    coarse mip levels engines build from the PNG free of background colour at chart borders.

    Args:
        image: float [H, W, C]; covered: bool [H, W].

    Returns:
        float [H, W, C]; covered texels unchanged. All zeros when nothing is covered.
    """
    from scipy.ndimage import distance_transform_edt

    if not bool(covered.any()):
        return torch.zeros_like(image)
    nearest = distance_transform_edt(~covered.cpu().numpy(), return_distances=False, return_indices=True)
    rows = torch.from_numpy(nearest[0]).to(image.device)
    cols = torch.from_numpy(nearest[1]).to(image.device)
    return image[rows, cols]


@torch.inference_mode()
def query_appearance(model: DynTet, canonical_points: torch.Tensor, chunk: int = 1 << 16
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """G at the mean expression: canonical head-space points float [N, 3] → (kd float [N, 3], orm float [N, 3])."""
    feature = model.geometry.expression_encoder(model.mean_window())                # [1, D]
    kd, orm = [], []
    for part in torch.split(canonical_points, chunk):
        k, o = model.appearance(model.head_to_grid(part) + 0.5, feature.expand(part.shape[0], -1))
        kd.append(k)
        orm.append(o)
    if not kd:
        empty = canonical_points.new_zeros(0, 3)
        return empty, empty
    return torch.cat(kd), torch.cat(orm)


def to_uint8(values: torch.Tensor) -> np.ndarray:
    """float [..., C] in [0, 1] → uint8 (rounded, clamped)."""
    return (values.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


@torch.inference_mode()
def bake_textures(model: DynTet, canonical: torch.Tensor, atlas: UvAtlas, config: BakeConfig | None = None,
                  progress: ProgressFn | None = None) -> BakedTextures:
    """Base-colour and ORM textures of the avatar at ᾱ on ``atlas``.

    Args:
        model: the trained avatar (G is queried).
        canonical: float [V, 3] canonical mesh vertices (head space) the atlas was made for.
        atlas: from :func:`uv_atlas` on the same mesh.
        config: :class:`BakeConfig`.
        progress: optional progress reports (stage ``"bake"``).

    Returns:
        :class:`BakedTextures`.
    """
    config = config or BakeConfig()
    size = config.size
    if atlas.vertex_of_uv.size and atlas.vertex_of_uv.max() >= canonical.shape[0]:
        raise ValueError(f"the atlas indexes {atlas.vertex_of_uv.max() + 1} vertices, "
                         f"the mesh has {canonical.shape[0]}")
    _report(progress, 0, 3, "rasterising the atlas")
    points, covered = rasterize_attribute(atlas, canonical.float(), size)
    _report(progress, 1, 3, f"querying G on {int(covered.sum())} texels")
    kd, orm = query_appearance(model, points[covered], config.chunk)
    maps = torch.zeros(size, size, 6, dtype=kd.dtype, device=kd.device)
    maps[covered] = torch.cat([linear_to_srgb(kd), orm], -1)
    _report(progress, 2, 3, "padding charts")
    maps = fill_from_nearest(maps, covered)
    _report(progress, 3, 3, "done")
    return BakedTextures(base_color=to_uint8(maps[..., :3]), orm=to_uint8(maps[..., 3:]),
                         coverage=covered.cpu().numpy())


def _report(progress: ProgressFn | None, step: int, total: int, message: str) -> None:
    if progress is not None:
        progress(Progress("bake", step, total, message))
