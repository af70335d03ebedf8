"""Speech recognition speed, memory and WER against audio duration, ours side by side with Whisper's own decoder
and pocketsphinx.

For each duration, a long recording of held-out sentences (espeak-ng, one voice, short pauses) is made;
with `--clips`, the first `--max-clips` held-out clips of an audiofolder (one sentence each, unseen voices)
are the test set instead. Every system transcribes the same files in a fresh process, so that its peak
memory is its own; the wall time counts reading the audio and transcribing, not loading the model:

    .venv/bin/python benchmarks/asr_speed.py --model runs/asr/best --minutes 0.17 1 10 60 --decoder lm ctc
    .venv/bin/python benchmarks/asr_speed.py --model runs/asr/best --minutes 1 10 --reference pocketsphinx --threads 1
    .venv/bin/python benchmarks/asr_speed.py --model runs/asr/best --clips data/speech/eval --max-clips 200 \
        --reference pocketsphinx --threads 1
    .venv/bin/python benchmarks/asr_speed.py --model runs/asr_ctc/best --decoder ctc ctc-lm --minutes 10 \
        --lexicon data/speech/train/metadata.jsonl --lm runs/words.arpa

On the natural-voice corpus (issue 27), a test split of unheard speakers and the long recording in one of them:

    .venv/bin/python benchmarks/asr_speed.py --model speech-en --clips ~/.cache/multimodal/data/natural_speech/test \
        --minutes 10 --voice flite-rms --decoder lm ctc --reference whisper pocketsphinx --threads 2

`whisper` is Whisper's own decoder, greedy, English, on the weights our encoder uses (`--whisper-name`), as
transformers runs it: 30 s windows for clips, its sequential long-form decoding over longer audio.
`ctc-lm` is the CTC head read by the lexicon beam search with the word n-gram LM (`--lexicon`, `--lm`); the
search is built (word list read, LM loaded) before the clock starts, like the model. `ctc-rescore` adds the
model's backbone re-ranking the search's 20 best (`transcribe --rescore`).

Prints duration, wall time, real-time factor (wall / duration), peak RSS and corpus WER/CER per system.
Both systems' transcripts are scored by `tasks.metrics` wer/cer, which lowercase and drop punctuation first
(pocketsphinx writes lowercase words without punctuation).

pocketsphinx (`--reference pocketsphinx`, benchmark-only: `.venv/bin/pip install pocketsphinx==5.1.1`, or the
`bench` extra) runs with its own US-English acoustic model, LM and dictionary and its default settings, on
16 kHz mono 16-bit PCM. A clip is one utterance. A long recording is cut by pocketsphinx's own `Endpointer`
(its VAD, default 0.3 s window) into utterances that are streamed to the decoder frame by frame, as its
`live` mode does: one utterance per pause keeps its memory flat and its LM's sentence boundaries at pauses.
On the 1-minute recording this scored the same WER as decoding the whole stream as one utterance (0.917 and
0.922) and as decoding each segment at once (0.917). pocketsphinx decodes on one thread; `--threads 1`
makes ours do the same.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from peak_memory import peak_rss_gb

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 16000  # pocketsphinx's en-us model and our audio encoder both take 16 kHz
POCKETSPHINX = "pocketsphinx"
WHISPER = "whisper"  # Whisper's own decoder (greedy) on the same converted weights as our encoder
CTC_LM = "ctc-lm"  # the CTC head through the lexicon search with a word n-gram LM
CTC_RESCORE = "ctc-rescore"  # ... and the backbone re-ranking the search's n best (tasks/lm_rescore.py)
SEARCHES = (CTC_LM, CTC_RESCORE)
INSTALL_POCKETSPHINX = ".venv/bin/pip install pocketsphinx==5.1.1  (or: .venv/bin/pip install -e '.[bench]')"


def to_pcm16(waveform: np.ndarray) -> bytes:
    """A float waveform in [-1, 1] as little-endian 16-bit PCM; out-of-range samples are clipped.

    Scaled by 32768, so a 16-bit file read as float (int / 32768) comes back exactly.
    """
    samples = np.clip(np.round(np.asarray(waveform, dtype=np.float64) * 32768), -32768, 32767)
    return samples.astype("<i2").tobytes()


def read_pcm16(path: str | Path) -> tuple[bytes, float]:
    """A file's audio as 16 kHz mono 16-bit PCM (channels averaged, resampled if needed), and its duration_s.

    soundfile + soxr, not encoders.audio_io.load_audio: that would import torch into pocketsphinx's process
    and charge it 0.5 GB of memory that is not its own (measured: 0.65 GB peak instead of 0.13 on 5 clips).
    """
    import soundfile

    frames, rate = soundfile.read(path, dtype="float32", always_2d=True)  # (N, C)
    waveform = frames.mean(axis=1)  # (N,)
    if rate != SAMPLE_RATE:
        import soxr

        waveform = soxr.resample(waveform, rate, SAMPLE_RATE)
    return to_pcm16(waveform), len(waveform) / SAMPLE_RATE


def pocketsphinx_long(decoder, pcm: bytes) -> str:
    """Endpointer-cut utterances, streamed frame by frame; their hypotheses joined."""
    from pocketsphinx import Endpointer

    endpointer = Endpointer(sample_rate=SAMPLE_RATE)
    n_bytes = endpointer.frame_bytes
    n_whole = len(pcm) // n_bytes * n_bytes
    texts, in_utterance = [], False

    def feed(speech: bytes | None) -> None:
        nonlocal in_utterance
        if speech is None:
            return
        if not in_utterance:
            decoder.start_utt()
            in_utterance = True
        decoder.process_raw(speech, False, False)
        if not endpointer.in_speech:
            decoder.end_utt()
            in_utterance = False
            texts.append(decoder.hyp().hypstr if decoder.hyp() else "")

    for start in range(0, n_whole, n_bytes):
        feed(endpointer.process(pcm[start : start + n_bytes]))
    if endpointer.in_speech:
        feed(endpointer.end_stream(pcm[n_whole:]))
    if in_utterance:  # end_stream left nothing to close the utterance with
        decoder.end_utt()
        texts.append(decoder.hyp().hypstr if decoder.hyp() else "")
    return " ".join(t for t in texts if t)


def pocketsphinx_clip(decoder, pcm: bytes) -> str:
    """One clip, one utterance."""
    decoder.start_utt()
    decoder.process_raw(pcm, False, True)
    decoder.end_utt()
    return decoder.hyp().hypstr if decoder.hyp() else ""


def whisper_own(model, extractor, tokenizer, waveforms: list[np.ndarray], batch_size: int) -> list[str]:
    """Whisper's own greedy decoding, English, as transformers runs it: clips in batches of 30 s windows; audio
    over 30 s by transformers' sequential long-form decoding (each window starts where the last timestamp ended)."""
    import torch

    texts = []
    for start in range(0, len(waveforms), batch_size):
        batch = waveforms[start : start + batch_size]
        long = max(len(w) for w in batch) > 30 * SAMPLE_RATE
        inputs = extractor(batch, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True,
                           **({"truncation": False, "padding": "longest"} if long else {}))
        with torch.no_grad():
            ids = model.generate(inputs.input_features, attention_mask=inputs.attention_mask, language="en",
                                 task="transcribe", **({"return_timestamps": True} if long else {}))
        texts += [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    return texts


def child(system: str, files: list[str], model_dir: str | None, batch_size: int, threads: int | None, clips: bool,
          lexicon: str | None = None, lm: str | None = None, whisper_name: str = "whisper-base") -> None:
    """Runs in its own process: load, transcribe `files`, print one JSON line with the texts and the costs."""
    if system == WHISPER:
        sys.path.insert(0, str(ROOT))
        import soundfile
        import torch
        from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration

        from encoders.whisper import whisper_dir

        if threads:
            torch.set_num_threads(threads)
        path = whisper_dir(whisper_name)
        model = WhisperForConditionalGeneration.from_pretrained(path, dtype=torch.float32).eval()
        extractor, tokenizer = WhisperFeatureExtractor.from_pretrained(path), AutoTokenizer.from_pretrained(path)
        rss_loaded = peak_rss_gb()
        t = time.perf_counter()
        waveforms = [soundfile.read(f, dtype="float32")[0] for f in files]  # 16 kHz mono (the corpus's and ours)
        texts = whisper_own(model, extractor, tokenizer, waveforms, batch_size)
        duration_s = sum(len(w) for w in waveforms) / SAMPLE_RATE
    elif system == POCKETSPHINX:
        from pocketsphinx import Decoder

        decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
        rss_loaded = peak_rss_gb()
        t = time.perf_counter()
        texts, duration_s = [], 0.0
        for path in files:
            pcm, seconds = read_pcm16(path)
            texts.append(pocketsphinx_clip(decoder, pcm) if clips else pocketsphinx_long(decoder, pcm))
            duration_s += seconds
    else:
        sys.path.insert(0, str(ROOT))
        import torch

        import multimodal as mm

        if threads:
            torch.set_num_threads(threads)
        from multimodal.transcribe import backbone_scorer
        from tasks.ctc_lexicon import LexiconDecoder

        model = mm.load(model_dir)
        model.decoding = {}  # each system's decoding is what its name says, not a shipped model's stored settings
        heads = model.config.heads
        search = (LexiconDecoder(lexicon, lm=lm, units=heads.ctc_units, accent=heads.ctc_phone_accent,
                                 rescorer=backbone_scorer(model) if system == CTC_RESCORE else None)
                  if system in SEARCHES else None)
        rss_loaded = peak_rss_gb()
        t = time.perf_counter()
        results = model.transcribe(list(files), decoder="ctc" if search else system, batch_size=batch_size,
                                   lexicon=search)
        texts, duration_s = [r.text for r in results], sum(r.duration_s for r in results)
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "duration_s": duration_s, "peak_rss_gb": peak_rss_gb(),
                      "rss_after_load_gb": rss_loaded, "texts": texts}))


