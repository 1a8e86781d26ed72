"""Periodic images of OC20-style cells against a brute-force loop over images and atoms."""

from __future__ import annotations

import itertools

import pytest
import torch
from graphormer2.pbc import IN_PLANE_OFFSETS, periodic_images, periodic_item

from papers_common import InputError

torch.set_num_threads(1)

F64 = torch.float64


def brute_force(cell, pos, atoms, tags, cutoff):
    """Kept images in the official order: offset (−1,−1), (−1,0), (−1,1), (0,−1), (0,1), (1,−1), (1,0), (1,1),
    then atom index within each offset."""
    kept = []
    for a, b in itertools.product((-1, 0, 1), repeat=2):
        if (a, b) == (0, 0):
            continue
        shift = a * cell[0] + b * cell[1]
        for i in range(len(atoms)):
            image = pos[i] + shift
            near = any(
                float(torch.linalg.vector_norm(image - pos[j])) < cutoff
                for j in range(len(atoms))
                if tags[j] == 2
            )
            if near and tags[i] != 2:
                kept.append((int(atoms[i]), int(tags[i]), image))
    return kept


@pytest.fixture
def slab():
    """A skewed 2-atom-thick cell with an adsorbate of two atoms; a cutoff of 3.3 Å keeps some images only."""
    cell = torch.tensor([[3.0, 0.0, 0.0], [1.2, 2.8, 0.0], [0.3, 0.2, 12.0]], dtype=F64)
    pos = torch.tensor(
        [
            [0.0, 0.0, 0.0],
            [1.5, 1.4, 0.0],
            [0.6, 0.7, 1.8],
            [2.2, 2.0, 1.8],
            [1.1, 1.0, 3.6],
            [1.9, 1.3, 4.5],
        ],
        dtype=F64,
    )
    atoms = torch.tensor([29, 29, 29, 29, 6, 8])
    tags = torch.tensor([0, 0, 1, 1, 2, 2])
    return cell, pos, atoms, tags


def test_offsets_are_the_eight_in_plane_neighbours() -> None:
    offsets = {tuple(o) for o in IN_PLANE_OFFSETS.tolist()}
    assert offsets == {(a, b, 0) for a in (-1, 0, 1) for b in (-1, 0, 1)} - {(0, 0, 0)}


def test_expansion_matches_brute_force(slab) -> None:
    cell, pos, atoms, tags = slab
    relaxed = pos + 0.1 * torch.arange(18, dtype=F64).reshape(6, 3)
    item = periodic_item(cell, pos, atoms, tags, energy=-1.5, pos_relaxed=relaxed, cutoff=3.3)
    expected = brute_force(cell, pos, atoms, tags, 3.3)
    assert 0 < len(expected) < 8 * 4  # some images kept, some dropped
    n = len(atoms)
    assert len(item.atoms) == n + len(expected)
    assert item.atoms[n:].tolist() == [a for a, _, _ in expected]
    assert item.tags[n:].tolist() == [t for _, t, _ in expected]
    torch.testing.assert_close(item.pos[n:], torch.stack([p for _, _, p in expected]), atol=1e-12, rtol=0)
    torch.testing.assert_close(item.pos[:n], pos)
    assert item.real_mask.tolist() == [True] * n + [False] * len(expected)
    torch.testing.assert_close(item.deltapos[:n], relaxed - pos)
    assert bool((item.deltapos[n:] == 0).all())
    assert item.energy == -1.5
    assert int((item.tags[n:] == 2).sum()) == 0


def test_every_image_is_an_atom_plus_a_lattice_offset(slab) -> None:
    cell, pos, _, tags = slab
    source, image_pos = periodic_images(cell, pos, tags, cutoff=50.0)
    assert len(source) == 8 * 4  # a huge cutoff keeps every slab image, never an adsorbate one
    offsets = (image_pos - pos[source]) @ torch.linalg.inv(cell)
    torch.testing.assert_close(offsets, offsets.round(), atol=1e-12, rtol=0)
    assert set(map(tuple, offsets.round().long().tolist())) == {tuple(o) for o in IN_PLANE_OFFSETS.tolist()}


def test_cutoff_is_strict(slab) -> None:
    cell, pos, _, tags = slab
    source, image_pos = periodic_images(cell, pos, tags, cutoff=3.3)
    nearest = torch.cdist(image_pos, pos[tags == 2]).min(dim=1).values
    assert float(nearest.max()) < 3.3
    cut = float(nearest.max())
    fewer, _ = periodic_images(cell, pos, tags, cutoff=cut)
    assert len(fewer) == len(source) - int((nearest == cut).sum())


def test_no_adsorbate_means_no_images(slab) -> None:
    cell, pos, atoms, _ = slab
    item = periodic_item(cell, pos, atoms, torch.zeros(6, dtype=torch.long))
    assert len(item.atoms) == 6
    assert bool(item.real_mask.all())


def test_bad_shapes_are_input_errors(slab) -> None:
    cell, pos, atoms, tags = slab
    with pytest.raises(InputError, match="cell"):
        periodic_item(cell[:2], pos, atoms, tags, name="sys7")
    with pytest.raises(InputError, match="sys7"):
        periodic_item(cell, pos[:5], atoms, tags, name="sys7")
    with pytest.raises(InputError, match="pos_relaxed"):
        periodic_item(cell, pos, atoms, tags, pos_relaxed=pos[:3])
    with pytest.raises(InputError, match="atomic number 130"):
        periodic_item(cell, pos, torch.tensor([130, 29, 29, 29, 6, 8]), tags)
