"""``vad-asr reproduce``: the paper's trade-off on a synthetic long-form corpus.

It needs an engine whose short-utterance WER on that corpus is low enough for seam errors to show, which the
in-package CTC model of vad-asr 0.2.0 provides (PocketSphinx's WER on espeak-ng speech is about 0.7). In 0.1.0
the command says so and stops.
"""

from __future__ import annotations

AVAILABLE_IN = "0.2.0"
