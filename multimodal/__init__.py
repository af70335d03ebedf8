"""multimodal: text, images and audio through one architecture.

    import multimodal as mm
    model = mm.build("configs/tiny.yaml")      # encoders -> adapters -> pretrained LM
    model.save("runs/tiny")
    model = mm.load("runs/tiny")               # a checkpoint or run dir, or a shipped model's name
    model = mm.load("sentiment-en")            # `multimodal models` lists the shipped ones
"""

from multimodal.build import build
from multimodal.checkpoint import CheckpointError
from multimodal.resolve import load
from multimodal.config import Config, ConfigError, load_config
from multimodal.generation import GenerationConfig
from multimodal.model import MultimodalModel, PlaceholderMismatchError
from multimodal.processor import Example, Processor

__all__ = [
    "build",
    "load",
    "load_config",
    "Config",
    "ConfigError",
    "CheckpointError",
    "GenerationConfig",
    "MultimodalModel",
    "PlaceholderMismatchError",
    "Example",
    "Processor",
]
__version__ = "0.1.0"