def read_clips(folder: Path, max_clips: int) -> tuple[list[str], list[str]]:
    """The first `max_clips` rows of an audiofolder's metadata.jsonl: paths and reference texts."""
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines() if line.strip()]
    rows = rows[:max_clips]
    return [str(folder / r["file_name"]) for r in rows], [r["text"] for r in rows]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--minutes", type=float, nargs="*", default=None,
                   help="long-recording durations (default 0.17 1 10, or none with --clips)")
    p.add_argument("--decoder", nargs="*", default=["lm", "ctc"], choices=["lm", "ctc", *SEARCHES])
    p.add_argument("--lexicon", help=f"{CTC_LM}: the word list (text file or metadata.jsonl)")
    p.add_argument("--lm", help=f"{CTC_LM}: the word n-gram LM (ARPA / KenLM binary)")
    p.add_argument("--reference", nargs="*", default=[], choices=[POCKETSPHINX, WHISPER],
                   help="other systems on the same files: pocketsphinx; whisper = Whisper's own greedy decoder on the "
                        "weights of --whisper-name")
    p.add_argument("--whisper-name", default="whisper-base", help="the Whisper preset or dir of --reference whisper")
    p.add_argument("--voice", default=None,
                   help="read the long recordings in this natural voice (tasks/corpora/voices.py, e.g. flite-rms, a "
                        "test-only speaker) from the natural corpus's test sentences, instead of espeak-ng's")
    p.add_argument("--clips", help="an audiofolder of short held-out clips (metadata.jsonl: file_name, text)")
    p.add_argument("--max-clips", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=None, help="torch threads for ours (default: torch's own)")
    p.add_argument("--workdir", default="/tmp/asr-speed")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--child-clips", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1:], args.model, args.batch_size, args.threads, args.child_clips,
              args.lexicon, args.lm, args.whisper_name)
        return
    if set(SEARCHES) & set(args.decoder) and not (args.lexicon and args.lm):
        sys.exit(f"--decoder {' / '.join(SEARCHES)} needs --lexicon and --lm")
    if POCKETSPHINX in args.reference and importlib.util.find_spec("pocketsphinx") is None:
        sys.exit(f"pocketsphinx is not installed; it is a benchmark-only dependency:\n  {INSTALL_POCKETSPHINX}")
    sys.path.insert(0, str(ROOT))
    from tasks.corpora.speech import long_recording
    from tasks.metrics import cer, wer

    sets = []  # (label, files, references, clips)
    if args.clips:
        files, references = read_clips(Path(args.clips), args.max_clips)
        sets.append((f"{len(files)} clips", files, references, True))
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    minutes_list = args.minutes if args.minutes is not None else ([] if args.clips else [0.17, 1, 10])
    for minutes in minutes_list:
        if args.voice:
            from tasks.corpora.natural_speech import long_recording as natural_recording

            wav = work / f"long_{minutes:g}min_{args.voice}.wav"
            if not wav.is_file():
                natural_recording(wav, args.voice, minutes, seed=1)
            reference = " ".join(wav.with_suffix(".txt").read_text().split("\n"))
        else:
            wav = work / f"long_{minutes:g}min.wav"
            if not wav.is_file():
                long_recording(wav, minutes, seed=1)
            reference = json.loads(wav.with_suffix(".json").read_text())["text"]
        sets.append((f"{minutes:g} min", [str(wav)], [reference], False))

    env = dict(os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}))
    print(f"{'audio':>10} {'system':>12} {'audio s':>8} {'wall s':>8} {'RTF':>7} {'peak RSS':>9} {'after load':>10} "
          f"{'WER':>6} {'CER':>6}")
    for label, files, references, clips in sets:
        for system in args.decoder + args.reference:
            command = [sys.executable, __file__, "--model", args.model, "--batch-size", str(args.batch_size)]
            command += (["--threads", str(args.threads)] if args.threads else []) + (["--child-clips"] if clips else [])
            command += ["--lexicon", args.lexicon, "--lm", args.lm] if system in SEARCHES else []
            command += ["--whisper-name", args.whisper_name] if system == WHISPER else []
            out = subprocess.run(command + ["--child", system, *files], capture_output=True, text=True, env=env)
            name = {POCKETSPHINX: POCKETSPHINX, WHISPER: f"{args.whisper_name} own"}.get(system, f"ours {system}")
            if out.returncode != 0:
                print(f"{label:>10} {name:>12} failed: {out.stderr[-500:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{label:>10} {name:>12} {r['duration_s']:>8.1f} {r['seconds']:>8.1f} "
                  f"{r['seconds'] / r['duration_s']:>7.4f} {r['peak_rss_gb']:>8.2f}G {r['rss_after_load_gb']:>9.2f}G "
                  f"{wer(references, r['texts']):>6.3f} {cer(references, r['texts']):>6.3f}", flush=True)


if __name__ == "__main__":
    main()
