"""vad_asr: long-form speech recognition with any engine (VADOI; Wang, Tong, Guo, He, Maas; ICASSP 2022).

Chunking policies (fixed windows, overlapping inference, VAD overlapping inference), seam merges (nearest-centre
alignment with Soft-Match, and the Hugging Face and NeMo LCS rules), VAD backends (silero-vad, WebRTC, energy),
engines (PocketSphinx, local Hugging Face checkpoints), the long-form driver that reports its compute, and
long-form test sets (espeak-ng synthesis with word times, LibriSpeech chapters) with their evaluation, and a
small CTC recogniser trained on espeak-ng speech with lexicon beam decoding.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from vad_asr.alignment import SOFT_THRESHOLD, align, word_similarity
from vad_asr.audio import TARGET_RATE, AudioFile, resample, write_audio
from vad_asr.beam import BeamSettings, beam_search_words
from vad_asr.corpus import (
    Recording,
    SynthesisSettings,
    build_librispeech,
    load_corpus,
    synthesize_corpus,
    text_sentences,
)
from vad_asr.ctc import CTCConfig, CTCEngine, CTCModel
from vad_asr.engines import Engine, HuggingFaceEngine, PocketSphinxEngine, make_engine
from vad_asr.evaluation import (
    Evaluation,
    evaluate_corpus,
    oracle_words,
    seam_errors,
    seam_times,
    word_error_rate,
)
from vad_asr.formats import to_ctm, to_srt
from vad_asr.longform import Compute, Transcript, transcribe_long
from vad_asr.merging import MERGES, merge_center, merge_lcs_midpoint, merge_lcs_nemo, merger
from vad_asr.ngram import WordLM
from vad_asr.policies import POLICIES, Pause, Window, compute_ratio, plan_windows
from vad_asr.stride import transcribe_strided
from vad_asr.synthesis import Synthesizer, Utterance
from vad_asr.training import TrainConfig, TrainResult, train_ctc
from vad_asr.vad import (
    BACKENDS,
    EnergyDetector,
    SileroDetector,
    Speech,
    WebRTCDetector,
    detect_speech,
    pauses,
)
from vad_asr.words import Word, normalize_text, normalize_word

try:
    __version__ = version("vad-asr")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "BACKENDS",
    "MERGES",
    "POLICIES",
    "SOFT_THRESHOLD",
    "TARGET_RATE",
    "AudioFile",
    "BeamSettings",
    "CTCConfig",
    "CTCEngine",
    "CTCModel",
    "Compute",
    "EnergyDetector",
    "Engine",
    "Evaluation",
    "HuggingFaceEngine",
    "Pause",
    "PocketSphinxEngine",
    "Recording",
    "SileroDetector",
    "Speech",
    "SynthesisSettings",
    "Synthesizer",
    "TrainConfig",
    "TrainResult",
    "Transcript",
    "Utterance",
    "WebRTCDetector",
    "Window",
    "Word",
    "WordLM",
    "__version__",
    "align",
    "beam_search_words",
    "build_librispeech",
    "compute_ratio",
    "detect_speech",
    "evaluate_corpus",
    "load_corpus",
    "make_engine",
    "merge_center",
    "merge_lcs_midpoint",
    "merge_lcs_nemo",
    "merger",
    "normalize_text",
    "normalize_word",
    "oracle_words",
    "pauses",
    "plan_windows",
    "resample",
    "seam_errors",
    "seam_times",
    "synthesize_corpus",
    "text_sentences",
    "to_ctm",
    "to_srt",
    "train_ctc",
    "transcribe_long",
    "transcribe_strided",
    "word_error_rate",
    "word_similarity",
    "write_audio",
]
