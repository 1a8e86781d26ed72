"""The 2D Graphormer against hand-written references of the official computation (spec §3.2).

Batches are built here from adjacency + feature arrays following the ``GraphBatch`` contract (ids of the official
collator), independently of ``graphormer2.collate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from graphormer2.model import Graphormer, GraphormerConfig
from rdkit import Chem
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from papers_common import InputError

torch.set_num_threads(1)

F64 = torch.float64
UNREACHABLE = 510


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, rtol: float = 0.0, atol: float) -> None:
    """``torch.allclose`` with the largest deviation in the message (torch.testing imports the compiler stack)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert torch.allclose(actual, expected, rtol=rtol, atol=atol), (actual - expected).abs().max()


@dataclass
class Graph:
    """A molecule-like graph: ``atoms`` (n, 9) raw feature values; ``bonds`` (i, j, (3 raw bond features))."""

    atoms: np.ndarray
    bonds: list[tuple[int, int, tuple[int, int, int]]]

    @property
    def num_nodes(self) -> int:
        return len(self.atoms)


@dataclass
class Batch:
    """The ``GraphBatch`` contract's fields."""

    x: torch.Tensor
    in_degree: torch.Tensor
    spatial_pos: torch.Tensor
    attn_edge_type: torch.Tensor
    edge_input: torch.Tensor
    attn_bias: torch.Tensor
    y: torch.Tensor
    num_nodes: torch.Tensor


def molecule(smiles: str) -> Graph:
    """Nine OGB-style atom features and three bond features read from RDKit (tables need not match OGB's)."""
    mol = Chem.MolFromSmiles(smiles)
    atoms = np.array(
        [
            [
                a.GetAtomicNum(),
                int(a.GetChiralTag()),
                a.GetDegree(),
                a.GetFormalCharge() + 5,
                a.GetTotalNumHs(),
                a.GetNumRadicalElectrons(),
                int(a.GetHybridization()),
                int(a.GetIsAromatic()),
                int(a.IsInRing()),
            ]
            for a in mol.GetAtoms()
        ]
    )
    bonds = [
        (
            b.GetBeginAtomIdx(),
            b.GetEndAtomIdx(),
            (int(b.GetBondType()), int(b.GetStereo()), int(b.GetIsConjugated())),
        )
        for b in mol.GetBonds()
    ]
    return Graph(atoms, bonds)


def random_graph(n: int, bonds: Sequence[tuple[int, int]], seed: int) -> Graph:
    """A graph with the given bonds and random small feature values."""
    rng = np.random.default_rng(seed)
    atoms = rng.integers(0, 6, size=(n, 9))
    features = rng.integers(0, 4, size=(len(bonds), 3))
    return Graph(atoms, [(i, j, tuple(int(v) for v in f)) for (i, j), f in zip(bonds, features, strict=True)])


def relabel(graph: Graph, order: Sequence[int]) -> Graph:
    """The same graph with node ``order[k]`` renamed k."""
    new = {old: k for k, old in enumerate(order)}
    return Graph(graph.atoms[list(order)], [(new[i], new[j], f) for i, j, f in graph.bonds])


