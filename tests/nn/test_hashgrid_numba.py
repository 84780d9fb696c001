"""The compiled hash grid against the PyTorch reference: values, both gradients, threads, fallbacks."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("numba")

from dyntet.nn.encodings import HashGridConfig, HashGridEncoding  # noqa: E402
from dyntet.nn.hashgrid_numba import NumbaHashGrid  # noqa: E402
from dyntet.nn.hashgrid_torch import TorchHashGrid  # noqa: E402


def _pair(dim: int, levels: int = 6, features: int = 2, log2_table: int = 9, max_resolution: int = 90):
    args = (levels, features, log2_table, 3, max_resolution, dim)
    reference, compiled = TorchHashGrid(*args), NumbaHashGrid(*args)
    with torch.no_grad():
        reference.table.uniform_(-1, 1)
    compiled.load_state_dict(reference.state_dict())     # same parameters: checkpoints interchange
    assert 0 < reference.layout.num_dense < levels        # dense and hashed levels both exercised
    return reference, compiled


def _points(n: int, dim: int) -> torch.Tensor:
    x = torch.rand(n, dim)
    x[0] = 1.0                                            # far corner: stays in the last cell
    x[1] = 0.0
    x[2, 0] = 1.3                                         # outside: clamped like the reference
    x[3, -1] = -0.2
    return x


@pytest.mark.parametrize("features", [1, 2, 4])
def test_values_and_gradients_match_the_reference(features):
    dim = 3
    torch.manual_seed(features)
    reference, compiled = _pair(dim, features=features)
    x = _points(300, dim)
    weights = torch.randn(300, reference.output_dim)
    results = []
    for grid in (reference, compiled):
        xi = x.clone().requires_grad_(True)
        out = grid(xi)
        (out * weights).sum().backward()
        results.append((out.detach(), xi.grad, grid.table.grad))
    (out_r, gx_r, gt_r), (out_c, gx_c, gt_c) = results
    torch.testing.assert_close(out_c, out_r, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gt_c, gt_r, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gx_c, gx_r, atol=1e-3, rtol=1e-4)
    assert gt_r.abs().sum() > 0 and gx_r[4:].abs().sum() > 0   # the comparison is not between zeros
    assert gx_c[2, 0] == 0 and gx_c[3, -1] == 0           # clamped components get no gradient


def test_threads_split_points_and_levels_without_changing_the_result():
    torch.manual_seed(1)
    reference, compiled = _pair(3, levels=5, log2_table=12)
    x = torch.rand(9000, 3, requires_grad=True)          # enough points for several tasks
    weights = torch.randn(9000, compiled.output_dim)
    threads = torch.get_num_threads()
    grads = []
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            compiled.table.grad = None
            x.grad = None
            (compiled(x) * weights).sum().backward()
            grads.append((x.grad.clone(), compiled.table.grad.clone()))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(grads[0][1], grads[1][1])          # each task owns its levels: bit-identical
    torch.testing.assert_close(grads[0][0], grads[1][0])  # per-task partial sums: equal to rounding
    (reference(x) * weights).sum().backward()
    torch.testing.assert_close(grads[0][1], reference.table.grad, atol=1e-4, rtol=1e-4)


def test_table_only_gradient_and_no_grad_inference():
    reference, compiled = _pair(3)
    x = torch.rand(50, 3)                                 # positions without a gradient (G at fixed points)
    compiled(x).sum().backward()
    reference(x).sum().backward()
    torch.testing.assert_close(compiled.table.grad, reference.table.grad, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), reference(x), atol=1e-5, rtol=1e-5)


def test_other_dimensions_fall_back_to_the_reference():
    torch.manual_seed(2)
    reference, compiled = _pair(2)
    x = torch.rand(30, 2)
    torch.testing.assert_close(compiled(x), reference(x))


def test_float64_falls_back_to_the_reference_and_stays_differentiable():
    reference, compiled = _pair(3)
    reference.double()
    compiled.double()
    x = torch.rand(20, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: compiled(p), (x,), eps=1e-6, atol=1e-5)
    torch.testing.assert_close(compiled(x), reference(x))


def test_encoding_builds_the_compiled_grid_on_request():
    enc = HashGridEncoding(HashGridConfig(levels=3, log2_table_size=8, implementation="numba"))
    assert enc.implementation == "numba" and isinstance(enc.grid, NumbaHashGrid)
    assert enc(torch.rand(7, 3)).shape == (7, enc.output_dim)
