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
    engine: str = option(
        "pocketsphinx", help="'pocketsphinx' (bundled English model), 'hf' or 'ctc' (with --model)"
    )
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
    decoder: str | None = option(
        None, help="--engine ctc decoding: 'beam' (default; word bigram model) or 'greedy'"
    )
    lm: Path | None = option(
        None, help="ARPA word model for --decoder beam (default: the model folder's lm.arpa.gz)"
    )
    beam_width: int | None = option(None, help="hypotheses kept per frame by --decoder beam (default 16)")
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
    engine = make_engine(args.engine, model=args.model, device=args.device, decoder=args.decoder, lm=args.lm,
                         beam_width=args.beam_width)  # fmt: skip
    result = transcribe_long(args.audio, engine, policy=args.policy, merge=args.merge, window_s=args.window,
                             overlap=args.overlap, vad=args.vad, min_pause_s=args.min_pause,
                             show_progress=args.progress)  # fmt: skip
    text = render(result.to_json(), result.words, args.format, args.audio.stem)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text(args.out, text)


@dataclass
class SynthArgs:
    text_dir: Path = option(help="folder of .txt files whose sentences are spoken (METADATA.txt left out)")
    out: Path = option(
        help="corpus folder to write (NAME.wav + NAME.json per recording, corpus.json)", output="dir"
    )
    minutes: float = option(30.0, help="total minutes of audio")
    recording_minutes: float | None = option(None, help="minutes per recording (default: one recording)")
    noise_db: float | None = option(None, help="white noise level in dBFS, e.g. -50 (default: none)")
    short_pause_fraction: float = option(0.3, help="share of pauses shorter than VADOI's 0.3 s minimum")
    seed: int = option(0, help="seed of sentence order, voices, speeds, pauses and noise")


@app.command(
    "corpus-synth", SynthArgs, help="make a synthetic long-form corpus with espeak-ng ('corpus synth')"
)
def corpus_synth(args: SynthArgs) -> None:
    from vad_asr.corpus import SynthesisSettings, read_texts, synthesize_corpus, text_sentences

    settings = SynthesisSettings(minutes=args.minutes, recording_minutes=args.recording_minutes,
                                 noise_db=args.noise_db, short_pause_fraction=args.short_pause_fraction,
                                 seed=args.seed)  # fmt: skip
    settings.check()
    made = synthesize_corpus(text_sentences(read_texts(args.text_dir)), args.out, settings)
    print(f"wrote {len(made)} recording(s) to {args.out}")


@dataclass
class LibriSpeechArgs:
    librispeech: Path = option(help="a local LibriSpeech split folder, e.g. LibriSpeech/test-clean")
    out: Path = option(help="corpus folder to write", output="dir")
    max_minutes: float | None = option(None, help="cap on each chapter's recording, minutes")


@app.command(
    "corpus-librispeech",
    LibriSpeechArgs,
    help="join each LibriSpeech chapter into one recording ('corpus librispeech')",
)
def corpus_librispeech(args: LibriSpeechArgs) -> None:
    from vad_asr.corpus import build_librispeech

    if args.max_minutes is not None and not args.max_minutes > 0:
        raise InputError(f"--max-minutes must be positive, got {args.max_minutes}")
    made = build_librispeech(args.librispeech, args.out, max_minutes=args.max_minutes)
    print(f"wrote {len(made)} recording(s) to {args.out}")


@dataclass
class EvaluateArgs:
    corpus: Path = option(help="a corpus folder (vad-asr corpus synth / corpus librispeech)")
    engine: str = option("pocketsphinx", help="'pocketsphinx', 'hf' or 'ctc' (with --model)")
    model: Path | None = option(
        None, help="a Hugging Face checkpoint (--engine hf) or train-ctc model folder (--engine ctc)"
    )
    policy: Policy = option("vadoi", help=f"chunking policy: {', '.join(POLICIES)}")
    merge: Merge = option("softmatch", help=f"seam merge: {', '.join(MERGES)}")
    window: float = option(20.0, help="longest window L in seconds")
    overlap: float | None = option(None, help="overlap ratio o (default: the policy's)")
    vad: Backend = option("silero", help=f"VAD backend for vadoi: {', '.join(BACKENDS)}")
    out: Path | None = option(None, help="write the evaluation as JSON here", output="file")
    decoder: str | None = option(
        None, help="--engine ctc decoding: 'beam' (default; word bigram model) or 'greedy'"
    )
    lm: Path | None = option(
        None, help="ARPA word model for --decoder beam (default: the model folder's lm.arpa.gz)"
    )
    beam_width: int | None = option(None, help="hypotheses kept per frame by --decoder beam (default 16)")
    device: str = option("cpu", help="device of --engine hf")


