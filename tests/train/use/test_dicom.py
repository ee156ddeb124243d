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


# pydicom's bundled test files, read from its package folder (get_testdata_files would try the network)
TEST_FILES = __import__("pathlib").Path(pydicom.__file__).parent / "data" / "test_files"


@pytest.mark.parametrize("name,modality", [("CT_small.dcm", "CT"), ("MR_small.dcm", "MR"),
                                           ("rtdose_1frame.dcm", "RTDOSE")])
def test_a_file_that_is_not_a_radiograph_is_refused_unless_any_modality(name, modality):
    from shards.images import BadImage

    path = TEST_FILES / name
    if not path.exists():
        pytest.skip(f"{name} is not bundled with this pydicom")
    with pytest.raises(BadImage, match=f"modality {modality}, not a radiograph .*--any-modality"):
        load_dicom_grey(path)
    if modality in ("CT", "MR"):
        assert load_dicom_grey(path, any_modality=True).dtype == np.uint8


def test_a_dicom_without_pixel_data_is_a_bad_image_saying_so():
    from shards.images import BadImage

    with pytest.raises(BadImage, match="a DICOM without pixel data"):
        load_dicom_grey(TEST_FILES / "rtplan.dcm", any_modality=True)


def test_palette_colour_is_read_through_its_palette():
    path = TEST_FILES / "examples_palette.dcm"
    ds = pydicom.dcmread(path)
    rgb = pydicom.pixels.apply_color_lut(ds.pixel_array, ds)
    got = load_dicom_grey(path, any_modality=True)
    from PIL import Image

    want = np.asarray(Image.fromarray((rgb >> 8).astype(np.uint8) if rgb.dtype == np.uint16 else rgb).convert("L"))
    assert got.shape == ds.pixel_array.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert not np.array_equal(got, ds.pixel_array.astype(np.uint8))  # not the palette indices as grey levels


def test_the_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path, monkeypatch):
    from shards.images import BadImage

    path = write_dicom(tmp_path / "big.dcm", RAMP12, 12)
    ds = pydicom.dcmread(path)
    ds.Rows = ds.Columns = 8192  # the header claims 67 megapixels; the data is never decoded
    ds.save_as(path)
    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(lambda self: pytest.fail("decoded")))
    with pytest.raises(BadImage, match="8192 x 8192 = 67.1 megapixels, above the limit of 50 megapixels"):
        load_dicom_grey(path)


def test_pydicom_logs_nothing_to_the_console_for_a_bad_file(tmp_path, capsys, caplog):
    from shards.images import BadImage

    path = tmp_path / "x.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\x00garbage")
    with pytest.raises(BadImage):
        load_dicom_grey(path)
    said = capsys.readouterr()
    assert "Traceback" not in said.err + said.out + caplog.text


@pytest.mark.parametrize("name", ["MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm"])
def test_the_dicom_extra_decodes_the_lossless_syntaxes_to_the_uncompressed_image(name):
    pytest.importorskip("libjpeg", reason="pylibjpeg-libjpeg is not installed (pip install 'cxr-lt[dicom]')")
    pytest.importorskip("openjpeg", reason="pylibjpeg-openjpeg is not installed (pip install 'cxr-lt[dicom]')")
    want = load_dicom_grey(TEST_FILES / "MR_small.dcm", any_modality=True)
    assert np.array_equal(load_dicom_grey(TEST_FILES / name, any_modality=True), want)


def test_the_dicom_extra_decodes_jpeg_lossless_process_14():
    pytest.importorskip("libjpeg", reason="pylibjpeg-libjpeg is not installed (pip install 'cxr-lt[dicom]')")
    got = load_dicom_grey(TEST_FILES / "SC_rgb_jpeg_gdcm.dcm", any_modality=True)
    assert got.dtype == np.uint8 and got.ndim == 2 and got.std() > 0
