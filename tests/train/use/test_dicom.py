"""DICOM input for predict: small files made with pydicom, their 8-bit grey images known in advance."""
import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom", reason="pydicom is not installed (pip install 'cxr-lt[dicom]')")

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid  # noqa: E402

from train.use.dicom import is_dicom, load_dicom_grey  # noqa: E402
from train.use.preprocess import open_grey  # noqa: E402

RAMP12 = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16)  # 12-bit values 0..4095


def write_dicom(path, pixels: np.ndarray, bits_stored: int, photometric="MONOCHROME2", **tags):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits_stored, bits_stored - 1, 0
    for k, v in tags.items():
        setattr(ds, k, v)
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_twelve_bit_data_in_a_sixteen_bit_container_spans_the_stored_bits(tmp_path):
    got = load_dicom_grey(write_dicom(tmp_path / "a.dcm", RAMP12, 12))
    np.testing.assert_array_equal(got, np.rint(RAMP12 * 255.0 / 4095).astype(np.uint8))


def test_monochrome1_is_inverted(tmp_path):
    got = load_dicom_grey(write_dicom(tmp_path / "a.dcm", RAMP12, 12, "MONOCHROME1"))
    np.testing.assert_array_equal(got, 255 - np.rint(RAMP12 * 255.0 / 4095).astype(np.uint8))


def test_rescale_then_window_maps_the_window_to_black_and_white(tmp_path):
    # modality values 2 * raw - 1000; window centre 1000 width 2001: LINEAR maps (c - 0.5 - (w - 1) / 2) .. to 0..1
    path = write_dicom(tmp_path / "a.dcm", RAMP12, 12, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=1000,
                       WindowWidth=2001)
    value = 2.0 * RAMP12 - 1000
    frac = np.clip((value - (1000 - 0.5)) / 2000 + 0.5, 0, 1)
    np.testing.assert_allclose(load_dicom_grey(path), np.rint(frac * 255), atol=1)
    assert load_dicom_grey(path).min() == 0 and load_dicom_grey(path).max() == 255


def test_a_voi_lut_is_applied_over_its_output_range(tmp_path):
    lut = Dataset()
    lut.add_new("LUTDescriptor", "US", [4096, 0, 12])
    lut.add_new("LUTData", "OW", (4095 - np.arange(4096)).astype("<u2").tobytes())  # an inverting 12-bit LUT
    path = write_dicom(tmp_path / "a.dcm", RAMP12, 12)
    ds = pydicom.dcmread(path)
    ds.VOILUTSequence = [lut]
    ds.save_as(path)
    np.testing.assert_array_equal(load_dicom_grey(path), np.rint((4095 - RAMP12) * 255.0 / 4095).astype(np.uint8))


def test_an_eight_bit_dicom_is_the_same_image_as_the_png_of_its_pixels(tmp_path):
    from PIL import Image

    grey = (np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "a.png")
    path = write_dicom(tmp_path / "nosuffix", grey, 8)
    assert is_dicom(path) and not is_dicom(tmp_path / "a.png")
    np.testing.assert_array_equal(open_grey(path), open_grey(tmp_path / "a.png"))


def test_a_broken_dicom_is_a_bad_image_with_its_reason(tmp_path):
    from shards.images import BadImage

    path = write_dicom(tmp_path / "a.dcm", RAMP12, 12)
    path.write_bytes(path.read_bytes()[:-2000])
    with pytest.raises(BadImage, match="cannot decode DICOM"):
        load_dicom_grey(path)
