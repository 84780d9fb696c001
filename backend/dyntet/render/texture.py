"""Differentiable texture lookups: 2-D textures with OpenGL/Blender UVs and OpenGL-convention cube maps.

**2-D textures.** A texture is an image array ``[H, W, C]`` whose row 0 is the *top* of the picture
(how PNGs load). UV coordinates follow OpenGL, Blender, OBJ and our sequence folder: ``u`` runs left to
right and ``v`` runs **bottom to top**, both over [0, 1] across the whole image. So texel ``(row i,
column j)`` has its centre at ``u = (j + 0.5) / W``, ``v = 1 − (i + 0.5) / H``; ``v = 0`` is the bottom
edge of the last row. (glTF's ``v`` runs top to bottom: convert with ``v_gltf = 1 − v``.)

**Cube maps.** ``cube`` is float ``[6, R, R, C]`` with faces ordered +X, −X, +Y, −Y, +Z, −Z and the
texel layout of OpenGL's cube-map specification (the RenderMan convention). For a direction ``r`` the
face is the axis of largest ``|r|`` (ties broken x, then y, then z), and with ``ma`` that component

======  =========  =========
face    s_c        t_c
======  =========  =========
+X      −r_z       −r_y
−X      +r_z       −r_y
+Y      +r_x       +r_z
−Y      +r_x       −r_z
+Z      +r_x       −r_y
−Z      −r_x       −r_y
======  =========  =========

``s = (s_c / |ma| + 1) / 2`` runs along a face's columns and ``t = (t_c / |ma| + 1) / 2`` along its rows
(row 0 at t = 0). So on the side faces row 0 is the +Y edge ("up"), and a face seen from inside the cube
is mirrored left–right, exactly as on a GPU. Bilinear filtering stays inside the face a direction falls
on: the half texel along each face edge is clamped rather than blended with the neighbouring face.
That leaves faint seams at coarse resolutions; the light's prefilter, which averages many directions
around each texel, smooths them out of the maps used for shading.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch

Filter = Literal["nearest", "bilinear"]
Wrap = Literal["clamp", "repeat"]

CUBE_FACES = ("+X", "-X", "+Y", "-Y", "+Z", "-Z")
"""Names of the cube faces in storage order."""


def sample_texture(tex: torch.Tensor, uv: torch.Tensor, filter: Filter = "bilinear",
                   wrap: Wrap = "clamp") -> torch.Tensor:
    """Sample a 2-D texture at UV coordinates (origin bottom-left, see the module docstring).

    Args:
        tex: float [H, W, C] (one texture for all lookups) or [B, H, W, C] (one per batch item).
        uv: float [..., 2] for an unbatched texture, or [B, ..., 2] for a batched one; (u, v) with
            (0, 0) the bottom-left corner and (1, 1) the top-right corner of the image.
        filter: 'bilinear' (blend the four nearest texel centres) or 'nearest'.
        wrap: 'clamp' (beyond the edges repeat the edge texel) or 'repeat' (tile; bilinear blends across
            the seam).

    Returns:
        float [..., C] (or [B, ..., C]), differentiable w.r.t. ``tex`` and (bilinear only) ``uv``.
    """
    if filter not in ("nearest", "bilinear"):
        raise ValueError(f"filter must be 'nearest' or 'bilinear', got {filter!r}")
    if wrap not in ("clamp", "repeat"):
        raise ValueError(f"wrap must be 'clamp' or 'repeat', got {wrap!r}")
    if tex.ndim not in (3, 4):
        raise ValueError(f"tex must be [H, W, C] or [B, H, W, C], got shape {tuple(tex.shape)}")
    if uv.shape[-1] != 2:
        raise ValueError(f"uv must end in 2 values (u, v), got shape {tuple(uv.shape)}")
    batched = tex.ndim == 4
    if batched and (uv.ndim < 2 or uv.shape[0] != tex.shape[0]):
        raise ValueError(f"a batched texture {tuple(tex.shape)} needs uv [B, ..., 2] with the same B, "
                         f"got {tuple(uv.shape)}")
    tex4 = tex if batched else tex[None]
    batch, height, width = tex4.shape[:3]
    uv_flat = uv.reshape(batch, -1, 2).to(tex.dtype)
    x = uv_flat[..., 0] * width
    y = (1.0 - uv_flat[..., 1]) * height
    out = _sample_texels(tex4, x, y, filter, wrap)
    return out.reshape(*uv.shape[:-1], tex.shape[-1])


def _sample_texels(tex: torch.Tensor, x: torch.Tensor, y: torch.Tensor, filter: Filter, wrap: Wrap) -> torch.Tensor:
    """tex float [B, H, W, C]; x, y float [B, M] in texel units (texel (i, j) centred at (j + ½, i + ½),
    y down) → float [B, M, C]."""
    batch, height, width, channels = tex.shape
    flat = tex.reshape(batch * height * width, channels)
    base = (torch.arange(batch, device=tex.device) * (height * width))[:, None]

    def fix(i: torch.Tensor, size: int) -> torch.Tensor:
        return i.remainder(size) if wrap == "repeat" else i.clamp(0, size - 1)

    def fetch(xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        index = base + fix(yi, height) * width + fix(xi, width)
        return flat.index_select(0, index.reshape(-1)).reshape(batch, -1, channels)

    if filter == "nearest":
        return fetch(x.floor().long(), y.floor().long())
    xs, ys = x - 0.5, y - 0.5
    x0, y0 = xs.detach().floor(), ys.detach().floor()
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    x0, y0 = x0.long(), y0.long()
    top = fetch(x0, y0) * (1 - fx) + fetch(x0 + 1, y0) * fx
    bottom = fetch(x0, y0 + 1) * (1 - fx) + fetch(x0 + 1, y0 + 1) * fx
    return top * (1 - fy) + bottom * fy


# -- cube maps ------------------------------------------------------------------------------------


def cube_to_dirs(resolution: int, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Unit direction through the centre of every cube-map texel.

    Returns:
        float [6, R, R, 3]; ``dirs[f, i, j]`` is the direction of face f (order +X, −X, +Y, −Y, +Z, −Z),
        row i, column j, following the table in the module docstring.
    """
    if not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"cube resolution must be a positive int, got {resolution!r}")
    centres = (torch.arange(resolution, device=device, dtype=dtype) + 0.5) / resolution * 2 - 1
    tc, sc = torch.meshgrid(centres, centres, indexing="ij")   # rows follow t, columns follow s
    one = torch.ones_like(sc)
    faces = [
        (one, -tc, -sc),    # +X
        (-one, -tc, sc),    # -X
        (sc, one, tc),      # +Y
        (sc, -one, -tc),    # -Y
        (sc, -tc, one),     # +Z
        (-sc, -tc, -one),   # -Z
    ]
    dirs = torch.stack([torch.stack(f, dim=-1) for f in faces])
    return torch.nn.functional.normalize(dirs, dim=-1)


