"""``bench.py train-step``: one preview-preset training step on real footage, reference vs fast path.

Two trainers on the same dataset (obama_b preprocessed at 256², or ``DYNTET_BENCH_DATASET``), same
seed and preset, differing only in the speed settings:

* reference: the pure-PyTorch hash grid and the full-grid SDF every step (``topology_refresh_every=1``);
* fast: the preset as committed (compiled hash grid when numba imports, the surface cache).

After a warm-up (numba JIT, caches), blocks of steps of the two alternate so both see the same machine
load; the step time is the median over blocks. A breakdown of each path's step (forward stages timed by
wrapping the functions, the backward pass and the optimiser) is printed and returned.

Figures: ``ref_step_ms``, ``fast_step_ms``, ``ratio`` (target ≥ 5), ``breakdown_ref`` / ``breakdown_fast``.
"""

from __future__ import annotations

import collections
import functools
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.preprocess import FOOTAGE

WARMUP, BLOCKS, STEPS_PER_BLOCK = 8, 6, 4
NESTED = ("hash grid forward", "hash grid backward")
"""Stages timed inside others (G forward, the backward pass): not added to the top-level sum."""


def _dataset(root: Path) -> Path:
    given = os.environ.get("DYNTET_BENCH_DATASET")
    if given:
        return Path(given)
    from dyntet.face.preprocess import PreprocessOptions, preprocess

    if not FOOTAGE.exists():
        raise SystemExit(f"bench train-step needs {FOOTAGE} (or DYNTET_BENCH_DATASET=a dataset folder)")
    out = root / "obama_b"
    preprocess(FOOTAGE, out, PreprocessOptions(size=256))
    return out


class _Stages:
    """Wall time per labelled function, accumulated while ``active`` is set."""

    def __init__(self) -> None:
        self.times: dict[str, float] = collections.defaultdict(float)
        self.active = False

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if not self.active:
                return original(*args, **kwargs)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.times[label] += time.perf_counter() - start

        setattr(owner, name, staticmethod(timed) if isinstance(owner.__dict__.get(name), staticmethod) else timed)


def _install(stages: _Stages) -> None:
    import torch

    from dyntet.model import dyntet as model_module
    from dyntet.model import networks
    from dyntet.nn import hashgrid_torch
    from dyntet.render import raster
    from dyntet.train import trainer as trainer_module

    for name in ("rasterize", "interpolate", "antialias"):
        stages.wrap(raster, name, f"raster.{name}")
    stages.wrap(model_module, "shade", "shade (split-sum PBR)")
    stages.wrap(model_module, "vertex_normals", "vertex normals")
    stages.wrap(trainer_module.Trainer, "meshes", "geometry: SDF, topology, f1/f2, encoder, decode")
    stages.wrap(networks.AppearanceNetwork, "forward", "G forward (hash grid + MLP)")
    stages.wrap(trainer_module, "sample_face", "face samples")
    stages.wrap(trainer_module, "normal_distance_loss", "loss: Eq. 14")
    stages.wrap(trainer_module, "deformation_loss", "loss: Eq. 15 + elastic")
    stages.wrap(torch.optim.Adam, "step", "optimiser")
    stages.wrap(torch.Tensor, "backward", "backward (all)")
    stages.wrap(hashgrid_torch._HashGridFunction, "forward", "hash grid forward")
    stages.wrap(hashgrid_torch._HashGridFunction, "backward", "hash grid backward")
    try:
        from dyntet.nn import hashgrid_numba
    except ImportError:
        return
    function = getattr(hashgrid_numba, "_NumbaHashGridFunction", None)
    if function is not None:
        stages.wrap(function, "forward", "hash grid forward")
        stages.wrap(function, "backward", "hash grid backward")
    light = getattr(model_module, "CubeMapLight", None)
    if light is not None:
        stages.wrap(light, "build", "light build")


def run() -> dict:
    import torch

    from dyntet.train.config import preset
    from dyntet.train.trainer import Trainer

    root = Path(tempfile.mkdtemp(prefix="dyntet-bench-step-"))
    dataset = _dataset(root)
    fast_config = preset("preview").with_overrides({"device": "cpu", "sdf_init_steps": 100})
    ref_config = fast_config.with_overrides({"model.appearance.implementation": "torch",
                                             "topology_refresh_every": 1})
    trainers = {"ref": Trainer(dataset, root / "ref", ref_config),
                "fast": Trainer(dataset, root / "fast", fast_config)}
    print(f"train-step on {dataset}: hash grid {trainers['ref'].model.appearance.encoding.implementation} "
          f"vs {trainers['fast'].model.appearance.encoding.implementation}, {torch.get_num_threads()} threads",
          flush=True)
    stages = {name: _Stages() for name in trainers}
    shared = _Stages()
    _install(shared)
    for trainer in trainers.values():
        for _ in range(WARMUP):
            trainer.step()
    blocks: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(BLOCKS):
        for name, trainer in trainers.items():
            shared.times.clear()
            shared.active = True
            start = time.perf_counter()
            for _ in range(STEPS_PER_BLOCK):
                trainer.step()
            blocks[name].append((time.perf_counter() - start) / STEPS_PER_BLOCK * 1e3)
            shared.active = False
            for label, seconds in shared.times.items():
                stages[name].times[label] += seconds
    steps = BLOCKS * STEPS_PER_BLOCK
    figures: dict = {}
    for name in trainers:
        step_ms = statistics.median(blocks[name])
        breakdown = {label: round(seconds / steps * 1e3, 1)
                     for label, seconds in sorted(stages[name].times.items(), key=lambda kv: -kv[1])}
        top = sum(ms for label, ms in breakdown.items() if label not in NESTED)
        breakdown["other (step minus the top-level stages)"] = round(sum(blocks[name]) / len(blocks[name]) - top, 1)
        figures[f"{name}_step_ms"] = round(step_ms, 1)
        figures[f"breakdown_{name}"] = breakdown
        print(f"{name}: {step_ms:.1f} ms per step (blocks {[round(b) for b in blocks[name]]})")
        for label, ms in breakdown.items():
            print(f"    {label:50s} {ms:7.1f} ms")
    figures["ratio"] = round(figures["ref_step_ms"] / figures["fast_step_ms"], 2)
    figures["threads"] = torch.get_num_threads()
    figures["load_average"] = round(os.getloadavg()[0], 1)
    print(f"ratio {figures['ratio']}")
    return figures
