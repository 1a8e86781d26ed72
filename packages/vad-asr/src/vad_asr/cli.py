"""``vad-asr``: long-form transcription from the command line (argument parsing only)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from papers_common import App, InputError, option, write_text
from vad_asr import __version__
from vad_asr.formats import FORMATS, Format, render
from vad_asr.merging import MERGES, Merge
from vad_asr.policies import POLICIES, Policy
from vad_asr.vad import BACKENDS, Backend

app = App(
    "vad-asr",
    description="Long-form speech recognition with any engine (VADOI, Wang et al., ICASSP 2022): fixed, "
    "overlapping and VAD-overlapping chunking with Soft-Match seam merging.",
    version=__version__,
)


@dataclass
class TranscribeArgs:
    audio: Path = option(
        help="the recording (WAV, FLAC, OGG...; any rate and channel count); also positional"
    )
    engine: str = option("pocketsphinx", help="'pocketsphinx' (bundled English model) or 'hf' (with --model)")
    model: Path | None = option(
        None, help="a local Hugging Face CTC or seq2seq checkpoint folder (--engine hf)"
    )
    policy: Policy = option("vadoi", help=f"chunking policy: {', '.join(POLICIES)}")
    merge: Merge = option("softmatch", help=f"seam merge of overlapping windows: {', '.join(MERGES)}")
    window: float = option(20.0, help="longest window L in seconds")
    overlap: float | None = option(
        None, help="overlap ratio o (default: 0.5 for overlap/vadoi, 0.25 for partial)"
    )
    vad: Backend = option("silero", help=f"VAD backend for vadoi: {', '.join(BACKENDS)}")
    min_pause: float = option(0.3, help="shortest pause VADOI cuts at, seconds")
    format: Format = option("json", help=f"output format: {', '.join(FORMATS)}")
    out: Path | None = option(None, help="output file (default: standard output)", output="file")
    device: str = option("cpu", help="device of --engine hf")
    progress: bool = option(True, help="a progress bar over the windows (on standard error)")


@app.command(
    "transcribe", TranscribeArgs, help="transcribe a long recording; words with times as JSON, CTM or SRT"
)
def transcribe(args: TranscribeArgs) -> None:
    from vad_asr.engines import make_engine
    from vad_asr.longform import transcribe_long

    if not args.window > 0:
        raise InputError(f"--window must be positive, got {args.window}")
    if args.overlap is not None and not 0.0 <= args.overlap < 1.0:
        raise InputError(f"--overlap must lie in [0, 1), got {args.overlap}")
    if not args.min_pause > 0:
        raise InputError(f"--min-pause must be positive, got {args.min_pause}")
    engine = make_engine(args.engine, model=args.model, device=args.device)
    result = transcribe_long(args.audio, engine, policy=args.policy, merge=args.merge, window_s=args.window,
                             overlap=args.overlap, vad=args.vad, min_pause_s=args.min_pause,
                             show_progress=args.progress)  # fmt: skip
    text = render(result.to_json(), result.words, args.format, args.audio.stem)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text(args.out, text)


@dataclass
class ReproduceArgs:
    out: Path = option(
        Path("reports/vad-asr"), help="directory for results.json, results.md and figures", output="dir"
    )
    quick: bool = option(True, help="the quick version (minutes on a CPU)", flags=("--quick", "--full"))


@app.command("reproduce", ReproduceArgs, help="the paper's claims (arrive in vad-asr 0.2.0)")
def reproduce(args: ReproduceArgs) -> None:
    from vad_asr.reproduce import AVAILABLE_IN

    raise InputError(
        f"vad-asr reproduce arrives in {AVAILABLE_IN} with the in-package CTC engine; {__version__} provides "
        "transcribe"
    )


def _positional_audio(argv: Sequence[str]) -> list[str]:
    """``transcribe FILE ...`` → ``transcribe --audio FILE ...``."""
    argv = list(argv)
    if len(argv) >= 2 and argv[0] == "transcribe" and not argv[1].startswith("-"):
        argv.insert(1, "--audio")
    return argv


def main(argv: Sequence[str] | None = None) -> None:
    raise SystemExit(app.main(_positional_audio(sys.argv[1:] if argv is None else argv)))
