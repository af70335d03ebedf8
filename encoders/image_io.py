"""Reading images: any file, PIL image or array -> an upright 8-bit RGB PIL image."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputFileError, check_readable_file

MAX_SIDE = 4096  # longer sides above this are downscaled (keeping the aspect ratio)
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


def _open_file(path: str) -> Image.Image:
    check_readable_file(IMAGE, path)
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so corrupt or truncated data fails here
            return ImageOps.exif_transpose(image)
    except UnidentifiedImageError:
        raise InputFileError(IMAGE, path, "not an image file (unknown format)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise InputFileError(IMAGE, path, f"corrupt or unsupported image ({error})") from error


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
