"""The encoders package: its public names, and an import that stays light and self-contained."""

import subprocess
import sys

import encoders

PUBLIC = {
    "SAMPLE_RATE",
    "EncoderOutput",
    "VisionEncoderConfig",
    "VisionEncoder",
    "AudioEncoderConfig",
    "AudioEncoder",
    "load_image",
    "load_audio",
    "InputFileError",
}


def test_public_api():
    assert set(encoders.__all__) == PUBLIC
    assert encoders.SAMPLE_RATE == 16000
    assert issubclass(encoders.InputFileError, ValueError)


def test_import_loads_neither_our_other_packages_nor_heavy_libraries():
    code = (
        "import sys, encoders, encoders.vision, encoders.audio, encoders.image_io, encoders.audio_io, "
        "encoders.efficientnet_lite; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('multimodal', 'tasks')]; "
        "heavy = [m for m in ('timm', 'transformers', 'librosa', 'torchcodec') if m in sys.modules]; "
        "print(bad, heavy); sys.exit(1 if bad or heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_encoder_output_checks_its_shapes():
    import pytest
    import torch

    output = encoders.EncoderOutput(torch.zeros(2, 6, 4), torch.ones(2, 6, dtype=torch.bool), grid=(2, 3))
    assert output.lengths.tolist() == [6, 6]
    with pytest.raises(ValueError, match="grid"):
        encoders.EncoderOutput(torch.zeros(2, 6, 4), torch.ones(2, 6, dtype=torch.bool), grid=(2, 2))
    with pytest.raises(ValueError, match="mask"):
        encoders.EncoderOutput(torch.zeros(2, 6, 4), torch.ones(2, 5, dtype=torch.bool))


def test_input_file_error_pickles_with_its_message():
    import pickle

    error = encoders.InputFileError("audio", "x.wav", "bad header")
    assert str(error) == "cannot read audio file 'x.wav': bad header"
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    assert str(encoders.InputFileError("image", None, "bad shape")) == "cannot read image array '<array>': bad shape"