def cube_texel_solid_angles(resolution: int, device: torch.device | str | None = None,
                            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Exact solid angle of every cube-map texel (they sum to 4π): float [6, R, R], same on every face.

    Uses the closed form Ω = Σ ±atan2(x·y, √(x² + y² + 1)) over the texel's corners on the unit-distance
    face plane; corner texels subtend about a fifth of a centre texel.
    """
    edges = torch.linspace(-1.0, 1.0, resolution + 1, device=device, dtype=torch.float64)
    a, b = torch.meshgrid(edges, edges, indexing="ij")
    area = torch.atan2(a * b, torch.sqrt(a * a + b * b + 1))
    omega = area[1:, 1:] - area[1:, :-1] - area[:-1, 1:] + area[:-1, :-1]
    return omega.to(dtype).expand(6, resolution, resolution)


def dirs_to_cube_coords(dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Directions float [..., 3] (need not be unit, must be non-zero) → (face long [...], s [...], t [...]),
    s and t in [0, 1] per the OpenGL table in the module docstring."""
    x, y, z = dirs.unbind(-1)
    ax, ay, az = x.abs(), y.abs(), z.abs()
    on_x = (ax >= ay) & (ax >= az)
    on_y = ~on_x & (ay >= az)
    on_z = ~on_x & ~on_y
    face = torch.where(on_x, (x < 0).long(), torch.where(on_y, 2 + (y < 0).long(), 4 + (z < 0).long()))
    ma = torch.where(on_x, ax, torch.where(on_y, ay, az)).clamp_min(1e-12)
    sign = {axis: torch.where(v < 0, -1.0, 1.0).to(dirs.dtype) for axis, v in (("x", x), ("y", y), ("z", z))}
    sc = torch.where(on_x, -sign["x"] * z, torch.where(on_y, x, sign["z"] * x))
    tc = torch.where(on_x, -y, torch.where(on_y, sign["y"] * z, -y))
    return face, 0.5 * (sc / ma + 1), 0.5 * (tc / ma + 1)


def sample_cube(cube: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Bilinear cube-map lookup.

    Args:
        cube: float [6, R, R, C] (faces +X, −X, +Y, −Y, +Z, −Z; OpenGL layout, see the module docstring).
        dirs: float [..., 3] non-zero directions (need not be unit).

    Returns:
        float [..., C], differentiable w.r.t. ``cube`` and ``dirs``. Filtering is clamped at face edges.
    """
    _check_cube(cube)
    index, weight = cube_taps(cube.shape[1], dirs.to(cube.dtype))
    values = cube.reshape(-1, cube.shape[-1]).index_select(0, index.reshape(-1))
    values = values.reshape(*index.shape, cube.shape[-1])
    return (values * weight[..., None]).sum(dim=-2)


def cube_taps(resolution: int, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The four texels and bilinear weights a cube-map lookup blends — the linear map behind :func:`sample_cube`.

    Args:
        resolution: R, the cube's face side.
        dirs: float [..., 3] non-zero directions.

    Returns:
        index long [..., 4] into the flattened cube ``[6 · R · R]`` (face-major, then row, then column) and
        weight float [..., 4] (sums to 1; differentiable w.r.t. dirs). Weights never reach across a face edge.
    """
    if dirs.shape[-1] != 3:
        raise ValueError(f"dirs must end in 3 values, got shape {tuple(dirs.shape)}")
    res = resolution
    face, s, t = dirs_to_cube_coords(dirs)
    half = 0.5 if res > 1 else 0.0
    x = (s * res).clamp(half, res - half) - 0.5          # keep the bilinear footprint inside the face
    y = (t * res).clamp(half, res - half) - 0.5
    x0, y0 = x.detach().floor(), y.detach().floor()
    fx, fy = x - x0, y - y0
    x0 = x0.long().clamp(0, res - 1)
    y0 = y0.long().clamp(0, res - 1)
    x1, y1 = (x0 + 1).clamp(max=res - 1), (y0 + 1).clamp(max=res - 1)
    base = face * (res * res)
    index = torch.stack([base + y0 * res + x0, base + y0 * res + x1, base + y1 * res + x0, base + y1 * res + x1], -1)
    weight = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], -1)
    return index, weight


