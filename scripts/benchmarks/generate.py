"""Generation benchmark: the cached geometry path, texture baking, and glb sizes of a 300-frame sequence.

* ``geom_fps_64`` / ``geom_fps_128``: frames per second of :class:`dyntet.generate.geometry.FrozenGeometry`
  once the topology is cached — expression encoder, f2 on the crossing-edge grid points, decode — for
  300 frames in batches of 16. The model has the paper's geometry networks (f1/f2 128 wide, 3 layers,
  27-frame window, 256-d expression feature), the synthetic subject's face model (K = 8) and a head-shaped
  SDF (the face-model head prior, ``dyntet.model.face_prior.head_prior_sdf``); f2's last layer is random
  (an untrained one is zero) — timing does not depend on the weights. Median of 3 passes after a warm-up,
  with torch's default threads and again with one thread (``*_1thread``: what a loaded machine gives
  reliably). Targets on 2 cores: ≥ 100 at r = 64, ≥ 25 at r = 128.
* ``bake_s``: UV atlas (xatlas) + 1024² bake (rasterise in UV space, query G on every covered texel, pad)
  of the r = 64 head mesh with the ``preview`` preset's appearance network; ``bake_s_128`` the same for
  the r = 128 mesh with the paper's appearance network (16-level hash grid, 5 × 256 MLP).
* glb figures: always the export benchmark's 300-frame synthetic talking head (``benchmarks.export``,
  which needs no trained run). With ``DYNTET_BENCH_RUN=/path/to/run`` a 300-frame sequence generated from
  that run (its own clip, looped back and forth when shorter) is exported as well (``gen_*`` keys).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dyntet.data.face_rig import build_face_model
from dyntet.data.synthetic import SyntheticConfig, build_subject
from dyntet.generate.bake import BakeConfig, bake_textures, uv_atlas
from dyntet.generate.geometry import FrozenGeometry
from dyntet.model.config import AppearanceConfig, GeometryConfig, LightConfig, ModelConfig
from dyntet.model.dyntet import DynTet, expression_windows
from dyntet.model.face_prior import head_prior_sdf
from dyntet.train.config import preset

FRAMES = 300
BATCH = 16
REPEATS = 3


def _subject():
    subject = build_subject(SyntheticConfig(num_frames=FRAMES, seed=0))
    face, _ = build_face_model(subject.neutral, subject.identity, subject.layout, 4)
    return face, subject.expression.astype(np.float32)


def _model(resolution: int, appearance: AppearanceConfig, face, expression: np.ndarray) -> FrozenGeometry:
    config = ModelConfig(geometry=GeometryConfig(grid_resolution=resolution), appearance=appearance,
                         light=LightConfig(cube_resolution=16))
    torch.manual_seed(0)
    model = DynTet(config, face, expression.mean(0)).eval()
    with torch.no_grad():
        last = model.geometry.f2_rest.layers[-1]
        last.weight.normal_(0.0, 0.05)
    sdf = head_prior_sdf(model.grid_vertices, face, expression.mean(0), model.head_to_grid)
    return FrozenGeometry.from_sdf(model, sdf)


def _geometry_fps(geometry: FrozenGeometry, expression: np.ndarray) -> float:
    model = geometry.model
    windows = expression_windows(torch.from_numpy(expression), torch.arange(FRAMES),
                                 model.config.geometry.expression_window)
    geometry.vertices(windows[:BATCH])  # warm-up
    passes = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for batch in geometry.iter_vertices(windows, BATCH):
            pass
        passes.append(time.perf_counter() - start)
    return FRAMES / statistics.median(passes)


def _bake_seconds(geometry: FrozenGeometry) -> tuple[float, float, float]:
    start = time.perf_counter()
    atlas = uv_atlas(geometry.canonical.numpy(), geometry.faces_int32(), 1024)
    atlas_s = time.perf_counter() - start
    textures = bake_textures(geometry.model, geometry.canonical, atlas, BakeConfig(size=1024))
    total = time.perf_counter() - start
    return total, atlas_s, float(textures.coverage.mean())


def run() -> dict:
    face, expression = _subject()
    print(f"torch threads: {torch.get_num_threads()}; face model: {face.mean_shape.shape[0]} points, "
          f"K = {face.num_expression}; {FRAMES} frames in batches of {BATCH}")
    figures: dict = {"threads": torch.get_num_threads()}
    preview_appearance = preset("preview").model.appearance
    for resolution in (64, 128):
        appearance = preview_appearance if resolution == 64 else AppearanceConfig()
        geometry = _model(resolution, appearance, face, expression)
        fps = _geometry_fps(geometry, expression)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            fps_single = _geometry_fps(geometry, expression)
        finally:
            torch.set_num_threads(threads)
        print(f"r={resolution}: {geometry.num_points} f2 points, {geometry.num_vertices} mesh vertices, "
              f"{geometry.num_faces} faces: {fps:.1f} frames/s with {threads} threads, {fps_single:.1f} with one "
              f"(target >= {100 if resolution == 64 else 25})")
        figures[f"geom_fps_{resolution}"] = round(fps, 1)
        figures[f"geom_fps_{resolution}_1thread"] = round(fps_single, 1)
        figures[f"geom_points_{resolution}"] = geometry.num_points
        bake_s, atlas_s, coverage = _bake_seconds(geometry)
        key = "bake_s" if resolution == 64 else "bake_s_128"
        print(f"r={resolution}: bake 1024² {bake_s:.1f} s (atlas {atlas_s:.1f} s, {100 * coverage:.0f} % of texels "
              f"on charts)")
        figures[key] = round(bake_s, 1)
        figures[key.replace("bake_s", "atlas_s")] = round(atlas_s, 1)

    from benchmarks import export as export_bench

    print("glb sizes on the export benchmark's 300-frame synthetic talking head:")
    exported = export_bench.run()
    figures.update({k: exported[k] for k in ("glb_mb_per_frame_rig", "glb_mb_pca_rig", "pca_rms_mm", "pca_max_mm",
                                            "pca_targets", "glb_size_ratio")})
    run_dir = os.environ.get("DYNTET_BENCH_RUN")
    if run_dir:
        figures.update(_generated_glb(Path(run_dir)))
    return figures


def _generated_glb(run: Path) -> dict:
    """Generate 300 frames from a trained run (its own clip, looped) and export both glb rigs."""
    from dyntet.export.gltf import GltfConfig, write_glb
    from dyntet.generate.api import GenerateConfig, generate
    from dyntet.formats.sequence import read_sequence

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        seq_dir = generate(run, Path(tmp) / "seq", GenerateConfig(drive="all"))
        generate_s = time.perf_counter() - start
        seq = read_sequence(seq_dir, mmap=False)
        if seq.num_frames < FRAMES:
            order = np.concatenate([np.arange(seq.num_frames), np.arange(seq.num_frames - 2, 0, -1)])
            index = order[np.arange(FRAMES) % len(order)]
            seq.vertices, seq.head_pose, seq.audio = seq.vertices[index], seq.head_pose[index], None
        else:
            seq.vertices, seq.head_pose = seq.vertices[:FRAMES], seq.head_pose[:FRAMES]
        per_frame = write_glb(Path(tmp) / "a.glb", seq, GltfConfig(rig="per-frame"))
        pca = write_glb(Path(tmp) / "b.glb", seq, GltfConfig(rig="pca"))
    print(f"generated from {run}: {seq.num_vertices} vertices, generate {generate_s:.1f} s; per-frame "
          f"{per_frame.megabytes:.2f} MB, pca {pca.megabytes:.2f} MB (K={pca.num_targets}, "
          f"RMS {pca.pca.rms_mm:.3f} mm, max {pca.pca.max_mm:.3f} mm)")
    return {"gen_generate_s": round(generate_s, 1), "gen_glb_mb_per_frame_rig": round(per_frame.megabytes, 2),
            "gen_glb_mb_pca_rig": round(pca.megabytes, 2), "gen_pca_rms_mm": round(pca.pca.rms_mm, 4),
            "gen_pca_max_mm": round(pca.pca.max_mm, 4)}
