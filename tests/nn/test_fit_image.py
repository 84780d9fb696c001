"""A hash grid plus a small MLP must learn a structured 256×256 image quickly (what G asks of them)."""

from __future__ import annotations

import math

import numpy as np
import torch

from dyntet.nn.encodings import HashGridConfig, HashGridEncoding
from dyntet.nn.mlp import MLP


def structured_image(size: int = 256) -> torch.Tensor:
    """float [size, size, 3] in [0, 1]: smooth waves, a radial ramp, hard-edged blocks and rows of
    short dark strokes (text-like), so both low and high frequencies must be fitted."""
    y, x = np.mgrid[0:size, 0:size] / size
    red = 0.5 + 0.5 * np.sin(2 * np.pi * x) * np.cos(np.pi * y)
    green = np.clip(1.2 * np.hypot(x - 0.3, y - 0.6), 0, 1)
    blue = ((x > 0.5) ^ (y > 0.35)).astype(float) * 0.8 + 0.1
    image = np.stack([red, green, blue], -1)
    lines = np.floor(y * 32) % 4 == 1
    strokes = (np.sin(37 * np.floor(x * 64) + 11 * np.floor(y * 32)) > 0.2) & (np.floor(x * 256) % 4 != 0)
    image[lines & strokes & (x > 0.1) & (x < 0.9) & (y > 0.55)] = 0.05
    return torch.tensor(image, dtype=torch.float32)


def test_hash_grid_and_mlp_fit_an_image_to_30_db():
    torch.manual_seed(0)
    image = structured_image()
    # 16 levels from 16 to 512 cells; levels above 180 cells hash 2-D grids into 2^15 entries (collisions)
    encoding = HashGridEncoding(HashGridConfig(levels=16, log2_table_size=15, base_resolution=16,
                                               max_resolution=512, input_dim=2, implementation="torch"))
    assert 0 < encoding.grid.layout.num_dense < 16
    mlp = MLP(encoding.output_dim, 3, 64, num_layers=2)
    rows, cols = torch.meshgrid(torch.arange(256), torch.arange(256), indexing="ij")
    uv = (torch.stack([cols, rows], -1).reshape(-1, 2).float() + 0.5) / 256
    target = image.reshape(-1, 3)
    # instant-ngp's optimiser settings
    optimizer = torch.optim.Adam([*encoding.parameters(), *mlp.parameters()], lr=1e-2, betas=(0.9, 0.99), eps=1e-15)
    for _ in range(80):
        loss = (mlp(encoding(uv)) - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        mse = (mlp(encoding(uv)) - target).square().mean().item()
    psnr = -10 * math.log10(mse)
    assert psnr >= 30.0, f"PSNR {psnr:.1f} dB after 80 steps"
