"""Shared fixtures: espeak-ng speech made at test time (the CI installs espeak-ng)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)  # small models: one thread is fastest, and steady on a busy machine


def espeak(text: str, *, speed: int = 165, voice: str = "en-us") -> np.ndarray:
    """``text`` spoken by espeak-ng, 16 kHz mono float32."""
    import soundfile as sf

    from vad_asr.audio import resample

    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True,
                         check=True).stdout  # fmt: skip
    data, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return resample(data, rate)


@pytest.fixture(scope="session")
def have_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is needed (apt-get install espeak-ng); .ci/run installs it")
