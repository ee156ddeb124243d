"""Decode, convert to 8-bit grayscale, resize with area interpolation, encode."""
import io
from pathlib import Path

import numpy as np
from PIL import Image

# A NIH image is 1024x1024; MIMIC JPGs are about 3000x2500. Anything far larger is suspect.
Image.MAX_IMAGE_PIXELS = 64_000_000


class BadImage(Exception):
    """An image that cannot be used; the message says why."""


def to_gray8(img: Image.Image) -> Image.Image:
    """8-bit grayscale: 16-bit scaled to 0..255 over its full range, colour by ITU-R 601 luma, alpha dropped."""
    if img.mode == "L":
        return img
    if img.mode.startswith("I"):  # "I;16", "I;16B", "I" (16-bit PNG as Pillow opens it)
        a = np.asarray(img).astype(np.float64)
        return Image.fromarray(np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8), mode="L")
    if img.mode == "F":
        raise BadImage("floating-point image (mode F) has no defined 8-bit range")
    return img.convert("L")


def resize_area(img: Image.Image, size: int) -> Image.Image:
    """Area interpolation (each output pixel averages the input pixels it covers), the paper's choice."""
    if img.size == (size, size):
        return img
    return img.resize((size, size), Image.Resampling.BOX)


def encode(img: Image.Image, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, "JPEG", quality=quality)
    elif fmt == "png":
        img.save(buf, "PNG", compress_level=6)
    else:
        raise ValueError(f"unknown format {fmt!r}; jpeg or png")
    return buf.getvalue()


def load_gray8(path: Path) -> Image.Image:
    """Decode a file fully (truncation shows here) and convert it to 8-bit grayscale."""
    try:
        if Path(path).stat().st_size == 0:
            raise BadImage("empty file (0 bytes)")
        with Image.open(path) as img:
            img.load()
            return to_gray8(img)
    except BadImage:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise BadImage(f"cannot decode: {e}") from e


def convert(path: Path, size: int, fmt: str, quality: int) -> bytes:
    """One source image -> the encoded, resized grayscale image stored in a shard."""
    return encode(resize_area(load_gray8(path), size), fmt, quality)
