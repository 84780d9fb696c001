"""The plain MLP building block."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dyntet.nn.mlp import MLP


def test_layer_structure_and_shapes():
    mlp = MLP(10, 4, 32, num_layers=3)
    assert [(layer.in_features, layer.out_features) for layer in mlp.layers] == [(10, 32), (32, 32), (32, 4)]
    assert isinstance(mlp.layers[-1], nn.Linear)
    assert mlp(torch.rand(2, 7, 10)).shape == (2, 7, 4)


def test_single_layer_is_an_affine_map():
    torch.manual_seed(0)
    mlp = MLP(3, 2, 99, num_layers=1)
    x = torch.randn(5, 3)
    torch.testing.assert_close(mlp(x), x @ mlp.layers[0].weight.t() + mlp.layers[0].bias)


def test_activations_are_applied_between_layers_and_at_the_output():
    torch.manual_seed(1)
    mlp = MLP(4, 3, 8, num_layers=2, activation=nn.Tanh, output_activation=nn.Sigmoid)
    x = torch.randn(6, 4)
    hidden = torch.tanh(mlp.layers[0](x))
    torch.testing.assert_close(mlp(x), torch.sigmoid(mlp.layers[1](hidden)))


def test_relu_hidden_layers_by_default():
    mlp = MLP(1, 1, 1, num_layers=2)
    with torch.no_grad():
        mlp.layers[0].weight.fill_(1.0), mlp.layers[0].bias.zero_()
        mlp.layers[1].weight.fill_(1.0), mlp.layers[1].bias.zero_()
    out = mlp(torch.tensor([[-2.0], [3.0]]))
    torch.testing.assert_close(out, torch.tensor([[0.0], [3.0]]))


@pytest.mark.parametrize("args", [(0, 1, 1, 1), (1, 0, 1, 1), (1, 1, 0, 1), (1, 1, 1, 0)])
def test_rejects_bad_sizes(args):
    with pytest.raises(ValueError):
        MLP(*args)


def test_rejects_wrong_input_width():
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\]"):
        MLP(3, 1, 4, 2)(torch.zeros(2, 4))
