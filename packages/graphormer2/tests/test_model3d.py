"""Graphormer-3D: Gaussian basis, symmetries, padding, shared blocks, the IS2RE criterion, a few training steps."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from graphormer2.atoms import AtomsBatch, AtomsItem, Standardisation, collate_atoms
from graphormer2.model3d import GaussianBasis, Graphormer3D, Graphormer3DConfig, gaussian_pdf
from graphormer2.pbc import periodic_item

from papers_common import InputError

torch.set_num_threads(1)

F64 = torch.float64


def tiny_config(**overrides) -> Graphormer3DConfig:
    values = dict(
        layers=2, blocks=2, embed_dim=16, ffn_embed_dim=24, attention_heads=4, num_kernel=8, atom_types=64
    )
    values.update(overrides)
    return Graphormer3DConfig(**values)


def tiny_model(seed: int = 0, **overrides) -> Graphormer3D:
    """A float64 model in eval mode whose pair-type scalings and per-tag scales are spread out."""
    torch.manual_seed(seed)
    model = Graphormer3D(tiny_config(**overrides)).to(F64).eval()
    with torch.no_grad():
        model.gaussian.mul.weight.uniform_(0.5, 1.5)
        model.gaussian.bias.weight.uniform_(-0.3, 0.3)
        model.tag_scale.weight.uniform_(0.5, 1.5)
    return model


def random_system(n: int, generator: torch.Generator, tags: torch.Tensor | None = None) -> AtomsItem:
    atoms = torch.randint(1, 10, (n,), generator=generator)
    pos = 2.0 * torch.randn(n, 3, generator=generator, dtype=F64)
    item = AtomsItem.molecule(atoms, pos, energy=float(torch.randn((), generator=generator)))
    if tags is not None:
        item.tags = tags
    return item


def batch_of(*items: AtomsItem) -> AtomsBatch:
    return collate_atoms(items).to("cpu", F64)


def run(model: Graphormer3D, batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
    return model(batch.atoms, batch.tags, batch.pos, batch.real_mask)


def rotation(generator: torch.Generator) -> torch.Tensor:
    """A random proper rotation (float64, det +1) from the QR decomposition of a Gaussian matrix."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=F64))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


def test_gaussian_pdf_is_the_normal_density() -> None:
    x = torch.linspace(-2, 5, 29, dtype=F64).unsqueeze(-1)
    mean = torch.tensor([0.0, 1.3, 2.9], dtype=F64)
    std = torch.tensor([0.4, 1.0, 2.5], dtype=F64)
    expected = torch.distributions.Normal(mean, std).log_prob(x).exp()
    torch.testing.assert_close(gaussian_pdf(x, mean, std), expected, rtol=1e-12, atol=0)


