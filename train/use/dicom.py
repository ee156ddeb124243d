"""DICOM files to 8-bit grey images as a radiologist's viewer shows them (needs the ``dicom`` extra: pydicom).

Modality LUT first (rescale slope / intercept), then the VOI LUT or the window
(centre / width) when the file has one, mapped over that output range to
0..255; without one, the range of the stored bits (12-bit data in a 16-bit
container spans 0..4095, not 0..65535). MONOCHROME1 (white is low) is inverted.
Colour files become grey by luma, as the ingest does; PALETTE COLOR through its palette first.
Only radiographs (modality CR, DX or DR) are taken unless ``any_modality``: a CT, MR or dose file would get
chest X-ray probabilities. The pixel count is checked from the header, before anything is decoded.
"""
import logging
from pathlib import Path

import numpy as np

from shards.images import MAX_PIXELS, BadImage, load_grey

DICOM_SUFFIXES = (".dcm", ".dicom")
RADIOGRAPHS = ("CR", "DX", "DR")
PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")


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
    # pydicom logs its own tracebacks of files it cannot read; each becomes one BadImage line here
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
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


def check_header(ds, any_modality: bool, max_pixels: int) -> None:
    """What makes a file unusable, from its header alone: BadImage saying which."""
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise BadImage(f"a DICOM without pixel data (SOP class {ds.get('SOPClassUID', 'unknown')}); give an image")
    modality = str(ds.get("Modality", "")) or "none"
    if not any_modality and modality not in RADIOGRAPHS:
        raise BadImage(f"modality {modality}, not a radiograph ({', '.join(RADIOGRAPHS)}); the model reads chest "
                       f"X-rays only (pass --any-modality to score it anyway)")
    photometric = str(ds.get("PhotometricInterpretation", "")) or "none"
    if photometric not in PHOTOMETRIC:
        raise BadImage(f"photometric interpretation {photometric}; one of {', '.join(PHOTOMETRIC)} is read")
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise BadImage(f"a multi-frame DICOM ({ds.NumberOfFrames} frames); give one image per file")
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows * cols == 0:
        raise BadImage(f"{cols} x {rows} pixels: an empty image")
    if rows * cols > max_pixels:
        raise BadImage(f"{cols} x {rows} = {rows * cols / 1e6:.1f} megapixels, above the limit of "
                       f"{max_pixels / 1e6:g} megapixels")


def load_dicom_grey(path: Path, any_modality: bool = False, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A DICOM file -> uint8 (H, W); BadImage saying why it cannot be used."""
    pydicom = _pydicom()
    try:
        ds = pydicom.dcmread(path)
        check_header(ds, any_modality, max_pixels)
        if ds.PhotometricInterpretation in ("MONOCHROME1", "MONOCHROME2"):
            return grey8(ds)
        if ds.PhotometricInterpretation == "PALETTE COLOR":  # the stored values index the palette
            rgb = pydicom.pixels.apply_color_lut(ds.pixel_array, ds)
            bits = int(ds.RedPaletteColorLookupTableDescriptor[2])  # 8 or 16 bits an entry
            return load_grey((rgb >> max(bits - 8, 0)).astype(np.uint8))
        return load_grey(ds.pixel_array)
    except BadImage:
        raise
    except Exception as e:  # pydicom raises many types for bad or unsupported files; all mean "cannot use it"
        raise BadImage(f"cannot decode DICOM: {type(e).__name__}: {e}") from e
