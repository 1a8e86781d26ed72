"""Engines run end to end on a short espeak-ng utterance: PocketSphinx and a tiny Hugging Face CTC model."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from conftest import espeak

from papers_common import InputError
from vad_asr.engines import HuggingFaceEngine, PocketSphinxEngine, make_engine, spread_words
from vad_asr.longform import transcribe_long

pytestmark = pytest.mark.usefixtures("have_espeak")


@pytest.fixture(scope="module")
def utterance() -> np.ndarray:
    return espeak("the weather was fine and the ship sailed at noon")


def test_pocketsphinx_returns_timed_words_inside_the_chunk(utterance):
    words = PocketSphinxEngine().transcribe(utterance, 16_000)
    duration = len(utterance) / 16_000
    assert len(words) >= 3
    assert all(0.0 <= w.start < w.end <= duration + 0.02 for w in words)
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert all(w.text.isalpha() or "'" in w.text for w in words)  # no fillers, no "(2)" variants
    assert PocketSphinxEngine().transcribe(np.zeros(0, dtype=np.float32), 16_000) == []


def test_pocketsphinx_words_do_not_depend_on_earlier_chunks(utterance):
    """A chunk decodes the same whatever was decoded before it (here 3 s of loud noise)."""
    fresh = PocketSphinxEngine().transcribe(utterance, 16_000)
    engine = PocketSphinxEngine()
    rng = np.random.default_rng(0)
    engine.transcribe(0.5 * rng.standard_normal(48_000).astype(np.float32), 16_000)
    assert engine.transcribe(utterance, 16_000) == fresh


@pytest.fixture(scope="module")
def tiny_ctc(tmp_path_factory) -> str:
    """A randomly initialised wav2vec2 CTC checkpoint with a character vocabulary, saved like a user's own."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    folder = tmp_path_factory.mktemp("ctc")
    vocab = {
        "<pad>": 0,
        "<unk>": 1,
        "|": 2,
        **{c: 3 + k for k, c in enumerate("abcdefghijklmnopqrstuvwxyz'")},
    }
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), pad_token="<pad>", unk_token="<unk>",
                                     word_delimiter_token="|")  # fmt: skip
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=False)  # fmt: skip
    config = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(16, 16, 16), conv_stride=(5, 4, 4),
                            conv_kernel=(10, 8, 4), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                            pad_token_id=0, architectures=["Wav2Vec2ForCTC"])  # fmt: skip
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(config)
    with torch.no_grad():  # make the blank rarer than chance so that the random model emits letters
        model.lm_head.bias.copy_(torch.linspace(-2.0, 2.0, len(vocab)))
    model.save_pretrained(folder)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return str(folder)


def test_a_local_hugging_face_ctc_checkpoint_is_an_engine(tiny_ctc, utterance):
    engine = make_engine("hf", model=tiny_ctc)
    assert isinstance(engine, HuggingFaceEngine)
    assert engine.is_ctc
    words = engine.transcribe(utterance, 16_000)
    duration = len(utterance) / 16_000
    assert words, "the random model emits letters"
    assert all(0.0 <= w.start < w.end <= duration + 1e-6 for w in words)
    assert all(set(w.text) <= set("abcdefghijklmnopqrstuvwxyz'") for w in words)
    long = transcribe_long(np.tile(utterance, 4), engine, policy="overlap", window_s=4.0)
    assert long.compute.engine_calls == len(long.windows) > 1


@pytest.fixture(scope="module")
def tiny_seq2seq(tmp_path_factory) -> str:
    """A randomly initialised wav2vec2 → BERT encoder-decoder with a word vocabulary, saved like a user's own."""
    import torch
    from transformers import (
        BertConfig,
        BertTokenizer,
        SpeechEncoderDecoderConfig,
        SpeechEncoderDecoderModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Processor,
    )

    folder = tmp_path_factory.mktemp("seq2seq")
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "ship", "sailed", "at", "noon"]
    tokenizer = BertTokenizer(vocab={word: k for k, word in enumerate(vocabulary)})
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=False)  # fmt: skip
    encoder = Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 4),
                             num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)  # fmt: skip
    decoder = BertConfig(vocab_size=len(vocabulary), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, is_decoder=True, add_cross_attention=True)  # fmt: skip
    config = SpeechEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = 2, 0, 3
    torch.manual_seed(0)
    model = SpeechEncoderDecoderModel(config=config)
    with torch.no_grad():  # make words likelier than the special tokens, so the random model writes some
        model.decoder.cls.predictions.bias[5:] += 6.0
    model.generation_config.decoder_start_token_id = 2
    model.generation_config.max_new_tokens = 6
    model.save_pretrained(folder)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return str(folder)


def test_a_local_seq2seq_checkpoint_is_an_engine_with_words_spread_over_the_chunk(tiny_seq2seq, utterance):
    engine = make_engine("hf", model=tiny_seq2seq)
    assert not engine.is_ctc
    words = engine.transcribe(utterance, 16_000)
    duration = len(utterance) / 16_000
    assert words
    assert {w.text for w in words} <= {"the", "ship", "sailed", "at", "noon"}
    assert words[0].start == 0.0
    assert words[-1].end == pytest.approx(duration)


def test_engine_errors_are_named(tmp_path):
    with pytest.raises(InputError, match="--engine hf needs --model"):
        make_engine("hf")
    with pytest.raises(InputError, match="not a Hugging Face model folder"):
        make_engine("hf", model=tmp_path)
    with pytest.raises(InputError, match="engine must be one of"):
        make_engine("whisper.cpp")
    with pytest.raises(InputError, match="set up for 16000 Hz audio, got 8000 Hz"):
        PocketSphinxEngine().transcribe(np.zeros(800, dtype=np.float32), 8_000)


def test_words_without_times_are_spread_by_length():
    words = spread_words(["a", "bbb"], 1.0, 3.0)
    assert [(w.start, w.end) for w in words] == [
        (1.0, pytest.approx(1.6667, abs=1e-4)),
        (pytest.approx(1.6667, abs=1e-4), 3.0),
    ]
