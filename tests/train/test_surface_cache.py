"""The surface cache gives the same topology as a full-grid SDF evaluation while training moves f1."""

from __future__ import annotations

import torch

from dyntet.geometry.marching import topology
from dyntet.train.config import preset
from dyntet.train.surface_cache import SurfaceCache
from dyntet.train.trainer import Trainer

from train_tiny import TINY


def test_cached_signs_and_topology_match_the_full_grid_between_refreshes(tiny_dataset, tmp_path):
    config = preset("preview").with_overrides({**TINY, "iterations": 12, "topology_refresh_every": 4})
    trainer = Trainer(tiny_dataset, tmp_path / "run", config)
    cache = SurfaceCache(refresh_every=4)
    for _ in range(10):
        trainer.step()
        sdf, topo = cache.sdf_and_topology(trainer.model)
        full = trainer.model.sdf()
        assert torch.equal(sdf < 0, full < 0)
        reference = topology(trainer.model.grid, full)
        for name in ("edge_vertices", "faces", "face_tets"):
            assert torch.equal(getattr(topo, name), getattr(reference, name)), name
        on_band = cache._band
        assert torch.allclose(sdf[on_band], full[on_band], atol=1e-6)


def test_refresh_every_step_is_the_plain_full_evaluation(tiny_dataset, tmp_path):
    config = preset("preview").with_overrides({**TINY, "iterations": 3})
    trainer = Trainer(tiny_dataset, tmp_path / "run", config)
    sdf, topo = SurfaceCache(refresh_every=1).sdf_and_topology(trainer.model)
    assert torch.equal(sdf, trainer.model.sdf())
    assert torch.equal(topo.faces, topology(trainer.model.grid, sdf).faces)
