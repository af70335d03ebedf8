"""Reading images: any file, PIL image or array -> an upright 8-bit RGB PIL image."""

from __future__ import annotations

import mmap
import os
from contextlib import contextmanager
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputFileError, check_readable_file

MAX_SIDE = 4096  # longer sides above this are downscaled (keeping the aspect ratio)
# Pixels a file may declare (134 M: a 100-megapixel photo fits). Decoding takes ~3-4 bytes a pixel before the
# downscale, so a 50-byte PNG that declares 50,000 x 50,000 pixels is refused from its header, not decoded into 10 GB.
MAX_PIXELS = 1 << 27
BACKGROUND = (255, 255, 255)  # transparent pixels are composited on white
UINT8_MAX = 255
UINT16_MAX = 65535
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
IMAGE = "image"


def _rescale_to_uint8(values: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Integer pixel values -> uint8. ``bits=16`` scales the 16-bit range; otherwise the range is inferred from
    the values (8-bit, 16-bit, or stretched min..max), so 16-bit data is never clipped to white."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if bits == 16 or (bits is None and low >= 0.0 and UINT8_MAX < high <= UINT16_MAX):
        scaled = values / (UINT16_MAX / UINT8_MAX)
    elif low >= 0.0 and high <= UINT8_MAX:
        scaled = values  # already the 8-bit range
    else:
        scaled = (values - low) / max(high - low, 1e-12) * UINT8_MAX  # arbitrary range: stretch
    return np.clip(np.round(scaled), 0, UINT8_MAX).astype(np.uint8)


def _float_to_uint8(values: np.ndarray) -> np.ndarray:
    """Float pixel values -> uint8: [0, 1] is scaled by 255, [0, 255] kept, anything else stretched."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low >= 0.0 and high <= 1.0:
        return np.round(values * UINT8_MAX).astype(np.uint8)
    return _rescale_to_uint8(values)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB: alpha on white, 16-bit and float scaled to 8 bits, CMYK/palette/grayscale converted."""
    if image.mode in SIXTEEN_BIT_MODES:
        image = Image.fromarray(_rescale_to_uint8(np.asarray(image), bits=16))  # (H, W) uint8 -> mode L
    elif image.mode == "I":
        image = Image.fromarray(_rescale_to_uint8(np.asarray(image)))
    elif image.mode == "F":
        image = Image.fromarray(_float_to_uint8(np.asarray(image)))
    elif image.mode == "La":  # premultiplied alpha: Pillow converts it only to LA
        image = image.convert("LA")

    has_alpha = image.mode in ALPHA_MODES or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (UINT8_MAX,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _array_to_image(array: np.ndarray) -> Image.Image:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of uint8/uint16/bool/float -> PIL image."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise InputFileError(IMAGE, None, f"expected shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.size == 0:
        raise InputFileError(IMAGE, None, f"empty image of shape {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * UINT8_MAX
    elif array.dtype.kind == "f":
        array = _float_to_uint8(array)
    elif array.dtype.kind in "iu" and array.dtype != np.uint8:
        array = _rescale_to_uint8(array)
    elif array.dtype != np.uint8:
        raise InputFileError(IMAGE, None, f"unsupported pixel dtype {array.dtype}")
    return Image.fromarray(np.ascontiguousarray(array))  # uint8 (H, W) -> L, (H, W, 3) -> RGB, (H, W, 4) -> RGBA


def check_image_size(size: tuple[int, int], path: str) -> None:
    """Raise InputFileError naming `path` when a header declares more than MAX_PIXELS pixels."""
    width, height = size
    if width * height > MAX_PIXELS:
        raise InputFileError(IMAGE, path, f"declares {width} x {height} pixels, more than the {MAX_PIXELS:,} "
                                          "that are decoded (a decompression bomb, or an image to downscale first)")


@contextmanager
def _opened(path: str) -> Iterator[Image.Image]:
    """The image in a file, its header read and its size checked; any failure inside is an InputFileError."""
    check_readable_file(IMAGE, path)
    try:
        # Pillow reads a memory map of the file, where a read past the end returns what is there: from a file object
        # it would allocate the length a chunk declares (a 200-byte PNG whose IDAT says 200 MB).
        with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            with Image.open(data) as image:  # reads the header only
                check_image_size(image.size, path)
                yield image
    except InputFileError:
        raise
    except UnidentifiedImageError:
        raise InputFileError(IMAGE, path, "not an image file (unknown format)") from None
    except Image.DecompressionBombError as error:  # Pillow's own limit, met when opening the header
        raise InputFileError(IMAGE, path, f"declares too many pixels ({error})") from None
    except MemoryError:
        raise InputFileError(IMAGE, path, "too large to decode in the memory available") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise InputFileError(IMAGE, path, f"corrupt or unsupported image ({error})") from error


def _open_file(path: str) -> Image.Image:
    with _opened(path) as image:
        image.load()  # decode now, so corrupt or truncated data fails here
        return ImageOps.exif_transpose(image)


def probe_image(path: str | os.PathLike) -> None:
    """Check a file's header and structure without decoding its pixels; InputFileError naming it if they are bad."""
    with _opened(os.fspath(path)) as image:
        image.verify()


def load_image(source: str | os.PathLike | Image.Image | np.ndarray, max_side: int = MAX_SIDE) -> Image.Image:
    """Read a file, PIL image or ``(H, W[, C])`` array as an upright RGB image whose longer side is <= max_side.

    EXIF orientation is applied; transparency is composited on white; CMYK, palette, grayscale, 16-bit and float
    images are converted (16-bit scaled to 8 bits). Raises ``InputFileError`` naming the file (or ``<array>``).
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        image = _open_file(path)
    elif isinstance(source, Image.Image):
        path = None
        image = ImageOps.exif_transpose(source)
    elif isinstance(source, np.ndarray):
        path = None
        image = _array_to_image(source)
    else:
        raise InputFileError(IMAGE, None, f"expected a path, PIL image or numpy array, got {type(source).__name__}")

    if image.width == 0 or image.height == 0:
        raise InputFileError(IMAGE, path, f"empty image of size {image.size}")
    try:
        image = _to_rgb(image)
    except (OSError, ValueError) as error:
        raise InputFileError(IMAGE, path, f"cannot convert mode {image.mode} to RGB ({error})") from error
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # in place, keeps the aspect ratio
    return image
