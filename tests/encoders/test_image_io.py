"""load_image: every PIL mode to RGB, EXIF orientation, downscaling, arrays, and bad files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from encoders import InputFileError, load_image

WHITE = (255, 255, 255)
RED = (255, 0, 0)


def pixel(image: Image.Image, xy: tuple[int, int] = (0, 0)) -> tuple[int, int, int]:
    assert image.mode == "RGB"
    return image.getpixel(xy)


def test_rgba_composites_on_white(tmp_path):
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    image.putpixel((1, 1), (255, 0, 0, 255))
    image.putpixel((2, 2), (0, 0, 0, 128))  # half-transparent black -> mid gray
    path = tmp_path / "rgba.png"
    image.save(path)
    loaded = load_image(path)
    assert pixel(loaded) == WHITE and pixel(loaded, (1, 1)) == RED
    assert all(120 <= channel <= 135 for channel in pixel(loaded, (2, 2)))


def test_la_composites_on_white(tmp_path):
    image = Image.new("LA", (4, 4), (0, 0))  # transparent black
    image.putpixel((3, 3), (0, 255))  # opaque black
    path = tmp_path / "la.png"
    image.save(path)
    loaded = load_image(str(path))
    assert pixel(loaded) == WHITE and pixel(loaded, (3, 3)) == (0, 0, 0)


def test_palette_with_transparency_composites_on_white(tmp_path):
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)  # index 0 black, 1 red
    image.putpixel((1, 0), 1)
    path = tmp_path / "palette.png"
    image.save(path, transparency=0)  # index 0 transparent
    loaded = load_image(path)
    assert pixel(loaded) == WHITE and pixel(loaded, (1, 0)) == RED


def test_palette_without_transparency(tmp_path):
    image = Image.new("RGB", (8, 8), RED).convert("P")
    path = tmp_path / "palette.gif"
    image.save(path)
    assert pixel(load_image(path)) == RED


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)  # pure red in CMYK
    red, green, blue = pixel(load_image(path), (8, 8))
    assert red > 230 and green < 30 and blue < 30


@pytest.mark.parametrize("mode, value, expected", [("L", 100, 100), ("1", 1, 255), ("1", 0, 0)])
def test_grayscale_modes(tmp_path, mode, value, expected):
    path = tmp_path / f"gray_{mode}_{value}.png"
    Image.new(mode, (4, 4), value).save(path)
    assert pixel(load_image(path)) == (expected,) * 3


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(values).save(path)  # mode I;16
    with Image.open(path) as raw:
        assert raw.mode in ("I;16", "I")
    loaded = np.asarray(load_image(path))
    assert loaded.min() == 0 and loaded.max() == 255
    assert (loaded == 255).mean() < 0.01  # a ramp, not a white sheet
    assert abs(int(loaded[32, 0, 0]) - 128) <= 2  # the middle of the ramp is mid gray


def test_16_bit_big_endian_tiff(tmp_path):
    values = (np.arange(16 * 16).reshape(16, 16) * 256).astype(">u2")  # 0 .. 65280
    path = tmp_path / "gray16b.tiff"
    Image.frombytes("I;16B", (16, 16), values.tobytes()).save(path)
    with Image.open(path) as raw:
        assert raw.mode == "I;16B"
    loaded = np.asarray(load_image(path))
    assert loaded[0, 0, 0] == 0 and loaded[-1, -1, 0] >= 253 and abs(int(loaded[8, 0, 0]) - 128) <= 2


def test_32_bit_integer_tiff(tmp_path):
    values = (np.arange(16 * 16).reshape(16, 16) * 1000).astype(np.int32)  # 0 .. 255,000: past 16 bits
    path = tmp_path / "int32.tiff"
    Image.fromarray(values).save(path)
    with Image.open(path) as raw:
        assert raw.mode == "I"
    loaded = np.asarray(load_image(path))
    assert loaded.min() == 0 and loaded.max() == 255 and (loaded == 255).mean() < 0.01  # stretched, not clipped


@pytest.mark.parametrize("mode", ["La", "RGBa", "PA"])
def test_premultiplied_and_palette_alpha_composite_on_white(mode):
    base = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # transparent
    base.putpixel((1, 1), (255, 0, 0, 255))  # opaque red (grey in La)
    image = base.convert("LA").convert("La") if mode == "La" else base.convert(mode)
    loaded = load_image(image)
    assert pixel(loaded) == WHITE
    assert pixel(loaded, (1, 1)) == ((76, 76, 76) if mode == "La" else RED)


def test_float_image(tmp_path):
    values = np.linspace(0.0, 1.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    path = tmp_path / "float.tiff"
    Image.fromarray(values).save(path)  # mode F
    loaded = np.asarray(load_image(path))
    assert loaded.min() == 0 and loaded.max() == 255 and abs(int(loaded[16, 0, 0]) - 128) <= 2


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), RED)  # landscape as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif.tobytes())
    assert load_image(path).size == (20, 40)


def test_huge_image_is_downscaled_keeping_aspect(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (5000, 1000), RED).save(path)
    loaded = load_image(path)
    assert loaded.size == (4096, 819) or loaded.size == (4096, 820)
    assert load_image(Image.new("RGB", (300, 600)), max_side=100).size == (50, 100)
    assert load_image(Image.new("RGB", (30, 60)), max_side=100).size == (30, 60)  # never upscaled


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.full((4, 4, 3), 7, dtype=np.uint8), (7, 7, 7)),
        (np.full((4, 4), 0.5, dtype=np.float32), (128, 128, 128)),
        (np.full((4, 4, 1), 65535, dtype=np.uint16), WHITE),
        (np.zeros((4, 4, 4), dtype=np.uint8), WHITE),  # fully transparent
        (np.ones((4, 4), dtype=bool), WHITE),
    ],
)
def test_arrays(array, expected):
    assert pixel(load_image(array)) == expected


def test_bad_array_shape():
    with pytest.raises(InputFileError, match="<array>"):
        load_image(np.zeros((4, 4, 2), dtype=np.uint8))


def _corrupt(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes())


def _empty(path):
    path.write_bytes(b"")


def _text(path):
    path.write_text("not an image\n" * 10)


def _truncated(path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, format="PNG")
    path.write_bytes(path.read_bytes()[:200])


@pytest.mark.parametrize("make", [_corrupt, _empty, _text, _truncated])
def test_bad_files_raise_naming_the_file(tmp_path, make):
    path = tmp_path / f"bad{make.__name__}.png"
    make(path)
    with pytest.raises(InputFileError) as error:
        load_image(path)
    assert str(error.value).startswith(f"cannot read image file '{path}'")


def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(InputFileError, match="missing.jpg"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(InputFileError, match="int"):
        load_image(42)