def sample_cube_mip(mips: Sequence[torch.Tensor], dirs: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """Cube-map lookup blended linearly between mip levels ("trilinear" across a chain).

    Args:
        mips: list of float [6, R_l, R_l, C] cube maps, level 0 first (resolutions may differ freely).
        dirs: float [..., 3] non-zero directions.
        level: float [...] (same leading shape as dirs), continuous level; clamped to [0, len(mips) − 1].

    Returns:
        float [..., C]; ``level = l + a`` gives ``(1 − a) · mips[l] + a · mips[l + 1]``. Each point is
        looked up only in the (at most two) levels it needs; differentiable w.r.t. mips, dirs and level.
    """
    if len(mips) == 0:
        raise ValueError("sample_cube_mip needs at least one mip level")
    for m in mips:
        _check_cube(m)
    if level.shape != dirs.shape[:-1]:
        raise ValueError(f"level must have the leading shape of dirs {tuple(dirs.shape[:-1])}, "
                         f"got {tuple(level.shape)}")
    channels = mips[0].shape[-1]
    flat_dirs = dirs.reshape(-1, 3)
    flat_level = level.reshape(-1).to(mips[0].dtype).clamp(0, len(mips) - 1)
    low = flat_level.detach().floor().clamp(max=len(mips) - 1)
    frac = flat_level - low
    low = low.long()
    out = torch.zeros(flat_dirs.shape[0], channels, dtype=mips[0].dtype, device=mips[0].device)
    for index, mip in enumerate(mips):
        weight = torch.where(low == index, 1 - frac, torch.where(low + 1 == index, frac, torch.zeros_like(frac)))
        rows = ((low == index) | (low + 1 == index)).nonzero(as_tuple=True)[0]
        if rows.numel() == 0:
            continue
        values = sample_cube(mip, flat_dirs.index_select(0, rows)) * weight.index_select(0, rows)[:, None]
        out = out.index_add(0, rows, values)
    return out.reshape(*dirs.shape[:-1], channels)


def downsample_cube(cube: torch.Tensor) -> torch.Tensor:
    """Halve a cube map's resolution: float [6, R, R, C] → [6, R/2, R/2, C] (R even).

    Each coarse texel is the solid-angle-weighted mean of its 2×2 fine texels, so the map's integral over
    the sphere is kept (a plain mean would overweight the small texels near face corners).
    """
    _check_cube(cube)
    res, channels = cube.shape[1], cube.shape[-1]
    if res % 2:
        raise ValueError(f"downsample_cube needs an even resolution, got {res}")
    omega = cube_texel_solid_angles(res, device=cube.device, dtype=cube.dtype)[..., None]
    blocks = (6, res // 2, 2, res // 2, 2)
    weighted = (cube * omega).reshape(*blocks, channels).sum(dim=(2, 4))
    return weighted / omega.reshape(*blocks, 1).sum(dim=(2, 4))


def _check_cube(cube: torch.Tensor) -> None:
    if cube.ndim != 4 or cube.shape[0] != 6 or cube.shape[1] != cube.shape[2]:
        raise ValueError(f"a cube map must be [6, R, R, C], got shape {tuple(cube.shape)}")
