"""Periodic boundary conditions for OC20-style slabs (spec §3.3; official ``tasks/is2re.py``, ``PBCDataset``).

An OC20 system is one unit cell of a slab (periodic in the two in-plane directions) with an adsorbate on top.
Graphormer-3D attends over a finite set of atoms, so the cell is replicated over its 8 in-plane neighbours
(offsets o ∈ {−1, 0, 1}² × {0}, o ≠ 0; an image of atom i sits at p_i + o·C, C the cell with lattice vectors as
rows), and an image atom is kept when

- it is within ``cutoff`` (8 Å, strictly less) of at least one adsorbate atom (tag 2) of the central cell, and
- it is not itself an adsorbate atom: only slab atoms (tags 0 and 1) are copied.

Kept images keep their atomic number and tag, are marked ``real_mask = False`` (no energy or Δpos target), and
get Δpos 0: the official code builds the image "relaxed" positions from the initial ones, so their Δpos is zero
(it is masked out of the loss anyway). Images follow the central atoms in offset-major order (all kept images of
offset 0, then of offset 1, …, offsets in the order listed in :data:`IN_PLANE_OFFSETS`).
"""

from __future__ import annotations

import torch

from graphormer2.atoms import ADSORBATE_TAG, AtomsItem
from papers_common import InputError

IN_PLANE_OFFSETS = torch.tensor(
    [[-1, -1, 0], [-1, 0, 0], [-1, 1, 0], [0, -1, 0], [0, 1, 0], [1, -1, 0], [1, 0, 0], [1, 1, 0]]
)
"""long ``(8, 3)``: the in-plane neighbour cells, in the official order."""

DEFAULT_CUTOFF = 8.0


def periodic_images(
    cell: torch.Tensor, pos: torch.Tensor, tags: torch.Tensor, cutoff: float = DEFAULT_CUTOFF
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which in-plane images to keep (see the module docstring), without any loop over atoms or images.

    Args:
        cell: float ``(3, 3)``, lattice vectors as rows (Å).
        pos: float ``(n, 3)`` positions in the central cell (Å).
        tags: long ``(n,)``.
        cutoff: distance to the nearest adsorbate atom below which an image is kept (Å).

    Returns:
        ``source`` long ``(m,)``: the central atom each kept image copies, and ``image_pos`` float ``(m, 3)``:
        its position ``pos[source] + offset·cell``.
    """
    n = pos.shape[0]
    offsets = IN_PLANE_OFFSETS.to(pos) @ cell.to(pos)  # (8, 3)
    image_pos = (pos.unsqueeze(0) + offsets.unsqueeze(1)).reshape(-1, 3)  # (8·n, 3), offset-major
    adsorbate = pos[tags == ADSORBATE_TAG]  # (a, 3)
    # the matmul shortcut of cdist loses precision near the cutoff; the direct form is exact enough to compare with it
    dist = torch.cdist(adsorbate, image_pos, compute_mode="donot_use_mm_for_euclid_dist")  # (a, 8·n)
    slab = (tags != ADSORBATE_TAG).repeat(len(IN_PLANE_OFFSETS))
    keep = (dist < cutoff).any(dim=0) & slab
    source = torch.arange(n, device=pos.device).repeat(len(IN_PLANE_OFFSETS))[keep]
    return source, image_pos[keep]


def periodic_item(
    cell: torch.Tensor,
    pos: torch.Tensor,
    atoms: torch.Tensor,
    tags: torch.Tensor,
    *,
    energy: float = float("nan"),
    pos_relaxed: torch.Tensor | None = None,
    cutoff: float = DEFAULT_CUTOFF,
    name: str = "",
) -> AtomsItem:
    """An OC20 system expanded with its kept in-plane periodic images, as one :class:`AtomsItem`.

    Args:
        cell: float ``(3, 3)`` lattice vectors as rows; pos: float ``(n, 3)`` initial positions;
        atoms: long ``(n,)`` atomic numbers; tags: long ``(n,)``; energy: the relaxed-energy target;
        pos_relaxed: float ``(n, 3)`` relaxed positions (Δpos target of the real atoms; None: 0);
        cutoff: Å; name: shown in error messages.

    Returns:
        n + m atoms: the n real ones first (``real_mask`` True, Δpos = relaxed − initial), then the m kept images
        (``real_mask`` False, Δpos 0).

    Raises:
        InputError: a shape does not fit (the item itself then checks atomic numbers and tags).
    """
    where = name or "periodic_item"
    pos = torch.as_tensor(pos)
    if not pos.is_floating_point():
        pos = pos.to(torch.get_default_dtype())
    cell = torch.as_tensor(cell, dtype=pos.dtype)
    atoms = torch.as_tensor(atoms, dtype=torch.long)
    tags = torch.as_tensor(tags, dtype=torch.long)
    if cell.shape != (3, 3):
        raise InputError(
            f"{where}: cell has shape {tuple(cell.shape)}, expected (3, 3) with lattice vectors as rows"
        )
    n = atoms.shape[0]
    if pos.shape != (n, 3) or tags.shape != (n,):
        raise InputError(
            f"{where}: pos {tuple(pos.shape)} and tags {tuple(tags.shape)} do not fit {n} atoms "
            f"(expected ({n}, 3) and ({n},))"
        )
    if pos_relaxed is None:
        deltapos = torch.zeros_like(pos)
    else:
        pos_relaxed = torch.as_tensor(pos_relaxed, dtype=pos.dtype)
        if pos_relaxed.shape != pos.shape:
            raise InputError(f"{where}: pos_relaxed has shape {tuple(pos_relaxed.shape)}, expected ({n}, 3)")
        deltapos = pos_relaxed - pos
    if cutoff <= 0:
        raise InputError(f"{where}: the image cutoff must be positive, got {cutoff}")
    source, image_pos = periodic_images(cell, pos, tags, cutoff)
    m = source.shape[0]
    return AtomsItem(
        atoms=torch.cat([atoms, atoms[source]]),
        tags=torch.cat([tags, tags[source]]),
        pos=torch.cat([pos, image_pos]),
        real_mask=torch.cat([torch.ones(n, dtype=torch.bool), torch.zeros(m, dtype=torch.bool)]),
        energy=energy,
        deltapos=torch.cat([deltapos, deltapos.new_zeros(m, 3)]),
        name=name,
    )