def make_batch(graphs: Sequence[Graph], max_dist: int = 5) -> Batch:
    """Collate per the contract: SPD by SciPy BFS, one stored shortest path per pair from its predecessors."""
    n_max = max(g.num_nodes for g in graphs)
    b = len(graphs)
    x = torch.zeros(b, n_max, 9, dtype=torch.long)
    in_degree = torch.zeros(b, n_max, dtype=torch.long)
    spatial_pos = torch.zeros(b, n_max, n_max, dtype=torch.long)
    attn_edge_type = torch.zeros(b, n_max, n_max, 3, dtype=torch.long)
    edge_input = torch.zeros(b, n_max, n_max, max_dist, 3, dtype=torch.long)
    attn_bias = torch.zeros(b, n_max + 1, n_max + 1)
    offsets = 512 * torch.arange(3)
    for g, graph in enumerate(graphs):
        n = graph.num_nodes
        adjacency = np.zeros((n, n))
        bond = {}
        for i, j, f in graph.bonds:
            adjacency[i, j] = adjacency[j, i] = 1
            bond[i, j] = bond[j, i] = torch.tensor(f) + offsets
        dist, pred = shortest_path(
            csr_matrix(adjacency), unweighted=True, directed=False, return_predecessors=True
        )
        dist = np.where(np.isinf(dist), UNREACHABLE, dist).astype(np.int64)
        x[g, :n] = torch.from_numpy(graph.atoms) + 2 + 512 * torch.arange(9)
        in_degree[g, :n] = torch.from_numpy(adjacency.sum(1).astype(np.int64)) + 1
        spatial_pos[g, :n, :n] = torch.from_numpy(dist) + 1
        for (i, j), f in bond.items():
            attn_edge_type[g, i, j] = f + 2
        for i in range(n):
            for j in range(n):
                if i == j or dist[i, j] == UNREACHABLE:
                    continue
                path = [j]
                while path[-1] != i:
                    path.append(int(pred[i, path[-1]]))
                path.reverse()
                for hop in range(min(max_dist, len(path) - 1)):
                    edge_input[g, i, j, hop] = bond[path[hop], path[hop + 1]] + 3
        attn_bias[g, :, n + 1 :] = float("-inf")
    num_nodes = torch.tensor([g.num_nodes for g in graphs])
    return Batch(
        x, in_degree, spatial_pos, attn_edge_type, edge_input, attn_bias, torch.zeros(b, 1), num_nodes
    )


def permute_batch(batch: Batch, perm: torch.Tensor) -> Batch:
    """Relabel the nodes of every graph of a one-graph-size batch by ``perm`` (tensors permuted directly)."""
    token = torch.cat([torch.zeros(1, dtype=torch.long), perm + 1])
    return replace(
        batch,
        x=batch.x[:, perm],
        in_degree=batch.in_degree[:, perm],
        spatial_pos=batch.spatial_pos[:, perm][:, :, perm],
        attn_edge_type=batch.attn_edge_type[:, perm][:, :, perm],
        edge_input=batch.edge_input[:, perm][:, :, perm],
        attn_bias=batch.attn_bias[:, token][:, :, token],
    )


def tiny_config(**overrides: object) -> GraphormerConfig:
    fields = {"num_layers": 2, "hidden_dim": 16, "ffn_dim": 24, "num_heads": 4, "num_classes": 2}
    return GraphormerConfig(**{**fields, **overrides})


def build(config: GraphormerConfig, seed: int = 0) -> Graphormer:
    torch.manual_seed(seed)
    return Graphormer(config)


RING = random_graph(6, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0), (2, 4)], seed=1)
CHAIN = random_graph(4, [(0, 1), (1, 2), (2, 3)], seed=2)
BRANCHED = random_graph(9, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (3, 7), (7, 8)], seed=3)


# ---------------------------------------------------------------- configuration and presets


def official_parameter_count(c: GraphormerConfig) -> int:
    """The official GraphormerModel's parameters, term by term, minus its unused ``masked_lm_pooler``."""
    d, h, f = c.hidden_dim, c.num_heads, c.ffn_dim
    nodes = (c.num_atoms + 1) * d + 2 * c.num_degree * d + d
    bias = (
        (c.num_edges + 1) * h
        + c.num_spatial * h
        + h
        + (c.num_edge_dis * h * h if c.edge_type == "multi_hop" else 0)
    )
    layer = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 2 * 2 * d
    head = (d * d + d) + 2 * d + d * c.num_classes + 1
    return nodes + bias + 2 * d + c.num_layers * layer + head


@pytest.fixture
def count_parameters(monkeypatch: pytest.MonkeyPatch):
    """Parameter count of a model built on the meta device (no memory; the values are not needed, and meta
    ``normal_`` would import torch's compiler stack, which takes seconds)."""
    monkeypatch.setattr(torch.Tensor, "normal_", lambda self, *args, **kwargs: self)

    def count(config: GraphormerConfig) -> int:
        with torch.device("meta"):
            return Graphormer(config).num_parameters()

    return count


@pytest.mark.parametrize("name", ["slim", "base", "large"])
@pytest.mark.parametrize("edge_type", ["multi_hop", "single_hop"])
def test_preset_parameter_counts_follow_the_official_architecture(
    name: str, edge_type: str, count_parameters
) -> None:
    config = GraphormerConfig.preset(name, edge_type=edge_type)
    assert count_parameters(config) == official_parameter_count(config)


