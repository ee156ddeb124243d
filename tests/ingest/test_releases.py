"""CXR-LT 2024 and 2026: made-up rows shaped exactly like the published label files, and synthetic releases
built end to end."""
import json

import numpy as np
import pandas as pd
import pytest

from ingest import IngestError
from ingest.build import build_shards
from ingest.datasets import get_dataset
from ingest.datasets.cxr_lt import CXR_LT_2024_CLASSES, CXR_LT_2024_TASK2_CLASSES, CXR_LT_2026_CLASSES
from ingest.synth_release import synth_release
from ingest.verify import verify
from shards.reader import open_shards

from conftest import tiny_options

META_2024 = ["dicom_id", "subject_id", "study_id", "ViewPosition", "ViewCodeSequence_CodeMeaning", "fpath"]


def row_2024(subject: int, study: int, dicom: str, view=("PA", "postero-anterior"), positives=()):
    meta = [dicom, str(subject), str(study), *view, f"files/p{str(subject)[:2]}/p{subject}/s{study}/{dicom}.jpg"]
    return meta + ["1" if c in positives else "0" for c in CXR_LT_2024_CLASSES]


def write_2024(folder, train_rows, dev_rows=None, test_rows=None):
    folder.mkdir(parents=True, exist_ok=True)
    cols = META_2024 + CXR_LT_2024_CLASSES
    pd.DataFrame(train_rows, columns=cols).to_csv(folder / "train_labeled.csv", index=False)
    for name, rows in (("development_labeled_task1.csv", dev_rows), ("test_labeled_task1.csv", test_rows)):
        if rows is not None:
            pd.DataFrame(rows, columns=cols).to_csv(folder / name, index=False)
    return folder


TRAIN = [row_2024(10000032, 50414267, "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014", positives=["Normal"]),
         row_2024(10000032, 50414267, "174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962", ("LATERAL", "lateral"),
                  ["Normal"]),
         row_2024(10000764, 57375967, "096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4", ("AP", "antero-posterior"),
                  ["Support Devices", "Pleural Effusion", "Lobar Atelectasis"]),
         row_2024(10000898, 50771383, "9f79da67-0f5ec4c7-1b8a8a0e-d4b7d2d0-32d7b0e8", ("", ""), ["Cardiomegaly"])]
DEV = [row_2024(11000011, 51000011, "aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee", positives=["Edema"])]
TEST = [row_2024(12000012, 52000012, "ffffffff-bbbbbbbb-cccccccc-dddddddd-eeeeeeee", positives=["Mass"])]


def test_2024_reads_ids_studies_views_paths_and_the_40_classes_in_file_order(tmp_path):
    records, hashes, facts = get_dataset("cxr-lt-2024").read(write_2024(tmp_path, TRAIN, DEV, TEST))
    assert set(hashes) == {"train_labeled.csv", "development_labeled_task1.csv", "test_labeled_task1.csv"}
    assert records["split"].tolist() == ["train"] * 4 + ["val", "test"]
    assert records["study_id"].tolist()[:3] == ["50414267", "50414267", "57375967"]
    assert records["view"].tolist()[:4] == ["PA", "LATERAL", "AP", ""]
    assert records["path"][0] == "files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg"
    assert records["key"][0] == "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014"
    hot = np.stack(records["labels"])
    assert hot.shape == (6, 40) and (records["label"] == -1).all()
    assert [CXR_LT_2024_CLASSES[c] for c in np.flatnonzero(hot[2])] == ["Lobar Atelectasis", "Pleural Effusion",
                                                                         "Support Devices"]
    assert facts["group_splits"] == ["train"] and "made_splits" not in facts  # the release gave val and test


