"""--dataset csv --spec: a CheXpert-style CSV (1, 0, -1 and blank cells, a path column, patients) packed
through a YAML spec; every malformed key and row is one error naming it."""
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import tiny_options
from ingest import IngestError
from ingest.__main__ import main
from ingest.build import build_shards
from ingest.datasets.spec import read_spec
from ingest.verify import verify
from shards.reader import open_shards

CLASSES = ["No Finding", "Cardiomegaly", "Edema", "Pleural Effusion"]


def chexpert_like(root, n_patients=24, cells=None):
    """train.csv with CheXpert's columns (Path, Sex, Age, Frontal/Lateral, AP/PA + classes) and its images."""
    rng = np.random.default_rng(0)
    rows = []
    for p in range(1, n_patients + 1):
        for s in range(1, 1 + p % 2 + 1):
            path = f"CheXpert-v1.0-small/train/patient{p:05d}/study{s}/view1_frontal.jpg"
            values = cells(p, s) if cells else [rng.choice(["1.0", "0.0", "-1.0", ""]) for _ in CLASSES]
            rows.append([path, "Female", "68", "Frontal", "AP", *values])
            (root / "images" / path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(root / "images" / path)
    df = pd.DataFrame(rows, columns=["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CLASSES])
    df["Patient"] = df["Path"].str.split("/").str[2]
    df.to_csv(root / "train.csv", index=False)
    return df


def write_spec(root, **keys):
    spec = {"labels": "train.csv", "path": "Path", "patient": "Patient", "classes": CLASSES,
            "uncertain": "ignore", **keys}
    spec = {k: v for k, v in spec.items() if v is not None}
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    return root / "spec.yaml"


def build(root, spec, out="s"):
    return build_shards(root / "images", None, root / out, tiny_options(dataset="csv", spec=str(spec)))


def test_uncertain_ignore_masks_the_minus_ones_and_blank_is_a_negative(tmp_path):
    df = chexpert_like(tmp_path)
    m = build(tmp_path, write_spec(tmp_path))
    assert verify(tmp_path / "s") == []
    ss = open_shards(tmp_path / "s")
    rows = ss.index.set_index("image_id").loc[df["Path"]]
    cells = df[CLASSES].to_numpy()
    labels, mask = np.stack(rows["labels"]), np.stack(rows["mask"])
    assert np.array_equal(labels, (cells == "1.0").astype(np.int8))
    assert np.array_equal(mask, (cells != "-1.0").astype(np.int8))
    y = ss.targets(rows)
    assert np.array_equal(y == -1, cells == "-1.0") and np.array_equal(y == 1, cells == "1.0")
    assert m["class_names"] == CLASSES and m["dataset"] == "csv" and m["multi_label"]
    assert m["made_splits"]["splits"] == ["val", "test"]
    assert (ss.index.groupby("patient_id")["split"].nunique() == 1).all()
    # keys from the whole path: every CheXpert image is view1_frontal.jpg
    assert rows["key"].iloc[0] == "CheXpert-v1_0-small_train_patient00001_study1_view1_frontal"


@pytest.mark.parametrize("policy, value", [("zeros", 0), ("ones", 1)])
def test_uncertain_zeros_and_ones_set_the_minus_ones_and_write_no_mask(tmp_path, policy, value):
    df = chexpert_like(tmp_path)
    build(tmp_path, write_spec(tmp_path, uncertain=policy))
    ss = open_shards(tmp_path / "s")
    labels = np.stack(ss.index.set_index("image_id").loc[df["Path"], "labels"])
    cells = df[CLASSES].to_numpy()
    assert (labels[cells == "-1.0"] == value).all() and "mask" not in ss.index.columns


def test_spec_is_copied_into_the_shards_and_its_sha256_recorded(tmp_path):
    chexpert_like(tmp_path)
    spec = write_spec(tmp_path)
    m = build(tmp_path, spec)
    assert (tmp_path / "s" / "spec.yaml").read_bytes() == spec.read_bytes()
    assert m["spec_sha256"] == hashlib.sha256(spec.read_bytes()).hexdigest() and m["spec"] == "spec.yaml"
    assert m["build"]["label_files"]["spec.yaml"] == m["spec_sha256"]


def test_split_column_and_labels_column_single_label(tmp_path):
    df = chexpert_like(tmp_path, cells=lambda p, s: ["1.0", "0.0", "0.0", "0.0"])
    df["Finding"] = [CLASSES[i % 4] for i in range(len(df))]
    df["Split"] = np.where(df["Patient"].str[-2:].astype(int) % 4 == 0, "test",
                           np.where(df["Patient"].str[-2:].astype(int) % 4 == 1, "val", "train"))
    df.drop(columns=CLASSES).to_csv(tmp_path / "train.csv", index=False)
    spec = write_spec(tmp_path, split="Split", labels_column="Finding", multi_label=False, uncertain=None)
    m = build(tmp_path, spec)
    ss = open_shards(tmp_path / "s")
    rows = ss.index.set_index("image_id").loc[df["Path"]]
    assert rows["split"].tolist() == df["Split"].tolist() and not m["multi_label"]
    assert [CLASSES[i] for i in rows["label"]] == df["Finding"].tolist()
    assert "made_splits" not in m


def test_cli_packs_a_csv_with_its_spec(tmp_path, capsys):
    chexpert_like(tmp_path)
    spec = write_spec(tmp_path)
    assert main(["build-shards", "--dataset", "csv", "--spec", str(spec), "--images", str(tmp_path / "images"),
                 "--out", str(tmp_path / "s"), "--size", "16", "--workers", "1"]) == 0
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["dataset"] == "csv"


@pytest.mark.parametrize("args, message", [
    (["--dataset", "csv"], "--dataset csv needs --spec SPEC.yaml"),
    (["--dataset", "nih-cxr-lt", "--labels", "x", "--spec", "s.yaml"], "--spec is for --dataset csv"),
    (["--dataset", "cxr-lt-2024"], "--dataset cxr-lt-2024 needs --labels"),
])
def test_cli_dataset_and_spec_mistakes_are_one_line(tmp_path, capsys, args, message):
    assert main(["build-shards", "--images", str(tmp_path), "--out", str(tmp_path / "s"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("keys, message", [
    ({"colour": "x"}, "unknown key 'colour'; the keys are labels, path"),
    ({"patient": None}, "no 'patient' \\(the patient column\\)"),
    ({"classes": None}, "no 'classes'"),
    ({"classes": "Edema"}, "classes: 'Edema' is not a non-empty list"),
    ({"classes": ["Edema", "Edema"]}, "classes: \\['Edema'\\] listed twice"),
    ({"uncertain": "maybe"}, "uncertain: 'maybe' is not one of zeros, ones, ignore"),
    ({"multi_label": "yes"}, "multi_label: 'yes' is not true or false"),
    ({"fractions": {"val": 0.6, "test": 0.5}}, "fractions: .*their sum below 1"),
    ({"fractions": {"valid": 0.1}}, "fractions: .* is not \\{val: F, test: F\\}"),
    ({"seed": 1.5}, "seed: 1.5 is not an integer"),
    ({"split": "Split", "fractions": {"val": 0.1}}, "give split .*, not both"),
    ({"path": 3}, "path: 3 is not the image path column"),
    ({"multi_label": False}, "uncertain: ignore needs multi_label: true"),
    ({"labels_column": "Finding"}, "uncertain: applies to class columns"),
])
def test_every_malformed_spec_key_is_one_error_naming_it(tmp_path, keys, message):
    with pytest.raises(IngestError, match=f"--spec {tmp_path / 'spec.yaml'}: {message}"):
        read_spec(write_spec(tmp_path, **keys))


def test_spec_that_is_not_yaml_or_not_a_mapping(tmp_path):
    (tmp_path / "spec.yaml").write_text("labels: [unclosed")
    with pytest.raises(IngestError, match="not valid YAML"):
        read_spec(tmp_path / "spec.yaml")
    (tmp_path / "spec.yaml").write_text("- a\n- b\n")
    with pytest.raises(IngestError, match="not a mapping of keys"):
        read_spec(tmp_path / "spec.yaml")


@pytest.mark.parametrize("edit, message", [
    (lambda df: df.assign(Edema=["2"] + list(df["Edema"][1:])),
     "train.csv, row 2: 'Edema' is '2'; class values must be 1, 0, -1 \\(uncertain\\) or blank"),
    (lambda df: df.assign(Patient=[""] + list(df["Patient"][1:])), "train.csv, row 2: empty 'Patient'"),
    (lambda df: df.drop(columns=["Edema"]), "missing class columns \\['Edema'\\]"),
    (lambda df: df.drop(columns=["Patient"]), "train.csv: no column 'Patient'"),
    (lambda df: df.assign(Path=["/abs/x.jpg"] + list(df["Path"][1:])), "image path '/abs/x.jpg' must be relative"),
    (lambda df: pd.concat([df, df.iloc[[0]]]), "is listed twice \\(train.csv, row 2 and train.csv, row "),
])
def test_every_malformed_row_is_one_error_naming_file_and_row(tmp_path, edit, message):
    df = chexpert_like(tmp_path)
    edit(df).to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(IngestError, match=message):
        build(tmp_path, write_spec(tmp_path))


def test_bad_split_value_is_named(tmp_path):
    df = chexpert_like(tmp_path)
    df.assign(Split=["valid"] + ["train"] * (len(df) - 1)).to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(IngestError, match="train.csv, row 2: split 'valid' in column 'Split'; the values are train"):
        build(tmp_path, write_spec(tmp_path, split="Split"))
