"""Saved solutions: a network and its problem written in the Hugging Face layout come back with equal predictions,
from the model folder or from the run directory that holds it."""

from __future__ import annotations

import json

import pytest
import torch

from papers_common import MLP, InputError, MLPConfig
from pinn_linf import Solution, fields, load_solution, make_problem, save_solution

F64 = torch.float64


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "problem", [make_problem("hjb-lqg", 3, mu=0.5), make_problem("hjb-lin", 3, horizon=2.0, c=1.75)]
)
@pytest.mark.parametrize("where", ["model-folder", "run-directory"])
def test_save_and_load_round_trip(problem, where, tmp_path, make_mlp):
    net = make_mlp(4, 12, 2, seed=3, dtype=torch.float32)
    folder = save_solution(net, problem, tmp_path / "run" / "model")
    assert folder == tmp_path / "run" / "model"
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors"}
    assert json.loads((folder / "config.json").read_text())["extra"]["problem"] == problem.describe()

    solution = load_solution(folder if where == "model-folder" else tmp_path / "run")
    assert isinstance(solution, Solution)
    assert solution.problem == problem
    assert type(solution.problem) is type(problem)
    assert solution.net.config == MLPConfig(4, 12, 2)
    assert not solution.net.training

    z = problem.sample(7, seeded(1))
    x, t = z[:, :3], z[:, 3]
    with torch.no_grad():
        expected = net(z).squeeze(-1)
    assert torch.equal(solution(x, t), expected)
    found = solution.fields(x, t)
    reference = fields(net, z, 3)
    for name in ("u", "grad", "dt", "laplacian"):
        assert torch.equal(getattr(found, name), getattr(reference, name).detach()), name
        assert not getattr(found, name).requires_grad


def test_one_time_for_all_points(tmp_path, make_mlp):
    problem = make_problem("hjb-lin", 2)
    net = make_mlp(3, 8, 1)
    solution = load_solution(save_solution(net, problem, tmp_path))
    x = torch.randn(5, 2, generator=seeded(2), dtype=F64)
    at_half = solution(x, 0.5)
    assert at_half.shape == (5,)
    torch.testing.assert_close(at_half, solution(x, torch.full((5,), 0.5, dtype=F64)), rtol=0, atol=0)
    assert not torch.equal(at_half, solution(x, 0.0))
    # numbers that are not tensors are accepted and put on the network's dtype
    assert solution(x.tolist(), 0.5).dtype == solution.net.layers[0].weight.dtype


def test_points_of_the_wrong_dimension_are_rejected(tmp_path, make_mlp):
    solution = load_solution(save_solution(make_mlp(3, 8, 1), make_problem("hjb-lin", 2), tmp_path))
    with pytest.raises(InputError, match=r"x must have shape \(points, 2\), got \(5, 3\)"):
        solution(torch.zeros(5, 3), 0.0)
    with pytest.raises(InputError, match=r"x must have shape \(points, 2\), got \(2,\)"):
        solution.fields(torch.zeros(2), 0.0)


def test_a_folder_without_a_problem_is_refused(tmp_path):
    MLP(MLPConfig(3, 4, 1)).save_pretrained(tmp_path)
    with pytest.raises(InputError, match="records no problem"):
        load_solution(tmp_path)
    MLP(MLPConfig(3, 4, 1)).save_pretrained(tmp_path / "other", extra={"target_scale": 2.0})
    with pytest.raises(InputError, match="records no problem"):
        load_solution(tmp_path / "other")


def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(InputError):
        load_solution(tmp_path)


def test_a_float64_solution_stays_float64(tmp_path, make_mlp):
    net = make_mlp(3, 8, 1, dtype=F64)
    solution = load_solution(save_solution(net, make_problem("hjb-lin", 2), tmp_path))
    assert solution.net.layers[0].weight.dtype == F64