def test_2024_task2_reads_its_26_classes_from_the_40_column_training_file(tmp_path):
    folder = write_2024(tmp_path, TRAIN)
    cols = META_2024 + CXR_LT_2024_TASK2_CLASSES
    pd.DataFrame([r[:6] + ["0"] * 25 + ["1"] for r in DEV], columns=cols).to_csv(
        folder / "development_labeled_task2.csv", index=False)
    records, _, _ = get_dataset("cxr-lt-2024-task2").read(folder)
    hot = np.stack(records["labels"])
    assert hot.shape == (5, 26) and len(CXR_LT_2024_TASK2_CLASSES) == 26
    assert hot[2, CXR_LT_2024_TASK2_CLASSES.index("Support Devices")] == 1  # Lobar Atelectasis is task 1's only
    assert hot[2].sum() == 2 and records["split"].tolist()[-1] == "val"


@pytest.mark.parametrize("fpath", ["../files/p10/x.jpg", "/data/mimic/files/p10/x.jpg", "files/../../etc/x.jpg", ""])
def test_2024_fpath_outside_the_images_root_is_refused(tmp_path, fpath):
    rows = [list(r) for r in TRAIN]
    rows[1][5] = fpath
    with pytest.raises(IngestError, match="train_labeled.csv: image path .* must be relative to --images"):
        get_dataset("cxr-lt-2024").read(write_2024(tmp_path, rows))


def test_2024_patient_in_train_and_test_is_refused(tmp_path):
    leak = [row_2024(10000764, 59999999, "ffffffff-0000aaaa-cccccccc-dddddddd-eeeeeeee")]
    with pytest.raises(IngestError, match="patient 10000764 is in the splits \\['test', 'train'\\]"):
        get_dataset("cxr-lt-2024").read(write_2024(tmp_path, TRAIN, DEV, leak))


def test_2024_value_other_than_0_or_1_names_file_row_and_column(tmp_path):
    rows = [list(r) for r in TRAIN]
    rows[2][6 + CXR_LT_2024_CLASSES.index("Edema")] = "-1"
    with pytest.raises(IngestError, match="train_labeled.csv, row 4: 'Edema' is '-1'; class values must be 0 or 1"):
        get_dataset("cxr-lt-2024").read(write_2024(tmp_path, rows))


def test_2024_unknown_class_column_is_named(tmp_path):
    folder = write_2024(tmp_path, TRAIN)
    df = pd.read_csv(folder / "train_labeled.csv", dtype=str).rename(columns={"Kyphosis": "Kyphosis2"})
    df.to_csv(folder / "train_labeled.csv", index=False)
    with pytest.raises(IngestError, match=r"unknown columns \['Kyphosis2'\] / missing class columns \['Kyphosis'\]"):
        get_dataset("cxr-lt-2024").read(folder)


def test_2024_without_development_file_makes_a_seeded_patient_grouped_val(tmp_path):
    rows = [row_2024(10000000 + p, 50000000 + p, f"{p:08x}-{i:08x}-cccccccc-dddddddd-eeeeeeee")
            for p in range(60) for i in range(1 + p % 3)]
    folder = write_2024(tmp_path, rows)
    kw = {"val_fraction": 0.25, "test_fraction": 0.0}
    records, _, facts = get_dataset("cxr-lt-2024", split_seed=3, **kw).read(folder)
    again, _, _ = get_dataset("cxr-lt-2024", split_seed=3, **kw).read(folder)
    other, _, _ = get_dataset("cxr-lt-2024", split_seed=4, **kw).read(folder)
    assert records["split"].tolist() == again["split"].tolist() != other["split"].tolist()
    assert (records.groupby("patient_id")["split"].nunique() == 1).all()
    assert abs((records["split"] == "val").mean() - 0.25) < 0.05 and set(records["split"]) == {"train", "val"}
    assert facts["made_splits"] == {"splits": ["val"], "val_fraction": 0.25, "test_fraction": 0.0, "seed": 3,
                                    "rule": "patient-grouped (shards.folds.patient_parts)"}
    assert facts["group_splits"] == ["train", "val"]
    made, _, facts = get_dataset("cxr-lt-2024").read(folder)  # the defaults: 10% val, 10% test
    assert facts["made_splits"]["splits"] == ["val", "test"] and set(made["split"]) == {"train", "val", "test"}
    assert (made.groupby("patient_id")["split"].nunique() == 1).all()


