"""Log-mel filterbank features in torch (no torchaudio): 80 bands, 25 ms Hann windows every 10 ms at 16 kHz."""

from __future__ import annotations

import torch

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 80


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """``(n_mels, n_fft // 2 + 1)`` triangular filters evenly spaced on the HTK mel scale from 0 Hz to Nyquist."""
    bins = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(torch.linspace(0.0, float(_hz_to_mel(torch.tensor(sample_rate / 2.0))), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


class LogMel(torch.nn.Module):
    """``(B, n)`` float waveforms at 16 kHz → ``(B, 80, 1 + n // 160)`` log-mel features, each utterance normalised
    to zero mean and unit variance per band (so a chunk's level does not matter)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("filters", mel_filterbank(), persistent=False)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        spectrum = torch.stft(waveforms, N_FFT, HOP, window=self.window, center=True, return_complex=True)
        power = spectrum.real**2 + spectrum.imag**2
        features = torch.log(self.filters @ power + 1e-6)
        frames = features.shape[-1]
        if lengths is None:
            mask = torch.ones(features.shape[0], 1, frames, device=features.device)
        else:
            counts = frame_count(lengths).clamp(max=frames)
            mask = (torch.arange(frames, device=features.device)[None, :] < counts[:, None]).float()[
                :, None, :
            ]
        count = mask.sum(-1, keepdim=True).clamp(min=1.0)
        mean = (features * mask).sum(-1, keepdim=True) / count
        var = (((features - mean) ** 2) * mask).sum(-1, keepdim=True) / count
        return (features - mean) / torch.sqrt(var + 1e-5) * mask


def frame_count(lengths: torch.Tensor) -> torch.Tensor:
    """Feature frames of waveforms of ``lengths`` samples (``center=True`` STFT)."""
    return lengths // HOP + 1
