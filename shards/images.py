"""Source images to what a shard holds: decode, convert to 8-bit grey, resize with area interpolation, encode.

``load_grey`` and ``resize_area`` are the one way a source image becomes what a
shard holds: ``ingest build-shards`` packs with them and ``train predict``
applies the same two to new images, so both import them from here.

16-bit images become 8-bit by one of two ``WINDOWS``, recorded in the shards' manifest (``image.window16``)
and so in a run's config.json, which ``train predict`` repeats: ``sbit`` (the default) scales by the bits
the data uses (``_depth``), ``percentile`` maps the image's 0.5th-99.5th percentiles to 0-255 (what the CXR-LT
2026 entries did with PadChest). Measured on synthetic PadChest-like 16-bit images (12 bits of anatomy, no
sBIT chunk, a burned-in marker at 65535; ``tests/shards/test_images.py``), sbit leaves the anatomy a handful
of grey levels, because one bright pixel sets the depth to 16 bits, while the percentile window spreads it
over the whole 8-bit range: the percentile window is the default of ``--dataset cxr-lt-2026``.
"""
import io
import re
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

# A NIH image is 1 megapixel, a MIMIC JPG about 7.5. A source above the limit is refused before its
# pixels are decoded: a 235 KB PNG can declare 11,000 x 11,000 16-bit pixels.
MAX_PIXELS = 50_000_000
RAISE_LIMIT = " (build-shards: raise it with --max-pixels if the image is genuine)"
IMAGE_FORMATS = ("PNG", "JPEG", "TIFF", "BMP")  # what Image.open may decode: never EPS and its Ghostscript
ROWS_PER_BLOCK = 256  # 16-bit sources are scaled this many rows at a time: no full-size wide copy
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PERCENTILES = (0.5, 99.5)  # the percentile window's ends
WINDOWS = ("sbit", "percentile")


class BadImage(Exception):
    """An image that cannot be used; the message says why."""


def png_significant_bits(path: Path) -> int | None:
    """The grey channel's significant bits from a PNG's sBIT chunk (it precedes IDAT); None without one."""
    with open(path, "rb") as f:
        if f.read(8) != PNG_SIGNATURE:
            return None
        while len(head := f.read(8)) == 8:
            length, kind = struct.unpack(">I4s", head)
            if kind in (b"IDAT", b"IEND"):
                return None
            data = f.read(length)
            f.seek(4, io.SEEK_CUR)  # CRC
            if kind == b"sBIT":
                return data[0] if data and 1 <= data[0] <= 16 else None
    return None


def _depth(hi: int, sbit: int | None) -> int:
    """Bits the 16-bit data really uses: sBIT when the values fit it (else they were scaled up to
    16 bits as the PNG spec describes), otherwise the smallest depth >= 8 that holds the maximum."""
    if sbit:
        return sbit if hi < (1 << sbit) else 16
    return max(8, int(hi).bit_length())


