"""The training loop: dataset folder → run folder (config, checkpoints, metrics, previews, mesh).

Resumable: ``resume=True`` continues from the last checkpoint with the same schedule. Interrupts
(``should_stop``, Ctrl-C) save a checkpoint first. Checkpoints are written every ``checkpoint_every``
iterations and every ``checkpoint_minutes``, so a killed process loses at most one interval.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from dyntet import __version__
from dyntet.formats.atomic import write_bytes_atomic
from dyntet.formats.dataset import Dataset, encode_png
from dyntet.formats.run import RunFolder
from dyntet.model.dyntet import DynTet, Meshes, RenderOutput, expression_windows
from dyntet.model.face_prior import head_prior_sdf, motion_emphasis, sample_face
from dyntet.nn.grid_convert import adapt_state_dict, hash_grid_backends
from dyntet.model.losses import (OptionalLPIPS, deformation_loss, image_mse, mask_mse,
                                 normal_distance_loss)
from dyntet.progress import Cancelled, Progress, ProgressFn, StopFn
from dyntet.render.pbr import linear_to_srgb
from dyntet.train.checkpoint import load_checkpoint, save_checkpoint
from dyntet.train.config import TrainConfig
from dyntet.train.surface_cache import SurfaceCache
from dyntet.train.frames import FrameBatch, FrameStore, mean_expression
from dyntet.train.frame_sampling import FrameSampler

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device")
        return torch.device("cuda")
    if name not in ("auto", "cpu"):
        raise ValueError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device("cpu")


def build_model(config: TrainConfig, dataset: Dataset) -> DynTet:
    train = list(dataset.split("train"))
    return DynTet(config.model, dataset.face_model, mean_expression(dataset),
                  dataset.tracking.expression[train].std(0))


def initialise_sdf(model: DynTet, dataset: Dataset, steps: int, seed: int) -> float:
    """Fit f1 to a closed head prior built from the face model; returns the final fitting MSE."""
    if steps <= 0:
        return float("nan")
    generator = torch.Generator().manual_seed(seed)
    points = model.grid_vertices.cpu()
    target = head_prior_sdf(points, dataset.face_model, model.mean_expression.cpu().numpy(), model.head_to_grid)
    target = target.clamp(-0.1, 0.1)
    device = model.grid_vertices.device
    points, target = points.to(device), target.to(device)
    optimizer = torch.optim.Adam(model.geometry.f1.parameters(), lr=5e-3)
    batch = min(len(points), 16384)
    loss = torch.zeros(())
    for step in range(steps):
        idx = torch.randint(0, len(points), (batch,), generator=generator).to(device)
        jitter = (torch.rand(batch, 3, generator=generator).to(device) - 0.5) / model.grid.resolution
        sdf, _ = model.geometry.sdf_elastic(points[idx] + jitter)
        loss = torch.mean((sdf - target[idx]) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for group in optimizer.param_groups:
            group["lr"] = 5e-3 * (0.1 ** ((step + 1) / steps))
    return loss.item()


def make_optimizer(model: DynTet, config: TrainConfig) -> torch.optim.Adam:
    """Adam over all parameters; appearance (G) and light step ``appearance_lr_scale`` times larger."""
    fast = list(model.appearance.parameters()) + list(model.light.parameters())
    fast_ids = {id(p) for p in fast}
    geometry = [p for p in model.parameters() if id(p) not in fast_ids]
    return torch.optim.Adam([
        {"params": geometry, "lr_scale": 1.0},
        {"params": fast, "lr_scale": config.appearance_lr_scale},
    ], lr=config.learning_rate, betas=(0.9, 0.99), eps=1e-15)


def schedule_fraction(config: TrainConfig, iteration: int, elapsed_s: float) -> float:
    """How far through its schedule a run is, in [0, 1]: by time under a budget, else by iterations."""
    if config.minutes > 0:
        return min(1.0, max(elapsed_s / (60.0 * config.minutes), iteration / max(config.iterations, 1)))
    return min(1.0, iteration / max(config.iterations, 1))


def learning_rate(config: TrainConfig, fraction: float) -> float:
    """Exponential decay from ``learning_rate`` at fraction 0 to ``final_learning_rate`` at 1."""
    return config.learning_rate * (config.final_learning_rate / config.learning_rate) ** fraction


def psnr(mse: float) -> float:
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


class Trainer:
    """Owns a model, its optimiser and a run folder."""

    def __init__(self, dataset_dir: Path, run: Path, config: TrainConfig, resume: bool = False) -> None:
        self.run = Path(run)
        self.folder = RunFolder(self.run)
        self.dataset = Dataset.open(dataset_dir)
        self.config = config
        self.device = resolve_device(config.device)
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.model = build_model(config, self.dataset).to(self.device)
        self.optimizer = make_optimizer(self.model, config)
        self.lpips = OptionalLPIPS(config.lambda_lpips > 0)
        self.iteration = 0
        self.elapsed_s = 0.0
        state = load_checkpoint(self.run, self.device) if resume else None
        if resume and state is None:
            log.info("no checkpoint in %s yet: starting from the beginning", self.run)
        if state is not None:
            model_state, converted = adapt_state_dict(state["model"], self.model)
            self.model.load_state_dict(model_state)
            if converted:  # the optimiser's moments are in the other layout: they start again
                log.warning("converted the hash grids %s to the %s layout; the optimiser state starts afresh",
                            converted, hash_grid_backends(self.model))
            else:
                self.optimizer.load_state_dict(state["optimizer"])
            self.iteration = int(state["iteration"])
            self.elapsed_s = float(state["elapsed_s"])
            self.generator.set_state(state["rng"])
            torch.set_rng_state(state["torch_rng"])
            self.folder.truncate_metrics(self.iteration)
        else:
            self.run.mkdir(parents=True, exist_ok=True)
            self.folder.write_config({
                "dyntet_version": __version__, "dataset": str(Path(dataset_dir).resolve()),
                "train": config.to_dict(), "backends": {"hash_grid": hash_grid_backends(self.model)}})
            self.folder.clear_metrics()
            started = time.monotonic()
            init_mse = initialise_sdf(self.model, self.dataset, config.sdf_init_steps, config.seed)
            self.elapsed_s = time.monotonic() - started  # a time budget covers the initialisation too
            log.info("f1 initialised from the face-model head prior (MSE %.2e)", init_mse)
        self.frames = FrameStore(self.dataset, "train", config.render_size, self.device,
                                 feature_boxes=config.feature_weight > 0)
        self.face_emphasis = None if config.face_sample_motion <= 0 else motion_emphasis(
            self.dataset.face_model, (self.frames.expression - self.model.mean_expression).cpu().numpy(),
            config.face_sample_motion)
        self.sampler = FrameSampler(self.dataset.face_model,
                                    self.dataset.tracking.expression[self.frames.indices.numpy()],
                                    config.rare_frame_power)
        self.preview_frame = 0
        self.surface = SurfaceCache(config.topology_refresh_every)
        if state is not None and "surface" in state:
            self.surface.load_state_dict(state["surface"])

    # -- one step ------------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        cfg = self.config
        model = self.model
        positions = self.sampler.draw(cfg.batch_size, self.generator)
        batch = self.frames.batch(positions)
        lr = learning_rate(cfg, schedule_fraction(cfg, self.iteration, self.elapsed_s))
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]

        windows = expression_windows(self.frames.expression, batch.frames, cfg.model.geometry.expression_window)
        meshes = self.meshes(windows)
        out = self.render(batch, windows, meshes)
        pred = linear_to_srgb(out.rgb)
        weight = None if batch.features is None else 1.0 + cfg.feature_weight * batch.features
        losses = {"image": image_mse(pred, batch.images, weight), "mask": mask_mse(out.alpha, batch.head_mask)}
        if self.lpips.available:
            losses["lpips"] = cfg.lambda_lpips * self.lpips(pred, batch.images)
        samples = sample_face(self.dataset.face_model, model.mean_expression.cpu().numpy(), model.head_to_grid,
                              cfg.face_samples, self.generator, self.face_emphasis)
        samples = type(samples)(*(t.to(self.device) for t in (samples.points, samples.normals, samples.basis)))
        losses["ndl"] = cfg.lambda_ndl * normal_distance_loss(model.geometry, samples, cfg.ndl_half_range,
                                                              self.generator)
        features = meshes.features
        delta = self.frames.expression[batch.frames] - model.mean_expression
        fdl, elastic = deformation_loss(model.geometry, samples, features, delta,
                                        model.face_motion_at(samples.points, delta))
        losses["fdl"] = cfg.lambda_fdl * fdl
        losses["elastic"] = cfg.lambda_elastic * elastic
        if cfg.lambda_light > 0:
            losses["light"] = cfg.lambda_light * model.light.regulariser()
        total = sum(losses.values())
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.iteration += 1
        figures = {name: value.item() for name, value in losses.items()}
        plain = figures["image"] if weight is None else image_mse(pred.detach(), batch.images).item()
        figures.update(loss=total.item(), psnr=psnr(plain), lr=lr)
        return figures

    def meshes(self, windows: torch.Tensor) -> Meshes:
        sdf, topo = self.surface.sdf_and_topology(self.model)
        return self.model.meshes(windows, topo, sdf)

    def render(self, batch: FrameBatch, windows: torch.Tensor, meshes: Meshes | None = None) -> RenderOutput:
        meshes = self.meshes(windows) if meshes is None else meshes
        self.model.light.build()
        return self.model.render(meshes, windows, batch.poses, batch.intrinsics, self.config.render_size,
                                 batch.background)

    # -- files -----------------------------------------------------------------------------------
    def save(self) -> None:
        save_checkpoint(self.run, {
            "iteration": self.iteration, "elapsed_s": self.elapsed_s,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "rng": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
            "surface": self.surface.state_dict(), "backends": {"hash_grid": hash_grid_backends(self.model)},
        })

    @torch.no_grad()
    def write_preview(self) -> Path:
        """preview.png: render | ground truth | normals of a fixed training frame."""
        batch = self.frames.batch(torch.tensor([self.preview_frame]))
        windows = expression_windows(self.frames.expression, batch.frames, self.config.model.geometry.expression_window)
        out = self.render(batch, windows)
        render = linear_to_srgb(out.rgb)[0]
        normals = (out.normals[0] * 0.5 + 0.5) * out.alpha[0]
        strip = torch.cat([render, batch.images[0], normals], dim=1).clamp(0, 1)
        path = self.folder.preview_path
        write_bytes_atomic(path, encode_png((strip.cpu().numpy() * 255 + 0.5).astype(np.uint8)))
        return path

    @torch.no_grad()
    def write_canonical_mesh(self) -> Path:
        meshes = self.model.meshes(self.model.mean_window())
        path = self.folder.canonical_mesh_path
        write_bytes_atomic(path, obj_text(meshes.canonical.cpu().numpy(), meshes.faces.cpu().numpy()).encode())
        return path

    # -- loop ------------------------------------------------------------------------------------
    def finished(self) -> bool:
        """The iteration count is reached, or the time budget is spent."""
        cfg = self.config
        return self.iteration >= cfg.iterations or (cfg.minutes > 0 and self.elapsed_s >= 60.0 * cfg.minutes)

    def train(self, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> Path:
        cfg = self.config
        last_save = time.monotonic()
        start_iteration, start_time = self.iteration, time.monotonic()
        base_elapsed = self.elapsed_s
        preview = self.folder.preview_path if self.folder.preview_path.exists() else None
        figures: dict[str, float] = {}
        try:
            while not self.finished():
                if should_stop is not None and should_stop():
                    raise Cancelled(f"stopped at iteration {self.iteration}")
                figures = self.step()
                self.elapsed_s = base_elapsed + time.monotonic() - start_time
                done = self.iteration - start_iteration
                fraction = schedule_fraction(cfg, self.iteration, self.elapsed_s)
                eta = (time.monotonic() - start_time) / done * (cfg.iterations - self.iteration) \
                    if cfg.minutes <= 0 else max(0.0, 60.0 * cfg.minutes - self.elapsed_s)
                if self.iteration % cfg.log_every == 0 or self.finished():
                    self.folder.append_metrics({"iteration": self.iteration, "elapsed_s": round(self.elapsed_s, 3),
                                                **{k: round(v, 6) for k, v in figures.items()}})
                if self.iteration % cfg.preview_every == 0:
                    preview = self.write_preview()
                if (self.iteration % cfg.checkpoint_every == 0
                        or time.monotonic() - last_save > 60 * cfg.checkpoint_minutes):
                    self.save()
                    last_save = time.monotonic()
                if progress is not None:
                    step, total = ((self.iteration, cfg.iterations) if cfg.minutes <= 0 else
                                   (round(1000 * fraction), 1000))
                    progress(Progress("train", step, total, f"iteration {self.iteration}  loss {figures['loss']:.4f}  "
                                      f"psnr {figures['psnr']:.2f} dB",
                                      metrics=figures, eta_s=eta, preview=preview))
        except (KeyboardInterrupt, Cancelled):
            self.save()
            raise
        self.save()
        self.write_preview()
        self.write_canonical_mesh()
        return self.run


def obj_text(vertices: np.ndarray, faces: np.ndarray) -> str:
    """A minimal Wavefront OBJ of one mesh (vertices [V, 3], faces [F, 3] zero-based)."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    return "\n".join(lines) + "\n"
