import pandas as pd
import pytest

from ingest import IngestError
from ingest.adapters import ADAPTERS, read_labels

NIH = ADAPTERS["nih-cxr-lt"]
TRAIN = "nih-cxr-lt_single-label_train.csv"
TEST = "nih-cxr-lt_single-label_test.csv"


def edit(labels_dir, name, fn):
    df = pd.read_csv(labels_dir / name, dtype=str, keep_default_na=False)
    fn(df).to_csv(labels_dir / name, index=False)


def test_records_cover_every_file_with_splits_and_balanced_test(labels_copy):
    records, hashes = read_labels(NIH, labels_copy)
    assert set(hashes) == set(NIH.files)
    n = {f: len(pd.read_csv(labels_copy / f)) for f in NIH.files}
    assert (records["split"] == "train").sum() == n[TRAIN]
    assert (records["split"] == "val").sum() == n["nih-cxr-lt_single-label_balanced-val.csv"]
    assert records["balanced_test"].sum() == n["nih-cxr-lt_single-label_balanced-test.csv"]
    assert (records.loc[records["balanced_test"], "split"] == "test").all()
    assert not records["key"].str.contains(".", regex=False).any()
    assert all(r.labels[r.label] == 1 and r.labels.sum() == 1 for r in records.itertuples())


def test_missing_split_file_is_named(labels_copy):
    (labels_copy / TEST).unlink()
    with pytest.raises(IngestError, match="missing label file.*single-label_test.csv"):
        read_labels(NIH, labels_copy)


def test_row_without_exactly_one_positive_names_file_and_row(labels_copy):
    edit(labels_copy, TRAIN, lambda df: df.assign(**{"Hernia": ["1"] + list(df["Hernia"][1:])}))
    with pytest.raises(IngestError, match=r"single-label_train.csv, row 2 .*exactly one 1"):
        read_labels(NIH, labels_copy)


def test_unknown_class_column_is_named(labels_copy):
    edit(labels_copy, TRAIN, lambda df: df.rename(columns={"Hernia": "Hernias"}))
    with pytest.raises(IngestError, match="unknown class columns \\['Hernias'\\]"):
        read_labels(NIH, labels_copy)


def test_duplicate_id_within_a_file_names_rows(labels_copy):
    edit(labels_copy, TRAIN, lambda df: pd.concat([df, df.iloc[[0]]]))
    with pytest.raises(IngestError, match=r"single-label_train.csv: duplicate id .* \(rows \[2, "):
        read_labels(NIH, labels_copy)


def test_id_in_two_splits_is_an_error(labels_copy):
    test = pd.read_csv(labels_copy / TEST, dtype=str)
    edit(labels_copy, TRAIN, lambda df: pd.concat([df, test.iloc[[0]]]))
    with pytest.raises(IngestError, match="belongs to exactly one split"):
        read_labels(NIH, labels_copy)


def test_patient_in_two_splits_is_an_error(labels_copy):
    patient = pd.read_csv(labels_copy / TEST, dtype=str)["subject_id"][0]
    edit(labels_copy, TRAIN, lambda df: df.assign(subject_id=[patient] + list(df["subject_id"][1:])))
    with pytest.raises(IngestError, match=f"patient {patient} is in the splits"):
        read_labels(NIH, labels_copy)


def test_balanced_test_outside_test_is_an_error(labels_copy):
    train = pd.read_csv(labels_copy / TRAIN, dtype=str)
    edit(labels_copy, "nih-cxr-lt_single-label_balanced-test.csv", lambda df: pd.concat([df, train.iloc[[0]]]))
    with pytest.raises(IngestError, match="subset of test"):
        read_labels(NIH, labels_copy)


def test_multilabel_adapter_reads_multi_hot_rows(labels_copy):
    records, _ = read_labels(ADAPTERS["nih-cxr-lt-multilabel"], labels_copy)
    assert (records["label"] == -1).all()
    assert max(r.sum() for r in records["labels"]) > 1
    assert set(records["split"]) == {"train", "val", "test"}


@pytest.mark.parametrize("other_file", [TRAIN, TEST])
def test_two_ids_with_one_key_are_refused_naming_both_ids_and_files(labels_copy, other_file):
    first = pd.read_csv(labels_copy / TRAIN, dtype=str, keep_default_na=False).iloc[0]
    twin = first.copy()
    twin["id"] = first["id"].replace(".png", ".jpg")
    edit(labels_copy, other_file, lambda df: pd.concat([df, twin.to_frame().T]))
    n = len(pd.read_csv(labels_copy / other_file))
    with pytest.raises(IngestError, match=rf"ids '{first['id']}' \({TRAIN}, row 2\) and '{twin['id']}' "
                                          rf"\({other_file}, row {n + 1}\) both give the shard key "
                                          rf"'{first['id'][:-4]}'"):
        read_labels(NIH, labels_copy)


def test_a_label_file_that_is_a_folder_is_named(labels_copy):
    (labels_copy / TEST).unlink()
    (labels_copy / TEST).mkdir()
    with pytest.raises(IngestError, match=f"{labels_copy / TEST} is a folder, not a label file"):
        read_labels(NIH, labels_copy)


def test_multilabel_rows_with_no_class_or_no_finding_beside_a_finding_are_kept_and_named(labels_copy, caplog):
    adapter = ADAPTERS["nih-cxr-lt-multilabel"]
    read_labels(adapter, labels_copy)
    assert "rows with" not in caplog.text  # the synthetic release has none, as the real one
    path = labels_copy / "miccai2023_nih-cxr-lt_labels_val.csv"
    df = pd.read_csv(path, dtype=str)
    classes = [c for c in df.columns if c not in ("id", "subj_id")]
    df.loc[1, classes] = "0"
    df.loc[3, ["No Finding", "Hernia"]] = "1"
    df.to_csv(path, index=False)
    records, _ = read_labels(adapter, labels_copy)
    assert f"{path}: 1 rows with no class at all (first: row 3, id {df.at[1, 'id']})" in caplog.text
    assert f'{path}: 1 rows with "No Finding" and a finding (first: row 5, id {df.at[3, "id"]})' in caplog.text
    assert len(records) == sum(len(pd.read_csv(p)) for p in labels_copy.glob("miccai2023_*.csv"))


@pytest.mark.parametrize("first,second", [("Mass", "MASS"), ("Pleural_Thickening", "Pleural Thickening"),
                                          ("Mass", "Mass")])
def test_two_columns_of_one_class_are_refused_naming_both(labels_copy, first, second):
    path = labels_copy / TRAIN
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    at = header.index(first)
    # the copy's values differ from the original's, so keeping either one silently would change the labels
    rows = [line.split(",") for line in lines[1:]]
    path.write_text("\n".join([",".join(header + [second])] + [",".join(r + ["1" if r[at] == "0" else "0"])
                                                                for r in rows]) + "\n")
    with pytest.raises(IngestError, match=f"{TRAIN}: columns '{first}' and '{second}' name the same column"):
        read_labels(NIH, labels_copy)
