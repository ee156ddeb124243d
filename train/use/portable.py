"""The run's preprocessing for clients that import nothing of the project: the source of an export's preprocess.py.

``python -m train export`` writes ``preprocess.py`` beside the model: ``shards/images.py`` (decoding and grey
conversion, the area resize; it needs numpy and Pillow only) followed by this module below its marker line, and
the run's ``RECIPE``. Its ``preprocess(path)`` gives what ``train predict`` feeds the model for one image, to
float rounding: the same grey conversion and area resize to the shards' size, the JPEG round trip the shards
hold, the loader's antialiased bilinear resize to the run's image size (torchvision's integer arithmetic, redone
in numpy) and the normalisation. ``tests/train/use/test_portable.py`` holds it to those.
"""
import ast
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from shards import images
from shards.images import load_grey, resize_area

MARKER = "# ---- standalone from here: numpy and Pillow only ----"
PLACEHOLDER = "RECIPE: dict = {}  # an export's preprocess.py holds the run's own"


def _without_docstring(source: str) -> str:
    body = ast.parse(source).body
    return "\n".join(source.splitlines()[body[0].end_lineno:]) if ast.get_docstring(ast.parse(source)) else source


def script(recipe: dict, about: str) -> str:
    """The text of an export's preprocess.py: ``about`` (its docstring's first line), shards/images.py, this
    module below MARKER, with ``recipe`` as its RECIPE."""
    own = Path(__file__).read_text().split(f"\n{MARKER}\n", 1)[1]
    own = own.replace(PLACEHOLDER, f"RECIPE: dict = {recipe!r}")
    doc = (f'"""{about}\n\nStandalone (numpy and Pillow): `from preprocess import preprocess`, then preprocess(path) '
           f'is one image\'s model input, float32 (channels, size, size); `python preprocess.py IMAGE...` prints '
           f'its shape. Made by cxr-lt from its shards/images.py and train/use/portable.py.\n"""')
    return f"{doc}\n{_without_docstring(Path(images.__file__).read_text())}\n\n{own}"
# ---- standalone from here: numpy and Pillow only ----


def jpeg_round_trip(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode as JPEG at ``quality`` and decode, as the shards hold the image and the loader decodes it."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as decoded:
        return np.asarray(decoded.convert("L"))


def _bilinear_weights(n_in: int, n_out: int) -> tuple[np.ndarray, int]:
    """(n_out, n_in) integer weights of torchvision's antialiased bilinear resize of uint8, and their fixed-point
    bits: the float weights (a triangle filter widened by the scale when shrinking) scaled to fit int16."""
    scale = n_in / n_out
    support, inv = (scale, 1 / scale) if scale >= 1 else (1.0, 1.0)
    rows = []
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n_in)
        w = np.clip(1 - np.abs((np.arange(lo, hi) - center + 0.5) * inv), 0, None)
        rows.append((lo, w / w.sum()))
    top, bits = max(w.max() for _, w in rows), 0
    while bits < 22 and int(0.5 + top * (1 << (bits + 1))) < (1 << 15):
        bits += 1
    m = np.zeros((n_out, n_in), np.int64)
    for i, (lo, w) in enumerate(rows):
        m[i, lo:lo + len(w)] = (w * (1 << bits) + 0.5).astype(np.int64)  # the weights are >= 0
    return m, bits


def _resize_axis(img: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    if img.shape[axis] == n_out:
        return img
    m, bits = _bilinear_weights(img.shape[axis], n_out)
    x = (np.moveaxis(img.astype(np.int64), axis, -1) @ m.T + (1 << (bits - 1))) >> bits
    return np.moveaxis(np.clip(x, 0, 255).astype(np.uint8), -1, axis)


def resize_bilinear(img: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W) -> (size, size) as ``torchvision.transforms.v2.functional.resize(antialias=True)`` does it:
    columns first, then rows, each pass rounded to uint8."""
    return _resize_axis(_resize_axis(img, size, 1), size, 0)


def normalise_grey(img: np.ndarray, mean, std) -> np.ndarray:
    """uint8 (S, S) -> float32 (channels, S, S): (x / 255 - mean) / std per channel, in float32 as the loader."""
    std255 = np.asarray(std, np.float32) * np.float32(255)
    scale, shift = np.float32(1) / std255, -(np.asarray(mean, np.float32) * np.float32(255)) / std255
    return (img.astype(np.float32)[None] * scale[:, None, None] + shift[:, None, None]).astype(np.float32)


def preprocess(image, recipe: dict | None = None) -> np.ndarray:
    """A PNG / JPEG path (or a PIL image, or a uint8 / uint16 array) -> the model's float32 input for that
    image, shaped (channels, image_size, image_size); stack several for a batch. ``recipe``: this file's RECIPE."""
    r = recipe or RECIPE
    img = resize_area(load_grey(image, window=r.get("window16", "sbit")), r["shard_size"])
    if r["shard_format"] == "jpeg":
        img = jpeg_round_trip(img, r["shard_quality"])
    return normalise_grey(resize_bilinear(img, r["image_size"]), r["mean"], r["std"])


RECIPE: dict = {}  # an export's preprocess.py holds the run's own


def main(paths: list[str]) -> None:
    """python preprocess.py IMAGE...: each image's input shape and value range."""
    for path in paths:
        x = preprocess(path)
        print(f"{path}: {x.dtype} {tuple(x.shape)}, {x.min():.4f} .. {x.max():.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
