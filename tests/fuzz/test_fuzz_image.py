"""Fuzzing the image readers: `load_image` (what `multimodal caption`, `mm.load(...).caption` and training decode
with) and `probe_image` (the header check the data layer runs on every row).

Property: an upright RGB image whose sides are 1..MAX_SIDE, or an `InputFileError` naming the file; within the
time and memory bounds of tests/fuzz/properties.py (tracemalloc does not see Pillow's pixel buffers: the bomb is
measured as the process's peak RSS).
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import zlib

from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from encoders import InputFileError, load_image
from encoders.image_io import MAX_PIXELS, MAX_SIDE, probe_image

from .properties import assert_clear_error, mutated_file, run_bounded, write

SUFFIXES = (".png", ".jpg", ".gif", ".bmp", ".tif", ".webp", ".ico", ".bin")


def _encoded(format: str, mode: str = "RGB", size: tuple[int, int] = (12, 9), **options) -> bytes:
    image = Image.new(mode, size)
    image.putdata([(i * 37) % 256 if len(mode) == 1 or mode == "P" else tuple((i * k) % 256 for k in (37, 11, 5, 3)[
        : len(mode)]) for i in range(size[0] * size[1])])
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


SEEDS = {  # small valid files, mutated below
    ".png": _encoded("PNG"),
    ".jpg": _encoded("JPEG", quality=80),
    ".gif": _encoded("GIF", "P"),
    ".bmp": _encoded("BMP"),
    ".tif": _encoded("TIFF", "RGBA"),
    ".webp": _encoded("WEBP"),
    ".ico": _encoded("ICO", "RGBA", (16, 16)),
}


def png(width: int, height: int, bit_depth: int = 8, colour_type: int = 2, interlace: int = 0, pixels: bytes = b"",
        idat: bytes | None = None) -> bytes:
    """A PNG whose header says whatever the caller says; its data is `pixels` deflated, or `idat` as it is."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, interlace)
    idat = zlib.compress(pixels) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def check_image(path) -> None:
    outcome = run_bounded(load_image, path)
    if outcome.error is not None:
        assert_clear_error(outcome.error, InputFileError, path)
    else:
        image = outcome.result
        assert image.mode == "RGB" and 1 <= min(image.size) and max(image.size) <= MAX_SIDE
    probed = run_bounded(probe_image, path)
    if probed.error is not None:
        assert_clear_error(probed.error, InputFileError, path)


@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(scratch, data, suffix):
    check_image(write(scratch, data, suffix))


SIDES = st.one_of(st.sampled_from([0, 1, 7, 4097, 50_000, 2**31 - 1, 2**32 - 1]), st.integers(0, 2**32 - 1))


@given(width=SIDES, height=SIDES, bit_depth=st.sampled_from([0, 1, 2, 4, 8, 16, 3, 255]),
       colour_type=st.sampled_from([0, 2, 3, 4, 6, 1, 7]), interlace=st.sampled_from([0, 1, 2]),
       pixels=st.binary(max_size=2048))
@example(width=50_000, height=50_000, bit_depth=8, colour_type=2, interlace=0, pixels=b"")
def test_png_header_fields(scratch, width, height, bit_depth, colour_type, interlace, pixels):
    check_image(write(scratch, png(width, height, bit_depth, colour_type, interlace, pixels), ".png"))


@given(mutated_file(SEEDS, head=128))
def test_mutated_files(scratch, file):
    data, suffix = file
    check_image(write(scratch, data, suffix))


# ---------------------------------------------------------------------------------------------------------
# The bombs, and what the fuzzers found, as plain regression tests


def _peak_rss_growth_mb(path) -> tuple[str, int]:
    """(what load_image said, how far a fresh process's peak RSS grew while it read `path`, in MB)."""
    script = textwrap.dedent(f"""
        import resource
        from encoders import InputFileError, load_image
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            said = "read %s" % (load_image({str(path)!r}).size,)
        except InputFileError as error:
            said = str(error)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
        print(said)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    grown, said = out.stdout.split("\n", 1)
    return said.strip(), int(grown)


def test_a_png_that_declares_fifty_thousand_pixels_square_is_refused_without_decoding(tmp_path):
    """The image bomb: a 57-byte PNG declaring 50,000 x 50,000 pixels (7.5 GB as RGB)."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png(50_000, 50_000))
    said, grown_mb = _peak_rss_growth_mb(path)
    assert str(path) in said and "declares too many pixels (Image size (2500000000 pixels)" in said, said
    assert grown_mb < 200, grown_mb  # Pillow's own limit (2 x 89 M pixels) refuses it when it reads the header


def test_pixels_under_pillows_error_but_over_our_limit_are_refused(tmp_path):
    """Before: 12,000 x 12,000 (144 M pixels) only made Pillow warn, and a 140 kB grey PNG of zeros was decoded
    (a fresh process's peak RSS grew by 647 MB); now our own limit refuses it from the header, naming the file."""
    side = 12_000
    assert side * side > MAX_PIXELS and side * side < 2 * Image.MAX_IMAGE_PIXELS  # Pillow errors only at 2x its own
    deflate, row = zlib.compressobj(9), bytes(1 + side)  # grey rows of zeros, each after its filter byte
    idat = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()
    path = tmp_path / "big.png"
    path.write_bytes(png(side, side, colour_type=0, idat=idat))
    said, grown_mb = _peak_rss_growth_mb(path)
    assert str(path) in said and f"{side} x {side} pixels" in said and grown_mb < 200, (said, grown_mb)


def test_a_chunk_length_of_200_mb_in_a_tiny_png_allocates_nothing_for_it(tmp_path):
    """Before: a 150-byte PNG whose IDAT length says 218 MB made Pillow's `fp.read(length)` allocate 208 MB when
    loading (load_image) and verifying (the data layer's probe); now Pillow reads a memory map of the file."""
    data = bytearray(png(12, 9, pixels=bytes(9 * (1 + 3 * 12))))
    at = data.index(b"IDAT") - 4  # the chunk's length comes before its type
    data[at : at + 4] = struct.pack(">I", 0x0D000000)
    path = tmp_path / "long_idat.png"
    path.write_bytes(bytes(data))
    for read in (load_image, probe_image):  # each fails (an AssertionError) when it allocates 200 MB or more
        error = run_bounded(read, path).error
        if error is not None:
            assert_clear_error(error, InputFileError, path)