def test_gaussian_basis_scales_distances_by_pair_type() -> None:
    torch.manual_seed(0)
    basis = GaussianBasis(num_kernel=5, pair_types=9).to(F64)
    with torch.no_grad():
        basis.mul.weight.copy_(torch.arange(1, 10, dtype=F64).unsqueeze(1) / 4)
        basis.bias.weight.copy_(torch.linspace(-1, 1, 9, dtype=F64).unsqueeze(1))
        basis.stds[1] = -0.7  # |σ| is used
    dist = torch.rand(2, 3, 3, dtype=F64) * 4
    pair_type = torch.randint(0, 9, (2, 3, 3))
    psi = basis(dist, pair_type)
    assert psi.shape == (2, 3, 3, 5)
    s = (pair_type + 1) / 4 * dist + torch.linspace(-1, 1, 9, dtype=F64)[pair_type]
    sigma = basis.stds.detach().abs() + 1e-5
    mu = basis.means.detach()
    expected = torch.exp(-0.5 * ((s.unsqueeze(-1) - mu) / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)
    torch.testing.assert_close(psi, expected, rtol=1e-12, atol=0)


def test_initialisation_follows_the_official_model() -> None:
    torch.manual_seed(1)
    model = Graphormer3D(tiny_config(num_kernel=256))
    assert bool((model.gaussian.means >= 0).all() and (model.gaussian.means <= 3).all())
    means = model.gaussian.means.detach()
    assert float(means.min()) < 0.2
    assert float(means.max()) > 2.8
    assert bool((model.gaussian.mul.weight == 1).all() and (model.gaussian.bias.weight == 0).all())
    assert bool((model.atom_encoder.weight[0] == 0).all())
    assert float(model.tag_scale.weight.detach().abs().max()) < 0.05


@pytest.mark.parametrize("projection", ["shared", "per_axis"])
def test_energy_is_invariant_to_rotations_and_translations(projection: str) -> None:
    generator = torch.Generator().manual_seed(3)
    model = tiny_model(deltapos_projection=projection)
    batch = batch_of(random_system(6, generator), random_system(4, generator))
    energy, _ = run(model, batch)
    r, shift = rotation(generator), torch.randn(3, generator=generator, dtype=F64) * 5
    moved = AtomsBatch(
        batch.atoms, batch.tags, batch.pos @ r.T + shift, batch.real_mask, batch.energy, batch.deltapos
    )
    moved_energy, _ = run(model, moved)
    torch.testing.assert_close(moved_energy, energy, atol=1e-8, rtol=0)
    assert energy.abs().min() > 1e-3  # not trivially zero


def test_shared_deltapos_head_is_rotation_equivariant_and_translation_invariant() -> None:
    generator = torch.Generator().manual_seed(4)
    model = tiny_model(deltapos_projection="shared")
    item = random_system(7, generator)
    batch = batch_of(item)
    _, deltapos = run(model, batch)
    r, shift = rotation(generator), torch.randn(3, generator=generator, dtype=F64) * 5
    rotated = batch_of(AtomsItem.molecule(item.atoms, item.pos @ r.T + shift))
    _, rotated_deltapos = run(model, rotated)
    torch.testing.assert_close(rotated_deltapos, deltapos @ r.T, atol=1e-8, rtol=0)
    assert deltapos.abs().max() > 1e-3


def test_per_axis_head_is_the_official_frame_dependent_form() -> None:
    """Official per-axis projections: translation invariant, not rotation equivariant (tied weights make it so)."""
    generator = torch.Generator().manual_seed(5)
    model = tiny_model(deltapos_projection="per_axis")
    item = random_system(6, generator)
    r, shift = rotation(generator), torch.randn(3, generator=generator, dtype=F64)
    _, deltapos = run(model, batch_of(item))
    _, shifted = run(model, batch_of(AtomsItem.molecule(item.atoms, item.pos + shift)))
    torch.testing.assert_close(shifted, deltapos, atol=1e-8, rtol=0)
    _, rotated = run(model, batch_of(AtomsItem.molecule(item.atoms, item.pos @ r.T)))
    assert (rotated - deltapos @ r.T).abs().max() > 1e-3

    shared = tiny_model(deltapos_projection="shared")
    with torch.no_grad():
        model.deltapos_head.axis_weight.copy_(shared.deltapos_head.axis_proj.weight.expand(3, -1))
        model.deltapos_head.axis_bias.zero_()
    state = {k: v for k, v in shared.state_dict().items() if not k.startswith("deltapos_head.axis")}
    model.load_state_dict(state, strict=False)
    _, tied = run(model, batch_of(item))
    _, reference = run(shared, batch_of(item))
    torch.testing.assert_close(tied, reference, atol=1e-10, rtol=0)


def test_permuting_atoms_permutes_deltapos_and_keeps_energy() -> None:
    generator = torch.Generator().manual_seed(6)
    model = tiny_model(deltapos_projection="per_axis")
    item = random_system(6, generator, tags=torch.tensor([0, 1, 2, 2, 1, 0]))
    perm = torch.randperm(6, generator=generator)
    permuted = AtomsItem(item.atoms[perm], item.tags[perm], item.pos[perm], item.real_mask[perm], item.energy,
                         item.deltapos[perm])  # fmt: skip
    energy, deltapos = run(model, batch_of(item))
    permuted_energy, permuted_deltapos = run(model, batch_of(permuted))
    torch.testing.assert_close(permuted_energy, energy, atol=1e-10, rtol=0)
    torch.testing.assert_close(permuted_deltapos, deltapos[:, perm], atol=1e-10, rtol=0)


def test_padding_does_not_change_outputs() -> None:
    generator = torch.Generator().manual_seed(7)
    model = tiny_model()
    small, large = random_system(3, generator), random_system(8, generator)
    alone_energy, alone_deltapos = run(model, batch_of(small))
    energy, deltapos = run(model, batch_of(large, small))
    torch.testing.assert_close(energy[1], alone_energy[0], atol=1e-10, rtol=0)
    torch.testing.assert_close(deltapos[1, :3], alone_deltapos[0], atol=1e-10, rtol=0)


def test_energy_sums_real_atoms_with_positive_tags_only() -> None:
    generator = torch.Generator().manual_seed(8)
    model = tiny_model()
    item = random_system(5, generator, tags=torch.tensor([0, 1, 2, 2, 1]))
    item.real_mask = torch.tensor([True, True, True, True, False])
    energy, _ = run(model, batch_of(item))
    h = torch.zeros(0)

    def keep(_module, _inputs, output):
        nonlocal h
        h = output

    handle = model.final_norm.register_forward_hook(keep)
    run(model, batch_of(item))
    handle.remove()
    per_atom = model.energy_head(h).squeeze(-1) * model.tag_scale(batch_of(item).tags).squeeze(-1)
    torch.testing.assert_close(energy, per_atom[:, 1:4].sum(dim=1), atol=1e-12, rtol=0)


def test_blocks_share_the_weights_of_the_layer_stack() -> None:
    one = Graphormer3D(tiny_config(layers=2, blocks=1))
    four = Graphormer3D(tiny_config(layers=2, blocks=4))
    assert sum(p.numel() for p in one.parameters()) == sum(p.numel() for p in four.parameters())
    # 1 layer applied twice equals 2 distinct layers holding the same weights
    shared = tiny_model(layers=1, blocks=2)
    unrolled = tiny_model(layers=2, blocks=1)
    state = shared.state_dict()
    state.update(
        {k.replace("layers.0.", "layers.1."): v for k, v in state.items() if k.startswith("layers.0.")}
    )
    unrolled.load_state_dict(state)
    batch = batch_of(random_system(5, torch.Generator().manual_seed(9)))
    for a, b in zip(run(shared, batch), run(unrolled, batch), strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    single = tiny_model(layers=1, blocks=1)
    single.load_state_dict(shared.state_dict())
    assert (run(single, batch)[0] - run(shared, batch)[0]).abs().max() > 1e-6


def test_node_loss_weight_decays_linearly_from_15_to_1() -> None:
    model = Graphormer3D(tiny_config())
    assert model.node_loss_weight(0, 100) == 15.0
    assert model.node_loss_weight(50, 100) == pytest.approx(8.0)
    assert model.node_loss_weight(100, 100) == pytest.approx(1.0)
    assert model.node_loss_weight(250, 100) == pytest.approx(1.0)
    with pytest.raises(InputError):
        model.node_loss_weight(-1, 100)


def test_loss_matches_a_per_system_reference() -> None:
    generator = torch.Generator().manual_seed(10)
    standard = Standardisation(2.0, 3.0, (0.1, -0.2, 0.3), (0.5, 1.5, 2.0))
    model = Graphormer3D(tiny_config().with_standardisation(standard)).to(F64)
    a = random_system(4, generator, tags=torch.tensor([0, 1, 2, 2]))
    b = random_system(3, generator)
    b.real_mask = torch.tensor([True, True, False])
    for item in (a, b):
        item.deltapos = torch.randn(item.deltapos.shape, generator=generator, dtype=F64)
    batch = batch_of(a, b)
    energy = torch.randn(2, generator=generator, dtype=F64)
    deltapos = torch.randn(2, 4, 3, generator=generator, dtype=F64)
    loss, parts = model.loss(batch, (energy, deltapos), step=30, total_steps=40)

    terms = []
    lam = 15 - 14 * 30 / 40
    for k, item in enumerate((a, b)):
        e_term = abs(float(energy[k]) - (item.energy - 2.0) / 3.0)
        counted = [i for i in range(len(item.atoms)) if item.real_mask[i] and item.tags[i] > 0]
        node = 0.0
        for i in counted:
            for c in range(3):
                target = (float(item.deltapos[i, c]) - standard.deltapos_mean[c]) / standard.deltapos_std[c]
                node += abs(float(deltapos[k, i, c]) - target) / 3
        terms.append(e_term + lam * node / len(counted))
    assert float(loss) == pytest.approx(sum(terms) / 2, rel=1e-12)
    assert parts["node_loss_weight"] == pytest.approx(lam)
    assert parts["energy_mae"] == pytest.approx(parts["energy"] * 3.0)


def test_node_loss_off_ignores_deltapos() -> None:
    generator = torch.Generator().manual_seed(11)
    model = tiny_model()
    batch = batch_of(random_system(4, generator), random_system(3, generator))
    energy, deltapos = run(model, batch)
    loss, parts = model.loss(batch, (energy, deltapos), step=0, total_steps=10, node_loss=False)
    expected = (energy - model.standardisation.standardise_energy(batch.energy)).abs().mean()
    torch.testing.assert_close(loss, expected, atol=1e-12, rtol=0)
    assert parts["node_loss_weight"] == 0.0
    noisy = AtomsBatch(
        batch.atoms, batch.tags, batch.pos, batch.real_mask, batch.energy, batch.deltapos + 5.0
    )
    same, _ = model.loss(noisy, (energy, deltapos), step=0, total_steps=10, node_loss=False)
    assert same.item() == loss.item()
    loss.backward()
    assert all(p.grad is None or not p.grad.any() for p in model.deltapos_head.parameters())
    with_nodes, _ = model.loss(noisy, run(model, batch), step=0, total_steps=10)
    assert with_nodes.item() > loss.item() + 1.0


def test_predict_destandardises() -> None:
    standard = Standardisation(-4.0, 2.5, (0.1, 0.2, 0.3), (2.0, 3.0, 4.0))
    model = tiny_model().eval()
    model.config = model.config.with_standardisation(standard)
    batch = batch_of(random_system(4, torch.Generator().manual_seed(12)))
    energy, deltapos = run(model, batch)
    real_energy, real_deltapos = model.predict(batch)
    torch.testing.assert_close(real_energy, energy * 2.5 - 4.0)
    torch.testing.assert_close(
        real_deltapos,
        deltapos * torch.tensor([2.0, 3.0, 4.0], dtype=F64) + torch.tensor([0.1, 0.2, 0.3], dtype=F64),
    )


def test_config_rejects_bad_values() -> None:
    with pytest.raises(InputError, match="divisible"):
        tiny_config(embed_dim=18)
    with pytest.raises(InputError, match="deltapos_projection"):
        tiny_config(deltapos_projection="diagonal")
    with pytest.raises(InputError, match="positive"):
        tiny_config(energy_std=0.0)


def test_a_platinum_gold_slab_with_an_adsorbate_trains() -> None:
    """OC20's catalysts: a Pt/Au slab (periodic images added) with a CO adsorbate runs forward and backward in the
    default vocabulary (every element up to Bi and beyond), and Pt and Au get embedding gradients of their own."""
    cell = torch.tensor([[5.6, 0.0, 0.0], [2.8, 4.85, 0.0], [0.0, 0.0, 20.0]])
    slab = torch.tensor([[0.0, 0.0, 0.0], [2.8, 0.0, 0.0], [1.4, 2.42, 0.0], [4.2, 2.42, 0.0],
                         [1.4, 0.81, 2.3], [4.2, 0.81, 2.3], [2.8, 3.23, 2.3], [0.0, 3.23, 2.3]])  # fmt: skip
    pos = torch.cat([slab, torch.tensor([[1.4, 0.81, 4.3], [1.4, 0.81, 5.45]])])
    atoms = torch.tensor([78, 78, 79, 79, 78, 79, 77, 83, 6, 8])  # Pt, Au, Ir, Bi; C, O
    tags = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    deltapos = torch.zeros(10, 3)
    deltapos[8:, 2] = 0.2
    item = periodic_item(cell, pos, atoms, tags, energy=-1.5, pos_relaxed=pos + deltapos)
    assert len(item.atoms) > 10  # images of the slab near the adsorbate
    batch = collate_atoms(
        [item, random_system(4, torch.Generator().manual_seed(3), torch.tensor([2, 2, 2, 2]))]
    )
    config = Graphormer3DConfig(layers=1, blocks=1, embed_dim=16, ffn_embed_dim=16, attention_heads=2,
                                num_kernel=8, deltapos_projection="per_axis")  # fmt: skip
    assert config.atom_types == 128
    torch.manual_seed(0)
    model = Graphormer3D(config)
    loss, parts = model.loss(batch, model(batch.atoms, batch.tags, batch.pos, batch.real_mask), 0, 10)
    loss.backward()
    assert math.isfinite(loss.item())
    assert math.isfinite(parts["energy_mae"])
    grad = model.atom_encoder.weight.grad
    assert all(grad[z].abs().sum() > 0 for z in (77, 78, 79, 83))
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

    # a model saved with a smaller vocabulary (0.2.0's 64) says so instead of indexing past its table
    small = Graphormer3D(tiny_config(atom_types=64)).float()
    with pytest.raises(InputError, match="atomic number 83 is outside this model's vocabulary of atomic numbers "
                       "below 64"):  # fmt: skip
        small(batch.atoms, batch.tags, batch.pos, batch.real_mask)


def test_save_and_load_pretrained(tmp_path: Path) -> None:
    model = tiny_model(deltapos_projection="shared").float()
    model.save_pretrained(tmp_path / "model")
    loaded = Graphormer3D.from_pretrained(tmp_path / "model").eval()
    assert loaded.config == model.config
    batch = collate_atoms([random_system(5, torch.Generator().manual_seed(13))]).to("cpu", torch.float32)
    for a, b in zip(run(model, batch), run(loaded, batch), strict=True):
        torch.testing.assert_close(a, b)


def test_a_few_adam_steps_lower_the_loss() -> None:
    generator = torch.Generator().manual_seed(14)
    items = [random_system(n, generator) for n in (3, 4, 5, 4)]
    for (
        item
    ) in items:  # a smooth target: energy grows with the number of close pairs, Δpos pulls to the centroid
        close = (torch.cdist(item.pos, item.pos) < 3.0).sum() - len(item.atoms)
        item.energy = float(close) / 2
        item.deltapos = 0.1 * (item.pos.mean(dim=0) - item.pos)
    batch = collate_atoms(items).to("cpu", torch.float32)
    standard = Standardisation.fit(items)
    torch.manual_seed(0)
    model = Graphormer3D(
        tiny_config(dropout=0.0, attention_dropout=0.0, head_dropout=0.0).with_standardisation(standard)
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(30):
        loss, _ = model.loss(batch, run(model, batch), step, 30)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
