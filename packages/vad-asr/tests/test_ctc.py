"""The CTC engine: features, the model's frame arithmetic, decoding, overfitting, saving and resumable training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import espeak

from papers_common import InputError, latest_checkpoint, load_checkpoint
from vad_asr import training
from vad_asr.ctc import (
    ALPHABET,
    SHIPPED,
    CTCConfig,
    CTCEngine,
    CTCModel,
    decode_ids,
    encode_text,
    greedy_words,
    output_frames,
)
from vad_asr.features import LogMel, mel_filterbank
from vad_asr.training import TrainConfig, character_error_rate, collate, train_ctc

pytestmark = pytest.mark.usefixtures("have_espeak")


def test_mel_filters_are_ordered_triangles_covering_the_spectrum():
    filters = mel_filterbank()
    assert filters.shape == (80, 201)
    peaks = filters.argmax(1)
    assert torch.all(peaks[1:] >= peaks[:-1])
    assert float(filters.max()) <= 1.0 + 1e-6
    assert torch.all(filters[:, 1:-1].sum(0) > 0)  # every inner bin is in some band


def test_features_are_normalised_per_band_and_count_frames():
    waveform = torch.randn(2, 16_000)
    features = LogMel()(waveform, torch.tensor([16_000, 8_000]))
    assert features.shape == (2, 80, 101)
    assert features[0].mean(-1).abs().max() < 1e-4
    assert torch.all(features[1, :, 51:] == 0)  # frames past the shorter waveform's end are masked


@pytest.mark.parametrize("n", [640, 1_000, 16_000, 16_001, 123_457])
def test_output_frames_match_the_model(n):
    model = CTCModel(CTCConfig(channels=16, blocks=1)).eval()
    log_probs, frames = model(torch.zeros(1, n))
    assert log_probs.shape[1] == int(frames[0]) == int(output_frames(torch.tensor([n]))[0])


def test_text_codes_round_trip():
    assert decode_ids(encode_text("Don't stop, HAMLET!")) == "don't stop hamlet"
    assert len(ALPHABET) + 1 == 29


def test_greedy_decoding_times_words_by_their_frames():
    # frames of 40 ms: "ab" at frames 1-3, space at 5, "c" at 7
    path = [0, 3, 3, 4, 0, 1, 0, 5, 0]
    log_probs = np.full((len(path), 29), -10.0)
    log_probs[np.arange(len(path)), path] = 0.0
    words = greedy_words(log_probs)
    assert [(w.text, round(w.start, 2), round(w.end, 2)) for w in words] == [
        ("ab", 0.04, 0.16),
        ("c", 0.28, 0.32),
    ]


@pytest.fixture(scope="module")
def handful():
    texts = ["the ship sailed at noon", "a cold wind blew", "she read the letter twice", "we walked home"]
    return [(espeak(t, speed=160), t) for t in texts]


def test_the_model_overfits_a_handful_of_utterances(handful):
    waveforms, lengths, targets, target_lengths = collate(handful)
    torch.manual_seed(0)
    model = CTCModel(CTCConfig(channels=96, blocks=2, dropout=0.0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    loss_fn = torch.nn.CTCLoss(zero_infinity=True)
    for _ in range(150):
        log_probs, frames = model(waveforms, lengths)
        loss = loss_fn(log_probs.transpose(0, 1), targets, frames, target_lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    engine = CTCEngine(model, decoder="greedy")
    rates = [character_error_rate(text, " ".join(w.text for w in engine.transcribe(audio, 16_000)))
             for audio, text in handful]  # fmt: skip
    assert np.mean(rates) < 0.05  # an untrained model is near 1.0


def test_saved_models_load_identically_and_bad_folders_are_named(tmp_path, handful):
    model = CTCModel(CTCConfig(channels=32, blocks=1)).eval()
    model.save(tmp_path / "m")
    loaded = CTCModel.load(tmp_path / "m")
    audio = torch.from_numpy(handful[0][0])[None]
    torch.testing.assert_close(loaded(audio)[0], model(audio)[0])
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(InputError, match="not a readable vad-asr CTC model"):
        CTCModel.load(tmp_path / "m")


def test_an_interrupted_training_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    sentences = ["the ship sailed at noon", "a cold wind blew hard", "she read the letter twice",
                 "we walked home slowly", "it rained all night long"]  # fmt: skip
    settings = {"model_config": CTCConfig(channels=16, blocks=1),
                "config": TrainConfig(steps=6, batch_size=2, save_every=3, log_every=1, valid_sentences=2,
                                      max_seconds=4.0)}  # fmt: skip
    real = training.SpeechBatches.batch
    drawn: list[int] = []

    def failing(self, step):
        if step == 4 and not drawn.count(4):
            drawn.append(4)
            raise KeyboardInterrupt  # killed while drawing step 4's batch, after the checkpoint of step 3
        drawn.append(step)
        return real(self, step)

    monkeypatch.setattr(training.SpeechBatches, "batch", failing)
    with pytest.raises(KeyboardInterrupt):
        train_ctc(sentences, tmp_path / "run", **settings)
    checkpoint = load_checkpoint(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    assert checkpoint.step == 3
    drawn.clear()
    drawn.append(4)  # the next draw of step 4 succeeds
    result = train_ctc(sentences, tmp_path / "run", **settings)
    assert drawn == [4, 3, 4, 5]  # resumed at step 3 (the checkpoint), not from the start
    assert result.steps == 6
    assert np.isfinite(result.loss)
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4, 5, 6]  # no step logged twice
    with pytest.raises(InputError, match="other settings"):
        train_ctc(sentences, tmp_path / "run", model_config=CTCConfig(channels=24, blocks=1),
                  config=settings["config"])  # fmt: skip


FRESH = ["the weather was fine and the boat left the harbour at noon",
         "please write down the number of every room on the second floor",
         "a small dog ran across the garden and hid under the bench"]  # fmt: skip


def test_the_shipped_model_transcribes_fresh_sentences_of_the_trained_voices():
    from vad_asr.corpus import VOICES
    from vad_asr.synthesis import Synthesizer

    engine = CTCEngine.shipped()
    recipe = json.loads((SHIPPED / "recipe.json").read_text())
    assert recipe["command"].startswith("vad-asr train-ctc ")
    synthesizer = Synthesizer()
    rates = []
    for voice in VOICES:  # sentences unlike the training text (modern prose), every voice of the corpora
        for text in FRESH:
            audio = synthesizer.speak(text, voice=voice, speed=165).samples
            rates.append(
                character_error_rate(text, " ".join(w.text for w in engine.transcribe(audio, 16_000)))
            )
    assert np.mean(rates) < 0.2, rates  # measured 0.149 for the shipped model
    assert sum(p.numel() for p in engine.model.parameters()) * 4 < 10_000_000  # ships under 10 MB
