"""Pretraining throughput: ``MetroForPreTraining`` against the Hugging Face ELECTRA pair wired the standard way.

The anchor is what users build today: ``ElectraForMaskedLM`` as generator and ``ElectraForPreTraining`` as
discriminator sharing one embedding module, masking outside the models, sampling replacements from the generator's
softmax at the masked positions (no gradient), loss = MLM + 50·RTD. Ours runs the same objective
(``objective="electra"``, absolute positions, Post-LN) at identical sizes, dropout (generator 0, main 0.1), batch,
sequence length, optimizer (AdamW) and thread count. Both run full training steps (forward, backward, AdamW step)
on the same random clean sequences, timed in alternating rounds (median), so drifts in machine speed fall on both.
The headline is tokens/s ours / HF (higher is better; target >= 1). Rows add METRO's full recipe (relative
positions, corrective LM, scaled init) and the same pair at a larger size. Writes ``bench.json``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import torch
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

from metro_lm import MetroConfig, MetroForPreTraining
from metro_lm.masking import corrupt_for_mlm, maskable_positions, select_masked_positions
from papers_common import Anchor, Bench, Measurement, machine_info, write_bench

SPECIAL = [0, 1, 2, 3, 4]
SIZES = {
    "main 4 x 128 (4 heads, FFN 512), generator 2 layers": {"hidden": 128, "layers": 4, "heads": 4, "ffn": 512,
                                                             "generator_layers": 2},
    "main 12 x 256 (4 heads, FFN 1024), generator 4 layers": {"hidden": 256, "layers": 12, "heads": 4,
                                                              "ffn": 1024, "generator_layers": 4},
}  # fmt: skip
Step = Callable[[torch.Tensor], None]


def _batch(batch: int, length: int, vocab: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, length), generator=generator)
    ids[:, 0], ids[:, -1] = 2, 3
    return ids


def ours_model(size: dict[str, int], vocab: int, recipe: str) -> MetroForPreTraining:
    """``MetroForPreTraining`` with the ELECTRA objective (absolute positions, plain init) or METRO's recipe."""
    settings = {"objective": "electra", "position_embedding": "absolute", "scaled_init": False}
    if recipe == "metro":
        settings = {"objective": "metro", "position_embedding": "relative", "scaled_init": True}
    config = MetroConfig(vocab_size=vocab, hidden_size=size["hidden"], num_hidden_layers=size["layers"],
                         num_attention_heads=size["heads"], intermediate_size=size["ffn"],
                         generator_layers=size["generator_layers"], generator_dropout=0.0,
                         max_position_embeddings=512, **settings)  # fmt: skip
    return MetroForPreTraining(config).train()


def _ours(size: dict[str, int], vocab: int, recipe: str) -> Step:
    model = ours_model(size, vocab, recipe)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(ids: torch.Tensor) -> None:
        model(ids, (ids != 0).long()).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def hugging_face_pair(size: dict[str, int], vocab: int) -> tuple[ElectraForMaskedLM, ElectraForPreTraining]:
    """The standard hand-wired ELECTRA pair (as in the ELECTRA paper: embeddings shared, generator tied)."""

    def config(layers: int, dropout: float) -> ElectraConfig:
        return ElectraConfig(vocab_size=vocab, embedding_size=size["hidden"], hidden_size=size["hidden"],
                             num_hidden_layers=layers, num_attention_heads=size["heads"],
                             intermediate_size=size["ffn"], hidden_dropout_prob=dropout,
                             attention_probs_dropout_prob=dropout, max_position_embeddings=512, pad_token_id=0)  # fmt: skip

    generator = ElectraForMaskedLM(config(size["generator_layers"], 0.0)).train()
    discriminator = ElectraForPreTraining(config(size["layers"], 0.1)).train()
    generator.electra.embeddings = discriminator.electra.embeddings
    generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight
    return generator, discriminator


def _hugging_face(size: dict[str, int], vocab: int) -> Step:
    generator, discriminator = hugging_face_pair(size, vocab)
    parameters = {id(p): p for p in [*generator.parameters(), *discriminator.parameters()]}
    optimizer = torch.optim.AdamW(parameters.values(), lr=1e-4)

    def step(ids: torch.Tensor) -> None:
        mask = (ids != 0).long()
        masked = select_masked_positions(maskable_positions(ids, mask, SPECIAL), 0.15)
        masked_input = corrupt_for_mlm(
            ids, masked, mask_token_id=4, vocab_size=vocab, special_token_ids=SPECIAL
        )
        mlm = generator(masked_input, attention_mask=mask, labels=ids.masked_fill(~masked, -100))
        with torch.no_grad():
            probabilities = torch.softmax(mlm.logits[masked], dim=-1)
            sampled = torch.multinomial(probabilities, 1).squeeze(-1)
        corrupted = ids.masked_scatter(masked, sampled)
        rtd = discriminator(corrupted, attention_mask=mask, labels=(corrupted != ids).long())
        (mlm.loss + 50.0 * rtd.loss).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def _per_step(step: Step, ids: torch.Tensor, minimum: float) -> float:
    calls, start = 0, time.perf_counter()
    while True:
        step(ids)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= minimum:
            return elapsed / calls


def _tokens_per_second(
    steps: dict[str, Step], ids: torch.Tensor, rounds: int, minimum: float
) -> dict[str, float]:
    """Median tokens/s of each step function, measured in alternating rounds after two warm-up steps each."""
    for step in steps.values():
        step(ids), step(ids)
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            seconds[name].append(_per_step(step, ids, minimum))
    tokens = int((ids != 0).sum())
    return {name: tokens / statistics.median(values) for name, values in seconds.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory of bench.json")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--batch", type=int, default=8, help="sequences per step, both sides")
    parser.add_argument("--length", type=int, default=128, help="tokens per sequence")
    parser.add_argument("--vocab", type=int, default=8000, help="vocabulary size")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed rounds (median)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of at least 1 s (default: 5 s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rounds, minimum = (3, 1.0) if args.quick else (args.rounds, 5.0)
    anchor = Anchor("transformers ElectraForMaskedLM + ElectraForPreTraining", version("transformers"))
    ids = _batch(args.batch, args.length, args.vocab, 0)
    rows: list[Measurement] = []
    for label, size in SIZES.items():
        steps = {"electra": _ours(size, args.vocab, "electra"), "metro": _ours(size, args.vocab, "metro"),
                 "hf": _hugging_face(size, args.vocab)}  # fmt: skip
        speed = _tokens_per_second(steps, ids, rounds, minimum)
        workload = f"{label}, batch {args.batch} x {args.length}, vocab {args.vocab}, fp32"
        rows.append(Measurement(f"ELECTRA objective, {workload}", "pretraining throughput", "tokens/s",
                                speed["electra"], speed["hf"], True, anchor))  # fmt: skip
        rows.append(Measurement(f"METRO full recipe (relative positions, CLM, scaled init) vs HF ELECTRA, {workload}",
                                "pretraining throughput", "tokens/s", speed["metro"], speed["hf"], True, anchor))  # fmt: skip
        for row in rows[-2:]:
            print(f"{row.workload}: ours {row.ours:,.0f} tokens/s, HF {row.anchor_value:,.0f} tokens/s, "
                  f"ratio {row.ratio:.2f}")  # fmt: skip
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    machine = {**machine_info("cpu"), "threads": args.threads, "peak_rss_mib_all_models": round(peak_mib)}
    path = write_bench(Bench("metro-lm", anchor, rows[0], machine, rows), args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
