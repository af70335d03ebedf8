"""Transcription of audio files of any length: windows, batches, merge, timestamps.

Each file is read window by window (`tasks.long_audio.plan_windows`: 20 s windows overlapping by 4 s, each
ending at the quietest 100 ms of its last 4 s, so a cut rarely splits a word), so memory stays flat however
long the audio is. Windows from all files are decoded in batches with the
transcription task's own prompt; a silent window gives no text; the number of generated tokens is bounded by
the window's duration; repetition loops are cut by the generation guard. The window transcripts of a file
are merged without doubled or dropped words into segments with start/end times. A file that cannot be read
is reported by name and skipped; the others are transcribed.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from encoders import InputFileError, SAMPLE_RATE, load_audio
from encoders.audio_io import check_sample_rate, resample, wav_declared_frames
from multimodal.generation import GenerationConfig
from multimodal.processor import Example, Processor
from tasks import get_task
from tasks.ctc_lexicon import as_lexicon_decoder
from tasks.lm_rescore import causal_lm_scorer
from tasks.long_audio import OVERLAP_S, WINDOW_S, Segment, Window, join_segments, merge_windows, plan_windows

log = logging.getLogger(__name__)
SILENCE_RMS = 10 ** (-50 / 20)  # a window quieter than -50 dBFS (after normalisation of nothing) is silence
MAX_TOKENS_PER_S = 6.0  # fast speech is ~3 words/s, ~4.5 tokens/s; the bound leaves headroom
MIN_NEW_TOKENS = 8


@dataclass
class Transcript:
    file: str | None  # the path, or None for an array
    text: str = ""
    segments: list[Segment] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None  # why the file was skipped
    warning: str | None = None  # what was wrong with a file that was still transcribed (e.g. cut short)


class AudioSource:
    """Reads one input window by window at 16 kHz mono, so memory stays flat however long the file is: what
    soundfile reads (wav, flac, ogg, mp3) it seeks; other formats (m4a, aac, opus in mp4...) are decoded range by
    range by torchcodec (FFmpeg). Only a file neither can range-read, and an array, is held whole."""

    def __init__(self, source: Any, sample_rate: int | None = None):
        self.name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
        self._file = None
        self._decoder = None
        self._waveform: np.ndarray | None = None
        self.warning: str | None = None
        if self.name is not None:
            try:
                import soundfile

                self._file = soundfile.SoundFile(self.name)
                check_sample_rate(self._file.samplerate, self.name)  # a 1 Hz header would plan hours of windows
                declared = wav_declared_frames(self.name)
                if self._file.frames == 0:
                    raise InputFileError("audio", self.name, "no audio samples (empty)")
                if declared is not None and declared > self._file.frames:
                    rate = self._file.samplerate
                    self.warning = (f"{self.name}: its header declares {declared / rate:.1f} s of audio but the file "
                                    f"holds {self._file.frames / rate:.1f} s (cut short?); transcribed what it holds")
                self.n_samples = math.ceil(self._file.frames * SAMPLE_RATE / self._file.samplerate)
                return
            except InputFileError:
                raise
            except Exception:  # not a format soundfile reads: try range decoding with FFmpeg
                self._file = None
            self._decoder, duration_s = _range_decoder(self.name)
            if self._decoder is not None:
                self.n_samples = math.ceil(duration_s * SAMPLE_RATE)
                return
        self._waveform = load_audio(source, sample_rate)  # raises InputFileError naming the file
        self.n_samples = len(self._waveform)

    def read(self, window: Window) -> np.ndarray:
        """The window's samples, (N,) float32 at 16 kHz; an InputFileError naming the file where they cannot be
        decoded (a file corrupt after its header) or are not finite."""
        if self._waveform is not None:
            return self._waveform[window.start : window.end]
        try:
            audio = self._decode(window)
        except Exception as error:  # noqa: BLE001 - any decoder failing mid-file
            raise InputFileError("audio", self.name, f"cannot decode {window.start_s():.1f}-{window.end_s():.1f} s "
                                                     f"({error})") from error
        if not np.isfinite(audio).all():
            raise InputFileError("audio", self.name, "samples contain NaN or infinity")
        return audio

    def _decode(self, window: Window) -> np.ndarray:
        if self._decoder is not None:
            samples = self._decoder.get_samples_played_in_range(window.start / SAMPLE_RATE, window.end / SAMPLE_RATE)
            return samples.data[0].numpy()[: window.n_samples]  # (N,): mono, 16 kHz
        rate = self._file.samplerate
        self._file.seek(int(window.start * rate / SAMPLE_RATE))
        frames = self._file.read(int(round(window.n_samples * rate / SAMPLE_RATE)), dtype="float32", always_2d=True)
        audio = resample(frames.mean(axis=1), rate, SAMPLE_RATE)
        return audio[: window.n_samples]

    def __getitem__(self, span: slice) -> np.ndarray:
        """Samples [start, stop) at 16 kHz, read from the file (for the quiet cut points between windows)."""
        return self.read(Window(-1, span.start, span.stop))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _range_decoder(path: str):
    """(torchcodec AudioDecoder giving 16 kHz mono, duration in s), or (None, 0) when the file has no usable
    duration in its header or cannot be opened (the caller then decodes it whole, or reports it)."""
    try:
        from torchcodec.decoders import AudioDecoder

        decoder = AudioDecoder(path, sample_rate=SAMPLE_RATE, num_channels=1)
        duration_s = decoder.metadata.duration_seconds_from_header
    except Exception:  # noqa: BLE001 - torchcodec missing, or a file FFmpeg cannot open: load_audio reports it
        return None, 0.0
    return (decoder, float(duration_s)) if duration_s and duration_s > 0 else (None, 0.0)


@dataclass
class _Job:
    source_index: int
    window: Window


def backbone_scorer(model):
    """The model's own backbone as an n-best rescorer (tasks/lm_rescore.py): texts -> log-probabilities."""
    if model.config.backbone.kind != "causal":
        raise ValueError(f"rescoring needs a causal LM backbone; this model's is {model.config.backbone.kind!r}")
    return causal_lm_scorer(model.backbone, model.tokenizer)