@app.command(
    "evaluate", EvaluateArgs, help="WER and chunking-induced error rate of a policy and merge on a corpus"
)
def evaluate(args: EvaluateArgs) -> None:
    from dataclasses import asdict

    from papers_common import write_json
    from vad_asr.engines import make_engine
    from vad_asr.evaluation import evaluate_corpus

    if not args.window > 0:
        raise InputError(f"--window must be positive, got {args.window}")
    engine = make_engine(args.engine, model=args.model, device=args.device, decoder=args.decoder, lm=args.lm,
                         beam_width=args.beam_width)  # fmt: skip
    result = evaluate_corpus(args.corpus, engine, policy=args.policy, merge=args.merge, window_s=args.window,
                             overlap=args.overlap, vad=args.vad)  # fmt: skip
    print(f"policy {args.policy}, merge {args.merge}, L = {args.window:g} s: WER {result.wer:.4f} "
          f"(engine on oracle segments {result.oracle_wer:.4f}), chunking-induced error rate "
          f"{result.chunking_error_rate:.4f}, WER within 1 s of a seam {result.seam_wer:.4f} "
          f"({result.seam_errors}/{result.seam_words}), compute ratio {result.compute_ratio:.3f}, "
          f"{result.engine_calls} engine calls, real-time factor {result.real_time_factor:.3f}")  # fmt: skip
    if args.out is not None:
        write_json(args.out, asdict(result))


@dataclass
class TrainCTCArgs:
    text_dir: Path = option(help="folder of .txt files whose sentences are spoken for training")
    out: Path = option(help="run folder: checkpoints, train_log.jsonl, model/ at the end (resumed when rerun)",
                       output="dir")  # fmt: skip
    steps: int = option(2000, help="optimizer steps")
    batch_size: int = option(8, help="utterances per step (each 2-15 s)")
    lr: float = option(2e-3, help="peak AdamW learning rate")
    channels: int = option(192, help="model width C")
    blocks: int = option(6, help="separable-convolution blocks")
    save_every: int = option(200, help="steps between checkpoints (and held-out CER)")
    seed: int = option(0, help="seed of the model and of every utterance drawn")
    threads: int | None = option(1, help="torch CPU threads (one is often fastest on a busy 2-core machine)")


@app.command(
    "train-ctc", TrainCTCArgs, help="train the CTC engine on espeak-ng speech of your text (resumable)"
)
def train_ctc_command(args: TrainCTCArgs) -> None:
    from vad_asr.corpus import read_texts, text_sentences
    from vad_asr.ctc import CTCConfig
    from vad_asr.training import TrainConfig, train_ctc

    model_config = CTCConfig(channels=args.channels, blocks=args.blocks)
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, save_every=args.save_every,
                         seed=args.seed)  # fmt: skip
    model_config.check()
    config.check()
    result = train_ctc(
        text_sentences(read_texts(args.text_dir)), args.out, model_config=model_config, config=config
    )
    print(
        f"trained {result.steps} steps in {result.seconds:.0f} s: loss {result.loss:.3f}, held-out CER "
        f"{result.valid_cer:.3f}; model in {result.model_dir}"
    )


@dataclass
class BuildLMArgs:
    text_dir: Path = option(help="folder of .txt files (the text the CTC model was trained on)")
    out: Path = option(help="the ARPA file to write (gzip-compressed when it ends in .gz)", output="file")
    min_bigram_count: int = option(2, help="bigrams seen fewer times are left to the back-off")


@app.command("build-lm", BuildLMArgs, help="a word bigram model (ARPA) for --decoder beam from your text")
def build_lm(args: BuildLMArgs) -> None:
    from vad_asr.corpus import read_texts, text_sentences
    from vad_asr.ngram import WordLM

    if args.min_bigram_count < 1:
        raise InputError(f"--min-bigram-count must be at least 1, got {args.min_bigram_count}")
    lm = WordLM.from_texts(text_sentences(read_texts(args.text_dir)), min_bigram_count=args.min_bigram_count)
    lm.save_arpa(args.out)
    print(f"{len(lm.unigram)} words, {len(lm.bigram)} bigrams: {args.out}")


@dataclass
class ReproduceArgs:
    out: Path = option(
        Path("reports/vad-asr"), help="directory for results.json, results.md and figures", output="dir"
    )
    quick: bool = option(True, help="the quick version (minutes on a CPU)", flags=("--quick", "--full"))


@app.command("reproduce", ReproduceArgs, help="the paper's WER-versus-compute claims on synthetic long-form speech",
             extra="reproduce")  # fmt: skip
def reproduce(args: ReproduceArgs) -> None:
    from vad_asr.reproduce import run

    results = run(args.out, quick=args.quick)
    print("\n".join(results.summary_lines()))
    print(f"results in {args.out}")


def _positional_audio(argv: Sequence[str]) -> list[str]:
    """``transcribe FILE ...`` → ``transcribe --audio FILE ...``; ``corpus synth`` → ``corpus-synth``."""
    argv = list(argv)
    if len(argv) >= 2 and argv[0] == "transcribe" and not argv[1].startswith("-"):
        argv.insert(1, "--audio")
    if len(argv) >= 2 and argv[0] == "corpus" and argv[1] in ("synth", "librispeech"):
        argv[:2] = [f"corpus-{argv[1]}"]
    return argv


def main(argv: Sequence[str] | None = None) -> None:
    raise SystemExit(app.main(_positional_audio(sys.argv[1:] if argv is None else argv)))
