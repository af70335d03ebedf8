"""Audio encoder: a wav2vec2-style network (wav2vec2 / HuBERT / WavLM from transformers) over 16 kHz waveforms.

`arch: speech2text` swaps the raw-waveform convolutional front end for 80-bin log-mel filterbanks (25 ms
windows every 10 ms) and one stride-2 convolution per `conv_dim` entry (one: 20 ms frames, like wav2vec2;
two: 40 ms) before the transformer: transformers' Speech2Text encoder, the log-mel alternative the speech
recipe measures against the waveform front end. 40 ms frames are too few for character CTC on fast speech
(~22 characters/s at 260 words/min), so the recipe uses one convolution.

`arch: whisper` is a pretrained Whisper encoder (`name`: a preset such as `whisper-base`, a hub name or a local
dir; see `encoders/whisper.py`): waveforms in, 50 frames per second out, windows of at most 30 s.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator, Literal

import numpy as np
import torch
from torch import nn

from .audio_io import SAMPLE_RATE
from .output import EncoderOutput

ARCHS = ("wav2vec2", "hubert", "wavlm", "speech2text", "whisper")
N_MELS = 80  # log-mel bins of the speech2text front end
MEL_WINDOW = 400  # samples per filterbank window (25 ms)
MEL_HOP = 160  # samples between filterbank windows (10 ms)


@dataclass
class AudioEncoderConfig:
    # speech2text = log-mel front end; whisper = a pretrained Whisper encoder
    arch: Literal["wav2vec2", "hubert", "wavlm", "speech2text", "whisper"] = "wav2vec2"
    # hub name or local dir of a pretrained checkpoint; "" = build from scratch with the sizes below.
    # whisper needs one: a preset (encoders.whisper.WHISPER_PRESETS), a hub name or a local dir; sizes are ignored
    name: str = ""
    hidden_size: int = 256
    num_layers: int = 6
    num_heads: int = 4
    intermediate_size: int = 1024
    conv_dim: list[int] = field(default_factory=lambda: [256] * 7)
    conv_kernel: list[int] = field(default_factory=lambda: [10, 3, 3, 3, 3, 2, 2])
    conv_stride: list[int] = field(default_factory=lambda: [5, 2, 2, 2, 2, 2, 2])  # total 320 = 20 ms frames
    # SpecAugment, in training mode only. Time: about `mask_time_prob` of the frames masked, in spans of up to
    # `mask_time_length` frames (wav2vec2: 20 ms encoder frames; speech2text: 10 ms filterbank frames).
    # Frequency: about `mask_feature_prob` of the channels (wav2vec2: hidden features; speech2text: mel bins).
    mask_time_prob: float = 0.05
    mask_time_length: int = 10
    mask_feature_prob: float = 0.0
    mask_feature_length: int = 10
    layerdrop: float = 0.0
    # A folder ("auto" = $MULTIMODAL_CACHE/features) where a frozen encoder's features are kept per clip while
    # training, so it runs once per clip rather than once per epoch (encoders/feature_cache.py); "" = off.
    feature_cache: str = ""


def _hf_config(config: AudioEncoderConfig):
    """transformers config for a from-scratch model; layer norms everywhere so attention masks are honoured."""
    from transformers import HubertConfig, Wav2Vec2Config, WavLMConfig

    if config.arch == "speech2text":
        from transformers import Speech2TextConfig

        return Speech2TextConfig(
            d_model=config.hidden_size,
            encoder_layers=config.num_layers,
            encoder_attention_heads=config.num_heads,
            encoder_ffn_dim=config.intermediate_size,
            conv_channels=config.conv_dim[0],
            num_conv_layers=len(config.conv_dim),  # each halves the 100 Hz filterbank rate: 1 -> 50 Hz, 2 -> 25 Hz
            conv_kernel_sizes=[5] * len(config.conv_dim),
            input_feat_per_channel=N_MELS,
            max_source_positions=6000,  # 4 minutes of 40 ms frames; the library feeds windows of ~20 s
            encoder_layerdrop=config.layerdrop,
            decoder_layers=1,  # unused: only the encoder is built
        )
    config_class = {"wav2vec2": Wav2Vec2Config, "hubert": HubertConfig, "wavlm": WavLMConfig}[config.arch]
    if not (len(config.conv_dim) == len(config.conv_kernel) == len(config.conv_stride)):
        raise ValueError("conv_dim, conv_kernel and conv_stride must have the same length")
    return config_class(
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        intermediate_size=config.intermediate_size,
        conv_dim=list(config.conv_dim),
        conv_kernel=list(config.conv_kernel),
        conv_stride=list(config.conv_stride),
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=True,
        mask_time_prob=config.mask_time_prob,
        mask_time_length=config.mask_time_length,
        mask_feature_prob=config.mask_feature_prob,
        mask_feature_length=config.mask_feature_length,
        layerdrop=config.layerdrop,
    )


def spec_augment(features: torch.Tensor, config: AudioEncoderConfig) -> torch.Tensor:
    """Log-mel ``(B, T, F)`` with SpecAugment's time and frequency masks, drawn independently per utterance.

    torchaudio's masks have widths uniform in [0, length), so ``share / (length / 2)`` masks per axis cover about
    ``share`` of it. Masked values become 0, the utterance mean after the extractor's normalisation.
    """
    from torchaudio.transforms import FrequencyMasking, TimeMasking

    specgram = features.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T): torchaudio's (..., freq, time)
    n_frames, n_bins = features.shape[1], features.shape[2]
    for share, length, n_positions, masking in (
        (config.mask_time_prob, config.mask_time_length, n_frames, TimeMasking),
        (config.mask_feature_prob, config.mask_feature_length, n_bins, FrequencyMasking),
    ):
        width = min(length, n_positions)
        if share <= 0 or width < 2:
            continue
        for _ in range(max(1, round(share * n_positions / (width / 2)))):
            specgram = masking(width, iid_masks=True)(specgram)
    return specgram.squeeze(1).transpose(1, 2)  # (B, T, F)


@contextlib.contextmanager
def numpy_seeded_from_torch() -> Iterator[None]:
    """Seed numpy's global RNG from torch's for the block, then put numpy's state back.

    transformers draws wav2vec2's SpecAugment masks and LayerDrop from numpy's global RNG, which a resumed
    training run does not restore; torch's RNG it does (multimodal/train.py), so drawn from it they repeat exactly.
    """
    state = np.random.get_state()
    np.random.seed(int(torch.randint(0, 2**32 - 1, ())))
    try:
        yield
    finally:
        np.random.set_state(state)


class AudioEncoder(nn.Module):
    """Waveforms ``(B, N)`` at 16 kHz -> frames ``(B, T, D)`` with a mask of the real frames."""

    def __init__(self, config: AudioEncoderConfig):
        super().__init__()
        if config.arch not in ARCHS:
            raise ValueError(f"unknown audio arch {config.arch!r}: use one of {ARCHS}")
        for key in ("mask_time_prob", "mask_feature_prob"):
            if not 0.0 <= getattr(config, key) < 1.0:
                raise ValueError(f"encoders.audio.{key} must be in [0, 1), got {getattr(config, key)}")
        for key in ("mask_time_length", "mask_feature_length"):
            if getattr(config, key) < 1:
                raise ValueError(f"encoders.audio.{key} must be >= 1, got {getattr(config, key)}")
        self.config = config
        self.is_whisper = config.arch == "whisper"
        if self.is_whisper:  # waveforms in; log-mel, padding and positions handled inside; no SpecAugment
            from .whisper import WHISPER_PRESETS, WhisperAudioEncoder

            if not config.name:
                raise ValueError(
                    f"encoders.audio.arch whisper needs encoders.audio.name: a preset ({', '.join(WHISPER_PRESETS)}), "
                    "a hub name or a local dir"
                )
            self.model = WhisperAudioEncoder(config.name)
        elif config.name:  # hub names and local dirs take the same path
            from transformers import AutoModel

            if config.arch == "speech2text":
                self.model = AutoModel.from_pretrained(config.name).get_encoder()
            else:
                self.model = AutoModel.from_pretrained(
                    config.name,
                    mask_time_prob=config.mask_time_prob,
                    mask_time_length=config.mask_time_length,
                    mask_feature_prob=config.mask_feature_prob,
                    mask_feature_length=config.mask_feature_length,
                    layerdrop=config.layerdrop,
                )
        elif config.arch == "speech2text":
            from transformers.models.speech_to_text.modeling_speech_to_text import Speech2TextEncoder

            self.model = Speech2TextEncoder(_hf_config(config))
        else:
            from transformers import HubertModel, Wav2Vec2Model, WavLMModel

            model_class = {"wav2vec2": Wav2Vec2Model, "hubert": HubertModel, "wavlm": WavLMModel}[config.arch]
            self.model = model_class(_hf_config(config))
        self.is_mel = config.arch == "speech2text"
        if self.is_whisper:
            self.out_dim: int = self.model.out_dim
        else:
            self.out_dim = int(self.model.config.d_model if self.is_mel else self.model.config.hidden_size)
        self._feature_extractor = None  # built lazily by preprocess
        self._cache = None  # the FeatureCache, made at its first use (its namespace hashes the final weights)

    def output_lengths(self, n_samples: torch.Tensor) -> torch.Tensor:
        """Number of frames the encoder makes from ``n_samples`` samples (the model's own formula)."""
        n_samples = torch.as_tensor(n_samples)
        if self.is_whisper:
            from .whisper import output_lengths

            return output_lengths(n_samples).long()
        if self.is_mel:  # filterbank frames first (kaldi-style, no padding at the edges)
            n_samples = ((n_samples - MEL_WINDOW) // MEL_HOP + 1).clamp(min=0)
        return self.model._get_feat_extract_output_lengths(n_samples).long()

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> EncoderOutput:
        # input_values: (B, N) float at 16 kHz, or (B, T_mel, 80) log-mel for speech2text;
        # attention_mask: (B, N) or (B, T_mel), 1 = real sample / frame
        if attention_mask is None:
            attention_mask = torch.ones(input_values.shape[:2], dtype=torch.long, device=input_values.device)
        attention_mask = attention_mask.long()
        if self.config.feature_cache and torch.is_grad_enabled() and not any(p.requires_grad for p in self.parameters()):
            return self._feature_cache().encode(self._encode, input_values, attention_mask,
                                                int(self.output_lengths(torch.tensor(attention_mask.shape[1]))))
        return self._encode(input_values, attention_mask)

    def _feature_cache(self):
        from .feature_cache import FeatureCache, cache_folder, weights_fingerprint

        if self._cache is None:
            namespace = weights_fingerprint(self.model, self.config.arch, self.config.name)
            self._cache = FeatureCache(cache_folder(self.config.feature_cache), namespace)
        return self._cache

    def _encode(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> EncoderOutput:
        if self.is_whisper:
            return self.model(input_values, attention_mask)
        if self.is_mel:
            if self.training:
                input_values = spec_augment(input_values, self.config)
            features = self.model(input_values, attention_mask=attention_mask).last_hidden_state  # (B, T, D)
            lengths = self.model._get_feat_extract_output_lengths(attention_mask.sum(-1))  # (B,)
            mask = torch.arange(features.shape[1], device=features.device) < lengths.unsqueeze(1)  # (B, T)
            return EncoderOutput(features=features, mask=mask, grid=None)
        kwargs = {}
        n_frames = int(self.output_lengths(torch.tensor(input_values.shape[1])))
        if self.training and n_frames <= self.model.config.mask_time_length:
            # too short for one SpecAugment span (transformers would raise): no time masking for this batch
            kwargs["mask_time_indices"] = torch.zeros(
                input_values.shape[0], n_frames, dtype=torch.bool, device=input_values.device
            )
        hf = self.model.config
        draws = self.training and (hf.mask_time_prob > 0 or hf.mask_feature_prob > 0 or hf.layerdrop > 0)
        with numpy_seeded_from_torch() if draws else contextlib.nullcontext():
            features = self.model(input_values, attention_mask=attention_mask, **kwargs).last_hidden_state  # (B, T, D)
        mask = self.model._get_feature_vector_attention_mask(features.shape[1], attention_mask).bool()  # (B, T)
        return EncoderOutput(features=features, mask=mask, grid=None)

    def preprocess(self, waveforms: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mono 16 kHz waveforms -> (input_values (B, N) float32, attention_mask (B, N) long).

        Each utterance is normalised to zero mean and unit variance over its real samples, then right-padded
        with zeros. Whisper takes its waveforms as they are, padded to whole 20 ms frames.
        """
        if self.is_whisper:
            return self.model.preprocess(waveforms)
        if self._feature_extractor is None:
            self._feature_extractor = self._build_feature_extractor()
        batch = self._feature_extractor(
            [np.asarray(waveform, dtype=np.float32) for waveform in waveforms],
            sampling_rate=SAMPLE_RATE,
            padding=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        input_values = batch["input_features" if self.is_mel else "input_values"].float()  # (B, N) | (B, T_mel, 80)
        attention_mask = batch["attention_mask"].long()  # (B, N)
        return input_values, attention_mask

    def _build_feature_extractor(self):
        from transformers import AutoFeatureExtractor, Speech2TextFeatureExtractor, Wav2Vec2FeatureExtractor

        if self.config.name:
            try:
                return AutoFeatureExtractor.from_pretrained(self.config.name)
            except (OSError, ValueError):  # a model saved without its feature extractor
                pass
        if self.is_mel:  # utterance mean/variance normalised 80-bin log-mel filterbanks
            return Speech2TextFeatureExtractor(feature_size=N_MELS, num_mel_bins=N_MELS, sampling_rate=SAMPLE_RATE)
        return Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True, return_attention_mask=True
        )
