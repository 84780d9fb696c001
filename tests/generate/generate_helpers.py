"""Shared settings and helpers of the generation tests (imported by ``conftest.py`` and the tests)."""

from __future__ import annotations

import json
import math
import wave
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

NUM_FRAMES = 40
FPS = 25.0
AUDIO_RATE = 16000

SMALL_RUN = {
    "iterations": 80, "render_size": 64, "batch_size": 1, "learning_rate": 3e-3, "final_learning_rate": 1e-4,
    "face_samples": 512, "sdf_init_steps": 60,
    "checkpoint_every": 1000, "preview_every": 1000, "log_every": 20,
    "model.geometry.grid_resolution": 32, "model.geometry.hidden_dim": 32,
    "model.geometry.expression_feature_dim": 16, "model.geometry.expression_window": 9,
    "minutes": 0,  # a schedule by iterations: results must not depend on the machine's speed
    "model.geometry.smoothing_passes": 0,  # 80 steps cannot learn around 8 passes on a grid-32 face slab
    "model.appearance.hash_levels": 8, "model.appearance.hash_log2_table": 12,
    "model.appearance.hash_max_resolution": 128, "model.appearance.hidden_dim": 32,
    "model.appearance.num_layers": 2, "model.light.cube_resolution": 8,
}


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block. The test machines share 2 cores among many jobs; two
    spinning OpenMP threads then slow these small workloads down by up to ~50× (measured)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def audio_ramp(num_samples: int) -> np.ndarray:
    """int16 [N] test audio whose sample value encodes its own time (so cuts can be checked): a slow ramp."""
    return (np.arange(num_samples) % 32000 - 16000).astype(np.int16)


def add_audio(dataset: Path) -> None:
    """Give a synthetic dataset an ``audio.wav`` covering its frames (manifest updated to say so)."""
    manifest_path = dataset / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    samples = audio_ramp(int(math.ceil(manifest["num_frames"] / manifest["fps"] * AUDIO_RATE)))
    with wave.open(str(dataset / "audio.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(AUDIO_RATE)
        out.writeframes(samples.tobytes())
    manifest["has_audio"] = True
    manifest_path.write_text(json.dumps(manifest))


def rig_to_face_model(run: Path, out: Path, coefficients: list[int], steps: int = 1500, seed: int = 0) -> Path:
    """A copy of ``run`` whose mesh follows its face model's motion for the chosen coefficients.

    Why: the small test avatar trains far too briefly for f2 to learn visible expressions (its jaw moves
    by thousandths of a millimetre), so a test of what *drives* the geometry needs an avatar whose geometry
    responds. Here f2 and the expression encoder are fitted, on the grid points the mesh uses (those within
    ≈ 1 cm of the face), to the face model's displacement ``Σ_k (α_k − ᾱ_k) U_k`` over the chosen
    coefficients k at the nearest face-model point, at the window's centre frame. The windows are the
    training windows plus independent random offsets per frame and coefficient, so expressions well beyond
    this short clip's are covered (a driver may open its jaw much wider) and other coefficients and
    neighbouring frames must leave the mesh still. f1's SDF is untouched (same faces); only its elastic
    channel's bias is raised so offsets can reach centimetres, and the encoder's first layer is scaled up
    so tenths of α change its features (quick to fit: ≈ 4 s single-threaded).
    """
    import shutil

    import torch
    from scipy.spatial import cKDTree

    from dyntet.geometry.marching import topology
    from dyntet.model.dyntet import expression_windows
    from dyntet.train.checkpoint import load_checkpoint, save_checkpoint
    from dyntet.train.evaluate import load_run

    shutil.copytree(run, out)
    loaded = load_run(out, "cpu")
    model, dataset = loaded.model, loaded.dataset
    geometry = model.geometry
    with torch.no_grad():
        geometry.f1.layers[-1].bias[1] += 3.0                         # elastic channel only: SDF unchanged
        used, _ = topology(model.grid, model.sdf()).compact()
    face = dataset.face_model
    face_grid = model.head_to_grid(torch.from_numpy(face.mean_shape)).numpy()
    dist, nearest = cKDTree(face_grid).query(model.grid_vertices[used].numpy(), k=1)
    near = dist < 0.03                                                # grid units: ≈ 1 cm
    points = model.grid_vertices[used][torch.from_numpy(near)]
    chosen = torch.zeros(face.num_expression)
    chosen[coefficients] = 1.0
    basis = torch.from_numpy(face.expression_basis[:, nearest[near]] * model.head_to_grid.scale).float()
    basis = basis * chosen[:, None, None]                                              # [K, N, 3]
    frames = torch.tensor(list(dataset.split("train")))
    expression = torch.from_numpy(dataset.tracking.expression)
    windows = expression_windows(expression, frames, loaded.config.model.geometry.expression_window)
    delta = expression[frames] - model.mean_expression                                 # [B, K]
    with torch.no_grad():
        _, elastic = geometry.sdf_elastic(points)
    params = [*geometry.f2_position.parameters(), *geometry.f2_expression.parameters(),
              *geometry.f2_rest.parameters(), *geometry.expression_encoder.parameters()]
    optimizer = torch.optim.Adam(params, lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    centre = windows.shape[1] // 2
    for _ in range(steps):
        pick = torch.randint(0, len(frames), (8,), generator=generator)
        shift = torch.rand(8, windows.shape[1], face.num_expression, generator=generator) * 0.9 - 0.3
        features = geometry.expression_encoder(torch.cat([windows[pick] + shift, model.mean_window()]))
        offsets = elastic[None, :, None] * geometry.offsets(geometry.position_code(points), features)
        wanted = torch.einsum("bk,knd->bnd", delta[pick] + shift[:, centre], basis)
        # The mesh moves by offsets(frame) − offsets(ᾱ): fit that motion, whatever the static part.
        loss = torch.mean((offsets[:-1] - offsets[-1:] - wanted) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    state = load_checkpoint(out)
    state["model"] = model.state_dict()
    save_checkpoint(out, state)
    return out