def test_preset_sizes_and_published_counts(count_parameters) -> None:
    slim, base, large = (GraphormerConfig.preset(n) for n in ("slim", "base", "large"))
    assert (slim.num_layers, slim.hidden_dim, slim.ffn_dim, slim.num_heads) == (12, 80, 80, 8)
    assert (large.num_layers, large.hidden_dim, large.ffn_dim, large.num_heads) == (24, 1024, 1024, 32)
    counts = {c.hidden_dim: count_parameters(c) for c in (slim, base)}
    # The official README's 48.3M for V2 base includes the never-used masked_lm_pooler, Linear(D, D).
    assert round((counts[768] + 768 * 768 + 768) / 1e6, 1) == 48.3
    # Slim with the V2 vocabulary: the 4609 x 80 atom table alone holds 368,720 of these parameters.
    assert counts[80] == 952_593
    assert GraphormerConfig.preset("slim", num_classes=3).num_classes == 3


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: GraphormerConfig.preset("tiny"), "unknown Graphormer preset"),
        (lambda: GraphormerConfig.preset("slim", hidden=8), "no field 'hidden'"),
        (lambda: tiny_config(hidden_dim=18), "not a multiple of num_heads"),
        (lambda: tiny_config(edge_type="two_hop"), "edge_type"),
        (lambda: tiny_config(dropout=1.0), "dropout"),
        (lambda: tiny_config(multi_hop_max_dist=200), "num_edge_dis"),
    ],
)
def test_bad_configs_are_input_errors(make, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make()


def test_bad_batches_are_input_errors_naming_the_field() -> None:
    model = build(tiny_config(max_nodes=8))
    batch = make_batch([CHAIN])
    with pytest.raises(InputError, match="spatial_pos"):
        model(replace(batch, spatial_pos=batch.spatial_pos + 600))
    with pytest.raises(InputError, match=r"GraphBatch\.x holds ids"):
        model(replace(batch, x=batch.x + 5000))
    with pytest.raises(InputError, match="attn_bias has shape"):
        model(replace(batch, attn_bias=batch.attn_bias[:, 1:]))
    with pytest.raises(InputError, match="max_nodes=8"):
        model(make_batch([BRANCHED]))


# ---------------------------------------------------------------- the attention bias


def path_in_tree(graph: Graph, i: int, j: int) -> list[int]:
    """The unique i → j path of a forest (depth-first search), [] when j is unreachable."""
    neighbours: dict[int, list[int]] = {k: [] for k in range(graph.num_nodes)}
    for a, b, _ in graph.bonds:
        neighbours[a].append(b)
        neighbours[b].append(a)
    stack, parent = [i], {i: i}
    while stack:
        node = stack.pop()
        for nxt in neighbours[node]:
            if nxt not in parent:
                parent[nxt] = node
                stack.append(nxt)
    if j not in parent:
        return []
    path = [j]
    while path[-1] != i:
        path.append(parent[path[-1]])
    return path[::-1]


def reference_bias(model: Graphormer, graph: Graph, n_pad: int) -> torch.Tensor:
    """The official GraphAttnBias for one graph padded to ``n_pad`` nodes, entry by entry: ``(H, n+1, n+1)``."""
    c = model.config
    ab = model.attention_bias
    n, h, big_l = graph.num_nodes, c.num_heads, c.multi_hop_max_dist
    bond = {}
    for a, b, f in graph.bonds:
        bond[a, b] = bond[b, a] = [v + 512 * k for k, v in enumerate(f)]
    bias = torch.zeros(h, n_pad + 1, n_pad + 1, dtype=F64)
    for i in range(n_pad):
        for j in range(n_pad):
            if i >= n or j >= n:
                continue  # padded rows keep 0 on real keys; padded columns are set below
            path = path_in_tree(graph, i, j)
            spd = len(path) - 1 if path else UNREACHABLE
            total = ab.spatial.weight[spd + 1].clone()
            if c.edge_type == "single_hop":
                if (i, j) in bond:
                    total += ab.edge.weight[[v + 2 for v in bond[i, j]]].mean(0)
            else:
                hop_sum = torch.zeros(h, dtype=F64)
                for hop in range(min(big_l, len(path) - 1) if path else 0):
                    ids = [v + 3 for v in bond[path[hop], path[hop + 1]]]
                    hop_sum += ab.edge.weight[ids].mean(0) @ ab.hop_weights[hop]
                total += hop_sum / min(max(spd, 1), big_l)
            bias[:, i + 1, j + 1] = total
    bias[:, 0, :] += ab.virtual_distance[:, None]
    bias[:, 1:, 0] += ab.virtual_distance[:, None]
    bias[:, :, n + 1 :] = float("-inf")
    return bias


@pytest.mark.parametrize("edge_type", ["multi_hop", "single_hop"])
def test_attention_bias_matches_a_per_pair_reference(edge_type: str) -> None:
    # A forest (unique shortest paths): a 9-atom tree with paths of up to 6 hops > L = 3, a separate 2-atom
    # fragment (unreachable pairs), padded to the 11 nodes of a larger graph in the batch.
    tree = random_graph(
        9 + 2, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (3, 7), (7, 8), (9, 10)], seed=4
    )
    small = random_graph(7, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)], seed=5)
    big = random_graph(12, [(k, k + 1) for k in range(11)], seed=6)
    model = build(tiny_config(multi_hop_max_dist=3, edge_type=edge_type)).to(F64)
    batch = make_batch([tree, small, big], max_dist=3)
    with torch.no_grad():
        bias = model.attention_bias(batch)
        assert bias.shape == (3, 4, 13, 13)
        assert_close(bias[0], reference_bias(model, tree, 12), rtol=1e-12, atol=1e-12)
        assert_close(bias[1], reference_bias(model, small, 12), rtol=1e-12, atol=1e-12)