def transcribe(
    model,
    sources: list[Any],
    decoder: str = "lm",
    batch_size: int = 8,
    window_s: float = WINDOW_S,
    overlap_s: float = OVERLAP_S,
    sample_rate: int | None = None,
    progress: bool = True,
    lexicon: Any = None,
    lm: str | None = None,
    rescore: bool = False,
    word_timestamps: bool = False,
) -> Iterator[Transcript]:
    """Transcripts of `sources` (paths or arrays at `sample_rate`), yielded in input order as each completes.

    `lexicon` (decoder='ctc' only): a word list (file, metadata.jsonl or strings) or a `LexiconDecoder`; the CTC
    head's output is then read by a beam search that emits only those words (tasks/ctc_lexicon.py). `lm`: a word
    n-gram file (ARPA or KenLM binary, e.g. `multimodal ngram`) that scores the words in that search. `rescore`:
    the model's backbone LM re-ranks that search's best transcripts (tasks/lm_rescore.py; slower, more accurate).
    `word_timestamps`: each segment lists its words with times, from the CTC head's forced alignment of the
    transcript (whichever decoder wrote it; needs a character CTC head, and with decoder "lm" the encoder runs
    twice).
    """
    if decoder not in ("lm", "ctc"):
        raise ValueError(f"decoder must be 'lm' or 'ctc', got {decoder!r}")
    if "audio" not in model.encoders:
        raise ValueError("this model has no audio encoder")
    if decoder == "ctc" and "ctc" not in model.heads:
        raise ValueError("this model has no CTC head: use decoder='lm'")
    if word_timestamps and ("ctc" not in model.heads or model.config.heads.ctc_units != "chars"):
        raise ValueError("word timestamps come from a character CTC head's alignment; this model has none")
    lexicon = as_lexicon_decoder(lexicon, decoder, lm, model.config.heads.ctc_units, model.config.heads.ctc_phone_accent,
                                 backbone_scorer(model) if rescore else None)
    model.eval()
    task = get_task("transcribe")
    processor = Processor(model)

    opened: dict[int, AudioSource] = {}
    plans: dict[int, list[Window]] = {}
    results: dict[int, Transcript] = {}
    jobs: list[_Job] = []
    for i, src in enumerate(sources):
        name = os.fspath(src) if isinstance(src, (str, os.PathLike)) else None
        try:
            opened[i] = AudioSource(src, sample_rate)
        except InputFileError as e:
            log.error("skipped: %s", e)
            results[i] = Transcript(file=name, error=str(e))
            continue
        # windows end at the quietest 100 ms near their nominal end, so a cut rarely splits a word
        plans[i] = plan_windows(opened[i].n_samples, SAMPLE_RATE, window_s, overlap_s, waveform=opened[i])
        results[i] = Transcript(file=name, duration_s=opened[i].n_samples / SAMPLE_RATE, warning=opened[i].warning)
        if opened[i].warning:
            log.warning("%s", opened[i].warning)
        jobs += [_Job(i, w) for w in plans[i]]

    texts: dict[int, dict[int, tuple[str, list]]] = {i: {} for i in plans}  # window index -> (text, word spans)
    next_out = 0
    bar = tqdm(total=len(jobs), desc="transcribing", unit="window", disable=not progress)
    for b in range(0, len(jobs), batch_size):
        batch_jobs = jobs[b : b + batch_size]
        audio = [opened[j.source_index].read(j.window) for j in batch_jobs]
        for j, decoded in zip(batch_jobs, zip(*_decode(model, processor, task, audio, decoder, lexicon, word_timestamps))):
            texts[j.source_index][j.window.index] = decoded
        bar.update(len(batch_jobs))
        while next_out < len(sources) and _done(results, plans, texts, next_out):
            yield _finish(results[next_out], plans.get(next_out), texts.get(next_out), opened.get(next_out), word_timestamps)
            next_out += 1
    bar.close()
    while next_out < len(sources):
        yield _finish(results[next_out], plans.get(next_out), texts.get(next_out), opened.get(next_out), word_timestamps)
        next_out += 1


