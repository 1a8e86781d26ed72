"""The GIN is invariant to atom order, batches without per-molecule loops agree with one-by-one encoding, and the
model round-trips through save/load with identical predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from portal_learning.featurize import batch_graphs, mol_graph, residue_tokens
from portal_learning.model import CPIConfig, CPIModel

from papers_common import InputError

SMALL = CPIConfig(gin_layers=3, gin_hidden=32, protein_embedding=16, protein_channels=24, protein_layers=2,
                  protein_kernel=5)  # fmt: skip
MOLECULES = ["CC(=O)Oc1ccccc1C(=O)O", "c1ccc2[nH]ccc2c1", "C/C=C/C(=O)O", "O=C(O)C[C@H](N)C(=O)O"]
SEQUENCES = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVDAFQAVLEKLNSTWNG", "MKV", "ACDEFGHIKLMNPQRSTVWYX"]


def renumbered(smiles: str, seed: int) -> str:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    order = np.random.default_rng(seed).permutation(mol.GetNumAtoms()).tolist()
    return Chem.MolToSmiles(Chem.RenumberAtoms(mol, order), canonical=False)


def test_the_gin_is_invariant_to_atom_order():  # stereocentres and E/Z bonds included
    torch.manual_seed(0)
    model = CPIModel(SMALL).eval()
    for smiles in MOLECULES:
        shuffled = renumbered(smiles, 1)
        assert shuffled != smiles
        a = model(*model.inputs([smiles], SEQUENCES[:1]))
        b = model(*model.inputs([shuffled], SEQUENCES[:1]))
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert (
        mol_graph("N[C@@H](C)C(=O)O").atoms[:, 1].tolist()
        != mol_graph("N[C@H](C)C(=O)O").atoms[:, 1].tolist()
    )


def test_a_batch_equals_its_molecules_one_by_one():
    torch.manual_seed(0)
    model = CPIModel(SMALL).eval()
    together = model(*model.inputs(MOLECULES, SEQUENCES))
    alone = torch.cat([model(*model.inputs([m], [s])) for m, s in zip(MOLECULES, SEQUENCES, strict=True)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)  # padding never leaks into a pair


def test_batched_graphs_offset_their_edges_and_add_self_loops():
    graphs = [mol_graph("CCO"), mol_graph("C=O")]
    batch = batch_graphs(graphs)
    assert batch.batch.tolist() == [0, 0, 0, 1, 1]
    assert batch.edges.shape[1] == 2 * 2 + 2 * 1 + 5  # both directions, and one self-loop per atom
    assert batch.edges[:, 4:6].tolist() == [[3, 4], [4, 3]]  # the second molecule's bond, offset by 3 atoms
    tokens, mask = residue_tokens(["MKV", "AX"], max_length=10)
    assert tokens.tolist() == [[12, 10, 19], [2, 1, 0]]
    assert mask.tolist() == [[True, True, True], [True, True, False]]


@pytest.mark.parametrize("chemical", ["gin", "fingerprint"])
def test_save_and_load_give_identical_predictions(tmp_path, chemical):
    torch.manual_seed(0)
    model = CPIModel(CPIConfig(**{**SMALL.__dict__, "chemical": chemical, "fingerprint_bits": 256}))
    before = model.predict(MOLECULES, SEQUENCES)
    assert before.shape == (4,)
    assert ((before > 0) & (before < 1)).all()
    loaded = CPIModel.from_pretrained(model.save_pretrained(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict(MOLECULES, SEQUENCES), before)


def test_bad_configs_and_inputs_are_named():
    with pytest.raises(InputError, match="--chemical must be one of"):
        CPIModel(CPIConfig(chemical="ecfp"))
    with pytest.raises(InputError, match="--protein-kernel must be odd"):
        CPIModel(CPIConfig(protein_kernel=4))
    with pytest.raises(InputError, match="2 molecules but 1 sequences"):
        CPIModel(SMALL).predict(MOLECULES[:2], SEQUENCES[:1])
