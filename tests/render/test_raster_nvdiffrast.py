"""The nvdiffrast wrapper's plumbing, against a stand-in for ``nvdiffrast.torch`` (CUDA cannot run here).

The stand-in enforces the input contract nvdiffrast documents (float32 contiguous positions and colours,
int32 contiguous triangles, a rasterizer context, ``[H, W]`` resolution, tuple returns) and computes
with the CPU backend, so these tests check what the wrapper passes and returns, not nvdiffrast itself.
On a CUDA machine with nvdiffrast the conformance suites run the real thing instead.
"""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import pytest
import torch

from dyntet.render import raster_cpu
from dyntet.render.raster import build_topology


class _Context:
    def __init__(self, device=None):
        self.device = device


def _check(tensor: torch.Tensor, dtype: torch.dtype, name: str) -> None:
    assert tensor.dtype == dtype, f"{name} must be {dtype}, got {tensor.dtype}"
    assert tensor.is_contiguous(), f"{name} must be contiguous"


def _fake_nvdiffrast(calls: list[str]) -> types.ModuleType:
    dr = types.ModuleType("nvdiffrast.torch")
    dr.RasterizeCudaContext = _Context

    def rasterize(glctx, pos, tri, resolution, ranges=None, grad_db=True):
        assert isinstance(glctx, _Context)
        _check(pos, torch.float32, "pos")
        _check(tri, torch.int32, "tri")
        assert pos.dim() == 3 and isinstance(resolution, list) and len(resolution) == 2
        calls.append("rasterize")
        return raster_cpu.rasterize(pos, tri.long(), tuple(resolution)), None

    def interpolate(attr, rast, tri, rast_db=None, diff_attrs=None):
        _check(attr, torch.float32, "attr")
        _check(tri, torch.int32, "tri")
        calls.append("interpolate")
        attr_bvc = attr[None] if attr.dim() == 2 else attr
        return raster_cpu.interpolate(attr_bvc, rast, tri.long()), None

    def antialias_construct_topology_hash(tri):
        _check(tri, torch.int32, "tri")
        calls.append("hash")
        return build_topology(tri)

    def antialias(color, rast, pos, tri, topology_hash=None, pos_gradient_boost=1.0):
        _check(color, torch.float32, "color")
        _check(pos, torch.float32, "pos")
        _check(tri, torch.int32, "tri")
        assert topology_hash is not None
        calls.append("antialias")
        return raster_cpu.antialias(color, rast, pos, tri.long(), topology_hash)

    dr.rasterize, dr.interpolate, dr.antialias = rasterize, interpolate, antialias
    dr.antialias_construct_topology_hash = antialias_construct_topology_hash
    return dr


@pytest.fixture
def wrapper(monkeypatch):
    calls: list[str] = []
    package = types.ModuleType("nvdiffrast")
    package.torch = _fake_nvdiffrast(calls)
    monkeypatch.setitem(sys.modules, "nvdiffrast", package)
    monkeypatch.setitem(sys.modules, "nvdiffrast.torch", package.torch)
    monkeypatch.delitem(sys.modules, "dyntet.render.raster_nvdiffrast", raising=False)
    module = importlib.import_module("dyntet.render.raster_nvdiffrast")
    yield module, calls
    sys.modules.pop("dyntet.render.raster_nvdiffrast", None)


def test_wrapper_passes_nvdiffrast_its_contract_and_unwraps_results(wrapper):
    module, calls = wrapper
    rng = np.random.default_rng(0)
    clip = torch.tensor(np.concatenate([rng.uniform(-1, 1, (6, 2)), np.zeros((6, 1)), np.ones((6, 1))], 1))
    tris = torch.tensor([[0, 1, 2], [3, 4, 5]])  # int64 and float64 in: the wrapper must convert
    rast = module.rasterize(clip[None], tris, (8, 10))
    assert rast.shape == (1, 8, 10, 4) and rast.dtype == torch.float32
    out = module.interpolate(torch.rand(1, 6, 3, dtype=torch.float64), rast, tris)  # shared [1, V, C]
    assert out.shape == (1, 8, 10, 3)
    topology = build_topology(tris)
    color = torch.rand(1, 8, 10, 3, dtype=torch.float64)
    for _ in range(2):
        aa = module.antialias(color, rast, clip[None], tris, topology)
        assert aa.shape == color.shape
    assert calls == ["rasterize", "interpolate", "hash", "antialias", "antialias"], "hash must be built once"
    assert len(topology.backend_cache) == 1


def test_one_context_per_device(wrapper):
    module, _ = wrapper
    first = module._context(torch.device("cpu"))
    assert module._context(torch.device("cpu")) is first