def test_synthetic_2024_release_builds_verifies_and_groups_by_the_training_file(tmp_path):
    synth_release("cxr-lt-2024", tmp_path / "raw", scale=0.0004, image_size=48, seed=0)
    labels = tmp_path / "raw" / "labels"
    (labels / "development_labeled_task1.csv").unlink()  # no val: made from train
    m = build_shards(tmp_path / "raw" / "mimic-cxr-jpg", labels, tmp_path / "s",
                     tiny_options(dataset="cxr-lt-2024", val_fraction=0.2))
    assert verify(tmp_path / "s") == []
    assert m["dataset"] == "cxr-lt-2024" and m["class_names"] == CXR_LT_2024_CLASSES and m["multi_label"]
    assert m["synthetic"] and m["made_splits"]["val_fraction"] == 0.2 and m["images"]["val"] > 0
    train = pd.read_csv(labels / "train_labeled.csv", dtype=str)
    counts = train[CXR_LT_2024_CLASSES].astype(int).sum().to_numpy()  # the whole training file, val included
    assert m["groups"] == ["head" if n > 1000 else "tail" if n < 100 else "medium" for n in counts]
    ss = open_shards(tmp_path / "s")
    assert {"study_id", "view"} <= set(ss.index.columns) and set(ss.index["view"]) <= {"AP", "PA", "LATERAL", "LL", ""}
    assert (ss.index.groupby("patient_id")["split"].nunique() == 1).all()


def test_synthetic_2026_release_builds_with_the_percentile_window_recorded(tmp_path):
    info = synth_release("cxr-lt-2026", tmp_path / "raw", scale=0.0005, image_size=48, seed=1)
    df = pd.read_csv(tmp_path / "raw" / "labels" / "CXRLT_2026_training.csv", dtype=str)
    assert df.columns.tolist() == ["ImageID", "StudyDate_DICOM", "PatientID", *CXR_LT_2026_CLASSES]
    assert len(df) == info["images"] and df["ImageID"].str.endswith(".png").all()
    m = build_shards(tmp_path / "raw", tmp_path / "raw" / "labels", tmp_path / "s", tiny_options(dataset="cxr-lt-2026"))
    assert verify(tmp_path / "s") == []
    assert m["image"]["window16"] == "percentile" and m["image"]["window16_percentiles"] == [0.5, 99.5]
    assert m["made_splits"]["splits"] == ["val", "test"] and min(m["images"][s] for s in ("val", "test")) > 0
    assert m["build"]["params"]["window16"] == "percentile"
    sbit = build_shards(tmp_path / "raw", tmp_path / "raw" / "labels", tmp_path / "s2",
                        tiny_options(dataset="cxr-lt-2026", window="sbit"))
    assert "window16" not in sbit["image"] and sbit["shards"][0]["sha256"] != m["shards"][0]["sha256"]
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["group_splits"] == ["train", "val", "test"]


@pytest.mark.parametrize("dataset, files", [("cxr-lt-2024", ["train_labeled.csv", "development_labeled_task1.csv",
                                                             "development_labeled_task2.csv", "test_labeled_task1.csv",
                                                             "test_labeled_task2.csv"]),
                                            ("cxr-lt-2026", ["CXRLT_2026_training.csv"])])
def test_synth_cli_writes_the_release_layout(tmp_path, capsys, dataset, files):
    from ingest.__main__ import main

    assert main(["synth", "--dataset", dataset, "--out", str(tmp_path), "--scale", "0.0002", "--image-size", "32"]) == 0
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == sorted(files)
    assert json.loads((tmp_path / "synth.json").read_text())["dataset"] == dataset
    assert "wrote" in capsys.readouterr().out
