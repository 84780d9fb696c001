"""``bench.py encodings``: the pure-PyTorch hash grid and frequency encoding on the CPU.

Figures (milliseconds are medians of ``REPEATS`` runs after a warm-up; ``threads`` is torch's pool size):

* ``hash_fwd_ms`` / ``hash_fwd_bwd_ms`` / ``hash_fwd_bwd_pos_ms``: the paper's appearance encoder
  (16 levels, 2 features, 2^19 entries, 16 → 2048 cells, 3-D) on N = 100k random points: forward only,
  forward + backward into the table, and forward + backward into table and positions.
* ``freq_fwd_ms``: L = 6 frequency encoding of the paper's ≈277k grid vertices.
* ``fit_step_ms``, ``fit_psnr_db``: one full-batch Adam step of a 2-D hash grid (16 levels, 2^15 entries,
  16 → 512 cells) + 64-wide 2-layer MLP on a 256×256 structured image, and the PSNR after 80 steps
  (the unit test asks for ≥ 30 dB).
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

import torch

from dyntet.nn.encodings import FrequencyEncoding, HashGridConfig, HashGridEncoding
from dyntet.nn.mlp import MLP

from benchmarks._timing import median_ms

REPEATS = 5
POINTS = 100_000


def run() -> dict:
    torch.manual_seed(0)
    figures: dict = {"threads": torch.get_num_threads()}
    enc = HashGridEncoding(HashGridConfig(implementation="torch"))
    x = torch.rand(POINTS, 3)
    with torch.no_grad():
        figures["hash_fwd_ms"] = median_ms(lambda: enc(x))

    def table_step():
        enc.zero_grad(set_to_none=True)
        enc(x).square().sum().backward()

    x_grad = x.clone().requires_grad_()

    def position_step():
        enc.zero_grad(set_to_none=True)
        x_grad.grad = None
        enc(x_grad).square().sum().backward()

    figures["hash_fwd_bwd_ms"] = median_ms(table_step)
    figures["hash_fwd_bwd_pos_ms"] = median_ms(position_step)
    print(f"hash grid, default config, N = {POINTS}: forward {figures['hash_fwd_ms']:.0f} ms, "
          f"+ table backward {figures['hash_fwd_bwd_ms']:.0f} ms, "
          f"+ position backward {figures['hash_fwd_bwd_pos_ms']:.0f} ms ({figures['threads']} threads)")

    freq = FrequencyEncoding(6)
    grid_points = torch.rand(277_000, 3) - 0.5
    figures["freq_fwd_ms"] = median_ms(lambda: freq(grid_points))
    print(f"frequency encoding L = 6, 277k points: {figures['freq_fwd_ms']:.1f} ms")

    figures.update(_fit_image())
    print(f"2-D fit: {figures['fit_step_ms']:.0f} ms per step, {figures['fit_psnr_db']:.1f} dB after 80 steps")
    return figures


def _fit_image() -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "nn"))
    from test_fit_image import structured_image  # the test's image, so the figures match the test

    torch.manual_seed(0)
    image = structured_image().reshape(-1, 3)
    enc = HashGridEncoding(HashGridConfig(levels=16, log2_table_size=15, base_resolution=16, max_resolution=512,
                                          input_dim=2, implementation="torch"))
    mlp = MLP(enc.output_dim, 3, 64, num_layers=2)
    rows, cols = torch.meshgrid(torch.arange(256), torch.arange(256), indexing="ij")
    uv = (torch.stack([cols, rows], -1).reshape(-1, 2).float() + 0.5) / 256
    optimizer = torch.optim.Adam([*enc.parameters(), *mlp.parameters()], lr=1e-2, betas=(0.9, 0.99), eps=1e-15)
    times = []
    for _ in range(80):
        start = time.perf_counter()
        loss = (mlp(enc(uv)) - image).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    with torch.no_grad():
        mse = (mlp(enc(uv)) - image).square().mean().item()
    return {"fit_step_ms": 1e3 * statistics.median(times), "fit_psnr_db": -10 * math.log10(mse)}
