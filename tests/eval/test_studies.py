import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from eval.__main__ import main as eval_main
from eval.predictions import Predictions, write_predictions
from eval.report import report
from eval.studies import aggregate
from eval.tasks import sigmoid
from shards.errors import UsageError
from shards.index import write_index

from test_multilabel_report import NAMES, ml_run


def test_a_studys_probability_is_the_mean_or_max_of_its_images_and_disagreeing_studies_are_left_out():
    logits = np.log(np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5], [0.9, 0.1], [0.3, 0.7]]))
    p = Predictions(np.array(["a", "b", "c", "d", "e"]), np.array(["p1"] * 5), np.array([1, 1, 0, 0, 1]), logits)
    study = {"a": "s1", "b": "s1", "c": "s2", "d": "s2", "e": "s3"}
    mean, disagree = aggregate(p, study, "single-label", "mean")
    assert mean.keys.tolist() == ["s1", "s2", "s3"] and mean.labels.tolist() == [1, 0, 1] and disagree == []
    assert mean.logits == pytest.approx(np.array([[0.4, 0.6], [0.7, 0.3], [0.3, 0.7]]))
    most, _ = aggregate(p, study, "single-label", "max")
    assert most.logits[0] == pytest.approx(np.array([0.6, 0.8]) / 1.4)  # the max of each class, renormalised
    p = Predictions(p.keys, p.patients, np.array([1, 0, 0, 0, 1]), logits)
    kept, disagree = aggregate(p, study, "single-label", "mean")
    assert disagree == ["s1"] and kept.keys.tolist() == ["s2", "s3"]


def fake_shards(root, keys_by_split, study):
    """A shards dir holding only an index with a study per image: what --by-study reads."""
    rows = [{"key": k, "image_id": f"{k}.jpg", "patient_id": "p", "split": split, "balanced_test": False,
             "label": -1, "labels": [0] * len(NAMES), "shard": f"{split}-000000.tar", "offset": 0, "size": 1,
             "sha256": "x", "study_id": study.get(k, "")} for split, keys in keys_by_split.items() for k in keys]
    root.mkdir()
    write_index(pd.DataFrame(rows), root / "index.parquet", "mimic-cxr-lt-multilabel", NAMES)
    return root


def test_a_multilabel_run_scored_by_study_has_the_ap_of_its_studies_mean_probabilities(tmp_path, capsys):
    run, preds = ml_run(tmp_path)
    keys = {split: [f"img{i}" for i in preds[split][0]] for split in ("val", "test")}
    offset = {"val": 0, "test": len(keys["val"])}
    study = {}
    for split, (rows, labels, logits) in preds.items():  # images two by two into studies, labels made to agree
        labels[1::2] = labels[0::2][: len(labels[1::2])]
        study.update({f"img{i + offset[split]}": f"{split}-s{i // 2}" for i in rows})
        keys[split] = [f"img{i + offset[split]}" for i in rows]
        write_predictions(run / "predictions" / f"{split}.parquet", keys[split], ["p"] * len(rows), labels, logits)
    meta = json.loads((run / "config.json").read_text())
    meta["config"]["shards"] = str(fake_shards(tmp_path / "shards", keys, study))
    (run / "config.json").write_text(json.dumps(meta))
    assert eval_main(["report", str(run), "--by-study", "mean", "--resamples", "5"]) == 0
    s = json.loads((run / "by-study-mean" / "report" / "summary.json").read_text())
    _, labels, logits = preds["test"]
    n = len(labels) // 2 * 2
    probs = (sigmoid(logits[0:n:2]) + sigmoid(logits[1:n:2])) / 2
    y = labels[0:n:2]
    if len(labels) % 2:
        probs, y = np.r_[probs, sigmoid(logits[-1:])], np.r_[y, labels[-1:]]
    ap = [average_precision_score(y[:, c], probs[:, c]) for c in range(len(NAMES)) if y[:, c].any()]
    assert s["test"]["map"]["value"] == pytest.approx(np.mean(ap), abs=1e-6)
    text = (run / "by-study-mean" / "report" / "report.md").read_text()
    assert f"({len(labels)} test images in {len(y)} studies)" in text
    assert "by-study-mean" in capsys.readouterr().out


def test_a_run_whose_shards_name_no_studies_is_told_so_in_one_line(stage1_run, tmp_path):
    run = shutil.copytree(stage1_run, tmp_path / "ce", ignore=shutil.ignore_patterns("*.pt", "report*"))
    with pytest.raises(UsageError, match="has no study_id"):
        report(run, n_boot=2, by_study="mean")
    meta = json.loads((run / "config.json").read_text())
    meta["config"]["shards"] = str(tmp_path / "gone")
    (run / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UsageError, match="put the shards dir back"):
        report(run, n_boot=2, by_study="max")
