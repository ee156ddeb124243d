"""The MIMIC-CXR-LT adapter on its real (public) balanced label files, with made-up JPGs at their paths."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ingest import IngestError
from ingest.build import build_shards
from shards.reader import open_shards

from conftest import tiny_options

DATA = Path(__file__).parent / "data"


def mimic_tree(tmp_path: Path, rows_per_file: int = 12) -> tuple[Path, Path]:
    """train/val from patients of the real balanced-val, test/balanced-test from the real balanced-test."""
    val = pd.read_csv(DATA / "mimic-cxr-lt_single-label_balanced-val.csv", dtype=str)
    test = pd.read_csv(DATA / "mimic-cxr-lt_single-label_balanced-test.csv", dtype=str)
    patients = sorted(val["subject_id"].unique())
    train = val[val["subject_id"].isin(patients[::2])].head(rows_per_file)
    bval = val[val["subject_id"].isin(patients[1::2])].head(rows_per_file)
    test = test.head(rows_per_file)
    labels, images = tmp_path / "labels", tmp_path / "mimic-cxr-jpg"
    labels.mkdir()
    files = {"train": train, "balanced-val": bval, "test": test, "balanced-test": test.head(4)}
    for name, df in files.items():
        df.to_csv(labels / f"mimic-cxr-lt_single-label_{name}.csv", index=False)
    rng = np.random.default_rng(0)
    for df in files.values():
        for rel in df["path"]:
            p = images / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(p, "JPEG")
    return images, labels


def test_mimic_builds_from_path_column_with_dicom_keys(tmp_path):
    images, labels = mimic_tree(tmp_path)
    out = tmp_path / "shards"
    m = build_shards(images, labels, out, tiny_options(dataset="mimic-cxr-lt"))
    ss = open_shards(out)
    assert len(ss.class_names) == 19 and m["images"]["balanced-test"] == 4
    key, img, label = next(ss.samples("train"))
    assert img.shape == (32, 32) and "-" in key and 0 <= label < 19
    # MIMIC has no published full counts here: its groups come from its own training counts
    assert m["group_rule"] == "training counts"


@pytest.mark.parametrize("bad", ["/etc/passwd", "files/../../secret.jpg"])
def test_paths_that_escape_the_image_root_are_refused(tmp_path, bad):
    images, labels = mimic_tree(tmp_path)
    f = labels / "mimic-cxr-lt_single-label_train.csv"
    df = pd.read_csv(f, dtype=str)
    df.loc[0, "path"] = bad
    df.to_csv(f, index=False)
    with pytest.raises(IngestError, match="must be relative to --images, without '..'"):
        build_shards(images, labels, tmp_path / "out", tiny_options(dataset="mimic-cxr-lt"))
