import gzip
import json
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ingest import IngestError

from ingest.adapters import NIH_CLASSES, NIH_TRAIN_COUNTS
from ingest.phantom import lesion_params, render
from ingest.synth import MARKER, MIN_PER_CLASS, bundled, folder_of, single_label_splits, synth

SPLIT_FILES = ["train", "balanced-val", "test", "balanced-test"]


def real_header(name):
    raw = gzip.decompress((resources.files("ingest") / "data" / f"{name}.gz").read_bytes()).decode()
    return raw.splitlines()[0].split(",")


def read(raw_dir, name):
    return pd.read_csv(raw_dir / "labels" / name, dtype=str, keep_default_na=False)


def test_label_files_have_the_real_schema(raw_dir):
    want = real_header("nih-cxr-lt_single-label_test.csv")
    for s in SPLIT_FILES:
        assert list(read(raw_dir, f"nih-cxr-lt_single-label_{s}.csv").columns) == want
    want_ml = real_header("miccai2023_nih-cxr-lt_labels_test.csv")
    for s in ("train", "val", "test"):
        assert list(read(raw_dir, f"miccai2023_nih-cxr-lt_labels_{s}.csv").columns) == want_ml


def test_val_and_test_labels_are_the_real_ones(raw_dir):
    for s in ("test", "balanced-val"):
        ours = read(raw_dir, f"nih-cxr-lt_single-label_{s}.csv").set_index("id")
        real = bundled(f"nih-cxr-lt_single-label_{s}.csv").set_index("id")
        assert ours.equals(real.loc[ours.index])


def test_full_scale_train_has_the_published_counts_over_the_real_train_ids():
    files = single_label_splits(1.0, seed=0)
    train = files["train"]
    assert len(train) == 68058
    counts = train[NIH_CLASSES].astype(int).sum(axis=0)
    assert counts.to_dict() == NIH_TRAIN_COUNTS
    all_ids = set(bundled("nih-cxr-lt_image_ids.csv")["id"])
    assert set(train["id"]) == all_ids - set(files["test"]["id"]) - set(files["balanced-val"]["id"])
    assert (train["subject_id"] == train["id"].str[:8]).all()


def test_scaled_splits_keep_every_class_patients_disjoint_and_balanced_test_inside_test(raw_dir):
    files = {s: read(raw_dir, f"nih-cxr-lt_single-label_{s}.csv") for s in SPLIT_FILES}
    for s, df in files.items():
        assert (df[NIH_CLASSES].astype(int).sum(axis=0) >= MIN_PER_CLASS).all(), s
        assert (df[NIH_CLASSES].astype(int).sum(axis=1) == 1).all()
    assert set(files["balanced-test"]["id"]) <= set(files["test"]["id"])
    patients = {s: set(files[s]["subject_id"]) for s in ("train", "balanced-val", "test")}
    assert not patients["train"] & patients["test"] and not patients["train"] & patients["balanced-val"]
    # proportions kept: the largest class stays the largest, by about the published factor
    train = files["train"][NIH_CLASSES].astype(int).sum(axis=0)
    assert train.idxmax() == "No Finding" and train["No Finding"] > 5 * train["Infiltration"] > 0


def test_multilabel_variant_has_multi_finding_rows_and_real_labels(raw_dir):
    val = read(raw_dir, "miccai2023_nih-cxr-lt_labels_val.csv").set_index("id")
    real = bundled("miccai2023_nih-cxr-lt_labels_val.csv").set_index("id")
    assert val.equals(real.loc[val.index])
    every = pd.concat([read(raw_dir, f"miccai2023_nih-cxr-lt_labels_{s}.csv") for s in ("train", "val", "test")])
    positives = every.iloc[:, 1:21].astype(int).sum(axis=1)
    assert (positives > 1).any() and (positives >= 1).all()


def test_images_follow_the_nih_download_layout(raw_dir):
    ids = set(read(raw_dir, "nih-cxr-lt_single-label_train.csv")["id"])
    files = {p.name: p for p in raw_dir.glob("images_*/images/*.png")}
    assert ids <= set(files)
    some = files[sorted(ids)[0]]
    assert some.parent.name == "images" and some.parent.parent.name.startswith("images_0")
    with Image.open(some) as img:
        assert img.mode == "L" and img.size == (64, 64)


def test_folder_of_matches_the_real_download_boundaries():
    every = sorted(set(bundled("train_val_list.txt")) | set(bundled("test_list.txt")))
    position = {i: k for k, i in enumerate(every)}
    # in the real download images_001 ends with 00001335_006.png and images_012 holds the last image
    assert folder_of("00001335_006.png", position) == "images_001"
    assert folder_of(every[every.index("00001335_006.png") + 1], position) == "images_002"
    assert folder_of(every[-1], position) == "images_012"


def test_every_finding_has_its_own_lesion_and_rendering_is_deterministic():
    params = [lesion_params(i) for i in range(19)]
    assert len(set(params)) == 19
    labels = np.zeros(20, np.int8)
    labels[3] = 1
    a = render(labels, 19, 96, np.random.default_rng(7))
    b = render(labels, 19, 96, np.random.default_rng(7))
    assert a.dtype == np.uint8 and a.shape == (96, 96) and np.array_equal(a, b)


def test_a_finding_is_a_local_patch_not_a_global_change():
    none, sick = np.zeros(20, np.int8), np.zeros(20, np.int8)
    none[19], sick[0] = 1, 1
    healthy = render(none, 19, 128, np.random.default_rng(11)).astype(float)
    ill = render(sick, 19, 128, np.random.default_rng(11)).astype(float)
    # the anatomy comes first from the same random stream; only the grain and the lesion differ
    blocks = np.abs((ill - healthy).reshape(8, 16, 8, 16).mean(axis=(1, 3)))
    assert blocks.max() > 4 * np.median(blocks)


@pytest.mark.parametrize("kw,flag", [({"scale": -0.5}, "--scale -0.5"), ({"scale": 0}, "--scale 0"),
                                     ({"image_size": 0}, "--image-size 0")])
def test_synth_refuses_a_bad_scale_or_size_naming_the_flag(tmp_path, kw, flag):
    with pytest.raises(IngestError, match=flag):
        synth(tmp_path, **kw)
    assert not list(tmp_path.iterdir())


def test_synth_marks_its_out_dir(raw_dir):
    assert json.loads((raw_dir / MARKER).read_text())["scale"] == 0.002