def test_the_bias_is_built_once_and_shared_by_every_layer() -> None:
    model = build(tiny_config(num_layers=3)).eval()
    built: list[torch.Tensor] = []
    received: list[torch.Tensor] = []
    model.attention_bias.register_forward_hook(lambda _m, _args, out: built.append(out))
    for layer in model.layers:
        layer.register_forward_pre_hook(lambda _m, args: received.append(args[1]))
    model(make_batch([RING, CHAIN]))
    assert len(built) == 1
    assert len(received) == 3
    assert all(bias is built[0] for bias in received)


# ---------------------------------------------------------------- the whole model against a reference


def layer_norm(y: torch.Tensor, norm: torch.nn.LayerNorm) -> torch.Tensor:
    mean = y.mean(-1, keepdim=True)
    var = ((y - mean) ** 2).mean(-1, keepdim=True)
    return (y - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def gelu(y: torch.Tensor) -> torch.Tensor:
    return 0.5 * y * (1 + torch.erf(y / 2**0.5))


def linear(y: torch.Tensor, layer: torch.nn.Linear) -> torch.Tensor:
    return y @ layer.weight.T + (layer.bias if layer.bias is not None else 0)


def reference_forward(model: Graphormer, batch: Batch) -> torch.Tensor:
    """The official encoder and head written out with explicit softmax attention (eval mode): ``(B, C)``."""
    c = model.config
    emb = model.node_embedding
    nodes = (
        emb.atom.weight[batch.x].sum(-2)
        + emb.in_degree.weight[batch.in_degree]
        + emb.out_degree.weight[batch.in_degree]
    )
    x = torch.cat([emb.graph_token.expand(len(nodes), 1, -1), nodes], dim=1)
    bias = model.attention_bias(batch)
    b, t, d = x.shape
    h = c.num_heads
    x = layer_norm(x, model.embedding_norm)
    for layer in model.layers:

        def attention(y: torch.Tensor, layer=layer) -> torch.Tensor:
            q, k, v = (linear(y, p).view(b, t, h, d // h) for p in (layer.q_proj, layer.k_proj, layer.v_proj))
            scores = torch.einsum("bihe,bjhe->bhij", q * (d // h) ** -0.5, k) + bias
            probs = torch.exp(scores - scores.amax(-1, keepdim=True))
            probs = probs / probs.sum(-1, keepdim=True)
            return linear(torch.einsum("bhij,bjhe->bihe", probs, v).reshape(b, t, d), layer.out_proj)

        def ffn(y: torch.Tensor, layer=layer) -> torch.Tensor:
            return linear(gelu(linear(y, layer.fc1)), layer.fc2)

        if c.norm_first:
            x = x + attention(layer_norm(x, layer.attention_norm))
            x = x + ffn(layer_norm(x, layer.ffn_norm))
        else:
            x = layer_norm(x + attention(x), layer.attention_norm)
            x = layer_norm(x + ffn(x), layer.ffn_norm)
    head = layer_norm(gelu(linear(x[:, 0], model.head_transform)), model.head_norm)
    return linear(head, model.head_out) + model.head_bias


def randomise_norms(model: Graphormer, seed: int) -> None:
    """Move LayerNorm affine parameters and the output bias off their (1, 0) init so the reference sees them."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.add_(0.3 * torch.randn(module.weight.shape, generator=generator, dtype=F64))
                module.bias.add_(0.3 * torch.randn(module.bias.shape, generator=generator, dtype=F64))
        model.head_bias.fill_(0.7)


@pytest.mark.parametrize("norm_first", [False, True])
def test_forward_matches_the_hand_written_reference(norm_first: bool) -> None:
    model = build(tiny_config(norm_first=norm_first), seed=3).to(F64).eval()
    randomise_norms(model, seed=4)
    batch = make_batch([BRANCHED, RING, CHAIN])
    with torch.no_grad():
        assert_close(model(batch), reference_forward(model, batch), rtol=1e-10, atol=1e-10)


def test_post_ln_and_pre_ln_differ_for_the_same_weights() -> None:
    post = build(tiny_config(norm_first=False)).eval()
    pre = Graphormer(tiny_config(norm_first=True)).eval()
    pre.load_state_dict(post.state_dict())
    batch = make_batch([BRANCHED, RING])
    with torch.no_grad():
        assert (post.graph_representation(batch) - pre.graph_representation(batch)).abs().max() > 1e-3
        # The N(0, 0.02) head shrinks the gap at initialisation, but it stays far above rounding.
        assert (post(batch) - pre(batch)).abs().max() > 1e-5


# ---------------------------------------------------------------- invariances


@pytest.mark.parametrize(
    ("norm_first", "edge_type"), [(False, "multi_hop"), (True, "multi_hop"), (False, "single_hop")]
)
def test_padding_never_changes_a_prediction(norm_first: bool, edge_type: str) -> None:
    model = build(tiny_config(norm_first=norm_first, edge_type=edge_type), seed=5).eval()
    graphs = [CHAIN, BRANCHED, RING]
    with torch.no_grad():
        together = model(make_batch(graphs))
        alone = torch.cat([model(make_batch([g])) for g in graphs])
    assert_close(together, alone, rtol=0, atol=1e-5)


def test_relabelling_the_nodes_permutes_node_states_and_keeps_the_graph_output() -> None:
    model = build(tiny_config(), seed=6).eval()
    batch = make_batch([BRANCHED, random_graph(9, [(k, k + 1) for k in range(8)], seed=7)])
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        states = model.encode(batch)
        permuted = model.encode(permute_batch(batch, perm))
        assert_close(permuted[:, 1:], states[:, 1:][:, perm], rtol=0, atol=1e-5)
        assert_close(model(permute_batch(batch, perm)), model(batch), rtol=0, atol=1e-5)


# ---------------------------------------------------------------- training and persistence


def test_a_training_step_reaches_every_parameter() -> None:
    config = tiny_config(dropout=0.1, attention_dropout=0.1, activation_dropout=0.1)
    model = build(config, seed=8).train()
    torch.manual_seed(9)
    loss = model(make_batch([BRANCHED, RING, CHAIN])).square().sum()
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name
    # Padding rows never learn; only the first L hop matrices are read.
    assert model.node_embedding.atom.weight.grad[0].abs().sum() == 0
    assert model.attention_bias.hop_weights.grad[config.multi_hop_max_dist :].abs().sum() == 0


def test_save_and_load_pretrained_round_trip(tmp_path: Path) -> None:
    model = build(tiny_config(edge_type="single_hop", norm_first=True), seed=10).eval()
    model.save_pretrained(tmp_path / "model")
    loaded = Graphormer.from_pretrained(tmp_path / "model").eval()
    assert loaded.config == model.config
    batch = make_batch([BRANCHED, CHAIN])
    with torch.no_grad():
        assert_close(loaded(batch), model(batch), rtol=0, atol=0)
