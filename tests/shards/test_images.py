import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from shards.images import BadImage, convert, load_grey, resize_area


def png16(path, a, sbit=None):
    info = PngImagePlugin.PngInfo()
    if sbit is not None:
        info.add(b"sBIT", bytes([sbit]))
    Image.fromarray(np.asarray(a, dtype=np.uint16)).save(path, pnginfo=info)
    return path


def test_16bit_source_maps_its_full_range_onto_8_bits(tmp_path):
    path = png16(tmp_path / "deep.png", [[0, 257, 32896, 65535]])
    assert load_grey(path).tolist() == [[0, 1, 128, 255]]


def test_12bit_data_in_a_16bit_png_fills_the_8bit_range(tmp_path):
    # maximum 4000 -> 12 bits -> value / 4095 * 255; full-range scaling would give 0..16 (nearly black)
    path = png16(tmp_path / "twelve.png", [[0, 1000, 2048, 4000]])
    assert load_grey(path).tolist() == [[0, 62, 128, 249]]


def test_sbit_chunk_sets_the_depth(tmp_path):
    # sBIT says 12 bits although the maximum (1000) would fit 10: 1000 / 4095 * 255 = 62, not 249
    path = png16(tmp_path / "sbit.png", [[0, 500, 1000]], sbit=12)
    assert load_grey(path).tolist() == [[0, 31, 62]]
    # data scaled up to 16 bits as the PNG spec describes (values above 4095): 65535 is white
    spec = png16(tmp_path / "spec.png", [[0, 32768, 65535]], sbit=12)
    assert load_grey(spec).tolist() == [[0, 128, 255]]


def test_16bit_data_within_8_bits_stays_as_it_is():
    assert load_grey(np.array([[0, 100, 255]], dtype=np.uint16)).tolist() == [[0, 100, 255]]


def test_wide_integer_arrays_follow_the_16bit_rule_and_negative_ones_are_bad():
    assert load_grey(np.array([[0, 1000, 2048, 4000]], dtype=np.int64)).tolist() == [[0, 62, 128, 249]]
    with pytest.raises(BadImage, match="int16 values -5..7"):
        load_grey(np.array([[-5, 7]], dtype=np.int16))


def huge_png(path, side):
    """A tiny file declaring side x side 16-bit grey pixels, whose pixel data is garbage."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_an_image_above_the_pixel_limit_is_refused_before_decoding(tmp_path):
    path = huge_png(tmp_path / "bomb.png", 11_000)
    with pytest.raises(BadImage, match=r"11000 x 11000 = 121.0 megapixels, above the limit of 50 megapixels.*"
                                       r"--max-pixels"):
        load_grey(path)
    # beyond PIL's own refusal (twice its 89 MP default) the message still names our limit and flag
    with pytest.raises(BadImage, match="1600.0 megapixels, above the limit of 5 megapixels.*--max-pixels"):
        load_grey(huge_png(tmp_path / "bigger.png", 40_000), max_pixels=5_000_000)


def test_a_raised_pixel_limit_lets_the_image_through_to_decoding(tmp_path):
    with pytest.raises(BadImage, match="cannot decode"):  # the garbage pixel data, not the size
        load_grey(huge_png(tmp_path / "bomb.png", 20_000), max_pixels=500_000_000)


CONVERT_PEAK = """
import resource, sys
import numpy as np
from shards.images import load_grey
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = load_grey(sys.argv[1])
assert out.dtype == np.uint8 and out.max() == 255
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_16bit_conversion_makes_no_full_size_wide_copies(tmp_path):
    side = 4096  # 16.8 MP: 34 MB as 16-bit; a float64 copy alone would be 134 MB
    a = np.zeros((side, side), np.uint16)
    a[::7, ::5] = 4095
    path = png16(tmp_path / "big.png", a)
    r = subprocess.run([sys.executable, "-c", CONVERT_PEAK, str(path)], capture_output=True, text=True, check=True)
    assert int(r.stdout) < 80  # MB above the start: the decoded image, the uint8 result and row blocks


def test_rgb_uses_luma_and_rgba_ignores_alpha():
    rgb = Image.new("RGB", (2, 2), (255, 0, 0))
    assert load_grey(rgb).tolist() == [[76, 76], [76, 76]]
    rgba = Image.new("RGBA", (2, 2), (0, 0, 255, 0))
    assert load_grey(rgba).tolist() == [[29, 29], [29, 29]]


def test_area_resize_averages_each_block():
    a = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    want = a.reshape(2, 2, 2, 2).mean(axis=(1, 3))
    assert np.array_equal(resize_area(a, 2), np.rint(want).astype(np.uint8))


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"not an image at all", "cannot decode")])
def test_empty_and_garbage_files_are_bad_images(tmp_path, content, reason):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(BadImage, match=reason):
        load_grey(path)


def test_truncated_png_is_a_bad_image(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(BadImage):
        load_grey(path)


@pytest.mark.parametrize("fmt,magic", [("jpeg", b"\xff\xd8"), ("png", b"\x89PNG")])
def test_convert_gives_a_resized_grayscale_image_in_the_format(tmp_path, fmt, magic):
    path = tmp_path / "src.png"
    Image.new("L", (100, 100), 200).save(path)
    data = convert(path, 25, fmt, 95)
    assert data.startswith(magic)
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == "L" and img.size == (25, 25)


def test_percentile_window_maps_the_05_and_995_percentiles_to_0_and_255():
    rng = np.random.default_rng(0)
    deep = rng.integers(100, 4000, (64, 64)).astype(np.uint16)
    lo, hi = np.percentile(deep, [0.5, 99.5])
    want = np.clip(np.round(np.interp(deep.astype(float), [lo, hi], [0, 255]) + 1e-9), 0, 255).astype(np.uint8)
    got = load_grey(deep, window="percentile")
    assert np.abs(got.astype(int) - want).max() <= 1 and got.min() == 0 and got.max() == 255
    assert (got[deep <= lo] == 0).all() and (got[deep >= hi] == 255).all()


def test_percentile_window_keeps_the_anatomy_that_one_bright_marker_costs_the_sbit_rule():
    """The measurement behind cxr-lt-2026's default: PadChest-like 16-bit images (12 bits of data, no sBIT, a
    burned-in marker at 65535): the sBIT rule leaves the anatomy 17 grey levels, the percentile window 256."""
    from ingest.phantom import render
    from ingest.synth_release import deep_png

    levels = {"sbit": [], "percentile": []}
    for k in range(5):
        rng = np.random.default_rng([0, k])
        img = deep_png(render(np.zeros(30, np.int8), 0, 128, rng), True, rng)
        for window in levels:
            levels[window].append(len(np.unique(load_grey(img, window=window)[8:, 8:])))  # outside the marker
    assert max(levels["sbit"]) <= 17 and min(levels["percentile"]) >= 250


def test_a_16_bit_png_file_and_its_array_give_the_same_percentile_pixels(tmp_path):
    deep = (np.arange(64 * 64).reshape(64, 64) * 3).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "x.png")
    assert np.array_equal(load_grey(tmp_path / "x.png", window="percentile"), load_grey(deep, window="percentile"))


def test_unknown_window_is_refused():
    with pytest.raises(ValueError, match="unknown 16-bit window 'gamma'"):
        load_grey(np.zeros((4, 4), np.uint16), window="gamma")
