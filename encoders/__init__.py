"""Modality encoders and their input handling: the leaf package (imports neither `multimodal` nor `tasks`).

Every encoder maps a batch to an `EncoderOutput`: features (B, T, D), a mask (B, T) and, for images, the
(H, W) grid of the tokens.
"""

from .audio import AudioEncoder, AudioEncoderConfig
from .audio_io import SAMPLE_RATE, load_audio
from .errors import InputFileError
from .image_io import load_image
from .output import EncoderOutput
from .vision import VisionEncoder, VisionEncoderConfig

__all__ = [
    "SAMPLE_RATE",
    "EncoderOutput",
    "VisionEncoderConfig",
    "VisionEncoder",
    "AudioEncoderConfig",
    "AudioEncoder",
    "load_image",
    "load_audio",
    "InputFileError",
]
