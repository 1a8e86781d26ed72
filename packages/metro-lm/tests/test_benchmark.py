"""The benchmark compares equal models: ours and the Hugging Face ELECTRA pair have the same parameters."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

RUN = Path(__file__).parents[1] / "benchmarks" / "run.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("metro_lm_benchmark", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("label", ["main 4 x 128 (4 heads, FFN 512), generator 2 layers"])
def test_ours_and_the_hugging_face_pair_have_the_same_parameter_count(label):
    bench = load_benchmark()
    size = bench.SIZES[label]
    ours = bench.ours_model(size, 1000, "electra")
    generator, discriminator = bench.hugging_face_pair(size, 1000)
    theirs = {id(p): p.numel() for p in [*generator.parameters(), *discriminator.parameters()]}
    assert sum(p.numel() for p in ours.parameters()) == sum(theirs.values())
    # the shared token embedding matrix is one tensor on both sides
    assert generator.generator_lm_head.weight is discriminator.electra.embeddings.word_embeddings.weight
