import io

import numpy as np
import pytest
from PIL import Image

from ingest.images import BadImage, convert, load_gray8, resize_area, to_gray8


def test_16bit_source_maps_its_full_range_onto_8_bits(tmp_path):
    a = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(a).save(path)
    assert np.asarray(load_gray8(path)).tolist() == [[0, 1, 128, 255]]


def test_rgb_uses_luma_and_rgba_ignores_alpha():
    rgb = Image.new("RGB", (2, 2), (255, 0, 0))
    assert np.asarray(to_gray8(rgb)).tolist() == [[76, 76], [76, 76]]
    rgba = Image.new("RGBA", (2, 2), (0, 0, 255, 0))
    assert np.asarray(to_gray8(rgba)).tolist() == [[29, 29], [29, 29]]


def test_area_resize_averages_each_block():
    a = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    out = np.asarray(resize_area(Image.fromarray(a), 2))
    want = a.reshape(2, 2, 2, 2).mean(axis=(1, 3))
    assert np.array_equal(out, np.rint(want).astype(np.uint8))


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"not an image at all", "cannot decode")])
def test_empty_and_garbage_files_are_bad_images(tmp_path, content, reason):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(BadImage, match=reason):
        load_gray8(path)


def test_truncated_png_is_a_bad_image(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(BadImage):
        load_gray8(path)


@pytest.mark.parametrize("fmt,magic", [("jpeg", b"\xff\xd8"), ("png", b"\x89PNG")])
def test_convert_gives_a_resized_grayscale_image_in_the_format(tmp_path, fmt, magic):
    path = tmp_path / "src.png"
    Image.new("L", (100, 100), 200).save(path)
    data = convert(path, 25, fmt, 95)
    assert data.startswith(magic)
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == "L" and img.size == (25, 25)
