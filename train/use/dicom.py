"""DICOM files to 8-bit grey images as a radiologist's viewer shows them (needs the ``dicom`` extra: pydicom).

Modality LUT first (rescale slope / intercept), then the VOI LUT or the window
(centre / width) when the file has one, mapped over that output range to
0..255; without one, the range of the stored bits (12-bit data in a 16-bit
container spans 0..4095, not 0..65535). MONOCHROME1 (white is low) is inverted.
Colour files become grey by luma, as the ingest does.
"""
from pathlib import Path

import numpy as np

from shards.images import BadImage, load_grey

DICOM_SUFFIXES = (".dcm", ".dicom")


def is_dicom(path: Path) -> bool:
    """A .dcm / .dicom name, or the DICM magic at byte 128 (DICOM files often have no suffix)."""
    if Path(path).suffix.lower() in DICOM_SUFFIXES:
        return True
    with open(path, "rb") as f:
        f.seek(128)
        return f.read(4) == b"DICM"


def _pydicom():
    try:
        import pydicom
        import pydicom.pixels
    except ImportError:
        raise BadImage("a DICOM file, and pydicom is not installed: pip install 'cxr-lt[dicom]'") from None
    return pydicom


def display_range(ds, voi: bool) -> tuple[float, float]:
    """The (low, high) values that become black and white before any MONOCHROME1 inversion."""
    processing = _pydicom().pixels.processing
    if voi and ds.get("VOILUTSequence"):
        return 0.0, float(2 ** ds.VOILUTSequence[0].LUTDescriptor[2] - 1)
    if voi:  # a window maps everything below / above it to the ends of its output range
        ends = processing.apply_voi_lut(processing.apply_modality_lut(np.array([-1e30, 1e30]), ds), ds)
        return float(ends[0]), float(ends[1])
    bits = int(ds.BitsStored)
    raw = (0, 2 ** bits - 1) if int(ds.PixelRepresentation) == 0 else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    lo, hi = processing.apply_modality_lut(np.array(raw, dtype=np.float64), ds).astype(np.float64)
    return float(min(lo, hi)), float(max(lo, hi))


def grey8(ds) -> np.ndarray:
    """A monochrome dataset's pixels -> uint8 (H, W)."""
    processing = _pydicom().pixels.processing
    values = processing.apply_modality_lut(ds.pixel_array, ds)  # integers stay integers: a LUT indexes by them
    voi = bool(ds.get("VOILUTSequence")) or ("WindowCenter" in ds and "WindowWidth" in ds)
    if voi:
        values = processing.apply_voi_lut(values, ds)
    values = values.astype(np.float64)
    lo, hi = display_range(ds, voi)
    out = np.clip(np.rint((values - lo) * (255.0 / max(hi - lo, 1e-12))), 0, 255).astype(np.uint8)
    return 255 - out if ds.PhotometricInterpretation == "MONOCHROME1" else out


def load_dicom_grey(path: Path) -> np.ndarray:
    """A DICOM file -> uint8 (H, W); BadImage saying why it cannot be used."""
    pydicom = _pydicom()
    try:
        ds = pydicom.dcmread(path)
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise BadImage(f"a multi-frame DICOM ({ds.NumberOfFrames} frames); give one image per file")
        if ds.PhotometricInterpretation in ("MONOCHROME1", "MONOCHROME2"):
            return grey8(ds)
        return load_grey(ds.pixel_array)
    except BadImage:
        raise
    except Exception as e:  # pydicom raises many types for bad or unsupported files; all mean "cannot use it"
        raise BadImage(f"cannot decode DICOM: {type(e).__name__}: {e}") from e