def _done(results, plans, texts, i) -> bool:
    return results[i].error is not None or len(texts[i]) == len(plans[i])


def _finish(result: Transcript, windows, texts, source, word_timestamps: bool = False) -> Transcript:
    if source is not None:
        source.close()
    if result.error is None:
        result.segments = merge_windows(windows, [texts[w.index][0] for w in windows], SAMPLE_RATE,
                                        [texts[w.index][1] for w in windows] if word_timestamps else None)
        result.text = join_segments(result.segments)
    return result


@torch.no_grad()
def _decode(model, processor: Processor, task, audio: list[np.ndarray], decoder: str, lexicon=None,
            word_timestamps: bool = False) -> tuple[list[str], list[list]]:
    """One text per window (silent windows are '' without running the model) and, with `word_timestamps`, one
    (start_s, end_s) or None per word of each text, within its window."""
    from tasks.ctc import align_words

    out, spans = [""] * len(audio), [[] for _ in audio]
    speech = [i for i, a in enumerate(audio) if len(a) and float(np.sqrt(np.mean(a.astype(np.float64) ** 2))) > SILENCE_RMS]
    if not speech:
        return out, spans
    examples = [Example(task.prompt, audios=[audio[i]]) for i in speech]
    batch = {k: v.to(model.device) for k, v in processor(examples, padding_side="left").items()}
    if decoder == "ctc" or word_timestamps:
        logits, mask = model.ctc_logits(batch["audio_values"], batch["audio_attention_mask"])  # (N, T, V), (N, T)
    if decoder == "ctc":
        texts = model.ctc_decode(logits, mask, lexicon)
    else:
        longest_s = max(len(audio[i]) for i in speech) / SAMPLE_RATE
        bound = max(MIN_NEW_TOKENS, math.ceil(longest_s * MAX_TOKENS_PER_S))
        texts = model.generate(batch, GenerationConfig(max_new_tokens=min(bound, task.max_new_tokens * 4)))
    for n, (i, text) in enumerate(zip(speech, texts)):
        out[i] = text
        if word_timestamps:
            n_frames = int(mask[n].sum())
            frame_s = len(audio[i]) / SAMPLE_RATE / max(n_frames, 1)
            spans[i] = align_words(logits[n, :n_frames].float().log_softmax(-1), text.split(), frame_s)
    return out, spans


def write_transcript(result: Transcript, output_dir: str | Path, fmt: str) -> Path:
    """Write `result` as txt/json/srt/vtt next to the others in `output_dir` (atomically)."""
    from tasks.subtitles import write

    stem = Path(result.file).stem if result.file else "audio"
    return write(result.segments, Path(output_dir) / f"{stem}.{fmt}", fmt, file=result.file)
