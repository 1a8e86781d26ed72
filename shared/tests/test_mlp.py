"""The shared tanh MLP: layer sizes, the forward Laplacian against autograd, and save/load round trips."""

from __future__ import annotations

import json

import pytest
import torch

from papers_common import MLP, InputError, MLPConfig, pretrained_extra, save_checkpoint

F64 = torch.float64


def make_mlp(in_dim: int, width: int = 16, depth: int = 2, *, seed: int = 0, dtype: torch.dtype = F64) -> MLP:
    torch.manual_seed(seed)
    return MLP(MLPConfig(in_dim, width, depth)).to(dtype)


def autograd_laplacian(g: MLP, z: torch.Tensor, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient and Laplacian over the first ``dims`` inputs by one reverse pass per diagonal entry."""
    z = z.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(g(z).sum(), z, create_graph=True)
    rows = [torch.autograd.grad(grad[:, i].sum(), z, retain_graph=True)[0][:, i] for i in range(dims)]
    return grad.detach(), torch.stack(rows, 1).sum(1)


def test_layer_sizes_follow_the_config():
    g = MLP(MLPConfig(11, 8, 3))
    shapes = [tuple(layer.weight.shape) for layer in g.layers]
    assert shapes == [(8, 11), (8, 8), (8, 8), (1, 8)]
    assert g(torch.zeros(5, 11)).shape == (5, 1)


@pytest.mark.parametrize("field", ["in_dim", "width", "depth"])
def test_config_rejects_empty_layers(field):
    sizes = {"in_dim": 3, "width": 4, "depth": 2, field: 0}
    with pytest.raises(InputError, match=f"MLPConfig.{field} must be at least 1"):
        MLPConfig(**sizes)


@pytest.mark.parametrize("laplace_dims", [1, 3, 4])
def test_forward_laplacian_matches_forward_and_autograd(laplace_dims):
    """Value equals forward(); gradient and Laplacian (over the first k inputs) equal autograd's."""
    g = make_mlp(4, 16, 3, seed=8)
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    value, gradient, laplacian = g.forward_laplacian(z, laplace_dims)
    assert value.shape == (6,)
    assert gradient.shape == (6, 4)
    assert laplacian.shape == (6,)
    torch.testing.assert_close(value, g(z).squeeze(-1), rtol=0, atol=1e-14)
    grad, lap = autograd_laplacian(g, z, laplace_dims)
    torch.testing.assert_close(gradient, grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(laplacian, lap, rtol=1e-10, atol=1e-12)


def test_forward_laplacian_is_differentiable_in_the_inputs():
    """Losses built on it (an adversarial search over collocation points) need its input gradient: compare the
    gradient of the squared Laplacian with central finite differences."""
    g = make_mlp(3, 8, 2, seed=5)
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(2), dtype=F64, requires_grad=True)
    (found,) = torch.autograd.grad(g.forward_laplacian(z, 2)[2].square().sum(), z)
    step, numeric = 1e-6, torch.zeros_like(z)
    for i in range(3):
        shift = torch.zeros_like(z)
        shift[:, i] = step
        plus = g.forward_laplacian(z.detach() + shift, 2)[2].square()
        minus = g.forward_laplacian(z.detach() - shift, 2)[2].square()
        numeric[:, i] = (plus - minus) / (2 * step)
    torch.testing.assert_close(found, numeric, rtol=1e-6, atol=1e-8)


def test_forward_laplacian_of_a_single_point():
    g = make_mlp(2, 4, 1)
    value, gradient, laplacian = g.forward_laplacian(torch.zeros(1, 2, dtype=F64), 2)
    assert value.shape == (1,)
    assert gradient.shape == (1, 2)
    assert laplacian.shape == (1,)


def test_save_and_load_round_trip(tmp_path):
    """save_pretrained writes config.json + model.safetensors only; from_pretrained gives the same network."""
    g = make_mlp(5, 12, 2, seed=3, dtype=torch.float32).eval()
    folder = g.save_pretrained(tmp_path / "model", extra={"note": "hello"})
    assert folder == tmp_path / "model"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    stored = json.loads((folder / "config.json").read_text())
    assert {k: stored[k] for k in ("in_dim", "width", "depth")} == {"in_dim": 5, "width": 12, "depth": 2}
    assert stored["architectures"] == ["MLP"]
    assert pretrained_extra(folder) == {"note": "hello"}
    z = torch.randn(9, 5, generator=torch.Generator().manual_seed(1))
    for source in (folder, folder / "config.json", folder / "model.safetensors"):
        loaded = MLP.from_pretrained(source).eval()
        assert loaded.config == g.config
        assert torch.equal(loaded(z), g(z))
        torch.testing.assert_close(loaded.forward_laplacian(z, 4), g.forward_laplacian(z, 4), rtol=0, atol=0)
        for (name, a), (_, b) in zip(loaded.state_dict().items(), g.state_dict().items(), strict=True):
            assert torch.equal(a, b), name


def test_loading_a_checkpoint_without_a_network_config_fails(tmp_path):
    save_checkpoint(tmp_path, 0, make_mlp(3), config={"something": "else"}, rng=False)
    with pytest.raises(InputError, match="no network config"):
        MLP.from_pretrained(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no complete checkpoint"):
        MLP.from_pretrained(tmp_path / "empty")
    with pytest.raises(InputError, match="no such checkpoint"):
        MLP.from_pretrained(tmp_path / "missing.json")
