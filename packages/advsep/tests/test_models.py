"""Networks: the theorem's two-layer parameterisation, the separating direction of its noises, save/load."""

from __future__ import annotations

import math

import pytest
import torch

from advsep import (
    CNNClassifier,
    MLPClassifier,
    MLPConfig,
    generate_noise,
    load_classifier,
    make_classifier,
)
from papers_common import InputError


def test_two_layer_ntk_is_the_theorems_network():
    """f(x) = (1/√m) A relu(W x) with W ~ N(0, I/d) entrywise-scaled, A ~ Unif{±1}, no biases."""
    torch.manual_seed(0)
    d, m, k = 16, 4096, 3
    net = MLPClassifier(MLPConfig(d, k, width=m))
    first, second = net.layers[0], net.layers[2]
    assert not any("bias" in name for name, _ in net.named_parameters())
    assert set(second.weight.unique().tolist()) == {-1.0, 1.0}
    w_eff = first.weight.detach() / math.sqrt(d)  # rows w_r ~ N(0, I_d / d)
    assert float(w_eff.var()) == pytest.approx(1 / d, rel=0.02)
    x = torch.randn(5, d)
    by_hand = torch.relu(x @ w_eff.T) @ second.weight.detach().T / math.sqrt(m)
    assert torch.allclose(net(x), by_hand, atol=1e-5)
    # O(1) outputs at any width: the variance of f does not grow with m
    wide = MLPClassifier(MLPConfig(d, k, width=16 * m))
    many = torch.randn(400, d)
    with torch.no_grad():
        assert float(wide(many).std()) == pytest.approx(float(net(many).std()), rel=0.25)


def test_the_noise_is_separated_by_the_fixed_direction_of_the_theory(mixture):
    """At initialisation δ ≈ Σ_k (p_k − 1[k = y]) u_k with u_k = (1/(2√m)) Σ_r a_kr w_r, so arg min_k ⟨δ, u_k⟩ = y:
    a linear classifier with the network's own weights, no fitting, reads the label off the noise."""
    torch.manual_seed(1)
    net = MLPClassifier(MLPConfig(32, 4, width=8192))
    w_eff = net.layers[0].weight.detach() / math.sqrt(32)
    a = net.layers[2].weight.detach()
    u = a @ w_eff / (2 * math.sqrt(8192))  # (K, d)
    delta = generate_noise(net, mixture.x_train, mixture.y_train, "grad")
    predicted = (delta @ u.T).argmin(1)
    assert float((predicted == mixture.y_train).float().mean()) >= 0.95
    # and not from the data: the same direction reads shuffled labels off noises built with them
    shuffled = mixture.y_train[torch.randperm(400, generator=torch.Generator().manual_seed(0))]
    delta = generate_noise(net, mixture.x_train, shuffled, "grad")
    assert float(((delta @ u.T).argmin(1) == shuffled).float().mean()) >= 0.95


def test_standard_parameterisation_has_biases_and_depth():
    net = make_classifier("mlp", (1, 10), 4, width=16, depth=4, parameterization="standard")
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 4
    assert all(m.bias is not None for m in linears)
    assert net(torch.randn(3, 1, 10)).shape == (3, 4)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 40)])
def test_cnn_takes_images_and_signals(shape):
    net = make_classifier("cnn", shape, 10)
    assert isinstance(net, CNNClassifier)
    x = torch.randn(4, *shape)
    assert net(x).shape == (4, 10)
    assert generate_noise(net, x, torch.arange(4), "fgsm", eps=0.1).shape == x.shape


@pytest.mark.parametrize("kind", ["two-layer", "mlp", "cnn"])
def test_save_and_load_round_trip(tmp_path, kind):
    torch.manual_seed(2)
    sizes = {"two-layer": {"width": 32}, "mlp": {"width": 32, "depth": 3}, "cnn": {}}[kind]
    net = make_classifier(kind, (1, 8, 8), 10, **sizes)
    folder = net.save_pretrained(tmp_path / kind)
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors"}
    again = load_classifier(folder)
    assert type(again) is type(net)
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(again(x), net(x))


def test_bad_configurations_are_named(tmp_path):
    with pytest.raises(InputError, match="width must be an integer >= 1"):
        MLPConfig(4, 2, width=0)
    with pytest.raises(InputError, match="unknown activation 'swish'"):
        MLPConfig(4, 2, activation="swish")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown model 'resnet'"):
        make_classifier("resnet", (4,), 2)
    with pytest.raises(InputError, match="takes 4 input features, got 5"):
        make_classifier("two-layer", (4,), 2)(torch.zeros(1, 5))
    (tmp_path / "config.json").write_text('{"architectures": ["BertModel"]}')
    with pytest.raises(InputError, match="not an advsep classifier"):
        load_classifier(tmp_path)


def test_a_setting_the_model_would_not_use_is_refused():
    net = make_classifier("cnn", (1, 40), 3, activation="gelu")
    assert net.config.activation == "gelu"
    assert any(isinstance(m, torch.nn.GELU) for m in net.modules())
    with pytest.raises(InputError, match=r"the cnn has fixed channels \(32, 64\)"):
        make_classifier("cnn", (1, 40), 3, width=64)
    with pytest.raises(InputError, match="the two-layer network has depth 2, got depth=4"):
        make_classifier("two-layer", (1, 40), 3, depth=4)
