"""Synthetic chest X-ray pixels: anatomy-like structure, grain, and a learnable lesion per finding.

Each finding (every class but "No Finding") is a Gabor patch with its own
orientation and wavelength, placed at a random spot in a lung with a random
strength. Neighbouring classes differ in one parameter only, the ribs are
oriented gratings too, and a quarter of all images carry a distractor patch
with random parameters, so the classes are learnable but not trivially
separable; rare classes are harder simply because there are fewer of them.
Everything is in normalised coordinates, so any --image-size shows the same
picture.
"""
import numpy as np
from PIL import Image

ORIENTATIONS = np.deg2rad([0.0, 45.0, 90.0, 135.0])
WAVELENGTHS = [0.07, 0.10, 0.14, 0.19, 0.26]  # fraction of the image width
GRAIN = 0.03


def lesion_params(finding: int) -> tuple[float, float]:
    """(orientation, wavelength) of the finding-th lesion class."""
    return ORIENTATIONS[finding % 4], WAVELENGTHS[(finding // 4) % len(WAVELENGTHS)]


def _grid(n: int):
    c = (np.arange(n, dtype=np.float32) + 0.5) / n * 2 - 1
    return c[:, None], c[None, :]


def _smooth_field(rng, n: int, cells: int = 6) -> np.ndarray:
    low = Image.fromarray(rng.normal(0, 1, (cells, cells)).astype(np.float32), mode="F")
    return np.asarray(low.resize((n, n), Image.Resampling.BICUBIC))


def _inside(rx: np.ndarray, ry: np.ndarray, soft: float) -> np.ndarray:
    """1 inside the ellipse (rx, ry scaled coordinates), 0 outside, with a soft edge: a logistic without overflow."""
    return 0.5 * (1 - np.tanh((np.sqrt(rx ** 2 + ry ** 2) - 1) / (2 * soft)))


def anatomy(rng: np.random.Generator, n: int) -> np.ndarray:
    y, x = _grid(n)
    body = _inside(x / 0.92, y / 1.1, 0.04)
    img = 0.12 + 0.5 * body
    for side in (-1, 1):
        cx, cy = side * (0.42 + rng.uniform(-0.04, 0.04)), rng.uniform(-0.12, 0.0)
        rx, ry = 0.27 + rng.uniform(-0.03, 0.03), 0.55 + rng.uniform(-0.05, 0.05)
        lung = _inside((x - cx) / rx, (y - cy) / ry, 0.06)
        ribs = 0.5 + 0.5 * np.sin(2 * np.pi * (y * 4.5 + 0.6 * (x - cx) ** 2 * side + rng.uniform()))
        img = img - 0.3 * lung + 0.04 * lung * ribs
    img += 0.22 * np.exp(-((x / 0.11) ** 2)) * (y > -0.75)                     # spine, mediastinum
    img += 0.18 * np.exp(-(((x - 0.12) / 0.24) ** 2 + ((y - 0.28) / 0.2) ** 2))  # heart
    img += 0.04 * _smooth_field(rng, n)
    img += 0.035 * _smooth_field(rng, n, cells=max(n // 6, 8))  # fine texture that survives resizing
    return img


def add_gabor(img: np.ndarray, rng, theta: float, wavelength: float, amplitude: float) -> None:
    """Add a Gabor patch in place, inside one lung, computed only over its window."""
    n = img.shape[0]
    side = rng.choice([-1, 1])
    cx, cy = side * 0.42 + rng.uniform(-0.12, 0.12), rng.uniform(-0.35, 0.25)
    lam = wavelength * 2  # normalised coordinates span 2
    sigma = 1.1 * lam
    half = 3 * sigma
    lo = lambda c: int(np.clip((c - half + 1) / 2 * n, 0, n))
    hi = lambda c: int(np.clip((c + half + 1) / 2 * n, 0, n))
    r0, r1, c0, c1 = lo(cy), hi(cy), lo(cx), hi(cx)
    y, x = _grid(n)
    dy, dx = y[r0:r1] - cy, x[:, c0:c1] - cx
    along = dx * np.cos(theta) + dy * np.sin(theta)
    envelope = np.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2))
    img[r0:r1, c0:c1] += amplitude * envelope * np.cos(2 * np.pi * along / lam + rng.uniform(0, 2 * np.pi))


def render(labels: np.ndarray, no_finding: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 (n, n) image of a patient with the given multi-hot labels."""
    img = anatomy(rng, n)
    findings = [c for c in np.flatnonzero(labels) if c != no_finding]
    for c in findings:
        idx = c if c < no_finding else c - 1
        theta, lam = lesion_params(idx)
        add_gabor(img, rng, theta, lam, rng.uniform(0.07, 0.18))
    if rng.uniform() < 0.25:
        add_gabor(img, rng, rng.uniform(0, np.pi), rng.uniform(0.06, 0.3), rng.uniform(0.03, 0.08))
    img += rng.normal(0, GRAIN, img.shape).astype(np.float32)
    return np.clip(img * 255, 0, 255).astype(np.uint8)
