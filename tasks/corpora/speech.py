"""Synthetic speech with exact transcripts: espeak-ng reading fortune sentences in many voices.

The corpus is an audiofolder (`OUT/train/`, `OUT/eval/`: 16 kHz mono wav + `metadata.jsonl` rows
`{"file_name", "text", "voice", "speed", "pitch", "duration_s"}`), so the data layer reads it like any user's
data. One robotic voice would teach a recogniser one voice, so every utterance draws an accent, a voice
variant, a speed and a pitch.

Held out for evaluation, so eval measures generalisation rather than memory:
- sentences: a stable hash of the text puts `EVAL_SENTENCE_FRACTION` of all sentences in eval only, whatever
  the seed, hours or eval_fraction (two corpora never leak each other's eval sentences into training);
- voice variants: `EVAL_ONLY_VARIANTS` are never used in train; half of the eval utterances use one of them,
  the other half a train variant, so eval shows both seen and unseen voices (the `voice` column tells which).
Accents, speeds and pitches are shared by both splits.

Generation is deterministic for a seed: every utterance's parameters come from one seeded stream planned in
the main process, and results are kept in plan order whatever the pool's timing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tasks.corpora.folders import clear_split
from tasks.corpora.sentences import sentences

SAMPLE_RATE = 16000  # what every audio encoder consumes (encoders.audio_io.SAMPLE_RATE)
ESPEAK = "espeak-ng"
ESPEAK_PACKAGE = "espeak-ng"  # Debian package
# espeak-ng's own English accents (`espeak-ng --voices=en`, files under gmw/); the mbrola ones need mbrola.
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
EXCLUDED_VARIANTS = frozenset({"fast"})  # "unstable" experimental timing; names with spaces are skipped too
EVAL_ONLY_VARIANTS = ("Andrea", "f4", "iven3", "klatt3", "m6", "robosoft4", "steph2", "travis")
EVAL_HELD_OUT_VOICE_SHARE = 0.5  # share of eval utterances spoken by an eval-only variant
EVAL_SENTENCE_FRACTION = 0.1  # of all sentences, by hash: eval only
SPEED_WPM = (120, 260)  # espeak -s, words per minute, inclusive
PITCH = (20, 80)  # espeak -p, 0-99, inclusive
PAUSE_S = (0.2, 1.0)  # silence between utterances in a long recording
BATCH_MIN, BATCH_MAX = 16, 256  # utterances planned at a time (the last batch is sized to what is missing)
POOL_CHUNK = 4  # utterances per task sent to a worker
SPLITS = ("train", "eval")
METADATA = "metadata.jsonl"


class MissingSpeechSynthesizer(RuntimeError):
    """espeak-ng is not installed."""


@dataclass(frozen=True)
class Utterance:
    """What to say and how: one espeak-ng call."""

    text: str
    voice: str  # "accent+variant", e.g. "en-us+m3"
    speed: int  # words per minute
    pitch: int  # 0-99


def _espeak() -> str:
    path = shutil.which(ESPEAK)
    if path is None:
        raise MissingSpeechSynthesizer(
            f"`{ESPEAK}` not found on PATH: install the Debian package `{ESPEAK_PACKAGE}` "
            f"(apt-get install -y {ESPEAK_PACKAGE}, or `make setup`)"
        )
    return path


def espeak_voices() -> tuple[list[str], list[str]]:
    """The installed `(accents, variants)`: ACCENTS that espeak-ng lists, and the variant files it has."""
    espeak = _espeak()
    listed = subprocess.run([espeak, "--voices=en"], capture_output=True, text=True, check=True).stdout
    installed = {line.split()[1] for line in listed.splitlines()[1:] if line.split()}
    accents = [a for a in ACCENTS if a in installed]
    version = subprocess.run([espeak, "--version"], capture_output=True, text=True, check=True).stdout
    data_dir = Path(version.split("Data at:")[-1].strip())
    variant_dir = data_dir / "voices" / "!v"
    variants = sorted(
        p.name for p in variant_dir.iterdir() if p.is_file() and " " not in p.name and p.name not in EXCLUDED_VARIANTS
    ) if variant_dir.is_dir() else []
    if not accents or not variants:
        raise MissingSpeechSynthesizer(f"espeak-ng has no English voices or no variants (looked in {variant_dir})")
    return accents, variants


def is_eval_sentence(text: str) -> bool:
    """Stable split by content: the same sentence is eval-only on every machine and in every corpus."""
    digest = hashlib.sha1(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < EVAL_SENTENCE_FRACTION


def split_sentences() -> dict[str, list[str]]:
    """All usable sentences, partitioned into disjoint train and eval lists."""
    every = sentences()
    return {
        "train": [s for s in every if not is_eval_sentence(s)],
        "eval": [s for s in every if is_eval_sentence(s)],
    }


def split_variants(variants: list[str]) -> dict[str, list[str]]:
    """Train variants, and the installed eval-only ones."""
    held_out = [v for v in variants if v in EVAL_ONLY_VARIANTS]
    return {"train": [v for v in variants if v not in EVAL_ONLY_VARIANTS], "eval": held_out}


def synthesize(utterance: Utterance) -> np.ndarray:
    """Speak one utterance: float32 mono waveform ``(N,)`` at 16 kHz (espeak-ng writes 22,050 Hz)."""
    from encoders.audio_io import resample

    command = [_espeak(), "-v", utterance.voice, "-s", str(utterance.speed), "-p", str(utterance.pitch), "--stdout"]
    wav = subprocess.run(command, input=utterance.text.encode(), capture_output=True, check=True).stdout
    # espeak's streamed header carries a placeholder data size, so read the PCM after the "data" chunk id.
    data_at = wav.find(b"data")
    if wav[:4] != b"RIFF" or data_at < 0:
        raise RuntimeError(f"espeak-ng returned no wav for {utterance}")
    sample_rate = int.from_bytes(wav[24:28], "little")
    pcm = np.frombuffer(wav[data_at + 8 :], dtype="<i2", count=(len(wav) - data_at - 8) // 2)
    return resample(pcm.astype(np.float32) / 32768.0, sample_rate, SAMPLE_RATE)


def _plan(split: str, seed: int, accents: list[str], variants: dict[str, list[str]], texts: list[str]):
    """Endless, deterministic stream of utterances for one split; sentences cycle in reshuffled epochs."""
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    while True:
        for i in rng.permutation(len(texts)):
            held_out = split == "eval" and variants["eval"] and rng.random() < EVAL_HELD_OUT_VOICE_SHARE
            pool = variants["eval"] if held_out else variants["train"]
            voice = f"{accents[rng.integers(len(accents))]}+{pool[rng.integers(len(pool))]}"
            speed = int(rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1))
            pitch = int(rng.integers(PITCH[0], PITCH[1] + 1))
            yield Utterance(texts[i], voice, speed, pitch)


def _synthesize_all(utterances: list[Utterance], pool):
    """Waveforms in the order of `utterances`, as they are ready (in-process when there is no pool).

    The pool is one of threads: the work is espeak-ng's process and soxr, which both run outside the GIL. A
    forked process pool, as before, hung a test run once: forking a process whose torch threads are running.
    """
    if pool is None:
        return map(synthesize, utterances)
    return pool.imap(synthesize, utterances, chunksize=POOL_CHUNK)


def _write_split(folder: Path, plan, target_s: float, workers: int, pool, progress) -> dict:
    """Synthesise utterances in plan order until `target_s` seconds of audio; write wavs and metadata."""
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    rows, total_s, batch, progress_offset = [], 0.0, BATCH_MIN, progress.n
    while total_s < target_s:
        utterances = [next(plan) for _ in range(batch)]
        for utterance, waveform in zip(utterances, _synthesize_all(utterances, pool)):
            if total_s >= target_s:
                break  # the rest of the batch is discarded: the corpus is the plan's prefix
            name = f"{folder.name}_{len(rows):06d}.wav"
            soundfile.write(folder / name, waveform, SAMPLE_RATE, subtype="PCM_16")
            duration_s = len(waveform) / SAMPLE_RATE
            rows.append({"file_name": name, **asdict(utterance), "duration_s": round(duration_s, 3)})
            total_s += duration_s
            progress.update(int(progress_offset + total_s) - progress.n)  # whole seconds of audio
        mean_s = total_s / max(len(rows), 1)
        batch = int(min(BATCH_MAX, max(BATCH_MIN, math.ceil((target_s - total_s) / max(mean_s, 0.1)) + workers)))
    with open(folder / METADATA, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return {"utterances": len(rows), "hours": total_s / 3600}


def generate_speech_corpus(
    out: Path, hours: float, eval_fraction: float = 0.05, seed: int = 0, workers: int = 2
) -> dict:
    """Write `hours` of speech as an audiofolder under `out` (eval gets `eval_fraction` of the hours).

    Returns ``{"train": {"utterances", "hours"}, "eval": {...}, "sentences": {"train", "eval"},
    "voices": {"accents", "train_variants", "eval_only_variants"}}``. Existing split folders are replaced.
    Raises MissingSpeechSynthesizer / MissingSentenceSource when espeak-ng / fortunes are not installed.
    """
    from multiprocessing.pool import ThreadPool

    from tqdm.auto import tqdm

    if hours <= 0 or not 0 <= eval_fraction < 1:
        raise ValueError(f"need hours > 0 and 0 <= eval_fraction < 1, got hours={hours}, eval_fraction={eval_fraction}")
    accents, installed_variants = espeak_voices()
    texts, variants = split_sentences(), split_variants(installed_variants)
    out = Path(out)
    summary: dict = {}
    pool = ThreadPool(workers) if workers > 1 else None  # see _synthesize_all
    try:
        with tqdm(total=round(hours * 3600), desc="speech", unit="s audio") as progress:
            for split, share in (("train", 1 - eval_fraction), ("eval", eval_fraction)):
                clear_split(out / split, ".wav")
                if share == 0:
                    continue
                plan = _plan(split, seed, accents, variants, texts[split])
                summary[split] = _write_split(out / split, plan, hours * 3600 * share, workers, pool, progress)
    finally:
        if pool is not None:
            pool.terminate()
    summary["sentences"] = {split: len(texts[split]) for split in SPLITS}
    summary["voices"] = {
        "accents": accents,
        "train_variants": variants["train"],
        "eval_only_variants": variants["eval"],
    }
    return summary


def long_recording(out_path: Path, minutes: float, seed: int = 0, voice: str | None = None, workers: int = 2) -> dict:
    """One long wav of eval sentences in one voice, with 0.2-1 s pauses, plus its reference transcript.

    Writes `out_path` (16 kHz mono) and `out_path.with_suffix(".json")`: ``{"audio", "sample_rate",
    "duration_s", "voice", "speed", "pitch", "text", "segments": [{"start_s", "end_s", "text"}]}``, and returns
    that dict. For long-audio tests and benchmarks: the sentences are eval-only, so a model trained on a
    corpus from this module has never heard them (they repeat only past ~1.5 hours). One speaker throughout:
    `voice` ("en-gb+f3"), or one drawn from all accents and variants (eval-only ones included), with one
    speed and pitch drawn from the corpus ranges.
    """
    from multiprocessing.pool import ThreadPool

    import soundfile

    accents, installed_variants = espeak_voices()
    rng = np.random.default_rng([seed, len(SPLITS)])
    if voice is None:
        voice = f"{accents[rng.integers(len(accents))]}+{installed_variants[rng.integers(len(installed_variants))]}"
    speed = int(rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1))
    pitch = int(rng.integers(PITCH[0], PITCH[1] + 1))
    texts = split_sentences()["eval"]
    order = (i for _ in itertools.count() for i in rng.permutation(len(texts)))  # endless reshuffled epochs
    target_n = minutes * 60 * SAMPLE_RATE
    pieces, segments, n_samples = [], [], 0
    pool = ThreadPool(workers) if workers > 1 else None  # see _synthesize_all
    try:
        while n_samples < target_n:
            batch = [Utterance(texts[next(order)], voice, speed, pitch) for _ in range(BATCH_MIN)]
            for utterance, waveform in zip(batch, _synthesize_all(batch, pool)):
                if n_samples >= target_n:
                    break
                pause = np.zeros(int(rng.uniform(*PAUSE_S) * SAMPLE_RATE), dtype=np.float32)
                pieces += [pause, waveform]
                start = n_samples + len(pause)
                n_samples = start + len(waveform)
                segments.append({"start_s": round(start / SAMPLE_RATE, 3), "end_s": round(n_samples / SAMPLE_RATE, 3),
                                 "text": utterance.text})
    finally:
        if pool is not None:
            pool.terminate()
    audio = np.concatenate(pieces + [np.zeros(int(PAUSE_S[0] * SAMPLE_RATE), dtype=np.float32)])
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(out_path, audio, SAMPLE_RATE, subtype="PCM_16")
    reference = {
        "audio": out_path.name,
        "sample_rate": SAMPLE_RATE,
        "duration_s": round(len(audio) / SAMPLE_RATE, 3),
        "voice": voice,
        "speed": speed,
        "pitch": pitch,
        "text": " ".join(s["text"] for s in segments),
        "segments": segments,
    }
    out_path.with_suffix(".json").write_text(json.dumps(reference, indent=1))
    return reference
