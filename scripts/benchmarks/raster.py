"""Rasterizer benchmark: a ~100k-triangle head-sized closed mesh filling most of the frame.

``python scripts/bench.py raster``. Times the rasterizer that ``"auto"`` picks here: ``rasterize`` alone at
256² and 512² (B = 1), and forward + backward of ``rasterize → interpolate → antialias`` with a scalar
image loss at 512². Figures are medians over several runs after a warm-up. Start-up costs are reported
apart: ``warmup_s`` (first call in this process: loading numba's on-disk cache) and ``jit_cold_s`` (a
fresh process with an empty numba cache compiling every kernel, as on a first install).
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from dyntet.render.camera import look_at, projection, to_clip
from dyntet.render.raster import antialias, build_topology, interpolate, rasterize, resolve_backend

RUNS = 7
_COLD_START = """
import time
import torch
start = time.perf_counter()
from dyntet.render.raster import antialias, interpolate, rasterize
clip = torch.tensor([[-0.5, -0.5, 0.0, 1.0], [0.5, -0.5, 0.0, 1.0], [0.0, 0.5, 0.0, 1.0]], requires_grad=True)
tris = torch.tensor([[0, 1, 2]])
rast = rasterize(clip, tris, (16, 16))
antialias(interpolate(torch.ones(3, 1), rast, tris), rast, clip, tris).sum().backward()
print(time.perf_counter() - start)
"""


def head_mesh(rings: int = 158, segments: int = 320) -> tuple[torch.Tensor, torch.Tensor]:
    """A bumpy ellipsoid about the size of a head (metres, +Y up), closed, outward winding.

    Returns float32 [V, 3] vertices and int64 [F, 3] faces; F = 2 · segments · (rings - 1).
    """
    theta = torch.arange(1, rings, dtype=torch.float64) * math.pi / rings  # polar angle of inner rings
    phi = torch.arange(segments, dtype=torch.float64) * 2 * math.pi / segments
    th, ph = torch.meshgrid(theta, phi, indexing="ij")
    bumps = 1 + 0.04 * torch.sin(7 * th) * torch.cos(5 * ph) + 0.02 * torch.sin(13 * ph + 3 * th)
    ring = torch.stack([0.08 * torch.sin(th) * torch.sin(ph), 0.11 * torch.cos(th),
                        0.095 * torch.sin(th) * torch.cos(ph)], -1) * bumps[..., None]
    verts = torch.cat([torch.tensor([[0.0, 0.11, 0.0]], dtype=torch.float64), ring.reshape(-1, 3),
                       torch.tensor([[0.0, -0.11, 0.0]], dtype=torch.float64)])
    south = verts.shape[0] - 1
    idx = torch.arange(1, 1 + (rings - 1) * segments).reshape(rings - 1, segments)
    nxt = idx.roll(-1, 1)
    faces = [torch.stack([torch.zeros(segments, dtype=torch.long), idx[0], nxt[0]], 1),
             torch.stack([idx[:-1], idx[1:], nxt[1:]], -1).reshape(-1, 3),
             torch.stack([idx[:-1], nxt[1:], nxt[:-1]], -1).reshape(-1, 3),
             torch.stack([torch.full((segments,), south), nxt[-1], idx[-1]], 1)]
    return verts.float(), torch.cat(faces)


def head_clip(verts: torch.Tensor, size: int) -> torch.Tensor:
    """Clip positions [1, V, 4] of the head seen from 0.5 m, its height filling ~95 % of a size² frame."""
    view = look_at(torch.tensor([0.0, 0.0, 0.5]), torch.zeros(3))
    focal = 0.95 * size * 0.5 / 0.22
    proj = projection(torch.tensor([focal, focal, size / 2, size / 2]), size, size)
    return to_clip(verts[None], view, proj).contiguous()


def cold_start_s() -> float:
    """Seconds for a fresh process to import and run all three ops once with an empty numba cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", _COLD_START], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _median_ms(fn, runs: int = RUNS) -> tuple[float, float]:
    """Median wall time and median process CPU time (all threads) of ``fn()`` in milliseconds.

    On a shared machine the CPU time is the steadier figure: it does not count time spent waiting for
    a core, only work done (spin-waiting OpenMP threads included).
    """
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
    return round(statistics.median(wall), 2), round(statistics.median(cpu), 2)


def run() -> dict:
    backend = resolve_backend("auto")
    verts, faces = head_mesh()
    topology = build_topology(faces, verts.shape[0])
    print(f"backend {backend}; mesh {faces.shape[0]} triangles, {verts.shape[0]} vertices; "
          f"torch threads {torch.get_num_threads()}")
    figures: dict = {"backend": backend, "triangles": int(faces.shape[0])}

    clip256 = head_clip(verts, 256)
    start = time.perf_counter()
    rasterize(clip256, faces, (256, 256))
    figures["warmup_s"] = round(time.perf_counter() - start, 3)
    print(f"first rasterize in this process (numba cache load, or JIT when the cache is cold): "
          f"{figures['warmup_s']:.2f} s")
    figures["jit_cold_s"] = round(cold_start_s(), 2)
    print(f"fresh process with an empty numba cache, all three ops once: {figures['jit_cold_s']:.1f} s")

    for size in (256, 512):
        clip = head_clip(verts, size)
        rast = rasterize(clip, faces, (size, size))
        coverage = float((rast[..., 3] > 0).float().mean())
        wall, cpu = _median_ms(lambda: rasterize(clip, faces, (size, size)))
        figures[f"fwd_ms_{size}"], figures[f"fwd_cpu_ms_{size}"] = wall, cpu
        print(f"rasterize {size}²: {wall:.1f} ms (CPU {cpu:.1f} ms), coverage {coverage:.0%}")

    clip = head_clip(verts, 512).requires_grad_(True)
    colours = (verts - verts.min(0).values) / (verts.max(0).values - verts.min(0).values)
    colours.requires_grad_(True)
    target = torch.full((1, 512, 512, 3), 0.5)
    background = torch.zeros(1, 512, 512, 3)

    def step() -> None:
        rast = rasterize(clip, faces, (512, 512))
        shaded = interpolate(colours, rast, faces)
        image = torch.where(rast[..., 3:] > 0, shaded, background)
        image = antialias(image, rast, clip, faces, topology=topology)
        ((image - target) ** 2).mean().backward()

    step()
    figures["fwdbwd_ms_512"], figures["fwdbwd_cpu_ms_512"] = _median_ms(step)
    print(f"rasterize + interpolate + antialias, forward + backward 512²: {figures['fwdbwd_ms_512']:.1f} ms "
          f"(CPU {figures['fwdbwd_cpu_ms_512']:.1f} ms)")
    if not torch.isfinite(clip.grad).all():
        raise RuntimeError("non-finite gradients w.r.t. clip positions")
    figures["topology_ms"], _ = _median_ms(lambda: build_topology(faces, verts.shape[0]))
    print(f"build_topology (antialias adjacency, once per face set): {figures['topology_ms']:.1f} ms")
    return figures
