"""Noise generators: FGSM against finite differences, the L2 and PGD geometry, labels, modes and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from advsep import MLPClassifier, MLPConfig, generate_noise, input_gradient
from papers_common import InputError

F64 = torch.float64


def tiny(seed: int = 0, activation: str = "tanh") -> MLPClassifier:
    torch.manual_seed(seed)
    return MLPClassifier(MLPConfig(5, 3, width=7, depth=2, activation=activation)).double()  # type: ignore[arg-type]


def finite_difference_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, h: float = 1e-6
) -> torch.Tensor:
    """Central differences of each example's own cross-entropy, coordinate by coordinate (independent of autograd)."""
    grad = torch.zeros_like(x)
    with torch.no_grad():
        for j in range(x.shape[1]):
            step = torch.zeros_like(x)
            step[:, j] = h
            up = F.cross_entropy(model(x + step), y, reduction="none")
            down = F.cross_entropy(model(x - step), y, reduction="none")
            grad[:, j] = (up - down) / (2 * h)
    return grad


def test_input_gradient_and_fgsm_match_finite_differences():
    model = tiny()
    x = torch.randn(6, 5, dtype=F64, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    expected = finite_difference_gradient(model, x, y)
    assert torch.allclose(input_gradient(model, x, y), expected, atol=1e-8)
    fgsm = generate_noise(model, x, y, "fgsm", eps=0.25)
    assert torch.equal(fgsm, 0.25 * expected.sign())
    raw = generate_noise(model, x, y, "grad")
    assert torch.allclose(raw, expected, atol=1e-8)


def test_each_examples_noise_is_its_own_whatever_the_batch():
    model = tiny(2)
    x = torch.randn(9, 5, dtype=F64, generator=torch.Generator().manual_seed(3))
    y = torch.randint(0, 3, (9,), generator=torch.Generator().manual_seed(4))
    whole = generate_noise(model, x, y, "grad")
    batched = generate_noise(model, x, y, "grad", batch_size=2)
    single = torch.cat([generate_noise(model, x[i : i + 1], y[i : i + 1], "grad") for i in range(9)])
    assert torch.allclose(whole, batched, atol=1e-14)
    assert torch.allclose(whole, single, atol=1e-14)


def test_l2_noise_has_norm_eps_and_direction_of_the_gradient():
    model = tiny(4)
    x = torch.randn(5, 5, dtype=F64, generator=torch.Generator().manual_seed(5))
    y = torch.tensor([0, 1, 2, 1, 0])
    delta = generate_noise(model, x, y, "grad_l2", eps=0.3)
    assert torch.allclose(delta.norm(dim=1), torch.full((5,), 0.3, dtype=F64), atol=1e-12)
    g = input_gradient(model, x, y)
    cosine = F.cosine_similarity(delta, g, dim=1)
    assert torch.allclose(cosine, torch.ones(5, dtype=F64), atol=1e-12)


def test_pgd_stays_in_the_ball_raises_the_loss_and_one_full_step_is_fgsm():
    model = tiny(6)
    x = torch.randn(20, 5, dtype=F64, generator=torch.Generator().manual_seed(7))
    y = torch.randint(0, 3, (20,), generator=torch.Generator().manual_seed(8))
    eps = 0.2
    delta = generate_noise(model, x, y, "pgd", eps=eps, steps=15)
    assert float(delta.abs().max()) <= eps + 1e-12
    with torch.no_grad():
        clean = F.cross_entropy(model(x), y, reduction="none")
        attacked = F.cross_entropy(model(x + delta), y, reduction="none")
        one_step = F.cross_entropy(
            model(x + generate_noise(model, x, y, "fgsm", eps=eps)), y, reduction="none"
        )
    assert bool((attacked > clean).all())
    assert (
        float(attacked.mean()) >= float(one_step.mean()) - 1e-9
    )  # more steps do at least as well on average
    single = generate_noise(model, x, y, "pgd", eps=eps, steps=1, step_size=eps)
    assert torch.allclose(single, generate_noise(model, x, y, "fgsm", eps=eps), atol=1e-14)
    started = generate_noise(
        model, x, y, "pgd", eps=eps, steps=3, random_start=True, generator=torch.Generator().manual_seed(1)
    )
    again = generate_noise(
        model, x, y, "pgd", eps=eps, steps=3, random_start=True, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(started, again)
    assert float(started.abs().max()) <= eps + 1e-12


def test_clip_keeps_the_attacked_input_in_the_box():
    model = tiny(9)
    x = torch.rand(10, 5, dtype=F64, generator=torch.Generator().manual_seed(2))
    y = torch.randint(0, 3, (10,), generator=torch.Generator().manual_seed(3))
    for method in ("fgsm", "pgd", "grad_l2"):
        delta = generate_noise(model, x, y, method, eps=0.5, clip=(0.0, 1.0))  # type: ignore[arg-type]
        moved = x + delta
        assert float(moved.min()) >= 0.0
        assert float(moved.max()) <= 1.0


def test_shape_dtype_mode_and_parameters_are_left_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, 4))
    model.train()
    x = torch.randn(7, 3, 4)
    y = torch.randint(0, 4, (7,))
    noise = generate_noise(model, x, y, "fgsm", eps=0.1)
    assert noise.shape == x.shape
    assert noise.dtype == x.dtype
    assert model.training  # given back in its own mode
    assert all(p.grad is None for p in model.parameters())
    # made in eval mode: dropout off, so the noise is deterministic
    assert torch.equal(noise, generate_noise(model, x, y, "fgsm", eps=0.1))


def test_the_label_argument_decides_the_noise():
    model = tiny(1)
    x = torch.randn(4, 5, dtype=F64, generator=torch.Generator().manual_seed(9))
    a = generate_noise(model, x, torch.tensor([0, 0, 0, 0]), "grad")
    b = generate_noise(model, x, torch.tensor([1, 1, 1, 1]), "grad")
    assert not torch.allclose(a, b)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y": torch.tensor([0, 3])}, r"label 3 is outside \[0, 3\)"),
        ({"y": torch.tensor([0, -1])}, "label -1"),
        ({"y": torch.tensor([0, 1, 2])}, "2 examples but labels of shape"),
        ({"y": torch.tensor([0.0, 1.0])}, "labels must be integers"),
        ({"x": torch.tensor([[0.0] * 5, [float("nan")] * 5], dtype=F64)}, "example 1 has a non-finite value"),
        ({"eps": 0.0}, "eps must be positive"),
        ({"eps": -1.0}, "eps must be positive"),
        ({"method": "fgm"}, "unknown noise method 'fgm'"),
        ({"method": "pgd", "steps": 0}, "PGD steps must be a positive integer"),
        ({"method": "pgd", "step_size": -0.1}, "step size must be positive"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    args = {"x": torch.zeros(2, 5, dtype=F64), "y": torch.tensor([0, 1]), "method": "fgsm", "eps": 0.1}
    args.update(kwargs)
    x, y, method = args.pop("x"), args.pop("y"), args.pop("method")
    with pytest.raises(InputError, match=message):
        generate_noise(tiny(), x, y, method, **args)
