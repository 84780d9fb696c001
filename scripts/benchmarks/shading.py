"""``bench.py shading``: split-sum table, light prefiltering and PBR shading on the CPU.

Figures (milliseconds are medians of ``REPEATS`` runs after a warm-up):

* ``lut_compute_s`` / ``lut_load_ms``: the 256² BRDF table (512 visible-normal samples) computed into an
  empty cache, then loaded from it in a fresh in-memory state.
* ``light{R}_operator_s``: one-off construction of the sparse prefilter matrix at base resolution R
  (``light{R}_nnz`` entries); ``light{R}_build_ms`` / ``light{R}_backward_ms``: one build (specular chain
  + diffuse SH) and its backward pass afterwards. R = 16 and 64 (the previews).
* ``light512_direct_build_s``: one build of the paper's 6×512² light by direct sampling, no backward
  (set ``DYNTET_BENCH_SKIP_512=1`` to skip it; it takes minutes on a CPU).
* ``shade_ms`` / ``shade_fwd_bwd_ms``: :func:`shade` on 512² = 262 144 pixels with the R = 64 light.
* ``equirect_ms``: ``to_equirect(256)`` (a 256×512 World map) from the R = 64 light.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import torch

from dyntet.render import pbr
from dyntet.render.light import CubeMapLight, LightConfig
from dyntet.render.prefilter import prefilter_operator

from benchmarks._timing import median_ms

REPEATS = 5


def run() -> dict:
    torch.manual_seed(0)
    figures: dict = {"threads": torch.get_num_threads()}
    figures.update(_lut())
    lights = {}
    for res in (16, 64):
        light = CubeMapLight(LightConfig(base_resolution=res))
        light.set_radiance_(torch.rand(6, res, res, 3) * 4)
        start = time.perf_counter()
        light.build()
        figures[f"light{res}_operator_s"] = time.perf_counter() - start
        figures[f"light{res}_nnz"] = prefilter_operator(light.config.plan(), torch.device("cpu"), torch.float32).nnz
        figures[f"light{res}_build_ms"] = median_ms(light.build)

        def backward():
            light.zero_grad(set_to_none=True)
            built = light.build()
            loss = sum(level.sum() for level in built.specular) + built.sh.sum()
            start = time.perf_counter()
            loss.backward()
            return time.perf_counter() - start

        backward()
        figures[f"light{res}_backward_ms"] = 1e3 * statistics.median(backward() for _ in range(REPEATS))
        print(f"light R = {res}: operator {figures[f'light{res}_operator_s']:.2f} s once "
              f"({figures[f'light{res}_nnz']} entries), build {figures[f'light{res}_build_ms']:.1f} ms, "
              f"backward {figures[f'light{res}_backward_ms']:.1f} ms")
        lights[res] = light

    if os.environ.get("DYNTET_BENCH_SKIP_512") != "1":
        big = CubeMapLight(LightConfig(base_resolution=512))
        with torch.no_grad():
            start = time.perf_counter()
            big.build()
            figures["light512_direct_build_s"] = time.perf_counter() - start
        print(f"light R = 512 (direct sampling, no grad): {figures['light512_direct_build_s']:.1f} s per build")

    light = lights[64]
    built = light.build()
    n = 512 * 512
    normals = torch.nn.functional.normalize(torch.randn(n, 3), dim=-1)
    view = torch.nn.functional.normalize(normals + torch.randn(n, 3) * 0.5, dim=-1)
    kd = torch.rand(n, 3)
    orm = torch.rand(n, 3)
    with torch.no_grad():
        figures["shade_ms"] = median_ms(lambda: pbr.shade(normals, view, kd, orm, built))
    kd_grad = kd.clone().requires_grad_()

    def shade_step():
        light.zero_grad(set_to_none=True)
        pbr.shade(normals, view, kd_grad, orm, light.build()).sum().backward()

    figures["shade_fwd_bwd_ms"] = median_ms(shade_step)
    figures["equirect_ms"] = median_ms(lambda: light.to_equirect(256))
    print(f"shade 512² pixels: {figures['shade_ms']:.0f} ms; with light build + backward "
          f"{figures['shade_fwd_bwd_ms']:.0f} ms; to_equirect(256) {figures['equirect_ms']:.0f} ms")
    return figures


def _lut() -> dict:
    saved_env, saved_memory = os.environ.get("DYNTET_CACHE_DIR"), dict(pbr._lut_memory)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DYNTET_CACHE_DIR"] = tmp
        try:
            pbr._lut_memory.clear()
            start = time.perf_counter()
            pbr.fg_lut()
            compute_s = time.perf_counter() - start
            pbr._lut_memory.clear()
            start = time.perf_counter()
            pbr.fg_lut()
            load_ms = 1e3 * (time.perf_counter() - start)
        finally:
            pbr._lut_memory.clear()
            pbr._lut_memory.update(saved_memory)
            if saved_env is None:
                os.environ.pop("DYNTET_CACHE_DIR", None)
            else:
                os.environ["DYNTET_CACHE_DIR"] = saved_env
    print(f"split-sum LUT 256²: computed in {compute_s:.1f} s, loaded from cache in {load_ms:.1f} ms")
    return {"lut_compute_s": compute_s, "lut_load_ms": load_ms}
