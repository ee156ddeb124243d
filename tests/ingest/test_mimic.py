"""The MIMIC-CXR-LT adapter on its real (public) balanced label files, with made-up JPGs at their paths."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ingest import IngestError
from ingest.build import build_shards
from shards.reader import open_shards

from conftest import DATA, tiny_options



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


ML_FILE = "miccai2023_mimic-cxr-lt_labels_{}.csv"
# findings per row (made up): several per row, "No Finding" alone, and classes whose count is ~100 only
# when the splits are added, so the groups tell training positives from all positives and from argmax.
ML_ROWS = {
    "train": [["Atelectasis", "Support Devices", "Edema"]] * 50 + [["Atelectasis", "Support Devices"]] * 51
             + [["No Finding"]] * 4,
    "val": [["No Finding"]] * 3 + [["Cardiomegaly", "Pleural Effusion", "Tortuous Aorta"]],
    "test": [["Edema", "Fracture"]] * 30 + [["Edema"]] * 30 + [["No Finding"]] * 2,
}


def mimic_multilabel_tree(tmp_path: Path) -> tuple[Path, Path, dict[str, pd.DataFrame]]:
    """The three multi-label files with made-up dicom ids (dashed, as MIMIC's) and tiny JPGs at files/pXX/..."""
    from ingest.adapters import MIMIC_CLASSES

    labels, images = tmp_path / "labels", tmp_path / "mimic-cxr-jpg"
    labels.mkdir()
    rng, frames, n = np.random.default_rng(0), {}, 0
    for split, rows in ML_ROWS.items():
        records = []
        for findings in rows:
            subject, study = 10000000 + 1000 * len(frames) + n // 3, 50000000 + n  # 3 images per patient
            dicom = "-".join(f"{v:08x}" for v in rng.integers(0, 2**32, 5))
            meta = {"subject_id": str(subject), "study_id": str(study), "dicom_id": dicom,
                    "path": f"files/p{str(subject)[:2]}/p{subject}/s{study}/{dicom}.jpg"}
            records.append({**meta, **{c: str(int(c in findings)) for c in MIMIC_CLASSES}})
            n += 1
        frames[split] = pd.DataFrame(records)
        frames[split].to_csv(labels / ML_FILE.format(split), index=False)
    for df in frames.values():
        for rel in df["path"]:
            (images / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (20, 16, 3), dtype=np.uint8)).save(images / rel, "JPEG")
    return images, labels, frames


def test_mimic_multilabel_builds_multi_hot_shards_with_groups_from_training_positives(tmp_path):
    from ingest.adapters import MIMIC_CLASSES
    from ingest.verify import verify
    from shards.format import group_of

    images, labels, frames = mimic_multilabel_tree(tmp_path)
    out = tmp_path / "shards"
    m = build_shards(images, labels, out, tiny_options(dataset="mimic-cxr-lt-multilabel"))
    ss = open_shards(out)
    assert m["multi_label"] is True and m["class_names"] == MIMIC_CLASSES
    assert m["images"] == {"train": 105, "val": 4, "test": 62, "balanced-test": 0}
    assert (ss.index["label"] == -1).all() and not ss.index["balanced_test"].any()
    for split, df in frames.items():
        rows = ss.index[ss.index["split"] == split].set_index("key")
        assert sorted(rows.index) == sorted(df["dicom_id"])
        for _, r in df.iterrows():
            assert list(rows.loc[r["dicom_id"], "labels"]) == [int(r[c]) for c in MIMIC_CLASSES]
        decoded = list(ss.samples(split))
        assert len(decoded) == len(df) and all(img.shape == (32, 32) and lab == -1 for _, img, lab in decoded)
    # training positives: Atelectasis and Support Devices 101 (medium; argmax would give Support Devices 0),
    # Edema 50 (tail; 110 with test's), No Finding 4
    train = dict(zip(MIMIC_CLASSES, ss.train_counts().tolist()))
    assert (train["Atelectasis"], train["Support Devices"], train["Edema"], train["No Finding"]) == (101, 101, 50, 4)
    assert m["groups"] == [group_of(101) if c in ("Atelectasis", "Support Devices") else "tail" for c in MIMIC_CLASSES]
    assert group_of(101) == "medium" and m["group_rule"] == "training counts"
    assert m["counts"]["test"]["Edema"] == 60 and m["counts"]["val"]["Tortuous Aorta"] == 1
    assert verify(out) == []


@pytest.mark.parametrize("value", ["-1", "2", "", "1.0"])
def test_mimic_multilabel_class_value_not_0_or_1_names_file_and_row(tmp_path, value):
    images, labels, frames = mimic_multilabel_tree(tmp_path)
    df = frames["val"].copy()
    df.loc[2, "Edema"] = value  # CheXpert's "uncertain" is -1; it is not a label here
    df.to_csv(labels / ML_FILE.format("val"), index=False)
    with pytest.raises(IngestError, match=rf"{ML_FILE.format('val')}, row 4: class values must be 0 or 1"):
        build_shards(images, labels, tmp_path / "out", tiny_options(dataset="mimic-cxr-lt-multilabel"))


def test_mimic_multilabel_missing_image_under_its_nested_path_is_named(tmp_path):
    images, labels, frames = mimic_multilabel_tree(tmp_path)
    gone = frames["test"]["path"].iloc[5]
    (images / gone).unlink()
    with pytest.raises(IngestError, match=rf"1 listed images are missing .*{gone}"):
        build_shards(images, labels, tmp_path / "out", tiny_options(dataset="mimic-cxr-lt-multilabel"))


def test_mimic_single_label_file_with_two_findings_points_to_the_mimic_multilabel_dataset(tmp_path):
    images, labels = mimic_tree(tmp_path)
    f = labels / "mimic-cxr-lt_single-label_train.csv"
    df = pd.read_csv(f, dtype=str)
    df.loc[0, ["Edema", "Fracture"]] = "1"
    df.to_csv(f, index=False)
    with pytest.raises(IngestError, match="row 2 .*exactly one 1.*--dataset mimic-cxr-lt-multilabel for multi-label"):
        build_shards(images, labels, tmp_path / "out", tiny_options(dataset="mimic-cxr-lt"))


def test_build_shards_help_lists_the_mimic_multilabel_dataset(capsys):
    from ingest.__main__ import parser

    with pytest.raises(SystemExit):
        parser().parse_args(["build-shards", "--help"])
    assert "mimic-cxr-lt-multilabel" in capsys.readouterr().out
    a = parser().parse_args(["build-shards", "--images", "i", "--labels", "l", "--out", "o",
                             "--dataset", "mimic-cxr-lt-multilabel"])
    assert a.dataset == "mimic-cxr-lt-multilabel"


def test_the_mimic_index_keeps_each_images_study_from_its_label_file_and_nihs_has_no_study_column(tmp_path,
                                                                                                  shards_dir):
    images, labels, frames = mimic_multilabel_tree(tmp_path)
    out = tmp_path / "shards"
    build_shards(images, labels, out, tiny_options(dataset="mimic-cxr-lt-multilabel"))
    index = open_shards(out).index.set_index("key")
    for df in frames.values():
        assert index.loc[df["dicom_id"], "study_id"].tolist() == df["study_id"].tolist()
    assert "study_id" not in open_shards(shards_dir).index  # NIH's files name no studies: its index is unchanged