def deep_to_grey(img: Image.Image, sbit: int | None = None) -> np.ndarray:
    """A 16-bit (mode I;16* or I) image -> uint8, value * 255 / (2**depth - 1), in integer blocks of rows."""
    lo, hi = img.getextrema()
    if lo < 0 or hi > 0xFFFF:
        raise BadImage(f"mode {img.mode} values {lo}..{hi}: only 0..65535 (16-bit) has a defined 8-bit range")
    top = (1 << _depth(hi, sbit)) - 1
    w, h = img.size
    out = np.empty((h, w), np.uint8)
    for y in range(0, h, ROWS_PER_BLOCK):
        block = np.asarray(img.crop((0, y, w, min(h, y + ROWS_PER_BLOCK))), dtype=np.uint32)
        out[y:y + ROWS_PER_BLOCK] = np.minimum((block * 255 + top // 2) // top, 255)
    return out


def percentile_to_grey(img: Image.Image) -> np.ndarray:
    """A 16-bit image -> uint8: its ``PERCENTILES`` mapped to 0 and 255, linearly, clipped (a flat image: sbit)."""
    a = np.asarray(img)
    if a.min() < 0 or a.max() > 0xFFFF:
        raise BadImage(f"mode {img.mode} values {a.min()}..{a.max()}: only 0..65535 (16-bit) has a defined 8-bit "
                       f"range")
    lo, hi = np.percentile(a, PERCENTILES)
    if hi <= lo:
        return deep_to_grey(img)
    return np.clip((a - lo) * (255 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)


def _to_grey(img: Image.Image, sbit: int | None = None, window: str = "sbit") -> np.ndarray:
    """uint8 (H, W): 8-bit grey as is, 16-bit by ``window``, colour by ITU-R 601 luma, alpha dropped."""
    if img.mode == "L":
        return np.array(img)
    if img.mode.startswith("I"):  # "I;16", "I;16B", "I" (16-bit PNG as Pillow opens it)
        return percentile_to_grey(img) if window == "percentile" else deep_to_grey(img, sbit)
    if img.mode == "F":
        raise BadImage("floating-point image (mode F) has no defined 8-bit range")
    return np.array(img.convert("L"))


def _load_file(path: Path, max_pixels: int, window: str) -> np.ndarray:
    # PIL warns above Image.MAX_IMAGE_PIXELS and refuses above twice that; our limit decides, so PIL's
    # is raised to ours when ours is higher, and its warning (ours refuses first) is silenced.
    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, max_pixels)
    try:
        if not path.is_file():  # a FIFO would block the open below forever
            raise BadImage("not a plain file (a FIFO, device or folder)")
        if path.stat().st_size == 0:
            raise BadImage("empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path, formats=IMAGE_FORMATS)  # an EPS named .png must never reach Ghostscript
        with img:
            if img.size[0] * img.size[1] > max_pixels:  # only the header is read so far
                raise BadImage(f"{img.size[0]} x {img.size[1]} = {img.size[0] * img.size[1] / 1e6:.1f} megapixels, "
                               f"above the limit of {max_pixels / 1e6:g} megapixels{RAISE_LIMIT}")
            img.load()
            return _to_grey(img, png_significant_bits(path) if img.format == "PNG" else None, window)
    except Image.DecompressionBombError as e:  # so large that PIL refused to open it
        size = re.search(r"\((\d+) pixels\)", str(e))  # PIL: "Image size (N pixels) exceeds limit of ..."
        said = f"{int(size[1]) / 1e6:.1f}" if size else f"more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f}"
        raise BadImage(f"{said} megapixels, above the limit of {max_pixels / 1e6:g} megapixels{RAISE_LIMIT}") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImage(f"cannot decode: {e}") from e


def load_grey(source, max_pixels: int = MAX_PIXELS, window: str = "sbit") -> np.ndarray:
    """A source image -> uint8 (H, W) grey. ``source``: a file path (decoded fully, so truncation shows;
    refused above ``max_pixels`` before decoding), a PIL image or an array (uint8 / uint16, grey or RGB).
    16-bit data is scaled by ``window`` (``WINDOWS``, see the module's docstring). Raises BadImage saying why."""
    if window not in WINDOWS:
        raise ValueError(f"unknown 16-bit window {window!r}; one of {', '.join(WINDOWS)}")
    if isinstance(source, (str, Path)):
        return _load_file(Path(source), max_pixels, window)
    return _to_grey(source if isinstance(source, Image.Image) else _from_array(np.asarray(source)), window=window)


def _from_array(a: np.ndarray) -> Image.Image:
    if a.ndim not in (2, 3) or 0 in a.shape[:2] or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise BadImage(f"an array of shape {a.shape} is not an image (H x W grey, or H x W x 3 / 4 colour)")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2 and a.dtype.kind in "iu" and a.dtype.itemsize > 1:  # any wide integer type holding 16-bit data
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo < 0 or hi > 0xFFFF:
            raise BadImage(f"{a.dtype} values {lo}..{hi}: only 0..65535 (16-bit) has a defined 8-bit range")
        a = a.astype(np.uint16, copy=False)
    try:
        return Image.fromarray(a)
    except TypeError as e:  # PIL has no mode for this dtype and shape
        raise BadImage(f"an array of {a.dtype} with shape {a.shape} is not an image") from e


def resize_area(img: np.ndarray, size: int) -> np.ndarray:
    """size x size by area interpolation (each output pixel averages the input pixels it covers), the paper's."""
    if img.shape == (size, size):
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BOX))


def encode(img: np.ndarray, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        Image.fromarray(img).save(buf, "JPEG", quality=quality)
    elif fmt == "png":
        Image.fromarray(img).save(buf, "PNG", compress_level=6)
    else:
        raise ValueError(f"unknown format {fmt!r}; jpeg or png")
    return buf.getvalue()


def convert(path: Path, size: int, fmt: str, quality: int, max_pixels: int = MAX_PIXELS, window: str = "sbit") -> bytes:
    """One source image -> the encoded, resized grey image stored in a shard."""
    return encode(resize_area(load_grey(path, max_pixels, window), size), fmt, quality)
